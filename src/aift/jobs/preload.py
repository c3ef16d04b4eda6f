"""What the job fork server imports once, so that each job forked from it starts warm.

A process entry point like `aift.jobs.child` (so it may load the tasks and the Runtime).
Imported by the fork server only (`aift.jobs.launcher`), in the jobs' environment: it
first takes the job thread plan (OpenMP and BLAS read their thread counts when they
load), then imports the heavy libraries jobs use. Nothing here runs a computation or
starts a thread pool: a fork copies only the thread that forks. A library that fails
to import is left to the job that needs it, which then reports the error itself.
"""

from __future__ import annotations

import importlib
import sys

from aift import threads
from aift.config import get_settings

# Training (supervised, preference, reward) and embedding; aift's own job kinds and the
# services they load come after them.
HEAVY_MODULES = (
    "torch",
    "transformers",
    "transformers.trainer",
    "peft",
    "trl",
    "sentence_transformers",
)


def _preload() -> None:
    threads.apply(threads.plan(get_settings(), "job"))
    for name in HEAVY_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a job that needs it reports it
            print(f"job fork server: {name} not preloaded: {exc}", file=sys.stderr)
    import aift.runtime  # noqa: F401 - what each job process builds first
    import aift.tasks  # noqa: F401 - the job kinds

    get_settings.cache_clear()  # each job reads its settings from its own environment


_preload()
