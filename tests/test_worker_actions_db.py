"""The database actions for real: prompt versions, pgvector reindex, retraining with promotion."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

import driftloop
from driftloop.worker import load_config, run_once
from driftloop.worker.trainer import LinearClassifier, active_classifier
from tests.support.helpers import DRIFTLOOP, insert_events, write_config

# -- update_system_prompt --------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DRIFTLOOP, *args], capture_output=True, text=True, timeout=60)


def test_prompt_versions_and_rollback(conn: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path,
            """
[actions.update_system_prompt]
type = "update_system_prompt"
base_prompt = "You are the support bot of Example Inc."
""",
        )
    )
    insert_events(
        conn, ["support-bot"], kind="behavior", metric="refusal_rate", details={"value": 0.21, "baseline_value": 0.02}
    )
    [done] = run_once(db_url, config)
    assert done.outcomes == {"update_system_prompt": "succeeded"}
    assert done.actions[0].output["version"] == 2

    v2 = conn.execute("SELECT drift.active_prompt('support-bot')").fetchone()[0]  # what apps run
    assert v2.startswith("You are the support bot of Example Inc.\n\nAnswer every request you safely can.")

    insert_events(conn, ["support-bot"], kind="behavior", metric="toxicity_rate")
    run_once(db_url, config)
    v3 = conn.execute("SELECT drift.active_prompt('support-bot')").fetchone()[0]
    assert v3.startswith(v2) and "Stay courteous" in v3
    versions = conn.execute(
        "SELECT version, active, event_id IS NOT NULL FROM drift.prompt_versions ORDER BY version"
    ).fetchall()
    assert versions == [(1, False, False), (2, False, True), (3, True, True)]

    assert "prompt version 2 is active" in cli("prompt", "rollback", "support-bot").stdout
    assert conn.execute("SELECT drift.active_prompt('support-bot')").fetchone()[0] == v2
    shown = cli("prompt", "show", "support-bot").stdout
    assert "--- version 2 (active)" in shown and "Answer every request" in shown
    cli("prompt", "rollback", "support-bot")
    assert conn.execute("SELECT drift.active_prompt('support-bot')").fetchone()[0] == (
        "You are the support bot of Example Inc."
    )
    last = cli("prompt", "rollback", "support-bot")
    assert last.returncode != 0 and "no prompt version before version 1" in last.stderr


def test_a_prompt_update_replayed_for_the_same_event_adds_no_version(conn: psycopg.Connection[Any]) -> None:
    [event_id] = insert_events(conn, ["bot"], kind="behavior", metric="refusal_rate")
    first = conn.execute("SELECT version FROM drift.activate_prompt('bot', 'p1', %s)", (event_id,)).fetchone()
    again = conn.execute("SELECT version FROM drift.activate_prompt('bot', 'p2', %s)", (event_id,)).fetchone()
    assert first == again == (1,)
    assert conn.execute("SELECT drift.active_prompt('bot')").fetchone() == ("p1",)


# -- reindex -------------------------------------------------------------------------------


def embed(texts: list[str]) -> np.ndarray:
    """The "new embedding model" of the reindex test: deterministic 3-d vectors."""
    return np.asarray([[len(t), sum(map(ord, t)) % 97, 1.0] for t in texts], dtype=np.float32)


def index_file(conn: psycopg.Connection[Any]) -> int:
    return int(conn.execute("SELECT relfilenode FROM pg_class WHERE relname = 'docs_embedding_idx'").fetchone()[0])


def test_reindex_reembeds_stale_rows_rebuilds_the_hnsw_index_and_moves_the_baseline(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    conn.execute("""CREATE TABLE public.docs (id bigint PRIMARY KEY, content text NOT NULL,
                                              embedding vector(3), embedding_model text)""")
    conn.execute("""INSERT INTO public.docs SELECT i, 'document number ' || i, ARRAY[i, 0, 1]::vector,
                    CASE WHEN i % 3 = 0 THEN 'new-embedder' ELSE 'old-embedder' END
                    FROM generate_series(1, 250) i""")
    conn.execute("CREATE INDEX docs_embedding_idx ON public.docs USING hnsw (embedding vector_cosine_ops)")
    before = index_file(conn)
    now = datetime.now(UTC).replace(second=0, microsecond=0)  # whole rollup buckets
    window = (now - timedelta(hours=1), now)
    times = [now - timedelta(minutes=90 - 2 * i) for i in range(40)]  # 24 of them in the recent window
    with driftloop.connect(db_url) as dl:
        dl.log_embeddings("search-bot", np.random.default_rng(1).normal(size=(40, 3)), created_at=times)
    # The baseline moves only to a window the rollups back with min_samples rows.
    conn.execute("UPDATE drift.settings SET value = '20' WHERE key = 'min_samples'")

    config = load_config(
        write_config(
            tmp_path,
            """
