// Trusted clients: who is calling, with which kind of key, for which application.
// Keys are looked up by their SHA-256 and cached per isolate, so a warm isolate's
// ingestion path costs no D1 round trip; a revoked key stops working within KEY_TTL_MS.
// Failed authentications are limited per client address before they cost a D1 read.
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Context, MiddlewareHandler } from "hono";
import type { Db } from "../db/db";
import type { ContextMode } from "../db/schema";
import { apiKeys, applications } from "../db/schema";
import { BoundedCache } from "../shared/bounded-cache";
import { clientKey } from "../shared/client-address";
import { keyCacheMsOf, MAX_KEY_CACHE_SECONDS } from "../shared/config";
import { ApiError, clip } from "../shared/errors";
import { sha256Hex } from "../shared/sha256";
import type { AppEnv } from "./app-env";

export type KeyKind = "write" | "read";

export interface Principal {
  keyId: string;
  kind: KeyKind;
  /** The key's application; null for a read key that sees every application. */
  appId: string | null;
  /** That application's number in events and counts (applications.num). */
  appNum: number | null;
  /** Origins the application's write keys may send from; empty means any. */
  allowedOrigins: string[];
  /** What context the application's events get (applications.context); read with the key, so a change takes effect within KEY_TTL_MS. */
  context: ContextMode;
}

/** How long a looked-up key is trusted before it is read again: the revocation bound (KEY_CACHE_SECONDS, at most 60 s). */
export const KEY_TTL_MS = MAX_KEY_CACHE_SECONDS * 1000;
/** Unknown keys are remembered for less time (a key created a moment ago must start working soon). */
const UNKNOWN_TTL_MS = 10_000;
const CACHE_MAX = 10_000;
// Known-good and unknown keys are kept apart: a flood of random keys fills only its own cache
// and can never evict the keys real clients are using.
const known = new BoundedCache<Principal>(CACHE_MAX);
const unknown = new BoundedCache<true>(CACHE_MAX);

/** Keys that `npm run dev` seeds; refused unless ENVIRONMENT is "development". */
export const DEV_KEY_PREFIX = "eye_dev_";

/** SHA-256 of a key, hex: what is stored and looked up (scripts/keys.mjs hashes with node:crypto, the same digest). */
export function hashKey(key: string): string {
  return sha256Hex(key);
}

function sameHash(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  return x.byteLength === y.byteLength && crypto.subtle.timingSafeEqual(x, y);
}

/** A key this isolate already knows: the principal, null when known to be unknown, undefined when not cached. */
export function cachedKey(hash: string, now = Date.now()): Principal | null | undefined {
  const principal = known.get(hash, now);
  if (principal !== undefined) return principal;
  return unknown.get(hash, now) ? null : undefined;
}

/** Reads a key from D1 (not the cache) and caches what it found. */
export async function lookupKey(db: Db, hash: string, ttlMs = KEY_TTL_MS, now = Date.now()): Promise<Principal | null> {
  const [row] = await db
    .select({
      id: apiKeys.id,
      hash: apiKeys.hash,
      kind: apiKeys.kind,
      appId: apiKeys.appId,
      appNum: applications.num,
      origins: applications.allowedOrigins,
      context: applications.context,
    })
    .from(apiKeys)
    .leftJoin(applications, eq(applications.id, apiKeys.appId))
    .where(and(eq(apiKeys.hash, hash), isNull(apiKeys.revokedAt)))
    .limit(1);
  const principal =
    row && sameHash(row.hash, hash)
      ? {
          keyId: row.id,
          kind: row.kind,
          appId: row.appId,
          appNum: row.appNum,
          allowedOrigins: JSON.parse(row.origins ?? "[]") as string[],
          context: row.context ?? "on",
        }
      : null;
  if (principal) known.set(hash, principal, ttlMs, now);
  else unknown.set(hash, true, Math.min(ttlMs, UNKNOWN_TTL_MS), now);
  return principal;
}

