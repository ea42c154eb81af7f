"""Ingestion loses and duplicates nothing: idempotency keys per model, exact retries, clear errors.

Connection loss is real: a TCP proxy (tests/support/proxy.py) in front of the test server
cuts the SDK's connection mid-COPY or right after the server answered COMMIT, or refuses
connections like a server that is down.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

import driftloop
from driftloop.database import connect, with_dbname
from driftloop.errors import DatabaseUnavailable, InputError
from driftloop.retry import RetryPolicy
from tests.support.helpers import count, free_port, wait_until
from tests.support.proxy import fault_proxy

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def database(server_url: str, template_url: str) -> Iterator[str]:
    name = f"dl_test_ingest_{uuid.uuid4().hex[:8]}"
    template = conninfo_to_dict(template_url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield with_dbname(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def db(database: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(database, autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def dl(database: str) -> Iterator[driftloop.Client]:
    with driftloop.connect(database) as client:
        yield client


def rows_of(db: psycopg.Connection[Any], model: str) -> int:
    return count(db, "SELECT count(*) FROM drift.interaction_log WHERE model = %s", (model,))


def interaction(model: str, i: int, **extra: Any) -> dict[str, Any]:
    return {"model": model, "created_at": AT + timedelta(seconds=i), "prompt": f"q{i}", "response": "ok", **extra}


# -- idempotency keys ------------------------------------------------------------------------


def test_the_same_key_in_two_models_is_two_rows(dl: driftloop.Client, db: psycopg.Connection[Any]) -> None:
    a = dl.log_interactions([interaction("tenant-a", 0, idempotency_key="req-1")])
    b = dl.log_interactions([interaction("tenant-b", 0, idempotency_key="req-1")])
    assert a != b
    assert (rows_of(db, "tenant-a"), rows_of(db, "tenant-b")) == (1, 1)


def test_a_replay_returns_the_first_id_and_writes_nothing(dl: driftloop.Client, db: psycopg.Connection[Any]) -> None:
    first = dl.log_interactions([interaction("replay", 0, idempotency_key="k0"), interaction("replay", 1)])
    again = dl.log_interactions([interaction("replay", 0, idempotency_key="k0"), interaction("replay", 2)])
    assert again[0] == first[0] and again[1] not in first
    assert rows_of(db, "replay") == 3
    # Raw SQL replays are covered by the trigger as well: nothing inserted.
    cur = db.execute(
        "INSERT INTO drift.interaction_log (model, created_at, prompt, response, idempotency_key)"
        " VALUES ('replay', %s, 'q0', 'ok', 'k0')",
        (AT + timedelta(hours=1),),  # another clock: a retry's created_at is not its payload
    )
    assert cur.rowcount == 0
    assert rows_of(db, "replay") == 3
    with pytest.raises(psycopg.errors.CheckViolation, match="must not be empty"):
        db.execute("INSERT INTO drift.embeddings_log (model, embedding, idempotency_key) VALUES ('replay', '[1]', '')")


def test_a_key_replayed_with_another_payload_is_an_error(dl: driftloop.Client, db: psycopg.Connection[Any]) -> None:
    dl.log_interactions([interaction("mismatch", 0, idempotency_key="k")])
    with pytest.raises(InputError) as caught:
        replay = interaction("mismatch", 0, idempotency_key="k", prompt="other")
        dl.log_interactions([interaction("mismatch", 1), replay])
    assert (caught.value.row, caught.value.field) == (1, "idempotency_key")
    assert "another payload" in str(caught.value)
    assert rows_of(db, "mismatch") == 1  # the batch's other row was not written either

    with pytest.raises(psycopg.errors.UniqueViolation) as raw:
        db.execute("INSERT INTO drift.interaction_log (model, prompt, idempotency_key) VALUES ('mismatch', 'x', 'k')")
    assert raw.value.diag.constraint_name == "idempotency_keys_pkey"
    assert "another payload" in (raw.value.diag.message_primary or "")


def test_embeddings_take_idempotency_keys(dl: driftloop.Client, db: psycopg.Connection[Any]) -> None:
    vectors = np.eye(3, dtype=np.float32)
    assert dl.log_embeddings("emb-keys", vectors, created_at=AT, idempotency_keys=["e0", "e1", None]) == 3
    # e0 and e1 are replays (skipped, not counted); the unkeyed row is new.
    assert dl.log_embeddings("emb-keys", vectors, created_at=AT, idempotency_keys=["e0", "e1", None]) == 1
    assert count(db, "SELECT count(*) FROM drift.embeddings_log WHERE model = 'emb-keys'") == 4
    with pytest.raises(InputError) as caught:
        dl.log_embeddings("emb-keys", vectors * 2, created_at=AT, idempotency_keys=["n0", "e1", "n2"])
    assert caught.value.field == "idempotency_key" and caught.value.row == 1
    assert count(db, "SELECT count(*) FROM drift.embeddings_log WHERE model = 'emb-keys'") == 4
    # Rollups count the rows written, not the replays.
    db.execute("SELECT drift.compact_rollups()")
    assert count(db, "SELECT sum(n) FROM drift.embedding_rollup WHERE model = 'emb-keys'") == 4


# -- exact retries on connection loss ---------------------------------------------------------


def test_a_batch_cut_mid_copy_is_retried_and_lands_once(database: str, db: psycopg.Connection[Any]) -> None:
    with fault_proxy(database) as proxy, driftloop.connect(proxy.url()) as client:
        proxy.cut_next("copy")
        ids = client.log_interactions([interaction("cut-copy", i) for i in range(50)])
        assert proxy.cuts == ["copy"]
    assert rows_of(db, "cut-copy") == 50
    assert count(db, "SELECT count(*) FROM drift.interaction_log WHERE id = ANY(%s)", (ids,)) == 50


def test_a_lost_commit_answer_is_retried_without_duplicates(database: str, db: psycopg.Connection[Any]) -> None:
    """The server committed, the client never heard: the retry finds the batch key and writes nothing."""
    with fault_proxy(database) as proxy, driftloop.connect(proxy.url(), max_size=1) as client:
        client.status()  # the pooled connection is set up: the next COMMIT is the batch's
        proxy.cut_next("after_commit")
        rows = [interaction("cut-commit", i, embedding=[1.0, float(i), 0.5]) for i in range(20)]
        ids = client.log_interactions(rows)
        assert proxy.cuts == ["after_commit"]
        client.status()  # a new pooled connection replaced the cut one
        proxy.cut_next("after_commit")
        assert client.log_embeddings("cut-commit", np.ones((5, 3)), created_at=AT) == 5
        assert proxy.cuts == ["after_commit", "after_commit"]
    assert rows_of(db, "cut-commit") == 20
    assert count(db, "SELECT count(*) FROM drift.interaction_log WHERE id = ANY(%s)", (ids,)) == 20
    assert count(db, "SELECT count(*) FROM drift.embeddings_log WHERE model = 'cut-commit'") == 25


def test_a_retry_after_a_crash_takes_ids_of_its_own(database: str, db: psycopg.Connection[Any]) -> None:
    """An attempt that took ids and died uncommitted must not lend them to its retry.

    After a crash the id sequence restarts from its last durable value: the ids an attempt
    took before it died uncommitted are handed out again, to whichever batch comes first. A
    retry that wrote the dead attempt's ids logged two rows of two batches under one id
    (the soak's interaction_ids_duplicated). Here the attempt is cut mid-COPY (after it took
    its ids), the proxy then refuses connections as a crashed server would, and while the
    client waits, the sequence is set back to before the attempt (what recovery does when the
    sequence's advance was not yet flushed) and another client logs a batch, which takes
    those ids. Then the server is let back in and the retry commits.
    """
    sequence = "pg_get_serial_sequence('drift.interaction_log', 'id')::regclass"
    before = db.execute(f"SELECT pg_sequence_last_value({sequence})").fetchone()[0]  # type: ignore[index]
    retried = [interaction("crash-retried", i) for i in range(10)]
    other = [interaction("crash-other", i + 100) for i in range(10)]
    result: dict[str, Any] = {}
    with (
        fault_proxy(database) as proxy,
        driftloop.connect(proxy.url(), max_size=1, retry=RetryPolicy(deadline_s=60)) as client,
    ):
        client.status()  # the pooled connection is set up: the next COPY is the batch's
        proxy.cut_next("copy", then_refuse=True)

        def log() -> None:
            try:
                result["ids"] = client.log_interactions(retried)
            except Exception as exc:  # handed to the test thread, which raises it
                result["error"] = exc

        writer = threading.Thread(target=log)
        writer.start()
        wait_until(lambda: proxy.cuts == ["copy"], timeout=30, what="the first attempt to be cut mid-COPY")
        db.execute(f"SELECT setval({sequence}, coalesce(%(v)s, 1), %(v)s IS NOT NULL)", {"v": before})
        with driftloop.connect(database) as rival:
            other_ids = rival.log_interactions(other)
        proxy.refuse(False)
        writer.join(timeout=90)
        assert not writer.is_alive(), "the retry never finished"
    if "error" in result:
        raise result["error"]
    ids = result["ids"]
    shared = sorted(set(ids) & set(other_ids))
    assert not shared, f"ids logged twice, once by each batch: {shared}"
    reused = "SELECT count(*) FROM (SELECT id FROM drift.interaction_log GROUP BY id HAVING count(*) > 1) d"
    assert count(db, reused) == 0
    assert rows_of(db, "crash-retried") == 10 and rows_of(db, "crash-other") == 10
    assert count(db, "SELECT count(*) FROM drift.interaction_log WHERE id = ANY(%s)", (ids + other_ids,)) == 20


def test_pooled_connections_are_checked_after_the_server_dropped_them(database: str) -> None:
    with fault_proxy(database) as proxy, driftloop.connect(proxy.url(), min_size=2, max_size=2) as client:
        client.log_interactions([interaction("dropped", 0)])
        proxy.refuse(True)  # every pooled connection dies, as in a server restart
        proxy.refuse(False)
        assert len(client.log_interactions([interaction("dropped", 1)])) == 1


def test_with_the_database_down_a_call_fails_within_its_budget(db: psycopg.Connection[Any]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # nothing listens there
    policy = RetryPolicy(deadline_s=1.5, connect_timeout_s=2)
    with driftloop.connect(url, retry=policy) as client, pytest.raises(DatabaseUnavailable) as caught:
        client.log_interactions([interaction("down", 0)])
    error = caught.value
    assert error.attempts >= 1 and not error.in_doubt
    message = str(error)
    assert "deadline 1.5 s" in message and "connect_timeout 2 s" in message and "nothing was written" in message
    assert "Connection refused" in message  # why, not only that the pool timed out


# -- settings and patterns ------------------------------------------------------------------


def test_engine_settings_cannot_be_deleted(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="cannot be deleted"):
        db.execute("DELETE FROM drift.settings WHERE key = 'min_samples'")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="cannot be truncated"):
        db.execute("TRUNCATE drift.settings")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="cannot be renamed"):
        db.execute("UPDATE drift.settings SET key = 'bucket_width_old' WHERE key = 'bucket_width'")
    db.execute("INSERT INTO drift.settings (key, value) VALUES ('my_own', 'x')")
    db.execute("DELETE FROM drift.settings WHERE key = 'my_own'")  # a user's own key may go
    assert count(db, "SELECT count(*) FROM drift.settings WHERE key IN ('min_samples', 'bucket_width')") == 2


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("current_window", "infinity"),
        ("current_window", "1000000 years"),
        ("current_window", "91 days"),
        ("cooldown", "infinity"),
        ("auto_baseline", "100 days"),
        ("evaluate_interval", "1 year"),
        ("false_alarm_interval", "infinity"),
        ("bucket_width", "2 days"),
    ],
)
def test_window_lengths_have_bounds(db: psycopg.Connection[Any], key: str, value: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"drift setting {key}"):
        db.execute("UPDATE drift.settings SET value = %s WHERE key = %s", (value, key))


def test_a_bad_refusal_pattern_is_refused_and_ingestion_goes_on(
    dl: driftloop.Client, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(psycopg.errors.InvalidRegularExpression) as caught:
        db.execute("INSERT INTO drift.refusal_patterns (pattern) VALUES ('[z-a]')")
    assert "'[z-a]' is not a valid regular expression" in (caught.value.diag.message_primary or "")
    with pytest.raises(psycopg.errors.InvalidRegularExpression):
        db.execute("UPDATE drift.refusal_patterns SET pattern = '(' WHERE id = 1")
    db.execute("INSERT INTO drift.refusal_patterns (pattern) VALUES ('\\mnope\\M')")
    dl.log_interactions([interaction("patterns", 0, response="Nope, not today.")])
    refused = db.execute("SELECT is_refusal FROM drift.interaction_log WHERE model = 'patterns'").fetchone()
    assert refused == (True,)


# -- clear errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "row", "field"),
    [
        (None, None, None),
        ("not rows", None, None),
        ({"model": "m"}, None, None),  # one dict, not a list of them
        ([{"model": "m", "metadata": {"note": "nul\x00here"}}], 0, "metadata"),
        ([{"model": "m", "metadata": {"k\x00": 1}}], 0, "metadata"),
        ([{"model": "m", "latency_ms": 1e300}], 0, "latency_ms"),
        ([{"model": "m", "idempotency_key": ""}], 0, "idempotency_key"),  # found by the fuzz test
        ([{"model": "m", b"model": "m"}], 0, "b'model'"),  # mixed key types, found by the fuzz test
        ([{"model": "m", "toxicity": 0.5}, {"model": "m", "latency_ms": 3.5e38}], 1, "latency_ms"),
    ],
)
def test_clear_input_errors(dl: driftloop.Client, db: psycopg.Connection[Any], rows: Any, row: Any, field: Any) -> None:
    before = count(db, "SELECT count(*) FROM drift.interaction_log")
    with pytest.raises(InputError) as caught:
        dl.log_interactions(rows)
    assert (caught.value.row, caught.value.field) == (row, field), str(caught.value)
    assert count(db, "SELECT count(*) FROM drift.interaction_log") == before


def test_a_model_name_as_utf8_bytes_is_decoded(dl: driftloop.Client, db: psycopg.Connection[Any]) -> None:
    """Found by the fuzz test: bytes were validated, then sent undecoded (a psycopg text = bytea error)."""
    assert dl.log_embeddings("bytes-é".encode(), [[0.5, 0.5]], created_at=AT) == 1
    assert count(db, "SELECT count(*) FROM drift.embeddings_log WHERE model = 'bytes-é'") == 1


def test_a_literal_backslash_u0000_in_metadata_is_fine(dl: driftloop.Client, db: psycopg.Connection[Any]) -> None:
    [i] = dl.log_interactions([{"model": "m-escape", "metadata": {"path": "C:\\u0000"}}])
    assert db.execute("SELECT metadata->>'path' FROM drift.interaction_log WHERE id = %s", (i,)).fetchone() == (
        "C:\\u0000",
    )


def test_set_baseline_refuses_naive_or_empty_windows(dl: driftloop.Client, db: psycopg.Connection[Any]) -> None:
    dl.log_interactions([interaction("baseline", 0)])
    with pytest.raises(InputError) as caught:
        dl.set_baseline("baseline", datetime(2026, 3, 1), AT)  # naive: which time zone?
    assert caught.value.field == "starts" and "timezone-aware" in str(caught.value)
    with pytest.raises(InputError) as caught:
        dl.set_baseline("baseline", AT, AT)
    assert caught.value.field == "ends"
    with pytest.raises(InputError) as caught:
        dl.set_baseline("never-logged", AT - timedelta(hours=1), AT)
    assert caught.value.field == "model" and "unknown model" in str(caught.value)
    with pytest.raises(InputError):
        dl.set_baseline("baseline", AT - timedelta(hours=1), AT, kinds=["embeddings"])
    # SQL side: infinite bounds are refused, not frozen into a baseline.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="finite"):
        db.execute("SELECT drift.set_baseline('baseline', '-infinity', %s)", (AT,))
    assert len(dl.set_baseline("baseline", AT - timedelta(hours=1), AT + timedelta(hours=1))) == 3


def test_evaluate_with_a_lost_commit_answer_says_so(database: str) -> None:
    """evaluate() is not retried after a lost COMMIT answer: a rerun would find the events open and raise none."""
    with fault_proxy(database) as proxy, driftloop.connect(proxy.url(), max_size=1) as client:
        client.status()  # the pooled connection is set up (its own COMMIT is not the one cut)
        proxy.cut_next("after_commit")
        with pytest.raises(DatabaseUnavailable) as caught:
            client.evaluate(AT)
        assert proxy.cuts == ["after_commit"]
    assert caught.value.in_doubt and "may have been written" in str(caught.value)


def test_upgrading_keeps_old_keys_and_disables_bad_patterns(empty_db_url: str) -> None:
    """0010 moves keys written before it into drift.idempotency_keys (no payload hash) and disables
    patterns that were never valid; a replay of such an old key is still recognised."""
    from driftloop import migrations

    migrations.upgrade(empty_db_url, "0005_layout")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        old = conn.execute(
            "INSERT INTO drift.interaction_log (model, created_at, prompt, response, is_refusal, idempotency_key)"
            " VALUES ('legacy', %s, 'q', 'ok', false, 'old-1') RETURNING id",
            (AT,),
        ).fetchone()
        conn.execute("INSERT INTO drift.refusal_patterns (pattern) VALUES ('[z-a]')")  # accepted back then
    migrations.upgrade(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute(
            "SELECT row_id, payload_hash FROM drift.idempotency_keys WHERE model = 'legacy' AND key = 'old-1'"
        ).fetchone() == (old[0] if old else None, None)
        assert conn.execute("SELECT enabled FROM drift.refusal_patterns WHERE pattern = '[z-a]'").fetchone() == (False,)
    with driftloop.connect(empty_db_url) as client:
        again = client.log_interactions([{**interaction("legacy", 0), "prompt": "q", "idempotency_key": "old-1"}])
        assert again == [old[0] if old else None]
        with pytest.raises(InputError, match="another payload"):
            client.log_interactions([{**interaction("legacy", 0), "prompt": "other", "idempotency_key": "old-1"}])
        # ingestion of responses works again: the bad pattern no longer fails every insert
        assert len(client.log_interactions([interaction("legacy", 1)])) == 1
