"""`aift backup` and `aift restore`: a consistent copy of a workspace, taken while the
server runs, and a new workspace made from one.

What a backup holds: the metadata database (SQLite's online backup API: one consistent
snapshot even while the server and jobs write), then the files its rows point at —
accepted uploads and datasets (`data/`), training runs and exports (`outputs/`),
imported models (`models/`), resumable jobs' state (`metadata/jobs/`). The database is
copied first, so every row's file is there (a file deleted meanwhile is listed in the
manifest). Left out: the vector index (rebuilt on restore from the chunks kept in the
database: the "re-index plan"), logs, uploads being checked, unfinished exports.

A restore fills an empty workspace: files, then the database (migrated up when the
backup is from an earlier release), paths rewritten to the new place, work that was
running marked interrupted, and a `rag.restore_vectors` job queued that embeds the
chunks again, which the server's index owner writes under their old ids.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

from sqlalchemy import text

from aift import __version__
from aift.backup.schemas import MANIFEST, BackupManifest, RestoreResult
from aift.config import Settings
from aift.errors import Conflict, InvalidInput
from aift.store import Database, utcnow
from aift.work.queueing import JobQueueing
from aift.work.schemas import JobCreate, JobStatus
from aift.workspace import Workspace

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

# Workspace folders a backup copies, relative to the workspace root.
COPIED = ("data", "outputs", "models", "metadata/jobs")
DATABASE = "metadata/aift.db"
# Unfinished work that is never copied (an export being written, an upload being checked).
SKIPPED_SUFFIXES = (".partial", ".tmp")
# Columns that hold workspace paths, rewritten when the workspace moves.
PATH_COLUMNS = {
    "jobs": ("log_path", "config", "result"),
    "models": ("path", "details"),
    "documents": ("path",),
}


def _quiet(_message: str, _fraction: float) -> None:
    """A progress callback that shows nothing."""


def sqlite_path(settings: Settings) -> Path:
    """The workspace's SQLite file; other databases have their own backup tools."""
    url = settings.effective_database_url
    if not url.startswith("sqlite:///"):
        raise InvalidInput(
            "aift backup copies SQLite workspaces; this one uses "
            f"{url.split('://', 1)[0]}. Back that database up with its own tool "
            "(pg_dump) and copy data/, outputs/ and models/ beside it."
        )
    return Path(url.removeprefix("sqlite:///"))


