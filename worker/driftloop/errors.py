"""Exceptions users catch: one for bad input, one base for everything else."""

from __future__ import annotations


class DriftloopError(Exception):
    """Base class of driftloop's own errors."""


class InputError(DriftloopError, ValueError):
    """A row of a batch is invalid; nothing of the batch was written.

    ``row`` is the 0-based index of the offending row in the batch and ``field`` the
    name of the offending field, so callers can report or drop exactly that row.
    """

    def __init__(self, message: str, *, row: int | None = None, field: str | None = None) -> None:
        where = []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.row = row
        self.field = field


class DatabaseUnavailable(DriftloopError, ConnectionError):
    """The database could not be reached (or kept losing the connection) within the retry budget.

    ``attempts`` and ``elapsed_s`` say what was tried, ``budget`` is the policy that bounded it
    and ``in_doubt`` whether an attempt's COMMIT was sent without an answer: then the batch may
    have been written, and only a retry with the same idempotency keys is safe.
    """

    def __init__(self, message: str, *, attempts: int, elapsed_s: float, budget: str, in_doubt: bool) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        self.budget = budget
        self.in_doubt = in_doubt


def one_line(exc: BaseException | str) -> str:
    """An error as one line a user can act on (for the CLI's stderr).

    Database errors are unwrapped (SQLAlchemy wraps psycopg's during migrations) and named
    by what failed: a connection that could not be made, or the server's primary message.
    """
    if isinstance(exc, str):
        text = exc
    else:
        inner = getattr(exc, "orig", None)  # sqlalchemy.exc.DBAPIError
        if isinstance(inner, BaseException):
            exc = inner
        text = _database_message(exc) or str(exc) or type(exc).__name__
    lines = [part.strip() for part in text.strip().splitlines() if part.strip()]
    return "; ".join(lines[:2]) if lines else "unknown error"


def _database_message(exc: BaseException) -> str | None:
    import psycopg
    import psycopg_pool

    if isinstance(exc, psycopg_pool.PoolTimeout):
        return f"cannot connect to the database: {exc}"
    if not isinstance(exc, psycopg.Error):
        return None
    primary = exc.diag.message_primary if exc.diag else None
    if exc.sqlstate is None and isinstance(exc, psycopg.OperationalError):
        # No SQLSTATE: the server never answered (refused, unreachable, bad credentials).
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"cannot connect to the database: {first.removeprefix('connection failed: ')}"
    return f"database error: {primary or str(exc)}"
