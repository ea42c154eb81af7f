import { assertEquals, assertMatch } from "./assert.ts";
import { handler } from "../log-embeddings/index.ts";
import { call, closeAll, countRows, sql, uniqueModel, vector } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("log-embeddings: a matrix for a model, 201 with the count; timestamps and links kept", opts, async () => {
  const model = uniqueModel("emb");
  const embeddings = [vector(6, 1), vector(6, 2), vector(6, 3)];
  const at = ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00+00:00"];
  const { status, body } = await call(handler, "log-embeddings", { body: { model, embeddings, created_at: at, interaction_ids: [7, 8, 9] } });
  assertEquals([status, body.count], [201, 3]);
  const rows = await sql()`SELECT interaction_id, created_at FROM drift.embeddings_log WHERE model = ${model} ORDER BY created_at`;
  assertEquals(rows.map((r) => r.interaction_id), [7, 8, 9]);
  assertEquals((rows[0].created_at as Date).toISOString(), "2026-01-01T00:00:00.000Z");
});

Deno.test("log-embeddings: bad input is a 400 naming the field and row; nothing written", opts, async () => {
  const model = uniqueModel("emb-bad");
  await call(handler, "log-embeddings", { body: { model, embeddings: [vector(4)] } });
  const cases: [unknown, string, RegExp][] = [
    [{ embeddings: [vector(4)] }, "model", /is required/],
    [{ model, embeddings: [] }, "embeddings", /non-empty/],
    [{ model, embeddings: [vector(4), vector(5)] }, "embedding", /has 5 dimensions but this model's embeddings have 4/],
    [{ model, embeddings: [vector(4), [1, 2, 3, 1e39]] }, "embedding", /float32/],
    [{ model, embeddings: [vector(4)], created_at: "2026-01-01T00:00:00" }, "created_at", /timezone-aware/],
    [{ model, embeddings: [vector(4)], created_at: ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"] }, "created_at", /2 timestamps for 1/],
    [{ model, embeddings: [vector(4)], interaction_ids: ["1"] }, "interaction_ids", /positive integer/],
    [{ model, embeddings: [vector(4)], extra: 1 }, "extra", /unknown field/],
  ];
  for (const [body, field, message] of cases) {
    const response = await call(handler, "log-embeddings", { body });
    assertEquals(response.status, 400, JSON.stringify(body).slice(0, 80));
    assertEquals(response.body.field, field);
    assertMatch(response.body.error as string, message);
  }
  assertEquals((await countRows(model)).embeddings, 1);
  assertEquals((await call(handler, "log-embeddings", { body: { model, embeddings: [vector(4)] }, key: "bad" })).status, 401);
  assertEquals((await call(handler, "log-embeddings", { method: "GET" })).status, 405);
});

Deno.test("close pools", opts, closeAll);
