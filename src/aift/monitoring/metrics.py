"""The Prometheus metrics this process records as things happen.

One registry (`REGISTRY`) holds what is counted in-process: HTTP requests, generations,
searches, cache lookups, and the process's own CPU and memory. What lives in the
database or in services (jobs, knowledge bases, loaded models, running training) is read
at scrape time by `aift.monitoring.collector`. `/metrics` and the dashboard both read
these, so the numbers a user sees are the numbers Prometheus scrapes.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
)
from prometheus_client.core import Metric

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

# Request latency: from a health check (sub-ms) to a long non-streamed answer (minutes).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
TOKENS_PER_SECOND_BUCKETS = (1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 250, 500, 1000)
SEARCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

http_requests = Counter(
    "aift_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
http_duration = Histogram(
    "aift_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (streams included).",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
model_requests = Counter(
    "aift_model_requests",
    "Generations started per model, by how they ended (stop, length, cancelled, error).",
    ["model", "outcome"],
    registry=REGISTRY,
)
engine_crashes = Counter(
    "aift_engine_crashes",
    "Engine processes that died under a loaded model (native crash or kill), by engine and signal.",
    ["engine", "signal"],
    registry=REGISTRY,
)
model_prompt_tokens = Counter(
    "aift_model_prompt_tokens", "Prompt tokens read per model.", ["model"], registry=REGISTRY
)
model_generated_tokens = Counter(
    "aift_model_generated_tokens", "Tokens generated per model.", ["model"], registry=REGISTRY
)
model_ttft = Histogram(
    "aift_model_time_to_first_token_seconds",
    "Time from a generation's start (model loading included) to its first text.",
    ["model"],
    buckets=TTFT_BUCKETS,
    registry=REGISTRY,
)
model_tokens_per_second = Histogram(
    "aift_model_decode_tokens_per_second",
    "Decode speed of each generation (generated tokens over decode time).",
    ["model"],
    buckets=TOKENS_PER_SECOND_BUCKETS,
    registry=REGISTRY,
)
search_duration = Histogram(
    "aift_search_duration_seconds",
    "Knowledge-base search latency (embedding, index, fusion, re-ranking), by mode and "
    "whether the result came from the cache.",
    ["mode", "cached"],
    buckets=SEARCH_BUCKETS,
    registry=REGISTRY,
)
cache_lookups = Counter(
    "aift_cache_lookups",
    "Cache lookups by cache (query_embedding, search) and result (hit, miss).",
    ["cache", "result"],
    registry=REGISTRY,
)


def sample_value(metrics: list[Metric], name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none):
    how the dashboard reads a number out of a collection."""
    total = 0.0
    for metric in metrics:
        for sample in metric.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
