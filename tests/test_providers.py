"""The HTTP embedding and chat providers against a local server speaking the OpenAI API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from driftloop.simulate.chat import chat_provider
from driftloop.simulate.embeddings import (
    HttpEmbeddingProvider,
    SyntheticEmbeddingProvider,
    embedding_provider,
)
from driftloop.simulate.http_api import ApiConfig, OpenAICompatibleClient, ProviderError

KEY = "sk-test-key"
DIMS = 8


def vector_of(text: str) -> list[float]:
    """What the fake model returns for a text: deterministic, so tests can check order."""
    rng = np.random.default_rng(sum(text.encode()))
    return rng.standard_normal(DIMS).round(6).tolist()


class OpenAIServer(ThreadingHTTPServer):
    """`POST /v1/embeddings` and `/v1/chat/completions` as the OpenAI API answers them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict] = []
        self.failures: list[int] = []  # statuses to answer with before succeeding
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    server: OpenAIServer

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append({"path": self.path, "payload": payload})
            failure = self.server.failures.pop(0) if self.server.failures else None
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            self._send(401, {"error": {"message": "Invalid API key provided", "type": "invalid_request_error"}})
        elif failure == 429:
            self._send(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0"})
        elif failure is not None:
            self._send(failure, {"error": {"message": "upstream overloaded"}})
        elif self.path == "/v1/embeddings":
            texts = payload["input"]
            data = [{"object": "embedding", "index": i, "embedding": vector_of(t)} for i, t in enumerate(texts)]
            # Real servers may answer out of order; the client must sort by index.
            self._send(200, {"object": "list", "data": data[::-1], "model": payload["model"]})
        elif self.path == "/v1/chat/completions":
            question = payload["messages"][-1]["content"]
            message = {"role": "assistant", "content": f"Answer to: {question}"}
            self._send(200, {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    srv = OpenAIServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def provider(
    server: OpenAIServer,
    *,
    key: str | None = KEY,
    batch_size: int = 64,
    retries: int = 3,
    delays: list[float] | None = None,
) -> HttpEmbeddingProvider:
    config = ApiConfig(base_url=server.base_url, api_key=key, max_retries=retries, backoff_s=0.01)
    sleep = delays.append if delays is not None else (lambda _s: None)
    return HttpEmbeddingProvider(OpenAICompatibleClient(config, sleep=sleep), "test-embed", batch_size=batch_size)


def test_embeds_texts_in_input_order(server: OpenAIServer) -> None:
    texts = ["How do indexes work?", "What is a refund?", "Explain transformers"]
    vectors = provider(server).embed(texts)
    assert vectors.shape == (3, DIMS)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, np.array([vector_of(t) for t in texts]), rtol=1e-6)
    (request,) = server.requests
    assert request["payload"] == {"model": "test-embed", "input": texts, "encoding_format": "float"}


def test_sends_batches_of_the_configured_size(server: OpenAIServer) -> None:
    texts = [f"question number {i}" for i in range(10)]
    vectors = provider(server, batch_size=4).embed(texts)
    assert [len(r["payload"]["input"]) for r in server.requests] == [4, 4, 2]
    np.testing.assert_allclose(vectors, np.array([vector_of(t) for t in texts]), rtol=1e-6)


def test_retries_after_429_and_5xx(server: OpenAIServer) -> None:
    server.failures = [429, 503]
    delays: list[float] = []
    vectors = provider(server, delays=delays).embed(["hello"])
    np.testing.assert_allclose(vectors[0], vector_of("hello"), rtol=1e-6)
    assert len(server.requests) == 3
    # Retry-After: 0 from the 429 is honoured; the 503 gets our own backoff.
    assert delays[0] == 0.0
    assert 0 < delays[1] <= 0.02


def test_gives_up_after_max_retries_with_the_last_error(server: OpenAIServer) -> None:
    server.failures = [500] * 10
    with pytest.raises(ProviderError, match=r"failed after 3 attempts; last error: 500: upstream overloaded"):
        provider(server, retries=2).embed(["hello"])
    assert len(server.requests) == 3


def test_401_is_a_clear_error_without_retries(server: OpenAIServer) -> None:
    with pytest.raises(ProviderError) as info:
        provider(server, key="sk-wrong").embed(["hello"])
    assert info.value.status == 401
    assert "Invalid API key provided" in str(info.value)
    assert "check OPENROUTER_API_KEY" in str(info.value)
    assert len(server.requests) == 1


def test_missing_key_says_which_variable_to_set(server: OpenAIServer) -> None:
    with pytest.raises(ProviderError, match="OPENROUTER_API_KEY is not set"):
        provider(server, key=None).embed(["hello"])


def test_providers_from_the_environment(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_BASE_URL", server.base_url)
    monkeypatch.setenv("EMBEDDING_API_KEY", KEY)
    monkeypatch.setenv("EMBEDDING_MODEL", "text-embedding-3-small")
    monkeypatch.setenv("CHAT_BASE_URL", server.base_url)
    monkeypatch.setenv("CHAT_API_KEY", KEY)
    monkeypatch.setenv("CHAT_MODEL", "gpt-4o-mini")
    vectors = embedding_provider("http").embed(["What are invoices?"])
    assert vectors.shape == (1, DIMS)
    assert server.requests[0]["payload"]["model"] == "text-embedding-3-small"
    chat = chat_provider("http")
    answer = chat.complete("You are a support assistant.", "What are invoices?")
    assert answer == "Answer to: What are invoices?"
    # The same question under the same system prompt is asked once.
    assert chat.complete("You are a support assistant.", "What are invoices?") == answer
    assert len(server.requests) == 2
    assert server.requests[1]["payload"]["messages"][0] == {
        "role": "system",
        "content": "You are a support assistant.",
    }


def test_missing_model_name_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBEDDING_MODEL", raising=False)
    with pytest.raises(ProviderError, match="EMBEDDING_MODEL is not set"):
        embedding_provider("http")


def test_synthetic_provider_clusters_texts_by_topic() -> None:
    synthetic = SyntheticEmbeddingProvider(dims=64, seed=3)
    a = synthetic.embed(["How does gradient descent work?"] * 200)
    b = synthetic.embed(["Can you explain refunds in simple terms?"] * 200)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    within = float(a.mean(0) @ a.mean(0)) / float(np.linalg.norm(a.mean(0)) ** 2)
    across = float(a.mean(0) @ b.mean(0)) / float(np.linalg.norm(a.mean(0)) * np.linalg.norm(b.mean(0)))
    assert within == pytest.approx(1.0)
    assert across < 0.5
    # Reproducible with the same seed; a text of no known topic still gets a unit vector.
    again = SyntheticEmbeddingProvider(dims=64, seed=3).embed(["How does gradient descent work?"] * 200)
    np.testing.assert_array_equal(a, again)
    other = synthetic.embed(["completely unrelated words"])
    assert np.linalg.norm(other[0]) == pytest.approx(1.0, abs=1e-5)


def test_simulation_embeds_prompts_through_the_http_provider(
    db_url: str, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftloop.database import connect
    from driftloop.simulate.runner import Options, Plan, run_simulation
    from driftloop.simulate.scenarios import SCENARIOS

    monkeypatch.setenv("EMBEDDING_BASE_URL", server.base_url)
    monkeypatch.setenv("EMBEDDING_API_KEY", KEY)
    monkeypatch.setenv("EMBEDDING_MODEL", "text-embedding-3-small")
    options = Options(scenarios=(SCENARIOS["control"],), days=0.125, rate_per_minute=4, embeddings="http", act=False)
    run_simulation(db_url, options, Plan.make(days=0.125, rate_per_minute=4))
    with connect(db_url) as conn:
        logged = conn.execute(
            "SELECT i.prompt, e.embedding FROM drift.interaction_log i"
            " JOIN drift.embeddings_log e ON e.interaction_id = i.id ORDER BY i.id LIMIT 50"
        ).fetchall()
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT prompt) FROM drift.interaction_log").fetchone()
    for prompt, embedding in logged:
        np.testing.assert_allclose(embedding.to_numpy(), vector_of(prompt), rtol=1e-5)
    # Each distinct prompt was embedded once, in batches, however often it was asked (the
    # catalogue has 6 question patterns x 50 subjects).
    inputs = [text for r in server.requests for text in r["payload"]["input"]]
    assert len(inputs) == len(set(inputs)) <= 300 < total
    assert distinct <= len(inputs)
    assert all(len(r["payload"]["input"]) <= 64 for r in server.requests)
