"""The training loop of one run: LoRA, DoRA or full, on CPU or GPU, with checkpoints.

Read top to bottom: `setup` loads the tokenizer, the model and the data; `fit` runs the
transformers Trainer with aift's progress callback; `finish` writes the output folder
(model or adapter, tokenizer, config, metrics, model card) and registers it. Which runs
call them in what order (a plain run, a distributed one, a continual stage) is
`aift.training.runs`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aift.allocator import allocator_in_use, peak_memory_bytes
from aift.errors import CapabilityMissing, InvalidInput
from aift.training.examples import (
    Collator,
    pack,
    supervised_tokens,
    tokenize_example,
    unpacked,
)
from aift.training.outputs import register_output, write_run_files
from aift.training.packed_attention import supports_packed_attention, use_packed_attention
from aift.training.passes import CPU_PASS_TOKENS
from aift.training.precision import base_dtype, choose_precision, trainable_in_fp32
from aift.training.rewards import PageSupport
from aift.training.schemas import Method, Objective, TrainingJobConfig
from aift.training.stopping import StopBudget, checkpoint_bytes
from aift.training.supervised_loss import supervised_trainer_class
from aift.work.control import Cancelled, Work

if TYPE_CHECKING:
    from aift.models.registry import ModelRegistry

log = logging.getLogger(__name__)

# Objectives that learn from preference pairs (one loss term per pair).
PAIRED = (Objective.dpo, Objective.orpo, Objective.simpo, Objective.reward)
# trl's logged figures a finished preference or reward run reports in its result.
OBJECTIVE_FIGURES = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "kl",
    "reward",
    "reward_std",
    "completions/mean_length",
    "accuracy",
    "margin",
    "mean_reward",
)


@dataclass
class Prepared:
    tokenizer: Any
    model: Any
    train_rows: list[dict]
    val_rows: list[dict]
    truncated: int
    supervised_tokens: int  # tokens that carry loss, per epoch
    attention: str
    trainer: Any = None  # set by `fit`
    peft_config: Any = None  # a new adapter that trl wraps the model in (other objectives)
    trained_tokens: int = 0  # every token a pass processes, per epoch (what tokens/s counts)


def reporters(wandb_project: str | None) -> list[str]:
    """Where the Trainer logs: TensorBoard always, W&B when a project is configured."""
    if not wandb_project:
        return ["tensorboard"]
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        raise CapabilityMissing(
            "AIFT_WANDB_PROJECT is set but wandb is not installed: `pip install 'aift[wandb]'` "
            "or unset AIFT_WANDB_PROJECT."
        )
    return ["tensorboard", "wandb"]


def setup(
    config: TrainingJobConfig,
    examples: dict[str, list[dict]],
    model_dir: Path,
    adapter_dir: Path | None = None,
) -> Prepared:
    """Tokenizer, model (with LoRA/DoRA when asked) and packed training rows.

    `adapter_dir` continues training an existing adapter (a continual chain's previous
    stage) instead of starting a new one.
    """
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model, attention = _load_model(config, model_dir)
    if config.objective != Objective.sft:
        return _setup_objective(config, examples, tokenizer, model, attention, adapter_dir)
    model = _with_adapter(model, config, adapter_dir)
    items = {
        name: [tokenize_example(tokenizer, e, config.max_length, config.loss_on) for e in rows]
        for name, rows in examples.items()
    }
    build = (
        (lambda xs, seed: pack(xs, config.max_length, seed))
        if config.packing
        else (lambda xs, seed: unpacked(xs))
    )
    train_rows = build(items["train"], config.seed)
    val_rows = build(items["val"], config.seed)
    return Prepared(
        tokenizer,
        model,
        train_rows,
        val_rows,
        sum(t.truncated for t in items["train"] + items["val"]),
        supervised_tokens(train_rows),
        attention,
        trained_tokens=sum(len(row["input_ids"]) for row in train_rows),
    )


def _setup_objective(
    config: TrainingJobConfig,
    examples: dict[str, list[dict]],
    tokenizer: Any,
    model: Any,
    attention: str,
    adapter_dir: Path | None,
) -> Prepared:
    """Model and rows of a preference or reward objective: trl tokenizes the rows itself,
    and a new adapter is left for trl to add (`peft_config`), so that its reference is
    the base with the adapter disabled."""
    from aift.models.tokenizers import DEFAULT_CHAT_TEMPLATE
    from aift.training.objectives import processed_tokens, trl_rows

    if not tokenizer.chat_template:  # trl renders the chat rows with the tokenizer's template
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    if config.objective == Objective.reward:  # the score is read at the last real token
        model.config.pad_token_id = tokenizer.pad_token_id
    peft_config = None
    if config.method != Method.full:
        if adapter_dir is not None:
            model = _with_adapter(model, config, adapter_dir)
        else:
            peft_config = lora_config(config)
    rows = {name: trl_rows(config, split_rows) for name, split_rows in examples.items()}
    processed = processed_tokens(config, tokenizer, rows["train"])
    return Prepared(
        tokenizer,
        model,
        rows["train"],
        rows["val"],
        0,
        processed,
        attention,
        peft_config=peft_config,
        trained_tokens=processed,
    )


def _load_model(config: TrainingJobConfig, model_dir: Path) -> tuple[Any, str]:
    """The transformers model to train (4-bit for QLoRA, on a GPU only) and the
    attention it uses ("packed" when packed rows get their own masks)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    on_gpu = torch.cuda.is_available()
    if config.method == Method.qlora and not on_gpu:
        raise CapabilityMissing("QLoRA needs a GPU (bitsandbytes 4-bit); use lora on CPU.")
    kwargs: dict[str, Any] = {"dtype": base_dtype(config, on_gpu)}
    if config.method == Method.qlora:
        from transformers import BitsAndBytesConfig

        kwargs = {
            "quantization_config": BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
            ),
            "device_map": "auto",
        }
    if config.objective == Objective.reward:  # the base with one score head instead
        model: Any = AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=1, **kwargs
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    model.config.use_cache = False  # a cache would also disable transformers' packing masks
    attention = model.config._attn_implementation
    packs = config.packing and config.objective == Objective.sft
    if packs and supports_packed_attention(model.config, config.max_length):
        use_packed_attention(model)
        attention = "packed"
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model, attention


