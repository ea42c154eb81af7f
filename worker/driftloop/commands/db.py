"""`driftloop db ...`, `driftloop config sync` and `driftloop baseline set`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
import psycopg

from driftloop import database, migrations
from driftloop.settings import threshold_overrides


@click.group()
def db() -> None:
    """Database: migrations, schema script, URL, embedded server."""


@db.command()
def upgrade() -> None:
    """Apply all migrations (idempotent) and write thresholds set in the environment."""
    try:
        threshold_overrides()  # a bad variable fails before anything is migrated
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    migrations.upgrade()
    click.echo(f"database at revision {migrations.current_revision()}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Downgrade to REVISION (`base` removes everything driftloop created)."""
    migrations.downgrade(revision)
    click.echo(f"database at revision {migrations.current_revision() or 'base'}")


@db.command()
def sql() -> None:
    """Print the whole schema as one SQL script (for Supabase's SQL editor or psql)."""
    click.echo(migrations.schema_script(), nl=False)


@db.command()
def url() -> None:
    """Print the database URL in use (starts the embedded server when needed and leaves it running)."""
    click.echo(database.database_url())


@db.command()
def start() -> None:
    """Start the embedded server and leave it running for other processes."""
    if database.settings_url():
        raise click.ClickException("DATABASE_URL is set: there is no embedded server to start")
    click.echo(database.database_url())


@db.command()
def stop() -> None:
    """Stop the embedded server."""
    if database.settings_url():
        raise click.ClickException("DATABASE_URL is set: there is no embedded server to stop")
    click.echo("stopped" if database.stop_embedded() else "not running")


@db.command()
@click.option("--older-than", "older_than", required=True, metavar="AGE", help="e.g. 30d, 12h, 2w.")
def prune(older_than: str) -> None:
    """Drop whole log partitions older than AGE, and the evaluation history of that age; rollups and baselines stay."""
    from driftloop import retention
    from driftloop.errors import DriftloopError

    try:
        age = retention.parse_age(older_than)
    except DriftloopError as exc:
        raise click.BadParameter(str(exc).removeprefix("--older-than: "), param_hint="--older-than") from None
    try:
        with database.connect(database.database_url()) as conn:
            result = retention.prune(conn, age)
    except DriftloopError as exc:
        raise click.ClickException(str(exc)) from None
    for d in result.dropped:
        if d.starts is None:
            click.echo(f"deleted rows older than {d.ends:%Y-%m-%d %H:%M} from {d.partition}")
        else:
            size = f"{d.bytes / 1e6:.1f} MB" if d.bytes is not None else "?"
            click.echo(f"dropped {d.partition} [{d.starts:%Y-%m-%d} .. {d.ends:%Y-%m-%d}) {size}")
    for h in result.history:
        click.echo(f"deleted {h.rows} {h.table} row(s) evaluated before {h.before:%Y-%m-%d %H:%M}")
    click.echo(
        f"{len(result.dropped)} partition(s) pruned, {result.partitions_created} created, "
        f"{result.hourly_rows} hourly rollup row(s) written"
    )


@db.command()
def partitions() -> None:
    """List the log partitions with their time range and size."""
    from driftloop import retention

    with database.connect(database.database_url()) as conn:
        rows = retention.partitions(conn)
    for row in rows:
        span = "default" if row["is_default"] else f"[{row['starts']:%Y-%m-%d} .. {row['ends']:%Y-%m-%d})"
        click.echo(f"{row['log']:<16} {row['partition']:<32} {span:<28} {row['bytes'] / 1e6:8.2f} MB")


@click.group()
def config() -> None:
    """Engine configuration."""


@config.command("sync")
def config_sync() -> None:
    """Write the thresholds set in the environment (or .env) into drift.settings."""
    try:
        written = migrations.sync_settings()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"updated: {', '.join(written)}" if written else "no threshold variables set; nothing changed")


@click.group()
def baseline() -> None:
    """Reference windows."""


@baseline.command("set")
@click.argument("model")
@click.option("--from", "starts", required=True, type=click.DateTime(), help="Start (ISO 8601, UTC if naive).")
@click.option("--to", "ends", required=True, type=click.DateTime(), help="End, exclusive.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["embedding", "behavior", "accuracy"]),
    help="Only these drift kinds (default: all).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per baseline.")
def baseline_set(model: str, starts: datetime, ends: datetime, kinds: tuple[str, ...], as_json: bool) -> None:
    """Set MODEL's baseline to the window [--from, --to)."""
    import psycopg

    from driftloop import table
    from driftloop.client import DRIFT_KINDS, connect
    from driftloop.errors import InputError

    with connect(database.database_url(), min_size=1, max_size=1) as client:
        try:
            rows = client.set_baseline(model, _utc(starts), _utc(ends), kinds or DRIFT_KINDS)
        except InputError as exc:
            raise click.ClickException(str(exc)) from None
        except psycopg.errors.InvalidParameterValue as exc:
            raise click.ClickException(exc.diag.message_primary or str(exc)) from None
    if as_json:
        click.echo(table.json_lines(rows))
        return
    click.echo(
        table.render(
            ("MODEL", "KIND", "FROM (UTC)", "TO (UTC)", "SAMPLES"),
            ([r["model"], r["kind"], r["starts"], r["ends"], f"{r['n']} samples"] for r in rows),
            empty="no baseline set",
        )
    )


def _utc(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Failure(click.ClickException):
    exit_code = 2  # a runtime error: one line on stderr, exit status 2


def _cron_connection() -> psycopg.Connection[Any]:
    # pg_cron lives beside driftloop, not in it: no pgvector adapters needed for this.
    return psycopg.connect(database.database_url(), autocommit=True)


@db.command()
def schedule() -> None:
    """Run drift.evaluate() every minute in pg_cron (Supabase ships it): detection with no worker alive."""
    from driftloop import cron
    from driftloop.errors import DriftloopError

    try:
        with _cron_connection() as conn:
            job = cron.schedule(conn)
    except (DriftloopError, psycopg.Error) as exc:
        raise _Failure(str(exc).strip().splitlines()[0]) from None
    click.echo(f"pg_cron job {job} ({cron.JOB_NAME}): {cron.COMMAND} every minute")


@db.command()
def unschedule() -> None:
    """Remove the pg_cron job `driftloop db schedule` registered."""
    from driftloop import cron
    from driftloop.errors import DriftloopError

    try:
        with _cron_connection() as conn:
            removed = cron.unschedule(conn)
    except (DriftloopError, psycopg.Error) as exc:
        raise _Failure(str(exc).strip().splitlines()[0]) from None
    click.echo(f"removed {cron.JOB_NAME}" if removed else f"{cron.JOB_NAME} was not scheduled")
