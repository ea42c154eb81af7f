"""/metrics of a running worker, scraped by a real Prometheus server, shows the right values."""

from __future__ import annotations

import math
import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import driftloop
from tests.support.helpers import (
    DRIFTLOOP,
    count,
    free_port,
    insert_events,
    kill_group,
    start_worker,
    wait_until,
    write_config,
)

PROMETHEUS = "prometheus"  # Debian's package; `make test` installs it


def log_refusal_drift(db_url: str) -> None:
    """support-bot: 2% refusals in its baseline two hours ago, 30% in the last hour."""
    now = datetime.now(UTC)
    rows = []
    for period, start, refusal_share in (
        ("baseline", now - timedelta(hours=3), 0.02),
        ("current", now - timedelta(minutes=45), 0.30),
    ):
        for i in range(200):
            rows.append(
                {
                    "model": "support-bot",
                    "created_at": start + timedelta(seconds=10 * i),
                    "prompt": f"{period} question {i}",
                    "response": "an answer",
                    "is_refusal": i < 200 * refusal_share,
                    "toxicity": 0.01,
                    "correct": i % 10 != 0,
                }
            )
    with driftloop.connect(db_url) as dl:
        dl.log_interactions(rows)
        dl.set_baseline("support-bot", now - timedelta(hours=3), now - timedelta(hours=2))


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    """Start a Prometheus server scraping the given target every second; yields (start, api_url)."""
    procs: list[subprocess.Popen[bytes]] = []
    port = free_port()

    def start(target: str) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: driftloop
    static_configs:
      - targets: ["{target}"]
""")
        with (tmp_path / "prometheus.log").open("ab") as log:
            procs.append(
                subprocess.Popen(
                    [
                        PROMETHEUS,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def promql(api: str, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Instant query -> {labels without job/instance: value}; {} while Prometheus is not up yet."""
    try:
        response = httpx.get(f"{api}/api/v1/query", params={"query": expr}, timeout=5)
    except httpx.TransportError:
        return {}
    if response.status_code != 200:  # 503 while Prometheus starts
        return {}
    body = response.json()
    out = {}
    for item in body["data"]["result"]:
        labels = tuple(sorted((k, v) for k, v in item["metric"].items() if k not in ("job", "instance", "__name__")))
        out[labels] = float(item["value"][1])
    return out


def test_prometheus_scrapes_the_contract_series_from_a_running_worker(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path, prometheus: Any
) -> None:
    log_refusal_drift(db_url)
    config = write_config(
        tmp_path,
        """
[worker]
backoff_base_s = 3600

[actions.log_it]
type = "command"
argv = ["true"]

[actions.fails]
type = "command"
argv = ["sh", "-c", "echo broken >&2; exit 1"]

[[routes]]
model = "broken*"
actions = ["fails"]

[[routes]]
actions = ["log_it"]
""",
    )
    metrics_port = free_port()
    worker = start_worker(config, tmp_path / "worker.log", "--metrics-port", str(metrics_port))
    try:
        insert_events(conn, ["other-bot"], kind="embedding")
        insert_events(conn, ["broken-bot"], kind="accuracy")
        # Idle: every event (also any the engine raised while logging) handled once.
        wait_until(
            lambda: (
                count(conn, "SELECT count(*) FROM drift.drift_events WHERE attempts = 0 OR status = 'running'") == 0
            ),
            timeout=60,
            what="the worker to go idle",
        )
        api = prometheus(f"127.0.0.1:{metrics_port}")
        wait_until(
            lambda: promql(api, "driftloop_database_up") and promql(api, "driftloop_actions_total"),
            timeout=60,
            what="Prometheus to scrape the worker",
        )

        status = conn.execute(
            "SELECT model, kind, metric, score, threshold, p_value, drifted FROM drift.drift_status"
        ).fetchall()
        assert any(r[:3] == ("support-bot", "behavior", "refusal_rate") and r[6] for r in status)
        for name, column in (
            ("driftloop_drift_score", 3),
            ("driftloop_drift_threshold", 4),
            ("driftloop_drift_p_value", 5),
            ("driftloop_drifted", 6),
        ):
            expected = {
                (("kind", r[1]), ("metric", r[2]), ("model", r[0])): float(r[column])
                for r in status
                if r[column] is not None
            }
            scraped = promql(api, name)
            assert scraped.keys() == expected.keys(), name
            for key, value in expected.items():
                assert math.isclose(scraped[key], value, rel_tol=1e-9, abs_tol=1e-300), (name, key)

        events = dict(conn.execute("SELECT status, count(*) FROM drift.drift_events GROUP BY status").fetchall())
        assert events["pending"] == 1  # broken-bot, backing off
        assert promql(api, "driftloop_events") == {
            (("status", s),): float(events.get(s, 0)) for s in ("pending", "running", "resolved", "failed")
        }

        runs = conn.execute("SELECT action, outcome, count(*) FROM drift.action_runs GROUP BY 1, 2").fetchall()
        assert promql(api, "driftloop_actions_total") == {(("action", a), ("outcome", o)): float(n) for a, o, n in runs}
        assert promql(api, "driftloop_actions_total")[(("action", "fails"), ("outcome", "failed"))] == 1.0
        total_runs = float(sum(n for _, _, n in runs))
        assert sum(promql(api, "driftloop_action_duration_seconds_count").values()) == total_runs
        assert promql(api, "driftloop_event_reaction_seconds_count") == {(): float(events_total(conn))}
        assert promql(api, "driftloop_database_up") == {(): 1.0}
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        kill_group(worker)


def events_total(conn: psycopg.Connection[Any]) -> int:
    return count(conn, "SELECT count(*) FROM drift.drift_events")


def test_driftloop_metrics_serves_the_drift_gauges_alone(db_url: str, tmp_path: Path) -> None:
    log_refusal_drift(db_url)
    port = free_port()
    with (tmp_path / "metrics.log").open("wb") as log:
        server = subprocess.Popen(
            [DRIFTLOOP, "metrics", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
        )
    try:
        text = wait_until(lambda: _get(f"http://127.0.0.1:{port}/metrics"), timeout=30, what="/metrics")
        assert 'driftloop_drifted{kind="behavior",metric="refusal_rate",model="support-bot"} 1.0' in text
        assert "driftloop_database_up 1.0" in text
        assert "driftloop_actions_total" not in text  # no actions run here
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0


def _get(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=5).text
    except httpx.TransportError:
        return None


def test_registering_the_collector_queries_nothing_and_a_dead_database_still_scrapes() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from driftloop.worker.metrics import DriftCollector

    registry = CollectorRegistry()
    # Nothing listens there: registering would fail if describe() fell back to collect().
    registry.register(DriftCollector("postgresql://127.0.0.1:1/none?connect_timeout=2", timeout_ms=500))
    text = generate_latest(registry).decode()
    assert "driftloop_database_up 0.0" in text
    assert "driftloop_drift_score{" not in text
