"""A wheel built from the checkout carries what `pip install aift` users need to run the
web UI without Node.js: templates, our scripts, the npm-built vendor files, migrations."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_the_wheel_contains_the_built_front_end(tmp_path: Path) -> None:
    vendor = REPO / "src" / "aift" / "web" / "static" / "vendor"
    assert (vendor / "htmx.min.js").exists(), "make setup builds the vendor files first"
    source = tmp_path / "source"  # built from a copy: no build/ or egg-info in the checkout
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules")
    shutil.copytree(REPO / "src", source / "src", ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [wheel] = tmp_path.glob("aift-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "aift/web/static/vendor/htmx.min.js",
        "aift/web/static/vendor/uPlot.iife.min.js",
        "aift/web/static/vendor/uPlot.min.css",
        "aift/web/static/app.js",
        "aift/web/static/training_run.js",
        "aift/web/templates/base.html",
        "aift/web/templates/partials/source_dialog.html",
        "aift/store/migrations/versions/0007_conversations.py",
    ):
        assert expected in names, expected
    assert not any("node_modules" in name or name.startswith("aift/web/assets/") for name in names)
