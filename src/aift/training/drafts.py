"""Generated rows under review: listed with their passages, accepted, edited, rejected.

A dataset written from documents keeps every generated row in `dataset_drafts`; its
train and validation files hold only the accepted ones, written again after each review
(a row's split is fixed by the dataset's seed and the row's id, so accepting one row
never moves another between train and validation).
"""

from __future__ import annotations

import builtins
import random
from typing import Any

from sqlalchemy import func, select, update

from aift.errors import InvalidInput, NotFound
from aift.store import Database
from aift.store.tables import DatasetDraftRow
from aift.training.datasets import DatasetService
from aift.training.formats import to_example
from aift.training.question_writing import WrittenRow
from aift.training.schemas import (
    DatasetFormat,
    DatasetInfo,
    DraftCounts,
    DraftEdit,
    DraftPage,
    DraftReview,
    DraftRow,
    DraftStatus,
)

PAGE_LIMIT = 500


class DraftService:
    """The review side of datasets written from documents."""

    def __init__(self, db: Database, datasets: DatasetService) -> None:
        self.db = db
        self.datasets = datasets

    def add(self, dataset_id: str, rows: builtins.list[WrittenRow]) -> None:
        """Store rows a job wrote, pending review."""
        with self.db.session() as session:
            session.add_all(
                DatasetDraftRow(
                    dataset_id=dataset_id,
                    chunk_id=row.chunk_id,
                    status=DraftStatus.pending.value,
                    question=row.question,
                    answer=row.answer,
                    rejected_answer=row.rejected_answer,
                    support=row.support,
                    document_id=row.document_id,
                    document=row.document[:300],
                    page=row.page,
                    section=row.section[:500] if row.section else None,
                    passage=row.passage,
                    edited=False,
                )
                for row in rows
            )

    def written(self, dataset_id: str) -> int:
        """How many rows the dataset has, of any status."""
        with self.db.session() as session:
            query = select(func.count()).where(DatasetDraftRow.dataset_id == dataset_id)
            return int(session.scalar(query) or 0)

    def page(
        self, dataset_id: str, status: DraftStatus | None = None, offset: int = 0, limit: int = 50
    ) -> DraftPage:
        """Rows in the order they were written, with how many there are of each status."""
        self.datasets.get(dataset_id)
        if not 1 <= limit <= PAGE_LIMIT or offset < 0:
            raise InvalidInput(f"limit must be 1–{PAGE_LIMIT} and offset at least 0.")
        where = [DatasetDraftRow.dataset_id == dataset_id]
        if status is not None:
            where.append(DatasetDraftRow.status == status.value)
        with self.db.session() as session:
            total = int(session.scalar(select(func.count()).where(*where)) or 0)
            query = select(DatasetDraftRow).where(*where).order_by(DatasetDraftRow.id)
            rows = session.scalars(query.offset(offset).limit(limit)).all()
            return DraftPage(
                rows=[DraftRow.model_validate(r) for r in rows],
                total=total,
                counts=self._counts(session, dataset_id),
            )

    @staticmethod
    def _counts(session: Any, dataset_id: str) -> DraftCounts:
        query = (
            select(DatasetDraftRow.status, func.count())
            .where(DatasetDraftRow.dataset_id == dataset_id)
            .group_by(DatasetDraftRow.status)
        )
        return DraftCounts(**{status: count for status, count in session.execute(query)})

    def review(self, dataset_id: str, review: DraftReview) -> DraftCounts:
        """Give rows a status (those named, or all of a status), then publish."""
        self._writable(dataset_id)
        where = [DatasetDraftRow.dataset_id == dataset_id]
        if review.all_with_status is not None:
            where.append(DatasetDraftRow.status == review.all_with_status.value)
        else:
            where.append(DatasetDraftRow.id.in_(review.ids))
        with self.db.session() as session:
            if review.ids:
                query = select(func.count()).where(*where)
                found = int(session.scalar(query) or 0)
                if found != len(set(review.ids)):
                    raise NotFound("Some of those rows are not in this dataset; none changed.")
            session.execute(update(DatasetDraftRow).where(*where).values(status=review.status))
            counts = self._counts(session, dataset_id)
        self.publish(dataset_id)
        return counts

    def edit(self, dataset_id: str, draft_id: int, edit: DraftEdit) -> DraftRow:
        """Correct one row; an edited row is accepted unless the edit says otherwise."""
        info = self._writable(dataset_id)
        if edit.rejected_answer is not None and info.format != DatasetFormat.preference:
            raise InvalidInput(f"{info.name} has no rejected answers: it is not preference data.")
        with self.db.session() as session:
            row = session.get(DatasetDraftRow, draft_id)
            if row is None or row.dataset_id != dataset_id:
                raise NotFound(f"Dataset {info.name} has no row {draft_id}.")
            changed = {k: v for k, v in edit.model_dump(exclude={"status"}).items() if v}
            for key, value in changed.items():
                setattr(row, key, value)
            row.edited = row.edited or bool(changed)
            row.status = (edit.status or DraftStatus.accepted).value
            session.flush()
            shown = DraftRow.model_validate(row)
        self.publish(dataset_id)
        return shown

    def _writable(self, dataset_id: str) -> DatasetInfo:
        info = self.datasets.get(dataset_id, write=True)
        if "generated" not in info.stats:
            raise InvalidInput(
                f"{info.name} was uploaded, not written from documents: it has no rows to review."
            )
        return info

    def publish(self, dataset_id: str) -> DatasetInfo:
        """Write the accepted rows as the dataset's train and validation examples."""
        info = self.datasets.get(dataset_id, write=True)
        settings = info.stats.get("generated", {})
        ratio, seed = float(settings.get("val_ratio", 0.0)), int(settings.get("seed", 0))
        train: builtins.list[dict] = []
        val: builtins.list[dict] = []
        query = select(DatasetDraftRow).where(
            DatasetDraftRow.dataset_id == dataset_id,
            DatasetDraftRow.status == DraftStatus.accepted.value,
        )
        with self.db.session() as session:
            rows = session.scalars(query.order_by(DatasetDraftRow.id)).all()
            for row in rows:
                example = to_example(_raw(row, info.format), info.format)
                if isinstance(example, str):
                    continue  # edits are checked; a row that still fails is left out
                held_out = random.Random(f"{seed}:{row.id}").random() < ratio
                (val if held_out else train).append(example)
        return self.datasets.replace_examples(dataset_id, train, val)


def _raw(row: DatasetDraftRow, fmt: DatasetFormat) -> dict[str, Any]:
    """A draft as an upload's row of the dataset's format."""
    if fmt == DatasetFormat.preference:
        return {"prompt": row.question, "chosen": row.answer, "rejected": row.rejected_answer}
    return {
        "messages": [
            {"role": "user", "content": row.question},
            {"role": "assistant", "content": row.answer},
        ]
    }
