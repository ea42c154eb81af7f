"""/metrics of a running worker, scraped by a real Prometheus server, shows the right values."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import driftloop
from tests.support import grafana
from tests.support.helpers import (
    DRIFTLOOP,
    count,
    free_port,
    insert_events,
    kill_group,
    refusal_drift_rows,
    start_worker,
    wait_until,
    write_config,
)

PROMETHEUS = "prometheus"  # Debian's package; `make test` installs it


def log_refusal_drift(db_url: str) -> None:
    """support-bot: 2% refusals in its baseline two hours ago, 30% in the last hour."""
    now = datetime.now(UTC)
    rows = refusal_drift_rows(now)
    with driftloop.connect(db_url) as dl:
        dl.log_interactions(rows)
        dl.set_baseline("support-bot", now - timedelta(hours=3), now - timedelta(hours=2))


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    """Start a Prometheus server scraping targets every second; yields start(target or {job: target}, rules)."""
    procs: list[subprocess.Popen[bytes]] = []
    port = free_port()

    def start(targets: str | dict[str, str], rules: Path | None = None) -> str:
        jobs = {"driftloop": targets} if isinstance(targets, str) else targets
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            + (f"rule_files:\n  - {rules}\n" if rules else "")
            + "scrape_configs:\n"
            + "".join(
                f'  - job_name: {job}\n    static_configs:\n      - targets: ["{target}"]\n'
                for job, target in jobs.items()
            )
        )
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


def wait_for_scrapes(api: str, predicate: Any) -> None:
    """Wait until Prometheus has scraped; on a timeout, say what its targets report."""
    try:
        wait_until(predicate, timeout=60, what="Prometheus to scrape driftloop")
    except AssertionError:
        targets = httpx.get(f"{api}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        raise AssertionError(
            [(t["labels"]["job"], t["health"], t["lastError"], t["lastScrapeDuration"]) for t in targets]
        ) from None


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
        wait_for_scrapes(api, lambda: promql(api, "driftloop_database_up") and promql(api, "driftloop_actions_total"))

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
        assert "# TYPE driftloop_actions_total counter" in text
        assert "driftloop_actions_total{" not in text  # no action has run yet
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


FAILING_CONFIG = """
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
"""


def start_metrics(port: int, log: Path) -> subprocess.Popen[bytes]:
    """`driftloop metrics` as a real process (DATABASE_URL from the env)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [DRIFTLOOP, "metrics", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()
        )


def wait_idle(conn: psycopg.Connection[Any]) -> None:
    wait_until(
        lambda: count(conn, "SELECT count(*) FROM drift.drift_events WHERE attempts = 0 OR status = 'running'") == 0,
        timeout=60,
        what="the worker to handle every event",
    )


def top_level_bool(expr: str) -> str:
    """`a > 600` -> `a > bool 600`: the alert's condition as a 0/1 series that always exists."""
    depth, quote, last = 0, "", None
    i = 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif depth == 0 and expr[i : i + 2] in ("==", "!=", ">=", "<="):
            last = i + 2
            i += 1
        elif depth == 0 and ch in "<>":
            last = i + 1
        i += 1
    assert last is not None, f"no comparison in alert expression {expr!r}"
    return f"{expr[:last]} bool{expr[last:]}"


def test_prometheus_evaluates_every_dashboard_and_rule_expression(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path, prometheus: Any
) -> None:
    log_refusal_drift(db_url)  # support-bot drifts: DriftDetected goes pending
    worker_port, metrics_port = free_port(), free_port()
    worker = start_worker(
        write_config(tmp_path, FAILING_CONFIG), tmp_path / "worker.log", "--metrics-port", str(worker_port)
    )
    exporter = start_metrics(metrics_port, tmp_path / "metrics.log")
    try:
        insert_events(conn, ["other-bot"], kind="embedding")
        (broken,) = insert_events(conn, ["broken-bot"], kind="accuracy")
        conn.execute("UPDATE drift.drift_events SET max_attempts = 1 WHERE id = %s", (broken,))
        wait_idle(conn)
        conn.execute("SELECT count(*) FROM drift.evaluate()")  # an evaluation to time
        api = prometheus(
            {"driftloop-worker": f"127.0.0.1:{worker_port}", "driftloop-metrics": f"127.0.0.1:{metrics_port}"},
            rules=grafana.RULES,
        )
        wait_for_scrapes(api, lambda: ready(api, "driftloop_database_up == 1") and ready(api, "up == 1"))
        time.sleep(3)  # a few scrapes, so increase() over a window has two samples
        variables = {"model": "support-bot"}
        empty = []
        for q in grafana.queries():
            if q.datasource != grafana.PROMETHEUS:
                continue
            expr = grafana.expand_promql(q.text, "10s", "5s", "60s", variables)
            if not promql_series(api, expr):
                empty.append(f"{q.dashboard} / {q.where}: {expr}")
        for name, expr in grafana.rule_expressions().items():
            if not promql_series(api, top_level_bool(expr)):
                empty.append(f"rule {name}: {expr}")
        assert empty == []

        rules = httpx.get(f"{api}/api/v1/rules", timeout=5).json()["data"]["groups"][0]["rules"]
        assert {r["name"] for r in rules} == set(grafana.rule_expressions())
        assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
        state = {r["name"]: r["state"] for r in rules}
        wait_until(
            lambda: alert_states(api).get("DriftEventsFailing") == "firing",
            timeout=30,
            what="DriftEventsFailing to fire for the dead letter",
        )
        assert alert_states(api).get("DriftDetected") == "pending"  # `for: 5m`
        assert state["DriftloopWorkerDown"] == "inactive" and state["DriftloopDatabaseDown"] == "inactive"
    finally:
        for proc in (worker, exporter):
            proc.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0 and exporter.wait(timeout=60) == 0
        kill_group(worker)


