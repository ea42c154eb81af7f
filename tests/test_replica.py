"""Dashboards, /metrics, `events list` and `report` on a real streaming hot standby.

A primary cluster of its own is migrated, takes traffic, drifts, and its worker acts; a
standby made by `pg_basebackup -R -X stream` before the migration receives all of it by
WAL streaming. Everything meant for a replica then runs against the standby, which refuses
any write: the values must be the primary's, and nothing may need to write.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import psycopg.sql
import pytest
from prometheus_client.parser import text_string_to_metric_families

import driftloop
from driftloop import migrations
from tests.support import grafana
from tests.support.helpers import DRIFTLOOP, free_port, refusal_drift_rows, wait_until, write_config
from tests.support.standby import new_primary, new_standby, wait_for_replay

WORKER_CONFIG = """
[actions.log_it]
type = "command"
argv = ["true"]

[[routes]]
actions = ["log_it"]
"""


@dataclass(frozen=True)
class Replica:
    primary: str  # URL of the primary's database
    standby: str  # the same database on the standby
    folder: Path
    starts: datetime
    ends: datetime


def log_drift(url: str, now: datetime) -> None:
    """support-bot: refusals 2% -> 30% and its embeddings move to another direction."""
    rng = np.random.default_rng(3)
    rows = refusal_drift_rows(now)
    baseline = rng.normal(0, 0.05, (200, 16)) + np.eye(16)[0]
    current = rng.normal(0, 0.05, (200, 16)) + np.eye(16)[1]
    with driftloop.connect(url) as dl:
        dl.log_interactions(rows)
        dl.log_embeddings("support-bot", baseline, [now - timedelta(hours=3, seconds=-10 * i) for i in range(200)])
        dl.log_embeddings("support-bot", current, [now - timedelta(minutes=45, seconds=-10 * i) for i in range(200)])
        dl.set_baseline("support-bot", now - timedelta(hours=3), now - timedelta(hours=2))
        dl.evaluate()


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    # Not the shared test server: other tests stop and restart it, and DATABASE_URL may name
    # a server whose WAL we cannot stream. A failure to build either cluster fails the test.
    primary = new_primary()
    standby = None
    try:
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE driftloop")
        url = primary.url("driftloop")
        # The standby starts from a backup of an empty database: the schema, the traffic and
        # the worker's runs all reach it through the WAL stream.
        standby = new_standby(primary)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        migrations.upgrade(url)
        now = datetime.now(UTC)
        log_drift(url, now)
        folder = tmp_path_factory.mktemp("replica")
        subprocess.run(
            [DRIFTLOOP, "worker", "--once"],
            env={**os.environ, "DATABASE_URL": url, "DRIFTLOOP_CONFIG": str(write_config(folder, WORKER_CONFIG))},
            check=True,
            capture_output=True,
            timeout=120,
        )
        with psycopg.connect(url, autocommit=True) as conn:
            # One event left waiting for a worker: "Open and failed events" and the pending gauge.
            conn.execute(
                "INSERT INTO drift.drift_events (model, kind, metric, score, threshold, p_value,"
                " window_start, window_end) VALUES"
                " ('support-bot', 'accuracy', 'accuracy', 0.3, 0.1, 0.001, now() - interval '1 hour', now())"
            )
        wait_for_replay(url, standby.url("driftloop"))
        yield Replica(url, standby.url("driftloop"), folder, now - timedelta(hours=4), now + timedelta(minutes=5))
    finally:
        # Throwaway clusters: no shutdown checkpoint needed.
        try:
            if standby is not None:
                standby.stop(mode="immediate")
        finally:
            primary.stop(mode="immediate")
            shutil.rmtree(primary.datadir.parent, ignore_errors=True)


def rows(url: str, sql: str, role: str | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        if role:
            conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))
        return conn.execute(sql).fetchall()


def test_the_standby_holds_the_primarys_drift_and_refuses_writes(replica: Replica) -> None:
    assert rows(replica.standby, "SELECT pg_is_in_recovery()") == [(True,)]
    status = "SELECT model, kind, metric, score, threshold, p_value, drifted FROM drift.drift_status ORDER BY 1, 2, 3"
    on_primary = rows(replica.primary, status)
    drifted = {(r[1], r[2]) for r in on_primary if r[6]}
    assert {("behavior", "refusal_rate"), ("embedding", "centroid_distance")} <= drifted
    assert rows(replica.standby, status) == on_primary
    events = "SELECT id, model, kind, metric, status, attempts FROM drift.drift_events ORDER BY id"
    assert rows(replica.standby, events) == rows(replica.primary, events)
    assert {r[4] for r in rows(replica.standby, events)} == {"resolved", "pending"}
    with driftloop.connect(replica.standby) as sdk, driftloop.connect(replica.primary) as on:
        assert sdk.status() == on.status()
        as_of = replica.ends - timedelta(minutes=5)
        assert sdk.status(as_of=as_of, models=["support-bot"]) == on.status(as_of=as_of, models=["support-bot"])
    # What writes stays on the primary: evaluation (it records evaluations and events).
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        rows(replica.standby, "SELECT count(*) FROM drift.evaluate()")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.TransportError:
        return None
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_driftloop_metrics_on_the_standby_serves_the_primarys_values(replica: Replica) -> None:
    port = free_port()
    log = replica.folder / "metrics.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [DRIFTLOOP, "metrics", "--port", str(port)],
            env={**os.environ, "DATABASE_URL": replica.standby},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        samples = wait_until(lambda: scrape(port), timeout=30, what="/metrics of `driftloop metrics` on the standby")
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, log.read_text()
    assert samples[("driftloop_database_up", ())] == 1.0, log.read_text()
    assert samples[("driftloop_scrape_errors_total", ())] == 0.0

    status = rows(
        replica.primary, "SELECT model, kind, metric, score, threshold, p_value, drifted FROM drift.drift_status"
    )
    for name, column in (
        ("driftloop_drift_score", 3),
        ("driftloop_drift_threshold", 4),
        ("driftloop_drift_p_value", 5),
        ("driftloop_drifted", 6),
    ):
        expected = {
            (name, (("kind", r[1]), ("metric", r[2]), ("model", r[0]))): float(r[column])
            for r in status
            if r[column] is not None
        }
        assert expected, name
        assert {k: v for k, v in samples.items() if k[0] == name} == expected
    events = dict(rows(replica.primary, "SELECT status, count(*) FROM drift.drift_events GROUP BY status"))
    assert {k: v for k, v in samples.items() if k[0] == "driftloop_events"} == {
        ("driftloop_events", (("status", s),)): float(events.get(s, 0))
        for s in ("pending", "running", "resolved", "failed")
    }
    runs = rows(replica.primary, "SELECT action, outcome, count(*) FROM drift.action_runs GROUP BY 1, 2")
    assert runs
    assert {k: v for k, v in samples.items() if k[0] == "driftloop_actions_total"} == {
        ("driftloop_actions_total", (("action", a), ("outcome", o))): float(n) for a, o, n in runs
    }


SQL_QUERIES = [q for q in grafana.queries() if q.datasource == grafana.POSTGRES]


@pytest.mark.parametrize("interval", ["1m", "1h"])
def test_every_dashboard_sql_query_runs_on_the_standby_as_grafanas_reader(replica: Replica, interval: str) -> None:
    assert len(SQL_QUERIES) >= 15
    failures, empty = [], []
    for q in SQL_QUERIES:
        sql = grafana.expand_sql(q.text, replica.starts, replica.ends, interval, {"model": "support-bot"})
        try:
            on_standby = rows(replica.standby, sql, role="driftloop_reader")
        except psycopg.Error as exc:
            failures.append(f"{q.dashboard} / {q.where}: {type(exc).__name__}: {exc}")
            continue
        if not on_standby:
            empty.append(f"{q.dashboard} / {q.where}")
        on_primary = rows(replica.primary, sql, role="driftloop_reader")
        if on_standby != on_primary:
            failures.append(f"{q.dashboard} / {q.where}: the standby's rows differ from the primary's")
    assert failures == []
    assert empty == []  # every panel has something to show: not a standby of an empty database


def cli(url: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    """A driftloop command against `url`, started (they run side by side: each takes seconds)."""
    return subprocess.Popen(
        [DRIFTLOOP, *args],
        env={**os.environ, "DATABASE_URL": url},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def output(proc: subprocess.Popen[str], what: str) -> str:
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"{what}: {stderr}"
    return stdout


def test_events_list_and_report_run_on_the_standby(replica: Replica) -> None:
    since, until = (t.strftime("%Y-%m-%dT%H:%M:%S") for t in (replica.starts, replica.ends))
    runs = {
        (name, command): cli(url, *args, cwd=replica.folder)
        for name, url in (("standby", replica.standby), ("primary", replica.primary))
        for command, args in (
            ("events", ("events", "list", "--json")),
            ("report", ("report", "--model", "support-bot", "--from", since, "--to", until, "--out", f"report-{name}")),
        )
    }
    out = {key: output(proc, f"driftloop {key[1]} on the {key[0]}") for key, proc in runs.items()}
    assert out["standby", "events"] == out["primary", "events"]
    assert {json.loads(line)["status"] for line in out["standby", "events"].splitlines()} == {"resolved", "pending"}
    reports = {}
    for name in ("standby", "primary"):
        # Only the wall-clock time it was written at may differ.
        text = (replica.folder / f"report-{name}" / "report.md").read_text()
        reports[name] = re.sub(r"Written [-\d :]+ UTC \(wall clock\)", "", text)
    assert reports["standby"] == reports["primary"]
    assert "| event |" in reports["standby"]  # the drift events are in it
