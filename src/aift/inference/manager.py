"""The model manager: which models are loaded, by which engine, and for how long.

One namespace of served names — base models, fine-tuned models, adapters, GGUF files —
comes from the model registry. A model is loaded once and shared by concurrent requests;
loads are serialised per model; idle models leave after their keep_alive, and the least
recently used idle model makes room when a load would exceed the memory budget. A load
that fails leaves nothing behind.
"""

from __future__ import annotations

import difflib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from aift.config import Settings, mask_url, redact_url
from aift.errors import AiftError, InvalidInput, ModelUnavailable, NotFound
from aift.inference.engines import (
    EngineSource,
    adapter_engine,
    default_engine,
    engine_spec,
)
from aift.inference.engines.base import Engine
from aift.inference.schemas import LoadedModelInfo
from aift.keepalive import parse_keep_alive
from aift.models.registry import ModelRegistry, resolved_entry
from aift.models.schemas import ModelFormat, ModelInfo, ModelKind, ModelSource, ResolvedModel
from aift.work.actor import current_actor

log = logging.getLogger(__name__)

SERVABLE_KINDS = {ModelKind.base, ModelKind.finetuned, ModelKind.adapter, ModelKind.gguf}
REMOTE_LIST_TTL = 5.0


@dataclass
class _Loaded:
    name: str
    engine: Engine
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    keep_alive: float | None = 300.0
    pins: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.engine.name)

    def expires_at(self) -> float | None:
        if self.keep_alive is None:
            return None
        return self.last_used + self.keep_alive

    def info(self) -> LoadedModelInfo:
        expires = self.expires_at()
        return LoadedModelInfo(
            name=self.name,
            engine=self.engine.name,
            memory_bytes=self.engine.memory_bytes(),
            context_length=self.engine.context_length,
            adapters=sorted(self.engine.adapters),
            loaded_at=datetime.fromtimestamp(self.loaded_at, UTC),
            last_used_at=datetime.fromtimestamp(self.last_used, UTC),
            expires_at=datetime.fromtimestamp(expires, UTC) if expires is not None else None,
            busy=self.engine.busy + self.pins,
            state="failed" if self.engine.failure else "ready",
            error=self.engine.failure,
            pid=self.engine.pid,
        )


class Lease:
    """A model handed to one request: the engine, and the adapter to apply (if any)."""

    def __init__(
        self, manager: ModelManager, loaded: _Loaded, adapter: str | None, keep_alive: float | None
    ) -> None:
        self.manager = manager
        self._loaded = loaded
        self.engine = loaded.engine
        self.adapter = adapter
        self.name = loaded.name
        self.keep_alive = keep_alive

    def release(self) -> None:
        """The request is done with the model; start its keep_alive clock."""
        self.manager._release(self._loaded, self.keep_alive)


