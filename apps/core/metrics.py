"""Prometheus metrics: `/metrics` of any process shows every process's counters and the
collectors the apps register.

Counters and histograms (e.g. apps/orchestrator/metrics.py) live in prometheus_client's default
registry. In the scale-out profile several ASGI and Celery processes each count their own
routing; with `PROMETHEUS_MULTIPROC_DIR` set (before the first import of prometheus_client)
every process writes its values to files in that directory and `/metrics` of any process merges
them, so a ticket routed by a Celery worker is counted at the ASGI process that Prometheus
scrapes. Figures read from the database at scrape time (queue sizes) come from collectors the
apps register with `collector_register` when they are ready. See docs/operations.md.
"""

import os

from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

_collectors: list[Collector] = []


def collector_register(collector: Collector) -> None:
    """Add figures computed at each scrape (called from an AppConfig.ready)."""
    if collector not in _collectors:
        _collectors.append(collector)


def multiprocess_dir() -> str | None:
    """The directory shared by every process's metric files, or None in one-process mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def metrics_exposition(*, accept: str) -> tuple[bytes, str]:
    """The metrics in the format the scraper asked for (Prometheus text or OpenMetrics)."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        # Every process's files, merged; this process's own registry would show only itself.
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry.register(REGISTRY)
    for collector in _collectors:
        registry.register(collector)
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
