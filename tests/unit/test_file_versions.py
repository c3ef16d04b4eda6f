"""The keys of the caches of derived model facts (GGUF summaries, tokenizers,
conversions): a packaged model keeps its key across environments, other files change key
when they change."""

from __future__ import annotations

import os
import site
import sysconfig
from pathlib import Path

import pytest

from aift.models.inspect import file_version, installed_identity


def environment(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site-packages folder holding package `llm_demo` 1.2 with a model file."""
    packages = root / "site-packages"
    (packages / "llm_demo").mkdir(parents=True)
    (packages / "llm_demo-1.2.dist-info").mkdir()
    model = packages / "llm_demo" / "demo.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(packages)])
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(packages))
    return model


def test_a_packaged_file_has_the_same_version_in_every_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = environment(tmp_path / "venv-a", monkeypatch)
    assert installed_identity(first) == "llm_demo-1.2/llm_demo/demo.gguf"
    version = file_version(first)
    os.utime(first, (1, 1))  # reinstalled: a new modification time, the same bytes
    assert file_version(first) == version
    second = environment(tmp_path / "venv-b", monkeypatch)  # another virtual environment
    assert file_version(second) == version


def test_a_new_release_or_another_file_gets_another_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = environment(tmp_path / "venv", monkeypatch)
    version = file_version(model)
    (model.parent.parent / "llm_demo-1.2.dist-info").rename(
        model.parent.parent / "llm_demo-1.3.dist-info"
    )
    assert file_version(model) != version
    model.write_bytes(b"GGUF" + bytes(65))  # another size
    assert file_version(model) != version


def test_files_outside_packages_are_known_by_path_size_and_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment(tmp_path / "venv", monkeypatch)
    loose = tmp_path / "models" / "mine.gguf"
    loose.parent.mkdir()
    loose.write_bytes(b"GGUF" + bytes(64))
    assert installed_identity(loose) is None
    version = file_version(loose)
    os.utime(loose, (1, 1))
    assert file_version(loose) != version
    copy = tmp_path / "models" / "copy.gguf"
    copy.write_bytes(loose.read_bytes())
    os.utime(copy, (1, 1))
    assert file_version(copy) != file_version(loose)
