// The one mapping from an SDK's message to The Eye's event (docs/sdks.md), as pure functions: the
// rules of its table, one by one, for Segment and PostHog; the clock-skew correction; the scan for
// what JSON.parse hides, inside an envelope's batch.
import { describe, expect, it } from "vitest";
import { ENVELOPE, hiddenProblems } from "../../src/ingest/body";
import { mapPosthog, posthogBody } from "../../src/ingest/posthog";
import { correctedTime } from "../../src/ingest/sdk";
import { mapSegment, segmentBody } from "../../src/ingest/segment";
import { parseTimestamp } from "../../src/shared/timestamp";

const NOW = parseTimestamp("2026-06-01T12:00:00Z");
const now = NOW.ok ? NOW.micros : 0;

describe("the Segment mapping", () => {
  const map = (m: Record<string, unknown>, type?: Parameters<typeof mapSegment>[1]) =>
    mapSegment(m, type, undefined, now);

  it("category is the call type; name the event, the page's or screen's name, else the page's path, else the type", () => {
    const names = [
      map({ type: "track", anonymousId: "a", event: "Signed Up" }),
      map({ type: "page", anonymousId: "a", name: "Pricing" }),
      map({ type: "page", anonymousId: "a", properties: { path: "/p" } }),
      map({ type: "page", anonymousId: "a", context: { page: { path: "/ctx" } } }),
      map({ type: "page", anonymousId: "a" }),
      map({ type: "screen", anonymousId: "a", name: "Home" }),
      map({ type: "identify", userId: "u" }),
      map({ type: "group", userId: "u", groupId: "g" }),
      map({ type: "alias", userId: "u", previousId: "p" }),
    ].map((m) => [m.event?.category, m.event?.name, m.fields.name]);
    expect(names).toEqual([
      ["track", "Signed Up", "event"],
      ["page", "Pricing", "name"],
      ["page", "/p", "properties.path"],
      ["page", "/ctx", "context.page.path"],
      ["page", "page", "type"],
      ["screen", "Home", "name"],
      ["identify", "identify", "type"],
      ["group", "group", "type"],
      ["alias", "alias", "type"],
    ]);
  });

  it("session_id is the SDK's session id when there is one, else anonymousId, else userId", () => {
    const sessions = [
      map({ type: "track", event: "e", userId: "u", anonymousId: "a", context: { sessionId: 17 } }),
      map({ type: "track", event: "e", userId: "u", integrations: { "Actions Amplitude": { session_id: 1 } } }),
      map({ type: "track", event: "e", userId: "u", integrations: { Amplitude: { session_id: "2" } } }),
      map({ type: "track", event: "e", userId: "u", anonymousId: "a" }),
      map({ type: "track", event: "e", userId: 42 }),
    ].map((m) => [m.event?.session_id, m.fields.session_id]);
    expect(sessions).toEqual([
      ["17", "context.sessionId"],
      ["1", "integrations.Actions Amplitude.session_id"],
      ["2", "integrations.Amplitude.session_id"],
      ["a", "anonymousId"],
      ["42", "userId"],
    ]);
  });

  it("data keeps properties or traits, the ids and the context, never the IP address, the key or the transport", () => {
    const m = map({
      type: "page",
      anonymousId: "a",
      userId: "u",
      name: "Docs",
      category: "Help",
      properties: { path: "/d" },
      context: { ip: "192.0.2.1", locale: "de-DE", page: { url: "https://x.example/d?utm_source=s" } },
      integrations: { All: true },
      messageId: "m-1",
      writeKey: "wk",
      sentAt: "2026-06-01T12:00:00Z",
      timestamp: "2026-06-01T11:59:59Z",
      _metadata: { bundled: [] },
    });
    expect(m.event?.data).toEqual({
      properties: { path: "/d" },
      userId: "u",
      anonymousId: "a",
      category: "Help",
      context: { locale: "de-DE", page: { url: "https://x.example/d?utm_source=s" } },
    });
    expect(JSON.stringify(m.logged)).not.toMatch(/192\.0\.2\.1|"wk"/);
    expect(m).toMatchObject({ id: "m-1", page: "https://x.example/d?utm_source=s" });
    // The same message resent (sentAt and _metadata change) has the same content, the id of one sent without messageId.
    const again = map({
      ...(m.logged as object),
      type: "page",
      sentAt: "2026-06-01T12:00:09Z",
      _metadata: { retryCount: 1 },
    });
    expect(again.content).toBe(m.content);
  });

  it("refuses by Segment's rules: an identity, a known type, a groupId and a previousId, objects where objects go, 32 KB", () => {
    const reasons = (m: unknown, type?: Parameters<typeof mapSegment>[1]) =>
      mapSegment(m, type, undefined, now).reasons.map((r) => `${r.field}:${r.rule}`);
    expect(reasons({ type: "track", event: "e" })).toEqual(["userId:required"]);
    expect(reasons({ anonymousId: "a" })).toEqual(["type:required"]);
    expect(reasons({ type: "track", anonymousId: "a" }, "page")).toEqual(["type:invalid_value"]);
    expect(reasons({ type: "group", anonymousId: "a" })).toEqual(["groupId:required"]);
    expect(reasons({ type: "alias", anonymousId: "a" })).toEqual(["previousId:required"]);
    expect(reasons({ type: "track", anonymousId: "a", event: "e", properties: [1] })).toEqual([
      "properties:invalid_type",
    ]);
    expect(reasons({ type: "track", anonymousId: "a", event: "e", properties: { p: "x".repeat(33_000) } })).toEqual([
      "null:too_big",
    ]);
    expect(reasons("text")).toEqual(["null:invalid_type"]);
  });

  it("a batch's messages take its context and integrations under their own, and its keys are collected", () => {
    const body = segmentBody(
      { writeKey: "k1", context: { a: 1, b: 1 }, batch: [{ type: "track", context: { b: 2 }, writeKey: "k1" }] },
      true,
      500,
    );
    expect(body.messages).toEqual([{ type: "track", context: { a: 1, b: 2 }, writeKey: "k1" }]);
    expect(body.keys).toEqual(["k1", "k1"]);
  });
});

