// PostHog's capture API (SPEC §10, issue 19): the bodies posthog-node and posthog-js send (shapes as
// captured on the wire) in every encoding they use, the token as the write key, and the one mapping
// (docs/sdks.md): $session_id else distinct_id, the category rule, data without $ip or the token,
// uuid as the event id (a resend stored once), now + (timestamp − sent_at), the edge context; and the
// configuration posthog-js asks for, answered empty.
import { describe, expect, it } from "vitest";
import { parseTimestamp } from "../../src/shared/timestamp";
import { api, DEV_WRITE_KEY, makeApp } from "../helpers/api";
import { gzip, sdkPost, sessionEvents, uid } from "../helpers/sdk";

const micros = (ts: unknown) => {
  const p = parseTimestamp(String(ts));
  if (!p.ok) throw new Error(`not a timestamp: ${String(ts)}`);
  return p.micros;
};

const uuid7 = () => {
  const id = crypto.randomUUID();
  return `${id.slice(0, 14)}7${id.slice(15)}`;
};

const FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/** An event as posthog-js sends it (a few of its properties). */
function browserEvent(event: string, session: string, distinct: string, extra: Record<string, unknown> = {}) {
  return {
    uuid: uuid7(),
    event,
    properties: {
      $os: "Linux",
      $browser: "Firefox",
      $current_url: "https://shop.example/landing?utm_source=ads&utm_medium=cpc&email=a%40b.c",
      $host: "shop.example",
      $pathname: "/landing",
      $raw_user_agent: FIREFOX,
      $lib: "web",
      $lib_version: "1.449.2",
      $time: 1796166664.656,
      distinct_id: distinct,
      $device_id: distinct,
      $referrer: "https://search.example/?q=x",
      $referring_domain: "search.example",
      token: DEV_WRITE_KEY,
      $session_id: session,
      $window_id: uuid7(),
      ...extra,
    },
    timestamp: new Date().toISOString(),
  };
}

