// POST /api/event/ when some or all of a request is wrong (SPEC §2): per-index errors, nothing invalid
// stored, refused events in the error log, and the body limits (413, 415, 400).
import { describe, expect, it } from "vitest";
import { api, getJson, makeEvent, postEvents, waitForCount } from "../helpers/api";

const bySession = (sessionId: string) => `/api/event/?session_id=${encodeURIComponent(sessionId)}`;

interface ErrorRow {
  kind: string;
  occurred_at: string;
  payload: string;
  reasons: { index?: number; field: string | null; message: string }[];
  source: string | null;
}

/** Polls the error log until `n` rows come from the given request id. */
async function waitForErrors(requestId: string, n: number): Promise<ErrorRow[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const page = await getJson<{ results: ErrorRow[] }>("/api/errors/?kind=invalid_event&limit=1000");
    const rows = page.results.filter((r) => r.source === requestId);
    if (rows.length === n) return rows;
    if (Date.now() > deadline) throw new Error(`expected ${n} error rows from ${requestId}, got ${rows.length}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const expectErrorBody = (body: Record<string, unknown>, code: string) => {
  expect(body).toMatchObject({ success: false, code });
  expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
  expect(JSON.stringify(body)).not.toMatch(/at .*\.(ts|js):\d+/);
};

describe.concurrent("POST /api/event/ with invalid events", () => {
  it("accepts the valid events of a mixed batch: 202, success false, per-index errors, only the valid stored", async () => {
    const sessionId = `mixed-${crypto.randomUUID()}`;
    const batch = [
      makeEvent({ session_id: sessionId, data: { i: 0 } }),
      makeEvent({ session_id: sessionId, timestamp: "2021-02-30 10:00" }),
      makeEvent({ session_id: sessionId, data: { i: 2 } }),
      makeEvent({ session_id: sessionId, data: [1, 2] }),
      { session_id: sessionId, category: "c" },
      "not an event",
      makeEvent({ session_id: sessionId, timestamp: "2999-01-01 00:00" }),
      makeEvent({ session_id: sessionId, name: "x".repeat(151) }),
    ];
    const res = await postEvents(batch);
    expect(res.status).toBe(202);
    const body = (await res.json()) as {
      success: boolean;
      accepted: number;
      errors: { index: number; field: string | null; message: string }[];
    };
    expect(body.success).toBe(false);
    expect(body.accepted).toBe(2);
    expect(body.errors.map((e) => [e.index, e.field])).toEqual([
      [1, "timestamp"],
      [3, "data"],
      [4, "name"],
      [4, "data"],
      [4, "timestamp"],
      [5, null],
      [6, "timestamp"],
      [7, "name"],
    ]);
    expect(body.errors.find((e) => e.index === 6)!.message).toBe("timestamp is in the future");
    for (const e of body.errors) expect(e.message.length).toBeGreaterThan(0);

    const page = await waitForCount(bySession(sessionId), 2);
    expect(page.results.map((r) => (r.data as { i: number }).i).sort()).toEqual([0, 2]);

    // The refused ones are in the error log, under the request's id, with what was sent and why.
    const requestId = res.headers.get("x-request-id")!;
    const logged = await waitForErrors(requestId, 6);
    const future = logged.find((r) => r.reasons.some((x) => x.index === 6))!;
    expect(JSON.parse(future.payload)).toEqual(batch[6]);
    expect(future.reasons).toEqual([
      { index: 6, field: "timestamp", message: "timestamp is in the future", rule: "future" },
    ]);
    expect(logged.find((r) => r.reasons.some((x) => x.index === 5))!.payload).toBe('"not an event"');
    expect(new Date(logged[0]!.occurred_at).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it("refuses a batch with no valid event: 400 with every error, nothing stored, all logged", async () => {
    const sessionId = `none-${crypto.randomUUID()}`;
    const batch = [
      makeEvent({ session_id: sessionId, data: "text" }),
      makeEvent({ session_id: sessionId, category: "" }),
      makeEvent({ session_id: sessionId, data: { s: "x".repeat(33 * 1024) } }),
    ];
    const res = await postEvents(batch);
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown> & { errors: { index: number; field: string }[] };
    expectErrorBody(body, "invalid_events");
    expect(body.errors.map((e) => [e.index, e.field])).toEqual([
      [0, "data"],
      [1, "category"],
      [2, "data"],
    ]);
    const logged = await waitForErrors(body.request_id as string, 3);
    // A long payload is kept as an excerpt.
    expect(logged.find((r) => r.reasons[0]!.index === 2)!.payload.length).toBeLessThanOrEqual(2049);
    expect((await getJson(bySession(sessionId))).count).toBe(0);
  });

  it("refuses a single invalid event object with 400", async () => {
    const res = await postEvents(makeEvent({ timestamp: 1609492527 }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: unknown[] };
    expect(body.errors).toEqual([
      { index: 0, field: "timestamp", message: "timestamp must be a string", rule: "invalid_type" },
    ]);
  });

  it("refuses 501 events with 400 and stores none of them", async () => {
    const sessionId = `over-${crypto.randomUUID()}`;
    const res = await postEvents(Array.from({ length: 501 }, () => makeEvent({ session_id: sessionId })));
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expectErrorBody(body, "invalid_events");
    expect(body.message).toMatch(/501.*500/);
    // A valid request sent after it is stored; the refused one never is.
    const after = makeEvent({ session_id: sessionId, name: "after" });
    expect((await postEvents(after)).status).toBe(202);
    const page = await waitForCount(bySession(sessionId), 1);
    expect(page.results[0]!.name).toBe("after");
  });

  it("refuses bodies that are not one event or an array of events with 400", async () => {
    for (const body of ["[]", "42", "null", '"text"', "true", "{not json", ""]) {
      const res = await postEvents(body);
      expect(res.status, body).toBe(400);
      const json = (await res.json()) as Record<string, unknown>;
      expectErrorBody(json, body === "{not json" || body === "" ? "bad_request" : "invalid_events");
    }
  });

  it("refuses a body that is not UTF-8 with 400", async () => {
    const bytes = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]);
    const res = await api("/api/event/", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: bytes,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/UTF-8/);
  });

  it("refuses other media types, charsets and encodings with 415", async () => {
    const event = JSON.stringify(makeEvent());
    const refused: Record<string, string>[] = [
      { "content-type": "application/xml" },
      { "content-type": "application/x-www-form-urlencoded" },
      { "content-type": "application/json; charset=latin1" },
      { "content-type": "application/json", "content-encoding": "br" },
    ];
    for (const headers of refused) {
      const res = await postEvents(event, headers);
      expect(res.status, JSON.stringify(headers)).toBe(415);
      expectErrorBody((await res.json()) as Record<string, unknown>, "unsupported_media_type");
    }
  });

  it("refuses a body over 1 MiB with 413, declared or streamed", async () => {
    const big = JSON.stringify([makeEvent({ data: { blob: "x".repeat(1024 * 1024) } })]);
    const declared = await postEvents(big);
    expect(declared.status).toBe(413);
    expectErrorBody((await declared.json()) as Record<string, unknown>, "payload_too_large");

    // No Content-Length: the cap applies while reading.
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < bytes.byteLength; at += 64 * 1024) controller.enqueue(bytes.slice(at, at + 64 * 1024));
        controller.close();
      },
    });
    const streamed = await api("/api/event/", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
    });
    expect(streamed.status).toBe(413);
  });

  it("refuses a gzip body that inflates past 1 MiB with 413 (a gzip bomb), and bad gzip with 400", async () => {
    const inflated = new TextEncoder().encode(
      JSON.stringify({ ...makeEvent(), data: { pad: " ".repeat(2 * 1024 * 1024) } }),
    );
    const bomb = await gzip(inflated);
    expect(bomb.byteLength).toBeLessThan(10_000);
    const res = await api("/api/event/", {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: bomb,
    });
    expect(res.status).toBe(413);

    const notGzip = await api("/api/event/", {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: JSON.stringify(makeEvent()),
    });
    expect(notGzip.status).toBe(400);
  });

  it("accepts a body just under 1 MiB", async () => {
    const sessionId = `edge-${crypto.randomUUID()}`;
    const events = Array.from({ length: 40 }, (_, i) =>
      makeEvent({ session_id: sessionId, data: { i, blob: "y".repeat(25_000) } }),
    );
    const body = JSON.stringify(events);
    expect(body.length).toBeGreaterThan(1_000_000);
    expect(body.length).toBeLessThanOrEqual(1024 * 1024);
    expect((await postEvents(body)).status).toBe(202);
    await waitForCount(bySession(sessionId), 40);
  });
});