describe("the PostHog mapping", () => {
  const map = (m: Record<string, unknown>) => mapPosthog(m, undefined, now);

  it("category by the rule ($pageview → page, $autocapture → autocapture, $identify → identify …, else track); name the event", () => {
    const events = [
      "$pageview",
      "$pageleave",
      "$screen",
      "$autocapture",
      "$rageclick",
      "$identify",
      "$create_alias",
      "$groupidentify",
      "$exception",
      "constructor",
      "signed up",
    ];
    expect(events.map((event) => map({ event, distinct_id: "d" }).event?.category)).toEqual([
      "page",
      "page",
      "screen",
      "autocapture",
      "autocapture",
      "identify",
      "alias",
      "group",
      "track",
      "track",
      "track",
    ]);
  });

  it("session_id is $session_id, else distinct_id; data the properties without $ip or the token, distinct_id and $set", () => {
    const js = map({
      event: "$pageview",
      properties: {
        $session_id: "s",
        distinct_id: "d",
        $ip: "192.0.2.2",
        token: "t",
        $current_url: "https://x.example/",
      },
      $set: { email: "a@b.c" },
      uuid: "01a233e0-4153-7f2f-9eba-b4079ec4b038",
    });
    expect(js.event).toMatchObject({
      session_id: "s",
      data: {
        properties: { $session_id: "s", distinct_id: "d", $current_url: "https://x.example/" },
        distinct_id: "d",
        $set: { email: "a@b.c" },
      },
    });
    expect(js).toMatchObject({ id: "01a233e0-4153-7f2f-9eba-b4079ec4b038", page: "https://x.example/" });
    expect(map({ event: "e", distinct_id: 7 }).event).toMatchObject({ session_id: "7", data: { distinct_id: "7" } });
    expect(map({ event: "e", properties: {} }).reasons.map((r) => r.field)).toEqual(["distinct_id"]);
  });

  it("reads every body shape and collects every copy of the token", () => {
    expect(
      posthogBody({ api_key: "k", batch: [{ event: "e", properties: { token: "k" } }], sent_at: "x" }, 500),
    ).toEqual({
      messages: [{ event: "e", properties: { token: "k" } }],
      keys: ["k", "k"],
      sentAt: "x",
    });
    expect(posthogBody([{ event: "a", api_key: "k" }], 500).keys).toEqual(["k"]);
    expect(posthogBody({ event: "one", token: "k" }, 500).messages).toHaveLength(1);
  });
});

describe("the clock-skew correction", () => {
  it("is receivedAt − (sentAt − timestamp), to the microsecond; the timestamp as sent without sentAt; receivedAt without either", () => {
    expect(correctedTime("2026-06-01T10:00:00.000001Z", "2026-06-01T10:00:05Z", now, "sentAt")).toEqual({
      timestamp: "2026-06-01T11:59:55.000001Z",
    });
    expect(correctedTime("2021-01-01 09:15:27.243860", undefined, now, "sentAt")).toEqual({
      timestamp: "2021-01-01 09:15:27.243860",
    });
    expect(correctedTime(undefined, "2026-06-01T10:00:05Z", now, "sentAt")).toEqual({
      timestamp: "2026-06-01T12:00:00Z",
    });
    expect(correctedTime("yesterday", "2026-06-01T10:00:05Z", now, "sentAt")).toEqual({ timestamp: "yesterday" });
    expect(correctedTime("2026-06-01T10:00:00Z", "soon", now, "sent_at").reason).toMatchObject({ field: "sent_at" });
  });
});

describe("hidden problems in an envelope", () => {
  it("names the message of a batch that holds a repeated key or an inexact number, and a repeated key of the envelope", () => {
    const text =
      '{"writeKey":"k","batch":[{"event":"a","properties":{"x":1}},{"event":"b","properties":{"x":1,"x":2}},' +
      '{"event":"c","properties":{"n":12345678901234567890}}],"context":{"n":12345678901234567890}}';
    const found = hiddenProblems(text, { envelope: "batch", numbersIn: null });
    expect([...found.keys()]).toEqual([1, 2]);
    expect(found.get(1)).toMatchObject({ field: "properties", rule: "duplicate_key" });
    expect(found.get(2)).toMatchObject({ field: "properties", rule: "inexact_number" });
    const envelope = hiddenProblems('{"batch":[],"sentAt":"a","sentAt":"b"}', { envelope: "batch", numbersIn: null });
    expect(envelope.get(ENVELOPE)).toMatchObject({
      field: "sentAt",
      message: "sentAt appears more than once in the body",
    });
  });
});