describe.concurrent("PostHog's capture API", () => {
  it("takes posthog-node's /batch/ (gzip, api_key): categories by the rule, session = distinct_id, no $ip", async () => {
    const distinct = uid("ph-node");
    const base = { timestamp: new Date().toISOString(), distinct_id: distinct };
    const lib = { $lib: "posthog-node", $lib_version: "5.70.0", $is_server: true, $geoip_disable: true };
    const batch = [
      { ...base, uuid: uuid7(), event: "order placed", properties: { revenue: 9.5, $ip: "198.51.100.7", ...lib } },
      { ...base, uuid: uuid7(), event: "$identify", properties: { $set: { email: "a@b.c" }, $set_once: {}, ...lib } },
      {
        ...base,
        uuid: uuid7(),
        event: "$create_alias",
        properties: { distinct_id: distinct, alias: "anon-9", ...lib },
      },
      { ...base, uuid: uuid7(), event: "$pageview", properties: { $current_url: "https://x.example/", ...lib } },
      { ...base, uuid: uuid7(), event: "$autocapture", properties: { $event_type: "click", ...lib } },
    ];
    const body = await gzip(JSON.stringify({ api_key: DEV_WRITE_KEY, batch, sent_at: new Date().toISOString() }));
    const res = await sdkPost("/batch/", body, { "content-encoding": "gzip", "user-agent": "posthog-node/5.70.0" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 1, success: true, accepted: 5 });

    const stored = await sessionEvents(distinct, 5);
    expect(stored.map((e) => `${e.category}:${e.name}`).sort()).toEqual([
      "alias:$create_alias",
      "autocapture:$autocapture",
      "identify:$identify",
      "page:$pageview",
      "track:order placed",
    ]);
    const order = stored.find((e) => e.name === "order placed")!;
    expect(order.event_id).toBe(batch[0]!.uuid);
    expect(order.data).toEqual({ properties: { revenue: 9.5, ...lib }, distinct_id: distinct });
    expect(JSON.stringify(stored)).not.toContain("198.51.100.7");
  });

  it("takes posthog-js's /e/: gzip sent as text/plain with no header, $session_id as the session, its page and browser as context", async () => {
    const session = uuid7();
    const distinct = uuid7();
    const events = [
      browserEvent("$pageview", session, distinct, { title: "Landing" }),
      browserEvent("$autocapture", session, distinct, { $event_type: "click", $el_text: "Buy now" }),
      browserEvent("custom event", session, distinct, { plan: "pro" }),
    ];
    const body = await gzip(
      JSON.stringify({ api_key: DEV_WRITE_KEY, batch: events, sent_at: new Date().toISOString() }),
    );
    const res = await sdkPost("/e/", body, { "content-type": "text/plain" });
    expect(res.status).toBe(200);
    const stored = await sessionEvents(session, 3);
    expect(stored.map((e) => `${e.category}:${e.name}`).sort()).toEqual([
      "autocapture:$autocapture",
      "page:$pageview",
      "track:custom event",
    ]);
    for (const e of stored) {
      expect(e.context).toMatchObject({
        browser: "Firefox",
        os: "Linux",
        referrer_host: "search.example",
        utm_source: "ads",
        utm_medium: "cpc",
      });
      // The write key posthog-js copies into every event is not kept; the rest of its properties are.
      expect((e.data as { properties: Record<string, unknown> }).properties).not.toHaveProperty("token");
      expect(e.data).toMatchObject({
        distinct_id: distinct,
        properties: { $session_id: session, $time: 1796166664.656 },
      });
    }
    expect(JSON.stringify(stored.map((e) => e.context))).not.toContain("email");
  });

  it("takes every body posthog-js and the capture API accept: data= forms (base64 or JSON), an array, one event; at /i/v0/e/ and /capture/", async () => {
    const app = await makeApp();
    const session = uid("ph-forms");
    const event = (n: number) => ({
      uuid: uuid7(),
      event: `form-${n}`,
      properties: { distinct_id: session, token: app.writeKey },
    });
    const b64 = btoa(JSON.stringify({ api_key: app.writeKey, batch: [event(1)] }));
    const form = { "content-type": "application/x-www-form-urlencoded" };
    const sent = [
      await sdkPost("/e/?compression=base64", `data=${encodeURIComponent(b64)}`, form),
      await sdkPost("/e/", `data=${encodeURIComponent(JSON.stringify([event(2)]))}`, form),
      await sdkPost("/i/v0/e/", [event(3)]),
      await sdkPost("/capture/", { api_key: app.writeKey, event: "form-4", distinct_id: session, properties: {} }),
      await sdkPost("/e", await gzip(JSON.stringify([event(5)])), { "content-type": "text/plain" }),
    ];
    expect(sent.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const stored = await sessionEvents(session, 5, app.readKey);
    expect(stored.map((e) => e.name).sort()).toEqual(["form-1", "form-2", "form-3", "form-4", "form-5"]);
  });

  it("stores an event sent again (a lost answer, the same uuid) once, and corrects the clock: now + (timestamp − sent_at)", async () => {
    const session = uid("ph-retry");
    const skew = -90 * 60_000; // the device's clock is 90 minutes ahead
    const timestamp = new Date(Date.now() - skew - 4000).toISOString();
    const sentAt = new Date(Date.now() - skew).toISOString();
    const event = { uuid: uuid7(), event: "paid", distinct_id: session, properties: {}, timestamp };
    const first = await sdkPost("/batch/", { api_key: DEV_WRITE_KEY, batch: [event], sent_at: sentAt });
    const again = await sdkPost("/batch/?retry_count=1", { api_key: DEV_WRITE_KEY, batch: [event], sent_at: sentAt });
    expect([first.status, again.status]).toEqual([200, 200]);
    const stored = await sessionEvents(session, 1);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.event_id).toBe(event.uuid);
    expect(micros(stored[0]!.timestamp)).toBe(micros(stored[0]!.received_at) - (micros(sentAt) - micros(timestamp)));
  });

  it("answers the configuration posthog-js asks for: autocapture on, gzip, nothing else to load; no flags; recordings refused", async () => {
    const config = await api("/array/phc_token/config", { headers: { authorization: "" } });
    expect(config.status).toBe(200);
    const body = (await config.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      supportedCompression: ["gzip", "gzip-js"],
      autocapture_opt_out: false,
      sessionRecording: false,
      hasFeatureFlags: false,
    });
    // Any value of `surveys`, even false, makes posthog-js load surveys.js.
    expect(body).not.toHaveProperty("surveys");
    const script = await api("/array/phc_token/config.js", { headers: { authorization: "" } });
    expect(script.headers.get("content-type")).toMatch(/^application\/javascript/);
    const window: { _POSTHOG_REMOTE_CONFIG?: Record<string, { config: unknown }> } = {};
    new Function("window", await script.text())(window);
    expect(window._POSTHOG_REMOTE_CONFIG?.phc_token?.config).toEqual(body);

    for (const path of ["/flags/?v=2", "/decide/?v=3"]) {
      const flags = await sdkPost(path, "anything", { "content-type": "text/plain" });
      expect(flags.status, path).toBe(200);
      expect(await flags.json()).toMatchObject({ flags: {}, featureFlags: {}, errorsWhileComputingFlags: false });
    }
    const recording = await sdkPost("/s/", "x".repeat(10_000), { "content-type": "text/plain" });
    expect(recording.status).toBe(404);
    expect(((await recording.json()) as { message: string }).message).toMatch(/session recordings/);
    expect((await api("/array/not a token/config", { headers: { authorization: "" } })).status).toBe(404);
  });
});
