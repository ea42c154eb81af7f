"""Prometheus metrics: read from the database at scrape time, plus a few process-local counters.

`DriftCollector` serves everything the database knows, so every exporter (`driftloop
metrics`, each worker's /metrics) shows the same values and nothing resets on a restart:

- the drift gauges from `drift.drift_status`, events per status, the age of the oldest
  pending event and each model's last evaluation time;
- `driftloop_actions_total{action,outcome}` and the histograms
  `driftloop_action_duration_seconds{action}` and `driftloop_event_reaction_seconds`
  (event created -> its first action started), counted from `drift.action_runs` and
  `drift.drift_events`; the buckets are counted in SQL, so no run is pulled into Python.

One query (`scrape` in queries.sql) per scrape, under a statement timeout. `describe()`
returns the families without touching the database, so registering queries nothing. When
the database cannot be read the scrape still answers: `driftloop_database_up 0`, and the
exporter's own `driftloop_scrape_errors_total` goes up.

`WorkerMetrics` holds what only a worker process knows (leases lost, listener reconnects,
events it finished); their names differ from the database-backed ones on purpose.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from driftloop.worker.logtext import oneline
from driftloop.worker.queries import query

log = logging.getLogger(__name__)

EVENT_STATUSES = ("pending", "running", "resolved", "failed")
DRIFT_LABELS = ["model", "kind", "metric"]
DRIFT_GAUGES = {
    "score": ("driftloop_drift_score", "Drift score of the current window against the baseline."),
    "threshold": ("driftloop_drift_threshold", "Decision line: drifted when the score is above it."),
    "p_value": ("driftloop_drift_p_value", "p-value of the drift test (small: significant)."),
    "drifted": ("driftloop_drifted", "1 when the metric has drifted, else 0."),
}


class DriftCollector(Collector):
    """Everything /metrics reads from the database, in one query per scrape."""

    def __init__(self, database_url: str, timeout_ms: int = 2000) -> None:
        self.database_url = database_url
        self.timeout_ms = timeout_ms
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()  # scrapes may overlap; one connection, one query at a time
        self._errors = 0  # process-local: failed reads of this exporter
        self._last_duration = math.nan

    def _families(self) -> dict[str, Any]:  # Gauge-, Counter- and HistogramMetricFamily by key
        families: dict[str, Any] = {
            key: GaugeMetricFamily(name, doc, labels=DRIFT_LABELS) for key, (name, doc) in DRIFT_GAUGES.items()
        }
        families["events"] = GaugeMetricFamily("driftloop_events", "Drift events per status.", labels=["status"])
        families["oldest_pending"] = GaugeMetricFamily(
            "driftloop_oldest_pending_event_age_seconds",
            "Age of the oldest pending drift event (0 when none is pending).",
        )
        families["last_evaluation"] = GaugeMetricFamily(
            "driftloop_last_evaluation_timestamp_seconds",
            "Wall-clock time (Unix seconds) of the model's last drift evaluation.",
            labels=["model"],
        )
        families["actions"] = CounterMetricFamily(
            "driftloop_actions",
            "Finished action runs by action name and outcome, from drift.action_runs (all workers, all time).",
            labels=["action", "outcome"],
        )
        families["duration"] = HistogramMetricFamily(
            "driftloop_action_duration_seconds",
            "Duration of the action runs that ran to an end (succeeded, failed or lease_lost), from drift.action_runs.",
            labels=["action"],
        )
        families["reaction"] = HistogramMetricFamily(
            "driftloop_event_reaction_seconds",
            "From a drift event's creation to the start of its first action run.",
        )
        families["up"] = GaugeMetricFamily("driftloop_database_up", "1 when this scrape could read the database.")
        families["errors"] = CounterMetricFamily(
            "driftloop_scrape_errors", "Scrapes of this exporter that could not read the database (since it started)."
        )
        families["scrape_duration"] = GaugeMetricFamily(
            "driftloop_scrape_query_duration_seconds", "Time the last database read of this exporter took."
        )
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
        started = time.perf_counter()
        try:
            rows = self._rows()
        except psycopg.Error as exc:
            self._errors += 1
            log.warning("metrics: cannot read the database: %s", oneline(exc))
            families["up"].add_metric([], 0)
            families["errors"].add_metric([], self._errors)
            yield from (families[k] for k in ("up", "errors"))
            return
        self._last_duration = time.perf_counter() - started
        buckets: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        sums: dict[tuple[str, str], float] = {}
        for family, a, b, c, le, value in rows:
            if family in DRIFT_GAUGES:
                families[family].add_metric([a, b, c], float(value))
            elif family == "events":
                families["events"].add_metric([a], value)
            elif family == "oldest_pending":
                families["oldest_pending"].add_metric([], value)
            elif family == "last_evaluation":
                families["last_evaluation"].add_metric([a], value)
            elif family == "actions":
                families["actions"].add_metric([a, b], value)
            elif family in ("duration", "reaction"):
                key = (family, a or "")
                buckets[key].append((le, value))
                if math.isinf(le):
                    sums[key] = float(c)  # the +Inf row carries the sum of all observations
        for (family, action), series in buckets.items():
            labels = [action] if family == "duration" else []
            ordered = [("+Inf" if math.isinf(le) else _le(le), n) for le, n in sorted(series)]  # +Inf last: the count
            families[family].add_metric(labels, ordered, sum_value=sums.get((family, action), 0.0))
        families["up"].add_metric([], 1)
        families["errors"].add_metric([], self._errors)
        families["scrape_duration"].add_metric([], self._last_duration)
        yield from families.values()


def _le(bound: float) -> str:
    """Bucket bounds as the client library writes them (0.5, 1.0, 2.5, 60.0)."""
    return repr(float(bound))


class WorkerMetrics:
    """Counters only this worker process knows; they start at 0 with the process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "driftloop_events_processed",
            "Events finished by this worker process, by what became of them.",
            ["status"],
            registry=registry,
        )
        self.leases_lost = Counter(
            "driftloop_leases_lost",
            "Events whose lease this worker process lost before recording the result.",
            registry=registry,
        )
        self.reconnects = Counter(
            "driftloop_listener_reconnects", "Times the LISTEN connection was re-established.", registry=registry
        )


def serve(port: int, registry: CollectorRegistry, addr: str = "0.0.0.0") -> Any:
    """Serve /metrics in a background thread; returns the HTTP server (shutdown() to stop)."""
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server
