"""Traffic with known drift, for measuring detection: topic-mixture embeddings and rates.

Each embedding case draws topics from a fixed, uneven mix of `TOPICS` topics and places
every embedding near its topic's centre (driftloop.simulate's topic mixture); a drift changes
the mix (traffic moved between topics, a topic never seen before) or moves every embedding
a little (a small global shift). Rates are Bernoulli draws. Used by bench/detection.py and
the detection tests; also handy to check a configuration before trusting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from driftloop.simulate.embeddings import TopicMixture

TOPICS = 20
NEW_TOPIC = TOPICS  # the mixture has one extra centre the baseline never uses
GLOBAL_SHIFT = 0.1  # norm of the common offset of the "small global shift" before renormalising


@dataclass(frozen=True)
class EmbeddingCase:
    name: str
    moved: float = 0.0  # share of traffic moved onto one existing topic
    new_topic: float = 0.0  # share of traffic on the unseen topic
    shift: float = 0.0  # common offset added to every embedding


EMBEDDING_CASES = [
    EmbeddingCase("no drift"),
    EmbeddingCase("10% of traffic moved", moved=0.10),
    EmbeddingCase("40% of traffic moved", moved=0.40),
    EmbeddingCase("new topic at 5%", new_topic=0.05),
    EmbeddingCase("new topic at 10%", new_topic=0.10),
    EmbeddingCase("new topic at 20%", new_topic=0.20),
    EmbeddingCase("small global shift", shift=GLOBAL_SHIFT),
]


class TopicTraffic:
    """Embeddings of one model's users: a seeded topic mixture with an uneven topic mix."""

    def __init__(self, dims: int, seed: int) -> None:
        self.mixture = TopicMixture(TOPICS + 1, dims, seed)
        rng = np.random.default_rng(seed + 7)
        self.weights = rng.dirichlet(np.full(TOPICS, 2.0))
        # Moved traffic goes to the least asked-about topic (say, after a product launch).
        self.moved_to = int(np.argmin(self.weights))
        offset = rng.standard_normal(dims)
        self.offset = (offset / np.linalg.norm(offset)).astype(np.float32)

    def sample(self, n: int, case: EmbeddingCase, rng: np.random.Generator) -> np.ndarray:
        topics = rng.choice(TOPICS, size=n, p=self.weights)
        if case.moved:
            topics[rng.random(n) < case.moved] = self.moved_to
        if case.new_topic:
            topics[rng.random(n) < case.new_topic] = NEW_TOPIC
        out = self.mixture.sample(topics, rng)
        if case.shift:
            out = out + case.shift * self.offset
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)


def spread_times(start: datetime, span: timedelta, n: int, rng: np.random.Generator) -> list[datetime]:
    """n sorted timestamps uniformly spread over [start, start + span)."""
    seconds = np.sort(rng.random(n)) * span.total_seconds()
    return [start + timedelta(seconds=float(s)) for s in seconds]


def interaction_rows(
    model: str,
    times: list[datetime],
    rng: np.random.Generator,
    *,
    refusal: float,
    toxic: float,
    accuracy: float,
) -> list[dict[str, Any]]:
    """Interactions at the given times with these refusal, toxic and correct rates."""
    n = len(times)
    refused = rng.random(n) < refusal
    toxicity = np.where(rng.random(n) < toxic, 0.9, 0.05)
    correct = rng.random(n) < accuracy
    return [
        {
            "model": model,
            "created_at": t,
            "is_refusal": bool(r),
            "toxicity": float(x),
            "correct": bool(c),
        }
        for t, r, x, c in zip(times, refused, toxicity, correct, strict=True)
    ]
