"""Training datasets: accept an upload, validate every row, split, store, describe.

An upload is checked in `temp_uploads/` and moves to `data/datasets/<id>/` only when it
is accepted: the original file, `train.jsonl` and `val.jsonl` (canonical examples) and a
row in the database with counts and token statistics. The same file uploaded twice with
the same options is stored once.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import random
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from aift.config import Settings
from aift.errors import Forbidden, InvalidInput, NotFound
from aift.models.resolver import ModelResolver
from aift.models.tokenizers import load_tokenizer, render
from aift.store import Database, utcnow
from aift.store.access import access_of, visible
from aift.store.tables import DatasetDraftRow, DatasetRow, ShareRow
from aift.training.formats import detect_format, normalise, read_rows
from aift.training.schemas import (
    DatasetFormat,
    DatasetInfo,
    DatasetOptions,
    DatasetReport,
    RowError,
    TokenStats,
)
from aift.work.actor import current_actor
from aift.workspace import Workspace, safe_name

log = logging.getLogger(__name__)

PREVIEW_ROWS = 3
STATS_SAMPLE = 2000
ERRORS_SHOWN = 100


class DatasetService:
    """Adds, lists, describes and deletes training datasets."""

    def __init__(
        self, settings: Settings, db: Database, workspace: Workspace, resolver: ModelResolver
    ) -> None:
        self.settings = settings
        self.db = db
        self.workspace = workspace
        self.resolver = resolver
        self.root = workspace.data / "datasets"

    # -- adding -------------------------------------------------------------------------
    def add(
        self,
        upload: Path,
        original_name: str,
        options: DatasetOptions,
        val_upload: Path | None = None,
    ) -> DatasetReport:
        """Validate and store an uploaded file (and an optional validation file)."""
        limit = self.settings.max_upload_mb * 1024 * 1024
        size = upload.stat().st_size
        if size > limit:
            raise InvalidInput(
                f"The file is {size / 1e6:.0f} MB; the limit is "
                f"{self.settings.max_upload_mb} MB (AIFT_MAX_UPLOAD_MB)."
            )
        if options.base_model:
            load_tokenizer(self.resolver, options.base_model)  # an unknown model fails first
        digest = _sha256(upload, val_upload, options)
        existing = self._by_hash(digest)
        if existing is not None:
            return DatasetReport(dataset=existing, preview=self.preview(existing.id))
        fmt, train, val_examples, errors = self._examples(upload, val_upload, options)
        stats = self._token_stats(train + val_examples, options)
        dataset_id = uuid.uuid4().hex
        name = safe_name(options.name or Path(original_name).stem or "dataset")
        folder = self._store_files(dataset_id, upload, original_name, train, val_examples)
        row = DatasetRow(
            id=dataset_id,
            name=name,
            format=fmt.value,
            source_file=safe_name(original_name),
            size_bytes=size,
            sha256=digest,
            rows_train=len(train),
            rows_val=len(val_examples),
            rows_skipped=len(errors),
            stats=stats,
            created_at=utcnow(),
            owner_id=current_actor.get().user_id,
        )
        self._insert(row, folder)
        info = self.get(dataset_id)
        log.info(
            "dataset %s (%s): %d train, %d val, %d skipped",
            name,
            fmt.value,
            len(train),
            len(val_examples),
            len(errors),
        )
        return DatasetReport(
            dataset=info, errors=errors[:ERRORS_SHOWN], preview=self.preview(dataset_id)
        )

    def _examples(
        self, upload: Path, val_upload: Path | None, options: DatasetOptions
    ) -> tuple[DatasetFormat, list[dict], list[dict], list[RowError]]:
        """The file's rows read, checked and normalised, then split into train and
        validation (or validated against the separate validation file): (format,
        train, validation, errors of skipped rows)."""
        rows = read_rows(upload)
        if not rows:
            raise InvalidInput("The dataset has no rows.")
        fmt = options.format or detect_format(rows)
        examples, errors = normalise(rows, fmt)
        self._refuse_errors(errors, len(rows), options.skip_invalid)
        if not examples:
            raise InvalidInput("No row of the dataset is usable.")
        if val_upload is None:
            train, val_examples = split(examples, options.val_ratio, options.seed)
            return fmt, train, val_examples, errors
        val_examples, val_errors = normalise(read_rows(val_upload), fmt)
        self._refuse_errors(
            [RowError(row=e.row, reason=f"validation file: {e.reason}") for e in val_errors],
            len(val_examples) + len(val_errors),
            options.skip_invalid,
        )
        return fmt, examples, val_examples, errors

    def _store_files(
        self,
        dataset_id: str,
        upload: Path,
        original_name: str,
        train: list[dict],
        val_examples: list[dict],
    ) -> Path:
        """The dataset's folder (source file, train.jsonl, val.jsonl), written aside and
        moved into place whole."""
        folder = self.root / dataset_id
        staging = self.workspace.temp_uploads / f"dataset-{dataset_id}"
        staging.mkdir(parents=True)
        try:
            suffix = safe_name(Path(original_name).suffix.lstrip(".") or "data")
            shutil.copyfile(upload, staging / f"source.{suffix}")
            _write_jsonl(staging / "train.jsonl", train)
            _write_jsonl(staging / "val.jsonl", val_examples)
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging.replace(folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return folder

    @staticmethod
    def _refuse_errors(errors: list[RowError], total: int, skip_invalid: bool) -> None:
        if errors and not skip_invalid:
            shown = "; ".join(e.reason for e in errors[:3])
            more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
            raise InvalidInput(
                f"{len(errors)} of {total} rows cannot be used: {shown}{more}. Fix them, or "
                "upload with skip_invalid to keep only the valid rows.",
                details=[e.model_dump() for e in errors[:ERRORS_SHOWN]],
            )

    def _token_stats(self, examples: list[dict], options: DatasetOptions) -> dict:
        try:
            tokenizer = load_tokenizer(self.resolver, options.base_model)
        except Exception as exc:  # noqa: BLE001 - stats are a report, not a gate
            if options.base_model:
                raise
            log.warning("no tokenizer for token statistics: %s", exc)
            return {}
        sample = examples[:STATS_SAMPLE]
        lengths = np.array([len(tokenizer(render(tokenizer, e))["input_ids"]) for e in sample])
        over = int((lengths > options.max_length).sum()) if options.max_length else 0
        stats = TokenStats(
            tokenizer=str(tokenizer.name_or_path),
            examples=len(sample),
            min=int(lengths.min()),
            mean=float(lengths.mean()),
            p50=int(np.percentile(lengths, 50)),
            p95=int(np.percentile(lengths, 95)),
            max=int(lengths.max()),
            over_max_length=over,
            max_length=options.max_length,
        )
        return {"tokens": stats.model_dump()}

    def create_generated(
        self, name: str, fmt: DatasetFormat, source: str, stats: dict
    ) -> DatasetInfo:
        """An empty dataset that a job fills (rows written from documents): its folder
        holds empty train and validation files until reviewed rows are published."""
        dataset_id = uuid.uuid4().hex
        folder = self.root / dataset_id
        folder.mkdir(parents=True)
        _write_jsonl(folder / "train.jsonl", [])
        _write_jsonl(folder / "val.jsonl", [])
        row = DatasetRow(
            id=dataset_id,
            name=safe_name(name),
            format=fmt.value,
            source_file=source[:300],
            size_bytes=0,
            sha256=hashlib.sha256(dataset_id.encode()).hexdigest(),  # never an upload's
            rows_train=0,
            rows_val=0,
            rows_skipped=0,
            stats=stats,
            created_at=utcnow(),
            owner_id=current_actor.get().user_id,
        )
        self._insert(row, folder)
        return self.get(dataset_id)

    def _insert(self, row: DatasetRow, folder: Path) -> None:
        """Add the dataset's row; its folder goes when the row cannot be stored."""
        try:
            with self.db.session() as session:
                session.add(row)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def replace_examples(
        self, dataset_id: str, train: builtins.list[dict], val: builtins.list[dict]
    ) -> DatasetInfo:
        """Write a dataset's train and validation files anew (each replaced whole) and
        its counts."""
        self.get(dataset_id, write=True)
        folder = self.root / dataset_id
        size = 0
        for split_name, examples in (("train", train), ("val", val)):
            staging = folder / f".{split_name}.jsonl.new"
            _write_jsonl(staging, examples)
            size += staging.stat().st_size
            staging.replace(folder / f"{split_name}.jsonl")
        with self.db.session() as session:
            row = _stored(session, dataset_id)
            row.rows_train, row.rows_val, row.size_bytes = len(train), len(val), size
        return self.get(dataset_id)

    def update_generation(self, dataset_id: str, **values: Any) -> DatasetInfo:
        """Merge `values` into what a generated dataset records of its writing
        (`stats["generated"]`: status, counts, job)."""
        self.get(dataset_id, write=True)
        with self.db.session() as session:
            row = _stored(session, dataset_id)
            generated = {**row.stats.get("generated", {}), **values}
            row.stats = {**row.stats, "generated": generated}
        return self.get(dataset_id)

    # -- reading ----------------------------------------------------------------------
    def _by_hash(self, digest: str) -> DatasetInfo | None:
        """The same upload made before by this user (another user's is theirs)."""
        owner = current_actor.get().user_id
        query = select(DatasetRow).where(DatasetRow.sha256 == digest, DatasetRow.owner_id == owner)
        with self.db.session() as session:
            row = session.scalars(query).first()
            return DatasetInfo.model_validate(row) if row else None

    def get(self, dataset_id: str, *, write: bool = False) -> DatasetInfo:
        """A dataset the current user may see (their own, shared with them, or any for an
        admin) — and, with `write` (train on it, delete it), change."""
        actor = current_actor.get()
        with self.db.session() as session:
            row = session.get(DatasetRow, dataset_id)
            access = access_of(session, "dataset", row.id, row.owner_id, actor) if row else None
            if row is None or access is None:
                raise NotFound(
                    f"No dataset with id {dataset_id!r}. List them with GET /api/v1/datasets."
                )
            if write and access != "write":
                raise Forbidden(f"Dataset {row.name} is shared with you to read only.")
            return DatasetInfo.model_validate(row)

    def owned(self, dataset_id: str) -> DatasetInfo:
        """A dataset the current user owns (any, for an admin): who may share it."""
        info = self.get(dataset_id, write=True)
        actor = current_actor.get()
        if not actor.admin and info.owner_id != actor.user_id:
            raise Forbidden(f"Only the owner of dataset {info.name} (or an admin) shares it.")
        return info

    def list(self) -> list[DatasetInfo]:
        """The datasets the current user may see, newest first."""
        seen = visible(DatasetRow.owner_id, DatasetRow.id, "dataset", current_actor.get())
        query = select(DatasetRow).where(seen).order_by(DatasetRow.created_at.desc())
        with self.db.session() as session:
            return [DatasetInfo.model_validate(r) for r in session.scalars(query)]

    def examples(self, dataset_id: str, split_name: str = "train") -> Iterator[dict]:
        """The canonical examples of one split."""
        if split_name not in ("train", "val"):
            raise InvalidInput("split must be train or val.")
        self.get(dataset_id)
        with open(self.root / dataset_id / f"{split_name}.jsonl", encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)

    def preview(self, dataset_id: str, base_model: str | None = None) -> builtins.list[str]:
        """The first training examples rendered as the model will see them."""
        try:
            tokenizer = load_tokenizer(self.resolver, base_model)
        except Exception:  # noqa: BLE001 - a preview without a tokenizer shows raw JSON
            tokenizer = None
        shown = []
        for example in self.examples(dataset_id):
            shown.append(preview_text(tokenizer, example) if tokenizer else json.dumps(example))
            if len(shown) == PREVIEW_ROWS:
                break
        return shown

    def delete(self, dataset_id: str) -> None:
        """Remove a dataset's files, row and shares."""
        self.get(dataset_id, write=True)
        with self.db.session() as session:
            session.execute(delete(DatasetDraftRow).where(DatasetDraftRow.dataset_id == dataset_id))
            session.delete(session.get(DatasetRow, dataset_id))
            shares = (ShareRow.resource_type == "dataset", ShareRow.resource_id == dataset_id)
            session.execute(delete(ShareRow).where(*shares))
        shutil.rmtree(self.root / dataset_id, ignore_errors=True)


