"""The Python SDK: log interactions and embeddings, set baselines, evaluate, read drift status.

    import driftloop
    dl = driftloop.connect()              # DATABASE_URL, .env, or the embedded server
    ids = dl.log_interactions([{"model": "support-bot", "prompt": "...", "response": "..."}])
    dl.log_embeddings("support-bot", vectors, interaction_ids=ids)
    events = dl.evaluate()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from driftloop import named_sql, validation
from driftloop.database import configure_connection, database_url
from driftloop.errors import InputError

# Column order of the copy_interactions query in client.sql, with binary COPY types.
INTERACTION_COLUMNS = (
    "id", "created_at", "model", "model_version", "prompt", "response", "is_refusal", "toxicity",
    "feedback", "correct", "latency_ms", "metadata", "idempotency_key",
)  # fmt: skip
INTERACTION_TYPES = (
    "int8", "timestamptz", "text", "text", "text", "text", "bool", "float4",
    "int2", "bool", "float4", "jsonb", "text",
)  # fmt: skip
DRIFT_KINDS = ("embedding", "behavior", "accuracy")
sql = named_sql.beside(__file__, "client.sql")


class Client:
    """A pooled connection to a driftloop database. Thread-safe; close() when done."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4) -> None:
        self.url = url
        # A model's embedding dimension never changes once set: cache it, saving a round trip a batch.
        self._dims: dict[str, int] = {}
        self.pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, configure=configure_connection, open=True
        )

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- logging ---------------------------------------------------------------------------
    def log_interactions(self, rows: Iterable[dict[str, Any]]) -> list[int]:
        """Log interactions (dicts with interaction_log's fields, plus an optional `embedding`).

        Returns their ids in order. The whole batch is validated first and written in one
        transaction: on any error nothing is written. A row whose `idempotency_key` was
        already logged is not written again; its existing id is returned.
        """
        checked, embeddings = validation.interaction_rows(rows)
        if not checked:
            return []
        with self.pool.connection() as conn, conn.transaction():
            now, ids = self._allocate_ids(conn, len(checked))
            for row, new_id in zip(checked, ids, strict=True):
                row["id"] = new_id
                row["created_at"] = row["created_at"] or now
            if any(row["idempotency_key"] for row in checked):
                ids = self._insert_idempotent(conn, checked)
            else:
                self._copy_interactions(conn, checked)
            fresh = {row["id"] for row in checked}
            by_model: dict[str, list[tuple[int, Any]]] = {}
            for index, vector in embeddings:
                if ids[index] in fresh:  # a replayed idempotent row keeps its first embedding
                    by_model.setdefault(checked[index]["model"], []).append((index, vector))
            for model, items in by_model.items():
                matrix = self._embedding_matrix(conn, model, [v for _, v in items], first_row=items[0][0])
                self._copy_embeddings(
                    conn,
                    model,
                    matrix,
                    [checked[i]["created_at"] for i, _ in items],
                    [ids[i] for i, _ in items],
                )
        return ids

    def log_embeddings(
        self,
        model: str,
        array: Any,
        created_at: datetime | str | Sequence[datetime | str] | None = None,
        interaction_ids: Sequence[int] | None = None,
    ) -> int:
        """Log a (rows x dims) array of embeddings for a model by binary COPY; returns rows written.

        `created_at`: None (now), one timestamp for all rows, or one per row (timezone-aware).
        Rejects NaN/inf and a dimension other than the model's existing embeddings; on any
        error nothing is written.
        """
        validation.model_name(model)
        with self.pool.connection() as conn, conn.transaction():
            matrix = self._embedding_matrix(conn, model, array)
            stamps = validation.timestamps(created_at, len(matrix))
            if interaction_ids is not None:
                interaction_ids = [int(i) for i in interaction_ids]
                if len(interaction_ids) != len(matrix):
                    raise InputError(
                        f"has {len(interaction_ids)} ids for {len(matrix)} embeddings", field="interaction_ids"
                    )
            self._copy_embeddings(conn, model, matrix, stamps, interaction_ids)
        return len(matrix)

    # -- drift -----------------------------------------------------------------------------
    def set_baseline(
        self, model: str, starts: datetime, ends: datetime, kinds: Sequence[str] = DRIFT_KINDS
    ) -> list[dict[str, Any]]:
        """Set the reference window of a model (all drift kinds by default); returns the baselines."""
        with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            cur.execute(sql("set_baseline"), {"model": model, "starts": starts, "ends": ends, "kinds": list(kinds)})
            return cur.fetchall()

    def evaluate(self, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """Evaluate every model now (or at `as_of`); returns the drift events raised."""
        with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            cur.execute(sql("evaluate"), {"as_of": as_of})
            return cur.fetchall()

    def status(self, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """Rows of drift.drift_status (or drift.drift_report(as_of)), one per model and metric."""
        with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            if as_of is None:
                cur.execute(sql("status"))
            else:
                cur.execute(sql("report_at"), {"as_of": as_of})
            return cur.fetchall()

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _allocate_ids(conn: psycopg.Connection[Any], count: int) -> tuple[datetime, list[int]]:
        row = conn.execute(sql("allocate_interaction_ids"), {"count": count}).fetchone()
        assert row is not None
        return row[0], list(row[1])

    @staticmethod
    def _copy_interactions(conn: psycopg.Connection[Any], rows: list[dict[str, Any]]) -> None:
        with conn.cursor().copy(sql("copy_interactions")) as copy:
            copy.set_types(list(INTERACTION_TYPES))
            for row in rows:
                copy.write_row([_copy_value(c, row[c]) for c in INTERACTION_COLUMNS])

    @staticmethod
    def _insert_idempotent(conn: psycopg.Connection[Any], rows: list[dict[str, Any]]) -> list[int]:
        """Row-by-row INSERT .. ON CONFLICT for batches with idempotency keys (pipelined)."""
        ids: list[int] = []
        with conn.cursor() as cur:
            for row in rows:
                cur.execute(
                    sql("insert_interaction_idempotent"), {c: _copy_value(c, row[c]) for c in INTERACTION_COLUMNS}
                )
                found = cur.fetchone()
                if found is None:
                    # The key was committed by a concurrent request after this statement's
                    # snapshot was taken (ON CONFLICT waited for it): a new statement sees it.
                    cur.execute(sql("interaction_id_by_key"), {"idempotency_key": row["idempotency_key"]})
                    found = cur.fetchone()
                assert found is not None
                ids.append(found[0])
        return ids

    def _embedding_matrix(
        self, conn: psycopg.Connection[Any], model: str, array: Any, first_row: int = 0
    ) -> np.ndarray:
        dims = self._dims.get(model)
        if dims is None:
            row = conn.execute(sql("model_dims"), {"model": model}).fetchone()
            if row and row[0] is not None:
                dims = self._dims[model] = row[0]
        return validation.embedding_matrix(array, expected_dims=dims, first_row=first_row)

    @staticmethod
    def _copy_embeddings(
        conn: psycopg.Connection[Any],
        model: str,
        matrix: np.ndarray,
        stamps: Sequence[datetime | None],
        interaction_ids: Sequence[int] | None,
    ) -> None:
        with_time = stamps[0] is not None if len(stamps) else False
        types = ["text", "int8", "vector"] + (["timestamptz"] if with_time else [])
        with conn.cursor().copy(sql("copy_embeddings_at" if with_time else "copy_embeddings")) as copy:
            copy.set_types(types)
            for i, vector in enumerate(matrix):
                iid = interaction_ids[i] if interaction_ids is not None else None
                copy.write_row((model, iid, vector, stamps[i]) if with_time else (model, iid, vector))


def _copy_value(column: str, value: Any) -> Any:
    return Jsonb(value) if column == "metadata" and value is not None else value


def connect(
    database_url_: str | None = None,
    *,
    supabase_url: str | None = None,
    supabase_key: str | None = None,
    **pool_options: Any,
) -> Any:
    """A Client for DATABASE_URL (or `.env`, or the embedded server when unset).

    With `supabase_url` and `supabase_key` (or SUPABASE_URL and SUPABASE_KEY set and no
    DATABASE_URL), a driftloop.supabase_client.SupabaseClient with the same logging API,
    which logs through the project's edge functions.
    """
    from driftloop.database import settings_url
    from driftloop.settings import env

    if database_url_ is None and (supabase_url or supabase_key or (settings_url() is None and env("SUPABASE_URL"))):
        from driftloop.supabase_client import SupabaseClient

        url, key = supabase_url or env("SUPABASE_URL"), supabase_key or env("SUPABASE_KEY")
        if not url or not key:
            raise InputError("needs both a Supabase URL and key (SUPABASE_URL and SUPABASE_KEY)", field="supabase_key")
        return SupabaseClient(url, key)
    return Client(database_url_ or database_url(), **pool_options)
