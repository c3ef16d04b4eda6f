"""Time to the first answer token of a knowledge-base question on a real server (used by
search_latency.py)."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT


def time_to_first_token() -> tuple[float, float]:
    """(first token ms, search ms) of an ask with the packaged SmolLM2 on a real server."""
    import httpx
    from common import free_port, start, stop

    pdf = ROOT.parent / "shared" / "data" / "pdfs" / "GeoTopo-komprimiert.pdf"
    workspace = Path(tempfile.mkdtemp(prefix="aift-ttft-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(port)],
        f"{url}/healthz",
        env={"AIFT_WORKSPACE": str(workspace / "ws"), "AIFT_OFFLINE": "1"},
        log=workspace / "server.log",
    )
    try:
        kb = httpx.post(f"{url}/api/v1/kb", json={"name": "b"}, timeout=120).json()["id"]
        job = httpx.post(
            f"{url}/api/v1/kb/{kb}/documents",
            files=[("files", (pdf.name, pdf.read_bytes()))],
            timeout=120,
        ).json()
        while httpx.get(f"{url}/api/v1/jobs/{job['job_id']}").json()["status"] != "succeeded":
            time.sleep(0.5)
        body = {
            "query": "Was besagt der Satz von der Gebietstreue?",
            "max_tokens": 32,
            "model": "SmolLM2-135M-Instruct",
            "min_score": 0,
        }
        warm = httpx.post(f"{url}/api/v1/kb/{kb}/ask", json=body, timeout=300)  # loads the model
        print(warm.status_code, warm.text[:500], flush=True)
        firsts, searches = [], []
        for _ in range(5):
            answer = httpx.post(f"{url}/api/v1/kb/{kb}/ask", json=body, timeout=300)
            answer.raise_for_status()
            done = answer.json()
            firsts.append(done["first_token_ms"])
            searches.append(done["search_ms"])
        return statistics.median(firsts), statistics.median(searches)
    finally:
        stop(process)
