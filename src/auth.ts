// Trusted clients: who is calling, with which kind of key, for which application.
// Keys are looked up by their SHA-256 and cached per isolate, so a warm isolate's
// ingestion path costs no D1 round trip; a revoked key stops working within KEY_TTL_MS.
import { createHash } from "node:crypto";
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "./app-env";
import type { Db } from "./db/events";
import { apiKeys, applications } from "./db/schema";
import { ApiError } from "./errors";

export type KeyKind = "write" | "read";

export interface Principal {
  keyId: string;
  kind: KeyKind;
  /** The key's application; null for a read key that sees every application. */
  appId: string | null;
  /** Origins the application's write keys may send from; empty means any. */
  allowedOrigins: string[];
}

/** How long a looked-up key is trusted before it is read again: the revocation bound (KEY_CACHE_SECONDS). */
export const KEY_TTL_MS = 60_000;
/** Unknown keys are remembered for less time, and the cache is bounded against key-guessing floods. */
const UNKNOWN_TTL_MS = 10_000;
const CACHE_MAX = 10_000;
const cache = new Map<string, { principal: Principal | null; expires: number }>();

/** Keys that `npm run dev` seeds; refused unless ENVIRONMENT is "development". */
export const DEV_KEY_PREFIX = "eye_dev_";

/** SHA-256 of a key, hex: what is stored and looked up. Synchronous node:crypto, as on the hot path. */
export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

function sameHash(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  return x.byteLength === y.byteLength && crypto.subtle.timingSafeEqual(x, y);
}

export async function lookupKey(db: Db, hash: string, ttlMs = KEY_TTL_MS, now = Date.now()): Promise<Principal | null> {
  const hit = cache.get(hash);
  if (hit && hit.expires > now) return hit.principal;
  const [row] = await db
    .select({ id: apiKeys.id, hash: apiKeys.hash, kind: apiKeys.kind, appId: apiKeys.appId, origins: applications.allowedOrigins })
    .from(apiKeys)
    .leftJoin(applications, eq(applications.id, apiKeys.appId))
    .where(and(eq(apiKeys.hash, hash), isNull(apiKeys.revokedAt)))
    .limit(1);
  const principal =
    row && sameHash(row.hash, hash)
      ? { keyId: row.id, kind: row.kind, appId: row.appId, allowedOrigins: JSON.parse(row.origins ?? "[]") as string[] }
      : null;
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(hash, { principal, expires: now + (principal ? ttlMs : Math.min(ttlMs, UNKNOWN_TTL_MS)) });
  return principal;
}

/** Forgets cached keys (tests, and after an operator revokes keys through this isolate). */
export function clearKeyCache(): void {
  cache.clear();
}

function bearer(c: Context<AppEnv>): string | undefined {
  const header = c.req.header("authorization");
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new ApiError("unauthorized", "Authorization must be `Bearer <key>`", { headers: { "WWW-Authenticate": "Bearer" } });
  return match[1];
}

/**
 * Requires a key of `kind`. Write keys may come as `?key=` (for sendBeacon, which cannot set
 * headers); read keys are secret and never accepted from a URL, where logs and referrers keep them.
 */
export function requireKey(kind: KeyKind): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const fromUrl = c.req.query("key");
    if (fromUrl !== undefined && kind === "read") {
      throw new ApiError("unauthorized", "keys are not accepted in the URL for reading; send Authorization: Bearer <read key>", {
        headers: { "WWW-Authenticate": "Bearer" },
      });
    }
    const key = bearer(c) ?? fromUrl;
    if (!key) {
      throw new ApiError("unauthorized", `a ${kind} key is required: Authorization: Bearer <key>`, {
        headers: { "WWW-Authenticate": "Bearer" },
      });
    }
    const usable = key.length <= 200 && (!key.startsWith(DEV_KEY_PREFIX) || c.env.ENVIRONMENT === "development");
    const seconds = Number(c.env.KEY_CACHE_SECONDS ?? "");
    const ttl = c.env.KEY_CACHE_SECONDS !== "" && Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : KEY_TTL_MS;
    const principal = usable ? await lookupKey(drizzle(c.env.DB), hashKey(key), ttl) : null;
    if (!principal) {
      throw new ApiError("unauthorized", "unknown or revoked key", { headers: { "WWW-Authenticate": "Bearer" } });
    }
    if (principal.kind !== kind) {
      throw new ApiError("forbidden", kind === "write" ? "a read key cannot send events" : "a write key cannot read events");
    }
    const origin = c.req.header("origin");
    if (kind === "write" && origin && principal.allowedOrigins.length > 0 && !principal.allowedOrigins.includes(origin)) {
      throw new ApiError("forbidden", `origin ${origin} may not send events for this application`);
    }
    if (principal.appId) c.set("appId", principal.appId);
    c.set("keyId", principal.keyId);
    await next();
  };
}

/**
 * Caps how fast one client may send with one write key (the Workers Rate Limiting binding,
 * counted per Cloudflare location). Keyed by key and client address: a write key is public,
 * so one abusive client must not exhaust the budget of every visitor of the application.
 * A refusal is remembered in the isolate for DENIAL_MEMO_MS, so a client hammering past its
 * limit is turned away without a binding call per request.
 */
export const rateLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  const limiter = c.env.WRITE_LIMITER;
  if (limiter) {
    const key = `${c.get("keyId")}:${c.req.header("cf-connecting-ip") ?? "local"}`;
    const now = Date.now();
    const refusedUntil = denied.get(key);
    if (refusedUntil === undefined || refusedUntil <= now) {
      if (refusedUntil !== undefined) denied.delete(key);
      const { success } = await limiter.limit({ key });
      if (!success) {
        if (denied.size >= CACHE_MAX) denied.delete(denied.keys().next().value!);
        denied.set(key, now + DENIAL_MEMO_MS);
      }
    }
    if (denied.has(key)) {
      throw new ApiError("rate_limited", "too many requests for this key from this client; retry later", {
        headers: { "Retry-After": String(RATE_LIMIT_PERIOD_SECONDS) },
      });
    }
  }
  await next();
};

/** The period of the WRITE_LIMITER binding in wrangler.toml, which is what a client waits at most. */
export const RATE_LIMIT_PERIOD_SECONDS = 10;
/** How long an isolate answers 429 by itself after the binding refused a client. */
const DENIAL_MEMO_MS = 1_000;
const denied = new Map<string, number>();
