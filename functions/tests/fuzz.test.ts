// Hostile JSON against the served router over real HTTP: deep nesting, huge numbers, unicode
// edge cases, NUL bytes, 10 MB strings, wrong types, broken bodies. Every case must get a
// clear answer (201 for what is in fact valid, else a 4xx whose body names the problem),
// never a 5xx; the server stays up; and a refused batch leaves no row behind.
import { assert, assertEquals } from "./assert.ts";
import { route } from "../main.ts";
import { closeAll, countPrefix, SERVICE_KEY, uniqueModel } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const FIELDS = [
  "model", "model_version", "prompt", "response", "is_refusal", "toxicity", "feedback", "correct", "latency_ms",
  "metadata", "idempotency_key", "created_at", "embedding",
];
const TEN_MB = "x".repeat(10 * 1024 * 1024);

function nested(depth: number, leaf: unknown = 1, kind: "array" | "object" = "array"): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = kind === "array" ? [value] : { k: value };
  return value;
}

// Values for any field: wrong types, edge numbers, hostile and edge-case strings.
const HOSTILE: unknown[] = [
  null, true, false, 0, -0, 1, -1, 0.5, 2, -1e-320, 1e308, -1e308, 2 ** 53 + 1, 1.7976931348623157e308,
  "", " ", "NaN", "Infinity", "-1", "true", "null", "\u0000", "a\u0000b", "\ud800", "\udfff", "x\ud83d",
  "\ufeffBOM", "\u202eRTL override", "emoji 😀🏳️‍🌈", "e\u0301 combining", "\u2028\u2029", "\\u0000 escaped text",
  "🀀".repeat(100), "a".repeat(201), "'; DROP TABLE drift.interaction_log; --", "2024-13-45T99:99:99Z",
  "2024-05-01T10:00:00+14:00", "0000-01-01T00:00:00Z", [], [1, 2, 3], [null], ["a"], [[1]], {}, { a: 1 },
  { "\u0000": 1 }, nested(200), nested(200, 1, "object"), nested(5, "\u0000", "object"), [1e39], [1e19, 1],
  Array.from({ length: 16001 }, () => 0.1), [Number.MIN_VALUE], [-0, 0],
];

// Bodies that are not JSON, or not the right shape, sent as raw text.
const RAW_BODIES: string[] = [
  "", " ", "{", "}", "[", "]", "{}", "[]", "null", "true", "42", '"text"', "[1,2,3]", "[[]]", "[null]",
  '{"model": NaN}', '{"model": Infinity}', '{"model": "m",}', "{'model': 'm'}", '{"model": "m"} trailing',
  '{"model": "\\ud800"}', '{"model": "\\u0000"}', '{"model": 1e999999}', '{"toxicity": -1e999999, "model": "m"}',
  "[".repeat(100_000) + "]".repeat(100_000), '{"a":'.repeat(50_000) + "1" + "}".repeat(50_000),
  '{"model": "m", "model": 1}', "\u0000", "\xff\xfe\xfd", '{"model": "m", "__proto__": {"x": 1}}',
  '{"model": "m", "constructor": {"prototype": {}}}', JSON.stringify({ model: "m", prompt: TEN_MB }),
  JSON.stringify([{ model: "m" }, { model: "m", response: TEN_MB }]),
];

function* cases(model: string): Generator<{ name: string; body: string; rows: number }> {
  for (const field of FIELDS) {
    for (const value of HOSTILE) {
      const row: Record<string, unknown> = { model, prompt: "fine", [field]: value };
      if (field === "model" && typeof value === "string") row.model = `${model}${value}`;
      // The hostile row sits between two valid ones: a refusal must drop all three.
      const batch = [{ model, prompt: "before" }, row, { model, prompt: "after" }];
      yield { name: `${field}=${JSON.stringify(value)?.slice(0, 40)}`, body: JSON.stringify(batch), rows: 3 };
    }
  }
  yield { name: "prompt=10MB", body: JSON.stringify({ model, prompt: TEN_MB }), rows: 1 };
  yield { name: "metadata=10MB", body: JSON.stringify({ model, metadata: { big: TEN_MB } }), rows: 1 };
  yield { name: "prompt=5MB", body: JSON.stringify({ model, prompt: TEN_MB.slice(0, 5 * 1024 * 1024) }), rows: 1 };
  for (const raw of RAW_BODIES) yield { name: `raw ${JSON.stringify(raw.slice(0, 30))}`, body: raw, rows: 0 };
}

Deno.test("fuzz: every hostile body gets a clear 201 or 4xx, the server stays up, nothing partial is written", opts, async () => {
  const model = uniqueModel("fuzz");
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, route);
  const url = `http://127.0.0.1:${server.addr.port}/functions/v1/log-interaction`;
  const tally = new Map<number, number>();
  let tried = 0;
  try {
    for (const c of cases(model)) {
      tried++;
      const before = await countPrefix(model);
      const response = await fetch(url, {
        method: "POST",
        headers: { Authorization: `Bearer ${SERVICE_KEY}`, "Content-Type": "application/json" },
        body: c.body,
      });
      const text = await response.text();
      tally.set(response.status, (tally.get(response.status) ?? 0) + 1);
      assert(response.status === 201 || (response.status >= 400 && response.status < 500), `${c.name}: ${response.status} ${text.slice(0, 300)}`);
      const body = JSON.parse(text);
      const after = await countPrefix(model);
      if (response.status === 201) {
        assertEquals((body.ids as number[]).length, c.rows, c.name);
        assertEquals(after.interactions - before.interactions, c.rows, c.name);
      } else {
        assert(typeof body.error === "string" && body.error.length > 0, `${c.name}: no error message`);
        assertEquals(after, before, `${c.name}: a refused request wrote rows`);
      }
    }
    // Still serving after all of it.
    const ok = await fetch(url, {
      method: "POST",
      headers: { Authorization: `Bearer ${SERVICE_KEY}` },
      body: JSON.stringify({ model, prompt: "still up" }),
    });
    assertEquals(ok.status, 201);
    await ok.body?.cancel();
  } finally {
    await server.shutdown();
  }
  const summary = Object.fromEntries([...tally].sort(([a], [b]) => a - b));
  console.log(`FUZZ_CASES ${tried} ${JSON.stringify(summary)}`);
  assert(tried > 700, `only ${tried} cases`);
});

Deno.test("router: /functions/v1/<name> dispatches, anything else is a 404", opts, async () => {
  const bad = await route(new Request("http://localhost/functions/v1/nope", { method: "POST" }));
  assertEquals(bad.status, 404);
  await bad.body?.cancel();
  const root = await route(new Request("http://localhost/", { method: "GET" }));
  assertEquals(root.status, 404);
  await root.body?.cancel();
  const status = await route(new Request("http://localhost/functions/v1/drift-status?model=x", {
    headers: { Authorization: `Bearer ${SERVICE_KEY}` },
  }));
  assertEquals(status.status, 200);
  await status.body?.cancel();
});

Deno.test("close pools", opts, closeAll);
