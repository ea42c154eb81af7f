"""Chat providers that write the simulated assistant's answers.

The template provider answers offline from the topic catalogue; the HTTP one asks
CHAT_MODEL behind an OpenAI-compatible `POST /chat/completions`.
"""

from __future__ import annotations

from typing import Protocol

from driftloop.settings import env
from driftloop.simulate.embeddings import api_config
from driftloop.simulate.http_api import OpenAICompatibleClient, ProviderError
from driftloop.simulate.topics import Catalogue


class ChatProvider(Protocol):
    name: str

    def complete(self, system_prompt: str, prompt: str) -> str: ...


class TemplateChatProvider:
    """The catalogue's answer for the topic the prompt is about."""

    name = "template"

    def __init__(self, catalogue: Catalogue | None = None) -> None:
        self.catalogue = catalogue or Catalogue()

    def complete(self, system_prompt: str, prompt: str) -> str:
        topic = self.catalogue.topic_of(prompt)
        if topic is None:
            return "Could you tell me a little more about what you are trying to do?"
        subject = next(s for s in self.catalogue.topics[topic].subjects if s.lower() in prompt.lower())
        return self.catalogue.answer(topic, subject)


class HttpChatProvider:
    name = "http"

    def __init__(self, client: OpenAICompatibleClient, model: str, *, max_tokens: int = 200) -> None:
        self.client = client
        self.model = model
        self.max_tokens = max_tokens

    def complete(self, system_prompt: str, prompt: str) -> str:
        body = self.client.post(
            "chat/completions",
            {
                "model": self.model,
                "messages": [
                    {"role": "system", "content": system_prompt},
                    {"role": "user", "content": prompt},
                ],
                "max_tokens": self.max_tokens,
            },
        )
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ProviderError(f"chat model {self.model!r} returned no message: {str(body)[:200]}") from None
        if not isinstance(content, str):
            raise ProviderError(f"chat model {self.model!r} returned a non-text message")
        return content


class CachedChatProvider:
    """Asks once per distinct (system prompt, prompt): simulated prompts repeat, calls cost money."""

    def __init__(self, inner: ChatProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self._cache: dict[tuple[str, str], str] = {}

    def complete(self, system_prompt: str, prompt: str) -> str:
        key = (system_prompt, prompt)
        if key not in self._cache:
            self._cache[key] = self.inner.complete(system_prompt, prompt)
        return self._cache[key]


def chat_provider(name: str) -> ChatProvider:
    """`template` (offline) or `http` (CHAT_MODEL behind CHAT_BASE_URL)."""
    if name == "template":
        return TemplateChatProvider()
    if name == "http":
        model = env("CHAT_MODEL")
        if not model:
            raise ProviderError("CHAT_MODEL is not set (e.g. openai/gpt-4o-mini)")
        return CachedChatProvider(HttpChatProvider(OpenAICompatibleClient(api_config("CHAT")), model))
    raise ValueError(f"unknown chat provider {name!r}; use template or http")