def ready(api: str, expr: str) -> bool:
    """Both exporters answer `expr` (an empty or failed query while Prometheus starts)."""
    try:
        response = httpx.get(f"{api}/api/v1/query", params={"query": expr}, timeout=5)
    except httpx.TransportError:
        return False
    return response.status_code == 200 and len(response.json()["data"]["result"]) == 2


def promql_series(api: str, expr: str) -> list[Any]:
    response = httpx.get(f"{api}/api/v1/query", params={"query": expr}, timeout=5)
    assert response.status_code == 200, (expr, response.text)
    return list(response.json()["data"]["result"])


def alert_states(api: str) -> dict[str, str]:
    alerts = httpx.get(f"{api}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {a["labels"]["alertname"]: a["state"] for a in alerts}


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, labels): value}."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def from_database(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[Any, float]:
    prefixes = ("driftloop_actions_total", "driftloop_action_duration_seconds", "driftloop_event_reaction_seconds")
    return {k: v for k, v in samples.items() if k[0].startswith(prefixes)}


def test_action_counters_survive_a_worker_restart_and_agree_across_exporters(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    config = write_config(tmp_path, FAILING_CONFIG)
    worker_port, metrics_port = free_port(), free_port()
    exporter = start_metrics(metrics_port, tmp_path / "metrics.log")
    worker = start_worker(config, tmp_path / "worker.log", "--metrics-port", str(worker_port))
    try:
        insert_events(conn, ["a-bot", "b-bot"], kind="embedding")
        insert_events(conn, ["broken-bot"], kind="accuracy")
        wait_idle(conn)
        before = from_database(wait_until(lambda: _scrape_or_none(worker_port), timeout=30, what="worker /metrics"))
        assert before[("driftloop_actions_total", (("action", "log_it"), ("outcome", "succeeded")))] == 2.0
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0

        worker = start_worker(config, tmp_path / "worker2.log", "--metrics-port", str(worker_port))
        insert_events(conn, ["c-bot"], kind="behavior")
        wait_idle(conn)
        after_worker = from_database(wait_until(lambda: _scrape_or_none(worker_port), timeout=30, what="/metrics"))
        after_exporter = from_database(wait_until(lambda: _scrape_or_none(metrics_port), timeout=30, what="/metrics"))
    finally:
        for proc in (worker, exporter):
            proc.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        exporter.wait(timeout=30)
        kill_group(worker)
    # The restarted worker counts the runs of its predecessor too, and both exporters agree.
    assert after_worker == after_exporter
    assert after_worker[("driftloop_actions_total", (("action", "log_it"), ("outcome", "succeeded")))] == 3.0
    assert after_worker[("driftloop_actions_total", (("action", "fails"), ("outcome", "failed")))] == 1.0
    runs = count(conn, "SELECT count(*) FROM drift.action_runs")
    assert after_worker[("driftloop_action_duration_seconds_count", (("action", "log_it"),))] == 3.0
    assert after_worker[("driftloop_event_reaction_seconds_count", ())] == float(runs)  # one run per event here
    reaction_sum = conn.execute(
        "SELECT sum(extract(epoch FROM r.started_at - e.created_at))::float8"
        " FROM drift.action_runs r JOIN drift.drift_events e ON e.id = r.event_id"
    ).fetchone()
    assert reaction_sum is not None
    assert math.isclose(after_worker[("driftloop_event_reaction_seconds_sum", ())], reaction_sum[0], rel_tol=1e-9)
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in after_worker.items()
        if name == "driftloop_event_reaction_seconds_bucket"
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    assert buckets[-1] == (math.inf, float(runs))


def _scrape_or_none(port: int) -> dict[Any, float] | None:
    try:
        return scrape(port)
    except httpx.TransportError:
        return None


def test_a_scrape_that_hits_the_statement_timeout_answers_database_down(db_url: str) -> None:
    from prometheus_client import generate_latest

    from driftloop.worker.metrics import DriftCollector

    registry = CollectorRegistry()
    registry.register(DriftCollector(db_url, timeout_ms=300))
    assert "driftloop_database_up 1.0" in generate_latest(registry).decode()
    with psycopg.connect(db_url) as locker:
        # Another transaction holds the table: the scrape query waits, and its timeout ends it.
        locker.execute("LOCK TABLE drift.action_run_counts IN ACCESS EXCLUSIVE MODE")
        text = generate_latest(registry).decode()
        assert "driftloop_database_up 0.0" in text
        assert "driftloop_scrape_errors_total 1.0" in text
        assert "driftloop_drift_score{" not in text
    text = generate_latest(registry).decode()  # the lock is gone: the next scrape reconnects and reads
    assert "driftloop_database_up 1.0" in text and "driftloop_scrape_errors_total 1.0" in text
