"""Prometheus metrics: the worker's own counters, and drift gauges read at scrape time.

`DriftCollector` runs one query (drift.drift_status plus event counts) per scrape under a
statement timeout; its `describe()` returns the metric families without touching the
database, so registering it queries nothing. When the database cannot be read the scrape
still answers, with `driftloop_database_up 0` and no drift gauges.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftloop.worker.logtext import oneline
from driftloop.worker.queries import query

log = logging.getLogger(__name__)

EVENT_STATUSES = ("pending", "running", "resolved", "failed")
DRIFT_LABELS = ["model", "kind", "metric"]
DRIFT_GAUGES = {
    "score": ("driftloop_drift_score", "Drift score of the current window against the baseline."),
    "threshold": ("driftloop_drift_threshold", "Threshold above which the score counts as drift."),
    "p_value": ("driftloop_drift_p_value", "p-value of the drift test (small: significant)."),
    "drifted": ("driftloop_drifted", "1 when the metric has drifted, else 0."),
}


class DriftCollector(Collector):
    """Gauges from drift.drift_status and drift.drift_events, read on every scrape."""

    def __init__(self, database_url: str, timeout_ms: int = 2000) -> None:
        self.database_url = database_url
        self.timeout_ms = timeout_ms
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()  # scrapes may overlap; one connection, one query at a time

    def _families(self) -> dict[str, GaugeMetricFamily]:
        families = {key: GaugeMetricFamily(name, doc, labels=DRIFT_LABELS) for key, (name, doc) in DRIFT_GAUGES.items()}
        families["events"] = GaugeMetricFamily("driftloop_events", "Drift events per status.", labels=["status"])
        families["up"] = GaugeMetricFamily("driftloop_database_up", "1 when the last scrape could read the database.")
        return families

    def describe(self) -> Iterator[Metric]:
        yield from self._families().values()

    def _rows(self) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    self.database_url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name="driftloop-metrics",
                    options=f"-c statement_timeout={int(self.timeout_ms)}",
                )
            try:
                return self._conn.execute(query("scrape")).fetchall()
            except psycopg.Error:
                self._conn.close()  # reconnect on the next scrape
                raise

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        try:
            rows = self._rows()
        except psycopg.Error as exc:
            log.warning("metrics: cannot read drift status: %s", oneline(exc))
            families["up"].add_metric([], 0)
            yield families["up"]
            return
        counts = dict.fromkeys(EVENT_STATUSES, 0.0)
        for family, model, kind, metric, score, threshold, p_value, drifted, status, n in rows:
            if family == "events":
                counts[status] = n
                continue
            labels = [model, kind, metric]
            for key, value in (("score", score), ("threshold", threshold), ("p_value", p_value), ("drifted", drifted)):
                if value is not None:
                    families[key].add_metric(labels, float(value))
        for status, n in counts.items():
            families["events"].add_metric([status], n)
        families["up"].add_metric([], 1)
        yield from families.values()


class WorkerMetrics:
    """The worker's own counters and histograms."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.actions = Counter(
            "driftloop_actions", "Action runs by action name and outcome.", ["action", "outcome"], registry=registry
        )
        self.action_duration = Histogram(
            "driftloop_action_duration_seconds",
            "Duration of action runs.",
            ["action"],
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
        )
        self.reaction = Histogram(
            "driftloop_event_reaction_seconds",
            "From a drift event's creation to its first action's start.",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.events = Counter(
            "driftloop_events_processed",
            "Events finished by this worker, by new status.",
            ["status"],
            registry=registry,
        )
        self.leases_lost = Counter(
            "driftloop_leases_lost",
            "Events whose lease this worker lost before recording the result.",
            registry=registry,
        )
        self.reconnects = Counter(
            "driftloop_listener_reconnects", "Times the LISTEN connection was re-established.", registry=registry
        )


def serve(port: int, registry: CollectorRegistry, addr: str = "0.0.0.0") -> Any:
    """Serve /metrics in a background thread; returns the HTTP server (shutdown() to stop)."""
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server
