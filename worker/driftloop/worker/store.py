"""The worker's database side: claims, leases, action runs and event outcomes.

The queue's transitions are SQL functions (db/repeatable/80_queue.sql); every write after the
claim goes through their ownership check (`drift.hold_event`), and when it fails the lease was
lost to another worker: the caller gets `LeaseLost` instead of overwriting that worker's results.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from driftloop.database import configure_connection
from driftloop.worker.backoff import Backoff
from driftloop.worker.event import DriftEvent
from driftloop.worker.logtext import oneline
from driftloop.worker.queries import query

log = logging.getLogger(__name__)
T = TypeVar("T")


class LeaseLost(Exception):
    """This worker no longer holds the event (its lease expired and another worker took it)."""


class Store:
    """Database operations of one worker process over a small connection pool."""

    def __init__(
        self, database_url: str, worker_id: str, *, lease_s: float, pool_size: int, retry_for_s: float = 30.0
    ) -> None:
        self.database_url = database_url
        self.worker_id = worker_id
        self.lease_s = lease_s
        # Writes after an action survive a database restart: retried for this long.
        self.retry_for_s = retry_for_s
        self.pool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "application_name": f"driftloop-worker {worker_id}"[:63]},
            configure=configure_connection,
            check=ConnectionPool.check_connection,
            timeout=10,
            name="driftloop-worker",
            open=True,
        )
        # The heartbeat renews leases on a connection of its own, opened again at each beat
        # while the server is away: after a restart the pool reconnects on its own backoff
        # (seconds, doubling), and a holder that renews late loses its event to another
        # worker, which runs the action a second time.
        self._lease_conn: psycopg.Connection[Any] | None = None
        self._lease_lock = threading.Lock()

    def close(self) -> None:
        with self._lease_lock:
            if self._lease_conn is not None:
                self._lease_conn.close()
                self._lease_conn = None
        self.pool.close()

    # -- plumbing -----------------------------------------------------------------

    def _params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"worker": self.worker_id, "lease_s": self.lease_s, **params}

    def _run(self, name: str, params: dict[str, Any], fetch: str) -> Any:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query(name), self._params(params))  # type: ignore[arg-type]
            if fetch == "all":
                return cur.fetchall()
            if fetch == "one":
                return cur.fetchone()
            return cur.rowcount

    def _retrying(self, fn: Callable[[], T]) -> T:
        """Run `fn`, retrying on lost connections (a database restart) for a while."""
        deadline = time.monotonic() + self.retry_for_s
        backoff = Backoff(base_s=0.2, cap_s=3.0)
        while True:
            try:
                return fn()
            except psycopg.OperationalError as exc:  # also PoolTimeout and AdminShutdown
                if time.monotonic() >= deadline:
                    raise
                delay = backoff.next_delay()
                log.warning("database unavailable (%s); retrying in %.1fs", oneline(exc), delay)
                time.sleep(delay)

    def execute(
        self, name: str, params: dict[str, Any] | None = None, *, fetch: str = "all", retry: bool = True
    ) -> Any:
        """Run a named query; `fetch` is "all" (rows as dicts), "one" or "count"."""
        if not retry:
            return self._run(name, params or {}, fetch)
        return self._retrying(lambda: self._run(name, params or {}, fetch))

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """An autocommit pooled connection (pgvector registered)."""
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def fenced(self, event_id: int) -> Iterator[psycopg.Connection[Any]]:
        """A transaction that commits only while this worker holds the event.

        The event row stays locked until commit, so no other worker can take the event
        over between the check and the commit.
        """
        with self.pool.connection() as conn, conn.transaction():
            held = conn.execute(query("hold_event"), self._params({"event_id": event_id})).fetchone()
            if held is None:
                raise LeaseLost(f"event {event_id} is no longer held by {self.worker_id}")
            yield conn

    # -- the event lifecycle -------------------------------------------------------

    def claim(self, limit: int, models: list[str] | None = None) -> list[DriftEvent]:
        rows = self.execute("claim_events", {"limit": limit, "models": models}, retry=False)
        return [DriftEvent.from_row(r) for r in rows]

    def extend_leases(self, ids: list[int]) -> set[int]:
        """Extend the leases of events in progress; returns the ids still held.

        Raises psycopg.OperationalError when the server cannot be reached (the next call
        connects afresh).
        """
        with self._lease_lock:
            try:
                if self._lease_conn is None or self._lease_conn.closed:
                    self._lease_conn = psycopg.connect(
                        self.database_url,
                        autocommit=True,
                        connect_timeout=max(2, round(self.lease_s / 3)),
                        application_name=f"driftloop-heartbeat {self.worker_id}"[:63],
                    )
                rows = self._lease_conn.execute(query("extend_leases"), self._params({"ids": ids})).fetchall()
            except psycopg.OperationalError:
                if self._lease_conn is not None:
                    self._lease_conn.close()
                    self._lease_conn = None
                raise
        return {r[0] for r in rows}

    def next_due_s(self) -> float | None:
        row = self.execute("next_due", fetch="one", retry=False)
        value = next(iter(row.values())) if row else None
        return None if value is None else float(value)

    def succeeded_run(self, event_id: int, action: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.execute(
            "succeeded_run", {"event_id": event_id, "action": action}, fetch="one"
        )
        return result

    def take_over_runs(self, event_id: int, at_most_once: list[str]) -> list[dict[str, Any]]:
        """Settle the runs earlier holders left running (drift.take_over_runs); the runs settled.

        A row with `dead_letter` means the event is now failed: an `at_most_once` action's
        run was left without a recorded outcome.
        """
        rows: list[dict[str, Any]] = self.execute(
            "take_over_runs", {"event_id": event_id, "at_most_once": at_most_once}
        )
        return rows

    def record_exit(
        self, event_id: int, run_id: int, exit_code: int, output: dict[str, Any] | None, error: str | None
    ) -> bool:
        """Record a command's exit before its run is finished; False when the run is no longer running."""
        row = self.execute(
            "record_exit",
            {
                "event_id": event_id,
                "run_id": run_id,
                "exit_code": exit_code,
                "output": Jsonb(output) if output is not None else None,
                "error": error,
            },
            fetch="one",
        )
        return bool(row and row["recorded"])

    def start_run(self, event: DriftEvent, action: str, action_type: str) -> int:
        row = self.execute(
            "start_run", {"event_id": event.id, "action": action, "action_type": action_type}, fetch="one"
        )
        if row is None:
            raise LeaseLost(f"event {event.id} is no longer held by {self.worker_id}")
        return int(row["id"])

    def finish_run(
        self, event_id: int, run_id: int, outcome: str, output: dict[str, Any] | None, error: str | None
    ) -> None:
        row = self.execute(
            "finish_run",
            {
                "event_id": event_id,
                "run_id": run_id,
                "outcome": outcome,
                "output": Jsonb(output) if output is not None else None,
                "error": error,
            },
            fetch="one",
        )
        if row is None or row["outcome"] == "lease_lost":
            raise LeaseLost(f"event {event_id} was taken over before run {run_id} finished")

    def resolve(self, event_id: int, resolution: dict[str, Any]) -> None:
        row = self.execute("resolve_event", {"event_id": event_id, "resolution": Jsonb(resolution)}, fetch="one")
        if not row["resolved"]:
            raise LeaseLost(f"event {event_id} was taken over before it was resolved")

    def fail_attempt(
        self, event_id: int, error: str, *, delay_s: float, permanent: bool, resolution: dict[str, Any]
    ) -> str:
        """Back to pending after `delay_s`, or failed; returns the new status."""
        row = self.execute(
            "fail_attempt",
            {
                "event_id": event_id,
                "error": error,
                "delay_s": delay_s,
                "permanent": permanent,
                "resolution": Jsonb(resolution),
            },
            fetch="one",
        )
        if row is None:
            raise LeaseLost(f"event {event_id} was taken over before its failure was recorded")
        return str(row["status"])

    def release(self, ids: list[int]) -> list[int]:
        """Give unfinished events back (shutdown); returns the ids released."""

        rows = self.execute("release_events", {"ids": ids})
        return [r["id"] for r in rows]
