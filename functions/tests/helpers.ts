// Shared by the function tests: keys and JWTs, a request builder, and a direct database
// connection (SUPABASE_DB_URL, a fresh migrated database the Python harness created) to check
// what was, and was not, written.
import { postgres, SignJWT, type Sql } from "../_shared/deps.ts";
import { connectionOptions, NUMBER_TYPES } from "../_shared/db.ts";

export const SERVICE_KEY = "test-service-role-key";
export const ANON_KEY = "test-anon-key";
export const JWT_SECRET = "test-jwt-secret-of-at-least-32-characters!";

Deno.env.set("SUPABASE_SERVICE_ROLE_KEY", SERVICE_KEY);
Deno.env.set("SUPABASE_ANON_KEY", ANON_KEY);
Deno.env.set("SUPABASE_JWT_SECRET", JWT_SECRET);

export async function userJwt(sub: string, role = "authenticated", secret = JWT_SECRET): Promise<string> {
  return await new SignJWT({ role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(secret));
}

export interface CallOptions {
  method?: string;
  key?: string | null;
  body?: unknown;
  raw?: BodyInit;
  query?: string;
  headers?: Record<string, string>;
}

export function request(name: string, options: CallOptions = {}): Request {
  const headers: Record<string, string> = { "Content-Type": "application/json", ...options.headers };
  const key = options.key === undefined ? SERVICE_KEY : options.key;
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  return new Request(`http://localhost/functions/v1/${name}${options.query ?? ""}`, {
    method: options.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
  });
}

export async function call(
  handler: (req: Request) => Promise<Response>,
  name: string,
  options: CallOptions = {},
): Promise<{ status: number; body: Record<string, unknown> & { error?: string } }> {
  const response = await handler(request(name, options));
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

let direct: Sql | null = null;

/** A direct connection (as the database owner) for assertions. */
export function sql(): Sql {
  if (!direct) {
    const url = Deno.env.get("SUPABASE_DB_URL");
    if (!url) throw new Error("SUPABASE_DB_URL must point at a migrated test database");
    const { url: plain, ...options } = connectionOptions(url);
    const settings = { ...options, max: 2, onnotice: () => {}, types: NUMBER_TYPES };
    direct = plain ? postgres(plain as string, settings) : postgres(settings);
  }
  return direct;
}

export async function countRows(model: string): Promise<{ interactions: number; embeddings: number }> {
  const [row] = await sql()<{ interactions: number; embeddings: number }[]>`
    SELECT (SELECT count(*)::int FROM drift.interaction_log WHERE model = ${model}) AS interactions,
           (SELECT count(*)::int FROM drift.embeddings_log WHERE model = ${model}) AS embeddings`;
  return row;
}

export function uniqueModel(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

export function vector(dims: number, seed = 1): number[] {
  const out: number[] = [];
  let x = seed;
  for (let i = 0; i < dims; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(x / 2147483648 - 0.5);
  }
  return out;
}

// Each test file's last test closes the pools, so `deno test` exits without open sockets.
export async function closeAll(): Promise<void> {
  const { closeDb } = await import("../_shared/db.ts");
  await closeDb();
  await direct?.end({ timeout: 5 });
  direct = null;
}

/** Rows of every model whose name starts with `prefix`. */
export async function countPrefix(prefix: string): Promise<{ interactions: number; embeddings: number }> {
  const [row] = await sql()<{ interactions: number; embeddings: number }[]>`
    SELECT (SELECT count(*)::int FROM drift.interaction_log WHERE starts_with(model, ${prefix})) AS interactions,
           (SELECT count(*)::int FROM drift.embeddings_log WHERE starts_with(model, ${prefix})) AS embeddings`;
  return row;
}
