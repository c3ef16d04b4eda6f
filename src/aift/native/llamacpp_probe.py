"""`python -m aift.native.llamacpp_probe MODEL.gguf`: can this machine run llama.cpp's
CPU code as loaded (GGML_BACKEND_PATH names the variant)?

Loads the backend and the model, then prefills a short prompt and decodes a few tokens
with it — the work that died of SIGILL on a VM advertising AMX. Exit 0: it runs;
3: the CPU lacks the variant's features (llama.cpp refused it); 4: the model did not
load; killed by a signal: the code cannot run here. Meant to run as a throwaway child.
"""

from __future__ import annotations

import ctypes
import sys

from aift.native.llamacpp_backend import PROBE_NO_MODEL, PROBE_UNSUPPORTED, ggml_library

PROMPT = b"The capital of Germany is Berlin. The capital of France is"


def probe(model_path: str) -> int:
    """Exit code for the parent (see the module's docstring)."""
    import llama_cpp
    from llama_cpp import _internals as internals

    llama_cpp.llama_backend_init()
    if not _has_cpu_device():
        print("llama.cpp loaded no CPU backend (the CPU lacks this variant)", file=sys.stderr)
        return PROBE_UNSUPPORTED
    try:
        model = internals.LlamaModel(
            path_model=model_path, params=llama_cpp.llama_model_default_params(), verbose=False
        )
    except ValueError as exc:
        print(f"could not load {model_path}: {exc}", file=sys.stderr)
        return PROBE_NO_MODEL
    params = llama_cpp.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_threads, params.n_threads_batch = 128, 64, 2, 2
    ctx = internals.LlamaContext(model=model, params=params, verbose=False)
    batch = internals.LlamaBatch(n_tokens=64, embd=0, n_seq_max=1, verbose=False)
    tokens = list(model.tokenize(PROMPT, True, False))
    batch.set_batch(tokens, n_past=0, logits_all=False)
    ctx.decode(batch)
    for step in range(4):  # decode one token at a time, as serving does
        batch.set_batch([tokens[-1]], n_past=len(tokens) + step, logits_all=True)
        ctx.decode(batch)
    return 0


def _has_cpu_device() -> bool:
    """Whether a CPU device is registered (ggml's registry)."""
    ggml = ggml_library()
    if ggml is None:  # a build with the CPU code linked in
        return True
    ggml.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    return bool(ggml.ggml_backend_dev_by_type(0))  # GGML_BACKEND_DEVICE_TYPE_CPU


if __name__ == "__main__":
    sys.exit(probe(sys.argv[1]))
