// Minimal assertions (jsr:@std/assert does not resolve here).
import { isDeepStrictEqual, inspect } from "node:util";

function fail(what: string, message?: string): never {
  throw new Error(message ? `${message}: ${what}` : what);
}

export function assertEquals(actual: unknown, expected: unknown, message?: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    fail(`expected ${inspect(expected, { depth: 4 })}\n   got ${inspect(actual, { depth: 4 })}`.slice(0, 2000), message);
  }
}

export function assert(condition: unknown, message?: string): asserts condition {
  if (!condition) fail("assertion failed", message);
}

export function assertMatch(actual: string, expected: RegExp, message?: string): void {
  if (!expected.test(actual)) fail(`${JSON.stringify(actual?.slice?.(0, 300))} does not match ${expected}`, message);
}
