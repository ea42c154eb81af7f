"""`driftloop report` for any model, and recovery judged against the pre-drift baseline."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from PIL import Image
from test_cli import log_refusal_drift, run

from driftloop.database import connect
from driftloop.simulate.outcomes import outcomes
from driftloop.simulate.runner import Options, Plan, run_simulation
from driftloop.simulate.scenarios import SCENARIOS
from driftloop.simulate.store import load_run


def test_report_on_a_model_of_ones_own(db_url: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    log_refusal_drift(db_url, conn)  # support-bot: a baseline 3 h ago, refusals at 30% now
    assert run(tmp_path, "check", check=False).returncode == 1
    (processed,) = [json.loads(line) for line in run(tmp_path, "worker", "--once", "--json").stdout.splitlines()]
    assert processed["status"] == "resolved"
    assert [(a["action"], a["outcome"]) for a in processed["actions"]] == [("update_system_prompt", "succeeded")]
    out = tmp_path / "out"
    printed = run(tmp_path, "report", "--model", "support-bot", "--out", str(out)).stdout
    assert "report.md" in printed and "report.html" in printed

    with Image.open(out / "support-bot.png") as png:
        png.load()  # decodes the whole image
        assert png.format == "PNG" and png.size[0] >= 800
    text = (out / "report.md").read_text()
    (event_id,) = [r[0] for r in conn.execute("SELECT id FROM drift.drift_events").fetchall()]
    assert f"| #{event_id} | " in text and "behavior / refusal_rate" in text  # the event
    assert "update_system_prompt" in text and "| resolved |" in text  # the action and its outcome
    assert "### Incidents and recovery" in text and "refusal_rate: " in text
    assert "![support-bot](support-bot.png)" in text

    page = (out / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 1 and "support-bot.png" not in page.split("<body>")[1].split("alt=")[0]
    with Image.open(io.BytesIO(base64.b64decode(images[0]))) as embedded:
        embedded.load()
        assert embedded.format == "PNG"
    assert "<table>" in page and f"#{event_id}" in page
    assert "http://" not in page and "https://" not in page  # opens offline

    missing = run(tmp_path, "report", "--model", "nobody", "--out", str(out), check=False)
    assert missing.returncode == 2 and "unknown model: nobody" in missing.stderr


@pytest.mark.timeout(600)
def test_recovery_is_judged_against_the_original_baseline(db_url: str, tmp_path: Path) -> None:
    options = Options(scenarios=(SCENARIOS["accuracy_decay"],), seed=7, days=1 / 3, rate_per_minute=6.0,
                      prefix="test-")  # fmt: skip
    run_id = run_simulation(db_url, options, Plan.make(days=1 / 3, rate_per_minute=6.0))
    with connect(db_url, autocommit=True) as conn:
        record = load_run(conn, run_id)
        runs = conn.execute(
            "SELECT e.incident_id, r.action, r.recovery, i.reference FROM drift.action_runs r "
            "JOIN drift.drift_events e ON e.id = r.event_id JOIN drift.incidents i ON i.id = e.incident_id "
            "WHERE r.outcome = 'succeeded' ORDER BY r.id"
        ).fetchall()
        baseline = conn.execute("SELECT source FROM drift.baselines WHERE kind = 'accuracy'").fetchone()
    (result,) = outcomes(record)
    assert result.detected and runs and baseline is not None
    # One retrain per incident; an incident that continues the previous one (the decay went on
    # after the retrain and its cooldown) keeps the first one's pre-drift reference.
    assert len({incident for incident, *_ in runs}) == len(runs) and {a for _, a, _, _ in runs} == {"retrain"}
    originals = {ref["metrics"]["accuracy"]["baseline_value"] for *_, ref in runs}
    (original,) = originals
    assert original == pytest.approx(result.value_before, abs=0.03)  # the accuracy before the drift
    _, _, recovery, reference = runs[-1]
    (row,) = recovery["metrics"]
    assert row["reference_value"] == original
    limit = original - reference["metrics"]["accuracy"]["threshold"]
    assert row["reference_limit"] == pytest.approx(limit)
    assert row["within_reference"] == (row["value"] >= limit)
    assert recovery["recovered_vs_reference"] == row["within_reference"]
    last = record.incidents[-1]
    assert last.recovered_vs_reference == row["within_reference"]
    if baseline[0] != "manual":  # a retrain promoted a better version and moved the baseline
        assert row["baseline_value"] != pytest.approx(original, abs=1e-9)

    from driftloop.simulate.report import write_report

    text = write_report(record, tmp_path).read_text()
    assert "| back in original band |" in text and f"accuracy: {row['value']:.3f} vs ≥ {limit:.3f}" in text
