"""CLI conventions a user relies on: exit statuses, one-line errors, headers, --json, --version."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import click
import psycopg
import pytest
from click.testing import CliRunner
from test_cli import THRESHOLD_VARIABLES, log_refusal_drift, run

from driftloop.cli import main
from tests.support.helpers import DRIFTLOOP, free_port

# Commands that never touch the database (they print a script or the configured URL).
NO_DATABASE = {"db sql", "db url"}
# One-line errors of their own before any connection: DATABASE_URL set (no embedded server to
# start or stop), no key to serve the edge functions with.
REFUSED_BEFORE_THE_DATABASE = {("db", "start"), ("db", "stop"), ("functions", "serve")}
# Dummy values for required arguments and options, by parameter name, so every command
# (including ones added later) gets past click's parsing and reaches the database.
DUMMY = {"model": "support-bot", "event_id": "1", "revision": "base", "starts": "2026-01-01",
         "ends": "2026-01-02", "older_than": "30d"}  # fmt: skip


def leaf_commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += leaf_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def invocation(path: tuple[str, ...]) -> list[str]:
    command: Any = main
    for name in path:
        command = command.commands[name]
    args = list(path)
    for param in command.params:
        if not param.required:
            continue
        value = DUMMY.get(param.name or "", "x")
        args += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    if path == ("metrics",):
        args += ["--port", str(free_port())]
    return args


def test_every_command_fails_in_one_line_when_the_database_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = f"postgresql://driftloop@127.0.0.1:{free_port()}/nowhere"  # nothing listens there
    for variable in THRESHOLD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env or driftloop.toml
    commands = [c for c in leaf_commands() if " ".join(c) not in NO_DATABASE]
    assert ("check",) in commands and ("events", "list") in commands and ("report",) in commands
    # In-process (one interpreter for all of them), as click runs them: exit status and stderr.
    runner = CliRunner()
    env = {"DATABASE_URL": down, "EMBEDDING_DRIFT_THRESHOLD": "0.2"}  # `config sync` then has work to do
    failures = []
    for command in commands:
        result = runner.invoke(main, invocation(command), env=env)
        lines = result.stderr.strip().splitlines()
        if (
            result.exit_code != 2
            or len(lines) != 1
            or not lines[0].startswith("Error: ")
            or not isinstance(result.exception, SystemExit)  # anything else escaped as a traceback
        ):
            failures.append(f"{' '.join(command)}: exit {result.exit_code}, stderr {result.stderr!r}")
        elif command not in REFUSED_BEFORE_THE_DATABASE:
            # The CLI's own connections say so directly; the SDK's (retrying within its deadline)
            # name the budget it used (driftloop.retry).
            assert "connect" in lines[0] or "database unavailable" in lines[0], (command, lines[0])
    assert not failures, "\n".join(failures)

    # And as a real process, the way cron or CI runs it.
    environment = {k: v for k, v in os.environ.items() if k not in THRESHOLD_VARIABLES}
    environment["DATABASE_URL"] = down
    done = subprocess.run([DRIFTLOOP, "check"], cwd=tmp_path, env=environment, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("Error: cannot connect to the database: ") and done.stderr.count("\n") == 1
    # The SDK's path (a pool retrying within its deadline) logs nothing else either.
    sdk = subprocess.run([DRIFTLOOP, *invocation(("baseline", "set"))], cwd=tmp_path, env=environment,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert sdk.returncode == 2 and sdk.stderr.startswith("Error: ") and sdk.stderr.count("\n") == 1, sdk.stderr


def cli(*args: str) -> Any:
    """`driftloop ARGS` in-process (one interpreter: fast), as click runs it; DATABASE_URL from the fixture."""
    return CliRunner().invoke(main, list(args))


def test_check_exit_status_no_drift_drift_and_error(
    db_url: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    empty = cli("check")
    assert empty.exit_code == 0 and "No models logged yet." in empty.stdout

    log_refusal_drift(db_url, conn)
    # A real process, the way cron or CI gates on it.
    drifted = run(tmp_path, "check", check=False)
    assert drifted.returncode == 1, drifted.stderr
    assert "Drifts detected: 1" in drifted.stdout
    # Only behavior drifted: other kinds do not fail the gate.
    assert cli("check", "--fail-on", "embedding").exit_code == 0
    assert cli("check", "--fail-on", "accuracy").exit_code == 0
    assert cli("check", "--fail-on", "behavior").exit_code == 1
    as_json = cli("check", "--json", "--model", "support-bot")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["drifts_detected"] == 1

    unknown = cli("check", "--model", "nobody")
    assert unknown.exit_code == 2 and "unknown model: nobody" in unknown.stderr
    bad = cli("check", "--fail-on", "everything")
    assert bad.exit_code == 2 and isinstance(bad.exception, SystemExit)
    helped = cli("check", "--help").stdout
    assert "Exit status: 0 no drift, 1 drift" in helped and "minutes (not seconds" in helped


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    assert run(tmp_path, "--version").stdout.strip() == f"driftloop {version('driftloop')}"


def test_events_list_has_a_header_data_time_and_json(
    db_url: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    assert cli("events", "list").stdout.strip() == "no events"
    assert cli("events", "list", "--status", "failed").stdout.strip() == "no events with status failed"
    assert cli("events", "list", "--json").stdout.strip() == ""

    log_refusal_drift(db_url, conn)
    assert cli("check").exit_code == 1
    lines = cli("events", "list").stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["ID", "INCIDENT", "STATUS", "MODEL"] and "DATA TIME (UTC)" in lines[0]
    assert "RAISED (UTC)" in lines[0] and len(lines) == 2
    assert "support-bot" in lines[1] and "refusal_rate" in lines[1] and "0.3000" in lines[1]
    (event,) = [json.loads(line) for line in cli("events", "list", "--json").stdout.splitlines()]
    assert event["metric"] == "refusal_rate" and event["as_of"] is not None and event["window_end"] is not None
    assert event["incident_id"] is not None
