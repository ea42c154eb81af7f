"""The built-in action types: `type = "..."` in an `[actions.NAME]` table.

Each module has a `Settings` dataclass (the keys of its table), `check(settings, where)`
for validation at load time, and `run(ctx, settings) -> ActionResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driftloop.worker.actions import command, prompt, reindex, retrain, webhook
from driftloop.worker.actions.base import ActionContext, ActionError, ActionResult


@dataclass(frozen=True)
class ActionType:
    settings: type
    check: Callable[[Any, str], None]
    run: Callable[[ActionContext, Any], ActionResult]


ACTION_TYPES: dict[str, ActionType] = {
    "webhook": ActionType(webhook.Settings, webhook.check, webhook.run),
    "command": ActionType(command.Settings, command.check, command.run),
    "update_system_prompt": ActionType(prompt.Settings, prompt.check, prompt.run),
    "reindex": ActionType(reindex.Settings, reindex.check, reindex.run),
    "retrain": ActionType(retrain.Settings, retrain.check, retrain.run),
}

__all__ = ["ACTION_TYPES", "ActionContext", "ActionError", "ActionResult", "ActionType"]
