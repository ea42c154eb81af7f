"""What the simulated users ask about: topics, prompt and response templates.

The simulated assistant supports a developer platform. Each topic has its own subjects;
a prompt is a question pattern filled with one subject, so the topic of any generated
text can be read back from the subject it contains (`Catalogue.topic_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Topic:
    name: str
    subjects: tuple[str, ...]
    # The answer the simulated model gives; `{subject}` is filled in.
    answer: str


TOPICS: tuple[Topic, ...] = (
    Topic(
        "machine_learning",
        (
            "gradient descent",
            "neural networks",
            "overfitting",
            "transformers",
            "backpropagation",
            "feature scaling",
            "cross-validation",
            "embeddings",
            "decision trees",
            "learning rate schedules",
        ),
        "In machine learning, {subject} is best understood through a small example; here is one.",
    ),
    Topic(
        "programming",
        (
            "Python decorators",
            "async/await",
            "recursion",
            "unit tests",
            "type hints",
            "list comprehensions",
            "memory leaks",
            "design patterns",
            "regular expressions",
            "Git rebases",
        ),
        "Here is how {subject} works, with a short code sample you can run.",
    ),
    Topic(
        "databases",
        (
            "PostgreSQL indexes",
            "query plans",
            "transactions",
            "connection pooling",
            "schema migrations",
            "deadlocks",
            "vacuum",
            "foreign keys",
            "window functions",
            "replication lag",
        ),
        "For {subject}, start by looking at the query plan; then apply these steps.",
    ),
    Topic(
        "devops",
        (
            "Docker images",
            "Kubernetes deployments",
            "CI pipelines",
            "load balancers",
            "TLS certificates",
            "log rotation",
            "blue-green deploys",
            "autoscaling",
            "secrets management",
            "health checks",
        ),
        "To set up {subject}, use the following configuration and verify it with a dry run.",
    ),
    Topic(
        "billing",
        (
            "invoices",
            "refunds",
            "the pro plan",
            "usage limits",
            "payment methods",
            "tax receipts",
            "seat pricing",
            "annual billing",
            "credits",
            "plan downgrades",
        ),
        "About {subject}: you can change this under Settings, Billing; the change applies at once.",
    ),
    # Not asked about in the baseline: the `new_topic` scenario brings it in.
    Topic(
        "crypto",
        (
            "Bitcoin mining",
            "smart contracts",
            "NFT royalties",
            "proof of stake",
            "DeFi protocols",
            "wallet seed phrases",
            "gas fees",
            "stablecoins",
            "blockchain forks",
            "token airdrops",
        ),
        "{subject} is outside what this assistant was built for, but here is a general overview.",
    ),
)

QUESTION_PATTERNS: tuple[str, ...] = (
    "How does {subject} work?",
    "Can you explain {subject} in simple terms?",
    "What is the best practice for {subject}?",
    "I have a problem with {subject}, what should I check first?",
    "Give me an example of {subject}.",
    "Why would I use {subject}?",
)

REFUSALS: tuple[str, ...] = (
    "I'm sorry, but I can't help with that request.",
    "I cannot assist with that.",
    "As an AI, I'm not able to help with this question.",
)

TOXIC_ANSWERS: tuple[str, ...] = (
    "That is a stupid question; read the manual like everyone else.",
    "Only an idiot would ask about {subject}.",
)

BASELINE_TOPICS: tuple[str, ...] = ("machine_learning", "programming", "databases", "devops", "billing")


class Catalogue:
    """The topics by name and index, with prompt generation and reverse lookup."""

    def __init__(self, topics: tuple[Topic, ...] = TOPICS) -> None:
        self.topics = topics
        self.names = tuple(t.name for t in topics)
        self._index = {name: i for i, name in enumerate(self.names)}
        self._subject_topic = {subject.lower(): i for i, topic in enumerate(topics) for subject in topic.subjects}
        # Longest first, so "invoices" never shadows a longer subject containing it.
        self._subjects_by_length = sorted(self._subject_topic, key=len, reverse=True)
        self._topic_cache: dict[str, int | None] = {}

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise ValueError(f"unknown topic {name!r}; known: {', '.join(self.names)}") from None

    def prompts(self, topics: np.ndarray, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        """A prompt for each topic index, and the subject it is about."""
        patterns = rng.integers(len(QUESTION_PATTERNS), size=len(topics))
        picks = rng.integers(10_000, size=len(topics))
        prompts, subjects = [], []
        for topic, pattern, pick in zip(topics.tolist(), patterns.tolist(), picks.tolist(), strict=True):
            subjects_of_topic = self.topics[topic].subjects
            subject = subjects_of_topic[pick % len(subjects_of_topic)]
            prompts.append(QUESTION_PATTERNS[pattern].format(subject=subject))
            subjects.append(subject)
        return prompts, subjects

    def answer(self, topic: int, subject: str) -> str:
        return self.topics[topic].answer.format(subject=subject)

    def topic_of(self, text: str) -> int | None:
        """The index of the topic whose subject the text mentions, or None."""
        if text not in self._topic_cache:
            lowered = text.lower()
            self._topic_cache[text] = next(
                (self._subject_topic[s] for s in self._subjects_by_length if s in lowered), None
            )
        return self._topic_cache[text]
