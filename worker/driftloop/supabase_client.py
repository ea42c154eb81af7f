"""The SDK through Supabase: the same API as the direct client, over the edge functions.

    dl = driftloop.connect(supabase_url="https://xyz.supabase.co", supabase_key=KEY)
    ids = dl.log_interactions([{"model": "support-bot", "prompt": "...", "embedding": vec}])

Rows are validated locally first, by the same rules the functions apply, so a bad row fails
before anything is sent, with the same InputError naming the row and field. Requests go
through supabase-py's functions client (`functions.invoke`), so the project's URL and key
work unchanged, against Supabase or `driftloop functions serve`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from driftloop import validation
from driftloop.errors import DriftloopError, InputError

# The function's limits: at most 1,000 interactions and 8 MiB per request. Bigger batches are
# sent in chunks; each chunk is one transaction (all of it or none), not the whole batch.
MAX_ROWS_PER_REQUEST = 1000
MAX_BYTES_PER_REQUEST = 6 * 1024 * 1024
_ORJSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_WHERE = re.compile(r"^(?:row (?P<row>\d+))?(?:, )?(?:field '(?P<field>[^']*)')?: (?P<message>.*)$", re.S)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.ndarray):  # one orjson cannot take directly (non-contiguous, other dtypes)
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode(value: Any) -> str:
    # orjson writes numpy float32 embeddings natively, in their shortest float32 form: a tenth
    # of the time of json + tolist(), and 40% fewer bytes for the function and Postgres to parse.
    # (Values are validated first, so no NaN ever reaches its NaN-to-null conversion.)
    return orjson.dumps(value, default=_jsonable, option=_ORJSON).decode()


class SupabaseClient:
    """Logs through the edge functions of a Supabase project (or `driftloop functions serve`)."""

    def __init__(self, supabase_url: str, supabase_key: str) -> None:
        try:
            from supabase import create_client
        except ImportError:  # pragma: no cover - the dependency is declared
            raise DriftloopError("the supabase package is missing: pip install 'driftloop[supabase]'") from None
        self.url = supabase_url
        self.supabase = create_client(supabase_url, supabase_key)
        self.functions = self.supabase.functions

    def close(self) -> None:
        """Nothing to release beyond the HTTP client, which supabase-py closes itself."""

    def __enter__(self) -> SupabaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- logging ---------------------------------------------------------------------------
    def log_interactions(self, rows: Iterable[dict[str, Any]]) -> list[int]:
        """Log interactions (with optional `embedding` and `idempotency_key`); returns their ids.

        Validated whole before anything is sent. Up to 1,000 rows (and 6 MiB) go in one request,
        which is one transaction; a bigger batch is sent in such chunks, so give rows an
        `idempotency_key` when a retry after a partial failure must not log them twice.
        """
        rows = list(rows)
        validation.interaction_rows(rows)  # raises InputError naming the row, as the direct client
        ids: list[int] = []
        for offset, chunk in self._chunks([_encode(r) for r in rows]):
            body = self._invoke("log-interaction", "[" + ",".join(chunk) + "]", offset=offset)
            ids.extend(int(i) for i in body["ids"])
        return ids

    def log_embeddings(
        self,
        model: str,
        array: Any,
        created_at: datetime | str | Sequence[datetime | str] | None = None,
        interaction_ids: Sequence[int] | None = None,
    ) -> int:
        """Log a (rows x dims) array of embeddings for a model; returns rows written."""
        validation.model_name(model)
        matrix = validation.embedding_matrix(array, expected_dims=None)
        stamps = validation.timestamps(created_at, len(matrix))
        if interaction_ids is not None and len(interaction_ids) != len(matrix):
            raise InputError(f"has {len(interaction_ids)} ids for {len(matrix)} embeddings", field="interaction_ids")
        payload: dict[str, Any] = {"model": model, "embeddings": matrix.tolist()}
        if stamps and stamps[0] is not None:
            payload["created_at"] = [s.isoformat() if s else None for s in stamps]
        if interaction_ids is not None:
            payload["interaction_ids"] = [int(i) for i in interaction_ids]
        return int(self._invoke("log-embeddings", _encode(payload))["count"])

    def feedback(
        self, interaction_id: int, *, feedback: int | None = None, correct: bool | None = None
    ) -> dict[str, Any]:
        """Late feedback (-1, 0, 1) and/or a label for a logged interaction."""
        body: dict[str, Any] = {"interaction_id": int(interaction_id)}
        if feedback is not None:
            body["feedback"] = feedback
        if correct is not None:
            body["correct"] = correct
        return dict(self._invoke("feedback", _encode(body)))

    # -- drift -----------------------------------------------------------------------------
    def status(self, as_of: datetime | None = None, *, model: str | None = None) -> list[dict[str, Any]]:
        """Rows of drift.drift_status (one per model and metric), as the direct client returns them."""
        if as_of is not None:
            raise DriftloopError("status(as_of=...) is not available through Supabase: connect to the database")
        name = "drift-status" if model is None else f"drift-status?model={_quote(model)}"
        rows = self._invoke(name, None, method="GET")
        for row in rows:
            for key in ("window_start", "window_end"):
                if isinstance(row.get(key), str):
                    row[key] = datetime.fromisoformat(row[key].replace("Z", "+00:00"))
        return list(rows)

    def evaluate(self, as_of: datetime | None = None) -> list[dict[str, Any]]:
        raise DriftloopError(
            "evaluate() is not available through Supabase's functions: the log triggers evaluate as rows"
            " arrive, `driftloop db schedule` runs it every minute with pg_cron, or connect to the database"
        )

    def set_baseline(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise DriftloopError("set_baseline() needs a database connection (driftloop.connect(database_url))")

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _chunks(encoded: list[str]) -> Iterable[tuple[int, list[str]]]:
        start, size = 0, 2
        for i, row in enumerate(encoded):
            if i - start >= MAX_ROWS_PER_REQUEST or (i > start and size + len(row) + 1 > MAX_BYTES_PER_REQUEST):
                yield start, encoded[start:i]
                start, size = i, 2
            size += len(row.encode()) + 1
        if start < len(encoded):
            yield start, encoded[start:]

    def _invoke(self, name: str, body: str | None, *, method: str = "POST", offset: int = 0) -> Any:
        from supabase_functions.errors import FunctionsError

        options: dict[str, Any] = {"method": method, "responseType": "json"}
        if body is not None:
            options["body"] = body
            options["headers"] = {"Content-Type": "application/json"}
        try:
            return self.functions.invoke(name, invoke_options=options)
        except FunctionsError as exc:
            raise _error(exc.status, exc.message, offset) from None


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _error(status: int, message: str, offset: int) -> DriftloopError:
    """A function's 4xx as the direct client would raise it: InputError for bad rows."""
    if status in (400, 409, 413):
        match = _WHERE.match(message)
        if match and (match["row"] or match["field"]):
            row = int(match["row"]) + offset if match["row"] else None
            return InputError(match["message"], row=row, field=match["field"])
        return InputError(message)
    return DriftloopError(f"edge function refused the request ({status}): {message}")
