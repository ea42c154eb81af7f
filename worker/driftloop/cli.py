"""The `driftloop` command line. Each command group lives in its own module.

Exit status (the contract): 0 success, 1 drift found (`check`), 2 usage or runtime error.
An error is one line on stderr, never a traceback (`-vv` shows the traceback).
"""

from __future__ import annotations

import logging
from typing import Any

import click

from driftloop.commands.check import check
from driftloop.commands.db import baseline, config, db
from driftloop.commands.functions import functions
from driftloop.commands.report import report
from driftloop.commands.simulate import demo, simulate
from driftloop.commands.worker import events, metrics, prompt, worker
from driftloop.errors import one_line

ERROR_EXIT = 2


class CommandError(click.ClickException):
    """A runtime error of a command: `Error: <one line>` on stderr, exit status 2."""

    exit_code = ERROR_EXIT


class DriftloopGroup(click.Group):
    """Turns every failure of a subcommand into one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except click.UsageError:
            raise  # click's own: usage and the error, exit status 2
        except click.ClickException as exc:
            # click's default status for ClickException is 1, which `check` uses for "drift found".
            raise CommandError(one_line(exc.message)) from None
        except Exception as exc:
            if (ctx.obj or {}).get("verbose", 0) >= 2:
                raise
            raise CommandError(one_line(exc)) from None


@click.group(cls=DriftloopGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="driftloop", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug and tracebacks).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """driftloop: drift detection inside Postgres, corrective actions by a worker.

    Exit status: 0 success, 1 drift found (check), 2 usage or runtime error.
    """
    ctx.obj = {"verbose": verbose}
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # The pool logs each background reconnect; the command's own error line says what failed.
    logging.getLogger("psycopg.pool").setLevel(level if verbose else logging.ERROR)


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
main.add_command(report)
