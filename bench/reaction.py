"""Reaction time of the worker: drift event inserted -> its action started, LISTEN vs polling.

A real `driftloop worker` process (concurrency 1, a `command` action running `true`)
reacts to events inserted one by one at random intervals, first with LISTEN/NOTIFY
wake-ups, then with polling only (every 2 s), in the same run on the same database. The
reaction of an event is action_runs.started_at - drift_events.created_at, both read from
the database clock. Targets (issue 3): LISTEN p95 <= 50 ms and >= 20x better than polling.

    python -m bench.reaction [--events 200]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from bench.common import emit, fresh_database
from tests.support.helpers import wait_until

DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))
POLL_INTERVAL_S = 2.0
CONFIG = """
[worker]
listen = {listen}
poll_interval_s = {poll}

[actions.react]
type = "command"
argv = ["true"]

[[routes]]
actions = ["react"]
"""


def measure(url: str, listen: bool, events: int, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="driftloop-reaction-") as tmp:
        config = Path(tmp) / "driftloop.toml"
        config.write_text(CONFIG.format(listen=str(listen).lower(), poll=POLL_INTERVAL_S))
        env = {**os.environ, "DATABASE_URL": url, "DRIFTLOOP_CONFIG": str(config)}
        worker = subprocess.Popen(
            [DRIFTLOOP, "worker", "--metrics-port", "0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                first = conn.execute("SELECT coalesce(max(id), 0) FROM drift.drift_events").fetchone()[0]
                # Warm up: the worker is up (and listening) once it has handled one event.
                conn.execute("INSERT INTO drift.drift_events (model, kind, metric) VALUES ('warmup', 'embedding', 'x')")
                wait_until(lambda: conn.execute("SELECT count(*) FROM drift.action_runs").fetchone()[0] > first, 60,
                           "the first action", interval=0.05)
                rng = random.Random(seed)
                for i in range(events):
                    time.sleep(rng.uniform(0.01, 0.05))  # arrivals at random moments of the poll cycle
                    conn.execute(
                        "INSERT INTO drift.drift_events (model, kind, metric) VALUES (%s, 'embedding', 'x')",
                        (f"{'listen' if listen else 'poll'}-{i}",),
                    )
                done = f"SELECT count(*) FROM drift.drift_events WHERE id > {first} AND status = 'resolved'"
                wait_until(lambda: conn.execute(done).fetchone()[0] == events + 1, 120, "every action", interval=0.05)
                rows = conn.execute(
                    """SELECT extract(epoch FROM min(r.started_at) - e.created_at) * 1000
                       FROM drift.drift_events e JOIN drift.action_runs r ON r.event_id = e.id
                       WHERE e.id > %s AND e.model <> 'warmup' GROUP BY e.id, e.created_at""",
                    (first,),
                ).fetchall()
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
    ms = np.asarray([float(r[0]) for r in rows])
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "max_ms": round(float(ms.max()), 2),
        "events": len(ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with fresh_database() as url:
        listen = measure(url, True, args.events, args.seed)
        polling = measure(url, False, args.events, args.seed)
    ratio = polling["p95_ms"] / max(listen["p95_ms"], 1e-9)
    emit(
        {
            "benchmark": "reaction",
            "what": "drift event insert -> action start (database clock), one worker process, concurrency 1",
            "listen": listen,
            f"polling_{POLL_INTERVAL_S:g}s": polling,
            "p95_polling_over_listen": round(ratio, 1),
            "target": {"listen_p95_ms": 50, "p95_polling_over_listen": 20},
            "meets_target": listen["p95_ms"] <= 50 and ratio >= 20,
        }
    )


if __name__ == "__main__":
    main()
