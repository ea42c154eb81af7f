"""The worker's configuration: `driftloop.toml` (what runs for which drift, and how).

Path: the argument, else `DRIFTLOOP_CONFIG`, else `driftloop.toml` in the working
directory, else the seed's defaults (embedding -> reindex, behavior ->
update_system_prompt, accuracy -> retrain). Everything is validated at load time: a
malformed file, an unknown key or action type, a route naming an undefined action, a
missing command or webhook secret all raise `ConfigError` naming the file and the entry.
What runs comes only from this file, never from database rows.

    [worker]                    # all optional
    concurrency = 2             # events processed at once
    poll_interval_s = 5         # fallback when no notification arrives
    listen = true               # LISTEN drift_events for immediate wake-ups
    lease_s = 30                # claim duration, extended while the action runs
    backoff_base_s = 10         # retry delay after a failed attempt: base * 2^(n-1), jittered
    backoff_max_s = 900
    shutdown_grace_s = 30       # SIGTERM: time for running actions to finish

    [actions.NAME]
    type = "webhook"            # webhook | command | update_system_prompt | reindex | retrain
    at_most_once = false        # true: a run whose worker died mid-action is dead-lettered, not re-run
    ...                         # that type's settings (see driftloop.worker.actions.*)

    [[routes]]                  # first match wins; kind, metric, model (a glob) are optional
    kind = "accuracy"
    actions = ["retrain", "NAME"]
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.redaction import Redactor, secret_named
from driftloop.worker.actions import ACTION_TYPES
from driftloop.worker.tables import ConfigError, parse_table

KINDS = ("embedding", "behavior", "accuracy")
DEFAULT_ROUTES = (("embedding", "reindex"), ("behavior", "update_system_prompt"), ("accuracy", "retrain"))


@dataclass(frozen=True)
class WorkerSettings:
    """The `[worker]` table."""

    concurrency: int = 1
    poll_interval_s: float = 5.0
    listen: bool = True
    lease_s: float = 30.0
    backoff_base_s: float = 10.0
    backoff_max_s: float = 900.0
    shutdown_grace_s: float = 30.0
    listener_check_s: float = 30.0  # how often the listener proves its connection alive
    metrics_timeout_ms: int = 2000  # statement timeout of the /metrics query


@dataclass(frozen=True)
class ActionSpec:
    """A named action: its built-in type and validated settings."""

    name: str
    type: str
    settings: Any
    # A run whose worker died before its outcome was recorded is not run again: the event is
    # dead-lettered for a human to check and retry (for effects that must never happen twice).
    at_most_once: bool = False


@dataclass(frozen=True)
class Route:
    """Which actions run for which drift; None matches anything, `model` is a glob."""

    actions: tuple[str, ...]
    kind: str | None = None
    metric: str | None = None
    model: str | None = None

    def matches(self, model: str, kind: str, metric: str) -> bool:
        return (
            (self.kind is None or self.kind == kind)
            and (self.metric is None or self.metric == metric)
            and (self.model is None or fnmatch.fnmatchcase(model, self.model))
        )


@dataclass(frozen=True)
class WorkerConfig:
    """The loaded configuration (`path` is None when the defaults apply)."""

    path: Path | None
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    actions: Mapping[str, ActionSpec] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    # Masks the secrets of this configuration in everything the worker writes or prints.
    redactor: Redactor = field(default_factory=Redactor)

    def actions_for(self, model: str, kind: str, metric: str) -> list[ActionSpec]:
        """The ordered actions of the first route that matches (empty when none does)."""
        for route in self.routes:
            if route.matches(model, kind, metric):
                return [self.actions[name] for name in route.actions]
        return []


def config_path(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The file that `load_config(path)` reads, or None for the defaults."""
    if path is not None:
        return Path(path)
    from driftloop.settings import env

    configured = env("DRIFTLOOP_CONFIG")
    if configured:
        return Path(configured)
    local = Path.cwd() / "driftloop.toml"
    return local if local.is_file() else None


def _parse_action(name: str, table: Any, where: str) -> ActionSpec:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    kind = table.get("type")
    if kind not in ACTION_TYPES:
        raise ConfigError(f"{where}.type: unknown action type {kind!r} (built-in types: {', '.join(ACTION_TYPES)})")
    action_type = ACTION_TYPES[kind]
    at_most_once = table.get("at_most_once", False)
    if not isinstance(at_most_once, bool):
        raise ConfigError(f"{where}.at_most_once must be true or false, got {at_most_once!r}")
    own = {k: v for k, v in table.items() if k not in ("type", "at_most_once")}
    settings: Any = parse_table(action_type.settings, own, where)
    action_type.check(settings, where)
    return ActionSpec(name=name, type=kind, settings=settings, at_most_once=at_most_once)


