"""The alerting rules and the example Prometheus configuration pass Prometheus' own checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.support import grafana

PROMETHEUS_DIR = grafana.RULES.parent


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")  # from Debian's prometheus package; `make test` installs it
    assert tool, "promtool is missing: run `make prometheus` (apt-get install prometheus)"
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_promtool_checks_the_rules_and_the_example_config() -> None:
    rules = promtool("check", "rules", "rules.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_has_a_rule_test_and_the_rule_tests_pass() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "rules.test.yml").read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])}
    assert tested == set(grafana.rule_expressions())
    for alert in tested:  # each alert has a case where it fires and one where it stays quiet
        cases = [c for t in tests for c in t["alert_rule_test"] if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in cases) and any(not c["exp_alerts"] for c in cases), alert
    result = promtool("test", "rules", "rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails_the_rule_tests(tmp_path: Path) -> None:
    """The rule tests can fail: the same tests with the drift alert expected too early do."""
    text = (PROMETHEUS_DIR / "rules.test.yml").read_text().replace("eval_time: 7m", "eval_time: 5m", 1)
    (tmp_path / "rules.test.yml").write_text(text)
    shutil.copy(grafana.RULES, tmp_path / "rules.yml")
    result = promtool("test", "rules", "rules.test.yml", cwd=tmp_path)
    assert result.returncode != 0 and "DriftDetected" in result.stdout + result.stderr
