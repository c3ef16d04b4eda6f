"""Starting fine-tuning runs: every check that can fail happens before the job starts."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from aift.errors import CapabilityMissing, InvalidInput
from aift.jobs.schemas import JobCreate, JobInfo
from aift.jobs.service import JobService
from aift.models.inspect import gguf_summary, safetensors_summary
from aift.models.resolver import ModelResolver
from aift.models.schemas import ModelFormat
from aift.training.datasets import DatasetService
from aift.training.schemas import Method, TrainingConfig, TrainingJobConfig
from aift.training.trainer import reporters
from aift.workspace import Workspace, safe_name

if TYPE_CHECKING:
    from aift.models.registry import ModelRegistry
    from aift.models.schemas import ResolvedModel
    from aift.training.schemas import MergeRequest

log = logging.getLogger(__name__)

# Bytes per parameter while training: fp32 weights + gradients + two Adam moments for full
# fine-tuning; frozen fp32 weights (plus small adapters) for LoRA/DoRA.
TRAINING_BYTES = {Method.full: 16, Method.lora: 4, Method.dora: 4, Method.qlora: 1}
USABLE_RAM = 0.8


class TrainingService:
    """Validates a run config and queues the training job."""

    def __init__(
        self,
        workspace: Workspace,
        jobs: JobService,
        datasets: DatasetService,
        resolver: ModelResolver,
    ) -> None:
        self.workspace = workspace
        self.jobs = jobs
        self.datasets = datasets
        self.resolver = resolver

    def submit(self, config: TrainingConfig) -> JobInfo:
        """Check dataset, base model, method and memory; then queue `training.run`."""
        dataset = self.datasets.get(config.dataset)
        if config.eval_steps is not None and dataset.rows_val == 0:
            raise InvalidInput(
                f"eval_steps is set but dataset {dataset.name} has no validation rows; upload "
                "it with val_ratio > 0 or a validation file, or drop eval_steps."
            )
        if config.method == Method.qlora:
            from aift.monitoring.system import detect_devices

            if not any(d.kind == "cuda" for d in detect_devices()):
                raise CapabilityMissing(
                    "QLoRA needs a GPU (4-bit bitsandbytes, `pip install 'aift[gpu]'`); use "
                    "method lora or dora on this machine."
                )
        reporters(self.resolver.settings.wandb_project)  # a configured W&B needs its package
        base = self.resolver.resolve(config.base_model)
        params = self._check_base(base)
        self._check_memory(config, params)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        name = safe_name(config.name or Path(base.name).name)
        output = self.workspace.outputs / f"{config.method.value}_{name}_{stamp}"
        job_config = TrainingJobConfig(**config.model_dump(), output_dir=str(output), base=base)
        return self.jobs.submit(
            JobCreate(
                kind="training.run",
                config=job_config.model_dump(mode="json"),
                title=f"{config.method.value} {name} on {dataset.name}",
            ),
            internal=True,
        )

    def _check_base(self, base: ResolvedModel) -> int:
        """A causal language model this can train; return its parameter count."""
        if base.format == ModelFormat.gguf and base.file:
            summary = gguf_summary(
                Path(base.path) / base.file, self.resolver.settings.effective_cache_dir
            )
            return int(summary["parameter_count"])
        if base.format != ModelFormat.hf:
            raise InvalidInput(
                f"{base.name} is a {base.format.value} model; fine-tuning needs "
                "a causal language model (a transformers folder or a GGUF)."
            )
        config = json.loads((Path(base.path) / "config.json").read_text())
        architectures = config.get("architectures") or []
        if not any(a.endswith("ForCausalLM") for a in architectures):
            raise InvalidInput(
                f"{base.name} ({', '.join(architectures) or 'unknown'}) is not a "
                "causal language model; pick a *ForCausalLM model."
            )
        params, _ = safetensors_summary(sorted(Path(base.path).glob("*.safetensors")))
        return params

    def merge(self, request: MergeRequest, registry: ModelRegistry) -> JobInfo:
        """Queue the merge of an adapter into its base (a new full model)."""
        from aift.models.schemas import ModelKind
        from aift.training.merge import output_for
        from aift.training.schemas import MergeJobConfig

        adapter = registry.get(request.adapter)
        if adapter.kind != ModelKind.adapter:
            raise InvalidInput(f"{adapter.name} is a {adapter.kind.value} model, not an adapter.")
        if not adapter.base_model:
            raise InvalidInput(f"Adapter {adapter.name} does not name its base model.")
        base = self.resolver.resolve(adapter.base_model)
        self._check_base(base)
        job_config = MergeJobConfig(
            **request.model_dump(),
            adapter_dir=adapter.path,
            base=base,
            output_dir=str(output_for(self.workspace.outputs, request)),
        )
        return self.jobs.submit(
            JobCreate(
                kind="training.merge",
                config=job_config.model_dump(mode="json"),
                title=f"merge {adapter.name}",
            ),
            internal=True,
        )

    @staticmethod
    def _check_memory(config: TrainingConfig, params: int) -> None:
        need = params * TRAINING_BYTES[config.method] * 1.3
        have = psutil.virtual_memory().total * USABLE_RAM
        if need > have:
            advice = (
                "use lora instead of full fine-tuning"
                if config.method == Method.full
                else "use a smaller base model, or qlora on a GPU"
            )
            raise InvalidInput(
                f"{config.method.value} on a {params / 1e9:.1f}B-parameter model needs about "
                f"{need / 2**30:.1f} GiB but {have / 2**30:.1f} GiB is usable: {advice}."
            )
