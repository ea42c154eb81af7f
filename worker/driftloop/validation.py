"""Validation of log rows before anything is sent: every error names the row and the field.

The database enforces the same rules (CHECK constraints, pgvector's NaN/inf rejection, the
dimension trigger); checking here first gives a message that says which row to fix, and lets
a whole batch be refused before a single byte is written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from driftloop.errors import InputError

MAX_TEXT_CHARS = 1_000_000  # prompt/response; larger is almost always a logging bug
MAX_NAME_CHARS = 200  # model, model_version, idempotency_key
MAX_METADATA_BYTES = 64 * 1024
MAX_EMBEDDING_DIMS = 16_000  # pgvector's limit for the vector type
# The rollups keep element-wise sums of squares in float32 (pgvector): a component whose
# square overflows cannot be counted, one whose square underflows is flushed to zero.
MAX_EMBEDDING_COMPONENT = 1e18
MIN_EMBEDDING_COMPONENT = 1e-18
FLOAT32_MAX = float(np.finfo(np.float32).max)

INTERACTION_FIELDS = {
    "created_at",
    "model",
    "model_version",
    "prompt",
    "response",
    "is_refusal",
    "toxicity",
    "feedback",
    "correct",
    "latency_ms",
    "metadata",
    "idempotency_key",
    "embedding",
}


def _text(value: Any, row: int | None, field: str, limit: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InputError("is required", row=row, field=field)
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"is not valid UTF-8 ({exc.reason} at byte {exc.start})", row=row, field=field) from None
    if not isinstance(value, str):
        raise InputError(f"must be a string, got {type(value).__name__}", row=row, field=field)
    if required and not value:
        raise InputError("must not be empty", row=row, field=field)
    if "\x00" in value:
        raise InputError("contains a NUL character, which PostgreSQL text cannot store", row=row, field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("contains an unpaired surrogate (not valid Unicode)", row=row, field=field) from None
    if len(value) > limit:
        raise InputError(f"is {len(value)} characters long; the limit is {limit}", row=row, field=field)
    return value


def model_name(value: Any) -> str:
    """A model name as the log tables accept it (non-empty text of at most 200 characters)."""
    name = _text(value, None, "model", MAX_NAME_CHARS, required=True)
    assert name is not None
    return name


def _number(value: Any, row: int, field: str, lo: float, hi: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"must be a number, got {type(value).__name__}", row=row, field=field)
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"must be finite, got {number}", row=row, field=field)
    if number < lo or (hi is not None and number > hi):
        bound = f"between {lo:g} and {hi:g}" if hi is not None else f"at least {lo:g}"
        raise InputError(f"must be {bound}, got {number:g}", row=row, field=field)
    if abs(number) > FLOAT32_MAX:  # the columns are real; the edge functions refuse the same
        raise InputError(f"{number:g} does not fit a 4-byte float (real)", row=row, field=field)
    return number


def _boolean(value: Any, row: int, field: str) -> bool | None:
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    raise InputError(f"must be true, false or null, got {type(value).__name__}", row=row, field=field)


def _timestamp(value: Any, row: int | None, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"is not an ISO 8601 timestamp: {value[:40]!r}", row=row, field=field) from None
    if not isinstance(value, datetime):
        raise InputError(f"must be a datetime, got {type(value).__name__}", row=row, field=field)
    if value.tzinfo is None:
        raise InputError("must be timezone-aware (naive datetimes are ambiguous)", row=row, field=field)
    return value


def embedding_matrix(array: Any, *, expected_dims: int | None, first_row: int = 0) -> np.ndarray:
    """A 2-D float32 matrix of finite values with the model's dimension, or InputError."""
    try:
        with np.errstate(over="ignore"):  # overflow to inf is reported below, per row
            matrix = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"embeddings must be numeric: {exc}", field="embedding") from None
    if matrix.ndim == 1:
        matrix = matrix[np.newaxis, :]
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise InputError(f"embeddings must be a 2-D array (rows x dims), got shape {matrix.shape}", field="embedding")
    if matrix.shape[1] > MAX_EMBEDDING_DIMS:
        raise InputError(f"{matrix.shape[1]} dimensions; pgvector's limit is {MAX_EMBEDDING_DIMS}", field="embedding")
    if expected_dims is not None and matrix.shape[1] != expected_dims:
        raise InputError(
            f"has {matrix.shape[1]} dimensions but this model's embeddings have {expected_dims}",
            row=first_row,
            field="embedding",
        )
    bad_rows = ~np.isfinite(matrix).all(axis=1)
    if bad_rows.any():
        row = int(np.argmax(bad_rows))
        original = np.asarray(array, dtype=np.float64).reshape(matrix.shape)[row]
        value = original[~np.isfinite(matrix[row])][0]
        what = f"{value:g}, beyond float32 range" if np.isfinite(value) else str(value)
        raise InputError(f"contains {what} (NaN and infinity are not allowed)", row=first_row + row, field="embedding")
    magnitude = np.abs(matrix)
    huge = (magnitude > MAX_EMBEDDING_COMPONENT).any(axis=1)
    if huge.any():
        row = int(np.argmax(huge))
        raise InputError(
            f"has a component of magnitude {magnitude[row].max():g}; the limit is {MAX_EMBEDDING_COMPONENT:g}"
            " (its square must fit the rollups' float32 sums)",
            row=first_row + row,
            field="embedding",
        )
    tiny = (magnitude < MIN_EMBEDDING_COMPONENT) & (magnitude > 0)
    if tiny.any():
        matrix = np.where(tiny, np.float32(0), matrix)
    return matrix


