"""The simulation's SQL, kept in queries.sql as named queries (`-- name: NAME` blocks)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    parts = _NAME.split(Path(__file__).with_name("queries.sql").read_text())
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def query(name: str) -> str:
    """The SQL text of a named query (KeyError for an unknown name)."""
    return _load()[name]
