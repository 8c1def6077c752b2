// The consumer when D1 refuses a message's write while it answers (SPEC §3): nothing it could not
// store is acked; those messages are retried with backoff toward the dead-letter queue, and what can
// be stored still is. A trigger refuses the failing sessions' events for the first tests only (this
// file's storage is its own); the last finds the consumer's own report in Sentry. (When D1 fails
// every statement instead, the messages are held: consumer-hold.test.ts.)
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
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

const refuse = () =>
  env.DB.prepare(
    "CREATE TRIGGER refuse_failures BEFORE INSERT ON events WHEN NEW.session_id LIKE 'failure-%' BEGIN SELECT RAISE(ABORT, 'refused'); END",
  ).run();
const accept = () => env.DB.prepare("DROP TRIGGER IF EXISTS refuse_failures").run();

describe("while D1 refuses the messages' events", () => {
  beforeEach(refuse);
  afterEach(accept);

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
    expect(notes.results[1]!.reasons).not.toMatch(/SQLITE|refused/i);
  });

  it("stores a retried message once the database is back, exactly once", async () => {
    const body = eventsMessage(`failure-back-${crypto.randomUUID()}`, 4);
    const session = (body as { events: PreparedEvent[] }).events[0]!.session_id;
    const failed = await deliver([{ id: "back-1", body, attempts: 1 }]);
    expect(failed.retried).toEqual([{ id: "back-1", delaySeconds: 2 }]);

    await accept();
    try {
      const retried = await deliver([{ id: "back-1", body, attempts: 2 }]);
      expect(retried.explicitAcks).toEqual(["back-1"]);
      // A redelivery after a success (e.g. a lost ack) changes nothing.
      await deliver([{ id: "back-1", body, attempts: 3 }]);
      expect(await count("events WHERE session_id = ?", session)).toBe(4);
    } finally {
      await refuse();
    }
  });
});

describe("Sentry", () => {
  it("hears of a write D1 refuses while it answers, naming the queue and the message", async () => {
    // The message id is this test's own: the report names it (message_ids), and no other test's
    // report can, although the loopback Sentry keeps every envelope of the run.
    const marker = `failure-sentry-${crypto.randomUUID()}`;
    // D1 answers (a statement that writes nothing succeeds) but refuses the write itself: the
    // consumer reports each such failure, and retries the message toward the dead-letter queue.
    const DB = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") return () => Promise.reject(new Error(`write refused (${marker})`));
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const { retried } = await deliverTo(QUEUE, [{ id: marker, body: eventsMessage(marker, 1), attempts: 1 }], {
      ...env,
      DB,
    });
    expect(retried).toEqual([{ id: marker, delaySeconds: backoff(1) }]);
    const deadline = Date.now() + 10_000;
    let envelopes: string[] = [];
    while (Date.now() < deadline) {
      const received = (await (await fetch(env.SENTRY_RECEIVER)).json()) as { body: string }[];
      envelopes = received.map((e) => e.body).filter((b) => b.includes(`"${marker}"`));
      if (envelopes.length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(envelopes, `a Sentry report naming message ${marker}`).toHaveLength(1);
    expect(envelopes[0]).toContain(`write refused (${marker})`);
    expect(envelopes[0]).toContain('"queue":"the-eye-events"');
    expect(envelopes[0]).toContain('"handler":"queue"');
  });
});
