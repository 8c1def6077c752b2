// A bug in fetch (SPEC §5, §7): the client gets a 500 with a request id and nothing else; the
// exception reaches Sentry (the loopback stand-in), without the caller's key. The events table is
// dropped for this file only (its storage is its own) to make D1 fail for real.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { createSentry } from "../../src/sentry";
import { api, BASE, DEV_READ_KEY, DEV_WRITE_KEY, makeEvent } from "../helpers";
import { deliver } from "../queue-helpers";

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

beforeAll(async () => {
  await env.DB.prepare("DROP TABLE events").run();
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
    expect(text).not.toMatch(/no such table|select|from "?events|D1_ERROR|SQLITE|stack|\.ts:\d+|at async/i);
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
    expect(body).toMatch(/no such table: events/);
    expect(body).toContain(`${BASE}/api/sessions/sentry-session/events`);
    expect(body).toContain('"method":"GET"');
    // The key the request carried never leaves.
    expect(body).not.toContain(DEV_READ_KEY);
    expect(body.toLowerCase()).not.toContain('"authorization"');
  });

  it("is off, not a crash, when SENTRY_DSN is unset", async () => {
    const noSentry = { ...env, SENTRY_DSN: undefined };
    expect(createSentry(noSentry, createExecutionContext())).toBeUndefined();
    // The consumer fails to store (no events table) and retries, with no Sentry to tell.
    const body = {
      kind: "events",
      app: null,
      received_at: 1,
      events: [{ event_id: crypto.randomUUID(), session_id: "s", category: "c", name: "n", data: "{}", timestamp: 1 }],
    };
    const { result, retried } = await deliver("the-eye-events", [{ id: "no-sentry", body }], noSentry);
    expect(result.outcome).toBe("ok");
    expect(retried).toEqual([{ id: "no-sentry", delaySeconds: 2 }]);
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

