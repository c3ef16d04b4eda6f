"""Issue 31: `aift restore` trusted the paths stored in a backup's database — a crafted
backup could make the restored server read or delete any file. The real CLI, a real
workspace and backup, then the backup altered the way an attacker would."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import aift_env

NOW = "2026-01-01 00:00:00"


def cli(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aift.cli", *args],
        env=aift_env(workspace),
        capture_output=True,
        text=True,
        timeout=300,
    )


def backup_of_a_fresh_workspace(tmp_path: Path) -> Path:
    from aift.config import load_settings
    from aift.runtime import Runtime

    workspace = tmp_path / "ws"
    Runtime.start(load_settings(workspace=workspace, offline=True)).close()
    (workspace / "data").mkdir(exist_ok=True)
    (workspace / "data" / "note.txt").write_text("kept")
    dest = tmp_path / "backup"
    done = cli(workspace, "backup", str(dest))
    assert done.returncode == 0, done.stderr
    return dest


def plant_document(backup: Path, path: str) -> None:
    with sqlite3.connect(backup / "metadata" / "aift.db") as db:
        db.execute(
            "INSERT INTO knowledge_bases (id, name, description, embedding_model, "
            "embedding_requested, dimension, chunking, effective_chunk_tokens, generation, "
            "status, created_at, updated_at) VALUES ('kb1', 'kb', '', 'e', 'e', 4, '{}', 64, "
            f"1, 'ready', '{NOW}', '{NOW}')"
        )
        db.execute(
            "INSERT INTO documents (id, kb_id, name, content_type, sha256, size_bytes, path, "
            "ocr_pages, chunks, status, timings, created_at, updated_at) VALUES ('d1', 'kb1', "
            f"'x.txt', 'text/plain', 'h', 1, ?, 0, 0, 'indexed', '{{}}', '{NOW}', '{NOW}')",
            (path,),
        )


def test_a_backup_naming_files_outside_its_workspace_is_refused(tmp_path: Path) -> None:
    backup = backup_of_a_fresh_workspace(tmp_path)
    old_root = (tmp_path / "ws").resolve()
    for planted in ("/etc/passwd", f"{old_root}/data/../../../etc/passwd"):
        altered = tmp_path / f"altered-{len(planted)}"
        subprocess.run(["cp", "-a", str(backup), str(altered)], check=True)
        plant_document(altered, planted)
        target = tmp_path / f"new-{len(planted)}"
        refused = cli(target, "restore", str(altered), "--workspace", str(target))
        assert refused.returncode != 0, refused.stdout
        assert "outside its workspace" in refused.stderr + refused.stdout
        copied = target / "data"
        assert not copied.exists() or not any(copied.iterdir()), "nothing was copied"


def test_links_inside_a_backup_are_never_followed(tmp_path: Path) -> None:
    backup = backup_of_a_fresh_workspace(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the backup")
    (backup / "data" / "evil.txt").symlink_to(secret)
    target = tmp_path / "new"
    restored = cli(target, "restore", str(backup), "--workspace", str(target))
    assert restored.returncode == 0, restored.stderr
    assert (target / "data" / "note.txt").read_text() == "kept"
    assert not (target / "data" / "evil.txt").exists()
