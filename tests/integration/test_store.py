"""The metadata store on a real SQLite file: migrations, WAL, many processes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from aift.config import Settings
from aift.runtime import Runtime

MIGRATIONS = (
    Path(__file__).resolve().parents[2] / "src" / "aift" / "store" / "migrations" / "versions"
)


def test_migrations_create_the_schema_and_are_idempotent(settings: Settings) -> None:
    runtime = Runtime.start(settings)
    runtime.db.migrate()  # a second start changes nothing
    tables = set(inspect(runtime.db.engine).get_table_names())
    assert {"jobs", "models", "alembic_version"} <= tables
    with runtime.db.engine.connect() as conn:
        head = max(p.name[:4] for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head
    tables = set(inspect(runtime.db.engine).get_table_names())
    assert {"knowledge_bases", "documents", "chunks", "search_history"} <= tables
    with runtime.db.engine.connect() as conn:
        assert conn.execute(text("pragma journal_mode")).scalar() == "wal"
    assert (settings.workspace / "metadata" / "aift.db").exists()


def test_a_job_row_round_trips_with_utc_times(settings: Settings) -> None:
    from aift.work.schemas import JobCreate

    runtime = Runtime.start(settings)
    job = runtime.jobs.submit(JobCreate(kind="system.benchmark", config={"steps": 2}))
    again = runtime.jobs.get(job.id)
    assert again.created_at.tzinfo is not None
    assert again.config == {"steps": 2, "seconds_per_step": 1.0, "matrix_size": 256}
    assert runtime.queue.pending_count() == 1


def test_many_processes_can_start_on_a_fresh_database_at_once(tmp_path) -> None:  # noqa: ANN001
    import subprocess
    import sys

    from tests.integration.conftest import aift_env

    env = aift_env(tmp_path / "ws")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "aift.cli", "jobs", "list", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert '"total": 0' in out


def test_job_state_changes_only_from_the_state_they_start_from(settings: Settings) -> None:
    """Two processes racing on one job: only one claim, one finish, one resume wins."""
    from aift.work.schemas import JobCreate, JobStatus

    runtime = Runtime.start(settings)
    store = runtime.job_store
    job = runtime.jobs.submit(JobCreate(kind="system.benchmark", config={"steps": 1}))
    assert store.claim(job.id, "host-a", 1)
    assert not store.claim(job.id, "host-b", 2), "a running job cannot be claimed again"
    store.report(job.id, progress=0.5, message="half")
    assert store.finish(job.id, JobStatus.cancelled, message="cancelled")
    assert not store.finish(job.id, JobStatus.failed, error="late"), "already ended"
    store.report(job.id, progress=0.9, message="too late")
    ended = store.get(job.id)
    assert (ended.status, ended.progress, ended.message, ended.error) == (
        JobStatus.cancelled,
        0.5,
        "cancelled",
        None,
    )
    assert store.requeue(job.id, JobStatus.cancelled)
    assert not store.requeue(job.id, JobStatus.cancelled), "resumed once"
    again = store.get(job.id)
    assert again.status == JobStatus.queued and again.attempt == 1


def test_every_migration_upgrades_a_database_made_by_the_previous_head(tmp_path: Path) -> None:
    """Each release's database (the head before each migration), holding rows, is
    upgraded by the next migration without losing them, and the last head matches the
    tables the code declares."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from aift.store import Database
    from aift.store.tables import Base

    revisions = sorted(p.name[:4] for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    db = Database(f"sqlite:///{tmp_path / 'aift.db'}")
    db.migrate(revisions[0])
    with db.engine.begin() as conn:  # a job of the first release
        conn.execute(
            text(
                "INSERT INTO jobs (id, kind, title, config, status, progress, message, "
                "resumable, attempt, cancel_requested, created_at, updated_at) VALUES "
                "('j1', 'system.benchmark', 't', '{}', 'succeeded', 1.0, 'done', 0, 1, 0, "
                "'2025-01-01 00:00:00', '2025-01-01 00:00:00')"
            )
        )
    for previous, revision in zip(revisions, revisions[1:], strict=False):
        assert db.revision() == previous
        db.migrate(revision)
        assert db.revision() == revision
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM jobs WHERE id = 'j1'")).scalar() == (
                "succeeded"
            ), f"{revision} lost a row of {previous}"
            if revision > "0011":  # a rebuilt parent table must not cascade into its children
                assert conn.execute(text("SELECT count(*) FROM documents")).scalar() == 1
        if revision == "0011":
            _a_knowledge_base_with_a_document(db)
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert not differences, differences
    db.dispose()


def _a_knowledge_base_with_a_document(db) -> None:  # noqa: ANN001
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO knowledge_bases (id, name, description, embedding_model, "
                "embedding_requested, dimension, chunking, effective_chunk_tokens, generation, "
                "status, created_at, updated_at) VALUES ('k1', 'kb', '', 'e5', 'e5', 384, '{}', "
                "400, 1, 'ready', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO documents (id, kb_id, name, content_type, sha256, size_bytes, path, "
                "pages, ocr_pages, chunks, status, timings, created_at, updated_at) VALUES "
                "('d1', 'k1', 'a.txt', 'text/plain', 's', 1, 'p', 1, 0, 1, 'indexed', '{}', "
                "'2025-01-01 00:00:00', '2025-01-01 00:00:00')"
            )
        )
