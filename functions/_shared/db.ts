// Postgres through npm:postgres with SUPABASE_DB_URL. One small pool per isolate; every
// request that writes runs in one transaction, with the caller's JWT claims set for it as
// PostgREST sets them, so the column defaults and row-level security policies see the caller.
import { postgres, type Sql, type TransactionSql } from "./deps.ts";
import type { Caller } from "./auth.ts";

let pool: Sql | null = null;

// int8 (ids, counts) as numbers: ids stay far below 2^53.
export const NUMBER_TYPES = {
  bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
};

// postgres.js takes a URL, but not libpq's `?host=/socket/dir` form the embedded server uses.
export function connectionOptions(url: string): Record<string, unknown> {
  const parsed = new URL(url.replace(/^postgres(ql)?:\/\/([^@/]*@)?\//, (_m, _q, auth) => `postgresql://${auth ?? ""}localhost/`));
  const socketDir = parsed.searchParams.get("host");
  if (!socketDir || !socketDir.startsWith("/")) return { url };
  return {
    host: socketDir,
    port: Number(parsed.searchParams.get("port") ?? (parsed.port || 5432)),
    user: decodeURIComponent(parsed.username) || parsed.searchParams.get("user") || "postgres",
    password: decodeURIComponent(parsed.password) || undefined,
    database: decodeURIComponent(parsed.pathname.slice(1)) || "postgres",
  };
}

export function db(): Sql {
  if (pool) return pool;
  // DRIFTLOOP_DB_URL (a login user granted driftloop_ingest and driftloop_reader) wins over the
  // SUPABASE_DB_URL Supabase gives every function: its secrets may not start with SUPABASE_.
  const url = Deno.env.get("DRIFTLOOP_DB_URL") || Deno.env.get("SUPABASE_DB_URL");
  if (!url) throw new Error("SUPABASE_DB_URL (or DRIFTLOOP_DB_URL) is not set");
  const { url: plain, ...options } = connectionOptions(url);
  const settings = {
    ...options,
    max: Number(Deno.env.get("DRIFTLOOP_DB_POOL_SIZE") ?? 4),
    // Supabase's transaction pooler (port 6543) cannot keep prepared statements.
    prepare: false,
    idle_timeout: 20,
    onnotice: () => {},
    types: NUMBER_TYPES,
  };
  pool = plain ? postgres(plain as string, settings) : postgres(settings);
  return pool;
}

export async function closeDb(): Promise<void> {
  const current = pool;
  pool = null;
  await current?.end({ timeout: 5 });
}

/**
 * One transaction as the caller: request.jwt.claims is set for it (and reset at its end).
 * With `claimsSet`, `work` sets them itself in its first statement (one round trip fewer).
 */
export async function asCaller<T>(
  caller: Caller,
  work: (tx: TransactionSql) => Promise<T>,
  claimsSet = false,
): Promise<T> {
  return await db().begin(async (tx) => {
    if (!claimsSet) await tx`SELECT set_config('request.jwt.claims', ${claimsJson(caller)}, true)`;
    return await work(tx);
  }) as T;
}

export function claimsJson(caller: Caller): string {
  return JSON.stringify(caller.claims);
}
