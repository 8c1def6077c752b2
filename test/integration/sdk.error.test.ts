// What the SDK routes refuse, and how (issue 19, SPEC §2): each invalid message refused by the SDK's
// own field name in POST /api/event/'s error shape, the valid ones stored; none valid is a 400 (which
// the SDKs drop rather than retry); every refusal in the error log without the IP address or the
// key; Segment's size limits named; payload schemas, the hidden-problem checks and the queue's 503
// applying to SDK messages as to any event.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { BASE, DEV_WRITE_KEY } from "../helpers/api";
import { basic, errorEntries, sdkPost, sessionEvents, uid } from "../helpers/sdk";

interface Refusal {
  success: false;
  code?: string;
  message: string;
  accepted?: number;
  errors: { index: number; field: string | null; message: string; rule: string }[];
}

describe.concurrent("SDK messages that cannot be events", () => {
  it("Segment: refuses each invalid message by its own field, stores the rest, and logs the refusals without IP or key", async () => {
    const session = uid("seg-invalid");
    const tag = crypto.randomUUID().slice(0, 8);
    const res = await sdkPost(
      "/v1/batch",
      {
        writeKey: DEV_WRITE_KEY,
        batch: [
          { type: "track", anonymousId: session, event: `ok-${tag}` },
          { type: "track", event: `nobody-${tag}`, context: { ip: "192.0.2.44" } },
          { type: "launch", anonymousId: session },
          { type: "track", anonymousId: session, event: "" },
          { type: "track", anonymousId: session, event: `late-${tag}`, timestamp: "2999-01-01T00:00:00Z" },
          { type: "group", anonymousId: session },
          { type: "track", anonymousId: session, event: `badtime-${tag}`, timestamp: "yesterday" },
          "not an object",
        ],
      },
      {},
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as Refusal;
    expect(body.success).toBe(false);
    expect(body.accepted).toBe(1);
    expect(body.errors.map((e) => [e.index, e.field, e.rule])).toEqual([
      [1, "userId", "required"],
      [2, "type", "invalid_value"],
      [3, "event", "custom"],
      [4, "timestamp", "future"],
      [5, "groupId", "required"],
      [6, "timestamp", "custom"],
      [7, null, "invalid_type"],
    ]);
    expect(body.errors[1]!.message).toBe("type must be one of track, page, screen, identify, group, alias");
    expect(body.errors[2]!.message).toBe("event must not be empty");
    expect((await sessionEvents(session, 1)).map((e) => e.name)).toEqual([`ok-${tag}`]);

    // In the error log, typed by the mapping (category track, the event's name), payload as sent without its IP address.
    const [entry] = await errorEntries(`kind=invalid_event&category=track&name=nobody-${tag}`, 1);
    expect(entry).toMatchObject({ field: "userId", rule: "required" });
    expect(entry!.payload).toContain(`nobody-${tag}`);
    expect(entry!.payload).not.toContain("192.0.2.44");
    const [late] = await errorEntries(`kind=invalid_event&name=late-${tag}`, 1);
    expect(late).toMatchObject({ category: "track", field: "timestamp", rule: "future" });
  });

  it("PostHog: refuses events without distinct_id, recordings' events and a bad sent_at by name, logs them without $ip or token", async () => {
    const session = uid("ph-invalid");
    const tag = crypto.randomUUID().slice(0, 8);
    const res = await sdkPost("/e/", {
      api_key: DEV_WRITE_KEY,
      batch: [
        { event: `ok-${tag}`, properties: { distinct_id: session } },
        { event: `anon-${tag}`, properties: { $ip: "192.0.2.45", token: DEV_WRITE_KEY } },
        { event: "$snapshot", properties: { distinct_id: session, $snapshot_data: [] } },
        { event: 42, properties: { distinct_id: session } },
        {
          event: `sent-${tag}`,
          properties: { distinct_id: session },
          timestamp: "2024-01-01T00:00:00Z",
          sent_at: "soon",
        },
      ],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Refusal & { status: number };
    expect(body).toMatchObject({ status: 1, success: false, accepted: 1 });
    expect(body.errors.map((e) => [e.index, e.field, e.rule])).toEqual([
      [1, "distinct_id", "required"],
      [2, "event", "not_supported"],
      [3, "event", "invalid_type"],
      [4, "sent_at", "invalid_format"],
    ]);
    const [entry] = await errorEntries(`kind=invalid_event&name=anon-${tag}`, 1);
    expect(entry).toMatchObject({ category: "track", field: "distinct_id" });
    expect(entry!.payload).not.toContain("192.0.2.45");
    expect(entry!.payload).not.toContain(DEV_WRITE_KEY);
  });

  it("answers 400 when no message is valid (the SDKs drop rather than retry it), as POST /api/event/ does", async () => {
    for (const [path, body, headers] of [
      ["/v1/track", { event: "no identity" }, basic(DEV_WRITE_KEY)],
      ["/e/", { api_key: DEV_WRITE_KEY, batch: [{ event: "x" }, { event: "y" }] }, {}],
    ] as const) {
      const res = await sdkPost(path, body, headers);
      expect(res.status, path).toBe(400);
      const refusal = (await res.json()) as Refusal;
      expect(refusal.code).toBe("invalid_events");
      expect(refusal.errors.length).toBeGreaterThan(0);
    }
    const empty = await sdkPost("/v1/batch", { batch: [] }, basic(DEV_WRITE_KEY));
    expect(((await empty.json()) as Refusal).message).toBe("the batch holds no messages");
    const many = await sdkPost("/e/", { api_key: DEV_WRITE_KEY, batch: Array(501).fill({ event: "x" }) });
    expect([many.status, ((await many.json()) as Refusal).message]).toEqual([
      400,
      "too many events: 501, at most 500 per request",
    ]);
  });

  it("holds Segment's limits, or ours where smaller, and names them: 32 KB a call and a message, 500 KB a batch", async () => {
    const pad = (n: number) => "x".repeat(n);
    const call = await sdkPost(
      "/v1/track",
      { anonymousId: "a", event: "big", properties: { pad: pad(33_000) } },
      basic(DEV_WRITE_KEY),
    );
    expect(call.status).toBe(413);
    expect(((await call.json()) as Refusal).message).toBe(
      "the body is larger than the 32768-byte limit (Segment's limit per call)",
    );
    const batch = await sdkPost(
      "/v1/batch",
      {
        batch: Array.from({ length: 20 }, () => ({
          type: "track",
          anonymousId: "a",
          event: "e",
          properties: { pad: pad(30_000) },
        })),
      },
      basic(DEV_WRITE_KEY),
    );
    expect(batch.status).toBe(413);
    expect(((await batch.json()) as Refusal).message).toMatch(/512000-byte limit \(Segment's limit per batch\)$/);

    const session = uid("seg-big");
    const one = await sdkPost(
      "/v1/batch",
      {
        batch: [
          { type: "track", anonymousId: session, event: "small" },
          { type: "track", anonymousId: session, event: "large", properties: { pad: pad(33_000) } },
        ],
      },
      basic(DEV_WRITE_KEY),
    );
    const body = (await one.json()) as Refusal;
    expect(body.errors).toEqual([
      {
        index: 1,
        field: null,
        rule: "too_big",
        message: "the message is larger than 32768 bytes (Segment's limit per message)",
      },
    ]);
    // PostHog's own limits are larger than ours: ours apply (1 MiB a body, 32 KiB of data an event).
    const ph = await sdkPost("/batch/", {
      api_key: DEV_WRITE_KEY,
      batch: [{ event: "e", distinct_id: "d", properties: { pad: pad(40_000) } }],
    });
    expect(((await ph.json()) as Refusal).errors[0]).toMatchObject({ field: "properties", rule: "too_big" });
  });

  it("refuses what JSON.parse would hide, by message: a key given twice, a number a double changes; in the envelope, the request", async () => {
    const session = uid("hidden");
    const body =
      `{"batch":[{"type":"track","anonymousId":"${session}","event":"ok"},` +
      `{"type":"track","anonymousId":"${session}","event":"dup","properties":{"a":1,"a":2}},` +
      `{"type":"track","anonymousId":"${session}","event":"num","properties":{"n":12345678901234567890}}]}`;
    const res = await sdkPost("/v1/batch", body, basic(DEV_WRITE_KEY));
    expect(res.status).toBe(200);
    expect(((await res.json()) as Refusal).errors.map((e) => [e.index, e.field, e.rule])).toEqual([
      [1, "properties", "duplicate_key"],
      [2, "properties", "inexact_number"],
    ]);
    const envelope = await sdkPost(
      "/e/",
      `{"api_key":"${DEV_WRITE_KEY}","batch":[{"event":"a","distinct_id":"d"}],"batch":[{"event":"b","distinct_id":"d"}]}`,
    );
    expect(envelope.status).toBe(400);
    expect(((await envelope.json()) as Refusal).message).toMatch(/batch appears more than once/);
  });

  it("refuses a second message with the same messageId in one request, naming the first by its index", async () => {
    const res = await sdkPost(
      "/v1/batch?dry_run=1",
      {
        batch: [
          { type: "track", anonymousId: "a", event: "x" },
          { type: "track", anonymousId: "a", event: "one", messageId: "m-1" },
          { type: "track", anonymousId: "a", event: "two", messageId: "m-1" },
        ],
      },
      basic(DEV_WRITE_KEY),
    );
    const dry = (await res.json()) as { events: { errors?: Refusal["errors"] }[] };
    expect(dry.events[2]!.errors).toEqual([
      {
        index: 2,
        field: "messageId",
        message: "messageId repeats the message at index 1; an event_id is stored once",
        rule: "duplicate",
      },
    ]);
  });

  it("applies payload schemas to SDK messages, the failing field named as the SDK sent it", async () => {
    const name = `Purchase ${crypto.randomUUID().slice(0, 8)}`;
    await env.DB.prepare(
      "INSERT INTO payload_schemas (category, name, app_id, schema, updated_at) VALUES ('track', ?, '', ?, 0)",
    )
      .bind(
        name,
        JSON.stringify({ type: "object", properties: { properties: { type: "object", required: ["price"] } } }),
      )
      .run();
    await new Promise((r) => setTimeout(r, 1100));
    const res = await sdkPost(
      "/v1/batch?dry_run=1",
      {
        batch: [
          { type: "track", anonymousId: "a", event: name, properties: { price: 1 } },
          { type: "track", anonymousId: "a", event: name, properties: {} },
        ],
      },
      basic(DEV_WRITE_KEY),
    );
    const dry = (await res.json()) as { accepted: number; events: { accepted: boolean; errors?: Refusal["errors"] }[] };
    expect(dry.accepted).toBe(1);
    expect(dry.events[1]!.errors![0]).toMatchObject({ index: 1, field: "properties", rule: "required" });
  });

  it("refuses encodings it cannot read by name: lz64, another Content-Type, a form without data", async () => {
    const lz = await sdkPost("/e/?compression=lz64", "data=N4Ig", {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect([lz.status, ((await lz.json()) as Refusal).message]).toEqual([
      415,
      "compression must be gzip-js, gzip or base64, not lz64 (lz64 is not supported)",
    ]);
    const csv = await sdkPost("/v1/track", "a,b", { ...basic(DEV_WRITE_KEY), "content-type": "text/csv" });
    expect(csv.status).toBe(415);
    const form = await sdkPost("/e/", "nothing=here", { "content-type": "application/x-www-form-urlencoded" });
    expect([form.status, ((await form.json()) as Refusal).message]).toEqual([
      400,
      "a form body must carry the events as data=",
    ]);
    const notGzip = await sdkPost("/e/?compression=gzip-js", "{}", { "content-type": "text/plain" });
    expect(notGzip.status).toBe(400);
  });

  it("answers 503 with Retry-After when the queue refuses the events: the SDKs send again", async () => {
    const queue = {
      async sendBatch() {
        throw new Error("queue down");
      },
    } as unknown as Queue;
    const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
    for (const [path, body] of [
      ["/v1/track", { anonymousId: "a", event: "e" }],
      ["/e/", { api_key: DEV_WRITE_KEY, batch: [{ event: "e", distinct_id: "d" }] }],
    ] as const) {
      const request = new Request(`${BASE}${path}`, {
        method: "POST",
        headers: {
          ...basic(DEV_WRITE_KEY),
          "content-type": "application/json",
          "cf-connecting-ip": crypto.randomUUID(),
        },
        body: JSON.stringify(body),
      });
      const res = await createApp().fetch(request, { ...env, EVENTS_QUEUE: queue, SENTRY_DSN: undefined }, ctx);
      expect(res.status, path).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
    }
  });
});
