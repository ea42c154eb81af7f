import { assert, assertEquals, assertMatch } from "./assert.ts";
import { handler } from "../log-interaction/index.ts";
import { ANON_KEY, call, closeAll, countRows, sql, uniqueModel, userJwt, vector } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const post = (body: unknown, key?: string | null) => call(handler, "log-interaction", { body, key });

Deno.test("one interaction object: 201 with its id, the row as sent", opts, async () => {
  const model = uniqueModel("one");
  const { status, body } = await post({
    model,
    prompt: "How do I reset my password?",
    response: "Open Settings, then Security.",
    toxicity: 0.01,
    latency_ms: 120.5,
    metadata: { locale: "en-GB", tags: ["auth"] },
    embedding: vector(8),
  });
  assertEquals(status, 201);
  assertEquals(body.ids, [body.id]);
  const [row] = await sql()`SELECT * FROM drift.interaction_log WHERE id = ${body.id as number}`;
  assertEquals(row.model, model);
  assertEquals(row.prompt, "How do I reset my password?");
  assertEquals(row.metadata, { locale: "en-GB", tags: ["auth"] });
  assertEquals(row.is_refusal, false); // filled from the refusal patterns
  const [emb] = await sql()`SELECT interaction_id, embedding::text AS e FROM drift.embeddings_log WHERE model = ${model}`;
  assertEquals(emb.interaction_id, body.id);
  assertEquals(JSON.parse(emb.e as string).length, 8);
});

Deno.test("a batch: ids in order, embeddings linked by interaction_id", opts, async () => {
  const model = uniqueModel("batch");
  const rows = Array.from({ length: 250 }, (_, i) => ({
    model,
    prompt: `question ${i}`,
    response: i % 10 === 0 ? "I'm sorry, but I can't help with that." : `answer ${i}`,
    embedding: i % 2 === 0 ? vector(16, i + 1) : undefined,
  }));
  const { status, body } = await post(rows);
  assertEquals(status, 201);
  const ids = body.ids as number[];
  assertEquals(ids.length, 250);
  assertEquals([...ids].sort((a, b) => a - b), ids);
  const stored = await sql()<{ id: number; prompt: string; is_refusal: boolean }[]>`
    SELECT id, prompt, is_refusal FROM drift.interaction_log WHERE id = ANY(${ids}) ORDER BY id`;
  assertEquals(stored.map((r) => r.prompt), rows.map((r) => r.prompt));
  assertEquals(stored.filter((r) => r.is_refusal).length, 25);
  const links = await sql()<{ interaction_id: number }[]>`
    SELECT interaction_id FROM drift.embeddings_log WHERE model = ${model} ORDER BY interaction_id`;
  assertEquals(links.map((l) => l.interaction_id), ids.filter((_, i) => i % 2 === 0));
});

Deno.test("an idempotent retry returns the same ids and writes nothing twice", opts, async () => {
  const model = uniqueModel("idem");
  const batch = [0, 1, 2].map((i) => ({ model, prompt: `p${i}`, idempotency_key: `${model}-k${i}`, embedding: vector(4, i + 1) }));
  const first = await post(batch);
  const second = await post(batch);
  assertEquals(first.status, 201);
  assertEquals(second.status, 201);
  assertEquals(second.body.ids, first.body.ids);
  assertEquals(await countRows(model), { interactions: 3, embeddings: 3 });
  // A retry that adds a row: the old ones are replays, the new one is written.
  const third = await post([...batch, { model, prompt: "p3", idempotency_key: `${model}-k3` }]);
  assertEquals((third.body.ids as number[]).slice(0, 3), first.body.ids);
  assertEquals(await countRows(model), { interactions: 4, embeddings: 3 });
});

Deno.test("the same key with another payload is a 409, and the batch is not written", opts, async () => {
  const model = uniqueModel("idem-conflict");
  await post({ model, prompt: "original", idempotency_key: `${model}-k` });
  const { status, body } = await post([{ model, prompt: "fresh" }, { model, prompt: "changed", idempotency_key: `${model}-k` }]);
  assertEquals(status, 409);
  assertEquals(body.field, "idempotency_key");
  assertEquals(body.row, 1);
  assertEquals((await countRows(model)).interactions, 1);
});

