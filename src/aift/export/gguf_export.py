"""GGUF export (the `export.gguf` job): weights → float GGUF → llama.cpp quantization → Modelfile →
(optionally) a model in Ollama; registered only when every step succeeded.

Everything is written into `<output>.partial/` and renamed into place at the end, so a
failed or cancelled export leaves no half-written files and nothing registered.
Before anything ships, llama.cpp must tokenize probe texts exactly as transformers does,
and the Modelfile's TEMPLATE is compared with the chat template on probe conversations.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from aift.errors import AiftError
from aift.export.gguf_writer import write_gguf
from aift.export.modelfile import OllamaTemplate, modelfile_text, translate
from aift.export.schemas import ExportJobConfig, ExportResult, FloatType
from aift.export.sources import ExportSource, exportable, resolve_source
from aift.export.tokenizer_metadata import tokenization_mismatch
from aift.models.registry import ModelRegistry
from aift.threads import compute_threads
from aift.weights.quantize import quantize_gguf
from aift.work.actor import current_actor
from aift.work.control import Work

log = logging.getLogger(__name__)


class ExportFailed(AiftError):
    """The export could not produce a faithful model (nothing was registered)."""

    status_code = 422
    code = "export_failed"


def gguf_file_name(name: str, quant: str) -> str:
    return f"{name}.{quant}.gguf"


def write_model_gguf(
    ctx: Work | None, config: ExportJobConfig, source: ExportSource, staging: Path
) -> tuple[Path, bool]:
    """Write the (quantized) GGUF into `staging`; return its path and the BOS setting."""
    from aift.weights.lora import lora_deltas

    name = Path(config.output_dir).name
    float_type = FloatType(config.quant) if config.quant in FloatType.__members__ else FloatType.f16
    float_file = staging / gguf_file_name(name, float_type.value)
    adapter = lora_deltas(source.adapter_dir) if source.adapter_dir else None

    def progress(fraction: float, message: str) -> None:
        if ctx is not None:
            ctx.check_cancelled()
            ctx.progress(0.05 + 0.55 * fraction, message)

    write_gguf(
        source.weights_dir,
        float_file,
        outtype=float_type,
        tokenizer_dir=source.tokenizer_dir,
        name=name,
        adapter=adapter,
        progress=progress,
    )
    if ctx is not None:
        ctx.progress(0.62, "checking llama.cpp tokenizes as transformers does", force=True)
    mismatch = tokenization_mismatch(float_file, source.tokenizer_dir)
    if mismatch:
        raise ExportFailed(
            f"The exported tokenizer does not match the model's: {mismatch}. This "
            "tokenizer's pre-tokenizer is not one llama.cpp knows; the GGUF was not kept."
        )
    if config.quant == float_type.value:
        return float_file, _adds_bos(float_file)
    if ctx is not None:
        ctx.check_cancelled()
        ctx.progress(0.7, f"quantizing to {config.quant} with llama.cpp", force=True)
    target = staging / gguf_file_name(name, config.quant)
    quantize_gguf(float_file, target, config.quant, compute_threads())
    float_file.unlink()
    return target, _adds_bos(target)


def _adds_bos(gguf_file: Path) -> bool:
    from gguf import GGUFReader

    field = GGUFReader(str(gguf_file)).fields.get("tokenizer.ggml.add_bos_token")
    return bool(field is not None and field.contents())


def create_in_ollama(
    url: str, model: str, gguf_file: Path, translated: OllamaTemplate, config: ExportJobConfig
) -> str:
    """Create `model` in the Ollama at `url` from the GGUF (/api/blobs, then /api/create
    with the template, system prompt and parameters) and return its answer to a probe."""
    import ollama

    client = ollama.Client(host=url, timeout=600)
    digest = client.create_blob(gguf_file)
    parameters: dict[str, Any] = dict(config.parameters)
    stops = [*translated.stops, *_as_list(parameters.pop("stop", []))]
    if stops:
        parameters["stop"] = stops
    client.create(
        model=model,
        files={gguf_file.name: digest},
        template=translated.template,
        system=config.system,
        parameters=parameters or None,
        stream=False,
    )
    reply = client.chat(
        model=model,
        messages=[{"role": "user", "content": "Say hello in one short sentence."}],
        options={"num_predict": 24, "temperature": 0},
    )
    if not reply.done or not reply.eval_count:
        raise ExportFailed(f"Ollama created {model} but it generated nothing for a probe prompt.")
    return (reply.message.content or "").strip()


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)] if value else []


def export_gguf(ctx: Work, config: ExportJobConfig, models: ModelRegistry) -> dict[str, Any]:
    """Export a model as GGUF (with its chat template, a Modelfile, and an Ollama hand-off)."""
    from aift.models.schemas import ModelKind, ModelSource

    out_dir = Path(config.output_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        ctx.progress(0.02, "reading the model", force=True)
        source = resolve_source(models, exportable(models, config.model))
        gguf_file, adds_bos = write_model_gguf(ctx, config, source, staging)
        ctx.progress(0.88, "writing the Modelfile", force=True)
        translated = translate(source.tokenizer_dir, adds_bos)
        (staging / "Modelfile").write_text(
            modelfile_text(
                gguf_file.name,
                translated.template,
                translated.stops,
                system=config.system,
                parameters=config.parameters,
            )
        )
        reply = None
        if config.ollama:
            if not translated.check.passed or translated.template is None:
                raise ExportFailed(
                    "The chat template could not be translated for Ollama "
                    f"({translated.check.failure}); not creating {config.ollama}."
                )
            ctx.progress(0.92, f"creating {config.ollama} in Ollama", force=True)
            assert config.ollama_url is not None
            reply = create_in_ollama(
                config.ollama_url, config.ollama, gguf_file, translated, config
            )
        result = ExportResult(
            model=out_dir.name,
            output_dir=str(out_dir),
            gguf_file=str(out_dir / gguf_file.name),
            quant=config.quant,
            size_bytes=gguf_file.stat().st_size,
            source_model=config.model,
            template_check=translated.check,
            ollama_model=config.ollama,
            ollama_reply=reply,
        )
        (staging / "export.json").write_text(result.model_dump_json(indent=2))
        ctx.check_cancelled()
        staging.replace(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    models.register(
        out_dir.name,
        out_dir,
        source=ModelSource.workspace,
        owner=current_actor.get().user_id,
        kind=ModelKind.gguf,
        extra={
            "exported_from": config.model,
            "quant": config.quant,
            "template_check": translated.check.passed,
        },
    )
    return json.loads(result.model_dump_json())