class ModelManager:
    """Loads, shares, evicts and unloads the models that serve requests."""

    def __init__(self, settings: Settings, registry: ModelRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.resolver = registry.resolver
        budget_mb = settings.model_memory_budget_mb
        self.budget_bytes = (
            budget_mb * 1024 * 1024 if budget_mb else int(psutil.virtual_memory().total * 0.6)
        )
        self.default_keep_alive = parse_keep_alive(settings.default_keep_alive)
        self._loaded: dict[tuple[str, str], _Loaded] = {}  # (name, engine)
        self._remote_cache: tuple[float, list[ModelInfo]] | None = None
        self._lock = threading.RLock()
        self._load_locks: dict[tuple[str, str], threading.Lock] = {}
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, daemon=True, name="model-sweeper")
        self._sweeper.start()

    # -- the namespace ------------------------------------------------------------------
    def servable(self) -> list[ModelInfo]:
        """Every model a request may name: local language models, adapters, remote Ollama."""
        local = [m for m in self.registry.list() if m.kind in SERVABLE_KINDS]
        return local + self._remote_models()

    def _remote_models(self) -> list[ModelInfo]:
        """Models of the configured Ollama server as `ollama/NAME` (cached a few seconds)."""
        url = self.settings.ollama_url
        if not url:
            return []
        now = time.monotonic()
        if self._remote_cache is not None and now - self._remote_cache[0] < REMOTE_LIST_TTL:
            return self._remote_cache[1]
        from aift.inference.engines.ollama import PREFIX, client_for

        try:
            listed = client_for(url).list().models
        except Exception as exc:  # noqa: BLE001 - a listing never fails for a remote
            log.warning("cannot list models of Ollama: %s", redact_url(f"{url}: {exc}", url))
            listed = []
        models = [
            ModelInfo(
                name=f"{PREFIX}{m.model}",
                kind=ModelKind.base,
                format=ModelFormat.ollama,
                source=ModelSource.ollama,
                path=mask_url(url) or url,
                size_bytes=m.size or 0,
                architecture=(m.details.family if m.details else None),
                dtype=(m.details.quantization_level if m.details else None),
                details={
                    "remote": m.model,
                    "parameter_size": m.details.parameter_size if m.details else None,
                },
                created_at=m.modified_at,
                updated_at=m.modified_at,
            )
            for m in listed
        ]
        self._remote_cache = (now, models)
        return models

    def describe(self, name: str) -> ModelInfo:
        """The registry entry of a served name, or a 404 naming close matches."""
        name = name.strip()
        for model in self.servable():
            if names_model(model, name):
                return model
        known = [m.name for m in self.servable()]
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
        hint = (
            f" Did you mean: {', '.join(close)}?" if close else f" Available: {', '.join(known)}."
        )
        raise NotFound(f"Model {name!r} is not available.{hint}")

    # -- leasing --------------------------------------------------------------------------
    def acquire(
        self, name: str, *, keep_alive: str | float | None = "default", engine: str | None = None
    ) -> Lease:
        """Get a loaded model for one request (loading it if needed)."""
        info = self.describe(name)
        seconds = (
            self.default_keep_alive if keep_alive == "default" else parse_keep_alive(keep_alive)
        )
        adapter = None
        base_info = info
        chosen = engine
        if info.kind == ModelKind.adapter:
            base_info = self._adapter_base(info)
            adapter = info.name
            engine = engine or adapter_engine(ModelFormat(base_info.format))
        loaded = self._ensure_loaded(base_info, engine, seconds)
        if adapter is not None:
            try:
                loaded.engine.add_adapter(adapter, info.path)
            except InvalidInput as exc:
                fallback = adapter_engine(ModelFormat.hf)
                if chosen is not None or loaded.engine.name == fallback:
                    raise
                # llama.cpp cannot take this adapter (e.g. DoRA): transformers can
                log.warning("%s; serving adapter %s with %s", exc.message, adapter, fallback)
                loaded = self._ensure_loaded(base_info, fallback, seconds)
                loaded.engine.add_adapter(adapter, info.path)
        with self._lock:
            loaded.pins += 1
            loaded.last_used = time.time()
        return Lease(self, loaded, adapter, seconds)

    def _release(self, loaded: _Loaded, keep_alive: float | None) -> None:
        with self._lock:
            loaded.pins = max(0, loaded.pins - 1)
            loaded.last_used = time.time()
            loaded.keep_alive = keep_alive
            expired = keep_alive == 0 and loaded.pins == 0 and loaded.engine.busy == 0
        if expired:
            self._unload_key(loaded.key)

    def load(
        self, name: str, *, engine: str | None = None, keep_alive: str | float | None = "default"
    ) -> LoadedModelInfo:
        """Load a model explicitly (without a request)."""
        lease = self.acquire(name, keep_alive=keep_alive, engine=engine)
        lease.release()
        with self._lock:
            return lease._loaded.info()

    def unload(self, name: str, *, missing_ok: bool = False) -> None:
        """Free a model (with every engine it is loaded by); running requests are cancelled."""
        with self._lock:
            keys = [key for key in self._loaded if key[0] == name]
        if not keys and not missing_ok:
            raise NotFound(f"Model {name!r} is not loaded.")
        for key in keys:
            self._unload_key(key)

    def _unload_key(self, key: tuple[str, str]) -> None:
        with self._lock:
            loaded = self._loaded.pop(key, None)
        if loaded is not None:
            loaded.engine.close()
            log.info("unloaded %s (%s)", *key)

    def loaded(self) -> list[LoadedModelInfo]:
        """The models in memory that the current user may see, with only the adapters
        they may see (another user's adapter on a shared base stays unnamed)."""
        with self._lock:
            items = [item.info() for item in self._loaded.values()]
        if current_actor.get().admin:
            return items
        seen = {model.name for model in self.servable()}
        kept = [item for item in items if item.name in seen]
        for item in kept:
            item.adapters = [name for name in item.adapters if name in seen]
        return kept

    def close(self) -> None:
        self._stop.set()
        for key in list(self._loaded):
            self._unload_key(key)

    # -- loading ----------------------------------------------------------------------------
    def _ensure_loaded(
        self, info: ModelInfo, engine_name: str | None, keep_alive: float | None
    ) -> _Loaded:
        """The model loaded by `engine_name` (by any engine when None), loading it once."""
        with self._lock:
            if engine_name is None:
                engine_name = next(
                    (key[1] for key in self._loaded if key[0] == info.name), None
                ) or default_engine(ModelFormat(info.format))
            key = (info.name, engine_name)
            current = self._loaded.get(key)
            lock = self._load_locks.setdefault(key, threading.Lock())
        if current is not None and not current.engine.failure:
            return current
        with lock:  # one load per model and engine at a time; others wait and share it
            with self._lock:
                current = self._loaded.get(key)
            if current is not None and current.engine.failure:
                log.warning("loading %s again after its engine failed", info.name)
                self._unload_key(key)
                current = None
            if current is not None:
                return current
            engine = self._build_engine(info, engine_name)
            self._make_room(self._estimate(info))
            try:
                engine.load()
            except AiftError:
                engine.close()
                raise
            except Exception as exc:  # noqa: BLE001 - report, keep the manager consistent
                log.exception("loading %s failed", info.name)
                engine.close()
                raise ModelUnavailable(
                    f"Loading {info.name} failed: {type(exc).__name__}: {exc}"
                ) from None
            loaded = _Loaded(name=info.name, engine=engine, keep_alive=keep_alive)
            with self._lock:
                self._loaded[key] = loaded
            log.info(
                "loaded %s with %s (%.0f MB)", info.name, engine.name, engine.memory_bytes() / 1e6
            )
            return loaded

    def _build_engine(self, info: ModelInfo, engine_name: str) -> Engine:
        """The engine `engine_name` for this model, refused when it cannot load the model's
        format or cannot run on this machine (the registry says which and why)."""
        spec = engine_spec(engine_name)
        spec.check_loads(info)
        spec.requirement()
        source = EngineSource(info, self._resolved(info), self.settings, self.resolver)
        return spec.factory(source)

    def _resolved(self, info: ModelInfo) -> ResolvedModel:
        if info.format == ModelFormat.ollama:
            return ResolvedModel(
                requested=info.name,
                name=info.name,
                source=info.source,
                format=info.format,
                path=info.path,
            )
        return resolved_entry(info)

    def _adapter_base(self, adapter: ModelInfo) -> ModelInfo:
        base = adapter.base_model
        if not base:
            raise InvalidInput(f"Adapter {adapter.name} does not name its base model.")
        for model in self.servable():
            if model.kind != ModelKind.adapter and (model.path == base or names_model(model, base)):
                return model
        resolved = self.resolver.resolve(base)
        return self.registry.register(base, _path_of(resolved), source=resolved.source)

    @staticmethod
    def _estimate(info: ModelInfo) -> int:
        if info.format == ModelFormat.ollama:
            return 0
        if info.format == ModelFormat.gguf:
            return info.size_bytes
        from aift.models.policy import BYTES_PER_PARAM, plan_loading
        from aift.monitoring.system import detect_devices

        params = info.parameter_count or 0
        if params <= 0:
            return 0
        plan = plan_loading(params, list(detect_devices()))
        return int(params * BYTES_PER_PARAM[plan.quantization or plan.dtype])

    def _make_room(self, needed: int) -> None:
        """Unload idle models, least recently used first, until `needed` bytes fit."""
        while True:
            with self._lock:
                used = sum(item.engine.memory_bytes() for item in self._loaded.values())
                if used + needed <= self.budget_bytes:
                    return
                idle = [
                    item
                    for item in self._loaded.values()
                    if item.pins == 0 and item.engine.busy == 0
                ]
                if not idle:
                    raise InvalidInput(
                        f"Not enough memory budget to load this model (needs ~{needed / 1e9:.1f} "
                        f"GB, {used / 1e9:.1f} of {self.budget_bytes / 1e9:.1f} GB in use by "
                        "busy models). Raise AIFT_MODEL_MEMORY_BUDGET_MB or unload a model."
                    )
                victim = min(idle, key=lambda item: item.last_used)
            log.info("evicting %s (%s) to make room", *victim.key)
            self._unload_key(victim.key)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(1.0):
            now = time.time()
            with self._lock:
                expired = [
                    item.key
                    for item in self._loaded.values()
                    if item.pins == 0
                    and item.engine.busy == 0
                    and (exp := item.expires_at()) is not None
                    and exp <= now
                ]
            for key in expired:
                log.info("keep_alive of %s (%s) ran out", *key)
                self._unload_key(key)


def names_model(model: ModelInfo, name: str) -> bool:
    """Whether `name` is the model's name or one of its aliases (case-insensitive, with
    Ollama's tag conventions)."""
    aliases = {a.lower() for a in model.details.get("aliases", [])} | {model.name.lower()}
    wanted = name.strip().lower()
    untagged = wanted.removesuffix(":latest")
    # Ollama names: `smol` is `smol:latest`; a model created as `smol:v2` lives in `smol-v2`
    forms = {wanted, untagged, untagged.replace(":", "-").replace("/", "-")}
    return bool(forms & aliases)


def _path_of(resolved: ResolvedModel) -> Path:
    return Path(resolved.path) / resolved.file if resolved.file else Path(resolved.path)