Deno.test("malformed JSON is a 400 and writes nothing", opts, async () => {
  for (const raw of ['{"model": "m"', "[1, 2,", "{'model': 'm'}", '{"model": NaN}', "", "\xff\xfe"]) {
    const { status, body } = await call(handler, "log-interaction", { raw });
    assertEquals(status, 400, raw);
    assert(typeof body.error === "string" && body.error.length > 0);
  }
});

Deno.test("wrong types and missing fields name the row and the field", opts, async () => {
  const model = uniqueModel("types");
  const cases: [unknown, string, RegExp][] = [
    [{ prompt: "no model" }, "model", /is required/],
    [{ model: "" }, "model", /must not be empty/],
    [{ model: 42 }, "model", /must be a string, got number/],
    [{ model, toxicity: "high" }, "toxicity", /must be a number, got string/],
    [{ model, toxicity: 1.5 }, "toxicity", /between 0 and 1/],
    [{ model, is_refusal: "yes" }, "is_refusal", /true, false or null/],
    [{ model, feedback: 2 }, "feedback", /-1, 0 or 1/],
    [{ model, feedback: true }, "feedback", /-1, 0 or 1/],
    [{ model, latency_ms: -1 }, "latency_ms", /at least 0/],
    [{ model, latency_ms: 1e300 }, "latency_ms", /4-byte float/],
    [{ model, created_at: "yesterday" }, "created_at", /ISO 8601/],
    [{ model, created_at: "2024-05-01T10:00:00" }, "created_at", /timezone-aware/],
    [{ model, metadata: { k: "a\u0000b" } }, "metadata", /NUL/],
    [{ model, prompt: "a\u0000b" }, "prompt", /NUL/],
    [{ model, prompt: "\ud800" }, "prompt", /surrogate/],
    [{ model, embedding: "[1,2]" }, "embedding", /list of numbers/],
    [{ model, embedding: [1, "2"] }, "embedding", /list of numbers/],
    [{ model, embedding: [] }, "embedding", /empty/],
    [{ model, embedding: [1e19] }, "embedding", /magnitude/],
    [{ model, colour: "blue" }, "colour", /unknown field/],
  ];
  for (const [row, field, message] of cases) {
    const { status, body } = await post([{ model, prompt: "fine" }, row]);
    assertEquals(status, 400, JSON.stringify(row));
    assertEquals(body.field, field, JSON.stringify(row));
    assertEquals(body.row, 1);
    assertMatch(body.error as string, message);
    assertMatch(body.error as string, new RegExp(`^row 1, field '${field}'`));
  }
  assertEquals((await countRows(model)).interactions, 0);
});

Deno.test("NaN or infinity in an embedding is refused: a JSON literal, or a number that overflows", opts, async () => {
  const model = uniqueModel("nan");
  const nan = await call(handler, "log-interaction", { raw: `{"model": "${model}", "embedding": [1, NaN]}` });
  assertEquals(nan.status, 400);
  assertMatch(nan.body.error as string, /malformed JSON/);
  const inf = await call(handler, "log-interaction", { raw: `{"model": "${model}", "embedding": [1, 1e400]}` });
  assertEquals(inf.status, 400);
  assertEquals(inf.body.field, "embedding");
  assertMatch(inf.body.error as string, /Infinity \(NaN and infinity are not allowed\)/);
  const f32 = await post({ model, embedding: [1, 1e39] });
  assertMatch(f32.body.error as string, /beyond float32 range/);
  assertEquals(await countRows(model), { interactions: 0, embeddings: 0 });
});

