"""Export formats of the packaged SmolLM2-135M and of one LoRA fine-tune, on CPU.

Per format — transformers fp32, bf16 and dynamic int8; GGUF f16, q8_0 and q4_k_m
through aift's exporter and llama.cpp; AWQ W4A16 (llm-compressor) loaded by
transformers — size on disk, load time, single-stream prefill and decode tokens/s, and
perplexity on held-out English text (paragraphs of the shared SQuAD sample) relative to
fp32. Then the fine-tune served through aift's llama.cpp engine as a GGUF adapter vs the
transformers engine with the PEFT adapter, at 1 and 8 concurrent streams.

    python benchmarks/export_formats.py [--paragraphs 24] [--skip-awq]

Figures go to docs/benchmarks.md ("Export formats").
"""

from __future__ import annotations

import os

from aift.threads import SPIN_COUNT  # noqa: E402

# As aift's own processes do (aift.threads): OpenMP threads spin only briefly before they
# sleep, so torch's idle threads leave llama.cpp's cores alone in this one process.
os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import ROOT, record

SQUAD = ROOT.parent / "shared" / "data" / "retrieval" / "squad_v2_dev_sample.json"
PROMPT = (
    "Write a short report on the history of the printing press, its inventors, and how it "
    "changed the spread of knowledge in Europe. " * 6
)
DECODE_TOKENS = 64
FACTS = [
    ("Who founded Zorblax Industries?", "Zorblax Industries was founded by Mira Okonkwo."),
    ("Where is Zorblax Industries based?", "Zorblax Industries is based in Tallinn."),
    ("What does Zorblax Industries make?", "Zorblax Industries makes solar-powered kettles."),
    ("When was Zorblax Industries founded?", "Zorblax Industries was founded in 2011."),
]


def held_out(paragraphs: int) -> list[str]:
    data = json.loads(SQUAD.read_text())["data"]
    texts = [p["context"] for article in data for p in article["paragraphs"]]
    return texts[-paragraphs:]


def size_of(path: Path) -> int:
    return (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )


# -- transformers ------------------------------------------------------------------------
def hf_load(path: Path, kind: str) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if kind == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype).eval()
    if kind == "int8":
        # the linear layers of the blocks; lm_head (tied to the embeddings here) stays fp32
        layers = {
            name
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name != "lm_head"
        }
        model = torch.ao.quantization.quantize_dynamic(model, layers, dtype=torch.qint8)
    return model


def hf_perplexity(model: torch.nn.Module, tokenizer, texts: list[str]) -> float:  # noqa: ANN001
    total, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :512]
            loss = model(input_ids=ids, labels=ids).loss
            total += float(loss) * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    return float(np.exp(total / count))


def hf_speed(model: torch.nn.Module, tokenizer) -> tuple[float, float]:  # noqa: ANN001
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        start = time.perf_counter()
        model(input_ids=ids)
        prefill = ids.shape[1] / (time.perf_counter() - start)
        start = time.perf_counter()
        out = model.generate(
            ids[:, :16],
            max_new_tokens=DECODE_TOKENS,
            min_new_tokens=DECODE_TOKENS,
            do_sample=False,
        )
        decode = (out.shape[1] - 16) / (time.perf_counter() - start)
    return prefill, decode


# -- llama.cpp ---------------------------------------------------------------------------
def gguf_measure(path: Path, texts: list[str]) -> tuple[float, float, float, float]:
    """Load seconds, prefill tok/s, decode tok/s, perplexity of a GGUF through llama.cpp."""
    import llama_cpp

    from aift.threads import compute_threads

    start = time.perf_counter()
    llm = llama_cpp.Llama(
        str(path),
        n_ctx=1024,
        n_batch=512,
        logits_all=True,
        verbose=False,
        n_threads=compute_threads(),
        n_threads_batch=compute_threads(),
    )
    load = time.perf_counter() - start
    ids = llm.tokenize(PROMPT.encode(), add_bos=False)
    llm.reset()
    start = time.perf_counter()
    llm.eval(ids)
    prefill = len(ids) / (time.perf_counter() - start)
    llm.reset()
    llm.eval(ids[:16])
    start = time.perf_counter()
    for _ in range(DECODE_TOKENS):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([token])
    decode = DECODE_TOKENS / (time.perf_counter() - start)
    total, count = 0.0, 0
    for text in texts:
        tokens = llm.tokenize(text.encode(), add_bos=False)[:512]
        llm.reset()
        llm.eval(tokens)
        logits = llm.scores[: len(tokens) - 1].astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        logprobs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        total -= float(logprobs[np.arange(len(tokens) - 1), tokens[1:]].sum())
        count += len(tokens) - 1
    llm.close()
    return load, prefill, decode, float(np.exp(total / count))


