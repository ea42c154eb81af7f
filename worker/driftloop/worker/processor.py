"""Processing one claimed event: run its route's actions in order, record every run.

An action that already succeeded for this event (a retry after a later action failed, or
after a crash) is skipped: the idempotency key is (event id, action name). The first
failing action stops the event: it goes back to pending after a backoff, or to failed
when its attempts are used up or the error is permanent.

An event taken over from a worker that died first settles the runs it left running: with
the command's exit recorded, the run ends with that outcome (an action that succeeded is
not run again); without, it is abandoned, and for an `at_most_once` action the event goes
to failed instead of running it a second time.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psycopg

from driftloop.worker.actions import ACTION_TYPES, ActionContext, ActionError
from driftloop.worker.backoff import backoff_delay
from driftloop.worker.config import WorkerConfig
from driftloop.worker.event import DriftEvent
from driftloop.worker.logtext import oneline
from driftloop.worker.metrics import WorkerMetrics
from driftloop.worker.store import LeaseLost, Store

log = logging.getLogger("driftloop.worker")

# Actions whose effect depends on the drifted metric (the prompt gets that metric's guidance):
# they run once per incident and metric; every other type runs once per incident.
PER_METRIC_TYPES = frozenset({"update_system_prompt"})


@dataclass(frozen=True)
class ActionOutcome:
    """One action's run for an event: outcome is succeeded, failed or skipped (done before)."""

    action: str
    type: str
    outcome: str
    summary: str = ""
    error: str | None = None
    run_id: int | None = None
    duration_s: float = 0.0
    output: dict[str, Any] = field(default_factory=dict)
    permanent: bool = False  # a failure that retrying cannot fix


@dataclass(frozen=True)
class ProcessedEvent:
    """What the worker did with one event.

    `status` is the event's new status (resolved, pending = will be retried, failed), or
    `lease_lost` / `released` / `interrupted` when this worker could not finish it.
    """

    event_id: int
    model: str
    kind: str
    metric: str
    attempt: int
    status: str
    actions: list[ActionOutcome] = field(default_factory=list)

    @property
    def action_names(self) -> list[str]:
        return [a.action for a in self.actions]

    @property
    def outcomes(self) -> dict[str, str]:
        return {a.action: a.outcome for a in self.actions}


def _resolution(worker_id: str, outcomes: list[ActionOutcome]) -> dict[str, Any]:
    return {
        "worker": worker_id,
        "actions": [
            {
                "action": o.action,
                "type": o.type,
                "outcome": o.outcome,
                "run_id": o.run_id,
                "summary": o.summary or o.error,
            }
            for o in outcomes
        ],
    }


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ActionError):
        return str(exc)
    # An unexpected exception is a bug in an action or trainer: keep where it happened.
    tail = "".join(traceback.format_exception(exc)[-3:]).strip()
    return f"{type(exc).__name__}: {exc}\n{tail}"


