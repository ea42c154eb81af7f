"""`driftloop check`: evaluate drift now and print the report (the seed's run_pipeline.py)."""

from __future__ import annotations

import time

import click

from driftloop import migrations, report
from driftloop.client import Client, connect
from driftloop.database import database_url
from driftloop.errors import DriftloopError
from driftloop.worker import run_once
from driftloop.worker.config import WorkerConfig, load_config


def _run_once(client: Client, as_json: bool, config: WorkerConfig | None) -> None:
    events = client.evaluate()
    status = client.status()
    click.echo(report.to_json(status, events) if as_json else report.format_report(status, events))
    if config is not None:
        processed = run_once(client.url, config)
        if not as_json:
            click.echo(f"Actions taken: {sum(len(p.actions) for p in processed)}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--continuous",
    "minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Repeat every MINUTES until Ctrl+C.",
)
@click.option(
    "--act/--no-act",
    default=None,
    help="Also run the worker's actions on pending events (default: on with --continuous).",
)
def check(as_json: bool, minutes: float | None, act: bool | None) -> None:
    """Evaluate drift now, raise events for new drifts, print the report."""
    run_actions = act if act is not None else minutes is not None
    try:
        migrations.ensure_schema()
        # Loaded before anything runs: a bad driftloop.toml fails here, not at the first event.
        config = load_config() if run_actions else None
    except DriftloopError as exc:
        raise click.ClickException(str(exc)) from None
    # The database itself, even when SUPABASE_URL is set: evaluation is not an edge function.
    with connect(database_url(), min_size=1, max_size=2) as client:
        if minutes is None:
            _run_once(client, as_json, config)
            return
        try:
            while True:
                _run_once(client, as_json, config)
                time.sleep(minutes * 60)
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
