// Segment's HTTP Tracking API (SPEC §10, issue 19): the bodies @segment/analytics-node and
// analytics.js send (shapes as captured on the wire), the key where each carries it, and the one
// mapping (docs/sdks.md): session, category, name, data without the IP address, the event id from
// messageId (a resend stored once), the clock-skew correction to the microsecond, the edge context.
import { describe, expect, it } from "vitest";
import { parseTimestamp } from "../../src/shared/timestamp";
import { api, bearer, DEV_WRITE_KEY, makeApp } from "../helpers/api";
import { basic, gzip, sdkPost, sessionEvents, uid } from "../helpers/sdk";

const micros = (ts: unknown) => {
  const p = parseTimestamp(String(ts));
  if (!p.ok) throw new Error(`not a timestamp: ${String(ts)}`);
  return p.micros;
};

/** A message as @segment/analytics-node builds it (core's event factory). */
function nodeMessage(fields: Record<string, unknown>) {
  return {
    timestamp: new Date().toISOString(),
    integrations: {},
    context: { ip: "203.0.113.9", library: { name: "@segment/analytics-node", version: "3.1.0" } },
    messageId: `node-next-${Date.now()}-${crypto.randomUUID()}`,
    _metadata: { nodeVersion: "v22", jsRuntime: "node" },
    ...fields,
  };
}

const CHROME =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/** A message as analytics.js (@segment/analytics-next) sends one to /v1/t, /v1/p …: writeKey and sentAt inside. */
function browserMessage(fields: Record<string, unknown>) {
  const now = new Date();
  return {
    timestamp: now.toISOString(),
    integrations: { "Segment.io": true },
    context: {
      page: {
        path: "/pricing",
        referrer: "https://news.example.org/story/1?ref=x",
        search: "?utm_source=newsletter&utm_campaign=spring",
        title: "Pricing",
        url: "https://shop.example/pricing?utm_source=newsletter&utm_campaign=spring",
      },
      userAgent: CHROME,
      locale: "en-US",
      library: { name: "analytics.js", version: "npm:next-1.84.3" },
      timezone: "Europe/Berlin",
    },
    messageId: `ajs-next-${now.getTime()}-${crypto.randomUUID()}`,
    writeKey: DEV_WRITE_KEY,
    sentAt: new Date(now.getTime() + 80).toISOString(),
    _metadata: { bundled: ["Segment.io"], unbundled: [], bundledIds: [] },
    ...fields,
  };
}

