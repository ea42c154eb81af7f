"""driftloop.toml: routing, defaults, and clear errors at load time (not at the first event)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from driftloop.worker.config import ConfigError, load_config
from tests.support.helpers import DRIFTLOOP, write_config

GOOD = """
[worker]
concurrency = 3
lease_s = 12

[actions.notify_ci]
type = "webhook"
url = "http://127.0.0.1:9/hooks"
secret_env = "TEST_WEBHOOK_SECRET"
timeout_s = 2

[actions.log_it]
type = "command"
argv = ["true"]

[[routes]]
kind = "accuracy"
metric = "accuracy"
model = "support-bot*"
actions = ["retrain", "notify_ci"]

[[routes]]
kind = "behavior"
actions = ["log_it", "update_system_prompt"]
"""


def test_routes_first_match_wins_with_globs_and_builtins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "s3cret")
    config = load_config(write_config(tmp_path, GOOD))

    assert config.worker.concurrency == 3 and config.worker.lease_s == 12.0
    names = [a.name for a in config.actions_for("support-bot-eu", "accuracy", "accuracy")]
    assert names == ["retrain", "notify_ci"]
    assert config.actions["notify_ci"].settings.timeout_s == 2.0
    assert [a.type for a in config.actions_for("other", "behavior", "toxicity_rate")] == [
        "command",
        "update_system_prompt",
    ]
    assert config.actions_for("other-bot", "accuracy", "accuracy") == []  # glob does not match
    assert config.actions_for("support-bot", "embedding", "centroid_distance") == []


def test_without_a_file_the_seed_defaults_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRIFTLOOP_CONFIG", raising=False)
    config = load_config()
    assert config.path is None
    route = {
        kind: [a.name for a in config.actions_for("m", kind, metric)]
        for kind, metric in [("embedding", "centroid_distance"), ("behavior", "refusal_rate"), ("accuracy", "accuracy")]
    }
    assert route == {"embedding": ["reindex"], "behavior": ["update_system_prompt"], "accuracy": ["retrain"]}


def test_config_path_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, '[[routes]]\nactions = ["reindex"]\n', name="custom.toml")
    monkeypatch.setenv("DRIFTLOOP_CONFIG", str(path))
    config = load_config()
    assert config.path == path
    assert [a.name for a in config.actions_for("m", "behavior", "refusal_rate")] == ["reindex"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[routes]]\nactions = ["retrian"]\n', "routes[0].actions: unknown action 'retrian'"),
        ('[actions.x]\ntype = "email"\n', "[actions.x].type: unknown action type 'email'"),
        ('[actions.x]\ntype = "command"\nargv = ["true"]\ntimout_s = 3\n', "[actions.x]: unknown key 'timout_s'"),
        ('[actions.x]\ntype = "command"\nargv = ["no-such-program-xyz"]\n', "program 'no-such-program-xyz' not found"),
        ('[actions.x]\ntype = "command"\nargv = "true"\n', "[actions.x].argv must be a list of a string"),
        (
            '[actions.h]\ntype = "webhook"\nurl = "http://x"\nsecret_env = "UNSET_SECRET_VAR"\n',
            "environment variable UNSET_SECRET_VAR is not set",
        ),
        ('[[routes]]\nactions = ["webhook"]\n', "action 'webhook' needs an [actions.webhook] table"),
        ('[[routes]]\nkind = "latency"\nactions = ["reindex"]\n', "routes[0].kind: unknown kind 'latency'"),
        ('[actions.r]\ntype = "retrain"\ntrainer = "no_such_module:train"\n', "cannot import 'no_such_module'"),
        ('[actions.p]\ntype = "update_system_prompt"\ntemplate = "{previous} {mood}"\n', "unknown placeholder {mood}"),
        ('[worker]\nconcurrency = "four"\n', "[worker].concurrency must be an integer"),
        (
            '[actions.x]\ntype = "command"\nargv = ["true"]\nat_most_once = "yes"\n',
            "[actions.x].at_most_once must be true or false, got 'yes'",
        ),
        ("[worker\nconcurrency = 2\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error_naming_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.toml")


def test_worker_refuses_to_start_with_a_bad_config(tmp_path: Path) -> None:
    """The daemon fails at start, before touching the database or any event."""
    path = write_config(tmp_path, '[[routes]]\nkind = "embedding"\nactions = ["reindx"]\n')
    result = subprocess.run(
        [DRIFTLOOP, "worker"],
        env={"DRIFTLOOP_CONFIG": str(path), "PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://invalid.invalid/x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "invalid worker configuration" in result.stderr
    assert f"{path}: routes[0].actions: unknown action 'reindx'" in result.stderr
