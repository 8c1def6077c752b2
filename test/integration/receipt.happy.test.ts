// GET /api/event/{event_id}, the delivery receipt: the stored event exactly as GET /api/event/
// renders it, or a 404 while it is not stored; one seek of events_event_id_app (rows read ≤ 2),
// within what the read key may see.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, bearer, DEV_READ_KEY, getJson, makeApp, makeEvent, postEvents } from "../helpers/api";
import { eventReads, metered, rowsRead } from "../helpers/read-meter";

/** Polls the receipt until the event is stored. */
async function receiptOf(eventId: string, key = DEV_READ_KEY, query = ""): Promise<Response> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await api(`/api/event/${eventId}${query}`, { headers: bearer(key) });
    if (res.status !== 404 || Date.now() > deadline) return res;
    await res.body?.cancel();
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sends one event through the real pipeline with an application's write key. */
async function send(writeKey: string, overrides: Record<string, unknown> = {}) {
  const event = makeEvent({ event_id: crypto.randomUUID(), ...overrides });
  expect((await postEvents(event, bearer(writeKey))).status).toBe(202);
  return event;
}

describe("GET /api/event/{event_id} (happy)", () => {
  it("returns the stored event rendered exactly as one result of GET /api/event/", async () => {
    const app = await makeApp();
    const event = await send(app.writeKey, { data: { price: 12.5, tags: ["a", "é"], nested: { ok: true } } });
    const res = await receiptOf(event.event_id as string, app.readKey);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const text = await res.text();
    const page = await getJson(`/api/event/?session_id=${event.session_id as string}`, {
      headers: bearer(app.readKey),
    });
    expect(page.results).toHaveLength(1);
    expect(JSON.parse(text)).toEqual(page.results[0]);
    expect(text).toBe(JSON.stringify(page.results[0]));
    expect(JSON.parse(text)).toMatchObject({ event_id: event.event_id, application: app.appId, data: event.data });
  });

  it("answers an id written in upper case, and HEAD with the headers only", async () => {
    const app = await makeApp();
    const event = await send(app.writeKey);
    expect((await receiptOf(event.event_id as string, app.readKey)).status).toBe(200);
    const upper = await api(`/api/event/${(event.event_id as string).toUpperCase()}`, { headers: bearer(app.readKey) });
    expect(upper.status).toBe(200);
    expect(((await upper.json()) as { event_id: string }).event_id).toBe(event.event_id);
    const head = await api(`/api/event/${event.event_id as string}`, { method: "HEAD", headers: bearer(app.readKey) });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("finds any application's event with a key for every application, and names the application", async () => {
    const app = await makeApp();
    const event = await send(app.writeKey);
    const res = await receiptOf(event.event_id as string);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { application: string }).application).toBe(app.appId);
  });
});

