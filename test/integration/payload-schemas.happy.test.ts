// Payload schemas (SPEC §8, issue 9): an event type's registered JSON Schema is checked at the edge;
// a failing event is refused by its JSON Pointer and rule, other types pass as before, an
// application's own schema takes precedence, a change takes effect within the cache's bound, and
// the dry run answers the same without storing anything. Schemas are written straight to D1, as
// `npm run schemas` writes them (the CLI's checks are tested in test/node/payload-schema-rules.test.ts).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, bearer, getJson, makeApp, makeEvent, postEvents, waitForCount } from "../helpers/api";

const PRICE = {
  type: "object",
  required: ["price"],
  properties: { price: { type: "number", minimum: 0 }, sku: { type: "string", pattern: "^[A-Z]{3}-[0-9]+$" } },
};

/** A fresh event type, so each test's schema is its own. */
const newType = () => ({ category: "shop", name: `purchase-${crypto.randomUUID().slice(0, 8)}` });

async function register(type: { category: string; name: string }, schema: unknown, app = "") {
  await env.DB.prepare(
    "INSERT INTO payload_schemas (category, name, app_id, schema, updated_at) VALUES (?, ?, ?, ?, 0) " +
      "ON CONFLICT (category, name, app_id) DO UPDATE SET schema = excluded.schema",
  )
    .bind(type.category, type.name, app, typeof schema === "string" ? schema : JSON.stringify(schema))
    .run();
  // Another test may have just filled the isolate's cache for this application: a change applies
  // within PAYLOAD_SCHEMA_CACHE_SECONDS (1 s here).
  await new Promise((r) => setTimeout(r, 1100));
}

const bySession = (s: string) => `/api/event/?session_id=${encodeURIComponent(s)}`;

describe.concurrent("payload schemas at ingestion", () => {
  it("refuses an event whose data fails its type's schema, naming the JSON Pointer and the rule; stores the rest", async () => {
    const type = newType();
    await register(type, PRICE);
    const session = `schema-${crypto.randomUUID()}`;
    const events = [
      makeEvent({ ...type, session_id: session, data: { price: 3, sku: "ABC-1" } }),
      makeEvent({ ...type, session_id: session, data: { price: -1 } }),
      makeEvent({ ...type, session_id: session, data: { sku: "ABC-2" } }),
      makeEvent({ ...type, session_id: session, data: { price: 1, sku: "abc" } }),
      makeEvent({ session_id: session, category: "shop", name: "no-schema-here", data: { price: "free" } }),
    ];
    const res = await postEvents(events);
    expect(res.status).toBe(202);
    const body = (await res.json()) as { success: boolean; accepted: number; errors: Record<string, unknown>[] };
    expect(body.accepted).toBe(2);
    expect(body.errors).toEqual([
      {
        index: 1,
        field: "data/price",
        rule: "minimum",
        message: expect.stringMatching(
          /^data\/price does not match the schema of shop\/purchase-[0-9a-f]+: -1 is less than 0\.$/,
        ),
      },
      { index: 2, field: "data", rule: "required", message: expect.stringContaining('"price"') },
      { index: 3, field: "data/sku", rule: "pattern", message: expect.stringContaining("pattern") },
    ]);
    const page = await waitForCount(bySession(session), 2);
    expect(page.results.map((r) => (r.data as { price: unknown }).price).sort()).toEqual([3, "free"]);
  });

  it("lets an application's own schema take precedence over the one for every application, for that application only", async () => {
    const type = newType();
    const app = await makeApp();
    await register(type, PRICE);
    await register(type, { type: "object", required: ["coupon"] }, app.appId);
    const ownRes = await postEvents(
      [makeEvent({ ...type, data: { coupon: "X" } }), makeEvent({ ...type, data: { price: 1 } })],
      bearer(app.writeKey),
    );
    const own = (await ownRes.json()) as { accepted: number; errors: { index: number; rule: string }[] };
    expect(own.accepted).toBe(1);
    expect(own.errors).toMatchObject([{ index: 1, field: "data", rule: "required" }]);
    // The dev application still gets the schema for every application.
    const dev = (await (await postEvents([makeEvent({ ...type, data: { coupon: "X" } })])).json()) as {
      errors: { rule: string }[];
    };
    expect(dev.errors).toMatchObject([{ index: 0, field: "data", rule: "required" }]);
  });

  it("takes a new, changed or deleted schema into account within PAYLOAD_SCHEMA_CACHE_SECONDS (1 s in tests)", async () => {
    const type = newType();
    const event = () => makeEvent({ ...type, data: { price: -5 } });
    expect((await postEvents([event()])).status).toBe(202); // no schema yet: passes, and the isolate remembers that
    await register(type, PRICE);
    expect((await postEvents([event()])).status).toBe(400);
    await register(type, { type: "object" });
    expect((await postEvents([event()])).status).toBe(202);
    await env.DB.prepare("DELETE FROM payload_schemas WHERE category = ? AND name = ?")
      .bind(type.category, type.name)
      .run();
    await register(type, { type: "object", maxProperties: 0 });
    const res = await postEvents([event()]);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: { rule: string }[] }).errors[0]!.rule).toBe("maxProperties");
  });

  it("records a schema failure in the error log with its type, field and rule", async () => {
    const type = newType();
    await register(type, PRICE);
    const res = await postEvents([makeEvent({ ...type, data: { price: -1 } }), makeEvent()]);
    const requestId = res.headers.get("x-request-id")!;
    const deadline = Date.now() + 15_000;
    let row: Record<string, unknown> | undefined;
    while (!row && Date.now() < deadline) {
      const page = await getJson<{ results: Record<string, unknown>[] }>(`/api/errors/?kind=invalid_event&limit=1000`);
      row = page.results.find((r) => r.source === requestId);
      if (!row) await new Promise((r) => setTimeout(r, 100));
    }
    expect(row).toBeDefined();
    expect(row!.reasons).toEqual([expect.objectContaining({ index: 0, field: "data/price", rule: "minimum" })]);
    const stored = await env.DB.prepare("SELECT category, name, field, rule FROM error_log WHERE source = ?")
      .bind(requestId)
      .first();
    expect(stored).toEqual({ category: type.category, name: type.name, field: "data/price", rule: "minimum" });
  });

  it("lets events pass when a stored schema does not compile (one written by hand), and tells Sentry", async () => {
    const type = newType();
    await register(type, "{not json");
    const res = await postEvents([makeEvent({ ...type, data: { anything: true } })]);
    expect(res.status).toBe(202);
    const deadline = Date.now() + 10_000;
    let seen = false;
    while (!seen && Date.now() < deadline) {
      const received = (await (await fetch(env.SENTRY_RECEIVER)).json()) as { body: string }[];
      seen = received.some(
        (e) => e.body.includes(`${type.category}/${type.name}`) && e.body.includes("do not compile"),
      );
      if (!seen) await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toBe(true);
  });
});

