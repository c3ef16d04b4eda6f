"""Starting fine-tuning runs: every check that can fail happens before the job starts."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from aift.errors import CapabilityMissing, InvalidInput, NotFound
from aift.models.inspect import gguf_summary, safetensors_summary
from aift.models.resolver import ModelResolver
from aift.models.schemas import ModelFormat
from aift.training.datasets import DatasetService
from aift.training.memory import ModelShape, run_bytes, shape_of_config, shape_of_summary
from aift.training.precision import base_in_bf16
from aift.training.schemas import (
    OBJECTIVE_FORMATS,
    REWARD_OBJECTIVES,
    ChainInfo,
    CurvePoint,
    DatasetFormat,
    DatasetInfo,
    Method,
    Objective,
    StagePlan,
    TrainingConfig,
    TrainingCurve,
    TrainingEstimate,
    TrainingJobConfig,
)
from aift.training.steps import few_steps_warning, planned_steps, rows_per_epoch
from aift.training.trainer import reporters
from aift.work.queueing import JobQueueing
from aift.work.schemas import JobCreate, JobInfo, JobStatus
from aift.workspace import Workspace, safe_name

if TYPE_CHECKING:
    from aift.models.registry import ModelRegistry
    from aift.models.schemas import ResolvedModel
    from aift.training.reward_inputs import PageLookup
    from aift.training.schemas import MergeRequest, MoeRequest

log = logging.getLogger(__name__)

ACTIVE = [JobStatus.queued, JobStatus.running, JobStatus.interrupted]

USABLE_RAM = 0.8
# Training FLOPs per token and parameter: forward 2 + backward 4 with weight gradients
# (full), about 4 when only small adapters get gradients.
FLOPS_PER_TOKEN = {Method.full: 6, Method.lora: 4, Method.dora: 4, Method.qlora: 4}
# Sustained training FLOP/s assumed before this machine has a run of its own to learn from.
ASSUMED_FLOPS = {"cpu_core": 4e9, "cuda": 3e13}


class TrainingService:
    """Validates a run config and queues the training job."""

    def __init__(
        self,
        workspace: Workspace,
        jobs: JobQueueing,
        datasets: DatasetService,
        resolver: ModelResolver,
        pages: PageLookup | None = None,
    ) -> None:
        self.workspace = workspace
        self.jobs = jobs
        self.datasets = datasets
        self.resolver = resolver
        self.pages = pages  # knowledge-base page texts, for GRPO's cites_page reward

    def submit(self, config: TrainingConfig) -> JobInfo:
        """Check dataset (the user's, or shared with them to write: train on), base
        model, method and memory; then queue `training.run`."""
        dataset = self.datasets.get(config.dataset, write=True)
        if dataset.rows_train == 0:
            raise InvalidInput(
                f"Dataset {dataset.name} has no training rows yet"
                + (
                    ": it was written from documents, and only accepted rows train. Review "
                    f"its rows on its page (POST /api/v1/datasets/{dataset.id}/rows/review)."
                    if "generated" in dataset.stats
                    else "."
                )
            )
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
        if config.distributed is not None:
            self._check_distributed(config)
        reward_rows = self._check_objective(config, dataset)
        if config.evaluation is not None:
            self._check_evaluation(config)
        base = self.resolver.resolve(config.base_model)
        params, shape = self._check_base(base)
        self._check_memory(config, params, shape)
        adapter_dir = self._adapter_dir(config, base) if config.adapter else None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        name = safe_name(config.name or Path(base.name).name)
        output = self.workspace.outputs / f"{_label(config).replace(' ', '-')}_{name}_{stamp}"
        title = f"{_label(config)} {name} on {dataset.name}"
        stage = None
        if config.continual is not None:
            stage, output = self._plan_stage(config, base.name)
            title = f"{config.continual.chain} stage {stage.stage}: {stage.task} ({title})"
        job_config = TrainingJobConfig(
            **config.model_dump(),
            output_dir=str(output),
            base=base,
            stage=stage,
            adapter_dir=adapter_dir,
            **self._reward_inputs(config, dataset, reward_rows, output),
        )
        return self.jobs.submit(
            JobCreate(kind="training.run", config=job_config.model_dump(mode="json"), title=title),
            internal=True,
        )

    def _check_objective(
        self, config: TrainingConfig, dataset: DatasetInfo
    ) -> dict[str, list[dict[str, Any]]]:
        """The dataset's format suits the objective, and GRPO's rewards can score every
        row (a clear per-row error now, not a failure halfway through the run). Returns a
        reward objective's rows by split (none for the others)."""
        from aift.training.objectives import trl_rows
        from aift.training.reward_inputs import check_rows

        accepted = OBJECTIVE_FORMATS[config.objective]
        if dataset.format not in accepted:
            names = ", ".join(f.value for f in accepted)
            raise InvalidInput(
                f"Objective {config.objective.value} trains on {names} datasets; "
                f"{dataset.name} is {dataset.format.value}."
            )
        if config.objective not in REWARD_OBJECTIVES:
            return {}
        if config.grpo.vllm:
            _require_vllm()
        splits = {
            split: trl_rows(config, list(self.datasets.examples(config.dataset, split)))
            for split in ("train", "val")
        }
        check_rows(config.grpo.rewards, splits, dataset.name)
        return splits

    def _reward_inputs(
        self,
        config: TrainingConfig,
        dataset: DatasetInfo,
        splits: dict[str, list[dict[str, Any]]],
        output: Path,
    ) -> dict[str, Any]:
        """The reward models' folders and the cites_page reward's page texts (kept in the
        run's folder), fixed at submission so that a resumed run scores the same."""
        from aift.training import reward_inputs

        if config.objective not in REWARD_OBJECTIVES:
            return {}
        specs = config.grpo.rewards
        folders = reward_inputs.reward_model_folders(specs, self.resolver)
        texts = reward_inputs.page_texts(specs, splits, dataset.name, self.pages)
        return {"reward_models": folders, "reward_pages": reward_inputs.write_pages(texts, output)}

    def _adapter_dir(self, config: TrainingConfig, base: ResolvedModel) -> str:
        """The folder of the adapter a run continues: an adapter of this very base."""
        assert config.adapter is not None
        adapter = self.resolver.resolve(config.adapter)
        folder = Path(adapter.path)
        if adapter.format != ModelFormat.peft or not (folder / "adapter_config.json").is_file():
            raise InvalidInput(
                f"{adapter.name} is a {adapter.format.value} model, not an adapter: start a new "
                "adapter (leave adapter empty) or merge and train the merged model as a base."
            )
        declared = json.loads((folder / "adapter_config.json").read_text()).get(
            "base_model_name_or_path"
        )
        trained_on = self.resolver.resolve(str(declared)).name if declared else None
        if trained_on != base.name:
            raise InvalidInput(
                f"Adapter {adapter.name} was trained on {trained_on or 'an unknown base'}, "
                f"not on {base.name}."
            )
        return str(folder)

    def join_node(self, config: TrainingConfig, node_rank: int) -> tuple[int, Path]:
        """Run this machine's ranks of a multi-node run (node_rank > 0) in the foreground.

        Needs the same dataset id and base model as node 0. Returns the exit code and the
        ranks' log file.
        """
        from aift.threads import compute_threads
        from aift.training.distributed import FOLDER, run_node

        if config.distributed is None or config.distributed.nodes < 2:
            raise InvalidInput("--node-rank joins a multi-node run: set distributed.nodes ≥ 2.")
        if not 0 < node_rank < config.distributed.nodes:
            raise InvalidInput(
                f"--node-rank must be between 1 and {config.distributed.nodes - 1} "
                "(node 0 runs the job)."
            )
        settings = config.distributed.model_copy(update={"node_rank": node_rank})
        self.datasets.get(config.dataset)
        base = self.resolver.resolve(config.base_model)
        self._check_base(base)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        name = safe_name(config.name or Path(base.name).name)
        output = self.workspace.outputs / f"node{node_rank}_{name}_{stamp}"
        job_config = TrainingJobConfig(
            **config.model_dump(exclude={"distributed"}),
            distributed=settings,
            output_dir=str(output),
            base=base,
        )
        examples = {
            split: list(self.datasets.examples(config.dataset, split)) for split in ("train", "val")
        }
        code = run_node(
            job_config, examples, self.resolver.transformers_dir(base), compute_threads()
        )
        return code, output / FOLDER / "ranks.log"

    @staticmethod
    def _check_distributed(config: TrainingConfig) -> None:
        """A distributed job is node 0 of its run, with a strategy this machine can run."""
        from aift.monitoring.system import detect_devices
        from aift.training.distributed import check_supported

        settings = config.distributed
        assert settings is not None
        if settings.node_rank != 0:
            raise InvalidInput(
                f"The job runs node 0; node {settings.node_rank} joins from its own machine "
                f"with `aift train RUN.yaml --node-rank {settings.node_rank}`."
            )
        check_supported(settings, any(d.kind == "cuda" for d in detect_devices()))
        if config.method == Method.qlora and settings.strategy == "fsdp":
            raise InvalidInput("QLoRA's 4-bit weights do not shard with FSDP; use ddp.")

    def _check_evaluation(self, config: TrainingConfig) -> None:
        """The evaluation set has validation rows with answers to score."""
        assert config.evaluation is not None
        dataset = self.datasets.get(config.evaluation.dataset or config.dataset)
        if dataset.rows_val == 0:
            raise InvalidInput(
                f"evaluation scores validation rows, and dataset {dataset.name} has none: "
                "upload it with val_ratio > 0 or a validation file, or name another dataset."
            )
        if dataset.format == DatasetFormat.text:
            raise InvalidInput(
                f"evaluation scores answers to prompts; {dataset.name} is raw text: name a "
                "dataset of demonstrations, preference pairs or prompts with answers."
            )

    def _plan_stage(self, config: TrainingConfig, base_name: str) -> tuple[StagePlan, Path]:
        """Check a continual stage against its chain and the running jobs; plan it."""
        from aift.training import continual

        settings = config.continual
        assert settings is not None
        dataset = self.datasets.get(config.dataset)
        if dataset.rows_val == 0:
            raise InvalidInput(
                f"A continual stage is scored on every task's validation rows, and dataset "
                f"{dataset.name} has none: upload it with val_ratio > 0 or a validation file."
            )
        if settings.exact_match and dataset.format == DatasetFormat.text:
            raise InvalidInput(
                "exact_match scores generated answers; a text dataset has no answers to match."
            )
        for job in self.jobs.list(status=ACTIVE, kind="training.run", limit=1000).items:
            running = (job.config.get("continual") or {}).get("chain")
            if running == settings.chain:
                raise InvalidInput(
                    f"Stage job {job.id} of chain {settings.chain!r} is {job.status.value}: "
                    "let it finish, resume it or cancel it before adding the next stage."
                )
        plan, output = continual.plan_stage(self.workspace.outputs, config, base_name)
        for task in plan.earlier:
            try:
                self.datasets.get(task.dataset)
            except NotFound:
                raise InvalidInput(
                    f"Task {task.task!r} of chain {settings.chain!r} used dataset {task.dataset}, "
                    "which was deleted; its rows are needed for scoring and replay."
                ) from None
        return plan, output

    def chains(self) -> list[ChainInfo]:
        """The continual-learning chains of this workspace."""
        from aift.training.continual import list_chains

        return list_chains(self.workspace.outputs)

    def chain(self, name: str) -> ChainInfo:
        """One chain with its stages and forgetting matrix."""
        from aift.training.continual import get_chain

        return get_chain(self.workspace.outputs, name)

    def _check_base(self, base: ResolvedModel) -> tuple[int, ModelShape | None]:
        """A causal language model this can train; return its parameter count and shape."""
        if base.format == ModelFormat.gguf and base.file:
            summary = gguf_summary(
                Path(base.path) / base.file, self.resolver.settings.effective_cache_dir
            )
            return int(summary["parameter_count"]), shape_of_summary(summary)
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
        return params, shape_of_config(config)

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

    def compose_moe(self, request: MoeRequest, registry: ModelRegistry) -> JobInfo:
        """Check the base and the experts, then queue the composition of a Mixtral model."""
        from aift.models.schemas import ModelKind
        from aift.training.moe import check_base
        from aift.training.schemas import MoeJobConfig

        base = self.resolver.resolve(request.base_model)
        self._check_base(base)
        if base.format == ModelFormat.gguf and base.file:
            summary = gguf_summary(
                Path(base.path) / base.file, self.resolver.settings.effective_cache_dir
            )
            check_base({"model_type": summary.get("architecture")})
            shapes = None
        else:
            base_config = json.loads((Path(base.path) / "config.json").read_text())
            check_base(base_config)
            shapes = _shapes(base_config)
        expert_dirs = []
        for expert in request.experts:
            info = registry.get(expert.model)
            folder = Path(info.path)
            if info.kind == ModelKind.adapter:
                adapter = json.loads((folder / "adapter_config.json").read_text())
                if adapter.get("use_dora"):
                    raise InvalidInput(
                        f"{info.name} is a DoRA adapter: merge it first (aift merge {info.name}) "
                        "and use the merged model as the expert."
                    )
                if not info.base_model or self.resolver.resolve(info.base_model).name != base.name:
                    raise InvalidInput(
                        f"Adapter {info.name} was trained on {info.base_model or 'an unknown base'}"
                        f", not on {base.name}."
                    )
            elif info.format == ModelFormat.hf and info.kind in (
                ModelKind.finetuned,
                ModelKind.base,
            ):
                config = json.loads((folder / "config.json").read_text())
                check_base(config)
                if shapes is not None and _shapes(config) != shapes:
                    raise InvalidInput(
                        f"{info.name} has other layer shapes than {base.name} "
                        f"({_shapes(config)} vs {shapes}): experts must be fine-tunes of the base."
                    )
                shapes = shapes or _shapes(config)
            else:
                raise InvalidInput(
                    f"{info.name} is a {info.kind.value} ({info.format.value}) model; an expert "
                    "is a full fine-tune (transformers folder) or a LoRA adapter of the base."
                )
            expert_dirs.append(str(folder))
        output = self.workspace.outputs / f"moe_{request.name}"
        if output.exists():
            raise InvalidInput(f"{output.name} exists already; choose another name.")
        for job in self.jobs.list(status=ACTIVE, kind="training.moe", limit=1000).items:
            if job.config.get("name") == request.name:
                raise InvalidInput(f"Job {job.id} is composing moe_{request.name} already.")
        job_config = MoeJobConfig(
            **request.model_dump(), base=base, expert_dirs=expert_dirs, output_dir=str(output)
        )
        return self.jobs.submit(
            JobCreate(
                kind="training.moe",
                config=job_config.model_dump(mode="json"),
                title=f"compose moe_{request.name} ({len(request.experts)} experts)",
            ),
            internal=True,
        )

    @staticmethod
    def _memory_need(
        config: TrainingConfig, params: int, shape: ModelShape | None
    ) -> tuple[int, int]:
        """Bytes the run needs (weights, trainable state, one pass: `training.memory`)
        and the bytes this machine has for it."""
        from aift.monitoring.system import detect_devices

        on_gpu = any(d.kind == "cuda" for d in detect_devices())
        bf16 = base_in_bf16(config, on_gpu)
        need = run_bytes(config, params, shape, bf16, on_gpu)
        have = int(psutil.virtual_memory().total * USABLE_RAM)
        return need, have

    @classmethod
    def _memory_advice(
        cls, config: TrainingConfig, params: int, shape: ModelShape | None
    ) -> str | None:
        need, have = cls._memory_need(config, params, shape)
        if need <= have:
            return None
        advice = (
            "use lora instead of full fine-tuning"
            if config.method == Method.full
            else "use a shorter max_length, a smaller base model, or qlora on a GPU"
        )
        return (
            f"{config.method.value} on a {params / 1e9:.1f}B-parameter model needs about "
            f"{need / 2**30:.1f} GiB but {have / 2**30:.1f} GiB is usable: {advice}."
        )

    @classmethod
    def _check_memory(cls, config: TrainingConfig, params: int, shape: ModelShape | None) -> None:
        message = cls._memory_advice(config, params, shape)
        if message:
            raise InvalidInput(message)

    def estimate(self, config: TrainingConfig) -> TrainingEstimate:
        """Memory, steps, tokens and expected duration of a run config, without starting it.

        The time comes from the newest finished run of the same base model and method on
        this workspace when there is one (its measured tokens/s), else from FLOPs and an
        assumed machine speed, and says which.
        """
        dataset = self.datasets.get(config.dataset)
        base = self.resolver.resolve(config.base_model)
        params, shape = self._check_base(base)
        need, have = self._memory_need(config, params, shape)
        per_step = config.batch_size * config.gradient_accumulation
        mean_tokens = float(dataset.stats.get("tokens", {}).get("mean") or config.max_length / 4)
        rows = rows_per_epoch(config, dataset.rows_train, mean_tokens)
        steps = planned_steps(config, rows)
        epoch_tokens = dataset.rows_train * min(mean_tokens, config.max_length)
        tokens = int(steps * per_step * epoch_tokens / rows * _sequences_per_row(config))
        warnings = [m for m in [self._memory_advice(config, params, shape)] if m]
        if config.eval_steps is not None and dataset.rows_val == 0:
            warnings.append("eval_steps is set but the dataset has no validation rows.")
        few = few_steps_warning(config, dataset.rows_train, rows, steps)
        if few:
            warnings.append(few)
        measured = self._measured_speed(base.name, config.method, config.objective)
        if measured:
            speed, basis = measured, "measured on your last run of this model and method"
        else:
            speed = self._assumed_speed(config.method, params)
            basis = "a rough guess from the model size; it improves after a first run"
        return TrainingEstimate(
            parameters=params,
            memory_bytes=need,
            memory_available_bytes=have,
            fits=need <= have,
            steps=steps,
            tokens=tokens,
            tokens_per_second=speed,
            seconds=tokens / speed if speed else None,
            basis=basis,
            warnings=warnings,
        )

    def _measured_speed(self, base_name: str, method: Method, objective: Objective) -> float | None:
        """Tokens/s of the newest finished run of this base, method and objective, if any."""
        done = self.jobs.list(status=[JobStatus.succeeded], kind="training.run", limit=100)
        for job in done.items:
            base = (job.config.get("base") or {}).get("name")
            speed = (job.metrics or {}).get("tokens_per_second")
            same = (
                job.config.get("method") == method.value
                and job.config.get("objective", Objective.sft.value) == objective.value
            )
            if base == base_name and same and speed:
                return float(speed)
        return None

    @staticmethod
    def _assumed_speed(method: Method, params: int) -> float:
        from aift.monitoring.system import detect_devices

        devices = detect_devices()
        if any(d.kind == "cuda" for d in devices):
            flops = ASSUMED_FLOPS["cuda"]
        else:
            flops = ASSUMED_FLOPS["cpu_core"] * (psutil.cpu_count(logical=False) or 1)
        return flops / (FLOPS_PER_TOKEN[method] * max(params, 1))

    def curve(self, job_id: str, after: int = -1) -> TrainingCurve:
        """The run's logged steps (loss, validation loss, learning rate…) after `after`.

        A resumed run logs again from its checkpoint, so a step keeps its newest values.
        """
        job = self.jobs.get(job_id)
        if job.kind != "training.run":
            raise InvalidInput(f"Job {job_id} is a {job.kind} job, not a training run.")
        points: dict[int, dict] = {}
        path = Path(job.config["output_dir"]) / "metrics.jsonl"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line being written right now
                    continue
                step = int(entry.get("step", -1))
                if step > after:
                    points.setdefault(step, {}).update(entry)
        return TrainingCurve(
            job_id=job_id,
            points=[CurvePoint.model_validate(points[step]) for step in sorted(points)],
        )


def _require_vllm() -> None:
    """GRPO's vLLM generation needs vllm installed and an NVIDIA GPU: say which is
    missing."""
    import importlib.util

    from aift.monitoring.system import detect_devices

    if importlib.util.find_spec("vllm") is None:
        raise CapabilityMissing(
            "grpo.vllm needs the gpu extra (pip install 'aift[gpu]') on a machine with an "
            "NVIDIA GPU; leave it off and transformers generates the groups."
        )
    if not any(d.kind == "cuda" for d in detect_devices()):
        raise CapabilityMissing(
            "grpo.vllm generates on the training GPU and none is visible here; leave it off "
            "and transformers generates the groups."
        )


def _label(config: TrainingConfig) -> str:
    """A run's method, with its objective when it is not plain SFT ("lora dpo")."""
    if config.objective == Objective.sft:
        return config.method.value
    return f"{config.method.value} {config.objective.value}"


def _sequences_per_row(config: TrainingConfig) -> int:
    """Sequences the model passes per dataset row: a preference pair has two replies, a
    GRPO prompt a group of completions."""
    if config.objective in (Objective.dpo, Objective.orpo, Objective.simpo, Objective.reward):
        return 2
    if config.objective in REWARD_OBJECTIVES:
        return config.grpo.num_generations
    return 1


def _shapes(config: dict) -> tuple:
    """The layer shapes experts must share with their base."""
    return tuple(
        config.get(k)
        for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size")
    )
