import { assert, assertEquals } from "./assert.ts";
import { handler as status } from "../drift-status/index.ts";
import { handler as log } from "../log-interaction/index.ts";
import { ANON_KEY, call, closeAll, uniqueModel, userJwt, vector } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("GET drift-status: the rows of drift.drift_status, filtered by ?model=", opts, async () => {
  const model = uniqueModel("status");
  const other = uniqueModel("status-other");
  for (const m of [model, other]) {
    const { status: code } = await call(log, "log-interaction", {
      body: [{ model: m, prompt: "q", response: "a", embedding: vector(4) }],
    });
    assertEquals(code, 201);
  }
  const all = await call(status, "drift-status");
  assertEquals(all.status, 200);
  const rows = all.body as unknown as Record<string, unknown>[];
  assert(rows.some((r) => r.model === model) && rows.some((r) => r.model === other));
  const one = await call(status, "drift-status", { query: `?model=${encodeURIComponent(model)}` });
  const mine = one.body as unknown as Record<string, unknown>[];
  assert(mine.length >= 3, JSON.stringify(mine));
  assert(mine.every((r) => r.model === model));
  const metrics = new Set(mine.map((r) => r.metric));
  for (const m of ["centroid_distance", "refusal_rate", "toxicity_rate", "accuracy"]) assert(metrics.has(m), m);
  for (const column of ["kind", "score", "threshold", "p_value", "n_current", "n_baseline", "drifted", "window_start", "window_end"]) {
    assert(column in mine[0], column);
  }
  assertEquals(typeof mine[0].n_current, "number");
});

Deno.test("drift-status: unknown model → [], NUL in the filter → 400, anon → 403, POST → 405, no key → 401", opts, async () => {
  assertEquals((await call(status, "drift-status", { query: "?model=nothing-logged-here" })).body, []);
  const nul = await call(status, "drift-status", { query: "?model=a%00b" });
  assertEquals([nul.status, nul.body.field], [400, "model"]);
  assertEquals((await call(status, "drift-status", { key: ANON_KEY })).status, 403);
  assertEquals((await call(status, "drift-status", { key: await userJwt("carol") })).status, 200);
  assertEquals((await call(status, "drift-status", { method: "POST", body: {} })).status, 405);
  assertEquals((await call(status, "drift-status", { key: null })).status, 401);
});

Deno.test("close pools", opts, closeAll);
