"""Settings: the one object holding every configurable value of aift.

Values come from `AIFT_*` environment variables, then a `.env` file in the current
directory, then the defaults below. Secrets (the API key) are only ever read from the
environment or `.env`, and never shown back (see `Settings.public_view`).
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aift.errors import ConfigError

# A key that guards a network-facing server must not be guessable.
MIN_PUBLIC_KEY_LENGTH = 16
KEY_RECIPE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"

DEFAULT_CORS_ORIGINS = [
    "http://localhost:8050",
    "http://127.0.0.1:8050",
]


class Settings(BaseSettings):
    """Everything aift can be configured with; see the configuration table in README."""

    model_config = SettingsConfigDict(
        env_prefix="AIFT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = Field("127.0.0.1", description="Address the web server binds to.")
    port: int = Field(8050, ge=1, le=65535, description="Port of the web app and APIs.")
    workspace: Path = Field(
        Path("workspace"), description="Folder holding data, outputs, models, logs, stores."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default SQLite at workspace/metadata/aift.db."
    )
    qdrant_path: Path | None = Field(
        None,
        description="Embedded vector index (qdrant-edge) folder; default workspace/vector_index.",
    )
    qdrant_url: str | None = Field(None, description="Qdrant server URL (replaces embedded).")
    cache_dir: Path | None = Field(
        None,
        description="Cache shared by workspaces (GGUF → transformers conversions); default "
        "$XDG_CACHE_HOME/aift or ~/.cache/aift.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL for the job queue (workers on several machines) and the "
        "search cache (shared, survives restarts).",
    )
    cache_ttl_seconds: float = Field(
        600.0,
        ge=0,
        description="How long query embeddings and search results stay cached "
        "(0 turns the cache off); a knowledge base's changes invalidate its entries at once.",
    )
    cache_max_entries: int = Field(
        4096, ge=16, description="Entries of the in-process search cache (without Redis)."
    )
    default_llm: str = Field("HuggingFaceTB/SmolLM2-1.7B-Instruct", description="Default LLM.")
    default_embedding_model: str = Field(
        "intfloat/multilingual-e5-large", description="Default embedding model."
    )
    default_reranker: str = Field(
        "BAAI/bge-reranker-v2-m3", description="Default cross-encoder re-ranker."
    )
    offline: bool = Field(
        False, description="Never contact a model hub; resolve locally or fall back."
    )
    hub_timeout_seconds: float = Field(
        10.0, gt=0, description="How long a model hub may take before we fall back."
    )
    api_key: SecretStr | None = Field(
        None, description="Bearer key required on every API call when set."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_CORS_ORIGINS),
        description="Origins allowed by CORS (comma separated); localhost by default.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers besides loopback names and the bound "
        "address (comma separated; '.example.com' allows its subdomains, '*' any host). "
        "Guards against DNS rebinding.",
    )
    session_hours: float = Field(
        12.0, gt=0, le=24 * 365, description="How long a browser sign-in lasts (hours)."
    )
    login_attempts_per_minute: int = Field(
        5, ge=1, le=1000, description="Failed sign-ins one client may make per minute."
    )
    signup: Literal["off", "viewer", "member"] = Field(
        "off",
        description="Whether people may create their own account at /signup, and the role "
        "it gets (viewer or member); off: only admins create accounts.",
    )
    admin_email: str | None = Field(
        None,
        description="Create this admin account on the first start (a one-time setup link "
        "is printed); without it and without accounts, a loopback install stays single-user.",
    )
    audit_retention_days: int = Field(
        365, ge=1, le=36_500, description="How long audit-trail events are kept (days)."
    )
    max_upload_mb: int = Field(200, ge=1, description="Largest accepted upload, in MiB.")
    max_upload_files: int = Field(100, ge=1, description="Most files in one upload request.")
    max_upload_request_mb: int = Field(
        1024, ge=1, description="Largest upload request (all its files together), in MiB."
    )
    max_blob_mb: int = Field(
        102_400, ge=1, description="Largest model file pushed to /api/blobs, in MiB."
    )
    max_json_mb: int = Field(
        32, ge=1, description="Largest JSON (or other non-upload) request body, in MiB."
    )
    max_pdf_pages: int = Field(5000, ge=1, description="Most pages a PDF may have to be ingested.")
    model_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders whose models may be named by path (comma separated); the "
        "workspace and the model cache always may.",
    )
    ollama_registries: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["registry.ollama.ai"],
        description="Registries an ollama/HOST/NAME pull may name (comma separated).",
    )
    tensorboard_url: str | None = Field(
        None,
        description="A TensorBoard (started with --path_prefix=/tensorboard) the app serves "
        "at /tensorboard behind its own sign-in.",
    )
    worker_concurrency: int = Field(1, ge=1, le=64, description="Jobs one worker runs at once.")
    max_jobs_per_user: int = Field(
        0, ge=0, le=10_000, description="Jobs one user may have queued or running (0: no limit)."
    )
    job_cancel_grace_seconds: float = Field(
        10.0, ge=0, description="Time a job gets to stop after cancel, before it is killed."
    )
    job_heartbeat_timeout_seconds: float = Field(
        60.0, gt=0, description="A running job silent this long is marked interrupted."
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="Cores aift's processes may use for compute (server, jobs, index); "
        "default: all available.",
    )
    job_niceness: int = Field(
        10,
        ge=0,
        le=19,
        description="How far jobs (training, ingestion) step back from interactive "
        "requests (Unix niceness; 0 = equal priority).",
    )
    job_allocator: Literal["jemalloc", "system"] = Field(
        "jemalloc",
        description="Memory allocator of job processes: jemalloc where installed (faster "
        "training, less memory; Debian libjemalloc2), else the system's.",
    )
    job_fork_server: bool = Field(
        True,
        description="From a worker's second job on, start each job as a fork of a "
        "worker-held process that has imported torch and the training libraries once (a "
        "job starts in well under a second, not 5–8 s); off, or where a GPU is visible, "
        "each job is a fresh interpreter.",
    )
    log_level: str = Field("INFO", description="Log level (DEBUG, INFO, WARNING, ERROR).")
    model_memory_budget_mb: int | None = Field(
        None, ge=64, description="Memory loaded models may use; default 60% of RAM."
    )
    default_keep_alive: str = Field(
        "5m", description="How long an idle model stays loaded (Ollama syntax: 5m, 1h, -1, 0)."
    )
    context_length: int = Field(
        2048, ge=128, le=131_072, description="Context per request of a loaded model."
    )
    max_batch: int = Field(8, ge=1, le=256, description="Requests decoded together per model.")
    prefix_cache: bool = Field(
        True,
        description="Keep each finished request's KV cache in its slot, so a request that "
        "starts the same way (a chat's next turn, a knowledge base's system prompt) skips "
        "that part of its prompt (llama.cpp engine).",
    )
    speculative_tokens: int = Field(
        8,
        ge=0,
        le=32,
        description="Tokens drafted per step by prompt lookup (speculative decoding: an "
        "answer continuing an n-gram of its prompt or output is checked several tokens at "
        "a time, each token still the model's choice) in the llama.cpp engine; 0: off.",
    )
    speculative_max_batch: int = Field(
        1,
        ge=1,
        le=256,
        description="Largest number of concurrent requests that still draft: larger "
        "batches are compute-bound, where drafts cost more than they save.",
    )
    isolate_engines: bool = Field(
        True,
        description="Run llama.cpp models in a child process each, so a crash in native code "
        "costs that model, never the server (off: in the server's process).",
    )
    ollama_url: str | None = Field(
        None, description="A remote Ollama server whose models aift also serves (ollama/NAME)."
    )
    ollama_default_model: str = Field(
        "llama3.2:3b", description="Model pulled from Ollama when none is named."
    )
    server_url: str = Field(
        "http://127.0.0.1:8050", description="Server the CLI's chat and model commands talk to."
    )
    ocr_engine: str = Field(
        "auto",
        description="OCR for scanned pages: auto (tesseract when it has every language, "
        "else rapidocr), rapidocr, easyocr or tesseract.",
    )
    ocr_languages: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["en", "ko"],
        description="Language hints for OCR (ISO codes, comma-separated).",
    )
    parse_page_timeout_seconds: float = Field(
        120.0, gt=0, description="Longest a single page may take to parse before the file fails."
    )
    index_wait_seconds: float = Field(
        600.0, gt=0, description="How long an ingestion job waits for the server to index."
    )
    wandb_project: str | None = Field(
        None,
        description="Also report training runs to this Weights & Biases project "
        "(needs the wandb extra; WANDB_MODE=offline works without a network).",
    )

    @field_validator(
        "cors_origins",
        "ocr_languages",
        "allowed_hosts",
        "model_dirs",
        "ollama_registries",
        mode="before",
    )
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_no_key(cls, value: Any) -> Any:
        """An empty or blank AIFT_API_KEY (an empty line in .env or compose) means no key."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        return raw.strip() if isinstance(raw, str) else raw

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("database_url")
    @classmethod
    def _check_db_url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError("must be a SQLAlchemy URL such as sqlite:///path.db")
        return value

    @field_validator("default_keep_alive")
    @classmethod
    def _check_keep_alive(cls, value: str) -> str:
        from aift.keepalive import parse_keep_alive

        parse_keep_alive(value)
        return value

    @field_validator("qdrant_url", "redis_url", "server_url", "ollama_url", "tensorboard_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError("must be a URL such as http://host:6333 or redis://host:6379/0")
        return value

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        self.workspace = self.workspace.expanduser().resolve()
        if self.qdrant_path is not None:
            self.qdrant_path = self.qdrant_path.expanduser().resolve()
        if self.cache_dir is not None:
            self.cache_dir = self.cache_dir.expanduser().resolve()
        self.model_dirs = [Path(p).expanduser().resolve() for p in self.model_dirs]
        return self

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: the configured one or SQLite inside the workspace."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.workspace / 'metadata' / 'aift.db'}"

    @property
    def effective_cache_dir(self) -> Path:
        """The cache shared by workspaces: the configured one, or the user's cache folder."""
        if self.cache_dir is not None:
            return self.cache_dir
        xdg = os.environ.get("XDG_CACHE_HOME")
        return (Path(xdg) if xdg else Path.home() / ".cache") / "aift"

    @property
    def effective_qdrant_path(self) -> Path:
        """Folder of the embedded vector index (one qdrant-edge shard per collection)."""
        return self.qdrant_path or self.workspace / "vector_index"

    @property
    def legacy_qdrant_path(self) -> Path:
        """Where releases before the qdrant-edge engine kept qdrant-client's local mode;
        migrated once into the embedded index, then removed."""
        return self.workspace / "qdrant_data"

    @property
    def host_is_loopback(self) -> bool:
        """True when the bind address only accepts connections from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check_bind_is_safe(self) -> None:
        """Refuse to expose the server beyond this machine without a key worth the name."""
        if self.host_is_loopback:
            return
        if self.api_key is None and self.admin_email:
            return  # accounts guard it: the first admin exists before the first request
        if self.api_key is None:
            raise ConfigError(
                f"Refusing to listen on {self.host}: a non-loopback address needs accounts "
                "or an API key. Set AIFT_ADMIN_EMAIL (the first admin; a setup link is "
                f"printed) or AIFT_API_KEY (make one with: {KEY_RECIPE}; clients then send "
                "'Authorization: Bearer <key>'), or bind to 127.0.0.1."
            )
        if len(self.api_key.get_secret_value()) < MIN_PUBLIC_KEY_LENGTH:
            raise ConfigError(
                f"Refusing to listen on {self.host}: AIFT_API_KEY is shorter than "
                f"{MIN_PUBLIC_KEY_LENGTH} characters, too easy to guess on a network. "
                f"Make one with: {KEY_RECIPE}"
            )

    def public_view(self) -> dict[str, Any]:
        """Active settings for display: secrets replaced by whether they are set."""
        data = self.model_dump(mode="json")
        data["api_key"] = "set" if self.api_key else None
        for key in ("database_url", "redis_url", "qdrant_url", "ollama_url", "tensorboard_url"):
            data[key] = mask_url(data.get(key))
        data["effective_database_url"] = mask_url(self.effective_database_url)
        data["effective_qdrant_path"] = str(self.effective_qdrant_path)
        return data


def mask_url(url: str | None) -> str | None:
    """A URL fit to show: its credentials (user:secret@, a token as user name) and query
    values replaced by ***, the scheme, host, port and path kept."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.password is not None:  # user:secret@ keeps the user name
        userinfo = f"{parts.username}:***@"
    else:  # a lone user name is often the token itself
        userinfo = "***@" if "@" in parts.netloc else ""
    netloc = userinfo + host + (f":{port}" if port else "")
    query = "&".join(f"{name}=***" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_url(text: str, url: str | None) -> str:
    """`text` (an error message) with `url` and its credentials masked wherever they
    appear: a client library's exception often quotes the URL it was given."""
    if not url:
        return text
    masked = mask_url(url) or ""
    text = text.replace(url, masked)
    parts = urlsplit(url)
    # the password; a lone user name is often a token itself
    secret = parts.password if parts.password is not None else parts.username
    if secret and len(secret) >= 3:
        text = text.replace(secret, "***")
    return text


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation errors into a message naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"]) or "settings"
            problems.append(f"AIFT_{field.upper()}: {err['msg']}")
        raise ConfigError("Invalid settings: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide Settings, read once."""
    return load_settings()
