"""`command`: run an argv list (no shell) with the event JSON on stdin.

The environment carries DRIFTLOOP_EVENT_ID, DRIFTLOOP_MODEL, DRIFTLOOP_KIND,
DRIFTLOOP_METRIC, DRIFTLOOP_ACTION, DRIFTLOOP_ATTEMPT, DRIFTLOOP_WINDOW_START/END,
DRIFTLOOP_DELIVERY and DATABASE_URL, plus the `env` table of the action. A non-zero exit or
the timeout fails the action and keeps the tail of stderr.

The exit is recorded in the database (drift.record_exit) the moment the child exits, before
anything else: a worker killed after that leaves the outcome to the worker that takes the
event over, which finishes the run with it and does not run the command again. A worker
killed while the command runs, or in the instant between its exit and that record, leaves
no outcome: the command runs again on the next attempt, unless the action sets
`at_most_once = true`, which dead-letters the event instead (a human checks and retries).
DRIFTLOOP_DELIVERY is "<event id>:<action>", the same on every attempt (the webhook's
X-Driftloop-Delivery): a command whose effect must not happen twice can drop a delivery it
has already done.

The command runs in a process group of its own under a small supervisor
(driftloop/worker/supervisor.py) that ends the group when the worker dies, even by SIGKILL:
a command never runs on beside the next worker's retry of the same event. Only what
driftloop.toml says runs: the event reaches the command as data (stdin, environment), never
as argv.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from driftloop.worker.actions.base import ActionContext, ActionError, ActionResult
from driftloop.worker.tables import ConfigError

TAIL = 4000  # characters of stdout/stderr kept in action_runs


@dataclass(frozen=True)
class Settings:
    argv: tuple[str, ...]
    timeout_s: float = 60.0
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None


def check(settings: Settings, where: str) -> None:
    if not settings.argv:
        raise ConfigError(f"{where}.argv must not be empty")
    program = settings.argv[0]
    if shutil.which(program) is None and not Path(settings.cwd or ".", program).is_file():
        raise ConfigError(f"{where}.argv: program {program!r} not found")
    if settings.timeout_s <= 0:
        raise ConfigError(f"{where}.timeout_s must be > 0")


def event_environment(ctx: ActionContext) -> dict[str, str]:
    event = ctx.event
    return {
        "DRIFTLOOP_EVENT_ID": str(event.id),
        "DRIFTLOOP_MODEL": event.model,
        "DRIFTLOOP_KIND": event.kind,
        "DRIFTLOOP_METRIC": event.metric,
        "DRIFTLOOP_ACTION": ctx.action,
        "DRIFTLOOP_ATTEMPT": str(event.attempts),
        "DRIFTLOOP_DELIVERY": f"{event.id}:{ctx.action}",
        "DRIFTLOOP_WINDOW_START": event.window_start.isoformat() if event.window_start else "",
        "DRIFTLOOP_WINDOW_END": event.window_end.isoformat() if event.window_end else "",
        "DATABASE_URL": ctx.database_url,
    }


SUPERVISOR = Path(__file__).resolve().parent.parent / "supervisor.py"


def supervised(argv: list[str]) -> list[str]:
    """`argv` run under the supervisor, which ends the command's process group if this worker dies.

    `-I`: the supervisor needs only the standard library and must not pick up the command's
    PYTHONPATH or a stray module in its working directory.
    """
    return [sys.executable, "-I", str(SUPERVISOR), str(os.getpid()), "--", *argv]


def run_process(
    ctx: ActionContext, argv: list[str], stdin: bytes, env: dict[str, str], timeout_s: float, cwd: str | None
) -> tuple[int, str, str]:
    """Run to completion; kill the whole process group on timeout, cancellation or worker death."""
    proc = subprocess.Popen(
        supervised(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
        cwd=cwd,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    payload: bytes | None = stdin
    while True:
        try:
            out, err = proc.communicate(payload, timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            payload = None  # already sent; communicate() must not get it twice
            if ctx.cancel.is_set() or time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
                why = "cancelled (worker shutting down)" if ctx.cancel.is_set() else f"timed out after {timeout_s:g}s"
                raise ActionError(f"{argv[0]} {why}; stderr: {err.decode(errors='replace')[-TAIL:]}") from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def run(ctx: ActionContext, settings: Settings) -> ActionResult:
    stdin = json.dumps({"action": ctx.action, "event": ctx.event.to_json()}).encode()
    env = {**event_environment(ctx), **settings.env}
    code, out, err = run_process(ctx, list(settings.argv), stdin, env, settings.timeout_s, settings.cwd)
    output = {"exit_code": code, "stdout": out[-TAIL:], "stderr": err[-TAIL:]}
    error = None if code == 0 else f"{settings.argv[0]} exited with {code}; stderr: {err[-TAIL:]}"
    ctx.record_exit(code, output, error)
    if error is not None:
        raise ActionError(error)
    return ActionResult(summary=f"{settings.argv[0]} exited 0", output=output)
