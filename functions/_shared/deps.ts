// The only third-party code the functions use, pinned in one place (npm: specifiers resolve on
// Supabase's edge runtime and in a plain Deno alike; jsr: is not used).
export { default as postgres } from "npm:postgres@3.4.7";
export type { Sql, TransactionSql } from "npm:postgres@3.4.7";
export { errors as joseErrors, jwtVerify, SignJWT } from "npm:jose@6.2.18";
