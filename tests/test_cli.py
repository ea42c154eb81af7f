"""The `driftloop` command line, run as a real process against the test's database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

import driftloop
from driftloop import migrations

DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))
THRESHOLD_VARIABLES = ("EMBEDDING_DRIFT_THRESHOLD", "REFUSAL_RATE_THRESHOLD", "TOXICITY_RATE_THRESHOLD",
                       "ACCURACY_DROP_THRESHOLD")  # fmt: skip


def run(tmp_path: Path, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    """`driftloop ARGS` in an empty directory (no stray .env), DATABASE_URL from the fixture."""
    environment = {k: v for k, v in os.environ.items() if k not in THRESHOLD_VARIABLES}
    environment.update(env)
    done = subprocess.run(
        [DRIFTLOOP, *args], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def setting(conn: psycopg.Connection[Any], key: str) -> str:
    row = conn.execute("SELECT value FROM drift.settings WHERE key = %s", (key,)).fetchone()
    assert row is not None
    return row[0]


def test_db_url_prints_the_database_in_use(db_url: str, tmp_path: Path) -> None:
    printed = run(tmp_path, "db", "url").stdout.strip()
    assert printed == db_url
    with psycopg.connect(printed) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (
            psycopg.conninfo.conninfo_to_dict(db_url)["dbname"],
        )


def test_db_sql_output_applies_to_an_empty_database(empty_db_url: str, tmp_path: Path) -> None:
    script = run(tmp_path, "db", "sql").stdout
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(script)
        assert conn.execute("SELECT count(*) FROM drift.settings WHERE key = 'current_window'").fetchone() == (1,)
    # The script recorded its revision: upgrading afterwards has nothing to do.
    head = migrations.revisions_in_order()[-1]
    assert run(tmp_path, "db", "upgrade").stdout.strip() == f"database at revision {head}"
    report = run(tmp_path, "check").stdout
    assert "No models logged yet." in report and "Drifts detected: 0" in report


def log_refusal_drift(db_url: str, conn: psycopg.Connection[Any]) -> datetime:
    """A baseline three hours ago and refusals at 30% over the last hour; returns now()."""
    conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'evaluate_interval'")
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]

    def rows(start: datetime, count: int, refusals: int) -> list[dict[str, Any]]:
        return [
            {"model": "support-bot", "created_at": start + timedelta(seconds=15 * i), "response": "ok",
             "is_refusal": i % 100 < refusals, "toxicity": 0.0, "correct": True}
            for i in range(count)
        ]  # fmt: skip

    with driftloop.connect(db_url) as client:
        client.log_interactions(rows(now - timedelta(hours=3), 200, 2))
        client.log_interactions(rows(now - timedelta(minutes=55), 200, 30))
        client.set_baseline("support-bot", now - timedelta(hours=3), now - timedelta(hours=2))
    return now


def test_check_prints_the_report_and_raises_an_event_once(
    db_url: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    log_refusal_drift(db_url, conn)

    first = run(tmp_path, "check", check=False).stdout
    event = conn.execute("SELECT id, kind, metric FROM drift.drift_events").fetchall()
    assert [(kind, metric) for _, kind, metric in event] == [("behavior", "refusal_rate")]
    assert "Model: support-bot" in first
    assert "DRIFT DETECTED: support-bot behavior/refusal_rate" in first
    assert "Drifts detected: 1 (support-bot/refusal_rate)" in first
    assert f"Events raised: 1 (#{event[0][0]} support-bot/refusal_rate)" in first
    # The threshold printed is the decision line: at least the seed's 0.05, higher when the
    # window is too small for a rise to 0.05 to be significant.
    line = next(x for x in first.splitlines() if "refusal_rate" in x and "vs threshold" in x)
    assert float(line.split("vs threshold ")[1].split()[0]) >= 0.05 and line.rstrip().endswith("DRIFT")

    # Still drifted; the open event suppresses a second one.
    second = run(tmp_path, "check", check=False).stdout
    assert "Drifts detected: 1 (support-bot/refusal_rate)" in second
    assert "Events raised: 0" in second


def test_check_json(db_url: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    log_refusal_drift(db_url, conn)
    report = json.loads(run(tmp_path, "check", "--json", check=False).stdout)
    assert report["drifts_detected"] == 1
    assert [(e["model"], e["kind"], e["metric"], e["status"]) for e in report["events"]] == [
        ("support-bot", "behavior", "refusal_rate", "pending")
    ]
    drifted = [r for r in report["status"] if r["drifted"]]
    assert [(r["model"], r["metric"]) for r in drifted] == [("support-bot", "refusal_rate")]
    assert drifted[0]["score"] == pytest.approx(0.30, abs=0.01)
    assert 0.05 <= drifted[0]["threshold"] < drifted[0]["score"] and drifted[0]["details"]["seed_threshold"] == 0.05
    assert json.loads(run(tmp_path, "check", "--json", check=False).stdout)["events"] == []


def test_baseline_set(db_url: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    now = log_refusal_drift(db_url, conn)
    # Whole minutes inside the baseline traffic (one row per 15 s from now - 3 h): 120 rows.
    start = (now - timedelta(hours=3) + timedelta(minutes=1)).replace(second=0, microsecond=0, tzinfo=None)
    end = start + timedelta(minutes=30)
    out = run(tmp_path, "baseline", "set", "support-bot", "--from", start.isoformat(), "--to", end.isoformat()).stdout
    header, *lines = out.strip().splitlines()
    assert header.split() == ["MODEL", "KIND", "FROM", "(UTC)", "TO", "(UTC)", "SAMPLES"]
    kinds = sorted(line.split()[:2] for line in lines)
    assert kinds == [["support-bot", k] for k in ("accuracy", "behavior", "embedding")]
    assert "120 samples" in out
    stored = conn.execute(
        "SELECT kind, starts AT TIME ZONE 'UTC', ends AT TIME ZONE 'UTC', n FROM drift.baselines ORDER BY kind"
    ).fetchall()  # naive --from/--to are UTC
    assert stored == [("accuracy", start, end, 120), ("behavior", start, end, 120), ("embedding", start, end, 0)]

    only = run(tmp_path, "baseline", "set", "support-bot", "--from", start.isoformat(), "--to",
               (end + timedelta(minutes=10)).isoformat(), "--kind", "behavior")  # fmt: skip
    assert "behavior" in only.stdout and "accuracy" not in only.stdout
    counts = dict(conn.execute("SELECT kind, n FROM drift.baselines").fetchall())
    assert counts == {"accuracy": 120, "behavior": 160, "embedding": 0}

    unknown = run(tmp_path, "baseline", "set", "nobody", "--from", start.isoformat(), "--to", end.isoformat(),
                  check=False)  # fmt: skip
    assert unknown.returncode != 0 and "unknown model" in unknown.stderr
    backwards = run(tmp_path, "baseline", "set", "support-bot", "--from", end.isoformat(), "--to", start.isoformat(),
                    check=False)  # fmt: skip
    assert backwards.returncode != 0 and "must be after starts" in backwards.stderr
    assert "Traceback" not in backwards.stderr


def test_config_sync_and_db_upgrade_write_thresholds_from_the_environment(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    out = run(tmp_path, "config", "sync", EMBEDDING_DRIFT_THRESHOLD="0.2").stdout
    assert "embedding_drift_threshold" in out
    assert setting(conn, "embedding_drift_threshold") == "0.2"
    assert setting(conn, "refusal_rate_threshold") == "0.05"  # not set: left alone

    run(tmp_path, "db", "upgrade", REFUSAL_RATE_THRESHOLD="0.07", ACCURACY_DROP_THRESHOLD="0.1")
    assert setting(conn, "refusal_rate_threshold") == "0.07"
    assert setting(conn, "accuracy_drop_threshold") == "0.1"
    assert setting(conn, "embedding_drift_threshold") == "0.2"  # a later run without it keeps it

    bad = run(tmp_path, "config", "sync", check=False, TOXICITY_RATE_THRESHOLD="lots")
    assert bad.returncode != 0 and "TOXICITY_RATE_THRESHOLD" in bad.stderr
    assert setting(conn, "toxicity_rate_threshold") == "0.02"
    assert "Traceback" not in bad.stderr  # a clear message, not a crash


def test_downgrade_to_base_and_check_on_a_database_without_the_schema(empty_db_url: str, tmp_path: Path) -> None:
    head = migrations.revisions_in_order()[-1]
    assert run(tmp_path, "db", "upgrade").stdout.strip() == f"database at revision {head}"
    assert run(tmp_path, "db", "downgrade", "base").stdout.strip() == "database at revision base"
    # DATABASE_URL names the user's database: driftloop does not migrate it behind their back.
    refused = run(tmp_path, "check", check=False)
    assert refused.returncode != 0 and "driftloop db upgrade" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_check_continuous_repeats_until_interrupted(db_url: str, tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in THRESHOLD_VARIABLES}
    process = subprocess.Popen(
        [DRIFTLOOP, "check", "--continuous", "0.002", "--no-act"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        reports = 0
        while reports < 2:  # two full reports, each ending with its events line
            line = process.stdout.readline()
            assert line, "driftloop check --continuous stopped on its own"
            reports += line.startswith("Events raised:")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # a failed assertion must not leave it running
            process.kill()
            process.communicate()
    assert process.returncode == 0 and "stopped" in err
