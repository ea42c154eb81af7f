// POST /functions/v1/log-embeddings: {model, embeddings: [[...], ...], created_at?, interaction_ids?}
// → 201 {count}. Embeddings without interactions (documents, or queries logged apart), as the
// SDK's log_embeddings. Validated whole, written in one statement: all rows or none.
import { authenticate } from "../_shared/auth.ts";
import { readJson } from "../_shared/body.ts";
import { asCaller } from "../_shared/db.ts";
import { checkMethod, guarded, json } from "../_shared/responses.ts";
import { embedding, InputError, MAX_NAME_CHARS, text, timestamp, typeName } from "../_shared/validation.ts";

const FIELDS: ReadonlySet<string> = new Set(["model", "embeddings", "created_at", "interaction_ids"]);
export const MAX_EMBEDDINGS = 10_000;

export async function handler(req: Request): Promise<Response> {
  const refused = checkMethod(req, ["POST"]);
  if (refused) return refused;
  return await guarded(async () => {
    const caller = await authenticate(req);
    const body = await readJson(req);
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new InputError(`body must be an object, got ${typeName(body)}`);
    }
    const input = body as Record<string, unknown>;
    const unknown = Object.keys(input).filter((k) => !FIELDS.has(k)).sort();
    if (unknown.length) throw new InputError(`unknown field; allowed: ${[...FIELDS].sort().join(", ")}`, unknown[0].slice(0, 100));
    const model = text(input.model, "model", MAX_NAME_CHARS, undefined, true) as string;
    const vectors = input.embeddings;
    if (!Array.isArray(vectors) || vectors.length === 0) {
      throw new InputError("must be a non-empty list of vectors (rows x dims)", "embeddings");
    }
    if (vectors.length > MAX_EMBEDDINGS) {
      throw new InputError(`has ${vectors.length} rows; the limit is ${MAX_EMBEDDINGS}`, "embeddings");
    }
    const stamps = timestamps(input.created_at, vectors.length);
    const ids = interactionIds(input.interaction_ids, vectors.length);
    const count = await asCaller(caller, async (tx) => {
      const [known] = await tx<{ embedding_dims: number | null }[]>`
        SELECT embedding_dims FROM drift.models WHERE model = ${model}`;
      let dims = known?.embedding_dims ?? null;
      const rows = vectors.map((v, i) => {
        const vector = embedding(v, i, dims);
        dims ??= vector.length;
        return { interaction_id: ids?.[i] ?? null, created_at: stamps[i], embedding: JSON.stringify(vector) };
      });
      const written = await tx`
        INSERT INTO drift.embeddings_log (model, interaction_id, created_at, embedding)
        SELECT ${model}, interaction_id, coalesce(created_at, now()), embedding::vector
        FROM jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
            AS e(interaction_id bigint, created_at timestamptz, embedding text)`;
      return written.count;
    });
    return json(201, { count });
  });
}

function timestamps(value: unknown, count: number): (string | null)[] {
  if (value === null || value === undefined || typeof value === "string") {
    return new Array(count).fill(timestamp(value, "created_at"));
  }
  if (!Array.isArray(value)) throw new InputError(`must be a timestamp or a list of them, got ${typeName(value)}`, "created_at");
  if (value.length !== count) throw new InputError(`has ${value.length} timestamps for ${count} embeddings`, "created_at");
  return value.map((v, i) => timestamp(v, "created_at", i));
}

function interactionIds(value: unknown, count: number): number[] | null {
  if (value === null || value === undefined) return null;
  if (!Array.isArray(value)) throw new InputError(`must be a list of ids, got ${typeName(value)}`, "interaction_ids");
  if (value.length !== count) throw new InputError(`has ${value.length} ids for ${count} embeddings`, "interaction_ids");
  value.forEach((id, i) => {
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1) {
      throw new InputError(`must be a positive integer, got ${JSON.stringify(id)?.slice(0, 40)}`, "interaction_ids", i);
    }
  });
  return value as number[];
}

if (import.meta.main) Deno.serve(handler);
