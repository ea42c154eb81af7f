"""`update_system_prompt`: a new active version in drift.prompt_versions.

The new prompt is `template` filled with the previous (active) prompt, the drift and a
guidance sentence for the drifted metric. Every version is kept; `driftloop prompt
rollback MODEL` (or `SELECT drift.rollback_prompt(model)`) goes back one version. Apps read
the active prompt with `SELECT drift.active_prompt('model')`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from driftloop.worker.actions.base import ActionContext, ActionResult
from driftloop.worker.queries import query
from driftloop.worker.tables import ConfigError

# What to tell the model when a metric drifts (override per metric with `guidance`).
DEFAULT_GUIDANCE = {
    "refusal_rate": (
        "Answer every request you safely can. Refuse only when a request is clearly harmful, "
        "and then say briefly why and what you can do instead."
    ),
    "toxicity_rate": (
        "Stay courteous and neutral in every reply, including to hostile or provocative messages; "
        "never insult, mock or use offensive language."
    ),
    "centroid_distance": (
        "Users now ask about topics you saw less before; if a request is outside what you know, "
        "say so plainly instead of guessing."
    ),
    "accuracy": "Double-check facts and answers before replying; say when you are not sure.",
}
FALLBACK_GUIDANCE = "Follow the instructions above carefully and keep answers accurate and polite."

PLACEHOLDERS = ("previous", "guidance", "model", "kind", "metric", "value", "baseline_value", "score", "threshold")


@dataclass(frozen=True)
class Settings:
    template: str = "{previous}\n\n{guidance}"
    base_prompt: str = "You are a helpful assistant."
    guidance: dict[str, str] = field(default_factory=dict)


def check(settings: Settings, where: str) -> None:
    for _text, name, _spec, _conv in string.Formatter().parse(settings.template):
        if name is not None and name not in PLACEHOLDERS:
            raise ConfigError(f"{where}.template: unknown placeholder {{{name}}} (known: {', '.join(PLACEHOLDERS)})")


def render(settings: Settings, previous: str, event_fields: dict[str, Any]) -> str:
    guidance = settings.guidance.get(event_fields["metric"]) or DEFAULT_GUIDANCE.get(
        event_fields["metric"], FALLBACK_GUIDANCE
    )
    # The same drift again must not stack the same sentence on the prompt.
    if guidance in previous:
        guidance = ""
    return settings.template.format(previous=previous, guidance=guidance, **event_fields).strip()


def _rounded(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def run(ctx: ActionContext, settings: Settings) -> ActionResult:
    event = ctx.event
    details = event.details
    fields = {
        "model": event.model,
        "kind": event.kind,
        "metric": event.metric,
        "value": details.get("value"),
        "baseline_value": details.get("baseline_value"),
        "score": event.score,
        "threshold": event.threshold,
    }
    reason = (
        f"{event.kind} drift of {event.metric}: {_rounded(details.get('value'))} vs baseline "
        f"{_rounded(details.get('baseline_value'))} (event {event.id})"
    )
    with ctx.transaction() as conn:
        params = {"model": event.model, "created_by": ctx.worker_id}
        active = conn.execute(query("active_prompt"), params).fetchone()
        if active is None:
            conn.execute(query("insert_first_prompt"), {**params, "prompt": settings.base_prompt})
            previous_version, previous = 1, settings.base_prompt
        else:
            previous_version, previous = active
        prompt = render(settings, previous, fields)
        created = conn.execute(
            query("activate_prompt"),
            {
                **params,
                "prompt": prompt,
                "event_id": event.id,
                "reason": reason,
            },
        ).fetchone()
        assert created is not None  # the function always returns the version
        version = created[0]
    return ActionResult(
        summary=f"prompt of {event.model}: version {previous_version} -> {version}",
        output={"model": event.model, "version": version, "previous_version": previous_version},
    )
