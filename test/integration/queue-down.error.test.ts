// When the Queue refuses work (SPEC §2): 503 with Retry-After, and the body says how much it
// took, so nothing is half-accepted silently. The Queue binding is replaced by one that fails
// after a given number of sendBatch calls; the app under test is the real one.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { createApp } from "../../src/app";
import { BASE, DEV_WRITE_KEY, makeEvent } from "../helpers/api";

function failingQueue(succeedFirst: number) {
  const sent: unknown[][] = [];
  const queue = {
    async send() {
      throw new Error("queue down");
    },
    async sendBatch(messages: { body: unknown }[]) {
      if (sent.length >= succeedFirst) throw new Error("Queue sendBatch failed: service unavailable");
      sent.push(messages.map((m) => m.body));
    },
  };
  return { queue: queue as unknown as Queue, sent };
}

async function post(body: unknown, queue: Queue) {
  const request = new Request(`${BASE}/api/event/`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${DEV_WRITE_KEY}`,
      "content-type": "application/json",
      "cf-connecting-ip": crypto.randomUUID(),
    },
    body: JSON.stringify(body),
  });
  // A real execution context: what the request leaves running in the background is awaited, and its failures surface.
  const ctx = createExecutionContext();
  const res = await createApp().fetch(request, { ...env, EVENTS_QUEUE: queue, SENTRY_DSN: undefined }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

it("answers 503 with Retry-After and accepted 0 when the queue takes nothing", async () => {
  const { queue } = failingQueue(0);
  const res = await post(makeEvent(), queue);
  expect(res.status).toBe(503);
  expect(res.headers.get("retry-after")).toBe("5");
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ success: false, code: "queue_unavailable", accepted: 0 });
  expect(String(body.message)).not.toContain("service unavailable");
});

it("says how many events the queue took before failing, and that resending is safe", async () => {
  const { queue, sent } = failingQueue(1);
  // ~500 KB of events: more than one sendBatch (each ≤ 224 KiB), so the second call fails.
  const events = Array.from({ length: 100 }, () => makeEvent({ data: { blob: "x".repeat(5000) } }));
  const res = await post(events, queue);
  expect(res.status).toBe(503);
  const body = (await res.json()) as { accepted: number; message: string };
  const queued = sent[0]!.reduce<number>((n, m) => n + (m as { events: unknown[] }).events.length, 0);
  expect(queued).toBeGreaterThan(0);
  expect(queued).toBeLessThan(100);
  expect(body.accepted).toBe(queued);
  expect(body.message).toMatch(/resending the same request is safe/);
});
