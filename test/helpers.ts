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
  return worker.fetch(`${BASE}${path}`, { ...init, headers });
}

export function postEvents(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return api("/api/event/", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

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
export async function waitForCount(path: string, count: number, timeoutMs = 15_000): Promise<EventPage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const page = await getJson(path);
    if (page.count === count) return page;
    if (Date.now() > deadline) throw new Error(`${path}: expected count ${count}, still ${page.count}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
