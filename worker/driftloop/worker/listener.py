"""Wake-ups: LISTEN on `drift_events` over a dedicated autocommit connection.

Notifications only wake the claim loop up (the claim query decides what to take), so a
lost notification costs at most one poll interval. The connection proves itself alive by
notifying itself at start and every `check_s` seconds; when the ping does not come back
or the connection breaks (backend terminated, server restarted) it reconnects with a
jittered, capped backoff and wakes the loop up, since notifications sent meanwhile are lost.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

import psycopg
from psycopg import sql

from driftloop.worker.backoff import Backoff
from driftloop.worker.logtext import oneline
from driftloop.worker.metrics import WorkerMetrics
from driftloop.worker.queries import query

log = logging.getLogger(__name__)

CHANNEL = "drift_events"
PING_TIMEOUT_S = 5.0


class Listener(threading.Thread):
    def __init__(
        self,
        database_url: str,
        worker_id: str,
        wakeup: threading.Event,
        stop: threading.Event,
        metrics: WorkerMetrics,
        check_s: float = 30.0,
    ) -> None:
        super().__init__(name="driftloop-listener", daemon=True)
        self.database_url = database_url
        self.worker_id = worker_id
        self.wakeup = wakeup
        self.stop = stop
        self.metrics = metrics
        self.check_s = check_s
        self.ping_channel = f"driftloop_ping_{secrets.token_hex(6)}"
        self.connected = threading.Event()

    def run(self) -> None:
        backoff = Backoff(base_s=0.1, cap_s=5.0)
        connections = 0
        while not self.stop.is_set():
            try:
                with psycopg.connect(
                    self.database_url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=f"driftloop-listener {self.worker_id}"[:63],
                ) as conn:
                    for channel in (CHANNEL, self.ping_channel):
                        conn.execute(sql.SQL(query("listen")).format(channel=sql.Identifier(channel)))
                    connections += 1
                    if connections > 1:
                        self.metrics.reconnects.inc()
                        log.info("listener reconnected")
                    backoff.reset()
                    self.connected.set()
                    self.wakeup.set()  # notifications sent while disconnected are lost: look now
                    self._listen(conn)
            except psycopg.Error as exc:
                self.connected.clear()
                if self.stop.is_set():
                    break
                delay = backoff.next_delay()
                log.warning("listener connection lost (%s); reconnecting in %.2fs", oneline(exc), delay)
                self.stop.wait(delay)
        self.connected.clear()

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        token: str | None = None
        sent_at = 0.0
        next_check = time.monotonic()  # ping at once: proves LISTEN works before we rely on it
        while not self.stop.is_set():
            for notify in conn.notifies(timeout=0.5):
                if notify.channel == self.ping_channel:
                    if notify.payload == token:
                        token = None
                else:
                    self.wakeup.set()
            now = time.monotonic()
            if token is not None and now - sent_at > PING_TIMEOUT_S:
                raise psycopg.OperationalError(f"listener ping not answered within {PING_TIMEOUT_S:g}s")
            if token is None and now >= next_check:
                token, sent_at, next_check = secrets.token_hex(8), now, now + self.check_s
                conn.execute(query("ping"), {"channel": self.ping_channel, "token": token})
