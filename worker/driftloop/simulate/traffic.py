"""Simulated interactions for one model over one slice of simulated time.

Arrivals are a Poisson process; each interaction gets a topic from the slice's mix, a
prompt from the topic's templates, an embedding from the embedding provider, and an
answer that may be a refusal or toxic. The simulated assistant routes every question to
an intent with its deployed router (a classifier over the embedding); for a share of
traffic the true intent is known (the label) and `correct` says whether the router got
it right. Some users leave feedback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np

from driftloop.simulate.chat import ChatProvider
from driftloop.simulate.embeddings import EmbeddingProvider
from driftloop.simulate.scenarios import NEW_INTENT, RELABELLED_TOPICS, Behaviour
from driftloop.simulate.topics import BASELINE_TOPICS, REFUSALS, TOXIC_ANSWERS, Catalogue

# Share of labels that are wrong or ambiguous: even a perfect router scores about 96%.
LABEL_NOISE = 0.05


class Router(Protocol):
    def predict(self, X: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Label:
    """A label that arrives after its interaction was logged (row: its index in the slice)."""

    row: int
    arrives_at: datetime
    correct: bool
    intent: str


@dataclass
class Slice:
    model: str
    rows: list[dict[str, object]]
    embeddings: np.ndarray
    created_at: list[datetime]
    labels: list[Label]

    def __len__(self) -> int:
        return len(self.rows)


class TrafficGenerator:
    def __init__(
        self,
        embedder: EmbeddingProvider,
        chat: ChatProvider,
        rng: np.random.Generator,
        *,
        rate_per_minute: float,
        catalogue: Catalogue | None = None,
        label_share: float = 0.8,
        feedback_share: float = 0.3,
        label_delay_minutes: float = 0.0,
    ) -> None:
        self.embedder = embedder
        self.chat = chat
        self.rng = rng
        self.rate = rate_per_minute
        self.catalogue = catalogue or Catalogue()
        self.label_share = label_share
        self.feedback_share = feedback_share
        # Labels arrive up to this long after the interaction (0: logged with it).
        self.label_delay = timedelta(minutes=label_delay_minutes)
        self._relabelled = np.array([self.catalogue.index(t) for t in RELABELLED_TOPICS])

    def true_intents(self, topics: np.ndarray, relabelled: float) -> np.ndarray:
        """The intent each question really has: its topic, unless the truth moved or is noisy."""
        rng = self.rng
        intents = np.array(self.catalogue.names, dtype=object)[topics]
        moved = np.isin(topics, self._relabelled) & (rng.random(len(topics)) < relabelled)
        intents[moved] = NEW_INTENT
        noisy = rng.random(len(topics)) < LABEL_NOISE
        intents[noisy] = rng.choice(np.array(BASELINE_TOPICS, dtype=object), size=int(noisy.sum()))
        return intents

    def labelled_examples(self, n: int, mix: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and true intents of `n` questions, e.g. to train a first router."""
        names = list(mix)
        weights = np.array([mix[k] for k in names], dtype=float)
        picked = self.rng.choice(len(names), size=n, p=weights / weights.sum())
        topics = np.array([self.catalogue.index(names[i]) for i in picked], dtype=np.int64)
        prompts, _ = self.catalogue.prompts(topics, self.rng)
        return self.embedder.embed(prompts), self.true_intents(topics, 0.0)

    def generate(
        self,
        model: str,
        start: datetime,
        end: datetime,
        behaviour: Behaviour,
        *,
        router: Router,
        router_version: str,
        system_prompt: str,
        metadata: dict[str, object] | None = None,
    ) -> Slice:
        rng = self.rng
        minutes = (end - start).total_seconds() / 60
        n = int(rng.poisson(self.rate * minutes))
        offsets = np.sort(rng.random(n)) * (end - start).total_seconds()
        created = [start + timedelta(seconds=float(s)) for s in offsets]

        names = list(behaviour.mix)
        weights = np.array([behaviour.mix[k] for k in names], dtype=float)
        picked = rng.choice(len(names), size=n, p=weights / weights.sum())
        topics = np.array([self.catalogue.index(names[i]) for i in picked], dtype=np.int64)
        prompts, subjects = self.catalogue.prompts(topics, rng)
        embeddings = self.embedder.embed(prompts) if n else np.empty((0, 0), dtype=np.float32)

        refused = rng.random(n) < behaviour.refusal
        toxic = ~refused & (rng.random(n) < behaviour.toxic)
        # Toxicity as a scorer would send it: high for toxic answers, near zero otherwise.
        toxicity = np.where(toxic, rng.uniform(0.6, 0.98, n), np.minimum(rng.beta(1, 30, n), 0.45))
        intents = self.true_intents(topics, behaviour.relabelled)
        right = np.asarray(router.predict(embeddings), dtype=object) == intents if n else np.zeros(0, bool)
        labelled = rng.random(n) < self.label_share
        delays = rng.random(n) * self.label_delay.total_seconds()
        late = self.label_delay > timedelta(0)
        labels: list[Label] = []
        gave_feedback = rng.random(n) < self.feedback_share
        latency = np.where(refused, rng.lognormal(5.5, 0.3, n), rng.lognormal(6.5, 0.4, n))
        which = rng.integers(1_000, size=n)

        rows: list[dict[str, object]] = []
        for i in range(n):
            topic, subject = int(topics[i]), subjects[i]
            if refused[i]:
                response = REFUSALS[which[i] % len(REFUSALS)]
            elif toxic[i]:
                response = TOXIC_ANSWERS[which[i] % len(TOXIC_ANSWERS)].format(subject=subject)
            else:
                response = self.chat.complete(system_prompt, prompts[i])
            good = bool(right[i]) and not refused[i] and not toxic[i]
            meta: dict[str, object] = {"topic": self.catalogue.names[topic], **(metadata or {})}
            if labelled[i] and late:
                labels.append(Label(i, created[i] + timedelta(seconds=float(delays[i])), bool(right[i]), intents[i]))
            elif labelled[i]:
                meta["label"] = intents[i]
            rows.append(
                {
                    "created_at": created[i],
                    "model": model,
                    "model_version": router_version,
                    "prompt": prompts[i],
                    "response": response,
                    "is_refusal": bool(refused[i]),
                    "toxicity": round(float(toxicity[i]), 4),
                    "feedback": (1 if good else -1) if gave_feedback[i] else None,
                    "correct": bool(right[i]) if labelled[i] and not late else None,
                    "latency_ms": round(float(latency[i]), 1),
                    "metadata": meta,
                }
            )
        return Slice(model, rows, embeddings, created, labels)