/** Forgets cached keys and refusals (tests, and after an operator revokes keys through this isolate). */
export function clearKeyCache(): void {
  known.clear();
  unknown.clear();
  blocked.clear();
  failures.clear();
  denied.clear();
}

/** The period of the AUTH_LIMITER binding in wrangler.toml: how long a refused address waits at most. */
export const AUTH_LIMIT_PERIOD_SECONDS = 60;
/** How long an isolate refuses an address by itself once AUTH_LIMITER has refused it. */
const BLOCK_MEMO_MS = 10_000;
const blocked = new BoundedCache<true>(CACHE_MAX);

const tooManyFailures = () =>
  new ApiError("rate_limited", "too many requests with unknown keys from this address; retry later", {
    headers: { "Retry-After": String(AUTH_LIMIT_PERIOD_SECONDS) },
  });

/**
 * Failures an address may have in one isolate before the binding counts them: a botnet that
 * spends each address once costs no binding call per bad key (the cache separation is what
 * protects real keys from it), while an address that keeps failing is counted across isolates.
 */
export const LOCAL_FAILURES = 2;
const failures = new BoundedCache<number>(CACHE_MAX);

/**
 * Counts a failed authentication against the client's address: its first LOCAL_FAILURES in this
 * isolate (per minute) locally, every later one through AUTH_LIMITER (20 per minute); past the
 * limit the address is refused before any D1 lookup, for BLOCK_MEMO_MS in this isolate without
 * even a binding call.
 */
async function failedAuthentication(c: Context<AppEnv>, address: string): Promise<void> {
  const limiter = c.env.AUTH_LIMITER;
  if (!limiter) return;
  const seen = (failures.get(address) ?? 0) + 1;
  failures.set(address, seen, AUTH_LIMIT_PERIOD_SECONDS * 1000);
  if (seen <= LOCAL_FAILURES) return;
  const { success } = await limiter.limit({ key: address });
  if (!success) {
    blocked.set(address, true, BLOCK_MEMO_MS);
    throw tooManyFailures();
  }
}

function bearer(c: Context<AppEnv>): string | undefined {
  const header = c.req.header("authorization");
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match)
    throw new ApiError("unauthorized", "Authorization must be `Bearer <key>`", {
      headers: { "WWW-Authenticate": "Bearer" },
    });
  return match[1];
}

/**
 * The key in Authorization as the SDKs' HTTP APIs carry it: `Bearer <key>`, or `Basic` with the key
 * as the user name and an empty password (Segment's libraries: base64 of `<key>:`). Undefined without the header.
 */
export function sdkHeaderKey(c: Context<AppEnv>): string | undefined {
  const header = c.req.header("authorization");
  if (header === undefined || /^Bearer\s/i.test(header)) return bearer(c);
  const match = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  let user: string | undefined;
  if (match) {
    try {
      const decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
        Uint8Array.from(atob(match[1]!), (ch) => ch.charCodeAt(0)),
      );
      const colon = decoded.indexOf(":");
      user = colon < 0 ? decoded : decoded.slice(0, colon);
    } catch {
      // not base64 of UTF-8: refused below
    }
  }
  if (!user)
    throw new ApiError("unauthorized", "Authorization must be `Basic base64(<write key>:)` or `Bearer <key>`", {
      headers: { "WWW-Authenticate": "Basic, Bearer" },
    });
  return user;
}

/**
 * Requires a key of `kind`. Write keys may come as `?key=` (for sendBeacon, which cannot set
 * headers); read keys are secret and never accepted from a URL, where logs and referrers keep them.
 */
export function requireKey(kind: KeyKind): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const fromUrl = c.req.query("key");
    if (fromUrl !== undefined && kind === "read") {
      throw new ApiError(
        "unauthorized",
        "keys are not accepted in the URL for reading; send Authorization: Bearer <read key>",
        {
          headers: { "WWW-Authenticate": "Bearer" },
        },
      );
    }
    await authenticate(c, kind, bearer(c) ?? fromUrl);
    await next();
  };
}

