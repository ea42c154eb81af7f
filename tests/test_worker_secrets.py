"""Secrets never reach logs, the database or CLI output; webhook signatures verify.

Two webhooks carry credentials the way real ones do: a token as a path segment, a token as
a query value, a password in the userinfo, an API key header, and an HMAC signing secret.
The receiving server echoes the path, query and headers back (as many real endpoints do in
error pages), so every credential is offered to the worker's error and output texts. A real
`driftloop worker --once` process handles the events; then the test greps its log and CLI
output, `driftloop events list` (text and JSON) and every text column the worker writes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from driftloop.redaction import Redactor, redact_url
from tests.support.helpers import DRIFTLOOP, insert_events, write_config

PATH_TOKEN = "aB3dE5fG7hJ9kL1mN2pQ"
OK_PATH_TOKEN = "Zy9Xw8Vu7Ts6Rq5Po4Nm"
QUERY_TOKEN = "qv-not-a-word-8831"
PASSWORD = "pw-hunter2-secret"
API_KEY = "key-4f1c0ffee-77"
SIGNING_SECRET = "sig-correct-horse-battery"
SECRETS = [PATH_TOKEN, OK_PATH_TOKEN, QUERY_TOKEN, PASSWORD, API_KEY, SIGNING_SECRET]


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Echo)
        self.deliveries: list[dict[str, Any]] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class Echo(BaseHTTPRequestHandler):
    """Checks the signature as a CI receiver would, and echoes what it got (secrets included)."""

    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        timestamp = self.headers["X-Driftloop-Timestamp"]
        signed = f"{timestamp}.".encode() + body
        expected = "sha256=" + hmac.new(SIGNING_SECRET.encode(), signed, hashlib.sha256).hexdigest()
        verified = hmac.compare_digest(expected, self.headers.get("X-Driftloop-Signature", "")) and (
            abs(time.time() - int(timestamp)) < 300  # a replayed old request is refused
        )
        self.server.deliveries.append(
            {
                "path": self.path,
                "verified": verified,
                "event": json.loads(body)["event"]["id"],
                "delivery": self.headers["X-Driftloop-Delivery"],
            }
        )
        echo = f"path={self.path} api-key={self.headers.get('X-Api-Key')} signing-secret={SIGNING_SECRET}"
        status = 401 if not verified else 200 if self.path.startswith("/ok/") else 500
        self.send_response(status)
        self.end_headers()
        self.wfile.write(echo.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_redact_url_masks_credentials_and_keeps_the_route() -> None:
    url = f"https://bot:{PASSWORD}@hooks.example/services/T01/{PATH_TOKEN}?token={QUERY_TOKEN}&v=2#frag"
    assert redact_url(url) == "https://bot:***@hooks.example/services/T01/***?token=***&v=***#***"
    assert redact_url("https://ci.example/hooks/retrain") == "https://ci.example/hooks/retrain"
    masked = Redactor({SIGNING_SECRET}).text(f"POST {url} failed; body said {SIGNING_SECRET}")
    assert not [s for s in SECRETS if s in masked], masked
    assert "hooks.example/services/T01/***" in masked


def test_no_secret_reaches_logs_database_or_cli(
    conn: psycopg.Connection[Any], tmp_path: Path, receiver: Receiver
) -> None:
    failing = f"http://ci:{PASSWORD}@127.0.0.1:{receiver.port}/hooks/{PATH_TOKEN}?token={QUERY_TOKEN}"
    succeeding = f"http://127.0.0.1:{receiver.port}/ok/{OK_PATH_TOKEN}"
    config = write_config(
        tmp_path,
        f"""
[actions.notify_ci]
type = "webhook"
url = "{failing}"
secret_env = "TEST_SIGNING_SECRET"
retries = 1
timeout_s = 5

[actions.notify_ok]
type = "webhook"
url = "{succeeding}"
secret_env = "TEST_SIGNING_SECRET"
headers = {{ X-Api-Key = "{API_KEY}" }}

[[routes]]
model = "fails-*"
actions = ["notify_ci"]

[[routes]]
actions = ["notify_ok"]
""",
    )
    [failing_id] = insert_events(conn, ["fails-bot"])
    [ok_id] = insert_events(conn, ["ok-bot"])
    env = {**os.environ, "DRIFTLOOP_CONFIG": str(config), "TEST_SIGNING_SECRET": SIGNING_SECRET}

    worker = subprocess.run([DRIFTLOOP, "-v", "worker", "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr
    listed = subprocess.run([DRIFTLOOP, "events", "list"], env=env, capture_output=True, text=True, timeout=60)
    as_json = subprocess.run(
        [DRIFTLOOP, "events", "list", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0 and as_json.returncode == 0, listed.stderr + as_json.stderr

    # The signature was checked by the receiver, on every delivery, against the shared secret.
    assert receiver.deliveries and all(d["verified"] for d in receiver.deliveries), receiver.deliveries
    assert {d["event"] for d in receiver.deliveries} == {failing_id, ok_id}
    assert {d["delivery"] for d in receiver.deliveries} == {f"{failing_id}:notify_ci", f"{ok_id}:notify_ok"}

    columns = conn.execute(
        """SELECT coalesce(e.last_error, '') || ' ' || coalesce(e.resolution::text, '') || ' '
                  || coalesce(string_agg(coalesce(r.error, '') || ' ' || coalesce(r.output::text, ''), ' '), '')
           FROM drift.drift_events e LEFT JOIN drift.action_runs r ON r.event_id = e.id
           GROUP BY e.id ORDER BY e.id"""
    ).fetchall()
    texts = {
        "worker stdout": worker.stdout,
        "worker log": worker.stderr,
        "events list": listed.stdout,
        "events list --json": as_json.stdout,
        **{f"database, event {i}": row[0] for i, row in enumerate(columns)},
    }
    leaks = {where: [s for s in SECRETS if s in text] for where, text in texts.items()}
    assert not any(leaks.values()), leaks

    # Masked, not dropped: the error still tells what failed and where.
    last_error = conn.execute("SELECT last_error FROM drift.drift_events WHERE id = %s", (failing_id,)).fetchone()[0]
    assert f"POST http://ci:***@127.0.0.1:{receiver.port}/hooks/***?token=***" in last_error
    assert "HTTP 500" in last_error and "signing-secret=***" in last_error
    assert f"127.0.0.1:{receiver.port}/hooks/***" in listed.stdout
    assert "api-key=***" in texts["database, event 1"]
