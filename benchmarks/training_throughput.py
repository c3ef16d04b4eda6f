"""LoRA training throughput: aift's trainer against the setups a user would pick.

Same model (the packaged SmolLM2-135M-Instruct, converted once), same instruction data
(question + context excerpt → answer, built from ../shared/data's SQuAD sample, so
lengths vary), same LoRA (r=8, all-linear), same optimizer steps, one run. Peers:
- transformers Trainer + PEFT with default settings: fp32, padding to the longest in
  each batch, loss on all tokens;
- trl's SFTTrainer as its docs recommend: packing (best-fit, padding-free: transformers
  masks each packed example from the position ids), loss on the completions only, bf16
  where the CPU has it natively — one packed row of up to 1024 tokens per step, as aift.
aift packs examples with attention per example, computes in bf16 where the CPU has it,
and projects onto the vocabulary only where the next token is an answer token.

Reported: non-padding tokens per second; real FLOP/s — the FLOPs one training step of
each trainer executes (torch's FlopCounterMode on a batch of its own, padding included)
per non-padding token, times its tokens/s — against the machine's matmul peak in the
precision used, measured in the same run; and the loss of each trained model on the same
held-out answers.

Run: .venv/bin/python benchmarks/training_throughput.py [--steps 12]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, matmul_peak, record  # noqa: E402

from aift.models.packaged import SMOLLM2, gguf_to_transformers  # noqa: E402
from aift.training.examples import IGNORE, tokenize_example  # noqa: E402

SQUAD = ROOT.parent / "shared" / "data" / "retrieval" / "squad_v2_dev_sample.json"
BATCH = 4


def examples(n: int) -> list[dict]:
    data = json.loads(SQUAD.read_text())["data"]
    rows = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    continue
                cut = 150 + (len(rows) * 97) % 900  # excerpts of varied length
                rows.append(
                    {
                        "messages": [
                            {
                                "role": "user",
                                "content": f"Context: {paragraph['context'][:cut]}\n"
                                f"Question: {qa['question']}",
                            },
                            {"role": "assistant", "content": qa["answers"][0]["text"]},
                        ]
                    }
                )
                if len(rows) == n:
                    return rows
    return rows


class _Ctx:
    """What aift's trainer reports to when it runs outside a job."""

    log = logging.getLogger("bench")

    def progress(self, *args, **kwargs) -> None: ...
    def metrics(self, *args, **kwargs) -> None: ...
    def stop_needs(self, seconds: float) -> None: ...
    def cancelled(self) -> bool:
        return False


