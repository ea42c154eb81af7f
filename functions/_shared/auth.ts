// Who is calling: `Authorization: Bearer <key>` must be a Supabase JWT (HS256, verified with
// SUPABASE_JWT_SECRET) or, when self-hosted or served locally, exactly the service-role or
// anon key from the environment (compared in constant time).
import { jwtVerify } from "./deps.ts";
import { HttpError } from "./responses.ts";

export type Role = "anon" | "authenticated" | "service_role";

export interface Caller {
  role: Role;
  /** The JWT subject (a user id) when the caller signed in; rows it logs carry it. */
  sub: string | null;
  /** What the functions put in `request.jwt.claims` for the database, as PostgREST does. */
  claims: Record<string, unknown>;
}

const ROLES: ReadonlySet<string> = new Set(["anon", "authenticated", "service_role"]);
const encoder = new TextEncoder();

async function digest(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(value)));
}

/** Constant-time equality: both sides are hashed to 32 bytes, then every byte is compared. */
export async function sameSecret(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([digest(a), digest(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, message, undefined, undefined, { "WWW-Authenticate": 'Bearer realm="driftloop"' });
}

export async function authenticate(req: Request): Promise<Caller> {
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthorized("missing Authorization: Bearer <key> header");
  const token = match[1];

  const serviceKey = Deno.env.get("SUPABASE_SERVICE_ROLE_KEY");
  const anonKey = Deno.env.get("SUPABASE_ANON_KEY");
  // Both comparisons always run, so timing does not tell which key (if any) matched.
  const [isService, isAnon] = await Promise.all([
    serviceKey ? sameSecret(token, serviceKey) : Promise.resolve(false),
    anonKey ? sameSecret(token, anonKey) : Promise.resolve(false),
  ]);
  if (isService) return { role: "service_role", sub: null, claims: { role: "service_role" } };
  if (isAnon) return { role: "anon", sub: null, claims: { role: "anon" } };

  // Supabase's CLI refuses secrets named SUPABASE_*: DRIFTLOOP_JWT_SECRET is the deployable name.
  const secret = Deno.env.get("SUPABASE_JWT_SECRET") || Deno.env.get("DRIFTLOOP_JWT_SECRET");
  if (secret && token.split(".").length === 3) {
    try {
      const { payload } = await jwtVerify(token, encoder.encode(secret), { algorithms: ["HS256"] });
      const role = typeof payload.role === "string" ? payload.role : "";
      if (!ROLES.has(role)) throw unauthorized(`JWT role ${JSON.stringify(role)} is not anon, authenticated or service_role`);
      const sub = typeof payload.sub === "string" && payload.sub ? payload.sub : null;
      if (role === "authenticated" && !sub) throw unauthorized("an authenticated JWT must carry a sub claim");
      return { role: role as Role, sub, claims: payload as Record<string, unknown> };
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw unauthorized(`invalid JWT: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw unauthorized("invalid key");
}

/** 403 unless the caller has one of the roles. */
export function requireRole(caller: Caller, roles: Role[], what: string): void {
  if (!roles.includes(caller.role)) {
    throw new HttpError(403, `${what} needs ${roles.join(" or ")}; this key is ${caller.role}`);
  }
}
