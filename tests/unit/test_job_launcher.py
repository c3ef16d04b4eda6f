"""How the worker starts job processes: forks of the fork server unless a GPU is
visible or the setting is off."""

from __future__ import annotations

from pathlib import Path

import pytest

from aift.jobs import launcher
from aift.jobs.launcher import JobLauncher
from aift.procutil import job_process_name


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
