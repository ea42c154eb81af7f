"""`driftloop demo --quick` as a user runs it: a real process on a fresh database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))


def test_demo_quick_end_to_end(db_url: str, tmp_path: Path) -> None:
    report = tmp_path / "report"
    # db_url put DATABASE_URL in the environment: the process uses the fresh database.
    done = subprocess.run(
        [DRIFTLOOP, "demo", "--quick", "--report-dir", str(report)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]

    # The seed's summary: checks with score and threshold, DRIFT DETECTED reasons, the banner.
    assert "DRIFT-AWARE RETRAINING PIPELINE: CLOSED-LOOP DEMO" in out
    assert "[embedding] centroid_distance   score" in out and "vs threshold " in out
    assert "DRIFT DETECTED: demo-refusal-spike behavior/refusal_rate: refusal rate" in out
    assert "PIPELINE COMPLETED SUCCESSFULLY" in out
    assert "Drifts detected: 10 of 10 injected" in out
    assert "Actions taken: " in out and "reindex x" in out and "update_system_prompt x" in out and "retrain x" in out
    assert "Recovered after the action: 10 of 10" in out
    assert "Back in the original baseline's band: " in out  # judged against the pre-drift baseline
    assert "False alarms: 0" in out

    text = (report / "report.md").read_text()
    assert "| model | scenario | injected drift | kind / metric | detected | delay | action | recovered |" in text
    assert "| value before → at end |" in text
    for model in ("demo-topic-shift", "demo-new-topic", "demo-refusal-spike", "demo-toxicity-spike",
                  "demo-accuracy-decay", "demo-all-at-once", "demo-control"):  # fmt: skip
        image = report / f"{model}.png"
        assert f"![{model}]({model}.png)" in text
        with Image.open(image) as png:
            png.load()  # decodes the whole image
            assert png.format == "PNG"
            width, height = png.size
            assert 800 <= width <= 2000 and 500 <= height <= 2000, png.size
    assert "None: the drift-free control and the pre-drift periods raised no event." in text
    assert "| back in original band |" in text and "## Incidents and recovery" in text
    page = (report / "report.html").read_text()  # the same report, images embedded
    assert page.count('<img src="data:image/png;base64,') == 7 and ".png\"" not in page