[actions.refresh]
type = "reindex"
index = "public.docs_embedding_idx"
documents_table = "public.docs"
embedding_model = "new-embedder"
embedder = "test_worker_actions_db:embed"
batch_size = 64

[[routes]]
kind = "embedding"
actions = ["refresh"]
""",
        )
    )
    [event_id] = insert_events(conn, ["search-bot"], window=window)
    [done] = run_once(db_url, config)

    assert done.status == "resolved", done
    assert done.actions[0].output["reembedded"] == 167  # the 250 - 83 stale rows
    rows = conn.execute("SELECT content, embedding, embedding_model FROM public.docs ORDER BY id").fetchall()
    assert {r[2] for r in rows} == {"new-embedder"}
    stale = [r for i, r in enumerate(rows, 1) if i % 3 != 0]
    assert np.allclose(np.asarray([r[1].to_numpy() for r in stale]), embed([r[0] for r in stale]))
    assert index_file(conn) != before  # rebuilt
    assert conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'docs_embedding_idx'::regclass"
    ).fetchone() == (True,)
    baseline = conn.execute(
        "SELECT starts, ends, n, source FROM drift.baselines WHERE model = 'search-bot' AND kind = 'embedding'"
    ).fetchone()
    assert baseline[:3] == (window[0], window[1], sum(window[0] <= t < window[1] for t in times))
    assert f"event {event_id}" in baseline[3]


# -- retrain -------------------------------------------------------------------------------

DIMS = 8
W_OLD = np.eye(DIMS)[0]
W_NEW = np.eye(DIMS)[1]  # after the drift, the label follows another direction


def label(x: np.ndarray, w: np.ndarray) -> str:
    return "billing" if float(x @ w) > 0 else "tech"


def linear(w: np.ndarray) -> LinearClassifier:
    return LinearClassifier(classes=["billing", "tech"], coef=-w[None, :] * 10, intercept=np.zeros(1))


def log_labelled_traffic(db_url: str, window: tuple[datetime, datetime], served_by: np.ndarray) -> None:
    """400 interactions in the window whose true labels follow W_NEW, answered by `served_by`."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, DIMS))
    span = (window[1] - window[0]) / 400
    rows = [
        {
            "model": "router",
            "created_at": window[0] + i * span,
            "prompt": f"ticket {i}",
            "response": label(x, served_by),
            "metadata": {"label": label(x, W_NEW)},
            "correct": label(x, served_by) == label(x, W_NEW),
            "embedding": x.tolist(),
        }
        for i, x in enumerate(X)
    ]
    with driftloop.connect(db_url) as dl:
        dl.log_interactions(rows)


def register_active(conn: psycopg.Connection[Any], w: np.ndarray) -> None:
    conn.execute(
        "INSERT INTO drift.model_versions (model, version, status, parameters) VALUES ('router', 'v1', 'active', %s)",
        (Jsonb(linear(w).to_parameters()),),
    )


def accuracy_baseline(conn: psycopg.Connection[Any]) -> Any:
    return conn.execute(
        "SELECT starts, ends FROM drift.baselines WHERE model = 'router' AND kind = 'accuracy'"
    ).fetchone()


