// Packing events into Queue messages within the platform's limits (SPEC §2): a message ≤ 128 KB,
// a sendBatch ≤ 100 messages and ≤ 256 KB. Large but legal requests are chunked, never refused.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { eventMessages, invalidMessages } from "../../src/ingest/messages";
import { sendAll } from "../../src/shared/queue-send";
import { type PreparedEvent, type QueueMessage, queueMessage } from "../../src/shared/schemas";
import { excerpt, PAYLOAD_EXCERPT, packBySize } from "../../src/shared/sizes";
import { storedCount } from "../helpers/stored";

const MESSAGE_LIMIT = 128_000;
const BATCH_BYTES_LIMIT = 256_000;
const BATCH_COUNT_LIMIT = 100;

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).byteLength;

/** The real EVENTS_QUEUE, with every sendBatch call recorded (sizes as the bodies serialize). */
function recordingQueue(real: Queue) {
  const calls: { count: number; bytes: number; largest: number }[] = [];
  const queue = {
    send: (body: unknown) => real.send(body),
    sendBatch: async (messages: Iterable<MessageSendRequest>) => {
      const list = [...messages];
      const sizes = list.map((m) => bytes(m.body));
      calls.push({ count: list.length, bytes: sizes.reduce((a, b) => a + b, 0), largest: Math.max(...sizes) });
      return real.sendBatch(list);
    },
  } as Queue;
  return { queue, calls };
}

function preparedEvents(
  n: number,
  dataOf: (i: number) => unknown,
  session = `pack-${crypto.randomUUID()}`,
): PreparedEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    event_id: crypto.randomUUID(),
    session_id: session,
    category: "packing",
    name: "big",
    data: JSON.stringify(dataOf(i)),
    timestamp: Date.UTC(2022, 2, 3) * 1000 + i,
  }));
}

const countSession = (sessionId: string) => storedCount("session_id = ?", [sessionId]);

describe("packBySize", () => {
  it("keeps order and every item, each group within the byte and count caps", () => {
    const items = Array.from({ length: 1000 }, (_, i) => ({ i, size: 1 + ((i * 37) % 50) }));
    const groups = packBySize(items, (x) => x.size, 200, 7);
    expect(groups.flat()).toEqual(items);
    for (const g of groups) {
      expect(g.reduce((n, x) => n + x.size, 0)).toBeLessThanOrEqual(200);
      expect(g.length).toBeLessThanOrEqual(7);
    }
  });

  it("fills groups rather than splitting early", () => {
    expect(packBySize([5, 5, 5, 5, 5], (x) => x, 10).map((g) => g.length)).toEqual([2, 2, 1]);
  });

  it("sends an item larger than the cap alone, and nothing for nothing", () => {
    expect(packBySize([1, 50, 1], (x) => x, 10)).toEqual([[1], [50], [1]]);
    expect(packBySize([], () => 1, 10)).toEqual([]);
  });
});

describe("eventMessages", () => {
  it("packs 500 events of ~2 KB into several messages each under 128 KB, in order, all valid", () => {
    const events = preparedEvents(500, (i) => ({ i, blob: "x".repeat(2000) }));
    const messages = eventMessages(events, "pack-app", 123);
    expect(messages.length).toBeGreaterThan(5);
    for (const m of messages) {
      expect(bytes(m)).toBeLessThanOrEqual(MESSAGE_LIMIT);
      expect(queueMessage.safeParse(m).success).toBe(true);
      expect(m).toMatchObject({ kind: "events", app: "pack-app", received_at: 123 });
    }
    expect(messages.flatMap((m) => m.events)).toEqual(events);
  });

  it("keeps every message under 128 KB even for maximal data that doubles when escaped", () => {
    // 32 KiB of backslashes and quotes: each byte of serialized data becomes two in the message.
    const worst = preparedEvents(40, () => ({ s: '\\"'.repeat(8190) }));
    for (const e of worst) expect(e.data.length).toBe(32 * 1024);
    for (const m of eventMessages(worst, null, 1)) expect(bytes(m)).toBeLessThanOrEqual(MESSAGE_LIMIT);
  });
});

describe("invalidMessages", () => {
  it("cuts refused payloads to an excerpt and keeps every message under 128 KB", () => {
    const refused = Array.from({ length: 500 }, (_, index) => ({
      index,
      payload: { index, data: { blob: "é".repeat(40_000) } },
      reasons: [{ index, field: "data", message: "data is larger than 32768 bytes once serialized" }],
    }));
    const messages = invalidMessages(refused, "pack-app", 5, "req-1");
    expect(messages.flatMap((m) => (m.kind === "invalid" ? m.items : []))).toHaveLength(500);
    for (const m of messages) {
      expect(bytes(m)).toBeLessThanOrEqual(MESSAGE_LIMIT);
      expect(queueMessage.safeParse(m).success).toBe(true);
    }
  });
});

