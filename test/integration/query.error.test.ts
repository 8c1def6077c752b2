// Refused queries and unknown routes (SPEC §4, §5): a bad value is a 400 naming the parameter;
// unknown routes 404 and wrong methods 405 with Allow, all as JSON that leaks nothing.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { openApiDocument } from "../../src/openapi/document";
import { docLimits } from "../../src/openapi/json-schema";
import {
  api,
  BASE,
  bearer,
  type EventPage,
  getJson,
  makeApp,
  makeEvent,
  postEvents,
  waitForCount,
} from "../helpers/api";

interface ErrorBody {
  success: false;
  code: string;
  message: string;
  request_id: string;
  errors?: { field: string | null; message: string }[];
}

async function errorOf(res: Response, status: number): Promise<ErrorBody> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const text = await res.text();
  expect(text).not.toMatch(/\bat .+:\d+:\d+|node_modules|src\//);
  const body = JSON.parse(text) as ErrorBody;
  expect(body.success).toBe(false);
  expect(body.request_id).toBe(res.headers.get("x-request-id"));
  return body;
}

describe("bad query values", () => {
  const bad: [string, string][] = [
    ["limit=0", "limit"],
    ["limit=-5", "limit"],
    ["limit=ten", "limit"],
    ["limit=2.5", "limit"],
    ["limit=1001", "limit"],
    ["offset=-1", "offset"],
    ["offset=abc", "offset"],
    ["offset=100001", "offset"],
    ["timestamp_after=yesterday", "timestamp_after"],
    ["timestamp_before=2021-02-30", "timestamp_before"],
    ["timestamp_start=2021-01-01T25:00", "timestamp_start"],
    ["timestamp_end=1609459200", "timestamp_end"],
    ["timestamp_after=2021-01-01T10:00:00+01:00", "timestamp_after"], // an unencoded '+' arrives as a space
    [`session_id=${"s".repeat(151)}`, "session_id"],
    [`category=${"c".repeat(151)}`, "category"],
    [`name=${"n".repeat(151)}`, "name"],
    ["pagination=pages", "pagination"],
    ["pagination=cursor&cursor=not-a-cursor", "cursor"],
    [`pagination=cursor&cursor=${btoa(JSON.stringify(["x", 1]))}`, "cursor"],
    [`cursor=${btoa(JSON.stringify([1, 2, 3]))}`, "cursor"],
    [`cursor=${"A".repeat(300)}`, "cursor"],
    ["pagination=cursor&offset=10", "offset"],
  ];
  for (const [query, field] of bad) {
    it(`refuses ${query.length > 60 ? `${query.slice(0, 60)}…` : query} with 400 naming ${field}`, async () => {
      const body = await errorOf(await api(`/api/event/?${query}`), 400);
      expect(body.code).toBe("invalid_query");
      expect(body.message).toContain(field);
      expect(body.errors?.map((e) => e.field)).toContain(field);
    });
  }

  it("names every bad parameter of one request", async () => {
    const body = await errorOf(await api(`/api/event/?limit=0&timestamp_after=nope&category=${"c".repeat(151)}`), 400);
    expect(body.code).toBe("invalid_query");
    expect(body.errors!.map((e) => e.field).sort()).toEqual(["category", "limit", "timestamp_after"]);
    for (const e of body.errors!) expect(e.message, e.field!).toContain(e.field!);
  });

  it("treats an empty filter as no filter, as the original did", async () => {
    // An application's own read key sees only its events: empty filters must select all of them.
    const app = await makeApp();
    const events = [makeEvent({ category: "first" }), makeEvent({ category: "second", name: "other" })];
    expect((await postEvents(events, bearer(app.writeKey))).status).toBe(202);
    const all = await waitForCount("/api/event/?limit=5", 2, undefined, { headers: bearer(app.readKey) });
    const res = await api("/api/event/?session_id=&category=&name=&timestamp_after=&limit=5", {
      headers: bearer(app.readKey),
    });
    expect(res.status).toBe(200);
    const page = (await res.json()) as EventPage;
    expect(page.count).toBe(2);
    expect(page.results.map((r) => r.session_id).sort()).toEqual(events.map((e) => e.session_id).sort());
    expect(page.results).toEqual(all.results);
  });

  it("refuses bad values on the session route and the error log too", async () => {
    const long = await errorOf(await api(`/api/sessions/${"s".repeat(151)}/events`), 400);
    expect([long.code, long.errors!.map((e) => e.field)]).toEqual(["invalid_query", ["session_id"]]);
    expect(long.message).toMatch(/session id/);
    const limit = await errorOf(await api("/api/sessions/some-session/events?limit=5000"), 400);
    expect([limit.code, limit.errors!.map((e) => e.field)]).toEqual(["invalid_query", ["limit"]]);
    expect(limit.message).toContain("limit");
    const kind = await errorOf(await api("/api/errors/?kind=everything"), 400);
    expect([kind.code, kind.errors!.map((e) => e.field)]).toEqual(["invalid_query", ["kind"]]);
    expect(kind.message).toContain("kind");
  });

  it("still answers good queries after bad ones", async () => {
    const event = makeEvent();
    expect((await postEvents(event)).status).toBe(202);
    await api("/api/event/?limit=0");
    const page = await waitForCount(`/api/event/?session_id=${event.session_id as string}`, 1);
    expect(page.next).toBeNull();
    expect((await getJson("/api/event/?limit=1000")).results.length).toBeGreaterThan(0);
  });
});