class Processor:
    """Runs events for one worker (shared by its threads)."""

    def __init__(self, store: Store, config: WorkerConfig, metrics: WorkerMetrics, cancel: threading.Event) -> None:
        self.store = store
        self.config = config
        self.metrics = metrics
        self.cancel = cancel
        self.worker_id = store.worker_id
        # Errors and summaries can quote a webhook URL, a response or a command's stderr:
        # mask the configuration's secrets (and the database password) before they are
        # stored, logged or printed.
        self.redactor = config.redactor
        self.redactor.add([urlsplit(store.database_url).password])

    def process(self, event: DriftEvent, claimed_at: float) -> ProcessedEvent:
        """Process a claimed event; `claimed_at` is the time.monotonic() of its claim."""
        outcomes: list[ActionOutcome] = []

        def done(status: str) -> ProcessedEvent:
            self.metrics.events.labels(status).inc()
            level = logging.INFO if status == "resolved" else logging.WARNING
            log.log(
                level,
                "event=%d status=%s actions=%s duration_ms=%.0f model=%s kind=%s metric=%s attempt=%d",
                event.id,
                status,
                ",".join(f"{o.action}:{o.outcome}" for o in outcomes) or "-",
                (time.monotonic() - claimed_at) * 1000,
                event.model,
                event.kind,
                event.metric,
                event.attempts,
            )
            return ProcessedEvent(event.id, event.model, event.kind, event.metric, event.attempts, status, outcomes)

        try:
            if self.cancel.is_set():  # claimed, but the worker is stopping before it began
                self.store.release([event.id])
                return done("released")
            specs = self.config.actions_for(event.model, event.kind, event.metric)
            if event.attempts > 1 and self._take_over(event, [s.name for s in specs if s.at_most_once]):
                return done("failed")
            if event.attempts > event.max_attempts:
                # The previous holder died during the last allowed attempt.
                error = f"gave up after {event.max_attempts} attempts (the last one's worker lost its lease)"
                log.warning("event=%d outcome=failed reason=%r", event.id, error)
                return done(
                    self.store.fail_attempt(
                        event.id, error, delay_s=0, permanent=True, resolution=_resolution(self.worker_id, outcomes)
                    )
                )
            if not specs:
                log.warning(
                    "event=%d model=%s kind=%s metric=%s outcome=resolved reason='no route matches'",
                    event.id,
                    event.model,
                    event.kind,
                    event.metric,
                )
            # Reaction times and action counts are read from drift.action_runs at scrape time.
            for spec in specs:
                outcome = self._run_action(event, spec.name, spec.type, spec.settings)
                outcomes.append(outcome)
                if outcome.outcome == "failed":
                    delay = backoff_delay(
                        event.attempts, self.config.worker.backoff_base_s, self.config.worker.backoff_max_s
                    )
                    status = self.store.fail_attempt(
                        event.id,
                        outcome.error or "failed",
                        delay_s=delay,
                        permanent=outcome.permanent,
                        resolution=_resolution(self.worker_id, outcomes),
                    )
                    return done(status)
                if outcome.outcome == "released":
                    return done("released")
            self.store.resolve(event.id, _resolution(self.worker_id, outcomes))
            return done("resolved")
        except LeaseLost as exc:
            self.metrics.leases_lost.inc()
            log.warning("event=%d outcome=lease_lost reason=%r", event.id, str(exc))
            return done("lease_lost")
        except psycopg.OperationalError as exc:
            # The database stayed away longer than the store retries; the lease will expire
            # and the event will be claimed again.
            log.error("event=%d outcome=interrupted reason='database unavailable: %s'", event.id, oneline(exc))
            return done("interrupted")

    def _take_over(self, event: DriftEvent, at_most_once: list[str]) -> bool:
        """Settle what the previous holder left running; True when that dead-lettered the event."""
        dead = False
        for run in self.store.take_over_runs(event.id, at_most_once):
            dead = dead or run["dead_letter"]
            reason = {
                "abandoned": "its worker died before the outcome was known",
                "succeeded": "its worker died after the command exited 0 (exit recorded): not run again",
                "failed": "its worker died after the command failed (exit recorded)",
            }[run["outcome"]]
            log.warning(
                "event=%d action=%s run=%d outcome=%s previous_worker=%s reason=%r%s",
                event.id,
                run["action"],
                run["run_id"],
                run["outcome"],
                run["worker"],
                reason,
                " at_most_once: event dead-lettered" if run["dead_letter"] else "",
            )
        return dead

    def _record_exit(self, event: DriftEvent, run_id: int) -> Callable[[int, dict[str, Any], str | None], None]:
        """The ActionContext.record_exit of one run: stores a command's exit the moment it exits."""

        def record(exit_code: int, output: dict[str, Any], error: str | None) -> None:
            try:
                self.store.record_exit(
                    event.id,
                    run_id,
                    exit_code,
                    self.redactor.value(output),
                    None if error is None else self.redactor.text(error),
                )
            except psycopg.Error as exc:  # finish_run records the outcome all the same, with retries
                log.warning("event=%d run=%d exit=%d not recorded early: %s", event.id, run_id, exit_code, oneline(exc))

        return record

    def _run_action(self, event: DriftEvent, name: str, type_name: str, settings: Any) -> ActionOutcome:
        """Run one action, recorded in drift.action_runs."""
        previous = self.store.succeeded_run(event.id, name)
        if previous is not None and type_name in PER_METRIC_TYPES and not previous["same_metric"]:
            previous = None  # its guidance was for another metric of the incident
        if previous is not None:
            if previous["event_id"] == event.id:
                summary = "succeeded in an earlier attempt"
            else:
                # Another event of the same incident (same model and kind, overlapping windows)
                # already ran it: one drift, one action.
                summary = (
                    f"already succeeded for incident {previous['incident_id']} "
                    f"(event {previous['event_id']}, run {previous['id']}); not run again"
                )
            log.info("event=%d action=%s outcome=skipped reason=%r", event.id, name, summary)
            return ActionOutcome(
                name,
                type_name,
                "skipped",
                summary=summary,
                run_id=previous["id"],
                output=previous["output"] or {},
            )
        run_id = self.store.start_run(event, name, type_name)
        started = time.monotonic()
        ctx = ActionContext(
            event=event,
            action=name,
            worker_id=self.worker_id,
            database_url=self.store.database_url,
            database=self.store,
            cancel=self.cancel,
            record_exit=self._record_exit(event, run_id),
        )
        try:
            result = ACTION_TYPES[type_name].run(ctx, settings)
        except LeaseLost:
            raise
        except Exception as exc:  # an action failing must not take the worker down
            duration = time.monotonic() - started
            if self.cancel.is_set():
                self.store.release([event.id])
                self._log(event, name, "released", duration, "the worker is shutting down")
                return ActionOutcome(name, type_name, "released", run_id=run_id, duration_s=duration)
            error = self.redactor.text(_error_text(exc))
            self.store.finish_run(event.id, run_id, "failed", None, error)
            self._log(event, name, "failed", duration, error)
            return ActionOutcome(
                name,
                type_name,
                "failed",
                error=error,
                run_id=run_id,
                duration_s=duration,
                permanent=isinstance(exc, ActionError) and exc.permanent,
            )
        duration = time.monotonic() - started
        summary = self.redactor.text(result.summary)
        output = self.redactor.value(result.output)
        self.store.finish_run(event.id, run_id, "succeeded", output, None)
        self._log(event, name, "succeeded", duration, summary)
        return ActionOutcome(
            name,
            type_name,
            "succeeded",
            summary=summary,
            run_id=run_id,
            duration_s=duration,
            output=output,
        )

    def _log(self, event: DriftEvent, action: str, outcome: str, duration: float, detail: str) -> None:
        level = logging.INFO if outcome == "succeeded" else logging.WARNING
        log.log(
            level,
            "event=%d action=%s outcome=%s duration_ms=%.0f model=%s kind=%s metric=%s attempt=%d detail=%r",
            event.id,
            action,
            outcome,
            duration * 1000,
            event.model,
            event.kind,
            event.metric,
            event.attempts,
            oneline(detail, 300),
        )
