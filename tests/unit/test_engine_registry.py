"""The engine registry: which engine loads which format, defaults, and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aift.errors import CapabilityMissing, InvalidInput
from aift.inference.engines import (
    adapter_engine,
    default_engine,
    engine_names,
    engine_spec,
    register_engine,
)
from aift.models.schemas import ModelFormat, ModelInfo, ModelKind, ModelSource


def _model(fmt: ModelFormat) -> ModelInfo:
    now = datetime.now(UTC)
    return ModelInfo(
        name="m",
        kind=ModelKind.base,
        format=fmt,
        source=ModelSource.local,
        path="/nowhere",
        created_at=now,
        updated_at=now,
    )


def test_every_engine_registers_itself() -> None:
    assert set(engine_names()) == {"transformers", "llamacpp", "vllm", "ollama"}


def test_defaults_follow_the_format_and_what_can_run_here() -> None:
    assert default_engine(ModelFormat.gguf) == "llamacpp"
    assert default_engine(ModelFormat.ollama) == "ollama"
    expected = "vllm" if engine_spec("vllm").available() else "transformers"
    assert default_engine(ModelFormat.hf) == expected
    assert adapter_engine() == expected
    assert adapter_engine(ModelFormat.gguf) == "llamacpp"


def test_an_engine_refuses_a_format_it_cannot_load_and_names_those_it_can() -> None:
    with pytest.raises(
        InvalidInput,
        match="cannot load m: it is a transformers folder, and llamacpp loads a GGUF file",
    ):
        engine_spec("llamacpp").check_loads(_model(ModelFormat.hf))
    engine_spec("transformers").check_loads(_model(ModelFormat.gguf))  # converted first


def test_an_unknown_engine_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="Unknown engine 'tgi'; choose one of .*llamacpp"):
        engine_spec("tgi")


def test_an_engine_that_cannot_run_here_is_never_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aift.inference import engines

    def missing() -> None:
        raise CapabilityMissing("needs a TPU")

    monkeypatch.setattr(engines, "_ENGINES", dict(engines._ENGINES))
    register_engine("tpu", formats=(ModelFormat.gguf,), requirement=missing, preference=99)(
        lambda source: None  # type: ignore[arg-type, return-value]
    )
    assert default_engine(ModelFormat.gguf) == "llamacpp"
    assert not engine_spec("tpu").available()
    with pytest.raises(CapabilityMissing, match="TPU"):
        engine_spec("tpu").requirement()
