// Small factories and a client for the Worker under test (the real entry, real bindings).
import { exports } from "cloudflare:workers";

export const worker = (exports as unknown as { default: Fetcher }).default;

export const BASE = "http://eye.test";

/** The dev application's keys, seeded for local development and tests (never in production). */
export const DEV_WRITE_KEY = "eye_dev_write_key";
export const DEV_READ_KEY = "eye_dev_read_key";

/**
 * Calls the Worker. Without an Authorization header it sends the dev write key on POST and the
 * dev read key otherwise; pass `authorization: ""` to send none.
 */
export function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) {
    const method = (init.method ?? "GET").toUpperCase();
    headers.set("authorization", `Bearer ${method === "POST" ? DEV_WRITE_KEY : DEV_READ_KEY}`);
  } else if (headers.get("authorization") === "") {
    headers.delete("authorization");
  }
  // Each call looks like its own client, so the per-client write rate limit only bites where a test aims it.
  if (!headers.has("cf-connecting-ip")) headers.set("cf-connecting-ip", `test-client-${crypto.randomUUID()}`);
  return worker.fetch(`${BASE}${path}`, { ...init, headers });
}

export function postEvents(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return api("/api/event/", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** The original README's example event, verbatim. */
export const README_EVENT = {
  session_id: "e2085be5-9137-4e4e-80b5-f1ffddc25423",
  category: "page interaction",
  name: "cta click",
  data: { host: "www.xxxxx.com", path: "/", element: "chat bubble" },
  timestamp: "2021-01-01 09:15:27.243860",
};

let serial = 0;

/** A valid event with unique session and data; override any field. */
export function makeEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  serial += 1;
  return {
    session_id: `session-${crypto.randomUUID()}`,
    category: "page interaction",
    name: "cta click",
    data: { host: "www.example.com", path: "/", serial },
    timestamp: "2021-01-01 09:15:27.243860",
    ...overrides,
  };
}

export interface EventPage {
  count?: number;
  next: string | null;
  previous: string | null;
  results: Record<string, unknown>[];
}

export async function getJson<T = EventPage>(path: string, init?: RequestInit): Promise<T> {
  const res = await api(path, init);
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Polls a query until it reports `count` results (the consumer runs after a batch timeout). */
export async function waitForCount(
  path: string,
  count: number,
  timeoutMs = 15_000,
  init?: RequestInit,
): Promise<EventPage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const page = await getJson(path, init);
    if (page.count === count) return page;
    if (Date.now() > deadline) throw new Error(`${path}: expected count ${count}, still ${page.count}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Creates an application and keys straight in D1 (what `npm run keys` does), returning the raw keys. */
export async function makeApp(options: { origins?: string[]; readScope?: "app" | "all" } = {}) {
  const { env } = await import("cloudflare:test");
  const { hashKey } = await import("../../src/request/auth");
  const appId = `app_${crypto.randomUUID().slice(0, 8)}`;
  const writeKey = `eye_w_${crypto.randomUUID()}`;
  const readKey = `eye_r_${crypto.randomUUID()}`;
  const keyIds = { write: `key_${crypto.randomUUID()}`, read: `key_${crypto.randomUUID()}` };
  await env.DB.batch([
    env.DB.prepare("INSERT INTO applications (id, name, allowed_origins, created_at) VALUES (?, ?, ?, 0)").bind(
      appId,
      appId,
      JSON.stringify(options.origins ?? []),
    ),
    env.DB.prepare(
      "INSERT INTO api_keys (id, hash, kind, app_id, prefix, created_at) VALUES (?, ?, 'write', ?, 'eye_w', 0)",
    ).bind(keyIds.write, hashKey(writeKey), appId),
    env.DB.prepare(
      "INSERT INTO api_keys (id, hash, kind, app_id, prefix, created_at) VALUES (?, ?, 'read', ?, 'eye_r', 0)",
    ).bind(keyIds.read, hashKey(readKey), options.readScope === "all" ? null : appId),
  ]);
  const row = await env.DB.prepare("SELECT num FROM applications WHERE id = ?").bind(appId).first<{ num: number }>();
  return { appId, num: row!.num, writeKey, readKey, keyIds };
}

/** The number events carry for an application id, registering the application if it is new (as the consumer does). */
export async function appNum(id: string): Promise<number> {
  const { env } = await import("cloudflare:test");
  const { drizzle } = await import("drizzle-orm/d1");
  const { numbersOf } = await import("../../src/db/applications");
  return (await numbersOf(drizzle(env.DB), [id])).get(id)!;
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/**
 * Waits, if need be, until at least `needMs` remain in the current window of a rate limit whose
 * period is `periodSeconds`. The local Rate Limiting binding counts in windows aligned to the wall
 * clock (miniflare: floor(now / period)), so a test that must make its calls inside one window
 * fails now and then when they straddle a window's end.
 */
export async function freshLimiterWindow(periodSeconds: number, needMs: number): Promise<void> {
  const period = periodSeconds * 1000;
  const left = period - (Date.now() % period);
  if (left < needMs) await new Promise((r) => setTimeout(r, left + 50));
}
