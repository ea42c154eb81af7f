"""`driftloop functions serve`: the edge functions locally, under Supabase's routes."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from driftloop import database, edge
from driftloop.errors import DriftloopError


class Failure(click.ClickException):
    """A runtime error: one line on stderr, exit status 2 (the CLI's contract)."""

    exit_code = 2


@click.group()
def functions() -> None:
    """Edge functions (Deno): serve them locally under /functions/v1/<name>."""


@functions.command()
@click.option("--port", default=54321, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--db-url", envvar="SUPABASE_DB_URL", help="Database the functions use (default: the driftloop database)."
)
def serve(port: int, host: str, db_url: str | None) -> None:
    """Serve log-interaction, feedback and drift-status at http://HOST:PORT/functions/v1/<name>.

    Requests need `Authorization: Bearer <key>`: SUPABASE_SERVICE_ROLE_KEY or SUPABASE_ANON_KEY
    from the environment, or a JWT signed with SUPABASE_JWT_SECRET. Set at least one.
    """
    if not any(
        os.environ.get(k)
        for k in ("SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ANON_KEY", "SUPABASE_JWT_SECRET", "DRIFTLOOP_JWT_SECRET")
    ):
        raise Failure("no key configured: set SUPABASE_SERVICE_ROLE_KEY, SUPABASE_ANON_KEY or SUPABASE_JWT_SECRET")
    try:
        command = edge.serve_command()
        env = edge.deno_env(db_url or database.database_url(), {"PORT": str(port), "HOST": host})
    except DriftloopError as exc:
        raise Failure(str(exc)) from None
    # deno runs in the foreground; Ctrl-C (or SIGTERM to this process group) stops both.
    try:
        completed = subprocess.run(command, env=env, cwd=edge.functions_dir(), check=False)
    except KeyboardInterrupt:
        sys.exit(0)
    if completed.returncode not in (0, -2, 130):
        sys.exit(2)
