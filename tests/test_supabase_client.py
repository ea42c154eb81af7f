"""Python through Supabase: supabase-py's functions client → `driftloop functions serve` → rows
in Postgres → a drift event raised by the log triggers. The served functions are the real
ones, run by the deno binary from PyPI, on the routes Supabase gives them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from supabase import create_client

import driftloop
from driftloop.errors import DriftloopError, InputError
from driftloop.supabase_client import SupabaseClient
from tests.support.helpers import DRIFTLOOP, free_port, kill_group, wait_until

SERVICE_KEY = "e2e-service-role-key"
ANON_KEY = "e2e-anon-key"


@pytest.fixture
def functions_url(db_url: str, tmp_path: Any) -> Iterator[str]:
    """`driftloop functions serve` on a free port, for this test's database."""
    port = free_port()
    log = (tmp_path / "functions.log").open("wb")
    env = {**os.environ, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY, "SUPABASE_ANON_KEY": ANON_KEY}
    env.pop("SUPABASE_DB_URL", None)  # from the driftloop database URL (DATABASE_URL here)
    proc = subprocess.Popen(
        [DRIFTLOOP, "functions", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/functions/v1/none", timeout=1).status_code == 404
        except httpx.HTTPError:
            return proc.poll() is not None  # exited: fail below with its log

    wait_until(up, 60, "driftloop functions serve to answer")
    assert proc.poll() is None, (tmp_path / "functions.log").read_text()
    yield url
    kill_group(proc)
    proc.wait(10)
    log.close()


def rows(model: str, start: datetime, span: timedelta, n: int, refusal_rate: float, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "model": model,
            "created_at": (start + span * i / n).isoformat(),
            "prompt": f"question {seed}-{i}",
            "response": "answer",
            "is_refusal": bool(rng.random() < refusal_rate),
        }
        for i in range(n)
    ]


def test_supabase_py_to_served_functions_to_postgres_to_a_drift_event(
    functions_url: str, conn: psycopg.Connection
) -> None:
    model = "support-bot"
    conn.execute("UPDATE drift.settings SET value = '0' WHERE key IN ('evaluate_interval', 'auto_baseline')")
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    supabase = create_client(functions_url, SERVICE_KEY)

    # A calm baseline, logged with supabase-py exactly as an app would.
    baseline = rows(model, now - timedelta(hours=3), timedelta(hours=1), 300, 0.02, seed=1)
    logged = supabase.functions.invoke("log-interaction", invoke_options={"body": baseline, "responseType": "json"})
    assert len(logged["ids"]) == 300
    conn.execute("SELECT drift.set_baseline(%s, %s, %s)", (model, now - timedelta(hours=3), now - timedelta(hours=2)))
    assert conn.execute("SELECT count(*) FROM drift.drift_events").fetchone() == (0,)

    # The triggers evaluate again; the current hour refuses 40% of the time.
    conn.execute("UPDATE drift.settings SET value = '1 minute' WHERE key = 'evaluate_interval'")
    current = rows(model, now - timedelta(minutes=50), timedelta(minutes=45), 300, 0.40, seed=2)
    answer = supabase.functions.invoke("log-interaction", invoke_options={"body": current, "responseType": "json"})
    ids = answer["ids"]
    assert len(ids) == 300

    stored = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_refusal) FROM drift.interaction_log WHERE id = ANY(%s)", (ids,)
    ).fetchone()
    assert stored is not None and stored[0] == 300 and stored[1] == sum(r["is_refusal"] for r in current)
    events = conn.execute("SELECT kind, metric, status FROM drift.drift_events WHERE model = %s", (model,)).fetchall()
    assert ("behavior", "refusal_rate", "pending") in events

    # drift-status through supabase-py shows the drift too.
    status = supabase.functions.invoke(
        f"drift-status?model={model}", invoke_options={"method": "GET", "responseType": "json"}
    )
    refusal = next(r for r in status if r["metric"] == "refusal_rate")
    assert refusal["drifted"] is True and refusal["n_current"] == 300


