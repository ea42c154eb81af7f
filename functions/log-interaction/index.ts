// POST /functions/v1/log-interaction: one interaction or an array of up to 1,000, each with an
// optional `embedding` and `idempotency_key`. The whole request is validated first and then
// written in ONE transaction: 201 with the ids, or a 4xx and nothing written.
import { authenticate, type Caller } from "../_shared/auth.ts";
import { readJson } from "../_shared/body.ts";
import { asCaller } from "../_shared/db.ts";
import type { TransactionSql } from "../_shared/deps.ts";
import { checkMethod, guarded, HttpError, json } from "../_shared/responses.ts";
import { embedding, type Interaction, interaction, interactionBatch } from "../_shared/validation.ts";

interface Row extends Interaction {
  ord: number;
  id?: number;
  explicit_time?: boolean;
}

export async function handler(req: Request): Promise<Response> {
  const refused = checkMethod(req, ["POST"]);
  if (refused) return refused;
  return await guarded(async () => {
    const caller = await authenticate(req);
    const { rows: raw, single } = interactionBatch(await readJson(req));
    const rows: Row[] = raw.map((r, i) => ({ ...interaction(r, i), ord: i }));
    const vectors = new Map<number, unknown>();
    raw.forEach((r, i) => {
      const e = (r as Record<string, unknown>).embedding;
      if (e !== null && e !== undefined) vectors.set(i, e);
    });
    const ids = rows.length ? await write(caller, rows, vectors) : [];
    return json(201, single ? { id: ids[0], ids } : { ids });
  });
}

async function write(caller: Caller, rows: Row[], vectors: Map<number, unknown>): Promise<number[]> {
  return await asCaller(caller, async (tx) => {
    const checked = await checkEmbeddings(tx, rows, vectors);
    const [{ now, ids }] = await tx<{ now: Date; ids: number[] }[]>`
      SELECT now() AS now, array(
        SELECT nextval(pg_get_serial_sequence('drift.interaction_log', 'id'))
        FROM generate_series(1, ${rows.length}::int)
      ) AS ids`;
    const stamp = now.toISOString();
    rows.forEach((row, i) => {
      row.id = Number(ids[i]);
      row.explicit_time = row.created_at !== null;
      row.created_at ??= stamp;
    });
    // One statement for the batch. ON CONFLICT without a target covers the idempotency key's
    // unique index however it is scoped; a row it skipped is resolved below.
    const inserted = await tx<{ id: number }[]>`
      INSERT INTO drift.interaction_log (id, created_at, model, model_version, prompt, response, is_refusal,
          toxicity, feedback, correct, latency_ms, metadata, idempotency_key)
      SELECT id, created_at, model, model_version, prompt, response, is_refusal, toxicity, feedback, correct,
          latency_ms, metadata, idempotency_key
      FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb) AS r(ord int, id bigint, created_at timestamptz,
          model text, model_version text, prompt text, response text, is_refusal boolean, toxicity real,
          feedback smallint, correct boolean, latency_ms real, metadata jsonb, idempotency_key text)
      ORDER BY ord
      ON CONFLICT DO NOTHING
      RETURNING id`;
    const fresh = new Set(inserted.map((r) => Number(r.id)));
    const result = rows.map((r) => r.id as number);
    if (fresh.size < rows.length) await resolveReplays(tx, caller, rows, fresh, result);

    const embeddings = [...checked].filter(([i]) => fresh.has(rows[i].id as number)).map(([i, vector]) => ({
      model: rows[i].model,
      interaction_id: rows[i].id,
      created_at: rows[i].created_at,
      // pgvector parses the text form: no round trip through jsonb numerics.
      embedding: JSON.stringify(vector),
    }));
    if (embeddings.length) {
      await tx`
        INSERT INTO drift.embeddings_log (model, interaction_id, created_at, embedding)
        SELECT model, interaction_id, created_at, embedding::vector
        FROM jsonb_to_recordset(${tx.json(embeddings as never)}::jsonb)
            AS e(model text, interaction_id bigint, created_at timestamptz, embedding text)`;
    }
    return result;
  });
}

/** Embeddings checked against each model's dimension (drift.models, else the batch's first). */
async function checkEmbeddings(
  tx: TransactionSql,
  rows: Row[],
  vectors: Map<number, unknown>,
): Promise<Map<number, number[]>> {
  const checked = new Map<number, number[]>();
  if (!vectors.size) return checked;
  const models = [...new Set([...vectors.keys()].map((i) => rows[i].model))];
  const known = await tx<{ model: string; embedding_dims: number | null }[]>`
    SELECT model, embedding_dims FROM drift.models WHERE model = ANY(${models}::text[])`;
  const dims = new Map<string, number>();
  for (const k of known) if (k.embedding_dims !== null) dims.set(k.model, k.embedding_dims);
  for (const [i, value] of vectors) {
    const vector = embedding(value, i, dims.get(rows[i].model) ?? null);
    if (!dims.has(rows[i].model)) dims.set(rows[i].model, vector.length);
    checked.set(i, vector);
  }
  return checked;
}

/**
 * Rows the insert skipped carry an idempotency key that was already logged. The caller's own
 * row with the same model, key and payload is a replay: its original id is returned and
 * nothing is written. Anything else (another payload, or a key another client used) is 409.
 */
async function resolveReplays(
  tx: TransactionSql,
  caller: Caller,
  rows: Row[],
  fresh: Set<number>,
  result: number[],
): Promise<void> {
  const skipped = rows.filter((r) => !fresh.has(r.id as number));
  const keyless = skipped.find((r) => r.idempotency_key === null);
  if (keyless) throw new HttpError(409, "row was not written (conflicting id)", undefined, keyless.ord);
  const found = await tx<{ ord: number; id: number | null; same: boolean | null }[]>`
    SELECT r.ord, l.id,
        l.model_version IS NOT DISTINCT FROM r.model_version
        AND l.prompt IS NOT DISTINCT FROM r.prompt
        AND l.response IS NOT DISTINCT FROM r.response
        AND l.toxicity IS NOT DISTINCT FROM r.toxicity
        AND l.latency_ms IS NOT DISTINCT FROM r.latency_ms
        AND l.metadata IS NOT DISTINCT FROM r.metadata
        AND (r.is_refusal IS NULL OR l.is_refusal IS NOT DISTINCT FROM r.is_refusal)
        AND (NOT r.explicit_time OR l.created_at = r.created_at) AS same
    FROM jsonb_to_recordset(${tx.json(skipped as never)}::jsonb) AS r(ord int, model text, model_version text,
        prompt text, response text, is_refusal boolean, toxicity real, latency_ms real, metadata jsonb,
        idempotency_key text, created_at timestamptz, explicit_time boolean)
    LEFT JOIN LATERAL (
        SELECT * FROM drift.interaction_log l
        WHERE l.model = r.model AND l.idempotency_key = r.idempotency_key
          AND l.inserted_by = coalesce(${caller.sub}::text, current_user)
        ORDER BY l.id LIMIT 1
    ) l ON true`;
  for (const f of found) {
    if (f.id === null) {
      throw new HttpError(409, "this key was already used by another client or model", "idempotency_key", f.ord);
    }
    if (!f.same) {
      throw new HttpError(409, "was already logged with a different payload", "idempotency_key", f.ord);
    }
    result[f.ord] = Number(f.id);
  }
}

if (import.meta.main) Deno.serve(handler);
