"""Each doctor check on the states a machine can be in: what it says, and the fix."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

from aift.config import load_settings
from aift.doctor import checks
from aift.doctor.schemas import CheckStatus
from aift.rag.ocr import tesseract

Usage = namedtuple("Usage", "total used free")
GIB = 1024**3


def settings(tmp_path: Path, **values: object):  # noqa: ANN201
    return load_settings(workspace=tmp_path / "ws", offline=True, **values)


def test_a_nearly_full_disk_fails_and_a_tight_one_warns(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda _: Usage(100 * GIB, 0, GIB // 2))
    full = checks.check_disk(settings(tmp_path))
    assert full.status == CheckStatus.fail and "AIFT_WORKSPACE" in (full.fix or "")
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda _: Usage(100 * GIB, 0, 5 * GIB))
    assert checks.check_disk(settings(tmp_path)).status == CheckStatus.warn
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda _: Usage(100 * GIB, 0, 50 * GIB))
    assert checks.check_disk(settings(tmp_path)).status == CheckStatus.ok


def test_ocr_without_the_korean_pack_warns_with_the_package_to_install(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(checks.shutil, "which", lambda _: "/usr/bin/tesseract")
    monkeypatch.setattr(tesseract, "installed_packs", lambda _: frozenset({"eng"}))
    found = checks.check_ocr(settings(tmp_path, ocr_languages=["en", "ko"]))
    assert found.status == CheckStatus.warn and "cannot read ko" in found.summary
    assert found.fix == "apt-get install tesseract-ocr tesseract-ocr-kor"
    forced = checks.check_ocr(settings(tmp_path, ocr_languages=["ko"], ocr_engine="tesseract"))
    assert forced.status == CheckStatus.fail
    english = checks.check_ocr(settings(tmp_path, ocr_languages=["en"]))
    assert english.status == CheckStatus.ok and "eng" in english.summary


def test_ocr_without_tesseract_reads_latin_scripts_with_rapidocr(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(checks.shutil, "which", lambda _: None)
    found = checks.check_ocr(settings(tmp_path, ocr_languages=["en", "de"]))
    assert found.status == CheckStatus.ok and "rapidocr" in found.summary


def test_unconfigured_services_are_fine_and_a_dead_one_is_named_without_its_password(
    tmp_path: Path,
) -> None:
    quiet = checks.check_services(settings(tmp_path))
    assert [c.status for c in quiet] == [CheckStatus.ok] * 3
    dead = checks.check_services(settings(tmp_path, ollama_url="http://user:s3cret@127.0.0.1:9/"))
    ollama = next(c for c in dead if c.name == "service:ollama")
    assert ollama.status == CheckStatus.fail and "127.0.0.1:9" in ollama.summary
    assert "s3cret" not in ollama.model_dump_json()