Deno.test("a wrong dimension is a 400 against the model's registered dimension and within a batch", opts, async () => {
  const model = uniqueModel("dims");
  assertEquals((await post({ model, embedding: vector(8) })).status, 201);
  const later = await post([{ model, embedding: vector(8) }, { model, embedding: vector(7) }]);
  assertEquals(later.status, 400);
  assertEquals(later.body.row, 1);
  assertMatch(later.body.error as string, /has 7 dimensions but this model's embeddings have 8/);
  const fresh = uniqueModel("dims-new");
  const mixed = await post([{ model: fresh, embedding: vector(3) }, { model: fresh, embedding: vector(5) }]);
  assertEquals(mixed.status, 400);
  assertEquals(mixed.body.row, 1);
  assertEquals(await countRows(model), { interactions: 1, embeddings: 1 });
  assertEquals(await countRows(fresh), { interactions: 0, embeddings: 0 });
});

Deno.test("a 10 MB body is a 413, by Content-Length and by the bytes actually streamed", opts, async () => {
  const model = uniqueModel("big");
  const big = JSON.stringify({ model, prompt: "x".repeat(10 * 1024 * 1024) });
  const declared = await call(handler, "log-interaction", { raw: big });
  assertEquals(declared.status, 413);
  assertMatch(declared.body.error as string, /exceeds \d+ bytes/);
  // A chunked body has no Content-Length: the reader counts what arrives and stops.
  const bytes = new TextEncoder().encode(big);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 65536) controller.enqueue(bytes.subarray(i, i + 65536));
      controller.close();
    },
  });
  const chunked = await call(handler, "log-interaction", { raw: stream });
  assertEquals(chunked.status, 413);
  const tooMany = await post(Array.from({ length: 1001 }, () => ({ model })));
  assertEquals(tooMany.status, 413);
  assertMatch(tooMany.body.error as string, /1001 interactions; the limit is 1000/);
  assertEquals((await countRows(model)).interactions, 0);
});

Deno.test("SQL-injection strings are stored verbatim and harmless", opts, async () => {
  const model = uniqueModel("inject'); DROP TABLE drift.interaction_log; --");
  const hostile = [
    "'; DROP TABLE drift.interaction_log; --",
    "\" OR 1=1 --",
    "$$; SELECT pg_sleep(10); $$",
    "1); DELETE FROM drift.settings; --",
    "\\x00\\'\\\\",
    "%s %(id)s ${model} :name ?",
  ];
  const { status, body } = await post(hostile.map((prompt) => ({ model, prompt, response: prompt, metadata: { [prompt]: prompt } })));
  assertEquals(status, 201);
  const stored = await sql()<{ prompt: string; response: string; metadata: Record<string, string> }[]>`
    SELECT prompt, response, metadata FROM drift.interaction_log WHERE id = ANY(${body.ids as number[]}) ORDER BY id`;
  assertEquals(stored.map((r) => r.prompt), hostile);
  assertEquals(stored.map((r) => r.response), hostile);
  assertEquals(stored.map((r) => r.metadata[r.prompt]), hostile);
  const [{ settings }] = await sql()`SELECT count(*)::int AS settings FROM drift.settings`;
  assert((settings as number) > 5);
});

Deno.test("without a valid key: 401, nothing written", opts, async () => {
  const model = uniqueModel("auth");
  for (const key of [null, "", "wrong-key", await userJwt("u1", "authenticated", "another-secret-another-secret-12345"), "a.b.c"]) {
    const { status, body } = await call(handler, "log-interaction", { body: { model }, key });
    assertEquals(status, 401, String(key));
    assert(typeof body.error === "string");
  }
  const noBearer = await call(handler, "log-interaction", { body: { model }, key: null, headers: { Authorization: "Basic abc" } });
  assertEquals(noBearer.status, 401);
  assertEquals((await countRows(model)).interactions, 0);
  // The anon key and a user's JWT may log.
  assertEquals((await post({ model }, ANON_KEY)).status, 201);
  assertEquals((await post({ model }, await userJwt("user-1"))).status, 201);
  const owners = await sql()`SELECT inserted_by FROM drift.interaction_log WHERE model = ${model} ORDER BY id`;
  assertEquals(owners[1].inserted_by, "user-1");
});

Deno.test("the wrong method is a 405 with Allow", opts, async () => {
  for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
    const response = await handler(new Request("http://localhost/functions/v1/log-interaction", { method }));
    assertEquals(response.status, 405);
    assertMatch(response.headers.get("allow") ?? "", /POST/);
    await response.body?.cancel();
  }
  const preflight = await handler(new Request("http://localhost/functions/v1/log-interaction", { method: "OPTIONS" }));
  assertEquals(preflight.status, 200);
  await preflight.body?.cancel();
});

Deno.test("close pools", opts, closeAll);