def answer_loss(model, tokenizer, held_out: list[dict]) -> float:  # noqa: ANN001
    """Mean loss on the answer tokens of held-out examples."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for example in held_out:
            item = tokenize_example(tokenizer, example, 1024, "assistant")
            ids = torch.tensor([item.input_ids])
            labels = torch.tensor([item.labels])
            out = model(input_ids=ids, labels=labels)
            n = int((labels[:, 1:] != IGNORE).sum())
            total += float(out.loss) * n
            count += n
    return total / count


def baseline(model_dir: Path, train: list[dict], steps: int, out: Path) -> tuple[dict, object]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    for example in train:
        encoded = tokenizer.apply_chat_template(
            example["messages"], tokenize=True, return_dict=True
        )
        rows.append({"input_ids": list(encoded["input_ids"])})

    def collate(batch: list[dict]) -> dict:
        width = max(len(r["input_ids"]) for r in batch)
        pad = tokenizer.pad_token_id or 0
        ids = [r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in batch]
        mask = [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in batch]
        labels = [
            [t if m else IGNORE for t, m in zip(i, k, strict=True)]
            for i, k in zip(ids, mask, strict=True)
        ]
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "labels": torch.tensor(labels),
        }

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir),
        LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=BATCH,
        max_steps=steps,
        learning_rate=2e-4,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate)
    started = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - started
    mean = sum(len(r["input_ids"]) for r in rows) / len(rows)  # the sampler shuffles
    tokens = int(mean * steps * BATCH)
    return {
        "tokens": tokens,
        "seconds": elapsed,
        "final_loss": trainer.state.log_history[-2].get("loss"),
        "trainer": trainer,
    }, model


def trl_run(
    model_dir: Path, train: list[dict], steps: int, out: Path, bf16: bool
) -> tuple[dict, object]:
    """trl's SFTTrainer: packed (best-fit, padding-free), completion-only loss."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    rows = [{"prompt": e["messages"][:-1], "completion": e["messages"][-1:]} for e in train]
    args = SFTConfig(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=1,
        learning_rate=2e-4,
        max_length=1024,
        packing=True,
        bf16=bf16,
        use_cpu=True,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=Dataset.from_list(rows),
        peft_config=LoraConfig(
            r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
    )
    started = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - started
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    tokens = int(sum(lengths) / len(lengths) * steps)  # packed rows, in shuffled order
    return {
        "tokens": tokens,
        "seconds": elapsed,
        "final_loss": trainer.state.log_history[-2].get("loss"),
        "trainer": trainer,
    }, trainer.model


def step_flops(trainer: object) -> float:
    """FLOPs one training step executes per non-padding token: a batch from the trainer's
    own data loader through its own `training_step` (forward and backward), counted."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = next(iter(trainer.get_train_dataloader()))  # type: ignore[attr-defined]
    if "attention_mask" in batch:
        tokens = int(batch["attention_mask"].sum())
    else:  # packed rows (trl's padding-free, aift's) hold no padding
        tokens = int(batch["input_ids"].numel())
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.training_step(trainer.model, batch)  # type: ignore[attr-defined]
    return counter.get_total_flops() / tokens


def bench_config(model_dir: Path, out: Path, **values: object):  # noqa: ANN201
    """A LoRA run config on the transformers folder `model_dir`, outside any workspace."""
    from aift.models.schemas import ModelFormat, ModelSource, ResolvedModel
    from aift.training.schemas import TrainingJobConfig

    base = ResolvedModel(
        requested="bench",
        name="bench",
        source=ModelSource.local,
        format=ModelFormat.hf,
        path=str(model_dir),
    )
    fixed = {"base_model": "bench", "dataset": "bench", "warmup_ratio": 0.0, "logging_steps": 1}
    return TrainingJobConfig(**fixed, **values, output_dir=str(out), base=base)


def aift_run(model_dir: Path, train: list[dict], steps: int, out: Path) -> tuple[dict, object]:
    from aift.training import trainer as t

    config = bench_config(
        model_dir,
        out,
        max_steps=steps,
        batch_size=1,
        learning_rate=2e-4,
        max_length=1024,
        lora={"rank": 8, "alpha": 16, "dropout": 0.0},
    )
    prepared = t.setup(config, {"train": train, "val": []}, model_dir)
    started = time.perf_counter()
    metrics = t.fit(_Ctx(), config, prepared)
    elapsed = time.perf_counter() - started
    rows_used = prepared.train_rows[:steps]
    tokens = sum(len(r["input_ids"]) for r in rows_used)
    return {
        "tokens": tokens,
        "seconds": elapsed,
        "final_loss": metrics.get("last_loss"),
        "precision": metrics["precision"],
        "trainer": prepared.trainer,
    }, prepared.model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    logging.basicConfig(level="WARNING")
    from aift.monitoring.system import cpu_supports_bf16

    bf16 = cpu_supports_bf16()
    peak = matmul_peak("bfloat16" if bf16 else "float32") * 1e9
    work = Path(tempfile.mkdtemp(prefix="aift-train-bench-"))
    model_dir = gguf_to_transformers(SMOLLM2.locate(), work / "smollm2")
    data = examples(200)
    train, held_out = data[:160], data[160:200]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    runs = {}
    for name, run in (
        ("transformers Trainer + PEFT (fp32, padded)", baseline),
        (f"trl SFTTrainer ({'bf16' if bf16 else 'fp32'}, packed, padding-free)", None),
        ("aift", aift_run),
    ):
        out = work / f"run-{len(runs)}"
        if run is None:
            stats, model = trl_run(model_dir, train, args.steps, out, bf16)
        else:
            stats, model = run(model_dir, train, args.steps, out)
        stats["flops_per_token"] = step_flops(stats.pop("trainer"))
        stats["held_out"] = answer_loss(model, tokenizer, held_out)
        if name == "aift":
            name = f"aift ({stats['precision']}, packed)"
        runs[name] = stats
        print(name, stats, flush=True)
        del model
    peak = max(peak, matmul_peak("bfloat16" if bf16 else "float32") * 1e9)  # and after
    body = _report(runs, peak, bf16, args.steps)
    record(
        "Training: LoRA on SmolLM2-135M, aift vs Trainer + PEFT and trl's SFTTrainer",
        body,
        "python benchmarks/training_throughput.py",
    )
    print(body)


def _report(runs: dict[str, dict], peak: float, bf16: bool, steps: int) -> str:
    rows = []
    for name, stats in runs.items():
        rate = stats["tokens"] / stats["seconds"]
        real = stats["flops_per_token"] * rate
        rows.append(
            f"| {name} | {stats['tokens']} | {stats['seconds']:.1f} | {rate:.0f} | "
            f"{stats['flops_per_token'] / 1e6:.0f} | {real / 1e9:.0f} ({real / peak:.0%}) | "
            f"{stats['held_out']:.3f} |"
        )
    rates = [s["tokens"] / s["seconds"] for s in runs.values()]
    return "\n".join(
        [
            f"Machine peak ({'bf16' if bf16 else 'fp32: no native bf16'}, torch 2048² matmul, "
            f"best of the run's start and end): {peak / 1e9:.0f} GFLOP/s.",
            "",
            "| trainer | tokens trained | seconds | non-padding tokens/s | MFLOP per token "
            "(executed) | real GFLOP/s (of peak) | held-out answer loss |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"aift / trl tokens/s: {rates[2] / rates[1]:.2f}× (goal ≥ 1.5× at equal or lower "
            f"loss); aift / Trainer + PEFT: {rates[2] / rates[0]:.2f}×. {steps} optimizer steps "
            "each: the Trainer takes 4 padded examples per step; trl and aift one packed row "
            "of up to 1024 tokens. MFLOP per token: what one step of each trainer executes "
            "(torch's FlopCounterMode; padding, the vocabulary projection, attention over its "
            "mask and the LoRA backward included) per non-padding token; real GFLOP/s is that "
            "times the tokens/s. Held-out loss: mean loss on the answers of 40 unseen SQuAD "
            "questions, the same for every model.",
        ]
    )


if __name__ == "__main__":
    main()
