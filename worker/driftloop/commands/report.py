"""`driftloop report`: PNG timelines, report.md and one offline report.html for any model."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value if value.tzinfo else value.replace(tzinfo=UTC)


@click.command("report")
@click.option("--model", "models", multiple=True, metavar="MODEL", help="Only this model (repeatable; default all).")
@click.option(
    "--from", "starts", type=click.DateTime(), help="Start (data time, UTC if naive; default: the earliest baseline)."
)
@click.option("--to", "ends", type=click.DateTime(), help="End (default: the latest evaluation).")
@click.option(
    "--out",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("driftloop-report"),
    show_default=True,
    help="Folder for the PNGs, report.md and report.html.",
)
def report(models: tuple[str, ...], starts: datetime | None, ends: datetime | None, folder: Path) -> None:
    """Timelines and a report of MODEL's drift, events, actions and recovery.

    Everything comes from the rollups (drift.drift_report at steps over the range), the events,
    the action runs and the incidents; no raw log is scanned. report.html embeds the images:
    one file that opens offline. It runs on a read-only replica too: the report is the same,
    but the recovery verdicts are kept on the action runs only when run on the primary.
    """
    from driftloop import migrations
    from driftloop.database import connect
    from driftloop.history import load_history, query
    from driftloop.simulate.report import write_report

    migrations.ensure_schema()
    with connect(autocommit=True) as conn:
        try:
            run = load_history(conn, list(models) or None, _utc(starts), _utc(ends))
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        # The action runs get the same recovery verdicts the report shows (not on a standby).
        conn.execute(query("record_recovery"), {"ends": run.ends, "models": list(run.models)})
    path = write_report(run, folder)
    click.echo(f"Report: {path} and {path.with_name('report.html')} ({len(run.models)} models, "
               f"{run.starts:%Y-%m-%d %H:%M} → {run.ends:%Y-%m-%d %H:%M} UTC)")  # fmt: skip
