"""Retries of SDK calls on a lost connection, within a time budget.

A small explicit loop rather than tenacity: each attempt needs the *remaining* budget (it is
the pool's wait for a connection), the final error must report the budget and whether a
COMMIT was left in doubt, and only connection-class failures may be retried. That is a few
lines here and would be as many lines of tenacity callbacks.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from driftloop.errors import DatabaseUnavailable

T = TypeVar("T")

# SQLSTATEs after which the same statement may succeed on a new connection: connection
# exceptions (class 08), the server shutting down or starting up, and the transaction
# rollbacks Postgres asks clients to retry.
TRANSIENT_SQLSTATES = {"57P01", "57P02", "57P03", "40001", "40P01"}


@dataclass(frozen=True)
class RetryPolicy:
    """How long one SDK call keeps trying when the connection is lost.

    deadline_s bounds the whole call (every attempt and backoff); connect_timeout_s bounds one
    connection attempt (libpq's connect_timeout); the pool waits at most the remaining
    deadline for a connection. With the database down a call fails after about deadline_s.
    """

    deadline_s: float = 5.0
    connect_timeout_s: int = 2
    first_backoff_s: float = 0.05
    max_backoff_s: float = 1.0

    def describe(self) -> str:
        return (
            f"deadline {self.deadline_s:g} s, connect_timeout {self.connect_timeout_s} s, "
            f"pool timeout <= {self.deadline_s:g} s, backoff {self.first_backoff_s:g}..{self.max_backoff_s:g} s"
        )


def is_transient(exc: BaseException) -> bool:
    """Whether exc means the connection (not the statement) failed."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or state.startswith("08") or state in TRANSIENT_SQLSTATES
    return False


class Attempt:
    """State one attempt reports to the loop: whether it got as far as sending COMMIT."""

    def __init__(self, number: int, timeout_s: float) -> None:
        self.number = number
        self.timeout_s = timeout_s  # what is left of the budget: the pool's wait for a connection
        self.committing = False


def call(
    policy: RetryPolicy,
    what: str,
    work: Callable[[Attempt], T],
    *,
    retry_in_doubt: bool = True,
    diagnose: Callable[[], str | None] | None = None,
) -> T:
    """Run work(attempt) until it succeeds, fails for a non-transient reason, or the budget is spent.

    retry_in_doubt=False: a lost answer to COMMIT ends the call at once (for work that a
    second run would not repeat exactly, such as evaluate()).
    diagnose: called when the pool never produced a connection, for the reason (the pool
    itself only says it timed out).
    """
    start = time.monotonic()
    backoff = policy.first_backoff_s
    in_doubt = False
    number = 0
    while True:
        number += 1
        elapsed = time.monotonic() - start
        attempt = Attempt(number, max(policy.deadline_s - elapsed, 0.05))
        try:
            return work(attempt)
        except Exception as exc:
            if not is_transient(exc):
                raise
            in_doubt = in_doubt or attempt.committing
            last: BaseException = exc
        elapsed = time.monotonic() - start
        if attempt.committing and not retry_in_doubt:
            raise _unavailable(policy, what, number, elapsed, in_doubt, last, diagnose)
        pause = min(backoff, policy.max_backoff_s) * (0.5 + random.random() / 2)  # jitter: writers spread out
        if elapsed + pause >= policy.deadline_s:
            raise _unavailable(policy, what, number, elapsed, in_doubt, last, diagnose)
        time.sleep(pause)
        backoff *= 2


def _unavailable(
    policy: RetryPolicy,
    what: str,
    attempts: int,
    elapsed: float,
    in_doubt: bool,
    last: BaseException,
    diagnose: Callable[[], str | None] | None,
) -> DatabaseUnavailable:
    reason = str(last).strip().splitlines()[0] if str(last).strip() else type(last).__name__
    if isinstance(last, PoolTimeout) and diagnose is not None:
        why = diagnose()
        if why:
            reason += f" (connecting: {why})"
    outcome = (
        "a COMMIT was sent without an answer, so it may have been written; retry with the same idempotency keys"
        if in_doubt
        else "nothing was written"
    )
    return DatabaseUnavailable(
        f"{what}: database unavailable after {attempts} attempts in {elapsed:.1f} s "
        f"(retry budget: {policy.describe()}); last error: {type(last).__name__}: {reason}; {outcome}",
        attempts=attempts,
        elapsed_s=elapsed,
        budget=policy.describe(),
        in_doubt=in_doubt,
    )


def connect_error(url: str, policy: RetryPolicy) -> str | None:
    """Why a new connection fails right now (one attempt, bounded by connect_timeout), or None."""
    try:
        psycopg.connect(url, **pool_kwargs(url, policy)).close()
    except psycopg.Error as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        return " ".join(lines[:2]) or type(exc).__name__
    return None


def pool_kwargs(url: str, policy: RetryPolicy) -> dict[str, Any]:
    """Connection keyword arguments: connect_timeout unless the URL sets its own."""
    from psycopg.conninfo import conninfo_to_dict

    if "connect_timeout" in conninfo_to_dict(url):
        return {}
    return {"connect_timeout": policy.connect_timeout_s}
