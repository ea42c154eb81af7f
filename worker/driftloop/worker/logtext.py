"""Log text: one line per record, so logs stay greppable and parseable."""

from __future__ import annotations


def oneline(value: object, limit: int = 500) -> str:
    """The text of an error or message on one line (libpq errors span several)."""
    return " ".join(str(value).split())[:limit]
