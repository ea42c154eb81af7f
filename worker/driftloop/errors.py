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
