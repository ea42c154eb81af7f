"""The `driftloop` command line. Each command group lives in its own module."""

from __future__ import annotations

import logging

import click

from driftloop.commands.check import check
from driftloop.commands.db import baseline, config, db
from driftloop.commands.functions import functions
from driftloop.commands.simulate import demo, simulate
from driftloop.commands.worker import events, metrics, prompt, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """driftloop: drift detection inside Postgres, corrective actions by a worker."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


main.add_command(db)
main.add_command(config)
main.add_command(baseline)
main.add_command(check)
main.add_command(worker)
main.add_command(metrics)
main.add_command(events)
main.add_command(prompt)
main.add_command(simulate)
main.add_command(demo)
main.add_command(functions)
