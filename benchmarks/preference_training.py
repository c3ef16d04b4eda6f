"""Preference and reward training on the packaged SmolLM2-135M-Instruct, on this CPU.

Three parts, each run in its own process (so peak memory is that run's alone):

- speed: DPO with LoRA (r 8, all-linear) through aift against plain trl with its
  defaults (DPOConfig's gradient checkpointing, its bf16 default, the model loaded as trl
  loads a path) on the same pairs, batch, steps and learning rate: non-padding tokens/s
  (prompt + both replies) and peak resident memory.
- dpo: does DPO teach a checkable property? Pairs from the SQuAD sample whose chosen
  reply is the answer in one short sentence and whose rejected reply rambles first.
  Before and after: held-out preference accuracy (the model gives the chosen reply the
  higher mean token log-probability) and the rate of greedy answers with the property
  (at most 12 words, no preamble, the gold answer in them).
- grpo: GRPO on two-digit additions with a numeric reward: success
  rate of greedy answers on held-out prompts before and after, and the reward curve.

Run: .venv/bin/python benchmarks/preference_training.py [--part speed|dpo|grpo|all]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402
from training_throughput import _Ctx, bench_config  # noqa: E402

SQUAD = ROOT.parent / "shared" / "data" / "retrieval" / "squad_v2_dev_sample.json"
PREAMBLE = (
    "That is a good question, and it deserves a careful answer. Let me go through the "
    "context step by step before I answer it. Having read it closely, I would say that"
)
LORA = {"rank": 8, "alpha": 16, "dropout": 0.0}


def pairs(n: int, seed: int = 0) -> list[dict]:
    """Preference pairs from SQuAD questions: the answer alone (chosen) or after a
    rambling preamble (rejected); contexts cut to varied lengths."""
    data = json.loads(SQUAD.read_text())["data"]
    rows = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa.get("is_impossible") or not qa["answers"]:
                    continue
                cut = 200 + (len(rows) * 131) % 600
                answer = qa["answers"][0]["text"].strip().rstrip(".")
                prompt = f"Context: {paragraph['context'][:cut]}\nQuestion: {qa['question']}"
                rows.append(
                    {
                        "prompt": [{"role": "user", "content": prompt}],
                        "chosen": [{"role": "assistant", "content": f"{answer}."}],
                        "rejected": [
                            {"role": "assistant", "content": f"{PREAMBLE} {answer.lower()}."}
                        ],
                        "answer": answer,
                    }
                )
    random.Random(seed).shuffle(rows)
    return rows[:n]


def additions(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        question = f"What is {a} + {b}? Reply with the number only."
        rows.append({"prompt": [{"role": "user", "content": question}], "answer": str(a + b)})
    return rows


def model_dir(work: Path) -> Path:
    from aift.models.packaged import SMOLLM2, gguf_to_transformers

    return gguf_to_transformers(SMOLLM2.locate(), work / "smollm2")


def aift_config(folder: Path, out: Path, **values: Any) -> Any:
    """The throughput benchmark's run config outside any workspace, with this one's LoRA."""
    return bench_config(folder, out, lora=LORA, **values)


def aift_train(folder: Path, out: Path, rows: list[dict], **values: Any) -> tuple[Any, dict]:
    """Train through aift's own setup and fit (what the training job runs)."""
    from aift.training import trainer as t

    config = aift_config(folder, out, **values)
    prepared = t.setup(config, {"train": rows, "val": []}, folder)
    started = time.perf_counter()
    metrics = t.fit(_Ctx(), config, prepared)
    metrics["seconds"] = time.perf_counter() - started
    metrics["log"] = prepared.trainer.state.log_history
    return prepared, metrics


