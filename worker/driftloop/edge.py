"""The edge functions from Python: where the deno binary (PyPI's `deno`) and the functions are.

The functions (``functions/`` in the repository, ``driftloop.functions`` in the wheel) are
plain Supabase edge functions; locally one router (``functions/main.ts``) serves them all
under ``/functions/v1/<name>``, as Supabase does.
"""

from __future__ import annotations

import os
import shutil
from importlib.resources import as_file, files
from pathlib import Path

from driftloop.errors import DriftloopError

FUNCTIONS = ("log-interaction", "feedback", "drift-status")
# The permissions the functions need: network (Postgres, HTTP), their environment, and read +
# write for a Unix-socket connection (Deno treats connecting to a socket file as a write).
DENO_PERMISSIONS = ("--allow-net", "--allow-env", "--allow-read", "--allow-write")


def deno_binary() -> str:
    """The deno executable: the PyPI package's binary, else DENO_BIN, else one on PATH."""
    override = os.environ.get("DENO_BIN")
    if override:
        return override
    try:
        import deno

        return str(deno.find_deno_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("deno")
    if found:
        return found
    raise DriftloopError("deno not found: pip install deno (it ships the binary), or set DENO_BIN")


def functions_dir() -> Path:
    """The folder holding main.ts and one folder per function."""
    with as_file(files("driftloop.functions")) as folder:  # installed as plain files
        path = Path(folder)
    if not (path / "main.ts").is_file():
        raise DriftloopError(f"the edge functions are missing from {path}")
    return path


def deno_env(database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the functions run with: SUPABASE_DB_URL from the driftloop database URL."""
    env = dict(os.environ)
    env["SUPABASE_DB_URL"] = database_url
    env.setdefault("NO_COLOR", "1")
    env.update(extra or {})
    return env


def serve_command() -> list[str]:
    """deno running the router; PORT and HOST in its environment say where it listens."""
    return [deno_binary(), "run", *DENO_PERMISSIONS, str(functions_dir() / "main.ts")]