describe("GET /api/event/{event_id} (error)", () => {
  it("answers 404 in the one error shape while the event is not stored", async () => {
    const id = crypto.randomUUID();
    const res = await api(`/api/event/${id}`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      success: false,
      code: "not_found",
      message: expect.stringContaining(`event ${id} is not stored (yet)`) as string,
      request_id: res.headers.get("x-request-id"),
    });
  });

  it("answers 400 naming event_id for an id that is not a UUID", async () => {
    for (const bad of ["123", "not-a-uuid", `${crypto.randomUUID()}0`, "%E2%80%AE"]) {
      const res = await api(`/api/event/${bad}`);
      expect(res.status, bad).toBe(400);
      const body = (await res.json()) as { code: string; message: string; errors: { field: string }[] };
      expect(body.code).toBe("invalid_query");
      expect(body.message).toContain("event_id");
      expect(body.errors.map((e) => e.field)).toEqual(["event_id"]);
    }
  });

  it("answers 405 with Allow: GET, HEAD for other methods, and leaves POST /api/event/ as it was", async () => {
    const id = crypto.randomUUID();
    for (const method of ["POST", "PUT", "DELETE"]) {
      const res = await api(`/api/event/${id}`, {
        method,
        headers: { "content-type": "application/json" },
        body: method === "DELETE" ? undefined : "{}",
      });
      expect(res.status, method).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD");
    }
    expect((await postEvents(makeEvent())).status).toBe(202);
    expect((await api("/api/event/?limit=1")).status).toBe(200);
    // The dry run's path is not an event id.
    const dryRun = await api("/api/event/validate");
    expect(dryRun.status).toBe(405);
    expect(dryRun.headers.get("allow")).toBe("POST, OPTIONS");
  });

  it("answers 409 when several applications stored the id and the key reads them all; app_id chooses", async () => {
    const [a, b] = [await makeApp(), await makeApp()];
    const eventId = crypto.randomUUID();
    await send(a.writeKey, { event_id: eventId, name: "from a" });
    await send(b.writeKey, { event_id: eventId, name: "from b" });
    expect((await receiptOf(eventId, a.readKey)).status).toBe(200);
    expect((await receiptOf(eventId, b.readKey)).status).toBe(200);
    const both = await api(`/api/event/${eventId}`);
    expect(both.status).toBe(409);
    expect((await both.json()) as Record<string, unknown>).toMatchObject({
      code: "conflict",
      errors: [{ field: "app_id" }],
    });
    const chosen = await api(`/api/event/${eventId}?app_id=${b.appId}`);
    expect(chosen.status).toBe(200);
    expect((await chosen.json()) as Record<string, unknown>).toMatchObject({ name: "from b", application: b.appId });
  });
});

describe("GET /api/event/{event_id} (security)", () => {
  it("never shows another application's event to a scoped key: 404, and 403 when it names the other application", async () => {
    const [owner, other] = [await makeApp(), await makeApp()];
    const event = await send(owner.writeKey);
    expect((await receiptOf(event.event_id as string, owner.readKey)).status).toBe(200);
    const res = await api(`/api/event/${event.event_id as string}`, { headers: bearer(other.readKey) });
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain(event.session_id as string);
    const named = await api(`/api/event/${event.event_id as string}?app_id=${owner.appId}`, {
      headers: bearer(other.readKey),
    });
    expect(named.status).toBe(403);
    expect(((await named.json()) as { code: string }).code).toBe("forbidden");
  });

  it("needs a read key", async () => {
    const app = await makeApp();
    const id = crypto.randomUUID();
    expect((await api(`/api/event/${id}`, { headers: { authorization: "" } })).status).toBe(401);
    expect((await api(`/api/event/${id}`, { headers: bearer(app.writeKey) })).status).toBe(403);
  });
});

describe("GET /api/event/{event_id} (cost)", () => {
  it("reads at most 2 rows of each live generation, through its (event_id, app) index, scoped or across applications, stored or not", async () => {
    const app = await makeApp();
    const event = await send(app.writeKey);
    expect((await receiptOf(event.event_id as string, app.readKey)).status).toBe(200);
    for (const [key, id, status] of [
      [app.readKey, event.event_id as string, 200],
      [DEV_READ_KEY, event.event_id as string, 200],
      [app.readKey, crypto.randomUUID(), 404],
      [DEV_READ_KEY, crypto.randomUUID(), 404],
    ] as const) {
      const { res, statements } = await metered(`/api/event/${id}`, bearer(key));
      expect(res.status).toBe(status);
      const seeks = eventReads(statements);
      expect(seeks.length, JSON.stringify(statements)).toBeGreaterThanOrEqual(1);
      const read = await rowsRead(seeks);
      expect(read).toBeLessThanOrEqual(2 * seeks.length);
      if (status === 200) expect(read).toBeGreaterThanOrEqual(1);
      for (const seek of seeks) {
        const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${seek.sql}`)
          .bind(...seek.params)
          .all<{ detail: string }>();
        expect(plan.results.map((r) => r.detail).join("; ")).toMatch(/USING INDEX events_g\w+_event_id/);
      }
    }
  });
});
