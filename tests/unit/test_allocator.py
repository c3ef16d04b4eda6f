"""Job processes get jemalloc preloaded when it is asked for and installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aift import allocator
from aift.allocator import job_environment


def test_jemalloc_is_preloaded_before_what_was_there(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: "/lib/libjemalloc.so.2")
    env = job_environment({"LD_PRELOAD": "/lib/other.so", "PATH": "/bin"}, "jemalloc")
    assert env["LD_PRELOAD"] == "/lib/libjemalloc.so.2:/lib/other.so" and env["PATH"] == "/bin"
    again = job_environment(env, "jemalloc")
    assert again["LD_PRELOAD"] == "/lib/libjemalloc.so.2:/lib/other.so", "not twice"


def test_the_system_allocator_or_none_installed_leaves_the_environment(monkeypatch) -> None:  # noqa: ANN001
    assert "LD_PRELOAD" not in job_environment({"PATH": "/bin"}, "system")
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: None)
    assert job_environment({"PATH": "/bin"}, "jemalloc") == {"PATH": "/bin"}


@pytest.mark.skipif(allocator.jemalloc_library() is None, reason="jemalloc is not installed")
def test_a_process_started_with_the_environment_runs_on_jemalloc() -> None:
    env = job_environment({}, "jemalloc")
    code = "from aift.allocator import allocator_in_use; print(allocator_in_use())"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "jemalloc"
    plain = subprocess.run(
        [sys.executable, "-c", code], env={}, capture_output=True, text=True, check=True
    )
    assert plain.stdout.strip() == "system"


def test_a_jemalloc_preload_can_be_taken_out_again() -> None:
    from aift.allocator import without_jemalloc

    both = {"LD_PRELOAD": "/lib/libjemalloc.so.2:/lib/other.so", "PATH": "/bin"}
    assert without_jemalloc(both) == {"LD_PRELOAD": "/lib/other.so", "PATH": "/bin"}
    assert without_jemalloc({"LD_PRELOAD": "/lib/libjemalloc.so.2"}) == {}
    assert without_jemalloc({"PATH": "/bin"}) == {"PATH": "/bin"}
