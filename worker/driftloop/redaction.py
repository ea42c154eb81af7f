"""Keeping secrets out of logs, database columns and CLI output.

Webhook URLs often carry their credential in the URL itself (Slack's
`/services/T0/B0/XXXX`, `?token=...`, `https://user:pass@host/`). Every text the worker
writes about an action (log lines, `action_runs.error`, `drift_events.last_error`, the
resolution, CLI output) goes through `Redactor.text()`, which

- rewrites every URL in the text with `redact_url()`: the password of the userinfo, every
  query value, and every path segment that looks like a token become `***`;
- replaces each configured secret value (webhook signing secrets, header values, command
  `env` values whose name says secret) wherever it appears, URL or not.

Redaction is one-way and happens before anything is stored, so an old row never holds a
secret that a later configuration change could reveal.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# A URL inside free text: scheme to the first whitespace or quote.
URL_IN_TEXT = re.compile(r"""[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'"<>`]+""")
# Environment/header names whose values are secrets.
SECRET_NAME = re.compile(r"(?i)(secret|token|passw|pwd|api[_-]?key|auth|credential|signature|cookie|session|private)")
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


def looks_like_token(segment: str) -> bool:
    """A path segment that is probably a credential rather than a route name.

    Route names are words ("hooks", "retrain", "v1"); tokens are long runs of letters and
    digits (Slack, Discord and most CI webhook keys, UUIDs, hex or base64 strings).
    """
    if len(segment) < 12:
        return False
    if not re.fullmatch(r"[A-Za-z0-9_\-.~+=%]+", segment):
        return False
    has_digit = any(c.isdigit() for c in segment)
    has_alpha = any(c.isalpha() for c in segment)
    mixed_case = any(c.islower() for c in segment) and any(c.isupper() for c in segment)
    return has_digit or (has_alpha and mixed_case and len(segment) >= 20)


def redact_url(url: str) -> str:
    """The URL with its userinfo password, query values and token-like path segments masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    path = "/".join(MASK if looks_like_token(s) else s for s in parts.path.split("/"))
    query = (
        "&".join(
            f"{pair.split('=', 1)[0]}={MASK}" if "=" in pair else (MASK if looks_like_token(pair) else pair)
            for pair in parts.query.split("&")
        )
        if parts.query
        else ""
    )
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def secrets_of_url(url: str) -> list[str]:
    """The secret parts of a URL (what redact_url masks), to find them outside URLs too."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        found.append(userinfo.split(":", 1)[1] if ":" in userinfo else userinfo)
    found += [s for s in parts.path.split("/") if looks_like_token(s)]
    for pair in parts.query.split("&") if parts.query else []:
        found.append(pair.split("=", 1)[1] if "=" in pair else pair)
    if parts.fragment:
        found.append(parts.fragment)
    return [s for s in found if len(s) >= MIN_SECRET_LENGTH]


@dataclass
class Redactor:
    """Masks URLs' credentials and a set of known secret values in any text."""

    secrets: set[str] = field(default_factory=set)

    def add(self, values: Iterable[str | None]) -> None:
        for value in values:
            if value and len(value) >= MIN_SECRET_LENGTH:
                self.secrets.add(value)

    def add_url(self, url: str) -> None:
        self.add(secrets_of_url(url))

    def text(self, value: str) -> str:
        masked = URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), value)
        # Longest first: a secret that contains another is masked whole.
        for secret in sorted(self.secrets, key=len, reverse=True):
            masked = masked.replace(secret, MASK)
        return masked

    def value(self, value: Any) -> Any:
        """`text()` applied to every string inside JSON-like data (action output, resolution)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def secret_named(name: str) -> bool:
    """Whether an environment variable or header name says its value is a secret."""
    return bool(SECRET_NAME.search(name))


class RedactingFilter(logging.Filter):
    """Masks secrets in log records (httpx logs every request URL at INFO)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("driftloop-redaction")
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.redactor.text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_redaction(redactor: Redactor) -> None:
    """Redact the records of the HTTP client's loggers and of every handler on the root logger.

    Logger filters apply only to records logged on that very logger, so the HTTP client's
    loggers get one; handler filters see everything that propagates (the CLI's handler).
    """
    targets: list[logging.Filterer] = [logging.getLogger(name) for name in ("httpx", "httpcore", "driftloop.worker")]
    targets += logging.getLogger().handlers
    for target in targets:
        if not any(isinstance(f, RedactingFilter) and f.redactor is redactor for f in target.filters):
            target.addFilter(RedactingFilter(redactor))
