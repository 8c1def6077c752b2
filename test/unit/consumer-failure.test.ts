// The consumer when D1 fails for real (SPEC §3): nothing it could not store is acked; failed
// messages are retried with backoff, and what can be stored still is. The events table is renamed
// away for these tests only (this file's storage is its own) and put back after each.
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, expect, it } from "vitest";
import { backoff } from "../../src/consume/consumer";
import type { PreparedEvent, QueueMessage } from "../../src/shared/schemas";
import { deliver as deliverTo } from "../helpers/queue";

const QUEUE = "the-eye-events";

const deliver = async (deliveries: { id: string; body: unknown; attempts: number }[]) => {
  const { result, retried } = await deliverTo(QUEUE, deliveries);
  return { ...result, retried };
};

let serial = 0;
const eventsMessage = (session: string, n: number): QueueMessage => ({
  kind: "events",
  app: null,
  received_at: 1,
  events: Array.from({ length: n }, (): PreparedEvent => {
    serial += 1;
    return {
      event_id: crypto.randomUUID(),
      session_id: session,
      category: "failure",
      name: "retry",
      data: "{}",
      timestamp: serial,
    };
  }),
});

const count = async (sql: string, ...params: unknown[]) =>
  (await env.DB.prepare(`SELECT count(*) AS n FROM ${sql}`)
    .bind(...params)
    .first<{ n: number }>())!.n;

beforeEach(async () => {
  await env.DB.prepare("ALTER TABLE events RENAME TO events_unavailable").run();
});

afterEach(async () => {
  await env.DB.prepare("ALTER TABLE events_unavailable RENAME TO events").run();
});

it("retries a lone message with backoff and acks nothing when its write fails", async () => {
  const result = await deliver([{ id: "lone-1", body: eventsMessage("failure-lone", 2), attempts: 3 }]);
  expect(result.explicitAcks).toEqual([]);
  expect(result.ackAll).toBe(false);
  expect(result.retryMessages).toEqual([{ msgId: "lone-1" }]);
  expect(result.retried).toEqual([{ id: "lone-1", delaySeconds: backoff(3) }]);
  expect(backoff(3)).toBe(8);
});

it("retries each failed message with its own backoff, while the messages that can be stored are stored and acked", async () => {
  const requestId = `failure-invalid-${crypto.randomUUID()}`;
  const invalid: QueueMessage = {
    kind: "invalid",
    app: null,
    received_at: 1,
    request_id: requestId,
    items: [{ payload: "{}", reasons: [{ index: 0, field: "data", message: "data is required" }] }],
  };
  const result = await deliver([
    { id: "events-a", body: eventsMessage("failure-a", 3), attempts: 1 },
    { id: "invalid-b", body: invalid, attempts: 1 },
    { id: "events-c", body: eventsMessage("failure-c", 1), attempts: 4 },
    { id: "malformed-d", body: "garbage", attempts: 1 },
  ]);
  expect([...result.explicitAcks].sort()).toEqual(["invalid-b", "malformed-d"]);
  expect(result.retryMessages.map((m) => m.msgId)).toEqual(["events-a", "events-c"]);
  expect(result.retried).toEqual([
    { id: "events-a", delaySeconds: 2 },
    { id: "events-c", delaySeconds: 16 },
  ]);
  expect(await count("error_log WHERE source = ?", requestId)).toBe(1);
  expect(await count("error_log WHERE source = ?", "malformed-d")).toBe(1);
  // Each failed message leaves a consumer_failure note (no SQL in it: the cause went to Sentry).
  const notes = await env.DB.prepare(
    "SELECT source, reasons FROM error_log WHERE kind = 'consumer_failure' AND source IN ('events-a', 'events-c') ORDER BY source",
  ).all<{ source: string; reasons: string }>();
  expect(notes.results.map((n) => n.source)).toEqual(["events-a", "events-c"]);
  expect(notes.results[1]!.reasons).toContain("attempt 4; retrying in 16 s");
  expect(notes.results[1]!.reasons).not.toMatch(/SQLITE|no such table/i);
});

it("stores a retried message once the database is back, exactly once", async () => {
  const body = eventsMessage(`failure-back-${crypto.randomUUID()}`, 4);
  const session = (body as { events: PreparedEvent[] }).events[0]!.session_id;
  const failed = await deliver([{ id: "back-1", body, attempts: 1 }]);
  expect(failed.retried).toEqual([{ id: "back-1", delaySeconds: 2 }]);

  await env.DB.prepare("ALTER TABLE events_unavailable RENAME TO events").run();
  try {
    const retried = await deliver([{ id: "back-1", body, attempts: 2 }]);
    expect(retried.explicitAcks).toEqual(["back-1"]);
    // A redelivery after a success (e.g. a lost ack) changes nothing.
    await deliver([{ id: "back-1", body, attempts: 3 }]);
    expect(await count("events WHERE session_id = ?", session)).toBe(4);
  } finally {
    await env.DB.prepare("ALTER TABLE events RENAME TO events_unavailable").run();
  }
});

it("reports the storage failure to Sentry with the queue's name", async () => {
  const marker = `failure-sentry-${crypto.randomUUID()}`;
  await deliver([{ id: marker, body: eventsMessage(marker, 1), attempts: 1 }]);
  const deadline = Date.now() + 10_000;
  let envelopes: string[] = [];
  while (Date.now() < deadline) {
    const received = (await (await fetch(env.SENTRY_RECEIVER)).json()) as { body: string }[];
    envelopes = received
      .map((e) => e.body)
      .filter((b) => b.includes("no such table: events") && b.includes('"queue":"the-eye-events"'));
    if (envelopes.length > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(envelopes.length).toBeGreaterThan(0);
});
