"""`retrain`: train on the recent labelled interactions, promote only a better model.

Data: the model's interactions in the event's current window that carry a label
(`metadata ->> label_field`) and a logged embedding. A holdout (`holdout_fraction`, split
with the event id as seed) is kept from training. The candidate is registered in
drift.model_versions as `candidate`; it becomes `active` (the previous active one
`retired`) only when its holdout accuracy beats the current version by more than
`min_improvement`, and then the accuracy baseline moves to the event's window.

The current version is scored on the same holdout when its parameters are stored (the
built-in trainer's versions); otherwise by its live accuracy (the `correct` labels) in
the window. The trainer is a Python entry point (`trainer`, default the built-in
scikit-learn one) or a command (`command`: gets DRIFTLOOP_TRAINING_DATA, an .npz with
X_train, y_train and X_holdout, and prints {"predictions": [...], "parameters": {...}}).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from driftloop.worker import entrypoints
from driftloop.worker.actions.base import ActionContext, ActionError, ActionResult
from driftloop.worker.actions.command import event_environment, run_process
from driftloop.worker.actions.guard import check_baseline_window
from driftloop.worker.queries import query
from driftloop.worker.tables import ConfigError
from driftloop.worker.trainer import LinearClassifier, TrainingSet

BUILT_IN_TRAINER = "driftloop.worker.trainer:train_logistic"


@dataclass(frozen=True)
class Settings:
    trainer: str | None = None
    command: tuple[str, ...] | None = None
    timeout_s: float = 600.0
    label_field: str = "label"
    holdout_fraction: float = 0.25
    min_samples: int = 50
    min_improvement: float = 0.0
    move_baseline: bool = True


def check(settings: Settings, where: str) -> None:
    if settings.trainer and settings.command:
        raise ConfigError(f"{where}: set trainer or command, not both")
    if not settings.command:
        entrypoints.resolve(settings.trainer or BUILT_IN_TRAINER, f"{where}.trainer")
    if not 0 < settings.holdout_fraction < 1:
        raise ConfigError(f"{where}.holdout_fraction must be between 0 and 1")
    if settings.min_samples < 4:
        raise ConfigError(f"{where}.min_samples must be at least 4")


def load_data(ctx: ActionContext, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    event = ctx.event
    with ctx.connection() as conn:
        rows = conn.execute(
            query("training_rows"),
            {
                "model": event.model,
                "starts": event.window_start,
                "ends": event.window_end,
                "label_field": settings.label_field,
            },
        ).fetchall()
    if len(rows) < settings.min_samples:
        raise ActionError(
            f"only {len(rows)} labelled interactions with embeddings for {event.model} in "
            f"the window (min_samples = {settings.min_samples})"
        )
    X = np.asarray([r[0].to_numpy() for r in rows], dtype=np.float64)  # pgvector Vector objects
    y = np.asarray([r[1] for r in rows], dtype=object)
    return X, y


def split(X: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 else None
    return tuple(train_test_split(X, y, test_size=fraction, random_state=seed % 2**32, stratify=stratify))


def train_with_command(
    ctx: ActionContext, settings: Settings, X_train: np.ndarray, y_train: np.ndarray, X_holdout: np.ndarray
) -> tuple[np.ndarray, dict[str, Any] | None]:
    assert settings.command
    with tempfile.TemporaryDirectory(prefix="driftloop-train-") as tmp:
        data = Path(tmp) / "training.npz"
        np.savez(data, X_train=X_train, y_train=y_train.astype(str), X_holdout=X_holdout)
        env = {**event_environment(ctx), "DRIFTLOOP_TRAINING_DATA": str(data)}
        code, out, err = run_process(ctx, list(settings.command), b"", env, settings.timeout_s, None)
    if code != 0:
        raise ActionError(f"trainer {settings.command[0]} exited with {code}; stderr: {err[-4000:]}")
    try:
        result = json.loads(out)
        predictions = np.asarray(result["predictions"], dtype=object).astype(str)
    except (ValueError, KeyError, TypeError) as exc:
        raise ActionError(f"trainer {settings.command[0]} printed no valid result JSON: {exc}") from None
    if predictions.shape != (len(X_holdout),):
        raise ActionError(f"trainer returned {predictions.shape} predictions for {len(X_holdout)} holdout rows")
    return predictions, result.get("parameters")


def train_candidate(
    ctx: ActionContext, settings: Settings, X_train: np.ndarray, y_train: np.ndarray, X_holdout: np.ndarray
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Holdout predictions of the new model and its parameters (if it can be stored)."""
    if settings.command:
        return train_with_command(ctx, settings, X_train, y_train, X_holdout)
    train = entrypoints.resolve(settings.trainer or BUILT_IN_TRAINER, f"[actions.{ctx.action}].trainer")
    model = train(TrainingSet(model=ctx.event.model, X=X_train, y=y_train, seed=ctx.event.id))
    predictions = np.asarray(model.predict(X_holdout), dtype=object).astype(str)
    params = model.to_parameters() if hasattr(model, "to_parameters") else None
    return predictions, params


