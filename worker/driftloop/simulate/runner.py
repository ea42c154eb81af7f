"""The closed loop: simulated traffic → detection in Postgres → the worker's actions → the
simulated system reacts → the next slice of traffic.

Time is simulated: traffic is logged with `created_at` in the past (the run ends at the
current time), the simulated models have `auto_evaluate = false`, and the loop itself
calls `drift.evaluate_models(as_of, models)` every step, so only the simulated models are
evaluated and only at simulated times. After an evaluation that leaves events of these
models pending, the worker's `run_once` acts on them; before the next slice the simulated
system reads what the actions changed (the active router version, the system prompt).
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

import driftloop
from driftloop.database import connect
from driftloop.errors import DriftloopError
from driftloop.simulate import store
from driftloop.simulate.chat import chat_provider
from driftloop.simulate.embeddings import CachedEmbeddingProvider, embedding_provider
from driftloop.simulate.queries import query
from driftloop.simulate.scenarios import BASELINE_MIX, Scenario, behaviour
from driftloop.simulate.traffic import Router, TrafficGenerator
from driftloop.worker.trainer import LinearClassifier

log = logging.getLogger(__name__)

BASE_PROMPT = "You are the support assistant of a developer platform."
# The worker configuration of simulated models: the seed's routes, the retrain action
# reading the intents the simulation labels, and the simulated assistant's base prompt.
WORKER_CONFIG = f"""
[worker]
listen = false

[actions.retrain]
type = "retrain"
label_field = "label"
min_samples = 40

[actions.update_system_prompt]
type = "update_system_prompt"
base_prompt = "{BASE_PROMPT}"

[[routes]]
kind = "embedding"
actions = ["reindex"]

[[routes]]
kind = "behavior"
actions = ["update_system_prompt"]

