"""The Python SDK: log interactions and embeddings, set baselines, evaluate, read drift status.

import driftloop
dl = driftloop.connect()              # DATABASE_URL, .env, or the embedded server
ids = dl.log_interactions([{"model": "support-bot", "prompt": "...", "response": "..."}])
dl.log_embeddings("support-bot", vectors, interaction_ids=ids)
dl.feedback(ids[0], correct=False)    # a late label (or feedback=-1/0/1)
events = dl.evaluate()
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from driftloop import named_sql, retry, validation
from driftloop.database import configure_connection, database_url
from driftloop.errors import InputError
from driftloop.retry import Attempt, RetryPolicy, pool_kwargs

T = TypeVar("T")

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
    """A pooled connection to a driftloop database. Thread-safe; close() when done.

    Every call retries on a lost connection (a server restart, a failover) within
    `retry.deadline_s`; writes are exact across retries: each batch carries a client-made
    batch key whose row is written in the batch's own transaction, so a retry after a lost
    COMMIT finds it and writes nothing again. With the database down a call fails after about
    the deadline with DatabaseUnavailable naming the budget it used.
    """

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, retry: RetryPolicy | None = None) -> None:
        self.url = url
        self.retry = retry or RetryPolicy()
        # A model's embedding dimension never changes once set: cache it, saving a round trip a batch.
        self._dims: dict[str, int] = {}
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs=pool_kwargs(url, self.retry),
            configure=configure_connection,
            # A pooled connection may have died with the server: test it before handing it out.
            check=ConnectionPool.check_connection,
            timeout=self.retry.deadline_s,
            open=True,
        )

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, work: Callable[[psycopg.Connection[Any], Attempt], T], *, in_doubt_ok: bool = True) -> T:
        def attempt(a: Attempt) -> T:
            with self.pool.connection(timeout=a.timeout_s) as conn:
                return work(conn, a)

        return retry.call(
            self.retry,
            what,
            attempt,
            retry_in_doubt=in_doubt_ok,
            diagnose=lambda: retry.connect_error(self.url, self.retry),
        )

    # -- logging ---------------------------------------------------------------------------
    def log_interactions(self, rows: Iterable[dict[str, Any]]) -> list[int]:
        """Log interactions (dicts with interaction_log's fields, plus an optional `embedding`).

        Returns their ids in order. The whole batch is validated first and written in one
        transaction: on any error nothing is written. A row whose `idempotency_key` was
        already logged for its model with the same payload is not written again; its first id
        is returned. The same key with another payload is an InputError.
        """
        checked, embeddings = validation.interaction_rows(rows)
        if not checked:
            return []
        batch_key = uuid.uuid4()

        def work(conn: psycopg.Connection[Any], attempt: Attempt) -> list[int]:
            with conn.transaction():
                # Each attempt takes ids of its own. An earlier attempt that died uncommitted in a
                # crash may hold ids the server then hands out again (a sequence restarts from
                # its last durable value): reusing them would log two rows, of two batches,
                # under one id. created_at stays the first attempt's.
                now, new_ids = self._allocate_ids(conn, len(checked))
                if not self._claim_batch(conn, batch_key, "interaction", len(checked)):
                    # An earlier attempt committed it: the rows still carry the ids it wrote.
                    return self._interaction_ids(conn, checked)
                for row, new_id in zip(checked, new_ids, strict=True):
                    row["id"] = new_id
                    row["created_at"] = row["created_at"] or now
                try:
                    self._copy_interactions(conn, checked)
                except psycopg.errors.UniqueViolation as exc:
                    raise _key_reused(exc, checked) from None
                ids = self._interaction_ids(conn, checked)
                by_model: dict[str, list[tuple[int, Any]]] = {}
                for index, vector in embeddings:
                    if ids[index] == checked[index]["id"]:  # a replayed row keeps its first embedding
                        by_model.setdefault(checked[index]["model"], []).append((index, vector))
                for model, items in by_model.items():
                    matrix = self._embedding_matrix(conn, model, [v for _, v in items], first_row=items[0][0])
                    self._copy_embeddings(
                        conn,
                        model,
                        matrix,
                        [checked[i]["created_at"] for i, _ in items],
                        [ids[i] for i, _ in items],
                        [None] * len(items),
                    )
                attempt.committing = True
            return ids

        return self._call("log_interactions", work)

    def log_embeddings(
        self,
        model: str,
        array: Any,
        created_at: datetime | str | Sequence[datetime | str] | None = None,
        interaction_ids: Sequence[int] | None = None,
        idempotency_keys: Sequence[str | None] | None = None,
    ) -> int:
        """Log a (rows x dims) array of embeddings for a model by binary COPY; returns rows written.

        `created_at`: None (now), one timestamp for all rows, or one per row (timezone-aware).
        `idempotency_keys`: one key (or None) per row; a row whose key this model already
        logged with the same payload is skipped (not counted), another payload is an InputError.
        Rejects NaN/inf and a dimension other than the model's existing embeddings; on any
        error nothing is written.
        """
        model = validation.model_name(model)
        matrix_first = validation.embedding_matrix(array, expected_dims=self._dims.get(model))
        stamps = validation.timestamps(created_at, len(matrix_first))
        keys = validation.idempotency_keys(idempotency_keys, len(matrix_first))
        links = validation.interaction_ids(interaction_ids, len(matrix_first))
        batch_key = uuid.uuid4()

        def work(conn: psycopg.Connection[Any], attempt: Attempt) -> int:
            with conn.transaction():
                matrix = self._embedding_matrix(conn, model, matrix_first)
                if not self._claim_batch(conn, batch_key, "embedding", len(matrix)):
                    return self._batch_rows(conn, batch_key)
                try:
                    written = self._copy_embeddings(conn, model, matrix, stamps, links, keys)
                except psycopg.errors.UniqueViolation as exc:
                    raise _key_reused(exc, [{"model": model, "idempotency_key": k} for k in keys]) from None
                conn.execute(sql("batch_written"), {"batch_key": batch_key, "rows": written})
                attempt.committing = True
            return written

        return self._call("log_embeddings", work)

    def feedback(
        self, interaction_id: int, *, feedback: int | None = None, correct: bool | None = None
    ) -> dict[str, Any]:
        """Late feedback (-1, 0, 1) and/or a label (`correct`) for a logged interaction.

        The fields given are set, the others keep their value. Returns the row's id, feedback
        and correct (as the `feedback` edge function and the Supabase client do). The row is
        found through its id's partition step, so the update touches one partition however
        many days are kept. An id that was never logged is an InputError.
        """
        if isinstance(interaction_id, bool) or not isinstance(interaction_id, int) or interaction_id < 1:
            raise InputError(f"must be a positive integer, got {interaction_id!r}", field="interaction_id")
        if feedback is None and correct is None:
            raise InputError("nothing to update: give feedback and/or correct", field="feedback")
        if feedback is not None and (isinstance(feedback, bool) or feedback not in (-1, 0, 1)):
            raise InputError(f"must be -1, 0 or 1, got {feedback!r}", field="feedback")
        if correct is not None and not isinstance(correct, bool):
            raise InputError(f"must be true or false, got {correct!r}", field="correct")
        params = {
            "id": interaction_id,
            "set_feedback": feedback is not None,
            "feedback": None if feedback is None else int(feedback),
            "set_correct": correct is not None,
            "correct": correct,
        }

        def work(conn: psycopg.Connection[Any], attempt: Attempt) -> dict[str, Any]:
            cur = conn.cursor(row_factory=dict_row)
            with conn.transaction():
                steps = cur.execute(sql("interaction_steps"), {"id": interaction_id}).fetchall()
                for step in steps:  # almost always one
                    # Never prepared: a prepared statement soon runs a generic plan, which cannot
                    # prune at plan time and opens and locks every partition at each execution.
                    row = cur.execute(sql("label_interaction"), {**params, **step}, prepare=False).fetchone()
                    if row is not None:
                        return {"interaction_id": row["id"], "feedback": row["feedback"], "correct": row["correct"]}
            raise InputError(f"no interaction with id {interaction_id}", field="interaction_id")

        # Setting the same values twice is harmless: a retry after a lost COMMIT is safe.
        return self._call("feedback", work)

    # -- drift -----------------------------------------------------------------------------
    def set_baseline(
        self, model: str, starts: datetime | str, ends: datetime | str, kinds: Sequence[str] = DRIFT_KINDS
    ) -> list[dict[str, Any]]:
        """Set the reference window of a model (all drift kinds by default); returns the baselines.

        starts and ends must be timezone-aware (a naive datetime would be read in the
        server's time zone, silently moving the window).
        """
        model = validation.model_name(model)
        lo, hi = validation.baseline_window(starts, ends)
        if isinstance(kinds, str) or not set(kinds) <= set(DRIFT_KINDS) or not kinds:
            raise InputError(f"must be a non-empty list of {', '.join(DRIFT_KINDS)}; got {kinds!r}", field="kinds")

        def work(conn: psycopg.Connection[Any], attempt: Attempt) -> list[dict[str, Any]]:
            cur = conn.cursor(row_factory=dict_row)
            try:
                cur.execute(sql("set_baseline"), {"model": model, "starts": lo, "ends": hi, "kinds": list(kinds)})
            except psycopg.errors.InvalidParameterValue as exc:  # e.g. a model nothing was logged for
                raise InputError(exc.diag.message_primary or str(exc), field="model") from None
            return cur.fetchall()

        return self._call("set_baseline", work)

    def evaluate(self, as_of: datetime | None = None, models: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Evaluate every model (or only `models`) now (or at `as_of`, timezone-aware); returns the events raised."""
        at = validation.as_of(as_of)

        def work(conn: psycopg.Connection[Any], attempt: Attempt) -> list[dict[str, Any]]:
            cur = conn.cursor(row_factory=dict_row)
            if models is None:
                cur.execute(sql("evaluate"), {"as_of": at})
            else:
                cur.execute(sql("compact_rollups"))
                cur.execute(sql("evaluate_models"), {"as_of": at, "models": list(models)})
            events = cur.fetchall()
            attempt.committing = True  # the pool commits as the connection goes back
            return events

        # A retry after a lost answer would find the events open and raise none: say so instead.
        return self._call("evaluate", work, in_doubt_ok=False)

    def status(self, as_of: datetime | None = None, models: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Rows of drift.drift_status (or drift.drift_report(as_of)), one per model and metric.

        The current window is [as_of - current_window, as_of) rounded down to whole rollup
        buckets (1 minute): rows logged in the current minute count from the next minute on.
        """
        at = validation.as_of(as_of)

        def work(conn: psycopg.Connection[Any], attempt: Attempt) -> list[dict[str, Any]]:
            cur = conn.cursor(row_factory=dict_row)
            if at is None and models is None:
                cur.execute(sql("status"))
            else:
                cur.execute(sql("report_at"), {"as_of": at, "models": None if models is None else list(models)})
            return cur.fetchall()

        return self._call("status", work)

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _allocate_ids(conn: psycopg.Connection[Any], count: int) -> tuple[datetime, list[int]]:
        row = conn.execute(sql("allocate_interaction_ids"), {"count": count}).fetchone()
        assert row is not None
        return row[0], list(row[1])

    @staticmethod
    def _claim_batch(conn: psycopg.Connection[Any], batch_key: uuid.UUID, log: str, rows: int) -> bool:
        """Record the batch key first: False when an earlier attempt of this call committed.

        An attempt whose connection died mid-commit may still be finishing on the server; the
        insert then waits for it on the key's unique index instead of racing it.
        """
        row = conn.execute(sql("claim_batch"), {"batch_key": batch_key, "log": log, "rows": rows}).fetchone()
        return row is not None

    @staticmethod
    def _batch_rows(conn: psycopg.Connection[Any], batch_key: uuid.UUID) -> int:
        row = conn.execute(sql("batch_rows"), {"batch_key": batch_key}).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    @staticmethod
    def _copy_interactions(conn: psycopg.Connection[Any], rows: list[dict[str, Any]]) -> None:
        with conn.cursor().copy(sql("copy_interactions")) as copy:
            copy.set_types(list(INTERACTION_TYPES))
            for row in rows:
                copy.write_row([_copy_value(c, row[c]) for c in INTERACTION_COLUMNS])

    @staticmethod
    def _interaction_ids(conn: psycopg.Connection[Any], rows: list[dict[str, Any]]) -> list[int]:
        """The id each row has in the log: its own, or for a replayed key the first row's."""
        keyed = [(r["model"], r["idempotency_key"]) for r in rows if r["idempotency_key"] is not None]
        ids = [r["id"] for r in rows]
        if not keyed:
            return ids
        found = {
            (m, k): i
            for m, k, i in conn.execute(
                sql("interaction_ids_by_key"), {"models": [m for m, _ in keyed], "keys": [k for _, k in keyed]}
            ).fetchall()
        }
        for index, row in enumerate(rows):
            if row["idempotency_key"] is not None:
                ids[index] = found[(row["model"], row["idempotency_key"])]
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
        keys: Sequence[str | None],
    ) -> int:
        with_time = stamps[0] is not None if len(stamps) else False
        types = ["text", "int8", "vector", "text"] + (["timestamptz"] if with_time else [])
        cur = conn.cursor()
        with cur.copy(sql("copy_embeddings_at" if with_time else "copy_embeddings")) as copy:
            copy.set_types(types)
            for i, vector in enumerate(matrix):
                iid = interaction_ids[i] if interaction_ids is not None else None
                copy.write_row((model, iid, vector, keys[i], stamps[i]) if with_time else (model, iid, vector, keys[i]))
        return cur.rowcount


def _key_reused(exc: psycopg.errors.UniqueViolation, rows: Sequence[dict[str, Any]]) -> Exception:
    """An idempotency key replayed with another payload, as an InputError naming its row."""
    if exc.diag.constraint_name != "idempotency_keys_pkey":
        return exc
    detail = exc.diag.message_detail or ""
    row = next(
        (
            i
            for i, r in enumerate(rows)
            if r["idempotency_key"] is not None and f"=({r['model']}, {r['idempotency_key']}) " in detail
        ),
        None,
    )
    return InputError(f"{exc.diag.message_primary}. {detail}".strip(), row=row, field="idempotency_key")


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
