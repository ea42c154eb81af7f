// GET /functions/v1/drift-status[?model=NAME]: the rows of drift.drift_status as JSON, one per
// model and metric. Drift figures are aggregates, but still not for the anon key every
// browser holds: a signed-in user or the service key.
import { authenticate, requireRole } from "../_shared/auth.ts";
import { db } from "../_shared/db.ts";
import { checkMethod, guarded, json } from "../_shared/responses.ts";
import { MAX_NAME_CHARS, text } from "../_shared/validation.ts";

export async function handler(req: Request): Promise<Response> {
  const refused = checkMethod(req, ["GET"]);
  if (refused) return refused;
  return await guarded(async () => {
    const caller = await authenticate(req);
    requireRole(caller, ["authenticated", "service_role"], "drift-status");
    const model = text(new URL(req.url).searchParams.get("model"), "model", MAX_NAME_CHARS);
    const rows = await db()`
      SELECT * FROM drift.drift_status
      WHERE ${model}::text IS NULL OR model = ${model}::text
      ORDER BY model, kind, metric`;
    return json(200, rows);
  });
}

if (import.meta.main) Deno.serve(handler);