def _with_adapter(model: Any, config: TrainingJobConfig, adapter_dir: Path | None) -> Any:
    """The model wrapped by peft for LoRA/DoRA: a new adapter, or `adapter_dir`'s to
    train further; unchanged for full fine-tuning."""
    if config.method == Method.full:
        return model
    if adapter_dir is not None:
        from peft import PeftModel

        wrapped = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
    else:
        from peft import get_peft_model

        try:
            wrapped = get_peft_model(model, lora_config(config))
        except ValueError as exc:
            raise InvalidInput(
                f"{config.method.value} cannot be applied to this model: {exc}"
            ) from None
    trainable_in_fp32(wrapped)
    return wrapped


def lora_config(config: TrainingJobConfig) -> Any:
    """peft's LoraConfig of a run (DoRA when the method says so)."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora.rank,
        lora_alpha=int(config.lora.alpha),
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        use_dora=config.method == Method.dora,
        # a reward model's new score head trains whole beside the adapter (SEQ_CLS)
        task_type="SEQ_CLS" if config.objective == Objective.reward else "CAUSAL_LM",
    )


class _Rows:
    """A list of rows as the torch Dataset the Trainer expects."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]


def fit(
    ctx: Work,
    config: TrainingJobConfig,
    prepared: Prepared,
    penalty: Callable[[], Any] | None = None,
    wandb_project: str | None = None,
    page_support: PageSupport | None = None,
) -> dict[str, Any]:
    """Run the Trainer, resuming from the newest checkpoint when one exists.

    `penalty` is a regulariser added to the loss (a continual stage's EWC penalty);
    `page_support` scores a GRPO run's cites_page reward. In a distributed run (under
    torchrun) every rank calls this; the Trainer does the rest.
    """
    import torch

    output = Path(config.output_dir)
    checkpoints = output / "checkpoints"
    on_gpu = torch.cuda.is_available()
    precision = choose_precision(config.precision, on_gpu)
    has_val = bool(prepared.val_rows) and config.eval_steps is not None
    steps_per_epoch = math.ceil(
        len(prepared.train_rows) / (config.batch_size * config.gradient_accumulation)
    )
    tokens_per_step = prepared.trained_tokens / max(steps_per_epoch, 1)
    values = training_values(config, checkpoints, precision, has_val, on_gpu, wandb_project)
    values.update(checkpoint_interval(config, steps_per_epoch))
    budget = StopBudget(
        checkpoint_bytes(prepared.model),
        eval_batches=math.ceil(len(prepared.val_rows) / config.batch_size) if has_val else 0,
    )
    from aift.training.progress import ProgressCallback

    progress = ProgressCallback(ctx, output / "metrics.jsonl", tokens_per_step, budget)
    trainer = prepared.trainer = _trainer(
        config, prepared, values, has_val, [progress], penalty, page_support
    )
    prepared.model = trainer.model  # trl wraps a new adapter itself: save what it trains
    _drop_incomplete_checkpoints(ctx, checkpoints)
    resume = _latest_checkpoint(checkpoints)
    if resume:
        ctx.log.info("resuming from %s", resume.name)
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if progress.cancelled:  # the callback stopped the run on a cancel
        raise Cancelled()
    final = _final_metrics(trainer, result, has_val)
    final.update(
        runtime_seconds=time.monotonic() - started,
        precision=precision,
        allocator=allocator_in_use(),
        peak_memory_bytes=peak_memory_bytes(),
        attention=prepared.attention,
        resumed_from=resume.name if resume else None,
        truncated_examples=prepared.truncated,
        supervised_tokens_per_epoch=prepared.supervised_tokens,
        trained_tokens_per_epoch=prepared.trained_tokens,
    )
    ctx.stop_needs(budget.needed(saving=True))  # the final save comes next, timed as before
    return final


