// Nothing answered 202 is lost (SPEC §3): while D1 cannot write — full, or failing every statement
// for longer than the queue's retry schedule — the consumer holds each message as a fresh copy with
// a growing delay and acks the original only once the copy is queued; a message D1 refuses while it
// answers is retried toward the dead-letter queue, which keeps it whole in R2 for the maintenance to
// replay, exactly once. D1 and the queue are the real bindings, wrapped to fail or to record.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { backoff, DEAD_LETTER_PREFIX, deadLetterKey, holdDelay, replayDeadLetters } from "../../src/consume/consumer";
import type { PreparedEvent, QueueMessage } from "../../src/shared/schemas";
import { deliver } from "../helpers/queue";
import { storedCount as countStored } from "../helpers/stored";

const QUEUE = "the-eye-events";
const DLQ = "the-eye-events-dlq";
/** What the queue's own schedule gives a message before its dead letter: five retries, 2 + 4 + 8 + 16 + 32 s. */
const RETRY_SCHEDULE_SECONDS = [1, 2, 3, 4, 5].map(backoff).reduce((a, b) => a + b, 0);

let serial = 0;
const eventsMessage = (session: string, n: number): QueueMessage => ({
  kind: "events",
  app: null,
  received_at: 1_700_000_000_000_000,
  events: Array.from({ length: n }, (): PreparedEvent => {
    serial += 1;
    return {
      event_id: crypto.randomUUID(),
      session_id: session,
      category: "hold",
      name: "outage",
      data: JSON.stringify({ serial }),
      timestamp: Date.UTC(2024, 0, 2, 3, 4, 5) * 1000 + serial,
    };
  }),
});

const storedCount = (session: string) => countStored("session_id = ?", [session]);

