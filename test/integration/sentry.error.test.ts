// Sentry everywhere (SPEC §5, §7; issue 9): a bug in fetch gets the client a 500 with a request id
// and nothing else, and a failure in fetch, queue or scheduled reaches Sentry (the loopback
// stand-in) tagged with its handler and what it served, with the release and environment, and
// without key material. The generations table is dropped for this file only (its storage is its own)
// to make D1 fail for real.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import worker from "../../src/index";
import { createSentry, RELEASE } from "../../src/shared/sentry";
import { api, BASE, DEV_READ_KEY, DEV_WRITE_KEY, makeApp, makeEvent } from "../helpers/api";
import { deliver } from "../helpers/queue";
import { dropStorage } from "../helpers/stored";

/** What every envelope must say, and must not: release, environment, its handler; no key, no Authorization. */
function expectWellFormed(body: string, handler: string) {
  expect(body).toContain(`"release":"${RELEASE}"`);
  expect(body).toContain(`"environment":"${env.ENVIRONMENT}"`);
  expect(body).toContain(`"handler":"${handler}"`);
  expect(body).not.toMatch(/eye_(w|r|dev)_/);
  expect(body.toLowerCase()).not.toContain("authorization");
}

interface Envelope {
  path: string;
  body: string;
}

async function envelopesMentioning(text: string, timeoutMs = 10_000): Promise<Envelope[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const received = (await (await fetch(env.SENTRY_RECEIVER)).json()) as Envelope[];
    const matching = received.filter((e) => e.body.includes(text));
    if (matching.length > 0 || Date.now() > deadline) return matching;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A queue binding that keeps what the consumer holds (re-sends), instead of the real queue redelivering it. */
function heldCopies() {
  const sent: unknown[] = [];
  const queue = {
    sendBatch: async (messages: Iterable<MessageSendRequest>) => {
      for (const m of messages) sent.push(m.body);
    },
  } as unknown as Queue;
  return { queue, sent };
}

beforeAll(async () => {
  await dropStorage();
});

describe("an unhandled error in fetch", () => {
  it("answers 500 with a request id and no stack, SQL or internals", async () => {
    const res = await api("/api/event/?category=sentry-test");
    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const text = await res.text();
    const body = JSON.parse(text) as Record<string, unknown>;
    expect(body).toEqual({
      success: false,
      code: "internal_error",
      message: expect.any(String) as string,
      request_id: res.headers.get("x-request-id"),
    });
    expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(text).not.toMatch(
      /no such table|select|from "?(events|generations)|D1_ERROR|SQLITE|stack|\.ts:\d+|at async/i,
    );
  });

  it("reaches Sentry with the exception and request context, and without the Authorization key", async () => {
    const res = await api("/api/sessions/sentry-session/events?limit=5");
    expect(res.status).toBe(500);
    const requestId = res.headers.get("x-request-id")!;

    const [envelope] = await envelopesMentioning(requestId);
    expect(envelope, "no envelope carried the request id").toBeDefined();
    expect(envelope!.path).toMatch(/^\/api\/1\/envelope\//);
    const body = envelope!.body;
    expect(body).toContain('"exception"');
    expect(body).toMatch(/no such table: (generations|generation_apps|sessions|event_types)/);
    expect(body).toContain(`${BASE}/api/sessions/sentry-session/events`);
    expect(body).toContain('"method":"GET"');
    // The key the request carried never leaves.
    expect(body).not.toContain(DEV_READ_KEY);
    expect(body.toLowerCase()).not.toContain('"authorization"');
    expectWellFormed(body, "fetch");
  });

  it("is off, not a crash, when SENTRY_DSN is unset", async () => {
    const noSentry = { ...env, SENTRY_DSN: undefined };
    expect(createSentry(noSentry, createExecutionContext())).toBeUndefined();
    // The consumer cannot store (no generations table) and holds the message, with no Sentry to tell.
    const body = {
      kind: "events",
      app: null,
      received_at: 1,
      events: [{ event_id: crypto.randomUUID(), session_id: "s", category: "c", name: "n", data: "{}", timestamp: 1 }],
    };
    const held = heldCopies();
    const { result } = await deliver("the-eye-events", [{ id: "no-sentry", body }], {
      ...noSentry,
      EVENTS_QUEUE: held.queue,
    });
    expect(result.outcome).toBe("ok");
    expect(result.explicitAcks).toEqual(["no-sentry"]);
    expect(held.sent).toEqual([{ ...body, held: 1 }]);
  });
});

describe("a write key sent as ?key=", () => {
  it("never reaches Sentry, while the rest of the query string does", async () => {
    // A queue failure on the ingestion path is reported with the request; the key rides in the URL (sendBeacon).
    const marker = `marker-${crypto.randomUUID()}`;
    const request = new Request(`${BASE}/api/event/?key=${DEV_WRITE_KEY}&probe=${marker}`, {
      method: "POST",
      headers: { "content-type": "text/plain;charset=UTF-8", "cf-connecting-ip": crypto.randomUUID() },
      body: JSON.stringify(makeEvent()),
    });
    const failing = {
      async sendBatch() {
        throw new Error(`queue down ${marker}`);
      },
    } as unknown as Queue;
    const ctx = createExecutionContext();
    const res = await createApp().fetch(request, { ...env, EVENTS_QUEUE: failing }, ctx);
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    const [envelope] = await envelopesMentioning(marker);
    expect(envelope, "the failure was reported").toBeDefined();
    expect(envelope!.body).toContain(`probe=${marker}`);
    expect(envelope!.body).not.toContain(DEV_WRITE_KEY);
    expect(envelope!.body).not.toMatch(/[?&]key=/);
  });
});

describe("a failure in queue()", () => {
  it("reaches Sentry tagged with the handler and the queue, with release and environment, and no key material", async () => {
    // An application with keys, whose message the consumer cannot store (no generations table): it is held, and Sentry hears why.
    const app = await makeApp();
    const id = `sentry-queue-${crypto.randomUUID()}`;
    const body = {
      kind: "events",
      app: app.appId,
      received_at: Date.now() * 1000,
      events: [{ event_id: crypto.randomUUID(), session_id: "s", category: "c", name: "n", data: "{}", timestamp: 1 }],
    };
    const held = heldCopies();
    const { result } = await deliver("the-eye-events", [{ id, body }], { ...env, EVENTS_QUEUE: held.queue });
    expect(result.explicitAcks).toEqual([id]);
    expect(held.sent).toHaveLength(1);

    const [envelope] = await envelopesMentioning(id);
    expect(envelope, "no envelope named the message").toBeDefined();
    expect(envelope!.body).toMatch(/no such table: (generations|sessions|event_types)/);
    expect(envelope!.body).toContain('"queue":"the-eye-events"');
    expectWellFormed(envelope!.body, "queue");
    expect(envelope!.body).not.toContain(app.writeKey);
    expect(envelope!.body).not.toContain(app.readKey);
  });
});

describe("a failure in scheduled()", () => {
  it("reaches Sentry tagged with the handler and the cron, with release and environment, and no key material, and throws", async () => {
    // A scheduled time no other run uses names this run's envelope.
    const scheduledTime = new Date(Date.UTC(2031, 0, 1) + Math.floor(Math.random() * 1e10));
    const controller = createScheduledController({ scheduledTime, cron: "*/5 * * * *" });
    const ctx = createExecutionContext();
    await expect(worker.scheduled(controller, env, ctx)).rejects.toThrow();
    await waitOnExecutionContext(ctx);

    const [envelope] = await envelopesMentioning(scheduledTime.toISOString());
    expect(envelope, "no envelope named the scheduled time").toBeDefined();
    expect(envelope!.body).toContain('"exception"');
    expect(envelope!.body).toContain('"cron":"*/5 * * * *"');
    expectWellFormed(envelope!.body, "scheduled");
  });
});
