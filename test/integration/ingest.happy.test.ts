// POST /api/event/ → Queue → consumer → D1 → GET, end to end, for every accepted body shape (SPEC §1, §2).
import { describe, expect, it } from "vitest";
import { api, type EventPage, getJson, makeEvent, postEvents, waitForCount } from "../helpers/api";

const bySession = (sessionId: string, extra = "") => `/api/event/?session_id=${encodeURIComponent(sessionId)}${extra}`;

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

describe.concurrent("POST /api/event/", () => {
  it("accepts one event object (the original's shape) and serves it back with the original's fields first", async () => {
    const event = makeEvent({ data: { host: "www.example.com", path: "/pricing", element: "chat bubble" } });
    const res = await postEvents(event);
    expect(res.status).toBe(202);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ success: true, accepted: 1 });

    const page = await waitForCount(bySession(event.session_id as string), 1);
    const result = page.results[0]!;
    expect(Object.keys(result).slice(0, 5)).toEqual(["session_id", "timestamp", "category", "name", "data"]);
    expect(result).toMatchObject({ ...event, timestamp: "2021-01-01T09:15:27.243860Z" });
    expect(result.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(result.received_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$/);
    expect(Date.now() - Date.parse(result.received_at as string)).toBeLessThan(60_000);
  });

  it("accepts an array of 500 events with ~2 KB of data each and stores every one", async () => {
    const sessionId = `bulk-${crypto.randomUUID()}`;
    const events = Array.from({ length: 500 }, (_, i) =>
      makeEvent({
        session_id: sessionId,
        data: { i, blob: "b".repeat(1900) },
        timestamp: `2021-02-01 10:00:00.${String(i).padStart(6, "0")}`,
      }),
    );
    const body = JSON.stringify(events);
    expect(body.length).toBeGreaterThan(950_000);
    expect(body.length).toBeLessThan(1024 * 1024);
    const res = await postEvents(body);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ success: true, accepted: 500 });

    await waitForCount(bySession(sessionId, "&limit=1"), 500);
    const all = await getJson(bySession(sessionId, "&limit=1000"));
    expect(all.results.map((r) => (r.data as { i: number }).i)).toEqual(events.map((_, i) => 499 - i));
    expect(all.results.every((r) => (r.data as { blob: string }).blob.length === 1900)).toBe(true);
  });

  it("accepts a text/plain body, as navigator.sendBeacon sends it", async () => {
    const event = makeEvent({ name: "beacon" });
    const res = await postEvents(JSON.stringify(event), { "content-type": "text/plain;charset=UTF-8" });
    expect(res.status).toBe(202);
    const page = await waitForCount(bySession(event.session_id as string), 1);
    expect(page.results[0]).toMatchObject({ name: "beacon", data: event.data });
  });

  it("accepts application/json with a UTF-8 charset and no content type at all", async () => {
    const withCharset = makeEvent();
    expect((await postEvents(withCharset, { "content-type": "application/json; charset=utf-8" })).status).toBe(202);
    const untyped = makeEvent();
    const res = await api("/api/event/", { method: "POST", body: new TextEncoder().encode(JSON.stringify(untyped)) });
    expect(res.status).toBe(202);
    await waitForCount(bySession(withCharset.session_id as string), 1);
    await waitForCount(bySession(untyped.session_id as string), 1);
  });

  it("accepts a gzip-encoded body", async () => {
    const sessionId = `gzip-${crypto.randomUUID()}`;
    const events = Array.from({ length: 50 }, (_, i) =>
      makeEvent({ session_id: sessionId, data: { i, text: "repetitive ".repeat(100) } }),
    );
    const text = JSON.stringify(events);
    const body = await gzip(text);
    expect(body.byteLength).toBeLessThan(text.length / 10);
    const res = await api("/api/event/", {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body,
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ success: true, accepted: 50 });
    await waitForCount(bySession(sessionId), 50);
  });

  it("keeps a client's event_id and stores an event sent twice once", async () => {
    const sessionId = `dup-${crypto.randomUUID()}`;
    const eventId = crypto.randomUUID();
    const event = makeEvent({ session_id: sessionId, event_id: eventId });
    expect((await postEvents(event)).status).toBe(202);
    await waitForCount(bySession(sessionId), 1);
    // Resent with different content under the same id, with a sentinel in the same request:
    // once the sentinel is stored, the resend has been through the consumer too.
    const sentinel = makeEvent({ session_id: sessionId, name: "sentinel" });
    const again = await postEvents([{ ...event, data: { changed: true } }, sentinel]);
    expect(again.status).toBe(202);
    const page = await waitForCount(bySession(sessionId), 2);
    const stored = page.results.find((r) => r.event_id === eventId)!;
    expect(stored.data).toEqual(event.data);
  });

  it("stores an event without event_id once when a client retries the same request", async () => {
    const sessionId = `retry-${crypto.randomUUID()}`;
    const event = makeEvent({ session_id: sessionId });
    expect((await postEvents(event)).status).toBe(202);
    await waitForCount(bySession(sessionId), 1);
    const sentinel = makeEvent({ session_id: sessionId, name: "sentinel" });
    expect((await postEvents([event, sentinel])).status).toBe(202);
    const page = await waitForCount(bySession(sessionId), 2);
    expect(page.results.map((r) => r.name).sort()).toEqual(["cta click", "sentinel"]);
  });

  it("stores timestamps with offsets in UTC and renders them as the original did, to the microsecond", async () => {
    const sessionId = `tz-${crypto.randomUUID()}`;
    const cases: [string, string][] = [
      ["2021-06-01T12:00:00+02:00", "2021-06-01T10:00:00Z"],
      ["2021-06-01 10:00:00.5-03:30", "2021-06-01T13:30:00.500000Z"],
      ["2021-06-01T00:30:00.123456789+01:00", "2021-05-31T23:30:00.123456Z"],
      ["2021-06-02T09:15Z", "2021-06-02T09:15:00Z"],
      ["2021-06-03 09:15:27.000001", "2021-06-03T09:15:27.000001Z"],
      ["2021-06-04T23:59:59.999999-00:00", "2021-06-04T23:59:59.999999Z"],
    ];
    const events = cases.map(([timestamp], i) => makeEvent({ session_id: sessionId, timestamp, data: { i } }));
    expect((await postEvents(events)).status).toBe(202);
    const page = await waitForCount(bySession(sessionId), cases.length);
    const rendered = new Map(page.results.map((r) => [(r.data as { i: number }).i, r.timestamp]));
    for (const [i, [input, expected]] of cases.entries()) expect(rendered.get(i), input).toBe(expected);
  });

  it("returns data exactly as sent: unicode, nesting, numbers, empty objects", async () => {
    const sessionId = `data-${crypto.randomUUID()}`;
    const data = {
      text: 'héllo 😀 \u2028 "quoted" \\ back',
      nested: { list: [1, 2.5, -3e-7, null, true, { deep: [] }], empty: {} },
      big: 9_007_199_254_740_991,
      "key with spaces": "",
    };
    expect(
      (
        await postEvents([
          makeEvent({ session_id: sessionId, data }),
          makeEvent({ session_id: sessionId, data: {}, name: "empty" }),
        ])
      ).status,
    ).toBe(202);
    const page = await waitForCount(bySession(sessionId), 2);
    expect(page.results.find((r) => r.name !== "empty")!.data).toEqual(data);
    expect(page.results.find((r) => r.name === "empty")!.data).toEqual({});
  });

  it("accepts labels of 150 characters counted as code points", async () => {
    const sessionId = "😀".repeat(150);
    const event = makeEvent({ session_id: sessionId, category: "é".repeat(150), name: "n".repeat(150) });
    expect(await (await postEvents(event)).json()).toEqual({ success: true, accepted: 1 });
    const page: EventPage = await waitForCount(bySession(sessionId), 1);
    expect(page.results[0]).toMatchObject({ session_id: sessionId, category: "é".repeat(150) });
  });

  it("serves the path without its trailing slash too", async () => {
    const event = makeEvent();
    const res = await api("/api/event", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    expect(res.status).toBe(202);
    await waitForCount(`/api/event?session_id=${event.session_id as string}`, 1);
  });
});
