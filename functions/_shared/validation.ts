// The Python SDK's rules (worker/driftloop/validation.py), so both refuse the same things
// with the same messages; the database enforces them again (CHECK constraints, pgvector,
// the dimension trigger). Every error names the row of the batch and the field.
import { HttpError } from "./responses.ts";

export const MAX_BATCH = 1000;
export const MAX_TEXT_CHARS = 1_000_000;
export const MAX_NAME_CHARS = 200;
export const MAX_METADATA_BYTES = 64 * 1024;
export const MAX_METADATA_DEPTH = 64;
export const MAX_EMBEDDING_DIMS = 16_000;
export const MAX_EMBEDDING_COMPONENT = 1e18;
export const MIN_EMBEDDING_COMPONENT = 1e-18;
const FLOAT32_MAX = 3.4028234663852886e38;

export const INTERACTION_FIELDS: ReadonlySet<string> = new Set([
  "created_at", "model", "model_version", "prompt", "response", "is_refusal", "toxicity", "feedback",
  "correct", "latency_ms", "metadata", "idempotency_key", "embedding",
]);

export interface Interaction {
  created_at: string | null;
  model: string;
  model_version: string | null;
  prompt: string | null;
  response: string | null;
  is_refusal: boolean | null;
  toxicity: number | null;
  feedback: number | null;
  correct: boolean | null;
  latency_ms: number | null;
  metadata: unknown;
  idempotency_key: string | null;
}

export class InputError extends HttpError {
  constructor(message: string, field?: string, row?: number) {
    super(400, message, field, row);
  }
}

export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function codePoints(value: string, limit: number): number {
  // UTF-16 length bounds the code point count from above: count exactly only when it matters.
  if (value.length <= limit) return value.length;
  let n = 0;
  for (const _ of value) n++;
  return n;
}

export function text(
  value: unknown,
  field: string,
  limit: number,
  row?: number,
  required = false,
): string | null {
  if (value === null || value === undefined) {
    if (required) throw new InputError("is required", field, row);
    return null;
  }
  if (typeof value !== "string") throw new InputError(`must be a string, got ${typeName(value)}`, field, row);
  if (required && !value) throw new InputError("must not be empty", field, row);
  if (value.includes("\u0000")) {
    throw new InputError("contains a NUL character, which PostgreSQL text cannot store", field, row);
  }
  if (!value.isWellFormed()) throw new InputError("contains an unpaired surrogate (not valid Unicode)", field, row);
  const length = codePoints(value, limit);
  if (length > limit) throw new InputError(`is ${length} characters long; the limit is ${limit}`, field, row);
  return value;
}

/** An idempotency key: null, or non-empty text (an empty key would silently mean "no key"). */
function key(value: unknown, row: number): string | null {
  const found = text(value, "idempotency_key", MAX_NAME_CHARS, row);
  if (found === "") throw new InputError("must not be empty (omit it, or send null, for no key)", "idempotency_key", row);
  return found;
}

function number(value: unknown, field: string, row: number, lo: number, hi: number | null): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== "number") throw new InputError(`must be a number, got ${typeName(value)}`, field, row);
  // JSON has no NaN or Infinity, but a huge literal such as 1e400 parses to Infinity.
  if (!Number.isFinite(value)) throw new InputError(`must be finite, got ${value}`, field, row);
  if (value < lo || (hi !== null && value > hi)) {
    const bound = hi !== null ? `between ${lo} and ${hi}` : `at least ${lo}`;
    throw new InputError(`must be ${bound}, got ${value}`, field, row);
  }
  if (Math.abs(value) > FLOAT32_MAX) throw new InputError(`${value} does not fit a 4-byte float (real)`, field, row);
  return value;
}

function boolean(value: unknown, field: string, row?: number): boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "boolean") return value;
  throw new InputError(`must be true, false or null, got ${typeName(value)}`, field, row);
}

const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d{1,9})?)?)?(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?$/i;

export function timestamp(value: unknown, field: string, row?: number): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string") throw new InputError(`must be an ISO 8601 string, got ${typeName(value)}`, field, row);
  const match = ISO_TIMESTAMP.exec(value);
  if (!match || Number.isNaN(Date.parse(match[7] ? value : `${value}Z`.replace(" ", "T")))) {
    throw new InputError(`is not an ISO 8601 timestamp: ${JSON.stringify(value.slice(0, 40))}`, field, row);
  }
  if (!match[7]) throw new InputError("must be timezone-aware (naive datetimes are ambiguous)", field, row);
  return value;
}

function checkMetadata(value: unknown, row: number, depth: number): void {
  if (depth > MAX_METADATA_DEPTH) {
    throw new InputError(`is nested deeper than ${MAX_METADATA_DEPTH} levels`, "metadata", row);
  }
  if (typeof value === "string") {
    // jsonb cannot store \u0000 and rejects unpaired surrogates: say so here, not as a 500.
    if (value.includes("\u0000")) {
      throw new InputError("contains a NUL character, which PostgreSQL text cannot store", "metadata", row);
    }
    if (!value.isWellFormed()) throw new InputError("contains an unpaired surrogate (not valid Unicode)", "metadata", row);
  } else if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new InputError("must be JSON without NaN/inf", "metadata", row);
  } else if (Array.isArray(value)) {
    for (const item of value) checkMetadata(item, row, depth + 1);
  } else if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      checkMetadata(key, row, depth + 1);
      checkMetadata(item, row, depth + 1);
    }
  }
}

