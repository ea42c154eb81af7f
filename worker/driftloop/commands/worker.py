"""`driftloop worker`, `metrics`, `events` and `prompt`: the worker and what it leaves behind."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Any

import click
import psycopg
from psycopg.rows import dict_row

from driftloop.database import connect, database_url
from driftloop.settings import env

DEFAULT_METRICS_PORT = 8000


def _config(path: str | None) -> Any:
    from driftloop.worker.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(f"invalid worker configuration: {exc}") from None


def _database() -> str:
    """The database URL, after checking the worker's tables exist."""
    url = database_url()
    try:
        with connect(url) as conn:
            ready = conn.execute("SELECT to_regclass('drift.action_runs') IS NOT NULL").fetchone()
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot connect to the database: {exc}") from None
    if not ready or not ready[0]:
        raise click.ClickException("the database has no worker schema; run `driftloop db upgrade` first")
    return url


def _metrics_port(port: int | None) -> int:
    if port is not None:
        return port
    raw = env("PROMETHEUS_PORT", str(DEFAULT_METRICS_PORT))
    try:
        return int(raw or DEFAULT_METRICS_PORT)
    except ValueError:
        raise click.ClickException(f"PROMETHEUS_PORT={raw!r} is not a port number") from None


def _serve_metrics(url: str, port: int, timeout_ms: int, registry: Any) -> Any:
    from driftloop.worker.metrics import DriftCollector, serve

    registry.register(DriftCollector(url, timeout_ms))
    try:
        return serve(port, registry)
    except OSError as exc:
        raise click.ClickException(f"cannot serve /metrics on port {port}: {exc}") from None


def _redactor() -> Any:
    """The worker configuration's secrets masker; URL credentials only when it cannot be loaded."""
    from driftloop.redaction import Redactor
    from driftloop.worker.config import ConfigError, load_config

    try:
        return load_config(None).redactor
    except ConfigError:
        return Redactor()


@click.command("worker")
@click.option("--once", is_flag=True, help="Process the events due now, then exit (for cron).")
@click.option("--concurrency", type=click.IntRange(min=1), help="Events processed at once ([worker] concurrency).")
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    help=f"Port of /metrics (default PROMETHEUS_PORT or {DEFAULT_METRICS_PORT}; 0: no metrics).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Worker configuration (default DRIFTLOOP_CONFIG, else ./driftloop.toml).",
)
def worker(once: bool, concurrency: int | None, metrics_port: int | None, config_file: str | None) -> None:
    """Claim drift events and run the configured actions (the daemon)."""
    from prometheus_client import CollectorRegistry

    from driftloop.worker import run, run_once

    config = _config(config_file)
    url = _database()
    logging.getLogger("driftloop.worker").setLevel(logging.INFO)
    if once:
        for done in run_once(url, config, concurrency=concurrency):
            outcomes = ", ".join(f"{a.action}={a.outcome}" for a in done.actions) or "no actions"
            click.echo(f"event {done.event_id} {done.model} {done.kind}/{done.metric}: {done.status} ({outcomes})")
        return
    registry = CollectorRegistry()
    port = _metrics_port(metrics_port)
    server = _serve_metrics(url, port, config.worker.metrics_timeout_ms, registry) if port else None
    try:
        run(url, config, concurrency=concurrency, registry=registry)
    finally:
        if server is not None:
            server.shutdown()


@click.command("metrics")
@click.option(
    "--port", type=click.IntRange(min=1, max=65535), help=f"Port (default PROMETHEUS_PORT or {DEFAULT_METRICS_PORT})."
)
def metrics(port: int | None) -> None:
    """Serve /metrics (drift gauges, events, action counts and timings from the database) without running actions."""
    from prometheus_client import CollectorRegistry

    url = _database()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = _serve_metrics(url, _metrics_port(port), _config(None).worker.metrics_timeout_ms, CollectorRegistry())
    click.echo(f"serving /metrics on port {server.server_port}")
    stop.wait()
    server.shutdown()