def trl_train(
    folder: Path, out: Path, rows: list[dict], steps: int, batch: int, tuned: bool
) -> dict:
    """Plain trl as its docs show it: a model path, DPOConfig's defaults, a LoRA config;
    `tuned`: as a user would set it for this CPU (fp32 unless bf16 is native, no gradient
    checkpointing)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=5e-5,
        max_length=512,
        use_cpu=True,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        **(_tuned() if tuned else {}),
    )
    clock = _budget_clock(BUDGET_SECONDS)
    trainer = DPOTrainer(
        model=str(folder),
        args=args,
        train_dataset=Dataset.from_list(rows),
        peft_config=LoraConfig(
            r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
        callbacks=[clock],
    )
    trainer.train()
    return {
        "seconds": clock.seconds,
        "steps_done": clock.steps,
        "bf16": args.bf16,
        "gradient_checkpointing": args.gradient_checkpointing,
    }


# A peer slower than this many seconds is stopped after the step that crosses it, and
# measured over the steps it finished (bf16 without native support crawls on some CPUs).
BUDGET_SECONDS = 240.0


def _budget_clock(budget: float) -> Any:
    """A Trainer callback timing the steps from the start of training; it stops the run
    after the step that passes `budget` seconds."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        started = 0.0
        seconds = 0.0
        steps = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            self.seconds = time.perf_counter() - self.started
            self.steps = state.global_step
            if self.seconds > budget:
                control.should_training_stop = True
            return control

    return Clock()


def _tuned() -> dict:
    from aift.monitoring.system import cpu_supports_bf16

    return {"bf16": cpu_supports_bf16(), "gradient_checkpointing": False}


def chat_ids(tokenizer: Any, messages: list[dict], **kwargs: Any) -> list[int]:
    """Token ids of messages rendered by the chat template (a list, whatever the
    transformers version returns)."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, **kwargs)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def pair_tokens(folder: Path, rows: list[dict]) -> int:
    """Non-padding tokens of prompt + chosen and prompt + rejected, as the chat template
    renders them."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    total = 0
    for row in rows:
        for reply in ("chosen", "rejected"):
            total += len(chat_ids(tokenizer, row["prompt"] + row[reply]))
    return total


def speed_variant(name: str, work: Path, steps: int, batch: int) -> dict:
    folder = model_dir(work)
    rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in pairs(steps * batch)]
    out = work / f"speed-{name}"
    if name.startswith("trl"):
        stats = trl_train(folder, out, rows, steps, batch, tuned=name == "trl-tuned")
    else:
        _, metrics = aift_train(
            folder,
            out,
            rows,
            objective="dpo",
            max_steps=steps,
            batch_size=batch,
            learning_rate=5e-5,
            max_length=512,
        )
        stats = {"seconds": metrics["seconds"], "precision": metrics["precision"]}
    done = stats.get("steps_done", steps)  # pairs taken in the order trained, about
    stats["tokens"] = round(pair_tokens(folder, rows) * done / steps)
    stats["steps_done"] = done
    stats["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return stats


def mean_logp(model: Any, tokenizer: Any, prompt: list[dict], reply: list[dict]) -> float:
    """Mean log-probability per token of `reply` after `prompt`."""
    import torch

    head = chat_ids(tokenizer, prompt, add_generation_prompt=True)
    full = chat_ids(tokenizer, prompt + reply)
    ids = torch.tensor([full])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    logps = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
    return float(logps[len(head) - 1 :].mean())


def greedy(model: Any, tokenizer: Any, prompt: list[dict], tokens: int) -> str:
    import torch

    ids = torch.tensor([chat_ids(tokenizer, prompt, add_generation_prompt=True)])
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=tokens, do_sample=False)
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()


def has_property(reply: str, answer: str) -> bool:
    """The answer first, in one short sentence: at most 12 words, the gold answer in them."""
    return len(reply.split()) <= 12 and answer.lower() in reply.lower()


def judge(model: Any, tokenizer: Any, held_out: list[dict]) -> dict:
    model.eval()
    prefers = sum(
        mean_logp(model, tokenizer, r["prompt"], r["chosen"])
        > mean_logp(model, tokenizer, r["prompt"], r["rejected"])
        for r in held_out
    )
    replies = [greedy(model, tokenizer, r["prompt"], 40) for r in held_out]
    rate = sum(has_property(reply, r["answer"]) for reply, r in zip(replies, held_out, strict=True))
    return {
        "preference_accuracy": prefers / len(held_out),
        "property_rate": rate / len(held_out),
        "example": replies[0],
    }


