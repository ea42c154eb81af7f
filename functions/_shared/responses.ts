// JSON responses and the one error type handlers throw: every refusal is a clear 4xx whose
// body names the field (and the row of a batch) at fault.

export const CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type",
  "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
};

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly row?: number,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  /** The message as the Python SDK's InputError prints it: "row 3, field 'model': is required". */
  get text(): string {
    const where: string[] = [];
    if (this.row !== undefined) where.push(`row ${this.row}`);
    if (this.field !== undefined) where.push(`field '${this.field}'`);
    return where.length ? `${where.join(", ")}: ${this.message}` : this.message;
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...CORS_HEADERS, "Content-Type": "application/json", ...headers },
  });
}

export function errorResponse(error: HttpError): Response {
  const body: Record<string, unknown> = { error: error.text };
  if (error.field !== undefined) body.field = error.field;
  if (error.row !== undefined) body.row = error.row;
  return json(error.status, body, error.headers);
}

/** 405 unless the method is one of `allowed`; answers CORS preflights (OPTIONS). */
export function checkMethod(req: Request, allowed: string[]): Response | null {
  if (req.method === "OPTIONS") return new Response("ok", { headers: CORS_HEADERS });
  if (!allowed.includes(req.method)) {
    return errorResponse(
      new HttpError(405, `method ${req.method} not allowed; use ${allowed.join(" or ")}`, undefined, undefined, {
        Allow: [...allowed, "OPTIONS"].join(", "),
      }),
    );
  }
  return null;
}

// Postgres errors a client caused (bad values that slipped past validation, a conflicting
// idempotency key) become 4xx with Postgres' own message; anything else is a 500 with no
// internals in the body, logged for the operator.
export function fromDatabaseError(error: unknown): HttpError | null {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string") return null;
  const message = String((error as { message?: unknown }).message ?? "database error");
  if (code === "23505") return new HttpError(409, message);
  if (code.startsWith("22") || code.startsWith("23")) return new HttpError(400, message);
  return null;
}

/** Runs a handler body: HttpError → its 4xx, a client-caused database error → 4xx, else 500. */
export async function guarded(run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof HttpError) return errorResponse(error);
    const mapped = fromDatabaseError(error);
    if (mapped) return errorResponse(mapped);
    console.error("unexpected error", error);
    return json(500, { error: "internal error" });
  }
}
