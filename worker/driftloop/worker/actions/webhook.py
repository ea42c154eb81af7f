"""`webhook`: POST the event as JSON, signed with HMAC-SHA256.

Headers sent:
- `X-Driftloop-Event`: the event id; `X-Driftloop-Delivery`: "<event id>:<action>", the
  same on every retry, so a receiver can drop duplicates.
- `X-Driftloop-Timestamp`: Unix seconds; `X-Driftloop-Signature`: "sha256=" + hex
  HMAC-SHA256(secret, "<timestamp>." + body). The timestamp is signed so a captured
  request cannot be replayed later. No `secret_env`: no signature header.

Retries (within one attempt) on 5xx responses and network errors only; any other non-2xx
fails the action permanently, since sending the same request again cannot help.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass, field

import httpx

from driftloop.redaction import redact_url
from driftloop.worker.actions.base import ActionContext, ActionError, ActionResult
from driftloop.worker.backoff import backoff_delay
from driftloop.worker.tables import ConfigError


@dataclass(frozen=True)
class Settings:
    url: str
    secret_env: str | None = None
    timeout_s: float = 10.0
    retries: int = 3
    headers: dict[str, str] = field(default_factory=dict)


def check(settings: Settings, where: str) -> None:
    if not settings.url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.url must be an http:// or https:// URL, got {redact_url(settings.url)!r}")
    if settings.secret_env and not os.environ.get(settings.secret_env):
        raise ConfigError(f"{where}.secret_env: environment variable {settings.secret_env} is not set")
    if settings.retries < 0 or settings.timeout_s <= 0:
        raise ConfigError(f"{where}: retries must be >= 0 and timeout_s > 0")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Driftloop-Signature value for a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def run(ctx: ActionContext, settings: Settings) -> ActionResult:
    body = json.dumps({"action": ctx.action, "event": ctx.event.to_json()}, sort_keys=True).encode()
    secret = os.environ.get(settings.secret_env) if settings.secret_env else None
    tries = settings.retries + 1
    shown = redact_url(settings.url)  # the URL may carry the hook's credential
    last_error = ""
    with httpx.Client(timeout=settings.timeout_s) as client:
        for attempt in range(1, tries + 1):
            timestamp = str(int(time.time()))
            headers = {
                **settings.headers,
                "Content-Type": "application/json",
                "X-Driftloop-Event": str(ctx.event.id),
                "X-Driftloop-Delivery": f"{ctx.event.id}:{ctx.action}",
                "X-Driftloop-Timestamp": timestamp,
            }
            if secret:
                headers["X-Driftloop-Signature"] = signature(secret, timestamp, body)
            try:
                response = client.post(settings.url, content=body, headers=headers)
            except httpx.TransportError as exc:  # connection refused, timeout, reset...
                last_error = f"{type(exc).__name__}: {exc}"  # masked again by the processor
            else:
                if response.is_success:
                    return ActionResult(
                        summary=f"POST {shown} -> {response.status_code}",
                        output={"status": response.status_code, "tries": attempt, "response": response.text[:1000]},
                    )
                last_error = f"HTTP {response.status_code}: {response.text[:500]}"
                if response.status_code < 500:
                    raise ActionError(f"POST {shown} -> {last_error}", permanent=True)
            if attempt < tries and ctx.cancel.wait(backoff_delay(attempt, 0.5, 10.0)):
                break
    raise ActionError(f"POST {shown} failed after {tries} tries: {last_error}")
