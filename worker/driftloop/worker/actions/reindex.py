"""`reindex`: refresh the vector side after embedding drift, then move the embedding baseline.

Optional steps, in order:
- `documents_table` + `embedder` + `embedding_model`: re-embed the rows whose
  `model_column` is not `embedding_model` (batches committed one by one, so a crash
  loses nothing and the next run continues where this one stopped);
- `index`: `REINDEX INDEX CONCURRENTLY` on a pgvector (HNSW / IVFFlat) index, so the
  index is rebuilt for the new distribution without blocking reads or writes.
Then (`move_baseline`, default on) the model's embedding baseline becomes the event's
current window: the new distribution is the new normal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import sql

from driftloop.worker import entrypoints
from driftloop.worker.actions.base import ActionContext, ActionError, ActionResult
from driftloop.worker.actions.guard import check_baseline_window
from driftloop.worker.queries import query
from driftloop.worker.tables import ConfigError


@dataclass(frozen=True)
class Settings:
    index: str | None = None
    concurrently: bool = True
    documents_table: str | None = None
    id_column: str = "id"
    text_column: str = "content"
    embedding_column: str = "embedding"
    model_column: str = "embedding_model"
    embedding_model: str | None = None
    embedder: str | None = None  # "module:function", list[str] -> array of shape (n, dims)
    batch_size: int = 256
    move_baseline: bool = True


def check(settings: Settings, where: str) -> None:
    if settings.documents_table:
        if not (settings.embedder and settings.embedding_model):
            raise ConfigError(f"{where}: documents_table needs embedder and embedding_model")
        entrypoints.resolve(settings.embedder, f"{where}.embedder")
    if settings.batch_size <= 0:
        raise ConfigError(f"{where}.batch_size must be > 0")


def _identifier(dotted: str) -> sql.Identifier:
    return sql.Identifier(*dotted.split("."))


def reembed(ctx: ActionContext, settings: Settings, embed: Callable[[list[str]], Any]) -> int:
    assert settings.documents_table
    names = {
        "table": _identifier(settings.documents_table),
        "id": sql.Identifier(settings.id_column),
        "text": sql.Identifier(settings.text_column),
        "embedding": sql.Identifier(settings.embedding_column),
        "model_column": sql.Identifier(settings.model_column),
    }
    select = sql.SQL(query("stale_documents")).format(**names)  # type: ignore[arg-type]
    update = sql.SQL(query("update_document_embedding")).format(**names)  # type: ignore[arg-type]
    done = 0
    while not ctx.cancel.is_set():
        with ctx.transaction() as conn:
            rows = conn.execute(
                select, {"embedding_model": settings.embedding_model, "limit": settings.batch_size}
            ).fetchall()
            if not rows:
                break
            vectors = np.asarray(embed([r[1] for r in rows]), dtype=np.float32)
            if vectors.shape[0] != len(rows):
                raise ActionError(f"embedder returned {vectors.shape[0]} vectors for {len(rows)} texts")
            with conn.cursor() as cur:
                cur.executemany(
                    update,
                    [
                        {"id": r[0], "embedding": v, "embedding_model": settings.embedding_model}
                        for r, v in zip(rows, vectors, strict=True)
                    ],
                )
            done += len(rows)
    if ctx.cancel.is_set():
        raise ActionError(f"cancelled after re-embedding {done} rows (the rest is done on the next try)")
    return done


def reindex(ctx: ActionContext, settings: Settings) -> None:
    assert settings.index
    name = "reindex_index" if settings.concurrently else "reindex_index_blocking"
    statement = sql.SQL(query(name)).format(index=_identifier(settings.index))  # type: ignore[arg-type]
    # REINDEX CONCURRENTLY cannot run inside a transaction, so it cannot be fenced by the
    # event lock; check the claim first. Rebuilding an index twice does no harm.
    with ctx.connection() as conn:
        exists = conn.execute(query("index_exists"), {"index": settings.index}).fetchone()
        if not exists or not exists[0]:
            raise ActionError(f"index {settings.index!r} does not exist", permanent=True)
        held = conn.execute(query("hold_event"), {"event_id": ctx.event.id, "worker": ctx.worker_id})
        if held.fetchone() is None:
            raise ActionError(f"event {ctx.event.id} is no longer held by this worker")
        conn.execute(statement)


def run(ctx: ActionContext, settings: Settings) -> ActionResult:
    event = ctx.event
    output: dict[str, Any] = {"model": event.model}
    done: list[str] = []
    if settings.move_baseline:  # before any work: a forged or stale event changes nothing
        output["baseline_n"] = check_baseline_window(ctx, "embedding")
    if settings.documents_table:
        assert settings.embedder
        embed = entrypoints.resolve(settings.embedder, f"[actions.{ctx.action}].embedder")
        output["reembedded"] = reembed(ctx, settings, embed)
        done.append(f"re-embedded {output['reembedded']} rows of {settings.documents_table}")
    if settings.index:
        reindex(ctx, settings)
        output["reindexed"] = settings.index
        done.append(f"reindexed {settings.index}")
    if settings.move_baseline:
        assert event.window_start is not None and event.window_end is not None  # checked above
        with ctx.transaction() as conn:
            conn.execute(
                query("set_baseline"),
                {
                    "model": event.model,
                    "starts": event.window_start,
                    "ends": event.window_end,
                    "kinds": ["embedding"],
                    "source": f"reindex (event {event.id})",
                },
            )
        output["baseline"] = [event.window_start.isoformat(), event.window_end.isoformat()]
        done.append(f"embedding baseline of {event.model} moved to the event's window")
    return ActionResult(summary="; ".join(done) or "nothing configured", output=output)
