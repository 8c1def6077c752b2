// What the tests share: the Worker's URL and dev keys, unique sessions, and reading back what
// was stored (the consumer stores events about a second after they are accepted).
import { inject } from "vitest";
import { createQueryClient, type StoredEvent, uuidv7 } from "../../src/index.js";

export const WRITE_KEY = "eye_dev_write_key";
export const READ_KEY = "eye_dev_read_key";
export const eyeUrl = () => inject("eyeUrl");
export const newSession = (label: string) => `client-test-${label}-${uuidv7()}`;
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every stored event of a session, oldest first. */
export async function storedEvents(sessionId: string): Promise<StoredEvent[]> {
  const query = createQueryClient({ endpoint: eyeUrl(), readKey: READ_KEY });
  const out: StoredEvent[] = [];
  for await (const e of query.session(sessionId, { limit: 1000 })) out.push(e);
  return out;
}

/**
 * Waits until a session holds `count` events, then waits `settleMs` more and reads again, so a
 * duplicate stored late is seen too. Returns the final read.
 */
export async function waitForEvents(
  sessionId: string,
  count: number,
  { timeoutMs = 20_000, settleMs = 1500 } = {},
): Promise<StoredEvent[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const events = await storedEvents(sessionId);
    if (events.length >= count) break;
    if (Date.now() > until)
      throw new Error(`session ${sessionId}: ${events.length} of ${count} events stored after ${timeoutMs} ms`);
    await sleep(250);
  }
  await sleep(settleMs);
  return storedEvents(sessionId);
}