describe("unknown routes", () => {
  for (const [method, path] of [
    ["GET", "/nothing-here"],
    ["GET", "/api/nothing-here"],
    ["GET", "/api/event/123/more"],
    ["POST", "/api/events/"],
    ["GET", "/api/sessions/abc"],
    ["DELETE", "/api/unknown/"],
  ] as const) {
    it(`answers ${method} ${path} with a JSON 404`, async () => {
      const body = await errorOf(await api(path, { method }), 404);
      expect(body.code).toBe("not_found");
    });
  }
});

describe("wrong methods", () => {
  for (const [method, path, allow] of [
    ["PUT", "/api/event/", "GET, HEAD, POST, OPTIONS"],
    ["DELETE", "/api/event/", "GET, HEAD, POST, OPTIONS"],
    ["PATCH", "/api/event", "GET, HEAD, POST, OPTIONS"],
    ["POST", "/api/sessions/abc/events", "GET, HEAD"],
    ["DELETE", "/api/sessions/abc/events", "GET, HEAD"],
    ["POST", "/api/errors/", "GET, HEAD"],
    ["PUT", "/api/errors", "GET, HEAD"],
  ] as const) {
    it(`answers ${method} ${path} with a JSON 405 and Allow: ${allow}`, async () => {
      const res = await api(path, {
        method,
        headers: { "content-type": "application/json" },
        body: method === "DELETE" ? undefined : "{}",
      });
      const body = await errorOf(res, 405);
      expect(body.code).toBe("method_not_allowed");
      expect(res.headers.get("allow")).toBe(allow);
    });
  }
});

describe("every documented path", () => {
  // The Allow of a 405 comes from the mounted routes (src/app.ts); the document is written from its
  // own route table (src/openapi/routes.ts). They must say the same, for every path.
  const doc = openApiDocument(docLimits(env)) as { paths: Record<string, Record<string, unknown>> };
  const workerPaths = Object.entries(doc.paths).filter(
    ([path]) => path.startsWith("/api/") && path !== "/api/openapi.json",
  );
  for (const [path, operations] of workerPaths) {
    const methods = Object.keys(operations).map((m) => m.toUpperCase());
    const expected = ["GET", "HEAD", "POST", "OPTIONS"].filter(
      (m) =>
        methods.includes(m) ||
        (m === "HEAD" && methods.includes("GET")) ||
        (m === "OPTIONS" && methods.includes("POST")),
    );
    const concrete = path.replace(/\{[^}]+\}/g, "00000000-0000-4000-8000-000000000000");
    it(`answers PUT ${path} with 405 and Allow: ${expected.join(", ")}`, async () => {
      const res = await api(concrete, { method: "PUT", body: "{}" });
      expect((await errorOf(res, 405)).code).toBe("method_not_allowed");
      expect(res.headers.get("allow")).toBe(expected.join(", "));
    });
  }

  it("answers GET of the dry run's path with 405, not as a receipt for an event_id named validate", async () => {
    const res = await api("/api/event/validate");
    await errorOf(res, 405);
    expect(res.headers.get("allow")).toBe("POST, OPTIONS");
  });
});

describe("links", () => {
  it("builds absolute links on the host the request came to", async () => {
    const page = await getJson("/api/event/?limit=1&offset=1");
    expect(page.previous).toBe(`${BASE}/api/event/?limit=1`);
  });
});
