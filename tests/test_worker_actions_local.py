"""The webhook and command actions against a real local HTTP server and real scripts."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from driftloop.worker.actions import ActionContext, ActionError, command, webhook
from driftloop.worker.tables import parse_table
from tests.support.helpers import sample_event, wait_until

SECRET = "correct horse battery staple"


class Receiver(ThreadingHTTPServer):
    """A CI hook receiver: verifies the signature like a real one would, answers per script."""

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.statuses = statuses  # response status per request; the last one repeats
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/retrain"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        timestamp = self.headers["X-Driftloop-Timestamp"]
        expected = "sha256=" + hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        verified = hmac.compare_digest(expected, self.headers.get("X-Driftloop-Signature", ""))
        self.server.requests.append(
            {"body": json.loads(body), "verified": verified, "delivery": self.headers["X-Driftloop-Delivery"]}
        )
        index = min(len(self.server.requests), len(self.server.statuses)) - 1
        status = self.server.statuses[index] if verified else 401
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"ok": true}' if status < 300 else b"nope")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(getattr(request, "param", [200]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def hook(url: str, **extra: Any) -> webhook.Settings:
    return parse_table(
        webhook.Settings, {"url": url, "secret_env": "TEST_HOOK_SECRET", "timeout_s": 5, **extra}, "[actions.notify_ci]"
    )


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)


def context(**event: Any) -> ActionContext:
    return ActionContext(
        event=sample_event(**event), action="notify_ci", worker_id="test:1:abc", database_url="postgresql://example/db"
    )


@pytest.mark.parametrize("receiver", [[503, 502, 200]], indirect=True)
def test_webhook_signs_the_event_and_retries_5xx(receiver: Receiver) -> None:
    result = webhook.run(context(id=7), hook(receiver.url, retries=3))

    assert result.output["status"] == 200 and result.output["tries"] == 3
    assert [r["verified"] for r in receiver.requests] == [True, True, True]
    assert {r["delivery"] for r in receiver.requests} == {"7:notify_ci"}  # same key on every retry
    event = receiver.requests[-1]["body"]["event"]
    assert event["id"] == 7 and event["model"] == "support-bot" and event["metric"] == "refusal_rate"


@pytest.mark.parametrize("receiver", [[422]], indirect=True)
def test_webhook_4xx_fails_permanently_without_retry(receiver: Receiver) -> None:
    with pytest.raises(ActionError) as caught:
        webhook.run(context(), hook(receiver.url, retries=3))
    assert caught.value.permanent
    assert "HTTP 422" in str(caught.value)
    assert len(receiver.requests) == 1


def test_webhook_wrong_secret_is_rejected_by_the_receiver(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_HOOK_SECRET", "not the secret")
    with pytest.raises(ActionError, match="HTTP 401"):
        webhook.run(context(), hook(receiver.url))
    assert receiver.requests[0]["verified"] is False


def test_webhook_network_errors_are_retried_then_fail(receiver: Receiver) -> None:
    url = receiver.url
    receiver.shutdown()
    receiver.server_close()  # nothing listens on the port any more
    with pytest.raises(ActionError) as caught:
        webhook.run(context(), hook(url, retries=1))
    assert not caught.value.permanent
    assert "failed after 2 tries" in str(caught.value) and "ConnectError" in str(caught.value)


SCRIPT = """
import json, os, sys
payload = json.load(sys.stdin)
event = payload["event"]
assert os.environ["DRIFTLOOP_EVENT_ID"] == str(event["id"])
assert os.environ["DRIFTLOOP_DELIVERY"] == f"{event['id']}:{payload['action']}"  # the same on every attempt
with open(sys.argv[1], "a") as out:
    out.write(f"{event['id']} {os.environ['DRIFTLOOP_MODEL']} {os.environ['DRIFTLOOP_METRIC']} "
              f"{os.environ['DRIFTLOOP_ATTEMPT']} {os.environ['EXTRA']}\\n")
print("reindexed", event["model"])
if event["model"] == "broken-bot":
    print("index build failed: disk full", file=sys.stderr)
    sys.exit(3)
"""


def cmd(tmp_path: Path, **extra: Any) -> command.Settings:
    script = tmp_path / "on_drift.py"
    script.write_text(SCRIPT)
    table = {"argv": [sys.executable, str(script), str(tmp_path / "seen.txt")], "env": {"EXTRA": "x1"}, **extra}
    settings = parse_table(command.Settings, table, "[actions.log_it]")
    command.check(settings, "[actions.log_it]")
    return settings


def test_command_gets_the_event_on_stdin_and_in_its_environment(tmp_path: Path) -> None:
    result = command.run(context(id=11, attempts=2), cmd(tmp_path))
    assert result.output["exit_code"] == 0
    assert result.output["stdout"].strip() == "reindexed support-bot"
    assert (tmp_path / "seen.txt").read_text() == "11 support-bot refusal_rate 2 x1\n"


def test_command_nonzero_exit_fails_and_keeps_stderr(tmp_path: Path) -> None:
    with pytest.raises(ActionError) as caught:
        command.run(context(model="broken-bot"), cmd(tmp_path))
    assert "exited with 3" in str(caught.value)
    assert "index build failed: disk full" in str(caught.value)


def test_command_timeout_kills_the_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    settings = parse_table(
        command.Settings,
        {"argv": ["sh", "-c", f"sleep 30 & echo $! > {marker}; wait"], "timeout_s": 0.5},
        "[actions.slow]",
    )
    with pytest.raises(ActionError, match="timed out after 0.5s"):
        command.run(context(), settings)
    child = int(marker.read_text())
    # The backgrounded grandchild went down with the group (no orphan keeps running). SIGKILL
    # is delivered at once, but the process may take a moment to get through its exit.
    wait_until(lambda: process_ended(child), 5, f"process {child} to end")


def process_ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_command_is_cancelled_when_the_worker_must_stop(tmp_path: Path) -> None:
    ctx = context()
    settings = parse_table(command.Settings, {"argv": ["sleep", "30"]}, "[actions.slow]")
    threading.Timer(0.3, ctx.cancel.set).start()
    with pytest.raises(ActionError, match="cancelled"):
        command.run(ctx, settings)
