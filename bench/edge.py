"""Interactions/s through the log-interaction edge function against the direct SDK, same run.

Both sides log the same batches: 100 interactions, each with a 384-d embedding. The direct
side is `driftloop.connect(DATABASE_URL).log_interactions` (binary COPY); the edge side is
`driftloop.connect(supabase_url=..., supabase_key=...)`, i.e. supabase-py's functions client →
`driftloop functions serve` (the real functions under deno) → Postgres, all triggers on.
Runs alternate between the sides; the best run of each counts. Target: edge >= 0.3 of direct.

    python -m bench.edge [--batches 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
from typing import Any

import httpx
import numpy as np

import driftloop
from bench.common import fresh_database
from driftloop import edge

KEY = "bench-service-role-key"
DIMS = 384
BATCH = 100


def batches(model: str, count: int, seed: int) -> list[list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    out = []
    for b in range(count):
        vectors = rng.normal(size=(BATCH, DIMS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        out.append(
            [
                {
                    "model": model,
                    "prompt": f"How do I configure feature {b}-{i}?",
                    "response": "Open the settings page and enable it.",
                    "latency_ms": 120.0 + i,
                    "embedding": vectors[i],
                }
                for i in range(BATCH)
            ]
        )
    return out


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = edge.deno_env(url, {"PORT": str(port), "HOST": "127.0.0.1", "SUPABASE_SERVICE_ROLE_KEY": KEY})
    proc = subprocess.Popen(
        edge.serve_command(), env=env, cwd=edge.functions_dir(), stdout=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/functions/v1/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("functions did not start")


def timed(log: Any, work: list[list[dict[str, Any]]]) -> float:
    start = time.perf_counter()
    for batch in work:
        log(batch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="batches of 100 per run and side")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from tests.support.helpers import free_port

    with fresh_database() as url:
        port = free_port()
        proc = serve(url, port)
        try:
            direct = driftloop.connect(url)
            via_edge = driftloop.connect(supabase_url=f"http://127.0.0.1:{port}", supabase_key=KEY)
            # Warm both paths (connections, deno's JIT, the models' registry rows).
            direct.log_interactions(batches("direct", 1, 0)[0])
            via_edge.log_interactions(batches("edge", 1, 0)[0])
            direct_s, edge_s = [], []
            for r in range(args.repeats):
                work = batches("direct", args.batches, 10 + r)
                direct_s.append(timed(direct.log_interactions, work))
                work = batches("edge", args.batches, 10 + r)
                edge_s.append(timed(via_edge.log_interactions, work))
            direct.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
    rows = args.batches * BATCH
    direct_rate, edge_rate = rows / min(direct_s), rows / min(edge_s)
    result = {
        "benchmark": "edge",
        "batch": BATCH,
        "dims": DIMS,
        "rows_per_run": rows,
        "repeats": args.repeats,
        "direct_rows_per_s": round(direct_rate, 1),
        "edge_rows_per_s": round(edge_rate, 1),
        "edge_over_direct": round(edge_rate / direct_rate, 3),
        "target": 0.3,
        "meets_target": edge_rate / direct_rate >= 0.3,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
