"""Metrics read at scrape time: jobs (from the database, so jobs of every worker count),
the queue, loaded models, running training, knowledge bases, the machine and its GPUs.

Reading state when asked, instead of counting events, keeps `/metrics` right after a
restart and across processes (jobs run in worker processes the server never sees).
The sources are explicit (`MetricSources`): the composition root hands in the readers
of its services, and this module knows nothing of them.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from aift.monitoring.metrics import LATENCY_BUCKETS, REGISTRY
from aift.monitoring.system import gpu_usage

log = logging.getLogger(__name__)

JOB_DURATION_BUCKETS = (*LATENCY_BUCKETS, 600, 1800, 3600, 4 * 3600, 12 * 3600)
TRAINING_GAUGES = {
    "tokens_per_second": "Training throughput of each running training job.",
    "loss": "Latest training loss of each running training job.",
}


def _duration_histogram(durations: list[tuple[str, str, float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "aift_job_duration_seconds",
        "Run time of finished jobs (start to finish), by kind and final state.",
        labels=["kind", "state"],
    )
    groups: dict[tuple[str, str], list[float]] = {}
    for kind, state, seconds in durations:
        groups.setdefault((kind, state), []).append(seconds)
    for (kind, state), values in sorted(groups.items()):
        buckets = [
            (str(edge), float(sum(v <= edge for v in values))) for edge in JOB_DURATION_BUCKETS
        ]
        buckets.append(("+Inf", float(len(values))))
        family.add_metric([kind, state], buckets, sum(values))
    return family


class RunningJob(Protocol):
    """What the metrics read of a running job."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def metrics(self) -> Mapping[str, Any] | None: ...


class LoadedModel(Protocol):
    """What the metrics read of a loaded model."""

    @property
    def name(self) -> str: ...

    @property
    def engine(self) -> str: ...

    @property
    def memory_bytes(self) -> int: ...

    @property
    def busy(self) -> int: ...


def _nothing() -> list[Any]:
    return []


@dataclass(frozen=True)
class MetricSources:
    """Where the scrape-time metrics come from; each reader is called at every scrape.
    Left out, a source contributes nothing (a process without models or jobs)."""

    workspace_root: Path
    job_counts: Callable[[], Mapping[tuple[str, str], int]] = dict
    job_durations: Callable[[], Iterable[tuple[str, str, float]]] = _nothing
    running_jobs: Callable[[], Iterable[RunningJob]] = _nothing
    queue_depth: Callable[[], int] = int
    loaded_models: Callable[[], Iterable[LoadedModel]] = _nothing
    document_counts: Callable[[], Iterable[tuple[str, str, str, int, int]]] = _nothing


