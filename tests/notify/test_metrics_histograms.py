"""/metrics as people graph it: histograms of due-to-delivered latency, delivery attempt
and tick durations and HTTP request durations, the delivery queue's depth and the
process's own metrics; accepted by the Prometheus parser, counted from the database where
several processes must agree."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_server import Clock, LiveServer, live_server
from conftest import free_port
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from support_servers import MailSink, WebhookReceiver
from test_notices import T0, WORKFLOW, make_site

from engine.process_metrics import ProcessMetrics

LATER = T0 + timedelta(hours=2, minutes=5)


@pytest.fixture
def captured() -> dict[str, ProcessMetrics]:
    return {}


@pytest.fixture
def server(db_url: str, captured: dict[str, ProcessMetrics]) -> Iterator[LiveServer]:
    def grab(app: FastAPI) -> None:
        captured["metrics"] = app.state.process_metrics

    with live_server(db_url, clock=Clock(LATER), configure=grab) as running:
        yield running


def _families(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/metrics")
    assert answer.status_code == 200
    return {f.name: f for f in text_string_to_metric_families(answer.text)}


def _buckets(family: Any) -> dict[str, float]:
    return {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}


def test_metrics_expose_histograms_queue_depth_and_process_metrics(
    db_engine: Engine, db_url: str, server: LiveServer, captured: dict[str, ProcessMetrics],
    tmp_path: Path,
) -> None:
    with WebhookReceiver() as receiver, MailSink(free_port()) as sink:
        site = make_site(db_engine, receiver, sink, tmp_path, WORKFLOW.read_text("utf-8"))
        site.worker.metrics = captured["metrics"]
        case = site.open(T0)
        site.fire(case, "accept", "coordinator", T0 + timedelta(minutes=5))
        # Delivered two hours late: the receipt, the police's webhook and mail.
        site.worker.run_once(LATER)
        site.open(LATER)  # a receipt due now, not yet sent
        site.worker.deliverer.close()
    httpx.get(f"{server.url}/nope/{case}")
    families = _families(server.url)

    latency = families["referral_notification_latency_seconds"]
    assert latency.type == "histogram"
    buckets = _buckets(latency)
    assert buckets["+Inf"] == 3
    assert buckets["3600.0"] == 0 and buckets["14400.0"] == 3
    counts = list(buckets.values())
    assert counts == sorted(counts)  # cumulative
    attempts = _buckets(families["referral_delivery_attempt_duration_seconds"])
    assert attempts["+Inf"] == 3
    assert families["referral_notifications_queue_depth"].samples[0].value == 1
    tick = _buckets(families["referral_tick_duration_seconds"])
    assert tick["+Inf"] == 1
    routes = {s.labels["route"] for s in families["referral_http_request_duration_seconds"]
              .samples}
    assert "unmatched" in routes and "/healthz" in routes
    assert not any(str(case) in r for r in routes)  # no case id in a label
    assert "process_cpu_seconds" in families

    # A second process on the same database agrees on every count it did not see happen.
    with live_server(db_url, clock=Clock(LATER)) as other:
        again = _families(other.url)
    assert _buckets(again["referral_notification_latency_seconds"]) == buckets
