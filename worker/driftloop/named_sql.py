"""Named SQL queries kept in .sql files: blocks that start with a `-- name: NAME` line."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load(path: Path) -> dict[str, str]:
    """All named queries of one file; the text before the first name is its preamble."""
    parts = _NAME.split(path.read_text())
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def beside(module_file: str, filename: str = "queries.sql") -> Callable[[str], str]:
    """The lookup of the named queries in `filename` next to a module: query(name) -> SQL.

    Unknown names raise KeyError.
    """
    path = Path(module_file).with_name(filename)
    return lambda name: load(path)[name]
