// POST /functions/v1/log-interaction: one interaction or an array of up to 1,000, each with an
// optional `embedding` and `idempotency_key`. The whole request is validated first and then
// written in ONE transaction: 201 with the ids, or a 4xx and nothing written.
import { authenticate, type Caller } from "../_shared/auth.ts";
import { readJson } from "../_shared/body.ts";
import { asCaller, claimsJson } from "../_shared/db.ts";
import type { TransactionSql } from "../_shared/deps.ts";
import { checkMethod, guarded, HttpError, json } from "../_shared/responses.ts";
import { embedding, type Interaction, interaction, interactionBatch } from "../_shared/validation.ts";

interface Row extends Interaction {
  ord: number;
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
    const checked = await checkEmbeddings(tx, caller, rows, vectors);
    // pgvector parses the vectors' text form: no detour through jsonb numerics.
    const input = rows.map((row, i) => {
      const vector = checked.get(i);
      return vector ? { ...row, embedding: JSON.stringify(vector) } : row;
    });
    // ONE statement writes the batch: ids allocated in order, the interactions (ON CONFLICT
    // without a target covers the idempotency key's unique index however it is scoped), and
    // the embeddings of the rows actually inserted, linked by interaction_id. Round trips are
    // what a gateway pays for, so there are four: BEGIN, claims + dimensions, this, COMMIT.
    const written = await tx<{ ord: number; id: number; fresh: boolean }[]>`
      WITH input AS MATERIALIZED (
          SELECT * FROM jsonb_to_recordset(${tx.json(input as never)}::jsonb) AS r(ord int, created_at timestamptz,
              model text, model_version text, prompt text, response text, is_refusal boolean, toxicity real,
              feedback smallint, correct boolean, latency_ms real, metadata jsonb, idempotency_key text,
              embedding text)
      ), ids AS MATERIALIZED (
          SELECT ord, nextval(pg_get_serial_sequence('drift.interaction_log', 'id')) AS id,
              coalesce(created_at, now()) AS at
          FROM input ORDER BY ord
      ), ins AS (
          INSERT INTO drift.interaction_log (id, created_at, model, model_version, prompt, response, is_refusal,
              toxicity, feedback, correct, latency_ms, metadata, idempotency_key)
          SELECT ids.id, ids.at, i.model, i.model_version, i.prompt, i.response, i.is_refusal, i.toxicity,
              i.feedback, i.correct, i.latency_ms, i.metadata, i.idempotency_key
          FROM input i JOIN ids USING (ord)
          ORDER BY ord
          ON CONFLICT DO NOTHING
          RETURNING id
      ), emb AS (
          INSERT INTO drift.embeddings_log (model, interaction_id, created_at, embedding)
          SELECT i.model, ids.id, ids.at, i.embedding::vector
          FROM input i JOIN ids USING (ord) JOIN ins ON ins.id = ids.id
          WHERE i.embedding IS NOT NULL
          ORDER BY ord
          RETURNING 1
      )
      SELECT ids.ord, ids.id, ins.id IS NOT NULL AS fresh, (SELECT count(*) FROM emb) AS embeddings
      FROM ids LEFT JOIN ins USING (id)
      ORDER BY ids.ord`.catch((error) => {
      throw keyConflict(error, rows) ?? error;
    });
    const result = written.map((w) => Number(w.id));
    const skipped = written.filter((w) => !w.fresh).map((w) => rows[w.ord]);
    if (skipped.length) await resolveReplays(tx, caller, skipped, result);
    return result;
  }, true);
}

/** Embeddings checked against each model's dimension (drift.models, else the batch's first). */
async function checkEmbeddings(
  tx: TransactionSql,
  caller: Caller,
  rows: Row[],
  vectors: Map<number, unknown>,
): Promise<Map<number, number[]>> {
  const checked = new Map<number, number[]>();
  const models = [...new Set([...vectors.keys()].map((i) => rows[i].model))];
  // The caller's claims are set by this same statement (asCaller's claimsSet).
  const [{ known }] = await tx<{ known: { model: string; embedding_dims: number | null }[] | null }[]>`
    SELECT set_config('request.jwt.claims', ${claimsJson(caller)}, true),
        (SELECT json_agg(m) FROM (SELECT model, embedding_dims FROM drift.models
         WHERE model = ANY(${models}::text[])) m) AS known`;
  const dims = new Map<string, number>();
  for (const k of known ?? []) if (k.embedding_dims !== null) dims.set(k.model, k.embedding_dims);
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
  skipped: Row[],
  result: number[],
): Promise<void> {
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
        AND (r.created_at IS NULL OR l.created_at = r.created_at) AS same
    FROM jsonb_to_recordset(${tx.json(skipped as never)}::jsonb) AS r(ord int, model text, model_version text,
        prompt text, response text, is_refusal boolean, toxicity real, latency_ms real, metadata jsonb,
        idempotency_key text, created_at timestamptz)
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

/**
 * The log's dedup trigger refuses a key replayed with another payload (unique_violation on
 * drift.idempotency_keys); its message quotes the key and model, which name the row.
 */
function keyConflict(error: unknown, rows: Row[]): HttpError | null {
  const e = error as { code?: string; constraint_name?: string; message?: string };
  if (e?.code !== "23505" || e.constraint_name !== "idempotency_keys_pkey") return null;
  const quoted = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const row = rows.find((r) =>
    r.idempotency_key !== null && e.message?.includes(`key ${quoted(r.idempotency_key)} of model ${quoted(r.model)}`)
  );
  return new HttpError(409, "was already logged with a different payload", "idempotency_key", row?.ord);
}

if (import.meta.main) Deno.serve(handler);
