"""`driftloop check`: evaluate drift now and print the report (the seed's run_pipeline.py).

Its exit status makes it a cron or CI gate: 0 no drift, 1 drift, 2 error.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import click

from driftloop import migrations, report
from driftloop.client import Client, connect
from driftloop.database import database_url
from driftloop.errors import DriftloopError
from driftloop.worker import run_once
from driftloop.worker.config import WorkerConfig, load_config

NO_DRIFT, DRIFT = 0, 1
FAIL_ON = ("any", "embedding", "behavior", "accuracy")


def exit_status(status: Sequence[Mapping[str, Any]], fail_on: str) -> int:
    """1 when a row of the kinds that count is drifted, else 0."""
    return DRIFT if any(r["drifted"] and fail_on in ("any", r["kind"]) for r in status) else NO_DRIFT


def _run_once(
    client: Client, as_json: bool, config: WorkerConfig | None, models: list[str] | None, fail_on: str
) -> int:
    events = client.evaluate(models=models)
    status = client.status(models=models)
    click.echo(report.to_json(status, events) if as_json else report.format_report(status, events))
    if config is not None:
        processed = run_once(client.url, config, models=models)
        if not as_json:
            click.echo(f"Actions taken: {sum(len(p.actions) for p in processed)}")
    return exit_status(status, fail_on)


@click.command(epilog="Exit status: 0 no drift, 1 drift found (of the --fail-on kinds), 2 error.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--model", "models", multiple=True, metavar="MODEL", help="Only this model (repeatable).")
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    default="any",
    show_default=True,
    help="Which drift kinds make the exit status 1.",
)
@click.option(
    "--continuous",
    "minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="MINUTES",
    help="Repeat every MINUTES minutes (not seconds: 60 is an hour) until Ctrl+C; exits with the last check's status.",
)
@click.option(
    "--act/--no-act",
    default=None,
    help="Also run the worker's actions on pending events (default: on with --continuous).",
)
def check(as_json: bool, models: tuple[str, ...], fail_on: str, minutes: float | None, act: bool | None) -> None:
    """Evaluate drift now, raise events for new drifts, print the report.

    The current window is the last `current_window` (1 hour) up to the start of the current
    minute: rows logged this minute count from the next one on.
    """
    run_actions = act if act is not None else minutes is not None
    try:
        migrations.ensure_schema()
        # Loaded before anything runs: a bad driftloop.toml fails here, not at the first event.
        config = load_config() if run_actions else None
    except DriftloopError as exc:
        raise click.ClickException(str(exc)) from None
    selected = list(models) or None
    # The database itself, even when SUPABASE_URL is set: evaluation is not an edge function.
    with connect(database_url(), min_size=1, max_size=2) as client:
        if selected:
            known = {r["model"] for r in client.status(models=selected)}
            missing = [m for m in selected if m not in known]
            if missing:
                raise click.ClickException(f"unknown model: {', '.join(missing)} (no data logged)")
        if minutes is None:
            status = _run_once(client, as_json, config, selected, fail_on)
            raise click.exceptions.Exit(status)
        status = NO_DRIFT
        try:
            while True:
                status = _run_once(client, as_json, config, selected, fail_on)
                time.sleep(minutes * 60)
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
        raise click.exceptions.Exit(status)
