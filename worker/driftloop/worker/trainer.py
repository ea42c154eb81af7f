"""The built-in trainer: a scikit-learn logistic regression over logged embeddings and labels.

The trained classifier is kept in the database as plain numbers (classes, coefficients,
intercept in drift.model_versions.parameters), so any process loads the active version
with `active_classifier(conn, model)` and predicts without pickles or shared files.

A custom trainer (`trainer = "package.module:function"` in `[actions.retrain]`) has the
same shape as `train_logistic`: it takes a `TrainingSet` and returns an object with
`predict(X) -> labels`, and optionally `to_parameters() -> dict` to be stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from driftloop.worker.queries import query


@dataclass(frozen=True)
class TrainingSet:
    """What a trainer gets: the model name, embeddings X (n, dims), labels y (n,), a seed."""

    model: str
    X: np.ndarray
    y: np.ndarray
    seed: int


@dataclass(frozen=True)
class LinearClassifier:
    """A linear classifier: argmax over X @ coef.T + intercept (one row per class, or one for two)."""

    classes: list[str]
    coef: np.ndarray
    intercept: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores = np.asarray(X, dtype=np.float64) @ self.coef.T + self.intercept
        labels = np.asarray(self.classes, dtype=object)
        if scores.shape[1] == 1:  # binary: one score, positive means classes[1]
            return labels[(scores[:, 0] > 0).astype(int)]
        return labels[np.argmax(scores, axis=1)]

    def to_parameters(self) -> dict[str, Any]:
        return {
            "type": "linear",
            "classes": list(self.classes),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
        }

    @classmethod
    def from_parameters(cls, params: dict[str, Any]) -> LinearClassifier:
        if params.get("type") != "linear":
            raise ValueError(f"not a linear classifier: {params.get('type')!r}")
        return cls(
            classes=[str(c) for c in params["classes"]],
            coef=np.asarray(params["coef"], dtype=np.float64),
            intercept=np.asarray(params["intercept"], dtype=np.float64),
        )


def train_logistic(data: TrainingSet) -> LinearClassifier:
    """Fit a logistic regression (scikit-learn) on the embeddings and labels."""
    from sklearn.linear_model import LogisticRegression

    labels = np.unique(data.y)
    if len(labels) < 2:
        # Nothing to separate: a constant classifier.
        return LinearClassifier(classes=[str(labels[0])], coef=np.zeros((1, data.X.shape[1])), intercept=np.zeros(1))
    clf = LogisticRegression(max_iter=2000, random_state=data.seed)
    clf.fit(data.X, data.y)
    return LinearClassifier(classes=[str(c) for c in clf.classes_], coef=clf.coef_, intercept=clf.intercept_)


def active_classifier(conn: psycopg.Connection[Any], model: str) -> LinearClassifier | None:
    """The active version of `model` as a classifier, or None when it has no stored parameters."""
    row = conn.execute(query("active_version"), {"model": model}).fetchone()
    if row is None or not row[2] or row[2].get("type") != "linear":
        return None
    return LinearClassifier.from_parameters(row[2])