describe.concurrent("Segment's HTTP API", () => {
  it("takes analytics-node's batch (Basic auth, writeKey in the body): one event per message, mapped, no IP address", async () => {
    const user = uid("seg-node-user");
    const batch = [
      nodeMessage({ type: "track", event: "Order Completed", properties: { revenue: 9.5 }, userId: user }),
      nodeMessage({ type: "identify", userId: user, traits: { plan: "pro" } }),
      nodeMessage({ type: "page", userId: user, name: "Pricing", category: "Docs", properties: { path: "/pricing" } }),
      nodeMessage({ type: "screen", userId: user, name: "Home" }),
      nodeMessage({ type: "group", userId: user, groupId: "acme", traits: { name: "Acme" } }),
      nodeMessage({ type: "alias", userId: user, previousId: "anon-9" }),
    ];
    const res = await sdkPost(
      "/v1/batch",
      { batch, writeKey: DEV_WRITE_KEY, sentAt: new Date().toISOString() },
      basic(DEV_WRITE_KEY),
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true, accepted: 6 });

    const stored = await sessionEvents(user, 6);
    expect(stored).toHaveLength(6);
    const byCategory = Object.fromEntries(stored.map((e) => [e.category, e]));
    expect(Object.keys(byCategory).sort()).toEqual(["alias", "group", "identify", "page", "screen", "track"]);
    expect(byCategory.track).toMatchObject({
      session_id: user,
      name: "Order Completed",
      data: {
        properties: { revenue: 9.5 },
        userId: user,
        context: { library: { name: "@segment/analytics-node", version: "3.1.0" } },
      },
    });
    expect(byCategory.identify).toMatchObject({ name: "identify", data: { traits: { plan: "pro" }, userId: user } });
    expect(byCategory.page).toMatchObject({
      name: "Pricing",
      data: { category: "Docs", properties: { path: "/pricing" } },
    });
    expect(byCategory.screen!.name).toBe("Home");
    expect(byCategory.group).toMatchObject({ name: "group", data: { groupId: "acme", traits: { name: "Acme" } } });
    expect(byCategory.alias).toMatchObject({ name: "alias", data: { previousId: "anon-9", userId: user } });
    // Never the IP address, the write key, the transport's fields.
    const text = JSON.stringify(stored);
    expect(text).not.toContain("203.0.113.9");
    expect(text).not.toContain(DEV_WRITE_KEY);
    expect(text).not.toMatch(/_metadata|messageId|sentAt|integrations/);
  });

  it("takes analytics.js's one-letter calls (text/plain, writeKey inside each message): page context, campaign, browser", async () => {
    const anonymousId = crypto.randomUUID();
    const calls = [
      ["/v1/p", browserMessage({ type: "page", anonymousId, properties: { path: "/pricing", title: "Pricing" } })],
      ["/v1/t", browserMessage({ type: "track", anonymousId, event: "Signed Up", properties: { plan: "pro" } })],
      ["/v1/i", browserMessage({ type: "identify", anonymousId, userId: "user-42", traits: { email: "x@y.z" } })],
      ["/v1/g", browserMessage({ type: "group", anonymousId, groupId: "org-1", traits: {} })],
      ["/v1/a", browserMessage({ type: "alias", anonymousId, userId: "user-42b", previousId: "user-42" })],
      ["/v1/s", browserMessage({ type: "screen", anonymousId, name: "Cart" })],
    ] as const;
    for (const [path, message] of calls) {
      const res = await sdkPost(path, JSON.stringify(message), { "content-type": "text/plain" });
      expect(res.status, path).toBe(200);
    }
    const stored = await sessionEvents(anonymousId, 6);
    expect(stored.map((e) => `${e.category}:${e.name}`).sort()).toEqual([
      "alias:alias",
      "group:group",
      "identify:identify",
      "page:/pricing",
      "screen:Cart",
      "track:Signed Up",
    ]);
    // The page, its referrer and the browser, as ?page= / ?referrer= and User-Agent give them to POST /api/event/.
    for (const e of stored)
      expect(e.context).toMatchObject({
        browser: "Chrome",
        os: "Windows",
        device: "desktop",
        referrer_host: "news.example.org",
        utm_source: "newsletter",
        utm_campaign: "spring",
      });
  });

  it("takes the long paths too, the key as Bearer, as ?key=, or only in the body, gzip-encoded or not", async () => {
    const app = await makeApp();
    const session = uid("seg-keys");
    const message = (n: number) => ({ anonymousId: session, event: `e${n}`, properties: { n } });
    const sent = [
      await sdkPost("/v1/track", message(1), bearer(app.writeKey)),
      await sdkPost(`/v1/track?key=${app.writeKey}`, message(2), { "content-type": "text/plain" }),
      await sdkPost("/v1/track", { ...message(3), writeKey: app.writeKey }),
      await sdkPost("/v1/track", await gzip(JSON.stringify(message(4))), {
        ...basic(app.writeKey),
        "content-encoding": "gzip",
      }),
      await sdkPost("/v1/batch", await gzip(JSON.stringify({ batch: [{ type: "track", ...message(5) }] })), {
        ...basic(app.writeKey),
        "content-type": "text/plain",
      }),
    ];
    expect(sent.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const stored = await sessionEvents(session, 5, app.readKey);
    expect(stored.map((e) => e.name).sort()).toEqual(["e1", "e2", "e3", "e4", "e5"]);
    expect(stored.every((e) => e.application === app.appId)).toBe(true);
  });

  it("stores a message sent again (a lost answer: same messageId, a later sentAt) once, under an id derived from its messageId", async () => {
    const session = uid("seg-retry");
    const message = nodeMessage({ type: "track", event: "Paid", anonymousId: session, properties: { n: 1 } });
    const first = await sdkPost(
      "/v1/batch",
      { batch: [message], sentAt: new Date().toISOString() },
      basic(DEV_WRITE_KEY),
    );
    await new Promise((r) => setTimeout(r, 50));
    const again = await sdkPost(
      "/v1/batch",
      { batch: [message], sentAt: new Date().toISOString() },
      { ...basic(DEV_WRITE_KEY), "x-retry-count": "1" },
    );
    expect([first.status, again.status]).toEqual([200, 200]);
    // The dry run says the id in advance: the same for the same messageId, whatever sentAt says.
    const dry = (await (
      await sdkPost("/v1/batch?dry_run=1", { batch: [message], sentAt: "2030-01-01T00:00:00Z" }, basic(DEV_WRITE_KEY))
    ).json()) as { events: { event_id: string }[] };
    const stored = await sessionEvents(session, 1);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.event_id).toBe(dry.events[0]!.event_id);
    expect(stored[0]!.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("uses a messageId that is a UUID as the event_id", async () => {
    const session = uid("seg-uuid");
    const messageId = crypto.randomUUID();
    const res = await sdkPost("/v1/t", { anonymousId: session, event: "x", messageId }, basic(DEV_WRITE_KEY));
    expect(res.status).toBe(200);
    expect((await sessionEvents(session, 1))[0]!.event_id).toBe(messageId);
  });

  it("corrects the client's clock as Segment does: receivedAt − (sentAt − timestamp), to the microsecond", async () => {
    const session = uid("seg-skew");
    // A device whose clock is an hour and a bit behind: its timestamps and its sentAt are equally off.
    const skew = 3_723_000;
    const sentAt = new Date(Date.now() - skew).toISOString();
    const timestamp = `${new Date(Date.now() - skew - 5000).toISOString().slice(0, 23)}417Z`;
    const res = await sdkPost(
      "/v1/batch",
      {
        batch: [
          { type: "track", anonymousId: session, event: "skewed", timestamp },
          // originalTimestamp where there is no timestamp; no time at all: when it was received.
          { type: "track", anonymousId: session, event: "original", originalTimestamp: timestamp },
          { type: "track", anonymousId: session, event: "untimed" },
        ],
        sentAt,
      },
      basic(DEV_WRITE_KEY),
    );
    expect(res.status).toBe(200);
    const stored = await sessionEvents(session, 3);
    for (const e of stored.filter((e) => e.name !== "untimed"))
      expect(micros(e.timestamp)).toBe(micros(e.received_at) - (micros(sentAt) - micros(timestamp)));
    expect(stored.find((e) => e.name === "skewed")!.timestamp).toMatch(/\.\d{6}Z$/);
    const untimed = stored.find((e) => e.name === "untimed")!;
    expect(untimed.timestamp).toBe(untimed.received_at);

    // Without sentAt (a historical import), the timestamp stands as sent.
    const old = uid("seg-import");
    await sdkPost(
      "/v1/track",
      { anonymousId: old, event: "imported", timestamp: "2021-01-01T09:15:27.243860Z" },
      basic(DEV_WRITE_KEY),
    );
    expect((await sessionEvents(old, 1))[0]!.timestamp).toBe("2021-01-01T09:15:27.243860Z");
  });

  it("takes the session from context.sessionId or Amplitude's session_id when there is one, else anonymousId, else userId", async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const messages = [
      { type: "track", event: `a-${tag}`, userId: "u", anonymousId: "anon", context: { sessionId: `ctx-${tag}` } },
      {
        type: "track",
        event: `b-${tag}`,
        userId: "u",
        integrations: { "Actions Amplitude": { session_id: 1_700_000_000_123 } },
      },
      { type: "track", event: `c-${tag}`, userId: "u", anonymousId: `anon-${tag}` },
      { type: "track", event: `d-${tag}`, userId: `user-${tag}` },
    ];
    const dry = (await (await sdkPost("/v1/batch?dry_run=1", { batch: messages }, basic(DEV_WRITE_KEY))).json()) as {
      success: boolean;
      events: { event: { session_id: string } }[];
    };
    expect(dry.success).toBe(true);
    expect(dry.events.map((e) => e.event.session_id)).toEqual([
      `ctx-${tag}`,
      "1700000000123",
      `anon-${tag}`,
      `user-${tag}`,
    ]);
  });

  it("merges a batch's context and integrations into each message, under the message's own", async () => {
    const session = uid("seg-merge");
    const res = await sdkPost(
      "/v1/batch",
      {
        context: { app: { name: "shop" }, locale: "de-DE" },
        batch: [{ type: "track", anonymousId: session, event: "merged", context: { locale: "fr-FR" } }],
      },
      basic(DEV_WRITE_KEY),
    );
    expect(res.status).toBe(200);
    expect((await sessionEvents(session, 1))[0]!.data).toEqual({
      anonymousId: session,
      context: { app: { name: "shop" }, locale: "fr-FR" },
    });
  });

  it("answers what analytics.js asks besides events: its settings (sending here) and its metrics", async () => {
    const settings = await api("/v1/projects/some_write_key/settings", { headers: { authorization: "" } });
    expect(settings.status).toBe(200);
    expect(await settings.json()).toEqual({
      integrations: { "Segment.io": { apiKey: "some_write_key", apiHost: "eye.test/v1", protocol: "http" } },
      metrics: { sampleRate: 0 },
    });
    const metrics = await sdkPost("/v1/m", '{"series":[]}', { "content-type": "text/plain" });
    expect(metrics.status).toBe(200);
    // A preflight from any page, for analytics.js's Basic Authorization and a resend's X-Retry-Count; Retry-After readable.
    const preflight = await api("/v1/t", {
      method: "OPTIONS",
      headers: {
        authorization: "",
        origin: "https://shop.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-retry-count",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://shop.example");
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Authorization/);
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/X-Retry-Count/);
    const post = await sdkPost(
      "/v1/t",
      { anonymousId: "x", event: "cors" },
      { ...basic(DEV_WRITE_KEY), origin: "https://shop.example" },
    );
    expect(post.headers.get("access-control-expose-headers")).toMatch(/Retry-After/);
  });
});