@click.group("events")
def events() -> None:
    """Inspect and re-queue drift events."""


@events.command("list")
@click.option("--status", type=click.Choice(["pending", "running", "resolved", "failed"]))
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def events_list(status: str | None, limit: int, as_json: bool) -> None:
    """The latest drift events, newest first."""
    from driftloop.worker.queries import query

    redactor = _redactor()
    with connect(_database()) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("list_events"), {"status": status, "limit": limit}).fetchall()
    for row in rows:
        # Rows written before redaction existed (or by other tools) may still quote a secret.
        row["last_error"] = redactor.text(row["last_error"]) if row["last_error"] else row["last_error"]
        row["resolution"] = redactor.value(row["resolution"])
        if as_json:
            click.echo(json.dumps(row, default=str))
            continue
        line = (
            f"{row['id']:>6} {row['created_at']:%Y-%m-%d %H:%M:%S} {row['status']:<8} "
            f"{row['model']} {row['kind']}/{row['metric']} attempts {row['attempts']}/{row['max_attempts']}"
        )
        if row["claimed_by"]:
            line += f" claimed by {row['claimed_by']} until {row['lease_expires_at']:%H:%M:%S}"
        if row["last_error"] and row["status"] != "resolved":
            line += f" error: {row['last_error'].splitlines()[0]}"
        click.echo(line)


@events.command("retry")
@click.argument("event_id", type=int)
def events_retry(event_id: int) -> None:
    """Re-queue a failed event now, with a fresh set of attempts."""
    from driftloop.worker.queries import query

    with connect(_database(), autocommit=True) as conn:
        try:
            row = conn.execute(query("retry_event"), {"event_id": event_id}).fetchone()
            done = row is not None and row[0]
        except psycopg.errors.UniqueViolation:
            raise click.ClickException(
                f"event {event_id} not re-queued: a newer open event exists for the same drift"
            ) from None
        if not done:
            state = conn.execute(query("event_state"), {"event_id": event_id}).fetchone()
            if state is None:
                raise click.ClickException(f"no drift event {event_id}")
            status, claimed_by, lease = state
            why = f"claimed by {claimed_by} until {lease}" if status == "running" else "already resolved"
            raise click.ClickException(f"event {event_id} not re-queued: {why}")
    click.echo(f"event {event_id} re-queued")


@click.group("prompt")
def prompt() -> None:
    """System prompt versions written by update_system_prompt."""


@prompt.command("show")
@click.argument("model")
@click.option("--history", is_flag=True, help="All versions, newest first.")
def prompt_show(model: str, history: bool) -> None:
    """The active system prompt of MODEL (what `SELECT drift.active_prompt(MODEL)` returns)."""
    from driftloop.worker.queries import query

    with connect(_database()) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("prompt_history"), {"model": model}).fetchall()
    if not rows:
        raise click.ClickException(f"model {model!r} has no prompt versions")
    for row in rows if history else [r for r in rows if r["active"]]:
        mark = " (active)" if row["active"] else ""
        click.echo(
            f"--- version {row['version']}{mark} {row['created_at']:%Y-%m-%d %H:%M:%S} {row['reason'] or ''}".rstrip()
        )
        click.echo(row["prompt"])


@prompt.command("rollback")
@click.argument("model")
def prompt_rollback(model: str) -> None:
    """Make the version before the active one active again."""
    from driftloop.worker.queries import query

    with connect(_database(), autocommit=True) as conn:
        try:
            row = conn.execute(query("rollback_prompt"), {"model": model}).fetchone()
        except psycopg.errors.NoDataFound as exc:
            raise click.ClickException(exc.diag.message_primary or str(exc)) from None
    assert row is not None  # the function returns the version or raises
    click.echo(f"{model}: prompt version {row[0]} is active")
