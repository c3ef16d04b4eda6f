"""`aift serve`: the web app plus one supervised local worker process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import uvicorn

from aift import threads
from aift.api.app import create_app
from aift.config import Settings
from aift.monitoring.logging import secrets_of, setup_logging
from aift.procutil import popen_tied
from aift.runtime import Runtime

log = logging.getLogger(__name__)

RESTART_BACKOFF_SECONDS = 1.0
MAX_RESTARTS_PER_MINUTE = 5


class LocalWorker:
    """Runs `aift worker` as a child process and restarts it if it dies."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._recent: list[float] = []
        self._thread = threading.Thread(target=self._keep_alive, daemon=True, name="worker-keeper")

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        self.process = popen_tied(  # SIGTERM if the server dies: jobs → interrupted
            [sys.executable, "-m", "aift.cli", "worker", "--exit-with-parent"],
            env=os.environ.copy(),
            stdin=subprocess.DEVNULL,
        )
        log.info("local worker started (pid %s)", self.process.pid)

    def _keep_alive(self) -> None:
        while not self._stopping.is_set():
            assert self.process is not None
            code = self.process.poll()
            if code is not None and not self._stopping.is_set():
                now = time.monotonic()
                self._recent = [t for t in self._recent if now - t < 60] + [now]
                if len(self._recent) > MAX_RESTARTS_PER_MINUTE:
                    log.error("worker keeps dying (exit %s); not restarting it", code)
                    return
                log.warning("local worker exited with %s; restarting it", code)
                time.sleep(RESTART_BACKOFF_SECONDS)
                self.restarts += 1
                self._spawn()
            self._stopping.wait(0.5)

    def status(self) -> dict:
        alive = self.process is not None and self.process.poll() is None
        return {
            "pid": self.process.pid if self.process else None,
            "alive": alive,
            "restarts": self.restarts,
        }

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the worker (its running jobs are marked interrupted), then wait for it."""
        self._stopping.set()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: huey stops at once; jobs → interrupted
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()


def serve(settings: Settings, *, with_worker: bool = True) -> None:
    """Run the web app on settings.host:port until stopped; refuse unsafe binds."""
    settings.check_bind_is_safe()
    threads.apply(threads.plan(settings, "serve"))  # before any model library loads
    runtime = Runtime.start(settings, owns_vector_index=True)  # the server owns the index
    setup_logging(
        settings.log_level, runtime.workspace.logs / "server.jsonl", secrets=secrets_of(settings)
    )
    runtime.jobs.recover_orphans()
    runtime.models.scan()
    runtime.models.defaults_in_use()  # warns now, at start, about defaults that fall back
    app = create_app(runtime, worker=LocalWorker() if with_worker else None)
    log.info(
        "aift serving on http://%s:%s (workspace %s)",
        settings.host,
        settings.port,
        settings.workspace,
    )
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            ws="websockets-sansio" if _has_sansio() else "auto",
        )
    finally:
        runtime.close()


def _has_sansio() -> bool:
    try:
        from uvicorn.protocols.websockets import websockets_sansio_impl  # noqa: F401
    except ImportError:
        return False
    return True
