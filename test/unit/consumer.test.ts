// The queue() consumer through the Worker's real entry (SPEC §3): explicit acks after the write,
// malformed messages recorded and acked without blocking the batch, redeliveries stored once,
// and the dead-letter consumer.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { backoff } from "../../src/consume/consumer";
import type { PreparedEvent, QueueMessage } from "../../src/shared/schemas";
import { type Delivery, deliver } from "../helpers/queue";
import { storedRows } from "../helpers/stored";

const QUEUE = "the-eye-events";
const DLQ = "the-eye-events-dlq";

let serial = 0;
function prepared(session: string, overrides: Partial<PreparedEvent> = {}): PreparedEvent {
  serial += 1;
  return {
    event_id: crypto.randomUUID(),
    session_id: session,
    category: "consumer",
    name: "stored",
    data: JSON.stringify({ serial }),
    timestamp: Date.UTC(2022, 3, 4, 5, 6, 7) * 1000 + serial,
    ...overrides,
  };
}

const eventsMessage = (
  events: PreparedEvent[],
  app: string | null = "consumer-app",
  receivedAt = 1_700_000_000_000_000,
): QueueMessage => ({
  kind: "events",
  app,
  received_at: receivedAt,
  events,
});

/** A session's stored rows, with the event id as text and the application by its id (events store its number). */
const rowsOf = async (session: string) => {
  const apps = new Map(
    (await env.DB.prepare("SELECT id, num FROM applications").all<{ id: string; num: number }>()).results.map((a) => [
      a.num,
      a.id,
    ]),
  );
  return (await storedRows<Record<string, unknown>>("session_id = ?", [session])).map(
    ({ id, session_id, category, name, data, timestamp, received_at, app, event_id }) => ({
      id,
      session_id,
      category,
      name,
      data,
      timestamp,
      received_at,
      app_id: apps.get(app as number) ?? null,
      event_id,
    }),
  );
};

