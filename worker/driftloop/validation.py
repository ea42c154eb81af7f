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
# toxicity and latency_ms are `real` columns: a larger value would arrive as infinity.
MAX_REAL = float(np.finfo(np.float32).max)
MAX_METADATA_DEPTH = 64  # deeper JSON is a logging bug (or an attack on the parser)

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
    if number > MAX_REAL:
        raise InputError(f"must be at most {MAX_REAL:g} (a 4-byte real), got {number:g}", row=row, field=field)
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
    unknown = sorted(set(raw) - INTERACTION_FIELDS, key=repr)  # keys may be of any type, even mixed
    if unknown:
        name = unknown[0] if isinstance(unknown[0], str) else repr(unknown[0])
        raise InputError(f"unknown field; allowed: {', '.join(sorted(INTERACTION_FIELDS))}", row=row, field=name)
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
        "idempotency_key": _key(raw.get("idempotency_key"), row),
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
    _check_json_strings(value, row, 0)
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"must be JSON-serialisable without NaN/inf: {exc}", row=row, field="metadata") from None
    _text(text, row, "metadata", MAX_METADATA_BYTES)
    return value


def _check_json_strings(value: Any, row: int, depth: int) -> None:
    """NUL in any key or string, and absurd nesting, before json.dumps sees them.

    json.dumps writes NUL as the escape \\u0000, which PostgreSQL's jsonb refuses
    (untranslatable character); a search of the dumped text cannot tell that escape from a
    user's literal backslash, so the walk looks at the values themselves.
    """
    if depth > MAX_METADATA_DEPTH:
        raise InputError(f"is nested deeper than {MAX_METADATA_DEPTH} levels", row=row, field="metadata")
    if isinstance(value, str):
        if "\x00" in value:
            raise InputError("contains a NUL character, which PostgreSQL jsonb cannot store", row=row, field="metadata")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_json_strings(key, row, depth + 1)
            _check_json_strings(item, row, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_json_strings(item, row, depth + 1)


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
    if rows is None or isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
        raise InputError(f"rows must be a list of interaction dicts, got {type(rows).__name__}")
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
    if not isinstance(value, Iterable):
        raise InputError(f"must be a datetime or one per embedding, got {type(value).__name__}", field="created_at")
    values = list(value)
    if len(values) != count:
        raise InputError(f"has {len(values)} timestamps for {count} embeddings", field="created_at")
    return [_timestamp(v, i, "created_at") for i, v in enumerate(values)]


def idempotency_keys(value: Any, count: int) -> list[str | None]:
    """idempotency_keys for log_embeddings: None, or one key (or None) per row."""
    if value is None:
        return [None] * count
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InputError("must be a sequence of keys, one per embedding", field="idempotency_keys")
    keys = list(value)
    if len(keys) != count:
        raise InputError(f"has {len(keys)} keys for {count} embeddings", field="idempotency_keys")
    return [_key(k, i) for i, k in enumerate(keys)]


def _key(value: Any, row: int) -> str | None:
    """An idempotency key: None, or non-empty text of at most 200 characters."""
    key = _text(value, row, "idempotency_key", MAX_NAME_CHARS)
    if key == "":
        raise InputError("must not be empty (omit it, or send null, for no key)", row=row, field="idempotency_key")
    return key


def baseline_window(starts: Any, ends: Any) -> tuple[datetime, datetime]:
    """The [starts, ends) of set_baseline: timezone-aware datetimes (or ISO strings), starts < ends."""
    lo = _timestamp(starts, None, "starts")
    hi = _timestamp(ends, None, "ends")
    if lo is None or hi is None:
        raise InputError("is required", field="starts" if lo is None else "ends")
    if hi <= lo:
        raise InputError(f"must be after starts ({lo.isoformat()}), got {hi.isoformat()}", field="ends")
    return lo, hi


def interaction_ids(value: Any, count: int) -> list[int] | None:
    """interaction_ids for log_embeddings: None, or one integer id per row."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InputError("must be a sequence of ids, one per embedding", field="interaction_ids")
    ids = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or not -(2**63) <= int(item) < 2**63:
            raise InputError(f"must be a 64-bit integer, got {item!r:.40}", row=i, field="interaction_ids")
        ids.append(int(item))
    if len(ids) != count:
        raise InputError(f"has {len(ids)} ids for {count} embeddings", field="interaction_ids")
    return ids


def as_of(value: Any) -> datetime | None:
    """The as_of of evaluate/status: None (now) or a timezone-aware datetime."""
    return _timestamp(value, None, "as_of")