describe("invalidMessages: the refused event's type", () => {
  it("rides beside the excerpt when the event sent strings there, cut to 150 characters, and is absent otherwise", () => {
    const long = `${"x".repeat(149)}😀${"y".repeat(10_000)}`;
    const refused = [
      {
        index: 0,
        payload: { category: "nav", name: "view", data: { blob: "z".repeat(5000) } },
        reasons: [{ index: 0, field: "data/price", message: "…", rule: "minimum" }],
      },
      {
        index: 1,
        payload: { category: long, name: 7 },
        reasons: [{ index: 1, field: "category", message: "…", rule: "custom" }],
      },
      { index: 2, payload: "text", reasons: [{ index: 2, field: null, message: "each event must be a JSON object" }] },
    ];
    const [message] = invalidMessages(refused, null, 5, "req-type");
    const items = message!.kind === "invalid" ? message!.items : [];
    expect(items.map((i) => [i.category, i.name])).toEqual([
      ["nav", "view"],
      [`${"x".repeat(149)}😀`, undefined],
      [undefined, undefined],
    ]);
    // The rule survives the queue message's schema, which the consumer parses.
    const parsed = queueMessage.parse(JSON.parse(JSON.stringify(message)));
    expect(parsed.kind === "invalid" && parsed.items[0]!.reasons[0]!.rule).toBe("minimum");
    expect(parsed.kind === "invalid" && parsed.items[1]!.category).toBe(`${"x".repeat(149)}😀`);
  });
});

describe("excerpt", () => {
  it("keeps short payloads whole and cuts long ones", () => {
    expect(excerpt({ a: 1 })).toBe('{"a":1}');
    const long = excerpt({ s: "y".repeat(10_000) });
    expect(long).toHaveLength(PAYLOAD_EXCERPT + 1);
    expect(long.endsWith("…")).toBe(true);
  });

  it("never throws on what JSON cannot serialize", () => {
    let deep: unknown = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(excerpt(deep).length).toBeLessThanOrEqual(PAYLOAD_EXCERPT + 1);
    expect(excerpt({ n: 10n })).toMatch(/^\[not serializable/);
    expect(excerpt(undefined)).toBe("undefined");
  });
});

describe("sendAll", () => {
  it("sends a 500-event request of ~2 KB each through the real queue in legal batches, and the consumer stores it", async () => {
    const session = `pack-e2e-${crypto.randomUUID()}`;
    const events = preparedEvents(500, (i) => ({ i, blob: "z".repeat(1900) }), session);
    const messages = eventMessages(events, null, Date.now() * 1000);
    const { queue, calls } = recordingQueue(env.EVENTS_QUEUE);

    const result = await sendAll(queue, messages);
    expect(result).toEqual({ sent: messages.length });
    expect(calls.length).toBeGreaterThan(1);
    expect(calls.reduce((n, c) => n + c.count, 0)).toBe(messages.length);
    for (const c of calls) {
      expect(c.count).toBeLessThanOrEqual(BATCH_COUNT_LIMIT);
      expect(c.bytes).toBeLessThanOrEqual(BATCH_BYTES_LIMIT);
      expect(c.largest).toBeLessThanOrEqual(MESSAGE_LIMIT);
    }

    const deadline = Date.now() + 15_000;
    while ((await countSession(session)) < 500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await countSession(session)).toBe(500);
  });

  it("splits more than 100 small messages into batches of at most 100", async () => {
    const session = `pack-many-${crypto.randomUUID()}`;
    const messages: QueueMessage[] = preparedEvents(250, (i) => ({ i }), session).map((e) => ({
      kind: "events",
      app: null,
      received_at: 1,
      events: [e],
    }));
    const { queue, calls } = recordingQueue(env.EVENTS_QUEUE);
    expect(await sendAll(queue, messages)).toEqual({ sent: 250 });
    expect(calls.map((c) => c.count)).toEqual([100, 100, 50]);
  });

  it("stops at the first refused batch and reports how many messages went before it", async () => {
    const events = preparedEvents(500, (i) => ({ i, blob: "q".repeat(1900) }));
    const messages = eventMessages(events, null, 1);
    let calls = 0;
    let firstBatch = 0;
    const failing = {
      sendBatch: async (batch: Iterable<MessageSendRequest>) => {
        calls += 1;
        if (calls === 2) throw new Error("queue unavailable");
        firstBatch = [...batch].length;
      },
    } as unknown as Queue;
    const result = await sendAll(failing, messages);
    expect(calls).toBe(2);
    expect(result.sent).toBe(firstBatch);
    expect(result.sent).toBeLessThan(messages.length);
    expect(String(result.error)).toMatch(/queue unavailable/);
  });
});
