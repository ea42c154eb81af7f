"""Exponential backoff with jitter, for event retries and for reconnecting."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base_s: float, cap_s: float) -> float:
    """The delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped.

    Half of it is random ("equal jitter") so that workers that failed together do not
    retry together.
    """
    delay = min(cap_s, base_s * 2 ** max(attempt - 1, 0))
    return delay / 2 + random.uniform(0, delay / 2)


class Backoff:
    """Successive delays for a reconnect loop; `reset()` after a success."""

    def __init__(self, base_s: float = 0.1, cap_s: float = 5.0) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        return backoff_delay(self.failures, self.base_s, self.cap_s)

    def reset(self) -> None:
        self.failures = 0
