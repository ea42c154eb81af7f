"""Plain-text tables for the CLI: a header row, aligned columns, nothing clever.

Plain text (not rich) so the output pipes into grep, awk and files unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


def cell(value: Any, digits: int = 4) -> str:
    """One value as shown in a table: rounded floats, UTC timestamps, '-' for nothing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | Decimal):
        return f"{float(value):.{digits}g}" if abs(float(value)) < 1e-3 and value else f"{float(value):.{digits}f}"
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
    return str(value)


def render(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str) -> str:
    """The table with a header line, or `empty` when there are no rows."""
    body = [[cell(v) for v in row] for row in rows]
    if not body:
        return empty
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def json_lines(rows: Iterable[Mapping[str, Any]]) -> str:
    """One JSON object per row (for jq and log shippers)."""
    return "\n".join(json.dumps(dict(r), default=jsonable) for r in rows)
