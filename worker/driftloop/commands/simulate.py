"""`driftloop simulate` and `driftloop demo`: simulated traffic with injected drift, closed loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from driftloop.errors import DriftloopError
from driftloop.simulate.outcomes import RunRecord
from driftloop.simulate.runner import Options, Plan, run_simulation
from driftloop.simulate.scenarios import SCENARIOS, scenario

# Full runs: 18 simulated hours at 6 interactions a minute per model; --quick: 8 hours at 5.
# (Most of the time goes to the engine scoring every embedding; these keep `demo` well
# under two minutes on two cores.)
FULL = {"days": 0.75, "rate": 6.0}
QUICK = {"days": 1 / 3, "rate": 5.0}
PHASES = {
    "baseline": "Writing the baseline period",
    "simulate": "Simulating traffic, detection, actions",
    "report": "Drawing the timelines",
}


@contextmanager
def progress_bars() -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bars:
        yield bars


def reporter(bars: Progress) -> Callable[[str, int, int], None]:
    tasks: dict[str, TaskID] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bars.add_task(PHASES.get(phase, phase), total=total)
        bars.update(tasks[phase], completed=done, total=total)

    return progress


def _run(options: Options, plan: Plan, report_dir: Path | None) -> tuple[RunRecord, Path | None, float]:
    from driftloop import migrations
    from driftloop.database import connect, database_url
    from driftloop.simulate import report, store

    url = database_url()
    migrations.upgrade(url)  # a fresh machine has no schema yet; idempotent otherwise
    started = time.monotonic()
    try:
        with progress_bars() as bars:
            progress = reporter(bars)
            run_id = run_simulation(url, options, plan, progress)
            with connect(url) as conn:
                run = store.load_run(conn, run_id)
            path = report.write_report(run, report_dir, progress) if report_dir else None
    except DriftloopError as exc:  # a provider refusing, names taken, others' events pending
        raise click.ClickException(str(exc)) from None
    return run, path, time.monotonic() - started


def _plan(options: Options) -> Plan:
    try:
        return Plan.make(days=options.days, rate_per_minute=options.rate_per_minute, dims=options.dims)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--days") from None


def _header(title: str, options: Options, plan: Plan) -> None:
    rule = "=" * 70
    click.echo(f"\n{rule}\n{title:^70}\n{rule}")
    click.echo(
        f"Scenarios: {', '.join(s.name for s in options.scenarios)} (one model each)\n"
        f"Simulated time: {plan.starts:%Y-%m-%d %H:%M} -> {plan.ends:%Y-%m-%d %H:%M} UTC, baseline until "
        f"{plan.baseline_ends:%H:%M}, drift injected at {plan.drift_at:%H:%M}, evaluated every "
        f"{plan.step.total_seconds() / 60:.0f} min\n"
        f"Traffic: {options.rate_per_minute:g} interactions/min per model, "
        + (f"{plan.dims}-d synthetic embeddings" if options.embeddings == "synthetic" else "embeddings over HTTP")
        + f", seed {options.seed}"
    )


@click.command()
@click.option("--quick", is_flag=True, help="A shorter, smaller run (8 simulated hours instead of 18).")
@click.option(
    "--scenario",
    "scenario_names",
    multiple=True,
    metavar="NAME",
    help=f"Scenario to simulate (repeatable; default all): {', '.join(SCENARIOS)}.",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed: same seed, same traffic.")
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Simulated days (default 0.75, or 1/3 with --quick).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Interactions per simulated minute and model (default 6, or 5 with --quick).",
)
@click.option(
    "--dims",
    type=click.IntRange(8, 4096),
    default=384,
    show_default=True,
    help="Embedding size of the synthetic provider.",
)
@click.option(
    "--embeddings",
    type=click.Choice(["synthetic", "http"]),
    default="synthetic",
    show_default=True,
    help="http: EMBEDDING_MODEL behind EMBEDDING_BASE_URL (OpenRouter by default).",
)
@click.option(
    "--chat",
    type=click.Choice(["template", "http"]),
    default="template",
    show_default=True,
    help="http: CHAT_MODEL writes the answers (slow: one call per distinct question and system prompt).",
)
@click.option(
    "--act/--no-act",
    default=True,
    show_default=True,
    help="Run the worker's actions on the simulated models' drift events.",
)
@click.option("--reset", is_flag=True, help="First delete the data of earlier simulations (sim-* models only).")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write timelines and report.md there.",
)
def simulate(
    quick: bool,
    scenario_names: tuple[str, ...],
    seed: int,
    days: float | None,
    rate: float | None,
    dims: int,
    embeddings: str,
    chat: str,
    act: bool,
    reset: bool,
    report_dir: Path | None,
) -> None:
    """Write simulated interactions and embeddings with injected drift, over simulated time."""
    defaults = QUICK if quick else FULL
    try:
        scenarios = tuple(scenario(n) for n in scenario_names) or tuple(SCENARIOS.values())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from None
    options = Options(
        command="simulate",
        scenarios=scenarios,
        seed=seed,
        quick=quick,
        days=days or defaults["days"],
        rate_per_minute=rate or defaults["rate"],
        dims=dims,
        prefix="sim-",
        reset=reset,
        act=act,
        embeddings=embeddings,
        chat=chat,
    )
    plan = _plan(options)
    _header("DRIFTLOOP SIMULATION", options, plan)
    run, path, elapsed = _run(options, plan, report_dir)
    from driftloop.simulate import summary

    click.echo("\n".join(summary.closing_lines(run, str(path) if path else None)))
    click.echo(f"Simulation run {run.run_id} finished in {elapsed:.1f} s")


@click.command()
@click.option("--quick", is_flag=True, help="A shorter, smaller run (8 simulated hours) for a first look.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("driftloop-report"),
    show_default=True,
    help="Where the timelines and report.md go.",
)
@click.option(
    "--reset",
    is_flag=True,
    help="First delete the data of earlier demo runs (demo-* models only; nothing else is touched).",
)
def demo(quick: bool, seed: int, report_dir: Path, reset: bool) -> None:
    """The whole loop: drift appears, Postgres detects it, the worker acts, the system recovers."""
    defaults = QUICK if quick else FULL
    options = Options(
        command="demo",
        scenarios=tuple(SCENARIOS.values()),
        seed=seed,
        quick=quick,
        days=defaults["days"],
        rate_per_minute=defaults["rate"],
        prefix="demo-",
        reset=reset,
    )
    plan = _plan(options)
    _header("DRIFT-AWARE RETRAINING PIPELINE: CLOSED-LOOP DEMO", options, plan)
    run, path, elapsed = _run(options, plan, report_dir)
    from driftloop.simulate import summary

    click.echo(summary.render(run, str(path) if path else None))
    click.echo(f"Demo run {run.run_id} finished in {elapsed:.1f} s")
