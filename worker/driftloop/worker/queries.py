"""The worker's SQL, kept in queries.sql as named queries (`-- name: NAME` blocks)."""

from __future__ import annotations

from pathlib import Path

from driftloop import named_sql

QUERIES = Path(__file__).with_name("queries.sql")


def query(name: str) -> str:
    """The SQL text of a named query (KeyError for an unknown name)."""
    return named_sql.query(QUERIES, name)