def _trainer(
    config: TrainingJobConfig,
    prepared: Prepared,
    values: dict[str, Any],
    has_val: bool,
    callbacks: list[Any],
    penalty: Callable[[], Any] | None,
    page_support: PageSupport | None,
) -> Any:
    """The Trainer of the run's objective: aift's supervised one for demonstrations,
    trl's for preferences and rewards."""
    if config.objective != Objective.sft:
        from aift.training.objectives import build_trainer

        rows = {"train": prepared.train_rows, "val": prepared.val_rows if has_val else []}
        values = {k: v for k, v in values.items() if k != "label_names"}
        return build_trainer(
            config,
            prepared.model,
            prepared.tokenizer,
            rows,
            values,
            callbacks,
            prepared.peft_config,
            page_support,
            penalty,
        )
    from transformers import TrainingArguments

    one_row = values["use_cpu"] and values["per_device_train_batch_size"] == 1
    pass_tokens = CPU_PASS_TOKENS if one_row and config.packing else None
    return supervised_trainer_class(penalty, pass_tokens)(
        model=prepared.model,
        args=TrainingArguments(**values),
        train_dataset=_Rows(prepared.train_rows),
        eval_dataset=_Rows(prepared.val_rows) if has_val else None,
        data_collator=Collator(prepared.tokenizer.pad_token_id, config.packing),
        callbacks=callbacks,
    )


MIN_CHECKPOINT_STEPS = 25  # epochs shorter than this are not each checkpointed


def checkpoint_interval(config: TrainingJobConfig, steps_per_epoch: int) -> dict[str, Any]:
    """When the run saves a checkpoint to resume from: every `save_steps` when set; else
    at each epoch's end, but not more often than every `MIN_CHECKPOINT_STEPS` steps — a
    small dataset's epoch is a step or two, and saving the adapter and optimizer state
    after each took longer than the step itself (a cancel still saves one)."""
    if config.save_steps:
        return {"save_strategy": "steps", "save_steps": config.save_steps}
    if steps_per_epoch < MIN_CHECKPOINT_STEPS:
        return {"save_strategy": "steps", "save_steps": MIN_CHECKPOINT_STEPS}
    return {"save_strategy": "epoch"}


def training_values(
    config: TrainingJobConfig,
    checkpoints: Path,
    precision: str,
    has_val: bool,
    on_gpu: bool,
    wandb_project: str | None,
) -> dict[str, Any]:
    """The Trainer's arguments of a run: schedule, evaluation, checkpoints, precision,
    reporting (TensorBoard in the run folder; W&B when configured) and distribution —
    for transformers' TrainingArguments or a trl config built on them."""
    output = checkpoints.parent
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(output / "tensorboard")  # this job's process
    report_to = reporters(wandb_project)
    if "wandb" in report_to:
        os.environ["WANDB_PROJECT"] = wandb_project or ""
        os.environ.setdefault("WANDB_DIR", str(output))
    rows, accumulation = micro_batches(config, on_gpu)
    return dict(
        output_dir=str(checkpoints),
        per_device_train_batch_size=rows,
        per_device_eval_batch_size=rows,
        gradient_accumulation_steps=accumulation,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of all steps
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        logging_steps=config.logging_steps,
        eval_strategy="steps" if has_val else "no",
        eval_steps=config.eval_steps if has_val else None,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not on_gpu,
        report_to=report_to,
        run_name=output.name,
        remove_unused_columns=False,
        label_names=["labels"],
        prediction_loss_only=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        **distributed_arguments(config, output, on_gpu),
    )


