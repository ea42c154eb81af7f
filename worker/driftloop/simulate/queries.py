"""The simulation's SQL: the named queries of queries.sql (`-- name: NAME` blocks)."""

from __future__ import annotations

from driftloop import named_sql

query = named_sql.beside(__file__)
