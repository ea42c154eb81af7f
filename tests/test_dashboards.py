"""The Grafana dashboards: every SQL query runs on a real database after a simulation and
returns data, every name a dashboard uses exists, and the provisioning files fit together."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from prometheus_client import CollectorRegistry

from driftloop.database import with_dbname
from driftloop.simulate.runner import Options, Plan, run_simulation
from driftloop.simulate.scenarios import scenario
from driftloop.worker.metrics import DriftCollector, WorkerMetrics
from tests.support import grafana
from tests.support.helpers import DRIFTLOOP, insert_events, write_config

MODEL = "sim-refusal-spike"


@pytest.fixture(scope="module")
def observed(server_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A database after a short simulation whose worker acted, one failed and one pending event.

    Module-scoped: the simulation is the slow part, and the tests here only read.
    """
    name = f"dl_dash_{uuid.uuid4().hex[:10]}"
    template = psycopg.conninfo.conninfo_to_dict(template_url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    url = with_dbname(server_url, name)
    plan = Plan.make(days=0.1, rate_per_minute=3, dims=16)
    options = Options(scenarios=(scenario("refusal_spike"),), days=0.1, rate_per_minute=3, dims=16, seed=7)
    run_simulation(url, options, plan)
    with psycopg.connect(url, autocommit=True) as conn:
        # A dead letter through the real worker: an action that fails, one attempt allowed.
        (failing,) = insert_events(conn, [MODEL], kind="accuracy")
        conn.execute("UPDATE drift.drift_events SET max_attempts = 1 WHERE id = %s", (failing,))
        config = write_config(
            tmp_path_factory.mktemp("dash"),
            '[actions.broken]\ntype = "command"\nargv = ["sh", "-c", "exit 3"]\n\n'
            '[[routes]]\nkind = "accuracy"\nactions = ["broken"]\n',
        )
        subprocess.run(
            [DRIFTLOOP, "worker", "--once"],
            env={**os.environ, "DATABASE_URL": url, "DRIFTLOOP_CONFIG": str(config)},
            check=True,
            capture_output=True,
            timeout=120,
        )
        assert conn.execute("SELECT status FROM drift.drift_events WHERE id = %s", (failing,)).fetchone() == ("failed",)
        insert_events(conn, [MODEL], kind="embedding")  # waiting for a worker
    try:
        yield {"url": url, "start": plan.starts - timedelta(hours=1), "end": datetime.now(UTC) + timedelta(minutes=5)}
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SQL_QUERIES = [q for q in grafana.queries() if q.datasource == grafana.POSTGRES]
PROM_QUERIES = [q for q in grafana.queries() if q.datasource == grafana.PROMETHEUS]


def test_the_dashboards_have_sql_and_promql_queries_and_the_panels_the_issue_asks_for() -> None:
    titles = {(q.dashboard, q.where) for q in grafana.queries()}
    assert len(SQL_QUERIES) >= 15 and len(PROM_QUERIES) >= 10
    overview, model = "driftloop-overview.json", "driftloop-model.json"
    for board, title in [
        (overview, "Drift status now (drifted first)"),
        (model, "Behavior drift: score vs threshold"),
        (model, "Refusal rate"),
        (model, "Toxicity rate"),
        (model, "Accuracy"),
        (model, "annotation Drift events"),
        (model, "annotation Actions"),
        (model, "Open and failed events"),
        (model, "Reaction time"),
        (model, "Action outcomes"),
        (model, "Scrapes"),
        (model, "variable model"),
    ]:
        assert (board, title) in titles


@pytest.mark.parametrize("interval", ["1m", "1h"])
def test_every_sql_query_returns_rows_with_grafanas_macros_expanded(observed: dict[str, Any], interval: str) -> None:
    failures = []
    with psycopg.connect(observed["url"], autocommit=True) as conn:
        conn.execute("SET statement_timeout = '10s'")
        conn.execute("SET ROLE driftloop_reader")  # the rights the README grants Grafana's login
        for q in SQL_QUERIES:
            sql = grafana.expand_sql(q.text, observed["start"], observed["end"], interval, {"model": MODEL})
            try:
                cur = conn.execute(sql)
            except psycopg.Error as exc:
                failures.append(f"{q.dashboard} / {q.where}: {exc}\n{sql}")
                continue
            rows = cur.fetchall()
            columns = [c.name for c in cur.description or []]
            if not rows:
                failures.append(f"{q.dashboard} / {q.where}: no rows\n{sql}")
                continue
            if q.format == "time_series":
                assert columns[0] == "time", (q.where, columns)  # Grafana's time column comes first
                values = [v for row in rows for v in row[1:] if isinstance(v, int | float | Decimal)]
                if not values:
                    failures.append(f"{q.dashboard} / {q.where}: only NULL values")
    assert failures == []


def test_the_time_filter_bounds_the_rows(observed: dict[str, Any]) -> None:
    """The macros really restrict: a window before the simulation returns nothing."""
    (refusal,) = [q for q in SQL_QUERIES if q.where == "Refusal rate"]
    long_ago = observed["start"] - timedelta(days=30)
    sql = grafana.expand_sql(refusal.text, long_ago, long_ago + timedelta(hours=1), "1m", {"model": MODEL})
    with psycopg.connect(observed["url"]) as conn:
        assert conn.execute(sql).fetchall() == []


def test_the_refusal_panel_shows_the_injected_spike_above_the_baseline_band(observed: dict[str, Any]) -> None:
    (refusal,) = [q for q in SQL_QUERIES if q.where == "Refusal rate"]
    sql = grafana.expand_sql(refusal.text, observed["start"], observed["end"], "30m", {"model": MODEL})
    with psycopg.connect(observed["url"]) as conn:
        rows = conn.execute(sql).fetchall()
    # time, rate, baseline, band low, band high
    assert all(r[3] <= r[2] <= r[4] for r in rows if r[2] is not None and r[3] is not None)
    assert any(r[1] is not None and r[4] is not None and r[1] > r[4] for r in rows)  # the spike leaves the band


def exposed_metric_names() -> set[str]:
    """Every series name /metrics can serve (from describe(), without a database)."""
    registry = CollectorRegistry()
    WorkerMetrics(registry)
    families = [*DriftCollector("postgresql://unused").describe(), *registry.collect()]
    names = set()
    for family in families:
        names |= {
            "counter": {f"{family.name}_total"},
            "histogram": {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"},
        }.get(family.type, {family.name})
    return names


def unknown_names(queries: list[grafana.Query], conn: psycopg.Connection[Any]) -> list[str]:
    metrics = exposed_metric_names() | grafana.PROMETHEUS_BUILTINS
    unknown = []
    for q in queries:
        if q.datasource == grafana.PROMETHEUS:
            unknown += [f"{q.where}: metric {n}" for n in grafana.promql_metric_names(q.text) - metrics]
            continue
        for name in grafana.sql_objects(q.text):
            found = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL OR EXISTS (SELECT 1 FROM pg_proc"
                " WHERE pronamespace = 'drift'::regnamespace AND proname = %s)",
                (f"drift.{name}", name),
            ).fetchone()
            if not (found and found[0]):
                unknown.append(f"{q.where}: drift.{name}")
    return unknown


def test_every_metric_and_view_a_dashboard_or_rule_names_exists(conn: psycopg.Connection[Any]) -> None:
    rules = [grafana.Query("rules.yml", n, grafana.PROMETHEUS, e) for n, e in grafana.rule_expressions().items()]
    assert unknown_names(grafana.queries() + rules, conn) == []


def test_a_misspelt_metric_or_view_is_caught(conn: psycopg.Connection[Any]) -> None:
    bad = [
        grafana.Query("x", "typo", grafana.PROMETHEUS, 'sum by (action) (driftloop_action_total{outcome="failed"})'),
        grafana.Query("x", "gone", grafana.POSTGRES, 'SELECT "time" FROM drift.score_history'),
        grafana.Query("x", "ok", grafana.POSTGRES, 'SELECT "time" FROM drift.score_timeseries'),
    ]
    assert unknown_names(bad, conn) == ["typo: metric driftloop_action_total", "gone: drift.score_history"]


def test_the_macro_expander_matches_grafanas_output() -> None:
    start, end = datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 12, tzinfo=UTC)
    sql = grafana.expand_sql(
        'SELECT $__timeGroupAlias("time", $__interval), x FROM t WHERE $__timeFilter("time") '
        "AND m = '$model' AND t > $__timeFrom() AND $__interval_ms > 0",
        start,
        end,
        "5m",
        {"model": "bot"},
    )
    assert sql == (
        'SELECT floor(extract(epoch from "time")/300)*300 AS "time", x FROM t WHERE '
        "\"time\" BETWEEN '2026-01-01T10:00:00Z' AND '2026-01-01T12:00:00Z' AND m = 'bot' "
        "AND t > '2026-01-01T10:00:00Z' AND 300000 > 0"
    )
    with pytest.raises(ValueError, match="does not know"):
        grafana.expand_sql("SELECT $__unixEpochFilter(t)", start, end, "1m", {})


def test_dashboards_use_datasource_variables_so_they_import_by_hand_and_provision() -> None:
    provisioned = yaml.safe_load((grafana.PROVISIONING / "datasources" / "driftloop.yml").read_text())
    types = {d["type"] for d in provisioned["datasources"]}
    assert types == {grafana.POSTGRES, grafana.PROMETHEUS}
    for board in grafana.dashboards().values():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert {variables["postgres"]["query"], variables["prometheus"]["query"]} == types
        for panel in grafana._panels(board["panels"]):
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] in ("${postgres}", "${prometheus}"), panel["title"]
    providers = yaml.safe_load((grafana.PROVISIONING / "dashboards" / "driftloop.yml").read_text())["providers"]
    assert providers[0]["type"] == "file" and "DRIFTLOOP_DASHBOARDS" in providers[0]["options"]["path"]
    uids = [b["uid"] for b in grafana.dashboards().values()]
    assert len(set(uids)) == len(uids) == len(list(Path(grafana.DASHBOARDS).glob("*.json")))


def test_the_exposition_of_a_busy_database_passes_promtool(observed: dict[str, Any]) -> None:
    """Histograms with empty low buckets, counters, gauges: what Prometheus' own linter accepts."""
    from prometheus_client import generate_latest

    registry = CollectorRegistry()
    registry.register(DriftCollector(observed["url"]))
    text = generate_latest(registry).decode()
    assert 'driftloop_actions_total{action="broken",outcome="failed"} 1.0' in text
    assert 'driftloop_event_reaction_seconds_bucket{le="0.01"}' in text
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: run `make prometheus`"
    lint = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
