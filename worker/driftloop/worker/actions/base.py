"""What every action gets (the context) and gives back (a result or an ActionError)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from driftloop.worker.event import DriftEvent


class ActionError(Exception):
    """The action failed. `permanent` failures are not retried (the event fails at once)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class ActionResult:
    """A one-line summary for logs and the event's resolution, and JSON output for action_runs."""

    summary: str
    output: dict[str, Any] = field(default_factory=dict)


class Database(Protocol):
    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...

    def fenced(self, event_id: int) -> AbstractContextManager[psycopg.Connection[Any]]: ...


@dataclass
class ActionContext:
    """One run of one action for one event."""

    event: DriftEvent
    action: str  # the configured name
    worker_id: str
    database_url: str
    database: Database | None = None
    # Set when the worker must stop now (shutdown grace exceeded): long actions check it.
    cancel: threading.Event = field(default_factory=threading.Event)
    # Called with (exit code, output, error) the moment a command exits, before anything
    # else: the worker records the exit at once, so a worker killed before it finishes the
    # run leaves that outcome to the next worker instead of a second run of the command.
    record_exit: Callable[[int, dict[str, Any], str | None], None] = field(default=lambda code, output, error: None)

    def _db(self) -> Database:
        if self.database is None:
            raise ActionError(f"action {self.action!r} needs the database", permanent=True)
        return self.database

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """An autocommit connection (for statements that cannot run in a transaction)."""
        with self._db().connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A transaction that commits only while this worker still holds the event."""
        with self._db().fenced(self.event.id) as conn:
            yield conn
