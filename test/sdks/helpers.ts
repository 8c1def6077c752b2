// What the SDK tests share (test/sdks/): The Eye under `wrangler dev` (started once by
// test/browser/global-setup.ts), its dev keys, and reading events back through GET /api/event/ by
// session and name, as an analyst would.
import { inject } from "vitest";

export const WRITE_KEY = "eye_dev_write_key";
export const READ_KEY = "eye_dev_read_key";
export const eyeUrl = () => inject("eyeUrl");
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Stored {
  session_id: string;
  timestamp: string;
  category: string;
  name: string;
  data: Record<string, unknown>;
  event_id: string;
  received_at: string;
  context: Record<string, unknown> | null;
}

/** GET /api/event/ by session (and name): every result. */
export async function find(session: string, name?: string): Promise<Stored[]> {
  const q = new URLSearchParams({ session_id: session, limit: "1000" });
  if (name !== undefined) q.set("name", name);
  const res = await fetch(`${eyeUrl()}/api/event/?${q}`, { headers: { authorization: `Bearer ${READ_KEY}` } });
  if (!res.ok) throw new Error(`GET /api/event/?${q}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { results: Stored[] }).results;
}

/**
 * Waits until the session holds every name in `names`, then waits `settleMs` more and reads again,
 * so that a copy stored late (a retry) would show. Returns the session's events by name.
 */
export async function waitForNames(
  session: string,
  names: string[],
  { timeoutMs = 30_000, settleMs = 2500 } = {},
): Promise<Map<string, Stored[]>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const seen = new Set((await find(session)).map((e) => e.name));
    if (names.every((n) => seen.has(n))) break;
    if (Date.now() > until)
      throw new Error(`session ${session}: has ${[...seen].join(", ") || "nothing"}; wanted ${names.join(", ")}`);
    await sleep(300);
  }
  await sleep(settleMs);
  const byName = new Map<string, Stored[]>();
  for (const name of names) byName.set(name, await find(session, name));
  return byName;
}

/** Polls `check` until it returns a value (not undefined), or throws `what()` after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | undefined,
  what: () => string,
  { timeoutMs = 30_000 } = {},
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`after ${timeoutMs} ms: ${what()}`);
    await sleep(100);
  }
}