def _files(root: Path) -> Iterator[Path]:
    """Every regular file under `root`, skipping unfinished work."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.endswith(SKIPPED_SUFFIXES)]
        for name in names:
            path = Path(folder) / name
            # a link could make the copy read a file outside the tree: never followed
            if not name.endswith(SKIPPED_SUFFIXES) and not path.is_symlink():
                yield path


def _check_destination(dest: Path, workspace: Path) -> None:
    if dest.resolve().is_relative_to(workspace.resolve()):
        raise InvalidInput(f"{dest} is inside the workspace; back it up somewhere else.")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise Conflict(f"{dest} already exists and is not empty; name a new folder.")


def _counts(connection: sqlite3.Connection) -> dict[str, int]:
    counts = {}
    for table in ("models", "datasets", "knowledge_bases", "documents", "chunks", "jobs"):
        try:
            counts[table] = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        except sqlite3.Error:
            counts[table] = 0
    return counts


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    except (sqlite3.Error, TypeError):
        return None


def create_backup(
    settings: Settings, workspace: Workspace, dest: Path, progress: Progress = _quiet
) -> BackupManifest:
    """Copy the workspace into the new folder `dest` while it is in use; returns the
    manifest written there. Written into `dest.partial` and renamed when complete."""
    source_db = sqlite_path(settings)
    if not source_db.is_file():
        raise InvalidInput(f"{workspace.root} has no database yet: nothing to back up.")
    dest = dest.expanduser().resolve()
    _check_destination(dest, workspace.root)
    files = [path for folder in COPIED for path in _files(workspace.root / folder)]
    needed = sum(p.stat().st_size for p in files if p.exists()) + source_db.stat().st_size
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free
    if needed > free:
        raise InvalidInput(
            f"The backup needs about {needed / 1e9:.2f} GB but {dest.parent} has "
            f"{free / 1e9:.2f} GB free."
        )
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "metadata").mkdir(parents=True)
    try:
        progress("database", 0.0)
        manifest = BackupManifest(
            aift_version=__version__, created_at=utcnow(), workspace=str(workspace.root)
        )
        with (
            closing(sqlite3.connect(source_db, timeout=30)) as live,
            closing(sqlite3.connect(partial / DATABASE)) as copy,
        ):
            live.backup(copy)  # one step: a consistent snapshot, writers keep going
            manifest.counts = _counts(copy)
            manifest.database_revision = _revision(copy)
            check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise InvalidInput(f"The database copy failed its integrity check: {check}.")
        copied = 0
        for number, path in enumerate(files):
            target = partial / path.relative_to(workspace.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(path, target)
            except FileNotFoundError:
                manifest.missing.append(str(path.relative_to(workspace.root)))
                continue
            copied += target.stat().st_size
            manifest.files += 1
            if number % 50 == 0:
                progress(f"files {number + 1}/{len(files)}", (number + 1) / max(len(files), 1))
        manifest.bytes = copied + (partial / DATABASE).stat().st_size
        (partial / MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        os.replace(partial, dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    progress("done", 1.0)
    log.info("backup of %s written to %s (%d files)", workspace.root, dest, manifest.files)
    return manifest


def read_manifest(source: Path) -> BackupManifest:
    """The manifest of a backup folder, checked: a clear error for anything else."""
    path = source / MANIFEST
    if not path.is_file():
        raise InvalidInput(f"{source} is not an aift backup (no {MANIFEST}).")
    try:
        manifest = BackupManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidInput(f"{path} is damaged: {exc}") from None
    if manifest.format != BackupManifest.model_fields["format"].default:
        raise InvalidInput(
            f"{source} is a backup of format {manifest.format}; this aift reads format "
            f"{BackupManifest.model_fields['format'].default}. Restore it with a matching release."
        )
    if not (source / DATABASE).is_file():
        raise InvalidInput(f"{source} has no {DATABASE}: the backup is incomplete.")
    return manifest


def _workspace_is_empty(workspace: Workspace, database: Path) -> bool:
    if database.exists() and database.stat().st_size > 0:
        return False
    for folder in ("data", "outputs", "models"):
        path = workspace.root / folder
        if path.exists() and any(path.iterdir()):
            return False
    return True


def restore_files(
    settings: Settings, workspace: Workspace, source: Path, progress: Progress = _quiet
) -> BackupManifest:
    """Copy a backup's files and database into an empty workspace (the first half of a
    restore, before the database is opened)."""
    source = source.expanduser().resolve()
    manifest = read_manifest(source)
    database = sqlite_path(settings)
    if not _workspace_is_empty(workspace, database):
        raise Conflict(
            f"{workspace.root} already holds a workspace; restore into a new folder "
            "(--workspace or AIFT_WORKSPACE) or move this one away first."
        )
    check_backup_paths(source / DATABASE, manifest.workspace)
    files = [p for folder in COPIED for p in _files(source / folder)]
    for number, path in enumerate(files):
        target = workspace.root / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        if number % 50 == 0:
            progress(f"files {number + 1}/{len(files)}", (number + 1) / max(len(files), 1))
    database.parent.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(source / DATABASE)) as backup,
        closing(sqlite3.connect(database)) as live,
    ):
        backup.backup(live)
    return manifest


# Path columns that must name a file of the backed-up workspace (models may also live
# in the model cache or AIFT_MODEL_DIRS; those rows are checked on the new machine).
CONFINED_COLUMNS = {"documents": ("id", "path"), "jobs": ("id", "log_path")}


def _escapes(stored: str | None, root: str) -> bool:
    """Whether a stored absolute path leaves `root` (`..` counted, links not followed:
    the restored workspace is a new tree)."""
    if not stored:
        return False
    normal = os.path.normpath(stored)
    return not (normal == root or normal.startswith(root.rstrip("/") + "/"))


def check_backup_paths(database: Path, old_root: str) -> None:
    """Refuse a backup whose database names files outside its own workspace (a crafted
    or damaged backup would make a restored server read or delete them), before
    anything is copied."""
    root = os.path.normpath(old_root)
    offenders: list[str] = []
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        for table, (key, column) in CONFINED_COLUMNS.items():
            try:
                rows = connection.execute(f"SELECT {key}, {column} FROM {table}").fetchall()
            except sqlite3.Error:
                continue  # an older release without this table
            offenders += [f"{table} {row_id}" for row_id, path in rows if _escapes(path, root)]
    if offenders:
        shown = ", ".join(offenders[:5]) + (" …" if len(offenders) > 5 else "")
        raise InvalidInput(
            f"The backup names files outside its workspace ({len(offenders)}: {shown}); "
            "it is damaged or was altered, and is not restored."
        )


def drop_foreign_models(db: Database, workspace_root: str, allowed: Callable[[Path], bool]) -> int:
    """Forget restored model rows whose path is neither in the workspace nor in a
    folder models may come from on this machine (a scan finds the real ones again)."""
    dropped = 0
    with db.engine.begin() as connection:
        rows = connection.execute(text("SELECT name, path FROM models")).fetchall()
        for name, path in rows:
            if _escapes(path, workspace_root) and not allowed(Path(os.path.normpath(path))):
                connection.execute(text("DELETE FROM models WHERE name = :n"), {"n": name})
                log.warning("restore: model %s points outside the workspace; forgotten", name)
                dropped += 1
    return dropped


def rewrite_paths(db: Database, old_root: str, new_root: str) -> int:
    """Point the rows that name files of the old workspace at the new one."""
    if old_root == new_root:
        return 0
    changed = 0
    with db.engine.begin() as connection:
        for table, columns in PATH_COLUMNS.items():
            for column in columns:
                result = connection.execute(
                    text(
                        f"UPDATE {table} SET {column} = REPLACE({column}, :old, :new) "
                        f"WHERE {column} LIKE :pattern"
                    ),
                    {"old": old_root, "new": new_root, "pattern": f"%{old_root}%"},
                )
                changed += result.rowcount
    return changed


def prepare_restored(db: Database) -> tuple[int, int]:
    """Make the restored database true of its new home: running and queued work is
    interrupted (resume it), chunks of abandoned generations go, and every current
    chunk waits for vectors. Returns (jobs interrupted, chunks to embed)."""
    with db.engine.begin() as connection:
        jobs = connection.execute(
            text(
                "UPDATE jobs SET status = :interrupted, message = :message, "
                "cancel_requested = 0 WHERE status IN (:running, :queued)"
            ),
            {
                "interrupted": JobStatus.interrupted.value,
                "message": "interrupted by the backup; resume it",
                "running": JobStatus.running.value,
                "queued": JobStatus.queued.value,
            },
        ).rowcount
        connection.execute(
            text(
                "DELETE FROM chunks WHERE generation != (SELECT generation FROM "
                "knowledge_bases WHERE knowledge_bases.id = chunks.kb_id)"
            )
        )
        connection.execute(text("UPDATE knowledge_bases SET status = 'ready'"))
        chunks = connection.execute(
            text("UPDATE chunks SET indexed = 0, dense = NULL, sparse = NULL")
        ).rowcount
        connection.execute(
            text("UPDATE documents SET status = 'indexing' WHERE status = 'indexed'")
        )
    return jobs, chunks


def restore_backup(
    settings: Settings,
    workspace: Workspace,
    db_factory: Callable[[], tuple[Database, JobQueueing]],
    source: Path,
    model_path_allowed: Callable[[Path], bool],
    progress: Progress = _quiet,
) -> RestoreResult:
    """Restore `source` into the (empty) workspace; `db_factory` opens the restored
    database once it is in place (migrated to this release); `model_path_allowed` says
    which model folders outside the workspace this machine accepts."""
    manifest = restore_files(settings, workspace, source, progress)
    db, jobs = db_factory()
    progress("database", 0.9)
    rewritten = rewrite_paths(db, manifest.workspace, str(workspace.root))
    drop_foreign_models(db, str(workspace.root), model_path_allowed)
    interrupted, chunks = prepare_restored(db)
    job_id = None
    if chunks:
        job_id = jobs.submit(
            JobCreate(
                kind="rag.restore_vectors",
                title="Embed the restored knowledge bases again",
                config={},
            ),
            internal=True,
        ).id
    progress("done", 1.0)
    return RestoreResult(
        workspace=str(workspace.root),
        manifest=manifest,
        database_revision=db.revision(),
        paths_rewritten=rewritten,
        jobs_interrupted=interrupted,
        chunks_to_embed=chunks,
        job_id=job_id,
    )
