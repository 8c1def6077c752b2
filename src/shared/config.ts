// Limits and storage settings read from wrangler.toml [vars]; each falls back to its default when unset or malformed.
export interface Limits {
  maxBodyBytes: number;
  maxDataBytes: number;
  maxEventsPerRequest: number;
  maxFutureMicros: number;
}

/**
 * `read` worked out once per `env` object instead of once per request: an isolate hands each of its
 * requests the same env, whose vars do not change while it lives (a test's altered copy is another
 * object, so it gets its own reading).
 */
export function perIsolate<E extends object, T>(read: (env: E) => T): (env: E) => T {
  const memo = new WeakMap<E, T>();
  return (env) => {
    if (memo.has(env)) return memo.get(env) as T;
    const value = read(env);
    memo.set(env, value);
    return value;
  };
}

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

export function limitsFrom(env: Partial<Record<keyof Env, unknown>>): Limits {
  const read = (key: keyof Env) => (typeof env[key] === "string" ? (env[key] as string) : undefined);
  return {
    maxBodyBytes: positiveInt(read("MAX_BODY_BYTES"), 1024 * 1024),
    maxDataBytes: positiveInt(read("MAX_DATA_BYTES"), 32 * 1024),
    maxEventsPerRequest: positiveInt(read("MAX_EVENTS_PER_REQUEST"), 500),
    maxFutureMicros: positiveInt(read("MAX_FUTURE_SECONDS"), 300) * 1_000_000,
  };
}

/** limitsFrom(env), read once per isolate: what the write routes use. */
export const limitsOf = perIsolate(limitsFrom);

export interface StorageSettings {
  /** Days of events D1 keeps for the query API (HOT_DAYS). */
  hotDays: number;
  /** Bytes D1 may hold before the oldest archived events go, whatever their age (HOT_MAX_MB, in MiB). */
  hotMaxBytes: number;
  /** Days of error-log entries D1 keeps (ERROR_LOG_DAYS). */
  errorLogDays: number;
  /** Longest range of one export request, in days (EXPORT_MAX_DAYS). */
  exportMaxDays: number;
}

export function storageFrom(env: Partial<Record<keyof Env, unknown>>): StorageSettings {
  const read = (key: keyof Env) => (typeof env[key] === "string" ? (env[key] as string) : undefined);
  return {
    hotDays: positiveInt(read("HOT_DAYS"), 30),
    hotMaxBytes: positiveInt(read("HOT_MAX_MB"), 8_500) * 1024 * 1024,
    errorLogDays: positiveInt(read("ERROR_LOG_DAYS"), 30),
    exportMaxDays: positiveInt(read("EXPORT_MAX_DAYS"), 31),
  };
}

/**
 * The longest an isolate may trust a key it has looked up (KEY_CACHE_SECONDS): the revocation bound
 * SECURITY.md promises, so a larger setting is clamped to it rather than trusted.
 */
export const MAX_KEY_CACHE_SECONDS = 60;

/**
 * A cache lifetime setting (seconds, as wrangler passes vars) as milliseconds, at most `maxSeconds`:
 * 0 turns the cache off; unset, empty or malformed is `maxSeconds`; above it is `maxSeconds`. What
 * bounds a promise ("a revoked key stops working within 60 s") is clamped here, never trusted.
 */
export function boundedCacheMs(value: unknown, maxSeconds: number): number {
  const seconds = typeof value === "string" && value.trim() !== "" ? Number(value) : Number.NaN;
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, maxSeconds) * 1000 : maxSeconds * 1000;
}

/** KEY_CACHE_SECONDS as milliseconds: 0 turns the cache off; unset or malformed is 60 s; above 60 s is 60 s. */
export function keyCacheMs(env: { KEY_CACHE_SECONDS?: unknown }): number {
  return boundedCacheMs(env.KEY_CACHE_SECONDS, MAX_KEY_CACHE_SECONDS);
}

/** keyCacheMs(env), read once per isolate: what authentication uses. */
export const keyCacheMsOf = perIsolate(keyCacheMs);