const errorsFrom = (source: string) =>
  env.DB.prepare("SELECT * FROM error_log WHERE source = ? ORDER BY id")
    .bind(source)
    .all<Record<string, unknown>>()
    .then((r) => r.results);

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`;

describe("events consumer", () => {
  it("stores every event of the batch, then acks each message explicitly", async () => {
    const session = unique("consumer-ack");
    const deliveries = [
      { body: eventsMessage([prepared(session), prepared(session)]) },
      { body: eventsMessage([prepared(session)]) },
      { body: eventsMessage([prepared(session), prepared(session), prepared(session)]) },
    ];
    const { batch, result } = await deliver(QUEUE, deliveries);
    expect(result.outcome).toBe("ok");
    expect(result.ackAll).toBe(false);
    expect(result.retryBatch.retry).toBe(false);
    expect(result.retryMessages).toEqual([]);
    expect([...result.explicitAcks].sort()).toEqual(batch.messages.map((m) => m.id).sort());
    expect(await rowsOf(session)).toHaveLength(6);
  });

  it("stores each event's fields, with the message's receive time and application", async () => {
    const session = unique("consumer-fields");
    const event = prepared(session, { data: '{"host":"www.example.com","n":[1,2]}', timestamp: 1_609_492_527_243_860 });
    await deliver(QUEUE, [{ body: eventsMessage([event], "app-7", 1_700_000_000_123_456) }]);
    const [row] = await rowsOf(session);
    expect(row).toMatchObject({
      event_id: event.event_id,
      session_id: session,
      category: "consumer",
      name: "stored",
      data: '{"host":"www.example.com","n":[1,2]}',
      timestamp: 1_609_492_527_243_860,
      received_at: 1_700_000_000_123_456,
      app_id: "app-7",
    });
  });

  it("records malformed messages in the error log and acks them without holding back the rest of the batch", async () => {
    const session = unique("consumer-malformed");
    const malformed: Delivery[] = [
      { id: unique("bad-text"), body: "not a queue message" },
      { id: unique("bad-empty"), body: { kind: "events", app: null, received_at: 1, events: [] } },
      { id: unique("bad-kind"), body: { kind: "mystery", payload: 1 } },
      { id: unique("bad-event"), body: eventsMessage([prepared(session, { event_id: "not-a-uuid" })]) },
      { id: unique("bad-data"), body: eventsMessage([prepared(session, { data: "not json" })]) },
      { id: unique("bad-data-array"), body: eventsMessage([prepared(session, { data: "[1,2]" })]) },
    ];
    const good: Delivery[] = [
      { id: unique("good-1"), body: eventsMessage([prepared(session)]) },
      { id: unique("good-2"), body: eventsMessage([prepared(session), prepared(session)]) },
    ];
    const { result } = await deliver(QUEUE, [good[0]!, ...malformed, good[1]!]);

    expect(result.retryMessages).toEqual([]);
    expect([...result.explicitAcks].sort()).toEqual([...good, ...malformed].map((d) => d.id).sort());
    // Only the good messages' events are stored.
    expect((await rowsOf(session)).map((r) => r.name)).toEqual(["stored", "stored", "stored"]);
    for (const d of malformed) {
      const logged = await errorsFrom(d.id!);
      expect(logged, d.id).toHaveLength(1);
      expect(logged[0]).toMatchObject({ kind: "malformed_message", payload: JSON.stringify(d.body) });
      expect(JSON.parse(logged[0]!.reasons as string)).not.toHaveLength(0);
    }
  });

  it("records refused events from an 'invalid' message in the error log and acks it", async () => {
    const requestId = unique("consumer-invalid");
    const body: QueueMessage = {
      kind: "invalid",
      app: "app-9",
      received_at: 1_700_000_000_000_001,
      request_id: requestId,
      items: [
        {
          payload: '{"session_id":""}',
          reasons: [{ index: 0, field: "session_id", message: "session_id must not be empty" }],
        },
        { payload: '"text"', reasons: [{ index: 3, field: null, message: "each event must be a JSON object" }] },
      ],
    };
    const { batch, result } = await deliver(QUEUE, [{ body }]);
    expect(result.explicitAcks).toEqual([batch.messages[0]!.id]);
    const logged = await errorsFrom(requestId);
    expect(logged.map((r) => [r.kind, r.app_id, r.occurred_at, r.payload])).toEqual([
      ["invalid_event", "app-9", 1_700_000_000_000_001, '{"session_id":""}'],
      ["invalid_event", "app-9", 1_700_000_000_000_001, '"text"'],
    ]);
    expect(JSON.parse(logged[1]!.reasons as string)).toEqual([
      { index: 3, field: null, message: "each event must be a JSON object" },
    ]);
  });

  it("fills an entry's type from the message and its field and rule from the first reason", async () => {
    const requestId = unique("consumer-columns");
    const body: QueueMessage = {
      kind: "invalid",
      app: "app-9",
      received_at: 1_700_000_000_000_003,
      request_id: requestId,
      items: [
        {
          index: 0,
          payload: '{"category":"shop"}',
          category: "shop",
          name: "checkout",
          reasons: [
            { index: 0, field: "data/price", message: "data/price must be >= 0", rule: "minimum" },
            { index: 0, field: "timestamp", message: "timestamp is in the future", rule: "future" },
          ],
        },
        // As queued before the columns existed: no type, no rule.
        { index: 1, payload: "{}", reasons: [{ index: 1, field: "data", message: "data is required" }] },
      ],
    };
    await deliver(QUEUE, [{ body }]);
    const logged = await errorsFrom(requestId);
    expect(logged.map((r) => [r.category, r.name, r.field, r.rule])).toEqual([
      ["shop", "checkout", "data/price", "minimum"],
      [null, null, "data", null],
    ]);

    const malformed: Delivery = { id: unique("malformed-columns"), body: { kind: "mystery" } };
    await deliver(QUEUE, [malformed]);
    const [entry] = await errorsFrom(malformed.id!);
    expect(entry).toMatchObject({ kind: "malformed_message", category: null, name: null, field: "kind" });
    expect(entry!.rule).toEqual(expect.any(String));
  });

  it("stores nothing twice when a message is redelivered", async () => {
    const session = unique("consumer-redelivery");
    const message = { id: unique("redelivered"), body: eventsMessage([prepared(session), prepared(session)]) };
    const first = await deliver(QUEUE, [{ ...message, attempts: 1 }]);
    expect(first.result.explicitAcks).toEqual([message.id]);
    const again = await deliver(QUEUE, [{ ...message, attempts: 2 }]);
    expect(again.result.explicitAcks).toEqual([message.id]);
    expect(await rowsOf(session)).toHaveLength(2);
  });

  it("stores an event_id once when two messages of one batch carry it", async () => {
    const session = unique("consumer-dup");
    const event = prepared(session);
    const { result } = await deliver(QUEUE, [
      { body: eventsMessage([event]) },
      { body: eventsMessage([{ ...event, data: '{"copy":2}' }, prepared(session)]) },
    ]);
    expect(result.explicitAcks).toHaveLength(2);
    const rows = await rowsOf(session);
    expect(rows).toHaveLength(2);
    expect(rows.find((r) => r.event_id === event.event_id)!.data).toBe(event.data);
  });
});

describe("error-log entries on redelivery", () => {
  it("logs a refused event, a malformed message and a dead letter once, however often their message is delivered", async () => {
    const requestId = unique("redelivered-invalid");
    const invalid: Delivery = {
      id: unique("invalid-msg"),
      body: {
        kind: "invalid",
        app: "app-9",
        received_at: 1_700_000_000_000_002,
        request_id: requestId,
        items: [
          {
            index: 0,
            payload: '{"session_id":""}',
            reasons: [{ index: 0, field: "session_id", message: "session_id must not be empty" }],
          },
          {
            index: 4,
            payload: '"text"',
            reasons: [{ index: 4, field: null, message: "each event must be a JSON object" }],
          },
        ],
      } satisfies QueueMessage,
    };
    const malformed: Delivery = { id: unique("malformed-msg"), body: { kind: "mystery" } };
    for (const attempts of [1, 2, 3])
      await deliver(QUEUE, [
        { ...invalid, attempts },
        { ...malformed, attempts },
      ]);
    expect((await errorsFrom(requestId)).map((r) => r.payload)).toEqual(['{"session_id":""}', '"text"']);
    expect(await errorsFrom(malformed.id!)).toHaveLength(1);

    const dead: Delivery = { id: unique("dead-msg"), body: "garbage", attempts: 6 };
    await deliver(DLQ, [dead]);
    await deliver(DLQ, [dead]);
    expect(await errorsFrom(dead.id!)).toHaveLength(1);
  });

  it("keeps two refused events of one request apart, and the same index of two requests apart", async () => {
    const [r1, r2] = [unique("req"), unique("req")];
    const message = (requestId: string): QueueMessage => ({
      kind: "invalid",
      app: null,
      received_at: 1,
      request_id: requestId,
      items: [0, 1].map((index) => ({
        index,
        payload: "{}",
        reasons: [{ index, field: "data", message: "data is required" }],
      })),
    });
    await deliver(QUEUE, [{ body: message(r1) }, { body: message(r2) }]);
    expect(await errorsFrom(r1)).toHaveLength(2);
    expect(await errorsFrom(r2)).toHaveLength(2);
  });
});

describe("dead-letter consumer", () => {
  it("records every dead letter in the error log, reports to Sentry, and acks the batch", async () => {
    const sentBefore = await deadLetterReports();
    const deliveries = [
      { id: unique("dead-1"), body: eventsMessage([prepared(unique("dlq"))]), attempts: 6 },
      { id: unique("dead-2"), body: "garbage", attempts: 6 },
    ];
    const { result } = await deliver(DLQ, deliveries);
    expect(result.ackAll).toBe(true);
    expect(result.retryMessages).toEqual([]);
    for (const d of deliveries) {
      const [row] = await errorsFrom(d.id);
      expect(row).toMatchObject({ kind: "dead_letter", payload: JSON.stringify(d.body) });
      expect(JSON.parse(row!.reasons as string)[0].message).toMatch(/after 6 delivery attempts to the-eye-events-dlq/);
    }
    // The dead letter's events are not stored by the dead-letter consumer.
    const session = (deliveries[0]!.body as { events: PreparedEvent[] }).events[0]!.session_id;
    expect(await rowsOf(session)).toHaveLength(0);

    const deadline = Date.now() + 10_000;
    while ((await deadLetterReports()) <= sentBefore && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(await deadLetterReports()).toBeGreaterThan(sentBefore);
  });
});

/** How many envelopes the loopback Sentry has received about dead letters. */
async function deadLetterReports(): Promise<number> {
  const received = (await (await fetch(env.SENTRY_RECEIVER)).json()) as { body: string }[];
  return received.filter((e) => e.body.includes("reached the dead-letter queue the-eye-events-dlq")).length;
}

describe("backoff", () => {
  it("doubles from 2 seconds per attempt, capped at five minutes", () => {
    expect([1, 2, 3, 4, 5, 8, 9, 20].map(backoff)).toEqual([2, 4, 8, 16, 32, 256, 300, 300]);
    expect(backoff(0)).toBe(2);
  });
});
