"""A small client for OpenAI-compatible HTTP APIs (OpenRouter, OpenAI, vLLM, Ollama).

Retries what can succeed later (429, 5xx, network errors) with capped exponential
backoff and jitter, honouring `Retry-After`; any other 4xx is the caller's mistake and
fails at once with the server's own message, so a wrong key reads as a wrong key.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from driftloop.errors import DriftloopError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"


class ProviderError(DriftloopError):
    """An embedding or chat provider refused a request or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ApiConfig:
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    # The variable the key came from, named in error messages.
    key_env: str = "OPENROUTER_API_KEY"
    timeout_s: float = 30.0
    max_retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 20.0


def _api_message(response: httpx.Response) -> str:
    """The server's own explanation: OpenAI-style `{"error": {"message": ...}}` or the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
    return str(body)[:300]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class OpenAICompatibleClient:
    """POSTs JSON to `{base_url}/{path}` with retries; one instance per provider."""

    def __init__(
        self,
        config: ApiConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self._sleep = sleep
        headers = {"Content-Type": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._http = httpx.Client(base_url=config.base_url.rstrip("/") + "/", headers=headers, timeout=config.timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenAICompatibleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _delay(self, attempt: int, hinted: float | None) -> float:
        if hinted is not None:
            return min(hinted, self.config.max_backoff_s)
        base = min(self.config.backoff_s * 2**attempt, self.config.max_backoff_s)
        # Jitter: clients that failed together do not all retry at the same moment.
        return random.uniform(base / 2, base)

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.config.base_url.rstrip('/')}/{path}"
        last_error = ""
        for attempt in range(self.config.max_retries + 1):
            hinted: float | None = None
            try:
                response = self._http.post(path, json=payload)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    try:
                        body = response.json()
                    except ValueError:
                        raise ProviderError(
                            f"POST {url} answered {response.status_code} with a body that is not JSON"
                        ) from None
                    if not isinstance(body, dict):
                        raise ProviderError(f"POST {url} answered with JSON that is not an object")
                    return body
                status = response.status_code
                message = _api_message(response)
                if status != 429 and status < 500:
                    raise ProviderError(self._client_error(url, status, message), status=status)
                last_error = f"{status}: {message}"
                hinted = _retry_after(response)
            if attempt < self.config.max_retries:
                delay = self._delay(attempt, hinted)
                log.warning("POST %s failed (%s); retry %d in %.2fs", url, last_error, attempt + 1, delay)
                self._sleep(delay)
        raise ProviderError(f"POST {url} failed after {self.config.max_retries + 1} attempts; last error: {last_error}")

    def _client_error(self, url: str, status: int, message: str) -> str:
        if status in (401, 403):
            hint = f"check {self.config.key_env}" if self.config.api_key else f"{self.config.key_env} is not set"
            return f"POST {url} was refused ({status}): {message} — {hint}"
        return f"POST {url} was rejected ({status}): {message}"