def micro_batches(config: TrainingJobConfig, on_gpu: bool) -> tuple[int, int]:
    """Rows per forward pass and passes per optimizer step.

    A packed row already holds up to `max_length` tokens of several examples, so on a CPU
    each pass takes one row and the step accumulates `batch_size` of them: the same rows
    and the same loss per step (the loss is normalised by the step's label count), but
    the activations of one row at a time: four full rows of SmolLM2-135M in one pass
    held 15.6 GB and ran 1.7× slower (docs/benchmarks.md). GPUs keep whole batches.

    Preference pairs (DPO, ORPO, SimPO) likewise pass one pair at a time on a CPU: their
    loss is a mean over pairs, so accumulating is exact, and each pair is padded only to
    its own longer reply instead of the batch's longest (preference_training.py). KTO
    keeps its batch (its KL estimate pairs prompts with other rows' completions); GRPO
    its groups (sampled together).
    """
    if not on_gpu and (
        (config.packing and config.objective == Objective.sft) or config.objective in PAIRED
    ):
        return 1, config.batch_size * config.gradient_accumulation
    return config.batch_size, config.gradient_accumulation


def _final_metrics(trainer: Any, result: Any, has_val: bool) -> dict[str, Any]:
    """Loss figures of a finished run: training loss, steps, first and last logged loss,
    the last regulariser penalty (continual stages), validation loss."""
    final: dict[str, Any] = {
        "train_loss": result.training_loss,
        "steps": trainer.state.global_step,
    }
    if has_val:
        final["eval_loss"] = trainer.evaluate()["eval_loss"]
    history = [e for e in trainer.state.log_history if "loss" in e]
    if history:
        final["first_loss"], final["last_loss"] = history[0]["loss"], history[-1]["loss"]
    figures = {k: v for k, v in (history[-1] if history else {}).items() if k in OBJECTIVE_FIGURES}
    if figures:  # the last logged figures of a preference or reward objective
        final["objective_metrics"] = figures
    penalties = [e["penalty"] for e in history if "penalty" in e]
    if penalties:
        final["last_penalty"] = penalties[-1]
    return final


def distributed_arguments(config: TrainingJobConfig, output: Path, on_gpu: bool) -> dict[str, Any]:
    """TrainingArguments of a distributed run's strategy (none for a single process)."""
    settings = config.distributed
    if settings is None:
        return {}
    arguments: dict[str, Any] = {"ddp_backend": "nccl" if on_gpu else "gloo"}
    if settings.strategy == "fsdp":
        arguments["fsdp"] = "full_shard auto_wrap"
        arguments["fsdp_config"] = {"auto_wrap_policy": "TRANSFORMER_BASED_WRAP"}
    elif settings.strategy == "deepspeed":
        from aift.training.distributed import DEEPSPEED_FILE

        arguments["deepspeed"] = str(output / DEEPSPEED_FILE)
    return arguments


def _checkpoint_folders(folder: Path) -> list[Path]:
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def _is_complete(checkpoint: Path) -> bool:
    """The Trainer writes trainer_state.json last: without it a save was cut short."""
    return (checkpoint / "trainer_state.json").is_file()


def _latest_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that was saved completely."""
    complete = [p for p in _checkpoint_folders(folder) if _is_complete(p)]
    return complete[-1] if complete else None


def _drop_incomplete_checkpoints(ctx: Work, folder: Path) -> None:
    """Remove checkpoints whose save was cut short (a kill mid-save); they cannot resume."""
    import shutil

    for checkpoint in _checkpoint_folders(folder):
        if not _is_complete(checkpoint):
            ctx.log.warning("removing %s: its save did not finish", checkpoint.name)
            shutil.rmtree(checkpoint, ignore_errors=True)


def finish(
    models: ModelRegistry, config: TrainingJobConfig, prepared: Prepared, metrics: dict[str, Any]
) -> dict[str, Any]:
    """Write the model (or adapter), tokenizer, config, metrics and card; register it."""
    from aift.training.objectives import drop_reference_adapter

    restore_inference_settings(prepared.model)
    drop_reference_adapter(prepared.model)
    model = prepared.model
    if config.objective == Objective.reward and hasattr(model, "merge_and_unload"):
        # a reward model is used whole (GRPO's trainer loads it by its folder): merged
        model = model.merge_and_unload()
    model.save_pretrained(Path(config.output_dir), safe_serialization=True)
    write_run_files(config, prepared.tokenizer, metrics)
    return register_output(models, config, metrics)


def restore_training_settings(prepared: Prepared) -> None:
    """Undo `restore_inference_settings` for more training: no cache, and the packed
    rows' own attention when the run packs."""
    model = prepared.model
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config.use_cache = False
    if prepared.attention == "packed":
        use_packed_attention(base)
    model.train()


def restore_inference_settings(model: Any) -> None:
    """Undo the training-only switches so a saved full model loads as a normal one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config.use_cache = True
    if base.config._attn_implementation != "sdpa":
        base.set_attn_implementation("sdpa")
