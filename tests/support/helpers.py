"""Helpers shared by the tests and benchmarks: models, events, configs, worker processes, waiting."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from driftloop.worker.event import DriftEvent

DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))  # the console script of this venv
METRIC_OF = {"embedding": "centroid_distance", "behavior": "refusal_rate", "accuracy": "accuracy"}


def insert_events(
    conn: psycopg.Connection[Any],
    models: list[str],
    kind: str = "embedding",
    metric: str | None = None,
    window: tuple[datetime, datetime] | None = None,
    details: dict[str, Any] | None = None,
) -> list[int]:
    """Insert one pending event per model in one statement (as drift.evaluate would)."""
    start, end = window or (datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    rows = conn.execute(
        """INSERT INTO drift.drift_events (model, kind, metric, score, threshold, p_value,
                                           window_start, window_end, details)
           SELECT m, %s, %s, 0.3, 0.15, 0.001, %s, %s, %s FROM unnest(%s::text[]) AS m
           RETURNING id""",
        (kind, metric or METRIC_OF[kind], start, end, Jsonb(details or {"value": 0.3, "baseline_value": 0.0}), models),
    ).fetchall()
    return [r[0] for r in rows]


def sample_event(**overrides: Any) -> DriftEvent:
    """An event as the claim query returns it, for actions that do not touch the database."""
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "id": 42,
        "created_at": now,
        "model": "support-bot",
        "kind": "behavior",
        "metric": "refusal_rate",
        "score": 0.2,
        "threshold": 0.05,
        "p_value": 0.0001,
        "window_start": now - timedelta(hours=1),
        "window_end": now,
        "details": {"value": 0.2, "baseline_value": 0.02},
        "attempts": 1,
        "max_attempts": 5,
    }
    fields.update(overrides)
    return DriftEvent(**fields)


def add_model(conn: psycopg.Connection[Any], model: str) -> None:
    """Register a model whose evaluation the test drives (no trigger evaluation, no auto baseline)."""
    conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'auto_baseline'")
    conn.execute("INSERT INTO drift.models (model, auto_evaluate) VALUES (%s, false)", (model,))


def write_config(directory: Path, text: str, name: str = "driftloop.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def shell_action_config(directory: Path, script: Path, *, lease_s: float, action: str = "act",
                        timeout_s: int = 120, extra: str = "") -> Path:
    """driftloop.toml with one command action running ``sh script`` for every event (``extra``:
    more lines of the action's table)."""
    return write_config(
        directory,
        f"""
[worker]
poll_interval_s = 0.5
lease_s = {lease_s}

[actions.{action}]
type = "command"
argv = ["sh", "{script}"]
timeout_s = {timeout_s}
{extra}

[[routes]]
actions = ["{action}"]
""",
    )


def file_lines(path: Path) -> list[str]:
    """The words of a file a test's command appends to (none while it does not exist)."""
    return path.read_text().split() if path.exists() else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_worker(config: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`driftloop worker` as a real process in its own process group (DATABASE_URL from the env)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [DRIFTLOOP, "worker", "--metrics-port", "0", *args],
            env={**os.environ, "DRIFTLOOP_CONFIG": str(config), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll until predicate() is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def count(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def refusal_drift_rows(now: datetime, model: str = "support-bot") -> list[dict[str, Any]]:
    """A model with 2% refusals in a baseline hour three hours ago and 30% in the last 45
    minutes (200 rows each): set the baseline to [now - 3h, now - 2h) and it drifts."""
    rows = []
    for period, start, refusal_share in (
        ("baseline", now - timedelta(hours=3), 0.02),
        ("current", now - timedelta(minutes=45), 0.30),
    ):
        for i in range(200):
            rows.append(
                {
                    "model": model,
                    "created_at": start + timedelta(seconds=10 * i),
                    "prompt": f"{period} question {i}",
                    "response": "an answer",
                    "is_refusal": i < 200 * refusal_share,
                    "toxicity": 0.01,
                    "correct": i % 10 != 0,
                }
            )
    return rows
