"""Named SQL queries kept in .sql files: blocks that start with a `-- name: NAME` line."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load(path: Path) -> dict[str, str]:
    """All named queries of one file; the text before the first name is its preamble."""
    parts = _NAME.split(path.read_text())
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def query(path: Path, name: str) -> str:
    """The SQL of one named query (KeyError for an unknown name)."""
    return load(path)[name]
