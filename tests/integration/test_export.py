"""GGUF export, GGUF adapters on llama.cpp and AWQ, through real jobs: the exported files
compute what the original computes, carry the chat template, and bad requests are
refused before work starts or leave nothing behind."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

from aift.errors import CapabilityMissing, InvalidInput, NotFound
from aift.export.schemas import ExportRequest, QuantizeRequest
from aift.inference.schemas import SamplingParams
from aift.runtime import Runtime
from tests.integration.conftest import runtime_with_worker, wait_for

PROMPTS = ["Hello there, how", "The quick brown fox", "Numbers: 1, 2, 3,"]


@pytest.fixture(scope="module")
def runtime(
    tiny_chat_model_dir: Path, tiny_adapter_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("export")
    with runtime_with_worker(
        root / "ws", {"tiny": tiny_chat_model_dir, "tiny-adapter": tiny_adapter_dir}
    ) as runtime:
        yield runtime


def finished(runtime: Runtime, job_id: str) -> dict:
    info = wait_for(
        lambda: runtime.jobs.get(job_id).model_dump(mode="json"),
        lambda job: job["status"] in ("succeeded", "failed", "cancelled"),
        timeout=600,
    )
    return info


def greedy_transformers(model: torch.nn.Module, tokenizer, prompt: str, n: int = 6) -> str:  # noqa: ANN001
    """The greedy continuation of `prompt` by transformers, as text."""
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, do_sample=False, min_new_tokens=n)
    return str(tokenizer.decode(out[0, ids.shape[1] :]))


# llama.cpp keeps its KV cache in f16, so long greedy runs of a random model can part at
# near-ties; six tokens (and the logits below) are compared.


def greedy_served(runtime: Runtime, name: str, prompt: str, n: int = 6) -> tuple[str, str]:
    """The greedy continuation of `prompt` through the model manager (the engine the API
    uses), as text, and the engine's name."""
    lease = runtime.model_manager.acquire(name)
    try:
        stream = lease.engine.generate(
            prompt, SamplingParams(temperature=0.0, max_tokens=n), adapter=lease.adapter
        )
        return stream.text(), lease.engine.name
    finally:
        lease.release()


def test_a_float_gguf_and_an_adapter_on_llamacpp_compute_what_transformers_does(
    runtime: Runtime, tiny_chat_model_dir: Path, tiny_adapter_dir: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    job = runtime.export.export(ExportRequest(model="tiny", quant="f32", name="tiny-f32"))
    done = finished(runtime, job.id)
    assert done["status"] == "succeeded", done["error"]
    result = done["result"]
    out = Path(result["output_dir"])
    assert sorted(p.name for p in out.iterdir()) == [
        "Modelfile",
        "export.json",
        "tiny-f32.f32.gguf",
    ]
    assert result["template_check"]["passed"], result["template_check"]
    assert runtime.models.get("tiny-f32").kind.value == "gguf"
    assert not list(runtime.workspace.outputs.glob("*.partial"))

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_chat_model_dir).eval()
    tuned = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_chat_model_dir), str(tiny_adapter_dir)
    ).eval()
    for prompt in PROMPTS:
        ours, engine = greedy_served(runtime, "tiny-f32", prompt)
        assert engine == "llamacpp"
        assert ours == greedy_transformers(base, tokenizer, prompt)

    # The adapter, pointed at the GGUF base, is converted to a GGUF adapter and applied by
    # llama.cpp (not the transformers engine).
    adapter = runtime.workspace.models / "tiny-gguf-adapter"
    shutil.copytree(tiny_adapter_dir, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "tiny-f32"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    runtime.models.scan()
    for prompt in PROMPTS:
        ours, engine = greedy_served(runtime, "tiny-gguf-adapter", prompt)
        assert engine == "llamacpp"
        assert ours == greedy_transformers(tuned, tokenizer, prompt)

    # Requests of the bare model and of the adapter running at the same time are
    # decoded in adapter groups: each gets what it gets alone.
    alone = {
        (name, p): greedy_served(runtime, name, p)[0]
        for name in ("tiny-f32", "tiny-gguf-adapter")
        for p in PROMPTS
    }
    with ThreadPoolExecutor(6) as pool:
        together = dict(
            zip(alone, pool.map(lambda key: greedy_served(runtime, *key)[0], alone), strict=True)
        )
    assert together == alone


def test_an_adapter_exports_merged_on_the_fly(
    runtime: Runtime, tiny_chat_model_dir: Path, tiny_adapter_dir: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    job = runtime.export.export(ExportRequest(model="tiny-adapter", quant="f32", name="tuned-f32"))
    done = finished(runtime, job.id)
    assert done["status"] == "succeeded", done["error"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model_dir)
    tuned = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_chat_model_dir), str(tiny_adapter_dir)
    ).eval()
    for prompt in PROMPTS:
        assert greedy_served(runtime, "tuned-f32", prompt)[0] == greedy_transformers(
            tuned, tokenizer, prompt
        )