def test_retrain_promotes_a_better_model_and_moves_the_accuracy_baseline(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window = (now - timedelta(hours=1), now)
    log_labelled_traffic(db_url, window, served_by=W_OLD)  # the old model is right about half the time
    register_active(conn, W_OLD)
    [event_id] = insert_events(conn, ["router"], kind="accuracy", window=window)

    [done] = run_once(db_url, load_config(write_config(tmp_path, "")))  # the default route: retrain

    assert done.status == "resolved", done
    output = done.actions[0].output
    assert output["promoted"] is True and output["version"] == "v2"
    assert output["holdout_accuracy"] > 0.9 > 0.7 > output["current_accuracy"]
    assert output["current_measured_by"] == "holdout" and output["n_train"] + output["n_holdout"] == 400
    versions = conn.execute(
        "SELECT version, status, parent_version, event_id FROM drift.model_versions ORDER BY id"
    ).fetchall()
    assert versions == [("v1", "retired", None, None), ("v2", "active", "v1", event_id)]
    assert accuracy_baseline(conn) == window
    # Apps load the promoted model from the database and predict with it.
    X = np.random.default_rng(99).normal(size=(200, DIMS))
    classifier = active_classifier(conn, "router")
    assert classifier is not None
    assert np.mean(classifier.predict(X) == np.asarray([label(x, W_NEW) for x in X])) > 0.9


class Constant:
    """A bad trainer's model: always the same answer."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(["tech"] * len(X))


def constant_trainer(data: Any) -> Constant:
    return Constant()


def test_retrain_keeps_a_worse_candidate_out(conn: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window = (now - timedelta(hours=1), now)
    log_labelled_traffic(db_url, window, served_by=W_NEW)
    register_active(conn, W_NEW)  # the current model is already right
    insert_events(conn, ["router"], kind="accuracy", window=window)
    config = load_config(
        write_config(
            tmp_path,
            """
[actions.retrain]
type = "retrain"
trainer = "test_worker_actions_db:constant_trainer"
""",
        )
    )

    [done] = run_once(db_url, config)

    output = done.actions[0].output
    assert done.status == "resolved" and output["promoted"] is False
    assert output["holdout_accuracy"] < 0.7 < output["current_accuracy"]
    assert conn.execute("SELECT version, status FROM drift.model_versions ORDER BY id").fetchall() == [
        ("v1", "active"),
        ("v2", "candidate"),
    ]
    assert accuracy_baseline(conn) is None  # not moved


def test_retrain_without_enough_labelled_data_fails_the_attempt(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    insert_events(conn, ["router"], kind="accuracy")
    # move_baseline = false: with it, the empty window is refused before any training (see
    # test_worker_hostile_events.py); here the trainer's own data check is under test.
    config = '[worker]\nbackoff_base_s = 60\n\n[actions.retrain]\ntype = "retrain"\nmove_baseline = false\n'
    [done] = run_once(db_url, load_config(write_config(tmp_path, config)))
    assert done.status == "pending"
    assert "only 0 labelled interactions" in done.actions[0].error


TRAINER_SCRIPT = """
import json, os
import numpy as np
from sklearn.linear_model import LogisticRegression

data = np.load(os.environ["DRIFTLOOP_TRAINING_DATA"])
model = LogisticRegression().fit(data["X_train"], data["y_train"])
print(json.dumps({"predictions": model.predict(data["X_holdout"]).tolist()}))
"""


def test_retrain_with_a_trainer_command(conn: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window = (now - timedelta(hours=1), now)
    log_labelled_traffic(db_url, window, served_by=W_OLD)
    register_active(conn, W_OLD)
    insert_events(conn, ["router"], kind="accuracy", window=window)
    script = tmp_path / "train.py"
    script.write_text(TRAINER_SCRIPT)
    config = load_config(
        write_config(
            tmp_path,
            f"""
[actions.retrain]
type = "retrain"
command = ["{sys.executable}", "{script}"]
""",
        )
    )

    [done] = run_once(db_url, config)

    output = done.actions[0].output
    assert done.status == "resolved" and output["promoted"] is True, done
    assert output["holdout_accuracy"] > 0.9 and str(script) in output["trainer"]
    # The command's model lives outside the database: nothing to load, the version is recorded.
    assert conn.execute("SELECT version, status, parameters FROM drift.model_versions ORDER BY id").fetchall() == [
        ("v1", "retired", linear(W_OLD).to_parameters()),
        ("v2", "active", None),
    ]