class StateCollector:
    """Collects the state its sources report, each time it is scraped."""

    def __init__(self, sources: MetricSources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for part in (self._jobs, self._models, self._knowledge, self._machine):
            try:
                yield from part()
            except Exception:  # noqa: BLE001 - one failing source must not blank /metrics
                log.exception("metrics: %s failed", part.__name__)

    def _jobs(self) -> Iterator[Metric]:
        sources = self.sources
        jobs = GaugeMetricFamily("aift_jobs", "Jobs by kind and state.", labels=["kind", "state"])
        for (kind, state), count in sorted(sources.job_counts().items()):
            jobs.add_metric([kind, state], count)
        yield jobs
        yield GaugeMetricFamily(
            "aift_job_queue_depth",
            "Jobs waiting in the queue for a worker.",
            value=sources.queue_depth(),
        )
        yield _duration_histogram(list(sources.job_durations()))
        gauges = {
            key: GaugeMetricFamily(f"aift_training_{key}", text, labels=["job_id", "kind"])
            for key, text in TRAINING_GAUGES.items()
        }
        for job in sources.running_jobs():
            if not job.kind.startswith("training.") or not job.metrics:
                continue
            for key, gauge in gauges.items():
                value = job.metrics.get(key)
                if isinstance(value, int | float):
                    gauge.add_metric([job.id, job.kind], float(value))
        yield from gauges.values()

    def _models(self) -> Iterator[Metric]:
        memory = GaugeMetricFamily(
            "aift_model_memory_bytes",
            "Memory of each loaded model (weights and cache), by engine.",
            labels=["model", "engine"],
        )
        busy = GaugeMetricFamily(
            "aift_model_active_requests", "Requests using each loaded model now.", labels=["model"]
        )
        for loaded in self.sources.loaded_models():
            memory.add_metric([loaded.name, loaded.engine], loaded.memory_bytes)
            busy.add_metric([loaded.name], loaded.busy)
        yield memory
        yield busy

    def _knowledge(self) -> Iterator[Metric]:
        # names are unique per owner, so a knowledge base is told apart by its id too
        documents = GaugeMetricFamily(
            "aift_kb_documents",
            "Documents per knowledge base, by status.",
            labels=["knowledge_base", "kb_id", "status"],
        )
        chunks = GaugeMetricFamily(
            "aift_kb_chunks",
            "Chunks of each knowledge base's documents, by document status.",
            labels=["knowledge_base", "kb_id", "status"],
        )
        for kb_id, kb, status, count, chunk_count in self.sources.document_counts():
            documents.add_metric([kb, kb_id, status], count)
            chunks.add_metric([kb, kb_id, status], chunk_count)
        yield documents
        yield chunks

    def _machine(self) -> Iterator[Metric]:
        memory = psutil.virtual_memory()
        yield GaugeMetricFamily(
            "aift_machine_cpu_percent",
            "CPU use of the whole machine since the last scrape, in percent.",
            value=psutil.cpu_percent(interval=None),
        )
        yield GaugeMetricFamily(
            "aift_machine_memory_used_bytes",
            "Memory in use on the machine.",
            value=memory.total - memory.available,
        )
        yield GaugeMetricFamily(
            "aift_machine_memory_total_bytes", "Memory of the machine.", value=memory.total
        )
        yield GaugeMetricFamily(
            "aift_machine_cpu_count", "Logical CPUs of the machine.", value=psutil.cpu_count() or 1
        )
        disk = shutil.disk_usage(self.sources.workspace_root)
        yield GaugeMetricFamily(
            "aift_workspace_disk_free_bytes", "Free space on the workspace's disk.", value=disk.free
        )
        yield GaugeMetricFamily(
            "aift_workspace_disk_total_bytes", "Size of the workspace's disk.", value=disk.total
        )
        gpus = gpu_usage()
        if not gpus:
            return
        use = GaugeMetricFamily("aift_gpu_utilization_percent", "GPU busy time.", labels=["gpu"])
        used = GaugeMetricFamily("aift_gpu_memory_used_bytes", "GPU memory used.", labels=["gpu"])
        total = GaugeMetricFamily("aift_gpu_memory_total_bytes", "GPU memory.", labels=["gpu"])
        for gpu in gpus:
            label = [str(gpu["index"])]
            use.add_metric(label, gpu["utilization_percent"])
            used.add_metric(label, gpu["memory_used_bytes"])
            total.add_metric(label, gpu["memory_total_bytes"])
        yield from (use, used, total)


class Metrics:
    """This process's metrics: the in-process registry plus the state of its sources."""

    def __init__(self, sources: MetricSources) -> None:
        self.state = CollectorRegistry(auto_describe=False)
        self.state.register(StateCollector(sources))

    def collect(self) -> list[Metric]:
        """Every metric now, as `/metrics` would expose it."""
        return [*REGISTRY.collect(), *self.state.collect()]

    def exposition(self, keep: LabelFilter | None = None) -> bytes:
        """The Prometheus text format of every metric; with `keep`, only the samples
        whose labels it accepts (what one user may see)."""
        if keep is None:
            return generate_latest(REGISTRY) + generate_latest(self.state)
        return generate_latest(_Filtered((REGISTRY, self.state), keep))


LabelFilter = Callable[[Mapping[str, str]], bool]


@dataclass
class _Filtered:
    """Registries seen through a label filter (each collect() builds fresh families, so
    trimming their samples touches nothing kept)."""

    registries: tuple[CollectorRegistry, ...]
    keep: LabelFilter

    def collect(self) -> Iterator[Metric]:
        for registry in self.registries:
            for family in registry.collect():
                family.samples = [s for s in family.samples if self.keep(s.labels)]
                yield family
