"""`driftloop report`: PNG timelines, report.md and one offline report.html for any model."""

from __future__ import annotations

import click


@click.command("report")
def report() -> None:
    """Write the report folder (in progress)."""
    raise click.ClickException("not implemented yet")