def _bare_builtin(name: str, where: str) -> ActionSpec:
    """A built-in type used by name without a table, with its default settings."""
    action_type = ACTION_TYPES[name]
    try:
        settings: Any = parse_table(action_type.settings, {}, f"[actions.{name}]")
    except ConfigError as exc:
        raise ConfigError(f"{where}: action {name!r} needs an [actions.{name}] table ({exc})") from None
    action_type.check(settings, f"[actions.{name}]")
    return ActionSpec(name=name, type=name, settings=settings)


def _parse_route(index: int, table: Any, actions: dict[str, ActionSpec]) -> Route:
    where = f"routes[{index}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table ([[routes]])")
    route = parse_table(Route, table, where)
    if route.kind is not None and route.kind not in KINDS:
        raise ConfigError(f"{where}.kind: unknown kind {route.kind!r} (one of {', '.join(KINDS)})")
    if not route.actions:
        raise ConfigError(f"{where}.actions must name at least one action")
    for name in route.actions:
        if name in actions:
            continue
        if name in ACTION_TYPES:
            actions[name] = _bare_builtin(name, f"{where}.actions")
            continue
        defined = ", ".join(sorted(actions)) or "none"
        raise ConfigError(
            f"{where}.actions: unknown action {name!r} (defined: {defined}; "
            f"built-ins usable without a table: reindex, update_system_prompt, retrain)"
        )
    return route


def parse_config(data: dict[str, Any], path: Path | None) -> WorkerConfig:
    """Validate an already-parsed TOML document (errors are not prefixed with the path)."""
    unknown = sorted(set(data) - {"worker", "actions", "routes"})
    if unknown:
        raise ConfigError(f"unknown top-level key {unknown[0]!r} (known: worker, actions, routes)")
    worker = parse_table(WorkerSettings, data.get("worker", {}), "[worker]")
    if worker.concurrency < 1 or worker.lease_s <= 0 or worker.poll_interval_s <= 0:
        raise ConfigError("[worker]: concurrency must be >= 1, lease_s and poll_interval_s > 0")
    raw_actions = data.get("actions", {})
    if not isinstance(raw_actions, dict):
        raise ConfigError("actions must be a table of [actions.NAME] tables")
    actions = {name: _parse_action(name, table, f"[actions.{name}]") for name, table in raw_actions.items()}
    raw_routes = data.get("routes")
    if raw_routes is None:
        raw_routes = [{"kind": kind, "actions": [name]} for kind, name in DEFAULT_ROUTES]
    if not isinstance(raw_routes, list):
        raise ConfigError("routes must be an array of tables ([[routes]])")
    routes = tuple(_parse_route(i, table, actions) for i, table in enumerate(raw_routes))
    return WorkerConfig(path=path, worker=worker, actions=actions, routes=routes, redactor=_redactor(actions))


def _redactor(actions: Mapping[str, ActionSpec]) -> Redactor:
    """Every secret the actions know: URL credentials, signing secrets, header and secret env values."""
    redactor = Redactor()
    for spec in actions.values():
        settings = spec.settings
        url = getattr(settings, "url", None)
        if url:
            redactor.add_url(url)
        secret_env = getattr(settings, "secret_env", None)
        if secret_env:
            redactor.add([os.environ.get(secret_env)])
        redactor.add(getattr(settings, "headers", {}).values())
        redactor.add(v for k, v in getattr(settings, "env", {}).items() if secret_named(k))
        for arg in getattr(settings, "argv", None) or getattr(settings, "command", None) or ():
            if "://" in arg:
                redactor.add_url(arg)
    return redactor


def load_config(path: str | os.PathLike[str] | None = None) -> WorkerConfig:
    """Load and validate the worker configuration.

    `path` (else `DRIFTLOOP_CONFIG`, else ./driftloop.toml) must name a readable TOML file;
    with none of them the seed's default routes apply. Raises `ConfigError` with the file
    and the offending entry, e.g. "driftloop.toml: routes[1].actions: unknown action 'x'".
    """
    file = config_path(path)
    if file is None:
        return parse_config({}, None)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{file}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        return parse_config(data, file)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
