"""A claimed drift event as the worker and its actions see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DriftEvent:
    """One row of drift.drift_events, as returned by the claim query."""

    id: int
    created_at: datetime
    model: str
    kind: str
    metric: str
    score: float | None
    threshold: float | None
    p_value: float | None
    window_start: datetime | None
    window_end: datetime | None
    details: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    max_attempts: int = 1
    age_s: float = 0.0  # seconds from the event's creation to its claim (database clock)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DriftEvent:
        return cls(**{**row, "details": row.get("details") or {}})

    def to_json(self) -> dict[str, Any]:
        """The event as sent to webhooks and commands (timestamps in ISO 8601)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "created_at": iso(self.created_at),
            "model": self.model,
            "kind": self.kind,
            "metric": self.metric,
            "score": self.score,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "details": self.details,
            "attempt": self.attempts,
            "max_attempts": self.max_attempts,
        }