function metadata(value: unknown, row: number): unknown {
  if (value === null || value === undefined) return null;
  checkMetadata(value, row, 1);
  const serialised = JSON.stringify(value);
  const bytes = new TextEncoder().encode(serialised).byteLength;
  if (bytes > MAX_METADATA_BYTES) {
    throw new InputError(`is ${bytes} bytes as JSON; the limit is ${MAX_METADATA_BYTES}`, "metadata", row);
  }
  return value;
}

function feedbackValue(value: unknown, row?: number): number | null {
  if (value === null || value === undefined) return null;
  if (value !== -1 && value !== 0 && value !== 1) {
    throw new InputError(`must be -1, 0 or 1, got ${JSON.stringify(value)?.slice(0, 40)}`, "feedback", row);
  }
  return value;
}

/** The embedding of one row: finite numbers that fit float32, tiny components flushed to zero. */
export function embedding(value: unknown, row: number, expectedDims: number | null): number[] {
  if (!Array.isArray(value)) throw new InputError(`must be a list of numbers, got ${typeName(value)}`, "embedding", row);
  if (value.length === 0) throw new InputError("must be one vector (1-D), got an empty list", "embedding", row);
  if (value.length > MAX_EMBEDDING_DIMS) {
    throw new InputError(`${value.length} dimensions; pgvector's limit is ${MAX_EMBEDDING_DIMS}`, "embedding", row);
  }
  if (expectedDims !== null && value.length !== expectedDims) {
    throw new InputError(
      `has ${value.length} dimensions but this model's embeddings have ${expectedDims}`,
      "embedding",
      row,
    );
  }
  const out = new Array<number>(value.length);
  for (let i = 0; i < value.length; i++) {
    const x = value[i];
    if (typeof x !== "number") {
      throw new InputError(`must be a list of numbers, got ${typeName(x)} at index ${i}`, "embedding", row);
    }
    const magnitude = Math.abs(x);
    if (!Number.isFinite(x) || magnitude > FLOAT32_MAX) {
      const what = Number.isFinite(x) ? `${x}, beyond float32 range` : String(x);
      throw new InputError(`contains ${what} (NaN and infinity are not allowed)`, "embedding", row);
    }
    if (magnitude > MAX_EMBEDDING_COMPONENT) {
      throw new InputError(
        `has a component of magnitude ${magnitude}; the limit is ${MAX_EMBEDDING_COMPONENT} (its square must fit the rollups' float32 sums)`,
        "embedding",
        row,
      );
    }
    out[i] = magnitude < MIN_EMBEDDING_COMPONENT ? 0 : x;
  }
  return out;
}

export function interaction(raw: unknown, row: number): Interaction {
  if (!isObject(raw)) throw new InputError(`must be an object/dict, got ${typeName(raw)}`, undefined, row);
  const unknown = Object.keys(raw).filter((k) => !INTERACTION_FIELDS.has(k)).sort();
  if (unknown.length) {
    throw new InputError(`unknown field; allowed: ${[...INTERACTION_FIELDS].sort().join(", ")}`, unknown[0].slice(0, 100), row);
  }
  return {
    created_at: timestamp(raw.created_at, "created_at", row),
    model: text(raw.model, "model", MAX_NAME_CHARS, row, true) as string,
    model_version: text(raw.model_version, "model_version", MAX_NAME_CHARS, row),
    prompt: text(raw.prompt, "prompt", MAX_TEXT_CHARS, row),
    response: text(raw.response, "response", MAX_TEXT_CHARS, row),
    is_refusal: boolean(raw.is_refusal, "is_refusal", row),
    toxicity: number(raw.toxicity, "toxicity", row, 0, 1),
    correct: boolean(raw.correct, "correct", row),
    latency_ms: number(raw.latency_ms, "latency_ms", row, 0, null),
    idempotency_key: key(raw.idempotency_key, row),
    feedback: feedbackValue(raw.feedback, row),
    metadata: metadata(raw.metadata, row),
  };
}

/** The body of log-interaction: one object or an array of up to MAX_BATCH of them. */
export function interactionBatch(body: unknown): { rows: unknown[]; single: boolean } {
  if (Array.isArray(body)) {
    if (body.length > MAX_BATCH) {
      throw new HttpError(413, `batch has ${body.length} interactions; the limit is ${MAX_BATCH}`);
    }
    return { rows: body, single: false };
  }
  if (isObject(body)) return { rows: [body], single: true };
  throw new InputError(`body must be an interaction object or an array of them, got ${typeName(body)}`);
}

export interface FeedbackInput {
  interaction_id: number;
  feedback?: number | null;
  correct?: boolean | null;
}

const FEEDBACK_FIELDS: ReadonlySet<string> = new Set(["interaction_id", "feedback", "correct"]);

export function feedbackInput(body: unknown): FeedbackInput {
  if (!isObject(body)) throw new InputError(`body must be an object, got ${typeName(body)}`);
  const unknown = Object.keys(body).filter((k) => !FEEDBACK_FIELDS.has(k)).sort();
  if (unknown.length) throw new InputError("unknown field; allowed: correct, feedback, interaction_id", unknown[0].slice(0, 100));
  const id = body.interaction_id;
  if (id === undefined || id === null) throw new InputError("is required", "interaction_id");
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1) {
    throw new InputError(`must be a positive integer, got ${JSON.stringify(id)?.slice(0, 40)}`, "interaction_id");
  }
  const out: FeedbackInput = { interaction_id: id };
  if ("feedback" in body) out.feedback = feedbackValue(body.feedback);
  if ("correct" in body) out.correct = boolean(body.correct, "correct");
  if (!("feedback" in out) && !("correct" in out)) {
    throw new InputError("nothing to update: give feedback and/or correct", "feedback");
  }
  return out;
}
