// Local serving (`driftloop functions serve`): every function under /functions/v1/<name>, the
// routes Supabase gives them, dispatched to each function's exported handler in one process.
import { handler as driftStatus } from "./drift-status/index.ts";
import { handler as feedback } from "./feedback/index.ts";
import { handler as logEmbeddings } from "./log-embeddings/index.ts";
import { handler as logInteraction } from "./log-interaction/index.ts";
import { json } from "./_shared/responses.ts";

export const ROUTES: Record<string, (req: Request) => Promise<Response>> = {
  "log-interaction": logInteraction,
  "log-embeddings": logEmbeddings,
  "feedback": feedback,
  "drift-status": driftStatus,
};

export async function route(req: Request): Promise<Response> {
  const match = /^\/functions\/v1\/([^/?]+)\/?$/.exec(new URL(req.url).pathname);
  const handler = match ? ROUTES[match[1]] : undefined;
  if (!handler) return json(404, { error: `no function at ${new URL(req.url).pathname}` });
  return await handler(req);
}

if (import.meta.main) {
  const port = Number(Deno.env.get("PORT") ?? 54321);
  const hostname = Deno.env.get("HOST") ?? "127.0.0.1";
  Deno.serve({
    port,
    hostname,
    onListen: ({ hostname, port }) => console.log(`driftloop functions on http://${hostname}:${port}/functions/v1/`),
  }, route);
}