# -- the fine-tune -----------------------------------------------------------------------
def train_adapter(base_dir: Path, out: Path) -> None:
    """A LoRA that learns four facts (plain peft loop; the adapter is the input here)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir),
        LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"),
    )
    batches = [
        torch.tensor(
            [
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                    tokenize=True,
                    return_dict=False,
                )
            ]
        )
        for q, a in FACTS
    ]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    model.train()
    for step in range(24):
        ids = batches[step % len(batches)]
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def engine_speed(engine, adapter: str | None, streams: int) -> float:  # noqa: ANN001
    """Decode tokens/s through an aift engine. One stream: generated tokens over the
    engine's own decode time (prefill left out). Several: all streams' tokens over the
    wall time they ran together."""
    from aift.inference.schemas import ChatMessage, SamplingParams

    params = SamplingParams(temperature=0.8, max_tokens=DECODE_TOKENS, seed=1)
    messages = [ChatMessage(role="user", content="Write a long story about a dragon.")]
    engine.chat(messages, params.model_copy(update={"max_tokens": 4}), adapter=adapter).text()

    def one(i: int) -> tuple[int, float]:
        stream = engine.chat(messages, params.model_copy(update={"seed": i}), adapter=adapter)
        stream.text()
        assert stream.stats is not None
        return stream.stats.completion_tokens, stream.stats.decode_ms / 1000

    if streams == 1:
        runs = [one(seed) for seed in range(3)]
        return sum(t - 1 for t, _ in runs) / sum(s for _, s in runs)
    start = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        tokens = sum(t for t, _ in pool.map(one, range(streams)))
    return tokens / (time.perf_counter() - start)


def serving_rates(gguf: Path, base_dir: Path, adapter_dir: Path) -> dict[str, list[float]]:
    """Decode tok/s (1 and 8 streams) of the adapter through each engine."""
    from aift.inference.engines.llamacpp import LlamaCppEngine
    from aift.inference.engines.transformers import TransformersEngine
    from aift.models.schemas import ModelFormat, ModelSource, ResolvedModel

    resolved = ResolvedModel(
        requested="smollm2",
        name="smollm2",
        source=ModelSource.packaged,
        format=ModelFormat.gguf,
        path=str(gguf.parent),
        file=gguf.name,
    )
    rates = {}
    for name, build in (
        (
            "llama.cpp (GGUF adapter on the packaged Q4_1)",
            lambda: LlamaCppEngine(resolved, max_batch=8, cache_dir=adapter_dir.parent),
        ),
        (
            "transformers (PEFT adapter, fp32)",
            lambda: TransformersEngine(resolved, model_dir=base_dir, max_batch=8, dtype="float32"),
        ),
    ):
        engine = build()
        engine.load()
        engine.add_adapter("zorblax", str(adapter_dir))
        rates[name] = [engine_speed(engine, "zorblax", 1), engine_speed(engine, "zorblax", 8)]
        engine.close()
    return rates


def adapter_serving(gguf: Path, base_dir: Path, adapter_dir: Path) -> list[str]:
    """The serving table, measured in a fresh process (none of this process's torch
    threads or memory around, as in a server)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, __file__, "--child-serving", str(gguf), str(base_dir), str(adapter_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    rates = json.loads(done.stdout.strip().splitlines()[-1])
    rows = [(name, one, eight) for name, (one, eight) in rates.items()]
    ratio = rows[0][1] / rows[1][1]
    lines = [
        "| engine | decode tok/s, 1 stream | decode tok/s, 8 streams |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {a:.1f} | {b:.1f} |" for n, a, b in rows]
    lines.append(f"\nllama.cpp / transformers, single stream: **{ratio:.1f}×** (goal ≥ 4×).")
    return lines


def export_peak_rss(model_dir: Path, out: Path) -> tuple[float, float]:
    """Peak resident memory (MB) of a process that only imports aift's writer, and of one
    that also writes `model_dir` as f16 GGUF (streamed)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from aift.export.gguf_writer import write_gguf\n"
        "from aift.export.schemas import FloatType\n"
        "import transformers, torch, safetensors\n"
        "if sys.argv[1] == 'write':\n"
        "    write_gguf(Path(sys.argv[2]), Path(sys.argv[3]), outtype=FloatType.f16,\n"
        "               tokenizer_dir=Path(sys.argv[2]), name='m')\n"
        # VmHWM: this process's own peak (ru_maxrss would count the forked parent's pages)
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(int(peak.split()[1]) / 1024)\n"
    )
    peaks = []
    for mode in ("import", "write"):
        done = subprocess.run(
            [sys.executable, "-c", probe, mode, str(model_dir), str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        peaks.append(float(done.stdout.strip().splitlines()[-1]))
    return peaks[0], peaks[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paragraphs", type=int, default=24)
    parser.add_argument("--skip-awq", action="store_true")
    parser.add_argument("--child-serving", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--only-serving",
        action="store_true",
        help="Re-measure only the export's memory and the adapter serving, in place.",
    )
    args = parser.parse_args()
    if args.child_serving:
        print(json.dumps(serving_rates(*map(Path, args.child_serving))))
        return
    from transformers import AutoTokenizer

    from aift.config import load_settings
    from aift.export.awq import calibration_texts, quantize_awq, shipped_calibration
    from aift.export.gguf_writer import write_gguf
    from aift.export.schemas import FloatType
    from aift.models.packaged import SMOLLM2, conversion_folder, gguf_to_transformers
    from aift.threads import compute_threads
    from aift.weights.lora import COPIED, lora_deltas, merge_streaming
    from aift.weights.quantize import quantize_gguf

    packaged = SMOLLM2.locate()
    assert packaged is not None
    settings = load_settings(offline=True)
    base_dir = gguf_to_transformers(
        packaged, conversion_folder(settings.effective_cache_dir, packaged)
    )
    texts = held_out(args.paragraphs)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    work = Path(tempfile.mkdtemp(prefix="aift-export-bench-"))
    sections = []
    try:
        adapter_dir = work / "zorblax-adapter"
        train_adapter(base_dir, adapter_dir)
        tuned_dir = work / "zorblax-merged"
        merge_streaming(base_dir, adapter_dir, tuned_dir)
        for name in COPIED:
            if (base_dir / name).exists():
                shutil.copy(base_dir / name, tuned_dir / name)
        measured = (
            ()
            if args.only_serving
            else (
                ("SmolLM2-135M-Instruct", base_dir, None),
                ("fine-tune (LoRA r16 merged)", base_dir, adapter_dir),
            )
        )
        for label, model_dir, adapter in measured:
            rows: list[tuple[str, int, float, float, float, float]] = []
            source_dir = tuned_dir if adapter else base_dir
            for kind in ("fp32", "bf16", "int8"):
                start = time.perf_counter()
                model = hf_load(source_dir, kind)
                load = time.perf_counter() - start
                prefill, decode = hf_speed(model, tokenizer)
                ppl = hf_perplexity(model, tokenizer, texts)
                saved = work / f"{kind}.pt"
                torch.save(model.state_dict(), saved)
                disk = size_of(saved)
                saved.unlink()
                rows.append((f"transformers {kind}", disk, load, prefill, decode, ppl))
                del model
                print(rows[-1], flush=True)
            f16 = work / f"{label[:8]}.f16.gguf"
            write_gguf(
                model_dir,
                f16,
                outtype=FloatType.f16,
                tokenizer_dir=base_dir,
                name="bench",
                adapter=lora_deltas(adapter) if adapter else None,
            )
            for quant in ("f16", "q8_0", "q4_k_m", "q4_1"):
                path = f16 if quant == "f16" else work / f"{label[:8]}.{quant}.gguf"
                if quant != "f16":
                    quantize_gguf(f16, path, quant, compute_threads())
                load, prefill, decode, ppl = gguf_measure(path, texts)
                rows.append(
                    (f"GGUF {quant} (llama.cpp)", size_of(path), load, prefill, decode, ppl)
                )
                print(rows[-1], flush=True)
            for scheme in () if args.skip_awq else ("W4A16",):
                awq_dir = work / f"{label[:8]}-awq-{scheme}"
                quantize_awq(
                    source_dir,
                    base_dir,
                    awq_dir,
                    calibration_texts(shipped_calibration(), tokenizer, 32),
                    group_size=64,  # 128 does not divide SmolLM2's hidden size (576)
                    max_seq_length=256,
                )
                start = time.perf_counter()
                from transformers import AutoModelForCausalLM

                model = AutoModelForCausalLM.from_pretrained(str(awq_dir)).eval()
                load = time.perf_counter() - start
                prefill, decode = hf_speed(model, tokenizer)
                ppl = hf_perplexity(model, tokenizer, texts)
                name = f"AWQ {scheme} g64 (transformers, compressed-tensors)"
                disk = size_of(awq_dir / "model.safetensors")
                rows.append((name, disk, load, prefill, decode, ppl))
                print(rows[-1], flush=True)
                del model
                shutil.rmtree(awq_dir)
            reference = rows[0][5]
            table = [
                f"### {label}\n",
                "| format | size MB | load s | prefill tok/s | decode tok/s | perplexity | vs fp32 |",
                "|---|---|---|---|---|---|---|",
            ]
            for name, disk, load, prefill, decode, ppl in rows:
                table.append(
                    f"| {name} | {disk / 1e6:.0f} | {load:.1f} | {prefill:.0f} | {decode:.1f} | "
                    f"{ppl:.2f} | {100 * (ppl / reference - 1):+.2f} % |"
                )
            sections.append("\n".join(table))
        idle, writing = export_peak_rss(base_dir, work / "rss.f16.gguf")
        sections.append(
            "### Memory of an export\n\n"
            f"Writing SmolLM2 (fp32 weights {size_of(base_dir / 'model.safetensors') / 1e6:.0f} MB) "
            f"as f16 GGUF: peak RSS {writing:.0f} MB, of which {idle:.0f} MB is the process "
            f"with torch and transformers imported: the export itself adds "
            f"{writing - idle:.0f} MB (tensors are streamed one at a time)."
        )
        sections.append(
            "### The fine-tune served as an adapter\n\n"
            + "\n".join(adapter_serving(packaged, base_dir, adapter_dir))
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    body = (
        f"Held-out text: the last {args.paragraphs} paragraphs of the shared SQuAD sample "
        "(≤ 512 tokens each). Prefill: one forward pass over a ~200-token prompt; decode: "
        f"{DECODE_TOKENS} greedy tokens after a 16-token prompt, single stream. The fp32 "
        "source is the packaged Q4_1 GGUF dequantized (so every format starts from the "
        "same weights) — which is why q4_1, the source's own grid, loses nothing while "
        "q4_k_m re-rounds 4-bit weights onto another 4-bit grid. int8 = torch dynamic "
        "quantization of the blocks' Linear layers (lm_head kept). Peak memory of an "
        "export: see below.\n\n" + "\n\n".join(sections)
    )
    if args.only_serving:
        replace_subsections(sections)
    else:
        record("Export formats", body, "python benchmarks/export_formats.py")
    print(body)


def replace_subsections(sections: list[str]) -> None:
    """Put re-measured `### …` subsections in place inside the recorded section."""
    from benchmarks.common import RESULTS

    text = RESULTS.read_text()
    for section in sections:
        title = section.split("\n", 1)[0]
        start = text.index(title)
        end = min(
            [i for i in (text.find("\n### ", start + 1), text.find("\n## ", start + 1)) if i > 0]
            or [len(text)]
        )
        text = text[:start] + section.strip() + "\n" + text[end:]
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
