"""Metrics only the process itself can measure: HTTP request and tick durations, and the
process's own CPU, memory and file descriptors.

Counts that must agree across processes come from the database (:mod:`engine.metrics`);
these are per process by nature, as Prometheus expects of a scraped instance, so each
API process reports the requests it served and the embedded worker's ticks it ran. One
:class:`ProcessMetrics` is made at the edge (the app factory, ``referral serve``) and
handed to what records into it; nothing registers globally.
"""

from __future__ import annotations

from prometheus_client import Histogram
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TICK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ProcessMetrics:
    """This process's registry and the histograms recorded into it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        # Labelled by route template, never the raw path: a path holds case ids.
        self.http = Histogram(
            "referral_http_request_duration_seconds", "HTTP request handling time.",
            ["method", "route", "status"], buckets=REQUEST_BUCKETS, registry=self.registry,
        )
        self.tick = Histogram(
            "referral_tick_duration_seconds", "Time one tick took to fire what was due.",
            buckets=TICK_BUCKETS, registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http.labels(method, route, f"{status // 100}xx").observe(seconds)

    def observe_tick(self, seconds: float) -> None:
        self.tick.observe(seconds)
