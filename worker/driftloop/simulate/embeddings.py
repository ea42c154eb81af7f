"""Embedding providers: an OpenAI-compatible HTTP API, or a synthetic topic-mixture model offline.

Both turn a list of texts into an `(n, dims)` float32 array. The synthetic one places
each topic at a fixed point of the unit sphere and each text near its topic's point, so
a change in what users ask about moves the embeddings the way a real model's would.
"""

from __future__ import annotations

import hashlib
import math
from typing import Protocol

import numpy as np

from driftloop.settings import env
from driftloop.simulate.http_api import DEFAULT_BASE_URL, ApiConfig, OpenAICompatibleClient, ProviderError
from driftloop.simulate.topics import Catalogue


class EmbeddingProvider(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class TopicMixture:
    """Topic centres on the unit sphere in `dims` dimensions, seeded.

    Every centre shares a common direction with weight `shared`, as texts of one domain
    do in real embedding spaces (their cosine similarity is well above zero); the rest is a
    topic's own direction. A sample is its centre plus isotropic noise of norm about
    `spread`, renormalised.
    """

    def __init__(self, n_topics: int, dims: int, seed: int, *, shared: float = 0.45, spread: float = 1.0):
        if dims < n_topics + 1:
            raise ValueError(f"dims={dims} is too small for {n_topics} topics")
        rng = np.random.default_rng(seed)
        # Orthonormal directions: QR of a Gaussian matrix.
        q, _ = np.linalg.qr(rng.standard_normal((dims, n_topics + 1)))
        common, own = q[:, 0], q[:, 1:].T
        self.centres = _unit_rows(shared * common + math.sqrt(1 - shared**2) * own).astype(np.float32)
        self.dims = dims
        self.spread = spread

    def sample(self, topics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal((len(topics), self.dims), dtype=np.float32)
        noise *= self.spread / math.sqrt(self.dims)
        return _unit_rows(self.centres[topics] + noise)


class SyntheticEmbeddingProvider:
    """Offline embeddings: each text lands near the centre of the topic it mentions.

    A text that mentions no known topic gets a direction of its own, derived from a
    hash of the text, so unrelated texts stay far apart and results are reproducible.
    """

    name = "synthetic"

    def __init__(
        self,
        dims: int = 384,
        seed: int = 0,
        *,
        noise_seed: int | None = None,
        catalogue: Catalogue | None = None,
        spread: float = 1.0,
    ):
        self.catalogue = catalogue or Catalogue()
        # `seed` places the topics; `noise_seed` draws the texts around them, so several
        # streams can share one embedding space and still be independent.
        self.mixture = TopicMixture(len(self.catalogue.names), dims, seed, spread=spread)
        self.dims = dims
        self._rng = np.random.default_rng([seed, 1 if noise_seed is None else 2, noise_seed or 0])

    def embed(self, texts: list[str]) -> np.ndarray:
        topics = [self.catalogue.topic_of(t) for t in texts]
        known = np.array([t is not None for t in topics], dtype=bool)
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        if known.any():
            out[known] = self.mixture.sample(np.array([t for t in topics if t is not None], dtype=np.int64), self._rng)
        for i in np.flatnonzero(~known):
            digest = hashlib.blake2b(texts[i].encode(), digest_size=8).digest()
            own = np.random.default_rng(int.from_bytes(digest, "little")).standard_normal(self.dims)
            out[i] = own / np.linalg.norm(own)
        return out


class HttpEmbeddingProvider:
    """`POST /embeddings` of an OpenAI-compatible API, in batches, with retries."""

    name = "http"

    def __init__(
        self,
        client: OpenAICompatibleClient,
        model: str,
        *,
        batch_size: int = 64,
        dimensions: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.client = client
        self.model = model
        self.batch_size = batch_size
        self.dimensions = dimensions

    def embed(self, texts: list[str]) -> np.ndarray:
        batches = [self._embed_batch(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        if not batches:
            return np.empty((0, self.dimensions or 0), dtype=np.float32)
        dims = {b.shape[1] for b in batches}
        if len(dims) > 1:
            raise ProviderError(f"embedding model {self.model!r} returned vectors of sizes {sorted(dims)}")
        return np.concatenate(batches)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        payload: dict[str, object] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions:
            payload["dimensions"] = self.dimensions
        body = self.client.post("embeddings", payload)
        data = body.get("data")
        if not isinstance(data, list) or len(data) != len(texts):
            got = len(data) if isinstance(data, list) else "no"
            raise ProviderError(f"embedding model {self.model!r} returned {got} vectors for {len(texts)} texts")
        # The API may answer out of order; `index` says which input each vector belongs to.
        rows = sorted(data, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
        try:
            array = np.array([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(f"embedding model {self.model!r} returned malformed vectors: {exc}") from None
        if array.ndim != 2 or not np.isfinite(array).all():
            raise ProviderError(f"embedding model {self.model!r} returned malformed or non-finite vectors")
        return array


class CachedEmbeddingProvider:
    """Embeds each distinct text once: simulated prompts repeat, and remote calls cost money."""

    def __init__(self, inner: EmbeddingProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._cache.update(zip(missing, self.inner.embed(missing), strict=True))
        if not texts:
            return np.empty((0, 0), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


def api_config(kind: str) -> ApiConfig:
    """Connection settings for `kind` ("EMBEDDING" or "CHAT") from the environment.

    `{KIND}_BASE_URL` and `{KIND}_API_KEY` win; otherwise OpenRouter with
    `OPENROUTER_API_KEY`, as in the seed.
    """
    key_env = f"{kind}_API_KEY" if env(f"{kind}_API_KEY") else "OPENROUTER_API_KEY"
    return ApiConfig(
        base_url=env(f"{kind}_BASE_URL") or DEFAULT_BASE_URL,
        api_key=env(key_env),
        key_env=key_env,
    )


def embedding_provider(
    name: str, *, dims: int = 384, seed: int = 0, noise_seed: int | None = None
) -> EmbeddingProvider:
    """`synthetic` (offline) or `http` (EMBEDDING_MODEL behind EMBEDDING_BASE_URL)."""
    if name == "synthetic":
        return SyntheticEmbeddingProvider(dims=dims, seed=seed, noise_seed=noise_seed)
    if name == "http":
        model = env("EMBEDDING_MODEL")
        if not model:
            raise ProviderError("EMBEDDING_MODEL is not set (e.g. openai/text-embedding-3-small)")
        dimensions = env("EMBEDDING_DIMENSIONS")
        return HttpEmbeddingProvider(
            OpenAICompatibleClient(api_config("EMBEDDING")),
            model,
            dimensions=int(dimensions) if dimensions else None,
        )
    raise ValueError(f"unknown embedding provider {name!r}; use synthetic or http")