def dpo_variant(work: Path, steps: int, losses: list[str]) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = model_dir(work)
    data = pairs(200)
    train, held_out = data[:160], data[160:]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    before = judge(AutoModelForCausalLM.from_pretrained(folder), tokenizer, held_out)
    rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in train]
    prepared, metrics = aift_train(
        folder,
        work / "dpo",
        rows,
        objective="dpo",
        max_steps=steps,
        batch_size=4,
        learning_rate=5e-4,
        max_length=512,
        preference={"loss_type": losses},
    )
    after = judge(prepared.model, prepared.tokenizer, held_out)
    return {
        "losses": losses,
        "before": before,
        "after": after,
        "seconds": metrics["seconds"],
        "steps": steps,
    }


def grpo_variant(work: Path, steps: int) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = model_dir(work)
    train, held_out = additions(256, 1), additions(50, 2)
    tokenizer = AutoTokenizer.from_pretrained(folder)

    def success(model: Any) -> float:
        model.eval()
        from aift.training.rewards import last_number

        hits = 0
        for row in held_out:
            reply = greedy(model, tokenizer, row["prompt"], 12)
            hits += last_number(reply) == float(row["answer"])
        return hits / len(held_out)

    before = success(AutoModelForCausalLM.from_pretrained(folder))
    prepared, metrics = aift_train(
        folder,
        work / "grpo",
        train,
        objective="grpo",
        max_steps=steps,
        batch_size=4,
        learning_rate=2e-4,
        max_length=256,
        grpo={
            "num_generations": 6,
            "max_completion_length": 12,
            "temperature": 0.8,
            "rewards": [{"kind": "numeric"}],
        },
    )
    curve = [round(e["reward"], 3) for e in metrics["log"] if "reward" in e]
    lengths = [round(e["completions/mean_length"], 1) for e in metrics["log"] if "reward" in e]
    return {
        "before": before,
        "after": success(prepared.model),
        "curve": curve,
        "lengths": lengths,
        "seconds": metrics["seconds"],
        "steps": steps,
    }