/** env.DB whose every statement fails with `message`, as D1 does while it is down, overloaded or full. */
function failingDb(message: string): D1Database {
  const fail = () => Promise.reject(new Error(message));
  const statement: D1PreparedStatement = new Proxy({} as D1PreparedStatement, {
    get: (_, prop) => (prop === "bind" ? () => statement : fail),
  });
  return new Proxy(env.DB, {
    get: (target, prop) => {
      if (prop === "prepare") return () => statement;
      if (prop === "batch" || prop === "exec") return fail;
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A queue binding that records what is sent to it, with the delay asked; `failAfter` sendBatch calls, it throws. */
function recordingQueue(failAfter = Infinity) {
  const sent: { body: unknown; delaySeconds?: number }[] = [];
  let calls = 0;
  const queue = {
    send: async (body: unknown, options?: QueueSendOptions) => {
      sent.push({ body, delaySeconds: options?.delaySeconds });
    },
    sendBatch: async (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => {
      if (++calls > failAfter) throw new Error("Queue send failed: the queue is unavailable");
      for (const m of messages) sent.push({ body: m.body, delaySeconds: options?.delaySeconds });
    },
  } as unknown as Queue;
  return { queue, sent };
}

describe("an outage longer than the retry schedule", () => {
  it("holds every message as a fresh copy, waiting longer each time, and stores each event once when D1 is back", async () => {
    const session = `hold-outage-${crypto.randomUUID()}`;
    let body: unknown = eventsMessage(session, 5);
    const down = failingDb("D1_ERROR: Network connection lost.");
    const delays: number[] = [];
    for (let held = 1; held <= 12; held++) {
      const events = recordingQueue();
      const id = `hold-${held}-${crypto.randomUUID()}`;
      // A held copy is a new message: the queue counts its attempts from one again.
      const { result, retried } = await deliver(QUEUE, [{ id, body, attempts: 1 }], {
        ...env,
        DB: down,
        EVENTS_QUEUE: events.queue,
      });
      expect(retried, "a retry would count toward max_retries and the dead-letter queue").toEqual([]);
      expect(result.explicitAcks).toEqual([id]);
      expect(events.sent).toHaveLength(1);
      expect(events.sent[0]!.body).toMatchObject({ kind: "events", held });
      expect(events.sent[0]!.delaySeconds).toBe(holdDelay(held));
      delays.push(events.sent[0]!.delaySeconds!);
      body = events.sent[0]!.body;
    }
    expect(delays.slice(0, 4)).toEqual([5, 10, 20, 40]);
    expect(Math.max(...delays)).toBe(900);
    const heldSeconds = delays.reduce((a, b) => a + b, 0);
    expect(heldSeconds).toBeGreaterThan(10 * RETRY_SCHEDULE_SECONDS);
    expect(await storedCount(session)).toBe(0);

    // D1 is back: the last copy is stored, and a duplicate delivery of it changes nothing.
    const back = await deliver(QUEUE, [{ id: "hold-back", body, attempts: 1 }]);
    expect(back.result.explicitAcks).toEqual(["hold-back"]);
    await deliver(QUEUE, [{ id: "hold-back-again", body, attempts: 1 }]);
    expect(await storedCount(session)).toBe(5);
  });

  it("holds a batch while D1 is full (SQLITE_FULL), and retries only the copies the queue would not take", async () => {
    const full = failingDb("D1_ERROR: database or disk is full: SQLITE_FULL");
    // 101 messages: two sendBatch calls (100 messages at most each); the second fails.
    const events = recordingQueue(1);
    const deliveries = Array.from({ length: 101 }, (_, i) => ({
      id: `full-${i}`,
      body: eventsMessage(`hold-full-${i}`, 1),
      attempts: 1,
    }));
    const { result, retried } = await deliver(QUEUE, deliveries, { ...env, DB: full, EVENTS_QUEUE: events.queue });
    expect(events.sent).toHaveLength(100);
    expect(events.sent.every((s) => s.delaySeconds === holdDelay(1))).toBe(true);
    expect(result.explicitAcks).toHaveLength(100);
    // The copy that could not be queued stays with its original, delivered again after the same wait.
    expect(retried).toEqual([{ id: "full-100", delaySeconds: holdDelay(1) }]);
  });

  it("retries a message D1 refuses while it answers, toward the dead-letter queue, and stores the rest", async () => {
    const poison = `hold-poison-${crypto.randomUUID()}`;
    const fine = `hold-fine-${crypto.randomUUID()}`;
    await env.DB.prepare(
      `CREATE TRIGGER refuse_poison BEFORE INSERT ON sessions WHEN NEW.session_id = '${poison}' BEGIN SELECT RAISE(ABORT, 'refused'); END`,
    ).run();
    try {
      const events = recordingQueue();
      const { result, retried } = await deliver(
        QUEUE,
        [
          { id: "poison-1", body: eventsMessage(poison, 2), attempts: 3 },
          { id: "fine-1", body: eventsMessage(fine, 2), attempts: 1 },
        ],
        { ...env, EVENTS_QUEUE: events.queue },
      );
      expect(events.sent, "not held: D1 answers").toEqual([]);
      expect(result.explicitAcks).toEqual(["fine-1"]);
      expect(retried).toEqual([{ id: "poison-1", delaySeconds: backoff(3) }]);
      expect(await storedCount(fine)).toBe(2);
      expect(await storedCount(poison)).toBe(0);
    } finally {
      await env.DB.prepare("DROP TRIGGER refuse_poison").run();
    }
  });
});

describe("the dead-letter queue", () => {
  it("keeps each message whole in R2, and the maintenance's replay stores its events once and removes it", async () => {
    const session = `dead-whole-${crypto.randomUUID()}`;
    const body = eventsMessage(session, 3);
    const id = `dead-${crypto.randomUUID()}`;
    const { result } = await deliver(DLQ, [{ id, body, attempts: 6 }]);
    expect(result.ackAll).toBe(true);
    const kept = await env.ARCHIVE.get(deadLetterKey(DLQ, id));
    expect(JSON.parse(await kept!.text())).toEqual(body);
    expect(await storedCount(session)).toBe(0);

    const run = await replayDeadLetters(env, { deadline: Date.now() + 10_000 });
    expect(run).toMatchObject({ done: true, failed: 0 });
    expect(run.replayed).toBeGreaterThanOrEqual(1);
    expect(await storedCount(session)).toBe(3);
    expect(await env.ARCHIVE.head(deadLetterKey(DLQ, id))).toBeNull();

    // The same dead letter again (a redelivery of the dead-letter batch): still stored once.
    await deliver(DLQ, [{ id, body, attempts: 6 }]);
    await replayDeadLetters(env, { deadline: Date.now() + 10_000 });
    expect(await storedCount(session)).toBe(3);
  });

  it("leaves a dead letter in R2 while it still cannot be stored, for the next run", async () => {
    const session = `dead-again-${crypto.randomUUID()}`;
    const id = `dead-again-${crypto.randomUUID()}`;
    await deliver(DLQ, [{ id, body: eventsMessage(session, 1), attempts: 6 }]);
    const run = await replayDeadLetters(
      { ...env, DB: failingDb("D1_ERROR: Network connection lost.") },
      {
        deadline: Date.now() + 10_000,
      },
    );
    expect(run.failed).toBeGreaterThanOrEqual(1);
    expect(await env.ARCHIVE.head(deadLetterKey(DLQ, id))).not.toBeNull();
    await replayDeadLetters(env, { deadline: Date.now() + 10_000 });
    expect(await storedCount(session)).toBe(1);
    const left = await env.ARCHIVE.list({ prefix: DEAD_LETTER_PREFIX });
    expect(left.objects.map((o) => o.key)).not.toContain(deadLetterKey(DLQ, id));
  });

  it("holds dead letters in their own queue while R2 cannot take them", async () => {
    const dead = recordingQueue();
    const archive = new Proxy(env.ARCHIVE, {
      get: (target, prop) =>
        prop === "put"
          ? () => Promise.reject(new Error("R2 put failed: service unavailable"))
          : (Reflect.get(target, prop).bind?.(target) ?? Reflect.get(target, prop)),
    });
    const id = `dead-held-${crypto.randomUUID()}`;
    const body = eventsMessage(`dead-held-${crypto.randomUUID()}`, 1);
    const { result, retried } = await deliver(DLQ, [{ id, body, attempts: 6 }], {
      ...env,
      ARCHIVE: archive,
      DEAD_LETTERS: dead.queue,
    });
    expect(retried).toEqual([]);
    expect(result.explicitAcks).toEqual([id]);
    expect(dead.sent).toEqual([{ body: { ...body, held: 1 }, delaySeconds: holdDelay(1) }]);
    expect(await env.ARCHIVE.head(deadLetterKey(DLQ, id))).toBeNull();
  });
});
