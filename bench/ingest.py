"""Ingest throughput through the SDK (all triggers on) against a raw binary COPY, same run.

The raw side writes the same rows the same way (binary COPY, or single-row INSERTs) into a
table created LIKE drift.embeddings_log INCLUDING ALL: same columns, defaults and indexes,
no triggers. Ratios are SDK rows/s over raw rows/s; the targets are issue 2's.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

import driftloop
from bench.common import compare, emit, fresh_database
from driftloop.database import connect

RAW = "public.raw_embeddings"
START = datetime(2026, 1, 1, tzinfo=UTC)


def vectors(rows: int, dims: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, dims)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def stamps(rows: int, offset: int = 0) -> list[datetime]:
    # ~20 rows a second: a batch spans a few one-minute buckets, as real traffic does
    return [START + timedelta(milliseconds=50 * (offset + i)) for i in range(rows)]


def raw_copy(conn: psycopg.Connection, model: str, matrix: np.ndarray, times: list[datetime]) -> None:
    with conn.transaction(), conn.cursor().copy(
        f"COPY {RAW} (model, interaction_id, embedding, created_at) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["text", "int8", "vector", "timestamptz"])
        for vector, at in zip(matrix, times, strict=True):
            copy.write_row((model, None, vector, at))


def single_rows(conn: psycopg.Connection, table: str, model: str, matrix: np.ndarray, times: list[datetime]) -> None:
    sql = f"INSERT INTO {table} (model, embedding, created_at) VALUES (%s, %s, %s)"
    with conn.transaction(), conn.cursor() as cur:
        for vector, at in zip(matrix, times, strict=True):
            cur.execute(sql, (model, vector, at))


def reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"TRUNCATE {RAW}, drift.embeddings_log, drift.embedding_rollup, drift.embedding_rollup_delta"
        )


def concurrently(writers: int, work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(dims: int, rows: int, batch: int, single: int, writers: int, repeats: int) -> dict:
    out: dict = {"dims": dims}
    with fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {RAW} (LIKE drift.embeddings_log INCLUDING ALL)")
            # Evaluation is measured by bench/evaluate; here only the logging path counts.
            conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'evaluate_interval'")
        model = f"bench-{dims}"
        matrix = vectors(rows, dims, seed=dims)
        times = stamps(rows)
        client = driftloop.connect(url, min_size=writers, max_size=writers)
        conns = [connect(url) for _ in range(writers)]
        client.log_embeddings(model, matrix[:1], created_at=times[:1])  # register the model once
        batches = [(matrix[i : i + batch], times[i : i + batch]) for i in range(0, rows, batch)]

        def sdk_writer(i: int) -> None:
            for m, t in batches[i::writers]:
                client.log_embeddings(model, m, created_at=t)

        def raw_writer(i: int) -> None:
            for m, t in batches[i::writers]:
                raw_copy(conns[i], model, m, t)

        def clear() -> None:
            reset(url)

        out["batch"] = {
            "rows": rows, "batch_size": batch, "target": 0.85,
            # one writer doing every batch in turn
            **compare(url, repeats, lambda: [raw_writer(i) for i in range(writers)],
                      lambda: [sdk_writer(i) for i in range(writers)], clear),
        }  # fmt: skip
        one, one_times = matrix[:single], times[:single]
        out["single_row_inserts_one_transaction"] = {
            "rows": single, "target": 0.5,
            **compare(url, repeats, lambda: single_rows(conns[0], RAW, model, one, one_times),
                      lambda: single_rows(conns[1], "drift.embeddings_log", model, one, one_times), clear),
        }  # fmt: skip
        out["concurrent_writers"] = {
            "writers": writers, "rows": rows, "target": 0.8,
            **compare(url, repeats, lambda: concurrently(writers, raw_writer),
                      lambda: concurrently(writers, sdk_writer), clear),
        }  # fmt: skip
        for c in conns:
            c.close()
        client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rows (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scale = 4 if args.quick else 1
    result = {
        "benchmark": "ingest",
        "cases": [
            run(384, rows=40_000 // scale, batch=1000, single=5000 // scale, writers=4, repeats=args.repeats),
            run(1536, rows=12_000 // scale, batch=1000, single=5000 // scale, writers=4, repeats=args.repeats),
        ],
    }
    emit(result)


if __name__ == "__main__":
    main()
