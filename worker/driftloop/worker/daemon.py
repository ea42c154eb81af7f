"""The worker process: claim loop, action threads, lease heartbeat, graceful shutdown.

Threads: the main loop claims events whenever a slot is free and something may be due
(a notification, a finished event, the poll interval, or the next retry/lease expiry);
`concurrency` action threads process them; a heartbeat extends the leases of events in
progress; the listener turns NOTIFY into wake-ups.

Shutdown (SIGTERM/SIGINT): stop claiming, give running actions `shutdown_grace_s` to
finish, then cancel them (commands are killed) and release their events back to pending;
exit 0. A second signal exits at once.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import psycopg
from prometheus_client import CollectorRegistry

from driftloop.redaction import install_log_redaction
from driftloop.worker.backoff import Backoff
from driftloop.worker.config import WorkerConfig
from driftloop.worker.event import DriftEvent
from driftloop.worker.listener import Listener
from driftloop.worker.logtext import oneline
from driftloop.worker.metrics import WorkerMetrics
from driftloop.worker.processor import ProcessedEvent, Processor
from driftloop.worker.store import Store

log = logging.getLogger("driftloop.worker")

MIN_WAIT_S = 0.05


def default_worker_id() -> str:
    """host:pid:nonce; the nonce tells apart a restarted process that got the same pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """One worker process's machinery; `run_forever()` is the daemon, `run_once()` the cron job."""

    def __init__(
        self,
        database_url: str,
        config: WorkerConfig,
        *,
        worker_id: str | None = None,
        concurrency: int | None = None,
        registry: CollectorRegistry | None = None,
        models: list[str] | None = None,
    ) -> None:
        self.config = config
        self.models = models
        self.settings = config.worker
        self.concurrency = concurrency or self.settings.concurrency
        self.worker_id = worker_id or default_worker_id()
        self.metrics = WorkerMetrics(registry or CollectorRegistry())
        self.store = Store(
            database_url,
            self.worker_id,
            lease_s=self.settings.lease_s,
            pool_size=self.concurrency + 2,
            retry_for_s=max(30.0, self.settings.lease_s),
        )
        self.stopping = threading.Event()  # stop claiming
        self.cancel = threading.Event()  # running actions must stop now
        self.wakeup = threading.Event()
        self.processor = Processor(self.store, config, self.metrics, self.cancel)
        install_log_redaction(config.redactor)
        self._inflight: dict[int, DriftEvent] = {}
        self._lock = threading.Lock()
        self._signals = 0

    # -- shared pieces ---------------------------------------------------------------

    def _process(self, event: DriftEvent, claimed_at: float) -> ProcessedEvent:
        try:
            return self.processor.process(event, claimed_at)
        finally:
            with self._lock:
                self._inflight.pop(event.id, None)
            self.wakeup.set()  # a slot is free

    def _claim(self, limit: int) -> list[tuple[DriftEvent, float]]:
        events = self.store.claim(limit, self.models)
        now = time.monotonic()
        with self._lock:
            # Our own lease can expire while the database is away and the heartbeat fails; the
            # thread running that event still holds it, so it must not be started twice.
            events = [e for e in events if e.id not in self._inflight]
            for event in events:
                self._inflight[event.id] = event
        return [(e, now) for e in events]

    def _heartbeat(self, stop: threading.Event) -> None:
        """Extend the leases of events in progress, every third of the lease."""
        interval = self.settings.lease_s / 3
        while not stop.wait(interval):
            with self._lock:
                ids = list(self._inflight)
            if not ids:
                continue
            try:
                held = self.store.extend_leases(ids)
            except psycopg.OperationalError as exc:
                log.warning("heartbeat: cannot extend leases: %s", oneline(exc))
                continue
            with self._lock:
                lost = [i for i in ids if i not in held and i in self._inflight]
            for event_id in lost:
                log.warning("event=%d lease lost to another worker; its result will not be recorded", event_id)

    def _start_heartbeat(self) -> threading.Event:
        stop = threading.Event()
        threading.Thread(target=self._heartbeat, args=(stop,), name="driftloop-heartbeat", daemon=True).start()
        return stop

    # -- cron mode -------------------------------------------------------------------

    def run_once(self) -> list[ProcessedEvent]:
        """Claim and process everything due now, then return what was done."""
        results: list[ProcessedEvent] = []
        stop_heartbeat = self._start_heartbeat()
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="driftloop-action") as pool:
                while True:
                    claimed = self._claim(self.concurrency)
                    if not claimed:
                        break
                    results.extend(pool.map(lambda item: self._process(*item), claimed))
        finally:
            stop_heartbeat.set()
            self.store.close()
        return results

    # -- daemon mode -----------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("%s: stopping (grace %gs)", signal.Signals(signum).name, self.settings.shutdown_grace_s)
        self.stopping.set()
        self.wakeup.set()

    def _action_thread(self, work: queue.Queue[tuple[DriftEvent, float] | None]) -> None:
        while (item := work.get()) is not None:
            try:
                self._process(*item)
            except Exception:  # a bug must not cost the worker a slot; the lease expires, the event is retried
                log.exception("event=%d outcome=error", item[0].id)

    def _wait_s(self) -> float:
        """How long to sleep when nothing is claimable: until the next event is due, at most a poll."""
        try:
            due = self.store.next_due_s()
        except psycopg.OperationalError:
            return self.settings.poll_interval_s
        if due is None:
            return self.settings.poll_interval_s
        return min(self.settings.poll_interval_s, max(due, MIN_WAIT_S))

    def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT (call it from the main thread: it installs the signal handlers)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        stop_threads = threading.Event()
        listener = None
        if self.settings.listen:
            listener = Listener(
                self.store.database_url,
                self.worker_id,
                self.wakeup,
                stop_threads,
                self.metrics,
                self.settings.listener_check_s,
            )
            listener.start()
        stop_heartbeat = self._start_heartbeat()
        work: queue.Queue[tuple[DriftEvent, float] | None] = queue.Queue()
        threads = [
            threading.Thread(target=self._action_thread, args=(work,), daemon=True, name=f"driftloop-action-{i}")
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        log.info(
            "worker %s started (concurrency %d, %s)",
            self.worker_id,
            self.concurrency,
            "LISTEN + polling" if listener else "polling only",
        )
        db_backoff = Backoff(base_s=0.2, cap_s=10.0)
        try:
            while not self.stopping.is_set():
                self.wakeup.clear()  # before the claim: a wake-up during it is not lost
                with self._lock:
                    free = self.concurrency - len(self._inflight)
                wait_s = self.settings.poll_interval_s
                if free > 0:
                    try:
                        claimed = self._claim(free)
                        db_backoff.reset()
                    except psycopg.OperationalError as exc:
                        wait_s = db_backoff.next_delay()
                        log.warning("cannot claim events (%s); retrying in %.1fs", oneline(exc), wait_s)
                        claimed = []
                    else:
                        for item in claimed:
                            work.put(item)
                        if len(claimed) < free:  # nothing more due now: sleep until something is
                            wait_s = self._wait_s()
                self.wakeup.wait(wait_s)
        finally:
            self._shutdown(work, threads)
            stop_heartbeat.set()
            stop_threads.set()
            if listener is not None:
                listener.join(timeout=2)
            self.store.close()
        log.info("worker %s stopped", self.worker_id)

    def _shutdown(self, work: queue.Queue[tuple[DriftEvent, float] | None], threads: list[threading.Thread]) -> None:
        deadline = time.monotonic() + self.settings.shutdown_grace_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._inflight:
                    break
            time.sleep(MIN_WAIT_S)
        with self._lock:
            busy = list(self._inflight)
        if busy:
            log.warning("grace period over: cancelling %d running action(s)", len(busy))
            self.cancel.set()
            for thread in threads:
                thread.join(timeout=2.0 / len(threads))
            with self._lock:
                busy = list(self._inflight)
            if busy:
                released = self.store.release(busy)
                log.warning("released events %s back to pending", released)
        for _ in threads:
            work.put(None)