def current_accuracy(
    ctx: ActionContext, X_holdout: np.ndarray, y_holdout: np.ndarray
) -> tuple[dict[str, Any] | None, float | None, str]:
    """(active version row, its accuracy, how it was measured)."""
    event = ctx.event
    with ctx.connection() as conn:
        row = conn.execute(query("active_version"), {"model": event.model}).fetchone()
        active = None if row is None else {"id": row[0], "version": row[1], "parameters": row[2]}
        if active and active["parameters"] and active["parameters"].get("type") == "linear":
            current = LinearClassifier.from_parameters(active["parameters"])
            return active, float(np.mean(current.predict(X_holdout) == y_holdout)), "holdout"
        live = conn.execute(
            query("window_accuracy"), {"model": event.model, "starts": event.window_start, "ends": event.window_end}
        ).fetchone()
    if live and live[1]:
        return active, float(live[0]), "live accuracy in the window"
    return active, None, "none (no current version to compare)"


def run(ctx: ActionContext, settings: Settings) -> ActionResult:
    event = ctx.event
    if event.window_start is None or event.window_end is None:
        raise ActionError(f"event {event.id} has no window to train on", permanent=True)
    with ctx.connection() as conn:
        done = conn.execute(query("version_for_event"), {"model": event.model, "event_id": event.id}).fetchone()
    if done is not None:  # this event already produced its version: do not train twice
        _, version, status, metrics = done
        return ActionResult(
            summary=f"{event.model} {version} already registered ({status})",
            output={"version": version, "promoted": status == "active", **(metrics or {})},
        )
    if settings.move_baseline:  # a forged or stale event trains nothing and moves nothing
        check_baseline_window(ctx, "accuracy")

    X, y = load_data(ctx, settings)
    y = y.astype(str)
    X_train, X_holdout, y_train, y_holdout = split(X, y, settings.holdout_fraction, event.id)
    predictions, parameters = train_candidate(ctx, settings, X_train, y_train, X_holdout)
    candidate_accuracy = float(np.mean(predictions == y_holdout))
    active, baseline_accuracy, measured = current_accuracy(ctx, X_holdout, y_holdout)
    promote = baseline_accuracy is None or candidate_accuracy > baseline_accuracy + settings.min_improvement
    metrics = {
        "holdout_accuracy": candidate_accuracy,
        "current_accuracy": baseline_accuracy,
        "current_measured_by": measured,
        "n_train": len(y_train),
        "n_holdout": len(y_holdout),
        "trainer": " ".join(settings.command) if settings.command else (settings.trainer or BUILT_IN_TRAINER),
    }
    with ctx.transaction() as conn:
        inserted = conn.execute(
            query("insert_candidate"),
            {
                "model": event.model,
                "metrics": Jsonb(metrics),
                "event_id": event.id,
                "parent_version": active["version"] if active else None,
                "parameters": Jsonb(parameters) if parameters is not None else None,
            },
        ).fetchone()
        assert inserted is not None  # INSERT ... SELECT count(*) always inserts one row
        version_id, version = inserted
        if promote:
            conn.execute(query("retire_active"), {"model": event.model, "id": version_id})
            conn.execute(query("activate_version"), {"id": version_id})
            if settings.move_baseline:
                conn.execute(
                    query("set_baseline"),
                    {
                        "model": event.model,
                        "starts": event.window_start,
                        "ends": event.window_end,
                        "kinds": ["accuracy"],
                        "source": f"retrain {version} (event {event.id})",
                    },
                )
    shown = "n/a" if baseline_accuracy is None else f"{baseline_accuracy:.3f}"
    verdict = "promoted to active" if promote else "kept as candidate (not better)"
    return ActionResult(
        summary=f"{event.model} {version} {verdict}: holdout accuracy {candidate_accuracy:.3f} vs current {shown}",
        output={"version": version, "promoted": promote, **metrics},
    )
