"""Retention of the log tables: `driftloop db prune --older-than AGE` and `db partitions`.

The logs are partitioned by time (migration 0011_partitions); retention drops whole
partitions, which costs a catalog update instead of a DELETE of every row (no bloat, no
vacuum debt). The rollups, baselines, events and model versions stay, so detection and the
history in Grafana go on unchanged. What each evaluation leaves (drift.evaluation_history)
goes with the logs of the same age, but for each metric's latest evaluation. Old rollup
buckets are folded to hourly rows on the way (the `rollup_hourly_after` setting).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from driftloop import named_sql
from driftloop.errors import DriftloopError

query = named_sql.beside(__file__, "retention.sql")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
AGE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")


def parse_age(text: str) -> str:
    """An AGE like `30d`, `12h`, `2w` (or a PostgreSQL interval such as `30 days`) as interval text."""
    match = AGE.match(text)
    if match:
        return f"{int(match.group(1))} {UNITS[match.group(2)]}"
    if re.fullmatch(r"\s*\d+\s+(minutes?|hours?|days?|weeks?|mons?|months?|years?)\s*", text):
        return text.strip()
    raise DriftloopError(f"--older-than: {text!r} is not an age like 30d, 12h or 2w")


@dataclass(frozen=True)
class Dropped:
    log: str
    partition: str
    starts: datetime | None
    ends: datetime | None
    bytes: int | None


@dataclass(frozen=True)
class HistoryPruned:
    table: str
    before: datetime
    rows: int


@dataclass(frozen=True)
class PruneResult:
    dropped: list[Dropped] = field(default_factory=list)
    partitions_created: int = 0
    hourly_rows: int = 0
    history: list[HistoryPruned] = field(default_factory=list)


def prune(conn: psycopg.Connection[Any], older_than: str) -> PruneResult:
    """Drop log partitions older than `older_than` (interval text), in one transaction.

    Also moves rows out of the default partitions into partitions of their own (so that a
    back-fill can be pruned like the rest), deletes the evaluation history of that age (each
    metric's latest evaluation stays) and folds old rollup buckets to hourly rows.
    """
    with conn.transaction():
        created = conn.execute(query("ensure_partitions")).fetchone()
        try:
            rows = conn.execute(query("prune_logs"), {"older_than": older_than}).fetchall()
            history = conn.execute(query("prune_history"), {"older_than": older_than}).fetchall()
        except psycopg.errors.InvalidParameterValue as exc:
            raise DriftloopError(exc.diag.message_primary or str(exc)) from None
        hourly = conn.execute(query("compact_hourly")).fetchone()
    return PruneResult(
        dropped=[Dropped(*row) for row in rows],
        partitions_created=int(created[0]) if created else 0,
        hourly_rows=int(hourly[0]) if hourly else 0,
        history=[HistoryPruned(table, before, int(n)) for table, before, n in history],
    )


def partitions(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every log partition with its range and size on disk."""
    cur = conn.execute(query("partitions"))
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