describe.concurrent("POST /api/event/validate (dry run)", () => {
  it("answers per event what would be accepted, under which event_id, and what refused and why; stores and logs nothing", async () => {
    const type = newType();
    await register(type, PRICE);
    const session = `dry-${crypto.randomUUID()}`;
    const good = makeEvent({ ...type, session_id: session, data: { price: 1 } });
    const events = [
      good,
      makeEvent({ ...type, session_id: session, data: { price: -1 } }),
      { session_id: session },
      good,
    ];
    const res = await api("/api/event/validate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(events),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      success: boolean;
      accepted: number;
      refused: number;
      events: Record<string, unknown>[];
    };
    expect(body).toMatchObject({ success: false, accepted: 2, refused: 2 });
    expect(body.events[0]).toEqual({ index: 0, accepted: true, event_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(body.events[1]).toMatchObject({
      index: 1,
      accepted: false,
      errors: [{ index: 1, field: "data/price", rule: "minimum" }],
    });
    expect(body.events[2]).toMatchObject({ index: 2, accepted: false });
    // The second copy of the same content is a second event, with its own id.
    expect(body.events[3]).toMatchObject({ index: 3, accepted: true });
    expect(body.events[3]!.event_id).not.toBe(body.events[0]!.event_id);

    // Nothing was queued: a sentinel sent through the real POST after the dry run is stored only
    // once the consumer has taken what was queued before it, and still nothing of the dry run's
    // session is stored or logged (checked before any real POST could make the same ids).
    const sentinel = makeEvent({ session_id: `dry-sentinel-${crypto.randomUUID()}` });
    expect((await postEvents(sentinel)).status).toBe(202);
    await waitForCount(bySession(sentinel.session_id as string), 1);
    const ofSession = async (table: "events" | "error_log") =>
      (await env.DB.prepare(
        `SELECT count(*) AS n FROM ${table} WHERE ${table === "events" ? "session_id = ?" : "payload LIKE ?"}`,
      )
        .bind(table === "events" ? session : `%${session}%`)
        .first<{ n: number }>())!.n;
    expect(await ofSession("events"), "events of the dry run stored").toBe(0);
    expect(await ofSession("error_log"), "refusals of the dry run logged").toBe(0);
    expect((await getJson(bySession(session))).count).toBe(0);

    // The real POST then stores exactly the ids the dry run announced.
    await postEvents(events);
    const page = await waitForCount(bySession(session), 2);
    expect(page.results.map((r) => r.event_id).sort()).toEqual(
      [body.events[0]!.event_id, body.events[3]!.event_id].sort(),
    );
  });

  it("is open to any page's preflight, like ingestion (a client developer calls it from the browser)", async () => {
    const res = await api("/api/event/validate", {
      method: "OPTIONS",
      headers: {
        authorization: "",
        origin: "https://shop.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, authorization",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://shop.example");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
  });

  it("needs a write key and answers a body it cannot read as ingestion does", async () => {
    const noKey = await api("/api/event/validate", { method: "POST", headers: { authorization: "" }, body: "{}" });
    expect(noKey.status).toBe(401);
    const bad = await api("/api/event/validate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "[",
    });
    expect(bad.status).toBe(400);
    const empty = await api("/api/event/validate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "[]",
    });
    expect(empty.status).toBe(400);
  });
});
