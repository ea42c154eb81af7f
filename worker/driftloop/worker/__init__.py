"""The worker: turns drift events into corrective actions and closes the loop.

Public API:
- `load_config(path=None) -> WorkerConfig` (driftloop.worker.config): the validated
  driftloop.toml; `ConfigError` names the file and the entry at fault.
- `run_once(database_url, config, *, worker_id=None, concurrency=None) -> list[ProcessedEvent]`:
  claim and process every event due now, then return (what `driftloop worker --once` does).
- `run(database_url, config, *, concurrency=None, registry=None)`: the daemon loop
  (`driftloop worker`), until SIGTERM/SIGINT.
- `ProcessedEvent`: event_id, model, kind, metric, attempt, status (resolved / pending /
  failed / ...), actions (ActionOutcome: action, type, outcome, summary, error, output),
  and the shortcuts `action_names` and `outcomes` ({action: outcome}).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from driftloop.worker.config import ConfigError, WorkerConfig, load_config
from driftloop.worker.daemon import Worker
from driftloop.worker.processor import ActionOutcome, ProcessedEvent


def run_once(
    database_url: str,
    config: WorkerConfig,
    *,
    worker_id: str | None = None,
    concurrency: int | None = None,
    models: list[str] | None = None,
) -> list[ProcessedEvent]:
    """Claim and process everything due now (pending, backoff passed, or lease expired), then return.

    `models` limits the claim to those models' events (None: all). Events whose action fails
    go back to pending with a backoff and are not retried within the same call; look at
    `ProcessedEvent.status`.
    """
    return Worker(database_url, config, worker_id=worker_id, concurrency=concurrency, models=models).run_once()


def run(
    database_url: str,
    config: WorkerConfig,
    *,
    concurrency: int | None = None,
    registry: CollectorRegistry | None = None,
) -> None:
    """Run the daemon in this (main) thread until SIGTERM/SIGINT; metrics go to `registry`."""
    Worker(database_url, config, concurrency=concurrency, registry=registry).run_forever()


__all__ = ["ActionOutcome", "ConfigError", "ProcessedEvent", "Worker", "WorkerConfig", "load_config", "run", "run_once"]