def test_the_ollama_hand_off_uploads_creates_and_the_model_answers(
    runtime: Runtime,
    server_factory,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    """The export job talks Ollama's API (/api/blobs, /api/create, /api/chat) with the
    official client; the target here is a second aift server, whose Ollama-compatible
    API implements those endpoints (no Ollama binary installs on this machine)."""
    import ollama

    from aift.export.service import ExportService

    target = server_factory(tmp_path / "target")
    service = ExportService(
        runtime.settings.model_copy(update={"ollama_url": target.url}),
        runtime.workspace,
        runtime.jobs,
        runtime.models,
        runtime.datasets,
    )
    job = service.export(
        ExportRequest(
            model="tiny",
            quant="q8_0",
            name="tiny-for-ollama",
            ollama="tiny-chat:v1",
            system="You are terse.",
            parameters={"temperature": 0.3},
        )
    )
    done = finished(runtime, job.id)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["ollama_model"] == "tiny-chat:v1"
    assert isinstance(done["result"]["ollama_reply"], str)  # a random model: any text

    client = ollama.Client(host=target.url, timeout=300)
    assert "tiny-chat-v1" in {m.model for m in client.list().models}
    reply = client.chat(
        model="tiny-chat:v1",
        messages=[{"role": "user", "content": "Hi"}],
        options={"num_predict": 5, "temperature": 0},
    )
    assert reply.done and reply.eval_count
    # What Ollama received is what the Modelfile beside the GGUF says (`ollama create -f`
    # reads the same TEMPLATE, stops, SYSTEM and PARAMETERs).
    ours = (runtime.workspace.outputs / "tiny-for-ollama" / "Modelfile").read_text()
    created = (target.workspace / "models" / "tiny-chat-v1" / "Modelfile").read_text()
    assert sorted(ours.splitlines()) == sorted(created.splitlines())
    assert 'SYSTEM """You are terse."""' in ours and "PARAMETER temperature 0.3" in ours
    assert 'PARAMETER stop "<|im_end|>"' in ours

    # A blob whose bytes do not match its digest is refused, and nothing is kept.
    bad = "sha256:" + "0" * 64
    response = httpx.post(f"{target.url}/api/blobs/{bad}", content=b"not this")
    assert response.status_code == 422 and "digest" in response.json()["error"]
    assert httpx.head(f"{target.url}/api/blobs/{bad}").status_code == 404
    refused = httpx.post(
        f"{target.url}/api/create",
        json={"model": "nope", "files": {"x.gguf": bad}, "stream": False},
    )
    assert refused.status_code == 404 and "upload" in refused.json()["error"]


def test_bad_exports_are_refused_before_work_or_leave_nothing(runtime: Runtime) -> None:
    with pytest.raises(NotFound):
        runtime.export.export(ExportRequest(model="no-such-model"))
    with pytest.raises(ValueError, match="unknown quantization"):
        ExportRequest(model="tiny", quant="q9_9")
    with pytest.raises(CapabilityMissing, match="AIFT_OLLAMA_URL"):
        runtime.export.export(ExportRequest(model="tiny", quant="q8_0", ollama="tiny:latest"))
    with pytest.raises(InvalidInput, match="valid Ollama model name"):
        runtime.export.export(ExportRequest(model="tiny", ollama="../../etc"))
    (runtime.workspace.outputs / "taken").mkdir()
    with pytest.raises(InvalidInput, match="already exists"):
        runtime.export.export(ExportRequest(model="tiny", quant="f32", name="taken"))
    with pytest.raises(InvalidInput, match="no usable characters"):
        runtime.export.export(ExportRequest(model="tiny", name="../.."))
    embedding = next(m for m in runtime.models.list() if m.kind.value == "embedding")
    with pytest.raises(InvalidInput, match="language models"):
        runtime.export.export(ExportRequest(model=embedding.name))

    # Not enough disk or memory: refused before a job exists.
    import shutil as shell_utils
    from collections import namedtuple

    import psutil

    jobs_before = runtime.jobs.list().total
    usage = namedtuple("usage", "total used free")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shell_utils, "disk_usage", lambda path: usage(10**12, 10**12, 10**6))
        with pytest.raises(InvalidInput, match="Not enough disk space"):
            runtime.export.export(ExportRequest(model="tiny", quant="f16", name="no-room"))
    with pytest.MonkeyPatch.context() as patch:
        memory = psutil.virtual_memory()._replace(available=1000)
        patch.setattr(psutil, "virtual_memory", lambda: memory)
        with pytest.raises(InvalidInput, match="Not enough memory"):
            runtime.export.quantize(QuantizeRequest(model="tiny", name="no-memory"))
    with pytest.raises(InvalidInput, match="does not divide"):
        runtime.export.quantize(QuantizeRequest(model="tiny", group_size=48))
    assert runtime.jobs.list().total == jobs_before

    # An architecture llama.cpp's writer does not take.
    gpt2 = runtime.workspace.models / "gpt2-tiny"
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)).save_pretrained(gpt2)
    runtime.models.scan()
    with pytest.raises(InvalidInput, match="GPT2LMHeadModel"):
        runtime.export.export(ExportRequest(model="gpt2-tiny"))

    # Broken weights: the job fails, and nothing is registered or left on disk.
    broken = runtime.workspace.models / "broken"
    shutil.copytree(runtime.workspace.models / "tiny", broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    runtime.models.scan()
    job = runtime.export.export(ExportRequest(model="broken", quant="q8_0", name="broken-out"))
    done = finished(runtime, job.id)
    assert done["status"] == "failed"
    assert not (runtime.workspace.outputs / "broken-out").exists()
    assert not list(runtime.workspace.outputs.glob("broken-out*"))
    with pytest.raises(NotFound):
        runtime.models.get("broken-out")


def test_awq_writes_a_compressed_checkpoint_close_to_the_original(
    runtime: Runtime, tiny_chat_model_dir: Path
) -> None:
    from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    job = runtime.export.quantize(
        QuantizeRequest(
            model="tiny", samples=16, name="tiny-awq", group_size=32, max_seq_length=128
        )
    )
    done = finished(runtime, job.id)
    assert done["status"] == "succeeded", done["error"]
    out = Path(done["result"]["output_dir"])
    config = json.loads((out / "config.json").read_text())
    quant = config["quantization_config"]
    assert quant["quant_method"] == "compressed-tensors"
    assert quant["config_groups"]["group_0"]["weights"]["num_bits"] == 4

    original = AutoModelForCausalLM.from_pretrained(tiny_chat_model_dir).state_dict()
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        for layer in range(2):
            prefix = f"model.layers.{layer}"
            norm = handle.get_tensor(f"{prefix}.input_layernorm.weight")
            for proj in ("q_proj", "k_proj", "v_proj"):
                key = f"{prefix}.self_attn.{proj}"
                shape = torch.Size(handle.get_tensor(f"{key}.weight_shape").tolist())
                ints = unpack_from_int32(handle.get_tensor(f"{key}.weight_packed"), 4, shape)
                scale = handle.get_tensor(f"{key}.weight_scale")
                assert scale.shape == (shape[0], shape[1] // 32) and bool((scale > 0).all())
                assert int(ints.min()) >= -8 and int(ints.max()) <= 7
                weight = ints.float() * scale.repeat_interleave(32, dim=1)
                # AWQ moves a per-channel scale between the norm and the projection: the
                # product (what the layer computes) is what must stay close.
                before = original[f"{key}.weight"] * original[f"{prefix}.input_layernorm.weight"]
                after = weight * norm
                error = (after - before).norm() / before.norm()
                assert error < 0.15, (key, float(error))
    assert done["result"]["sample"] is not None
    assert runtime.models.get("tiny-awq").details["quantization"] == "awq-W4A16"


@pytest.mark.packaged_models
def test_the_packaged_smollm2_as_q8_0_answers_like_transformers_with_its_template(
    runtime: Runtime, smollm2_transformers_dir: Path
) -> None:
    import numpy as np
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from transformers import AutoTokenizer

    from aift.export.modelfile import PROBE_CONVERSATIONS
    from aift.inference.engines.llamacpp import LlamaCppEngine
    from aift.inference.engines.transformers import TransformersEngine
    from aift.inference.schemas import ChatMessage
    from aift.models.registry import resolved_entry
    from tests.integration.test_engine_agreement import PROMPTS as QUESTIONS
    from tests.integration.test_engine_agreement import first_logits

    job = runtime.export.export(
        ExportRequest(model="SmolLM2-135M-Instruct", quant="q8_0", name="smol-q8")
    )
    done = finished(runtime, job.id)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["template_check"]["passed"], done["result"]["template_check"]
    exported = resolved_entry(runtime.models.get("smol-q8"))
    assert exported.file == "smol-q8.q8_0.gguf"

    # The chat template round-trips: the GGUF's renders conversations as the tokenizer's.
    tokenizer = AutoTokenizer.from_pretrained(smollm2_transformers_dir)
    llama = LlamaCppEngine(exported, max_batch=1)
    llama.load()
    hf = TransformersEngine(
        exported, model_dir=smollm2_transformers_dir, max_batch=1, dtype="float32"
    )
    hf.load()
    try:
        formatter = Jinja2ChatFormatter(
            template=llama.chat_template(), eos_token="<|im_end|>", bos_token="<|im_start|>"
        )
        for _, messages in PROBE_CONVERSATIONS:
            assert formatter(messages=messages).prompt == tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        # Greedy answers through llama.cpp begin as transformers' do.
        greedy = SamplingParams(temperature=0, max_tokens=6)
        same = same_first = 0
        for question in QUESTIONS:
            messages = [ChatMessage(role="user", content=question)]
            ids = llama.tokenize(llama.render_chat(messages))
            assert ids == hf.tokenize(hf.render_chat(messages))
            a, b = first_logits(llama, ids), first_logits(hf, ids)
            assert np.corrcoef(a, b)[0, 1] > 0.995, question
            top = np.sort(b)[-2:]
            if top[1] - top[0] > 0.3:  # a clear winner: quantization noise cannot flip it
                assert int(np.argmax(a)) == int(np.argmax(b)), question
            same_first += int(np.argmax(a)) == int(np.argmax(b))
            same += llama.chat(messages, greedy).text() == hf.chat(messages, greedy).text()
        # q8_0 weights and llama.cpp's 8-bit activations flip near-ties of this small model
        # (the packaged Q4_1 file does the same): most answers still begin alike.
        assert same_first >= len(QUESTIONS) - 2, f"{same_first} first tokens alike"
        assert same >= 3, f"only {same} of {len(QUESTIONS)} answers began alike"
    finally:
        llama.close()
        hf.close()
