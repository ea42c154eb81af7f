"""Runs one command action so that it cannot outlive the worker that started it.

The worker does not exec a command directly: it starts this file (by path, with `python -I`,
so it imports nothing but the standard library) as the leader of a new process group, and
this supervisor starts the command inside that group. When the worker dies, even by SIGKILL,
the supervisor ends the whole group, grandchildren included:

- on Linux the kernel tells it at once: PR_SET_PDEATHSIG delivers SIGTERM when the worker
  thread that started it exits;
- everywhere, it also polls its parent pid (reparenting means the worker is gone).

Without this, a SIGKILLed worker's command ran on to completion while the next worker, after
the lease expired, ran the same command for the same event a second time.

Usage: python -I supervisor.py WORKER_PID -- ARGV...  (stdin, stdout, stderr pass through).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1
POLL_S = 0.25  # parent check when the kernel cannot tell us (not Linux)


def end_group(*_: object) -> None:
    """Kill the whole process group: the command, its children and this supervisor."""
    os.killpg(os.getpgid(0), signal.SIGKILL)


def set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the parent poll below still works
        pass


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        print("usage: supervisor.py WORKER_PID -- ARGV...", file=sys.stderr)
        return 2
    worker = int(args[0])
    signal.signal(signal.SIGTERM, end_group)
    signal.signal(signal.SIGHUP, end_group)
    set_parent_death_signal()
    if os.getppid() != worker:  # the worker died before the death signal was armed
        end_group()
    try:
        child = subprocess.Popen(args[2:])  # same process group; inherits stdin/out/err, env, cwd
    except OSError as exc:
        print(f"cannot run {args[2]!r}: {exc}", file=sys.stderr)
        return 127
    while True:
        try:
            code = child.wait(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            if os.getppid() != worker:
                end_group()
    # The command is done; anything it left running in the group goes with it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(0), signal.SIGTERM)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
