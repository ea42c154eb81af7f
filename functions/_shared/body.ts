// Reading a JSON body with a hard size cap: Content-Length is checked first, and the bytes
// actually streamed are counted too (a chunked body, or a lying header, cannot get past it).
import { HttpError } from "./responses.ts";

export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

export function maxBodyBytes(): number {
  const raw = Deno.env.get("DRIFTLOOP_MAX_BODY_BYTES");
  const value = raw ? Number(raw) : DEFAULT_MAX_BODY_BYTES;
  return Number.isSafeInteger(value) && value > 0 ? value : DEFAULT_MAX_BODY_BYTES;
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `request body exceeds ${limit} bytes; send smaller batches`);
}

export async function readBytes(req: Request, limit = maxBodyBytes()): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await req.body?.cancel().catch(() => {});
    throw tooLarge(limit);
  }
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

export async function readJson(req: Request, limit = maxBodyBytes()): Promise<unknown> {
  const bytes = await readBytes(req, limit);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "request body is not valid UTF-8");
  }
  if (!text.trim()) throw new HttpError(400, "request body is empty; send JSON");
  try {
    return JSON.parse(text);
  } catch (error) {
    // JSON.parse rejects NaN/Infinity literals too: they are not JSON.
    const detail = error instanceof Error ? error.message : String(error);
    throw new HttpError(400, `malformed JSON: ${detail.slice(0, 200)}`);
  }
}
