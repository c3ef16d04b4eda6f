"""The model manager on real models: sharing, LRU eviction under a budget, failed loads."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from aift.config import load_settings
from aift.errors import ModelUnavailable, NotFound
from aift.inference.schemas import SamplingParams
from aift.runtime import Runtime


@pytest.fixture
def runtime(tmp_path: Path, tiny_chat_model_dir: Path) -> Runtime:
    settings = load_settings(workspace=tmp_path / "ws", offline=True, model_memory_budget_mb=64)
    rt = Runtime.start(settings)
    for name in ("tiny-a", "tiny-b", "tiny-c"):
        shutil.copytree(tiny_chat_model_dir, rt.workspace.models / name)
    broken = rt.workspace.models / "broken"
    shutil.copytree(tiny_chat_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)  # a truncated download
    rt.models.scan()
    yield rt
    rt.close()


def test_a_model_is_loaded_once_for_concurrent_requests(runtime: Runtime) -> None:
    manager = runtime.model_manager
    leases = []

    def grab() -> None:
        leases.append(manager.acquire("tiny-a"))

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert len({id(lease.engine) for lease in leases}) == 1
    assert [m.name for m in manager.loaded()] == ["tiny-a"]
    assert manager.loaded()[0].busy == 6
    for lease in leases:
        lease.release()
    assert manager.loaded()[0].busy == 0


def test_least_recently_used_idle_model_is_evicted(runtime: Runtime) -> None:
    manager = runtime.model_manager
    size = manager.load("tiny-a").memory_bytes
    manager.budget_bytes = int(size * 2.5)  # room for two of them
    manager.load("tiny-b")
    manager.acquire("tiny-a").release()  # tiny-a is now the most recently used
    manager.load("tiny-c")
    assert {m.name for m in manager.loaded()} == {"tiny-a", "tiny-c"}


def test_busy_models_are_not_evicted_and_the_refusal_says_what_to_do(runtime: Runtime) -> None:
    manager = runtime.model_manager
    size = manager.load("tiny-a").memory_bytes
    manager.budget_bytes = int(size * 1.5)
    lease = manager.acquire("tiny-a")
    stream = lease.engine.generate("hello", SamplingParams(max_tokens=200, temperature=0))
    with pytest.raises(Exception, match="AIFT_MODEL_MEMORY_BUDGET_MB"):
        manager.load("tiny-b")
    stream.cancel()
    lease.release()
    assert {m.name for m in manager.loaded()} == {"tiny-a"}


def test_a_failed_load_leaves_the_manager_consistent(runtime: Runtime) -> None:
    manager = runtime.model_manager
    with pytest.raises(ModelUnavailable, match="broken"):
        manager.load("broken")
    assert manager.loaded() == []
    assert manager.load("tiny-a").name == "tiny-a"
    with pytest.raises(NotFound, match="tiny-a"):
        manager.load("tiny-z")
    assert [m.name for m in manager.loaded()] == ["tiny-a"]
    with pytest.raises(NotFound):
        manager.unload("tiny-b")