def preview_text(tokenizer: Any, example: dict) -> str:
    """An example as the model sees it; a preference pair shows its rejected reply after
    the chosen one, a KTO example its label first."""
    text = render(tokenizer, example)
    if "rejected" in example:
        rejected = "\n".join(m["content"] for m in example["rejected"])
        return f"{text}\n\n[rejected]\n{rejected}"
    if "label" in example:
        return ("[good] " if example["label"] else "[bad] ") + text
    return text


def split(examples: list[dict], val_ratio: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Shuffle with `seed` and hold out `val_ratio` of the examples for validation."""
    if val_ratio == 0:
        return list(examples), []
    n_val = round(len(examples) * val_ratio)
    if n_val < 1 or n_val >= len(examples):
        raise InvalidInput(
            f"{len(examples)} usable rows are too few for val_ratio {val_ratio}: it leaves "
            f"{n_val} for validation and {len(examples) - n_val} for training. Add rows, "
            "change val_ratio, or set it to 0."
        )
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    val = [examples[i] for i in sorted(order[:n_val])]
    train = [examples[i] for i in sorted(order[n_val:])]
    return train, val


def _stored(session: Any, dataset_id: str) -> DatasetRow:
    """The dataset's row in this session (it may have gone since it was checked)."""
    row = session.get(DatasetRow, dataset_id)
    if row is None:
        raise NotFound(f"No dataset with id {dataset_id!r}.")
    return row


def _write_jsonl(path: Path, examples: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(example, ensure_ascii=False) + "\n")


def _sha256(upload: Path, val_upload: Path | None, options: DatasetOptions) -> str:
    digest = hashlib.sha256()
    for path in (upload, val_upload):
        if path is not None:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    digest.update(options.model_dump_json(exclude={"name"}).encode())
    return digest.hexdigest()