[[routes]]
kind = "accuracy"
actions = ["retrain"]
"""

# Questions the first router was trained on before the simulation starts.
INITIAL_TRAINING_SIZE = 1500


class SimulationError(DriftloopError):
    """The simulation cannot run as asked (names taken, other events pending, ...)."""


@dataclass(frozen=True)
class Plan:
    """Simulated time: [starts, baseline_ends) is the baseline, drift starts at drift_at."""

    starts: datetime
    baseline_ends: datetime
    drift_at: datetime
    ends: datetime
    step: timedelta
    rate_per_minute: float
    dims: int

    @classmethod
    def make(
        cls,
        *,
        days: float,
        rate_per_minute: float,
        dims: int = 384,
        step_minutes: float = 5,
        now: datetime | None = None,
    ) -> Plan:
        if days <= 0:
            raise ValueError("days must be positive")
        step = timedelta(minutes=step_minutes)
        total = timedelta(days=days)
        # Half the run is baseline (at most a day); drift starts a while after it, so the
        # drift-free monitored period shows there are no false alarms, and the rest shows
        # detection, action and recovery.
        baseline = min(total / 2, timedelta(days=1))
        lead = min(timedelta(hours=2), total / 8)
        steps = lambda d: math.ceil(d / step)  # noqa: E731 - align every boundary to a step
        ends = _floor(now or datetime.now(UTC), step)
        starts = ends - steps(total) * step
        baseline_ends = starts + steps(baseline) * step
        drift_at = baseline_ends + steps(lead) * step
        if not starts < baseline_ends < drift_at < ends:
            raise ValueError(f"a run of {days} days is too short for a baseline and a drift")
        return cls(starts, baseline_ends, drift_at, ends, step, rate_per_minute, dims)


def _floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return epoch + ((t - epoch) // step) * step


@dataclass
class SimModel:
    """One simulated model: its scenario, traffic generator and what it runs now."""

    name: str
    scenario: Scenario
    traffic: TrafficGenerator
    router: Router | None = None
    router_id: int | None = None
    router_version: str = ""
    prompt: str = BASE_PROMPT
    prompt_fixes: frozenset[str] = field(default_factory=frozenset)


@dataclass
class Options:
    command: str = "simulate"
    scenarios: tuple[Scenario, ...] = ()
    seed: int = 42
    quick: bool = False
    days: float = 0.75
    rate_per_minute: float = 6.0
    dims: int = 384
    step_minutes: float = 5.0
    prefix: str = "sim-"
    reset: bool = False
    act: bool = True
    embeddings: str = "synthetic"
    chat: str = "template"
    # Labels (the true intent) arrive up to this many simulated minutes after the interaction.
    label_delay_minutes: float = 15.0


# progress(phase, done, total): the CLI draws bars from it.
Progress = Callable[[str, int, int], None]


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    pass


def model_names(conn: psycopg.Connection[Any], options: Options, run_id: int) -> dict[str, Scenario]:
    """`{prefix}{scenario}`; when such a name is taken (an earlier run), `-{run_id}` is added."""
    wanted = {f"{options.prefix}{s.name.replace('_', '-')}": s for s in options.scenarios}
    taken = {r[0] for r in conn.execute(query("models_in_use"), {"models": list(wanted)}).fetchall()}
    if not taken:
        return wanted
    return {f"{name}-{run_id}": s for name, s in wanted.items()}


def reset(conn: psycopg.Connection[Any], prefix: str) -> list[str]:
    """Delete every model an earlier simulation created under `prefix`, and nothing else."""
    models = [r[0] for r in conn.execute(query("simulated_models"), {"prefix": prefix}).fetchall()]
    if models:
        with conn.transaction():
            conn.execute(query("delete_simulated_models"), {"models": models})
    return models


def _initial_router(sim: SimModel) -> tuple[LinearClassifier, dict[str, Any]]:
    """The router the team deployed before the run: nearest class centroid over a historical
    labelled sample, written as the linear classifier the retrain action stores
    (argmax of x·c - |c|²/2 is the nearest centroid c)."""
    X, y = sim.traffic.labelled_examples(INITIAL_TRAINING_SIZE, BASELINE_MIX)
    classes = sorted(set(y.astype(str)))
    centroids = np.stack([X[y == c].mean(axis=0) for c in classes]).astype(np.float64)
    router = LinearClassifier(classes, centroids, -0.5 * (centroids**2).sum(axis=1))
    X_check, y_check = sim.traffic.labelled_examples(500, BASELINE_MIX)
    accuracy = float(np.mean(router.predict(X_check) == y_check.astype(str)))
    metrics = {"holdout_accuracy": accuracy, "n_train": len(y), "trainer": "nearest centroid (initial deployment)"}
    return router, metrics


class Simulation:
    def __init__(self, url: str, options: Options, plan: Plan, progress: Progress = _no_progress) -> None:
        self.url = url
        self.options = options
        self.plan = plan
        self.progress = progress
        self.conn = connect(url, autocommit=True)
        self.client = driftloop.connect(url, min_size=1, max_size=2)
        self.models: dict[str, SimModel] = {}
        self.run_id = 0
        self.rows_logged = 0
        self.worker_config: Any = None
        # Late labels not yet arrived: (arrives_at, interaction id, correct, intent).
        self.pending_labels: list[tuple[datetime, int, bool, str]] = []

    def close(self) -> None:
        self.client.close()
        self.conn.close()

    # -- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        o, p = self.options, self.plan
        if o.reset:
            removed = reset(self.conn, o.prefix)
            log.info("reset: deleted the data of %d simulated models", len(removed))
        if o.act:
            from driftloop.worker.config import parse_config

            self.worker_config = parse_config(tomllib.loads(WORKER_CONFIG), None)
        params = {
            "rate_per_minute": o.rate_per_minute,
            "dims": p.dims if o.embeddings == "synthetic" else "the provider's",
            "embeddings": o.embeddings,
            "chat": o.chat,
            "drift_at": p.drift_at.isoformat(),
            "act": o.act,
            "label_delay_minutes": o.label_delay_minutes,
        }
        with self.conn.transaction():
            self.run_id = self.conn.execute(
                query("insert_run"),
                {
                    "command": o.command,
                    "seed": o.seed,
                    "quick": o.quick,
                    "starts": p.starts,
                    "baseline_ends": p.baseline_ends,
                    "ends": p.ends,
                    "step": p.step,
                    "params": Jsonb(params),
                },
            ).fetchone()[0]  # type: ignore[index]
            names = model_names(self.conn, o, self.run_id)
            chat = chat_provider(o.chat)
            # One remote provider for all models, each distinct prompt embedded once; the
            # synthetic one is per model so that their streams are independent.
            remote = CachedEmbeddingProvider(embedding_provider("http")) if o.embeddings == "http" else None
            for index, (name, scen) in enumerate(names.items()):
                embedder = remote or embedding_provider(o.embeddings, dims=p.dims, seed=o.seed, noise_seed=index)
                rng = np.random.default_rng([o.seed, index])
                traffic = TrafficGenerator(
                    embedder, chat, rng, rate_per_minute=o.rate_per_minute, label_delay_minutes=o.label_delay_minutes
                )
                self.models[name] = SimModel(name, scen, traffic)
                self.conn.execute(query("insert_model"), {"model": name, "run_id": self.run_id, "scenario": scen.name})
                self.conn.execute(query("register_model"), {"model": name})
                for inj in scen.injections:
                    self.conn.execute(
                        query("insert_drift"),
                        {
                            "run_id": self.run_id,
                            "model": name,
                            "scenario": scen.name,
                            "kind": inj.kind,
                            "metric": inj.metric,
                            "effect": inj.effect,
                            "starts_at": p.drift_at,
                            "description": inj.description,
                            "magnitude": Jsonb(inj.magnitude),
                            "seed": o.seed,
                        },
                    )
                router, metrics = _initial_router(self.models[name])
                self.conn.execute(
                    query("deploy_router"),
                    {
                        "model": name,
                        "version": "v1",
                        "metrics": Jsonb(metrics),
                        "parameters": Jsonb(router.to_parameters()),
                    },
                )

    # -- the loop --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read what the models run now; a new router version is loaded from the database."""
        rows = self.conn.execute(query("deployed_state"), {"models": list(self.models)}).fetchall()
        for model, router_id, router_version, _prompt_version, prompt, fixes in rows:
            sim = self.models[model]
            if router_id != sim.router_id:
                params = self.conn.execute(query("router_parameters"), {"id": router_id}).fetchone()
                if params is None or not params[0]:
                    raise SimulationError(f"the active version of {model} has no stored parameters to route with")
                sim.router = LinearClassifier.from_parameters(params[0])
                sim.router_id, sim.router_version = router_id, router_version
            sim.prompt = prompt or BASE_PROMPT
            sim.prompt_fixes = frozenset(fixes)

    def write_slice(self, start: datetime, end: datetime) -> int:
        """Generate and log one slice of every model's traffic; returns the rows logged."""
        slices = []
        for sim in self.models.values():
            minutes = (start - self.plan.drift_at).total_seconds() / 60 if start >= self.plan.drift_at else None
            b = behaviour(sim.scenario.injections, minutes, sim.prompt_fixes)
            assert sim.router is not None
            slices.append(
                sim.traffic.generate(
                    sim.name,
                    start,
                    end,
                    b,
                    router=sim.router,
                    router_version=sim.router_version,
                    system_prompt=sim.prompt,
                    metadata={"simulation_run": self.run_id},
                )
            )
        rows = [{**row, "embedding": sl.embeddings[i]} for sl in slices for i, row in enumerate(sl.rows)]
        ids = self.client.log_interactions(rows) if rows else []
        offset = 0
        for sl in slices:
            self.pending_labels += [(lb.arrives_at, ids[offset + lb.row], lb.correct, lb.intent) for lb in sl.labels]
            offset += len(sl.rows)
        return len(rows)

    def deliver_labels(self, until: datetime) -> None:
        """Write the labels that have arrived by `until` (simulated time)."""
        due = [item for item in self.pending_labels if item[0] < until]
        if not due:
            return
        self.pending_labels = [item for item in self.pending_labels if item[0] >= until]
        _, ids, correct, intents = zip(*due, strict=True)
        self.conn.execute(query("apply_labels"), {"ids": list(ids), "correct": list(correct), "intents": list(intents)})

    def write_baseline(self) -> None:
        p = self.plan
        hours = math.ceil((p.baseline_ends - p.starts) / timedelta(hours=1))
        self.refresh()
        for h in range(hours):
            start = p.starts + timedelta(hours=h)
            end = min(start + timedelta(hours=1), p.baseline_ends)
            self.rows_logged += self.write_slice(start, end)
            self.deliver_labels(end)
            self.progress("baseline", h + 1, hours)
        self.conn.execute(query("compact"))
        for name in self.models:
            self.conn.execute(query("set_baseline"), {"model": name, "starts": p.starts, "ends": p.baseline_ends})

    def act(self, as_of: datetime) -> None:
        models = list(self.models)
        (pending,) = self.conn.execute(query("open_events"), {"models": models}).fetchone()  # type: ignore[misc]
        if not pending:
            return
        from driftloop.worker import run_once

        # Only the simulation's own models: other models' events are for the real worker.
        for processed in run_once(self.url, self.worker_config, models=models):
            detail = "; ".join(a.summary or a.error or a.outcome for a in processed.actions)
            store.record_action(self.conn, self.run_id, processed, as_of, detail)

    def run(self) -> int:
        p = self.plan
        self.setup()
        self.write_baseline()
        steps = math.ceil((p.ends - p.baseline_ends) / p.step)
        models = list(self.models)
        for i in range(steps):
            start = p.baseline_ends + i * p.step
            end = start + p.step
            self.refresh()
            self.rows_logged += self.write_slice(start, end)
            self.deliver_labels(end)
            self.conn.execute(query("evaluate"), {"as_of": end, "models": models}).fetchall()
            self.conn.execute(query("record_timeline"), {"run_id": self.run_id, "as_of": end, "models": models})
            if self.options.act:
                self.act(end)
            if i % 12 == 11:
                self.conn.execute(query("compact"))
            self.progress("simulate", i + 1, steps)
        # The action runs' recovery verdicts at the end, against each incident's original baseline.
        from driftloop.history import query as history_query

        self.conn.execute(history_query("record_recovery"), {"ends": p.ends, "models": models})
        self.finish("finished", None)
        return self.run_id

    def finish(self, status: str, error: str | None) -> None:
        self.conn.execute(
            query("finish_run"),
            {"run_id": self.run_id, "status": status, "error": error, "interactions": self.rows_logged},
        )


def run_simulation(url: str, options: Options, plan: Plan, progress: Progress = _no_progress) -> int:
    """Run one simulation; returns its run id (see `store.load_run`)."""
    sim = Simulation(url, options, plan, progress)
    try:
        return sim.run()
    except BaseException as exc:
        if sim.run_id:
            sim.finish("failed", str(exc)[:2000])
        raise
    finally:
        sim.close()