def child(part: str, variant: str, work: Path, steps: int) -> dict:
    """Run one part (and variant) in a fresh process; its JSON result."""
    command = [
        sys.executable,
        __file__,
        "--child",
        part,
        "--variant",
        variant,
        "--work",
        str(work),
        "--steps",
        str(steps),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{part}/{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report_speed(results: dict[str, dict], steps: int, batch: int) -> str:
    rows = []
    for name, stats in results.items():
        rate = stats["tokens"] / stats["seconds"]
        rows.append(
            f"| {name} | {stats['steps_done']} | {stats['tokens']} | {stats['seconds']:.1f} | "
            f"{rate:.0f} | {stats['peak_rss_gb']:.2f} |"
        )
    rates = {n: s["tokens"] / s["seconds"] for n, s in results.items()}
    plain, tuned, ours = results.values()
    names = list(results)
    return "\n".join(
        [
            "| trainer | steps | tokens (prompt + both replies) | seconds | tokens/s | "
            "peak RSS GB |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"aift / plain trl: {rates[names[2]] / rates[names[0]]:.2f}× the tokens/s (goal "
            f"≥ 1.5×) at {ours['peak_rss_gb'] / plain['peak_rss_gb']:.2f}× its peak memory "
            f"(goal ≤ 1); aift / trl set for this CPU: {rates[names[2]] / rates[names[1]]:.2f}× "
            f"at {ours['peak_rss_gb'] / tuned['peak_rss_gb']:.2f}× the memory. DPO with LoRA "
            f"r 8 on all linear layers, up to {steps} steps of {batch} pairs, the same pairs "
            f"for all (a peer still running after {BUDGET_SECONDS:.0f} s is measured over the "
            f"steps it finished). Plain trl: DPOConfig's defaults (bf16 {plain['bf16']}, "
            f"gradient checkpointing {plain['gradient_checkpointing']}); set for this CPU: "
            f"bf16 {tuned['bf16']}, no gradient checkpointing; aift: {ours['precision']}, one "
            "pair per forward pass.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", default="all", choices=["speed", "dpo", "grpo", "all"])
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--child")
    parser.add_argument("--variant", default="aift")
    parser.add_argument("--work")
    parser.add_argument("--losses", default="sigmoid,sft", help="dpo part: DPO loss types")
    args = parser.parse_args()
    logging.basicConfig(level="WARNING")
    if args.child:
        work = Path(args.work)
        if args.child == "speed":
            result = speed_variant(args.variant, work, args.steps, 4)
        elif args.child == "dpo":
            result = dpo_variant(work, args.steps, args.variant.split(","))
        else:
            result = grpo_variant(work, args.steps)
        print(json.dumps(result))
        return
    work = Path(tempfile.mkdtemp(prefix="aift-pref-bench-"))
    parts = ["speed", "dpo", "grpo"] if args.part == "all" else [args.part]
    for part in parts:
        if part == "speed":
            steps = args.steps or 6
            results = {
                "plain trl (DPOConfig defaults)": child("speed", "trl", work, steps),
                "trl set for this CPU": child("speed", "trl-tuned", work, steps),
                "aift": child("speed", "aift", work, steps),
            }
            results["aift"]["name"] = f"aift ({results['aift']['precision']})"
            body = report_speed(results, steps, 4)
            record(
                "Preference training: DPO speed and memory, aift vs plain trl",
                body,
                "python benchmarks/preference_training.py --part speed",
            )
        elif part == "dpo":
            result = child("dpo", args.losses, work, args.steps or 40)
            body = report_dpo(result)
            record(
                "Preference training: does DPO teach a property",
                body,
                "python benchmarks/preference_training.py --part dpo",
            )
        else:
            result = child("grpo", "aift", work, args.steps or 30)
            body = report_grpo(result)
            record(
                "Preference training: GRPO on two-digit additions",
                body,
                "python benchmarks/preference_training.py --part grpo",
            )
        print(body, flush=True)


def report_dpo(result: dict) -> str:
    before, after = result["before"], result["after"]
    return "\n".join(
        [
            "| model | held-out preference accuracy | answers with the property |",
            "|---|---|---|",
            f"| SmolLM2-135M-Instruct | {before['preference_accuracy']:.0%} | "
            f"{before['property_rate']:.0%} |",
            f"| after DPO, loss {' + '.join(result['losses'])} ({result['steps']} steps, "
            f"{result['seconds']:.0f} s) | "
            f"{after['preference_accuracy']:.0%} | {after['property_rate']:.0%} |",
            "",
            "40 held-out SQuAD questions with context. Preference accuracy: the model gives the "
            "chosen reply (the answer in one sentence) a higher mean token log-probability than "
            "the rejected one (a rambling preamble, then the answer). Property: a greedy answer "
            "of at most 12 words that contains the gold answer. LoRA r 8, batch 4 pairs, "
            f"lr 5e-4, β 0.1. Example answer before: {before['example']!r}; after: "
            f"{after['example']!r}.",
        ]
    )


def report_grpo(result: dict) -> str:
    curve = result["curve"]
    return "\n".join(
        [
            "| model | held-out additions answered right (greedy) |",
            "|---|---|",
            f"| SmolLM2-135M-Instruct | {result['before']:.0%} |",
            f"| after GRPO ({result['steps']} steps, {result['seconds']:.0f} s) | "
            f"{result['after']:.0%} |",
            "",
            f"Mean reward per step (numeric match, sampled at temperature 0.8): {curve}. "
            f"Mean completion length (tokens) per step: {result['lengths']}. "
            '50 held-out prompts "What is a + b? Reply with the number only." with two-digit '
            "a and b; 6 completions of at most 12 tokens per prompt, 4 prompts per step, LoRA "
            "r 8, lr 2e-4.",
        ]
    )


if __name__ == "__main__":
    main()
