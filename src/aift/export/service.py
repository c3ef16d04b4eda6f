"""Starting exports and quantizations: every check that can fail runs before the job.

The model must exist and be a language model of an architecture the format takes, the
quantization type must be known, the disk must hold the intermediate and the result,
an Ollama hand-off needs a reachable Ollama, and the output name must be free.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Protocol

from aift.config import Settings, redact_url
from aift.errors import CapabilityMissing, InvalidInput
from aift.export.gguf_writer import read_config
from aift.export.schemas import (
    BITS_PER_WEIGHT,
    ExportJobConfig,
    ExportRequest,
    QuantizeJobConfig,
    QuantizeRequest,
)
from aift.export.sources import exportable
from aift.models.registry import ModelRegistry
from aift.models.schemas import ModelFormat, ModelInfo, ModelKind
from aift.weights.gguf_names import GGUF_ARCHITECTURES, TRANSFORMERS_OF_GGUF
from aift.work.queueing import JobQueueing
from aift.work.schemas import JobCreate, JobInfo
from aift.workspace import Workspace, safe_name


class DatasetLookup(Protocol):
    """Where calibration datasets are found (the training datasets): `get` raises
    NotFound for an unknown name."""

    def get(self, name: str) -> object:
        """The dataset named `name`."""


# AWQ holds the model in fp32 plus calibration activations and the layer being smoothed.
AWQ_BYTES_PER_PARAM = 6
# Free space kept beyond the estimate, for the database, logs and other work.
DISK_MARGIN_BYTES = 512 * 1024 * 1024
_OLLAMA_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._/-]{0,126}(:[a-zA-Z0-9._-]{1,64})?$")


class ExportService:
    """Validates export and quantization requests and queues their jobs."""

    def __init__(
        self,
        settings: Settings,
        workspace: Workspace,
        jobs: JobQueueing,
        registry: ModelRegistry,
        datasets: DatasetLookup,
    ) -> None:
        self.settings = settings
        self.workspace = workspace
        self.jobs = jobs
        self.registry = registry
        self.datasets = datasets

    def export(self, request: ExportRequest) -> JobInfo:
        """Queue a GGUF export after checking model, architecture, disk and Ollama."""
        info = exportable(self.registry, request.model)
        _check_architecture(self._architecture(info), "GGUF", GGUF_ARCHITECTURES)
        name = self._output_name(request.name, info, request.quant)
        params = self._parameters(info)
        # the float intermediate and the quantized file exist side by side for a moment
        self._check_disk(params * (16 + BITS_PER_WEIGHT[request.quant]) / 8)
        ollama_url = None
        if request.ollama:
            ollama_url = self._check_ollama(request.ollama)
        config = ExportJobConfig(
            **request.model_dump(),
            output_dir=str(self.workspace.outputs / name),
            ollama_url=ollama_url,
        )
        return self._submit("export.gguf", config, f"export {info.name} → GGUF {request.quant}")

    def quantize(self, request: QuantizeRequest) -> JobInfo:
        """Queue an AWQ quantization (llm-compressor) after checking model, library, disk."""
        from aift.export.awq import AWQ_ARCHITECTURES, group_size_for, require_llmcompressor

        require_llmcompressor()
        info = exportable(self.registry, request.model)
        _check_architecture(self._architecture(info), "AWQ", AWQ_ARCHITECTURES)
        config_of = self._config(info)
        if config_of is not None:
            group_size_for(config_of, request.group_size)
        if request.dataset:
            self.datasets.get(request.dataset)
        name = self._output_name(request.name, info, f"awq-{request.scheme.lower()}")
        params = self._parameters(info)
        self._check_disk(params * 0.6)
        self._check_memory(params * AWQ_BYTES_PER_PARAM)
        config = QuantizeJobConfig(
            **request.model_dump(), output_dir=str(self.workspace.outputs / name)
        )
        return self._submit("export.awq", config, f"quantize {info.name} → AWQ {request.scheme}")

    def _submit(
        self, kind: str, config: ExportJobConfig | QuantizeJobConfig, title: str
    ) -> JobInfo:
        return self.jobs.submit(
            JobCreate(kind=kind, config=config.model_dump(mode="json"), title=title),
            internal=True,
        )

    # -- checks ---------------------------------------------------------------------------
    def _architecture(self, info: ModelInfo) -> str:
        """The transformers architecture of a model (an adapter's is its base's)."""
        if info.kind == ModelKind.adapter:
            assert info.base_model is not None
            base = self.registry.resolver.resolve(info.base_model)
            return self._architecture_of(Path(base.path) / (base.file or ""), base.format)
        return self._architecture_of(Path(info.path), ModelFormat(info.format))

    @staticmethod
    def _architecture_of(path: Path, fmt: ModelFormat) -> str:
        if fmt == ModelFormat.gguf:
            from gguf import GGUFReader

            gguf_file = path if path.is_file() else next(iter(sorted(path.glob("*.gguf"))))
            field = GGUFReader(str(gguf_file)).fields.get("general.architecture")
            arch = str(field.contents()) if field is not None else "?"
            return TRANSFORMERS_OF_GGUF.get(arch, arch)
        config = read_config(path)
        names = config.get("architectures") or [config.get("model_type", "?")]
        return str(names[0])

    def _config(self, info: ModelInfo) -> dict[str, Any] | None:
        """The config.json of a model's transformers folder (None: a GGUF, read later)."""
        if info.kind == ModelKind.adapter:
            assert info.base_model is not None
            base = self.registry.resolver.resolve(info.base_model)
            path = Path(base.path)
            if base.format != ModelFormat.hf:
                return None
        elif info.format == ModelFormat.hf:
            path = Path(info.path)
        else:
            return None
        try:
            return dict(json.loads((path / "config.json").read_text()))
        except (OSError, ValueError):
            return None

    def _parameters(self, info: ModelInfo) -> int:
        if info.kind == ModelKind.adapter and info.base_model:
            try:
                return self.registry.get(info.base_model).parameter_count or 0
            except Exception:  # noqa: BLE001 - an unregistered base: estimate from the adapter
                return info.parameter_count or 0
        return info.parameter_count or 0

    def _output_name(self, requested: str | None, info: ModelInfo, suffix: str) -> str:
        name = safe_name(requested or f"{info.name.split('/')[-1]}-{suffix}")
        if (self.workspace.outputs / name).exists():
            raise InvalidInput(f"An output named {name} already exists; choose another name.")
        if (self.workspace.outputs / f"{name}.partial").exists():
            raise InvalidInput(
                f"An export to {name} is running or was interrupted: wait for it, or delete "
                f"{self.workspace.outputs / name}.partial, or choose another name."
            )
        try:
            self.registry.get(name)
        except Exception:  # noqa: BLE001 - not registered: the name is free
            return name
        raise InvalidInput(f"A model named {name} is already registered; choose another name.")

    def _check_disk(self, needed: float) -> None:
        free = shutil.disk_usage(self.workspace.outputs).free
        if free < needed + DISK_MARGIN_BYTES:
            raise InvalidInput(
                f"Not enough disk space: this needs about {needed / 1e9:.2f} GB in "
                f"{self.workspace.outputs} and {free / 1e9:.2f} GB are free (keeping 0.5 GB "
                "spare). Free some space or delete old outputs."
            )

    @staticmethod
    def _check_memory(needed: float) -> None:
        import psutil

        available = psutil.virtual_memory().available
        if available < needed:
            raise InvalidInput(
                f"Not enough memory: AWQ on this model needs about {needed / 1e9:.1f} GB and "
                f"{available / 1e9:.1f} GB are available. Use a machine with more memory (or a "
                "GPU), or export to GGUF instead (it streams tensors)."
            )

    def _check_ollama(self, model: str) -> str:
        if not _OLLAMA_NAME.match(model):
            raise InvalidInput(
                f"{model!r} is not a valid Ollama model name (letters, digits, . _ - /, "
                "optionally :tag)."
            )
        url = self.settings.ollama_url
        if not url:
            raise CapabilityMissing(
                "No Ollama is configured: set AIFT_OLLAMA_URL (e.g. http://127.0.0.1:11434) "
                "or leave out --ollama and run `ollama create NAME -f Modelfile` yourself."
            )
        import ollama

        try:
            ollama.Client(host=url, timeout=10).list()
        except Exception as exc:  # noqa: BLE001 - any failure means it cannot be used
            raise CapabilityMissing(
                redact_url(f"The Ollama at {url} does not answer ({exc}).", url)
            ) from None
        return url


def _check_architecture(arch: str, fmt: str, supported: dict[str, str] | set[str]) -> None:
    if arch not in supported:
        raise InvalidInput(
            f"{fmt} export takes {', '.join(sorted(supported))}; this model is {arch}."
        )