/**
 * Checks `key` as a key of `kind` and sets the request's application, key and context mode:
 * requireKey's work once the key is found, also for the SDK routes, which may find it in the body
 * (`missing`: what to say when there is none).
 */
export async function authenticate(
  c: Context<AppEnv>,
  kind: KeyKind,
  key: string | undefined,
  missing = `a ${kind} key is required: Authorization: Bearer <key>`,
): Promise<void> {
  if (!key) throw new ApiError("unauthorized", missing, { headers: { "WWW-Authenticate": "Bearer" } });
  const usable = key.length <= 200 && (!key.startsWith(DEV_KEY_PREFIX) || c.env.ENVIRONMENT === "development");
  const ttl = keyCacheMsOf(c.env);
  const address = clientKey(c.req.header("cf-connecting-ip"));
  const hash = usable ? hashKey(key) : undefined;
  // A key this isolate knows is good costs nothing more. Any other key costs a D1 read unless
  // it is known to be unknown, so an address that keeps failing is refused before that read.
  let principal = hash === undefined ? null : cachedKey(hash);
  if (!principal) {
    if (blocked.get(address) !== undefined) throw tooManyFailures();
    if (principal === undefined) principal = await lookupKey(drizzle(c.env.DB), hash!, ttl);
  }
  if (!principal) {
    await failedAuthentication(c, address);
    throw new ApiError("unauthorized", "unknown or revoked key", { headers: { "WWW-Authenticate": "Bearer" } });
  }
  if (principal.kind !== kind) {
    throw new ApiError(
      "forbidden",
      kind === "write" ? "a read key cannot send events" : "a write key cannot read events",
    );
  }
  const origin = c.req.header("origin");
  if (kind === "write" && origin && principal.allowedOrigins.length > 0 && !principal.allowedOrigins.includes(origin)) {
    throw new ApiError("forbidden", `origin ${clip(origin)} may not send events for this application`);
  }
  if (principal.appId) c.set("appId", principal.appId);
  if (principal.appNum !== null) c.set("appNum", principal.appNum);
  c.set("keyId", principal.keyId);
  c.set("contextMode", principal.context);
}

/**
 * Caps how fast one client may send with one write key (the Workers Rate Limiting binding,
 * counted per Cloudflare location). Keyed by key and client address (IPv6 by /64): a write key
 * is public, so one abusive client must not exhaust the budget of every visitor of the
 * application. A refusal is remembered in the isolate for DENIAL_MEMO_MS, so a client
 * hammering past its limit is turned away without a binding call per request.
 */
export const rateLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  await limitRate(c);
  await next();
};

/** rateLimit's check, for routes that authenticate inside their handler (the SDK routes). */
export async function limitRate(c: Context<AppEnv>): Promise<void> {
  const limiter = c.env.WRITE_LIMITER;
  if (limiter) {
    const key = `${c.get("keyId")}:${clientKey(c.req.header("cf-connecting-ip"))}`;
    if (denied.get(key) === undefined) {
      const { success } = await limiter.limit({ key });
      if (!success) denied.set(key, true, DENIAL_MEMO_MS);
    }
    if (denied.get(key) !== undefined) {
      throw new ApiError("rate_limited", "too many requests for this key from this client; retry later", {
        headers: { "Retry-After": String(RATE_LIMIT_PERIOD_SECONDS) },
      });
    }
  }
}

/** The period of the WRITE_LIMITER binding in wrangler.toml, which is what a client waits at most. */
export const RATE_LIMIT_PERIOD_SECONDS = 10;
/** How long an isolate answers 429 by itself after the binding refused a client. */
const DENIAL_MEMO_MS = 1_000;
const denied = new BoundedCache<true>(CACHE_MAX);
