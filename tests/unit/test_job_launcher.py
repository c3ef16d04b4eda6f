"""How the worker starts job processes: forks of the fork server unless a GPU is
visible or the setting is off."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from aift.jobs import launcher
from aift.jobs.launcher import JobLauncher
from aift.procutil import job_process_name, kill_job_process


def test_jobs_fork_on_a_machine_without_a_gpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(launcher, "GPU_DEVICE_NODES", (str(tmp_path / "nvidiactl"),))
    assert JobLauncher(fork_server=True).forking
    assert not JobLauncher(fork_server=False).forking


def test_a_visible_gpu_means_fresh_interpreters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    node = tmp_path / "nvidiactl"
    node.touch()
    monkeypatch.setattr(launcher, "GPU_DEVICE_NODES", (str(node),))
    assert not JobLauncher(fork_server=True).forking


def test_a_job_process_name_fits_the_kernels_fifteen_characters() -> None:
    job_id = "0123456789abcdef0123456789abcdef"
    assert job_process_name(job_id) == "job-0123456789a"
    assert len(job_process_name(job_id)) == 15


def test_a_forked_job_is_found_by_its_name_and_no_other_process_is() -> None:
    job_id = "feedc0de" * 4
    named = (
        "import time; from aift.procutil import job_process_name, name_process; "
        f"name_process(job_process_name({job_id!r})); print('named', flush=True); "
        "time.sleep(120)"
    )
    process = subprocess.Popen([sys.executable, "-c", named], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"named\n"
        assert psutil.Process(process.pid).name() == job_process_name(job_id)
        kill_job_process(process.pid, "0" * 32)  # another job's id: left alone
        time.sleep(0.2)
        assert process.poll() is None
        kill_job_process(process.pid, job_id)
        assert process.wait(timeout=30) < 0
    finally:
        process.kill()
        process.wait()