def test_driftloop_connect_to_supabase_has_the_direct_clients_api(
    functions_url: str, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    dl = driftloop.connect(supabase_url=functions_url, supabase_key=SERVICE_KEY)
    assert isinstance(dl, SupabaseClient)
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    ids = dl.log_interactions(
        [{"model": "rag", "prompt": f"q{i}", "embedding": vectors[i], "idempotency_key": f"k{i}"} for i in range(3)]
    )
    assert ids == dl.log_interactions(
        [{"model": "rag", "prompt": f"q{i}", "embedding": vectors[i], "idempotency_key": f"k{i}"} for i in range(3)]
    )
    assert dl.log_embeddings("rag", vectors, interaction_ids=ids) == 3
    assert conn.execute("SELECT count(*) FROM drift.embeddings_log WHERE model = 'rag'").fetchone() == (6,)
    assert dl.feedback(ids[0], feedback=1, correct=True) == {"interaction_id": ids[0], "feedback": 1, "correct": True}
    status = dl.status(model="rag")
    assert {r["metric"] for r in status} >= {"centroid_distance", "refusal_rate", "accuracy"}
    assert isinstance(status[0]["window_end"], datetime)

    # Bad rows fail locally with the direct client's InputError, before anything is sent ...
    with pytest.raises(InputError, match=r"row 1, field 'toxicity'"):
        dl.log_interactions([{"model": "rag"}, {"model": "rag", "toxicity": 3}])
    # ... and what only the database knows (the model's dimension) comes back the same way.
    with pytest.raises(
        InputError, match=r"row 1, field 'embedding': has 4 dimensions but this model's embeddings have 8"
    ):
        dl.log_interactions([{"model": "rag"}, {"model": "rag", "embedding": [1.0, 2.0, 3.0, 4.0]}])
    assert conn.execute("SELECT count(*) FROM drift.interaction_log WHERE model = 'rag'").fetchone() == (3,)
    with pytest.raises(DriftloopError, match="not available through Supabase"):
        dl.evaluate()

    # SUPABASE_URL + SUPABASE_KEY, no DATABASE_URL: the same client from the environment.
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("SUPABASE_URL", functions_url)
    monkeypatch.setenv("SUPABASE_KEY", ANON_KEY)
    anon = driftloop.connect()
    assert isinstance(anon, SupabaseClient)
    assert len(anon.log_interactions([{"model": "rag", "prompt": "from the anon key"}])) == 1
    with pytest.raises(DriftloopError, match=r"\(403\)"):
        anon.status()
    bad = driftloop.connect(supabase_url=functions_url, supabase_key="wrong")
    with pytest.raises(DriftloopError, match=r"\(401\)"):
        bad.log_interactions([{"model": "rag"}])


def test_curl_style_requests_work_unchanged(functions_url: str) -> None:
    headers = {"Authorization": f"Bearer {SERVICE_KEY}"}
    created = httpx.post(f"{functions_url}/functions/v1/log-interaction", headers=headers, json={"model": "c"})
    assert created.status_code == 201 and created.json()["ids"] == [created.json()["id"]]
    assert httpx.get(f"{functions_url}/functions/v1/log-interaction", headers=headers).status_code == 405
    assert httpx.post(f"{functions_url}/functions/v1/log-interaction", json={"model": "c"}).status_code == 401
    at = datetime.now(UTC).isoformat()
    assert (
        httpx.post(
            f"{functions_url}/functions/v1/log-interaction",
            headers=headers,
            content=f'{{"model": "c", "created_at": "{at}"',
        ).status_code
        == 400
    )


# Values for each field; every one is sent as one row to both the Python SDK's validation and
# the log-interaction function. Not here: embedding components given as strings or booleans,
# which numpy (so the SDK) converts to numbers and the function refuses as JSON of the wrong type.
PARITY_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 0.5, 2, -0.0, 1e300, 1e39, "", "x", "a" * 201, "a\x00b", "\ud800", "😀",
    "2024-05-01T10:00:00Z", "2024-05-01 10:00:00+02:00", "2024-05-01T10:00:00", "2024-05-01", "yesterday",
    "2024-13-01T00:00:00Z", [], [1.0, 2.0], [[1.0]], [1e19], [1e39], {}, {"k": "v"}, {"k": "a\x00"},
    {"k": [1, {"n": None}]},
]  # fmt: skip
FIELDS = [
    "model", "model_version", "prompt", "response", "is_refusal", "toxicity", "feedback", "correct", "latency_ms",
    "metadata", "idempotency_key", "created_at", "embedding", "unknown_field",
]  # fmt: skip


def test_the_sdk_and_the_function_refuse_the_same_rows(functions_url: str) -> None:
    from driftloop import validation

    headers = {"Authorization": f"Bearer {SERVICE_KEY}", "Content-Type": "application/json"}
    compared, differences = 0, []
    with httpx.Client(base_url=functions_url, headers=headers, timeout=30) as http:
        for f_index, field in enumerate(FIELDS):
            for v_index, value in enumerate(PARITY_VALUES):
                row = {"model": f"parity-{f_index}-{v_index}", field: value}
                try:
                    # What the SDK checks before it writes: the rows, then each model's embeddings.
                    _, embeddings = validation.interaction_rows([row])
                    for _, vector in embeddings:
                        validation.embedding_matrix([vector], expected_dims=None)
                    sdk = None
                except InputError as exc:
                    sdk = exc.field or ""
                answer = http.post("/functions/v1/log-interaction", content=json.dumps(row))
                assert answer.status_code in (201, 400), (row, answer.text)
                edge = None if answer.status_code == 201 else (answer.json().get("field") or "")
                compared += 1
                if sdk != edge:
                    differences.append((field, value, sdk, edge, answer.text[:120]))
    assert differences == [], differences
    assert compared == len(FIELDS) * len(PARITY_VALUES)