def interaction_row(raw: Any, row: int) -> dict[str, Any]:
    """One interaction dict, checked and normalised."""
    if not isinstance(raw, Mapping):
        raise InputError(f"must be an object/dict, got {type(raw).__name__}", row=row)
    unknown = sorted(set(raw) - INTERACTION_FIELDS)
    if unknown:
        raise InputError(f"unknown field; allowed: {', '.join(sorted(INTERACTION_FIELDS))}", row=row, field=unknown[0])
    out: dict[str, Any] = {
        "created_at": _timestamp(raw.get("created_at"), row, "created_at"),
        "model": _text(raw.get("model"), row, "model", MAX_NAME_CHARS, required=True),
        "model_version": _text(raw.get("model_version"), row, "model_version", MAX_NAME_CHARS),
        "prompt": _text(raw.get("prompt"), row, "prompt", MAX_TEXT_CHARS),
        "response": _text(raw.get("response"), row, "response", MAX_TEXT_CHARS),
        "is_refusal": _boolean(raw.get("is_refusal"), row, "is_refusal"),
        "toxicity": _number(raw.get("toxicity"), row, "toxicity", 0.0, 1.0),
        "correct": _boolean(raw.get("correct"), row, "correct"),
        "latency_ms": _number(raw.get("latency_ms"), row, "latency_ms", 0.0, None),
        "idempotency_key": _text(raw.get("idempotency_key"), row, "idempotency_key", MAX_NAME_CHARS),
    }
    feedback = raw.get("feedback")
    if feedback is not None and (isinstance(feedback, bool) or feedback not in (-1, 0, 1)):
        raise InputError(f"must be -1, 0 or 1, got {feedback!r}", row=row, field="feedback")
    out["feedback"] = None if feedback is None else int(feedback)
    out["metadata"] = _metadata(raw.get("metadata"), row)
    return out


def _metadata(value: Any, row: int) -> Any:
    if value is None:
        return None
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"must be JSON-serialisable without NaN/inf: {exc}", row=row, field="metadata") from None
    if _has_nul(value):  # json.dumps escapes NUL; jsonb cannot store it (the edge functions say the same)
        raise InputError("contains a NUL character, which PostgreSQL text cannot store", row=row, field="metadata")
    _text(text, row, "metadata", MAX_METADATA_BYTES)
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


def embedding_vector(value: Any, *, row: int, expected_dims: int | None) -> np.ndarray:
    """The embedding of one interaction: one vector of finite float32 values, or InputError naming its row."""
    try:
        with np.errstate(over="ignore"):  # overflow to inf is reported by embedding_matrix
            vector = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"must be a list of numbers: {exc}", row=row, field="embedding") from None
    if vector.ndim != 1 or vector.size == 0:
        raise InputError(f"must be one vector (1-D), got shape {vector.shape}", row=row, field="embedding")
    if (expected_dims is not None and vector.size != expected_dims) or not np.isfinite(vector).all():
        embedding_matrix(value, expected_dims=expected_dims, first_row=row)  # raises, naming the problem
    return vector


def interaction_rows(rows: Iterable[Any]) -> tuple[list[dict[str, Any]], list[tuple[int, np.ndarray]]]:
    """Validated interaction rows, and (row index, embedding) for rows that carry one.

    Embeddings are checked row by row here, before anything is sent, so an error names the
    row it is in; within a batch all embeddings of a model must share the first one's dimension.
    """
    checked: list[dict[str, Any]] = []
    embeddings: list[tuple[int, np.ndarray]] = []
    dims: dict[str, int] = {}
    for index, raw in enumerate(rows):
        row = interaction_row(raw, index)
        checked.append(row)
        if raw.get("embedding") is not None:
            vector = embedding_vector(raw["embedding"], row=index, expected_dims=dims.get(row["model"]))
            dims.setdefault(row["model"], len(vector))
            embeddings.append((index, vector))
    return checked, embeddings


def timestamps(value: Any, count: int) -> Sequence[datetime | None]:
    """created_at for log_embeddings: None (now), one datetime for all, or one per row."""
    if value is None or isinstance(value, (datetime, str)):
        one = _timestamp(value, None, "created_at")
        return [one] * count
    values = list(value)
    if len(values) != count:
        raise InputError(f"has {len(values)} timestamps for {count} embeddings", field="created_at")
    return [_timestamp(v, i, "created_at") for i, v in enumerate(values)]
