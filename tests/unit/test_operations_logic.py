"""The pieces of operations that need no server: log masking and format, the in-process
cache, metric labels and readings."""

from __future__ import annotations

import json
import logging
import time

from aift.api.middleware import route_template
from aift.monitoring.logging import JsonFormatter, Redactor, job_id_var, secrets_of, setup_logging
from aift.monitoring.metrics import sample_value
from aift.rag.cache import MemoryBackend, SearchCache


def test_secrets_are_masked_by_value_and_by_shape() -> None:
    redact = Redactor(["s3cret-value-123"])
    line = (
        "key s3cret-value-123 Authorization: Bearer abc.def-ghi "
        "postgresql://aift:pa55word@db:5432/aift api_key=xyz123 password: hunter22 "
        '{"token": "tok-9"}'
    )
    masked = redact(line)
    for secret in ("s3cret-value-123", "abc.def-ghi", "pa55word", "xyz123", "hunter22", "tok-9"):
        assert secret not in masked
    assert "postgresql://aift:***@db:5432/aift" in masked
    assert "Bearer ***" in masked
    assert redact("nothing to hide here") == "nothing to hide here"


def test_the_settings_name_their_secrets() -> None:
    from aift.config import load_settings

    settings = load_settings(
        api_key="k" * 20, redis_url="redis://:redispass@host:6379/0", offline=True
    )
    assert set(secrets_of(settings)) == {"k" * 20, "redispass"}


def test_log_files_are_json_lines_with_ids_and_rotate(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "logs" / "server.jsonl"
    setup_logging("INFO", path, secrets=["hidden-value-1"])
    log = logging.getLogger("aift.test")
    token = job_id_var.set("job-42")
    try:
        log.info("started with hidden-value-1", extra={"duration_ms": 1.5})
        try:
            raise ValueError("boom hidden-value-1")
        except ValueError:
            log.exception("failed")
    finally:
        job_id_var.reset(token)
    for handler in logging.getLogger().handlers:
        handler.flush()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert entries[0]["job_id"] == "job-42" and entries[0]["request_id"] == "-"
    assert entries[0]["duration_ms"] == 1.5 and entries[0]["level"] == "INFO"
    assert "ValueError" in entries[1]["exception"]
    assert "hidden-value-1" not in path.read_text()
    rotating = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    assert rotating and rotating[0].maxBytes > 0 and rotating[0].backupCount > 0
    logging.basicConfig(force=True, handlers=[logging.NullHandler()])


def test_the_json_formatter_keeps_odd_extras_as_text() -> None:
    record = logging.makeLogRecord({"msg": "x", "levelname": "INFO", "obj": object()})
    entry = json.loads(JsonFormatter(Redactor()).format(record))
    assert entry["obj"].startswith("<object")


def test_the_memory_cache_is_bounded_and_expires() -> None:
    backend = MemoryBackend(max_entries=3)
    for n in range(5):
        backend.set(f"k{n}", b"v", ttl_seconds=60)
    assert len(backend) == 3 and backend.get("k0") is None and backend.get("k4") == b"v"
    backend.get("k2")  # used: k3 is now the oldest
    backend.set("k5", b"v", ttl_seconds=60)
    assert backend.get("k3") is None and backend.get("k2") == b"v"
    backend.set("short", b"v", ttl_seconds=0.05)
    time.sleep(0.1)
    assert backend.get("short") is None


def test_a_generation_bump_hides_earlier_results_and_ttl_zero_turns_the_cache_off() -> None:
    cache = SearchCache(MemoryBackend(16), ttl_seconds=60)
    results = iter(range(10))

    def compute() -> dict:
        return {"n": next(results)}

    assert cache.search("kb", {"q": "a"}, compute) == ({"n": 0}, False)
    assert cache.search("kb", {"q": "a"}, compute) == ({"n": 0}, True)
    assert cache.search("kb", {"q": "b"}, compute) == ({"n": 1}, False)
    cache.invalidate("kb")
    assert cache.search("kb", {"q": "a"}, compute) == ({"n": 2}, False)
    off = SearchCache(MemoryBackend(16), ttl_seconds=0)
    assert off.search("kb", {"q": "a"}, compute)[1] is False
    assert off.search("kb", {"q": "a"}, compute)[1] is False


def test_metric_labels_use_route_templates() -> None:
    class Route:
        path = "/api/v1/jobs/{job_id}"

    assert route_template({"route": Route()}) == "/api/v1/jobs/{job_id}"
    assert route_template({"path": "/no/such/thing"}) == "unmatched"


def test_sample_value_sums_matching_samples() -> None:
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    counter = Counter("things", "Things.", ["kind"], registry=registry)
    counter.labels("a").inc(2)
    counter.labels("b").inc(3)
    collected = list(registry.collect())
    assert sample_value(collected, "things_total") == 5
    assert sample_value(collected, "things_total", kind="b") == 3
    assert sample_value(collected, "missing_total") == 0


def test_gpus_are_reported_through_nvml_when_present(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """NVML itself needs an NVIDIA driver; a stand-in module with its API checks that
    the collector turns what NVML says into the GPU metrics."""
    import sys
    import types

    from aift.monitoring.collector import MetricSources, StateCollector

    class Memory:
        used, total = 3 * 2**30, 16 * 2**30

    class Rates:
        gpu = 42

    nvml = types.ModuleType("pynvml")
    nvml.nvmlInit = lambda: None
    nvml.nvmlShutdown = lambda: None
    nvml.nvmlDeviceGetCount = lambda: 2
    nvml.nvmlDeviceGetHandleByIndex = lambda index: index
    nvml.nvmlDeviceGetMemoryInfo = lambda handle: Memory()
    nvml.nvmlDeviceGetUtilizationRates = lambda handle: Rates()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    collected = list(StateCollector(MetricSources(workspace_root=tmp_path))._machine())
    assert sample_value(collected, "aift_gpu_utilization_percent", gpu="1") == 42
    assert sample_value(collected, "aift_gpu_memory_used_bytes") == 2 * 3 * 2**30
    assert sample_value(collected, "aift_gpu_memory_total_bytes", gpu="0") == 16 * 2**30
    assert sample_value(collected, "aift_workspace_disk_free_bytes") > 0


def test_no_gpu_means_no_gpu_metrics(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    import sys

    from aift.monitoring.collector import MetricSources, StateCollector

    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    names = {m.name for m in StateCollector(MetricSources(workspace_root=tmp_path))._machine()}
    assert not any(name.startswith("aift_gpu") for name in names)
    assert "aift_machine_memory_total_bytes" in names
