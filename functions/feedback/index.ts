// POST /functions/v1/feedback: {interaction_id, feedback?, correct?} → 200. Late feedback and
// labels update the row in place; the rollup triggers follow. A signed-in user may only label
// rows it logged; the service key may label any row; the anon key, shared by every client, none.
import { authenticate, requireRole } from "../_shared/auth.ts";
import { readJson } from "../_shared/body.ts";
import { asCaller } from "../_shared/db.ts";
import { checkMethod, guarded, HttpError, json } from "../_shared/responses.ts";
import { feedbackInput } from "../_shared/validation.ts";

export async function handler(req: Request): Promise<Response> {
  const refused = checkMethod(req, ["POST"]);
  if (refused) return refused;
  return await guarded(async () => {
    const caller = await authenticate(req);
    requireRole(caller, ["authenticated", "service_role"], "feedback");
    const input = feedbackInput(await readJson(req));
    const hasFeedback = "feedback" in input;
    const hasCorrect = "correct" in input;
    // The id's partition step first: by id alone the update would probe every partition's key;
    // with the step's created_at range it touches one partition (db/repeatable/36_id_ranges.sql).
    const rows = await asCaller(caller, async (tx) => {
      const steps = await tx<{ starts: Date; ends: Date }[]>`
        SELECT starts, ends FROM drift.interaction_steps(${input.interaction_id})`;
      for (const step of steps) {
        const updated = await tx<{ id: number; feedback: number | null; correct: boolean | null }[]>`
          UPDATE drift.interaction_log
          SET feedback = CASE WHEN ${hasFeedback} THEN ${input.feedback ?? null}::smallint ELSE feedback END,
              correct = CASE WHEN ${hasCorrect} THEN ${input.correct ?? null}::boolean ELSE correct END
          WHERE id = ${input.interaction_id}
            AND created_at >= ${step.starts} AND created_at < ${step.ends}
            AND (${caller.role === "service_role"} OR inserted_by = ${caller.sub}::text)
          RETURNING id, feedback, correct`;
        if (updated.length) return updated;
      }
      return [];
    });
    if (!rows.length) {
      throw new HttpError(404, `no interaction with id ${input.interaction_id}`, "interaction_id");
    }
    return json(200, { interaction_id: rows[0].id, feedback: rows[0].feedback, correct: rows[0].correct });
  });
}

if (import.meta.main) Deno.serve(handler);
