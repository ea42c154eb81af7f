import { assertEquals, assertMatch } from "./assert.ts";
import { handler as feedback } from "../feedback/index.ts";
import { handler as log } from "../log-interaction/index.ts";
import { ANON_KEY, call, closeAll, sql, uniqueModel, userJwt } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function logOne(key?: string): Promise<number> {
  const { status, body } = await call(log, "log-interaction", { body: { model: uniqueModel("fb"), prompt: "q" }, key });
  assertEquals(status, 201);
  return body.id as number;
}

async function stored(id: number) {
  const [row] = await sql()`SELECT feedback, correct, labelled_at FROM drift.interaction_log WHERE id = ${id}`;
  return row;
}

Deno.test("feedback and a late label update the interaction: 200", opts, async () => {
  const id = await logOne();
  const first = await call(feedback, "feedback", { body: { interaction_id: id, feedback: -1 } });
  assertEquals(first.status, 200);
  assertEquals(first.body, { interaction_id: id, feedback: -1, correct: null });
  const second = await call(feedback, "feedback", { body: { interaction_id: id, correct: true } });
  assertEquals(second.body, { interaction_id: id, feedback: -1, correct: true });
  const row = await stored(id);
  assertEquals([row.feedback, row.correct], [-1, true]);
  assertEquals(row.labelled_at instanceof Date, true);
});

Deno.test("an unknown interaction id is a 404", opts, async () => {
  const { status, body } = await call(feedback, "feedback", { body: { interaction_id: 987654321, correct: false } });
  assertEquals(status, 404);
  assertEquals(body.field, "interaction_id");
});

Deno.test("bad feedback bodies are 400s naming the field", opts, async () => {
  const id = await logOne();
  const cases: [unknown, string | undefined, RegExp][] = [
    [{ feedback: 1 }, "interaction_id", /is required/],
    [{ interaction_id: "1", feedback: 1 }, "interaction_id", /positive integer/],
    [{ interaction_id: 1.5, feedback: 1 }, "interaction_id", /positive integer/],
    [{ interaction_id: -3, feedback: 1 }, "interaction_id", /positive integer/],
    [{ interaction_id: id }, "feedback", /nothing to update/],
    [{ interaction_id: id, feedback: 5 }, "feedback", /-1, 0 or 1/],
    [{ interaction_id: id, correct: "yes" }, "correct", /true, false or null/],
    [{ interaction_id: id, note: "x" }, "note", /unknown field/],
    [[{ interaction_id: id, feedback: 1 }], undefined, /must be an object/],
  ];
  for (const [body, field, message] of cases) {
    const response = await call(feedback, "feedback", { body });
    assertEquals(response.status, 400, JSON.stringify(body));
    assertEquals(response.body.field, field);
    assertMatch(response.body.error as string, message);
  }
  assertEquals((await call(feedback, "feedback", { raw: "{bad json" })).status, 400);
  const row = await stored(id);
  assertEquals([row.feedback, row.correct], [null, null]);
});

Deno.test("a signed-in user labels only its own rows; the anon key labels none", opts, async () => {
  const alice = await userJwt("alice");
  const bob = await userJwt("bob");
  const id = await logOne(alice);
  const byBob = await call(feedback, "feedback", { body: { interaction_id: id, feedback: 1 }, key: bob });
  assertEquals(byBob.status, 404); // not "forbidden": bob may not even learn that the id exists
  const byAnon = await call(feedback, "feedback", { body: { interaction_id: id, feedback: 1 }, key: ANON_KEY });
  assertEquals(byAnon.status, 403);
  assertEquals((await stored(id)).feedback, null);
  const byAlice = await call(feedback, "feedback", { body: { interaction_id: id, feedback: 1 }, key: alice });
  assertEquals(byAlice.status, 200);
  assertEquals((await stored(id)).feedback, 1);
});

Deno.test("feedback: 401 without a key, 405 for GET", opts, async () => {
  const id = await logOne();
  assertEquals((await call(feedback, "feedback", { body: { interaction_id: id, feedback: 1 }, key: null })).status, 401);
  assertEquals((await call(feedback, "feedback", { body: { interaction_id: id, feedback: 1 }, key: "nope" })).status, 401);
  assertEquals((await call(feedback, "feedback", { method: "GET" })).status, 405);
  assertEquals((await stored(id)).feedback, null);
});

Deno.test("close pools", opts, closeAll);
