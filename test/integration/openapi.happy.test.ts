// The API reference tells the truth (issue 10): real answers of every route, through the real
// pipeline, have a status the document lists for that operation, the headers it names, and a body
// its JSON Schema accepts (checked with the same interpreter as payload schemas). Also: GET / points
// to /docs and /api/openapi.json.

import { env } from "cloudflare:workers";
import { type Schema, Validator } from "@cfworker/json-schema";
import { describe, expect, it } from "vitest";
import { openApiDocument } from "../../src/openapi/document";
import { docLimits } from "../../src/openapi/json-schema";
import { api, bearer, DEV_READ_KEY, DEV_WRITE_KEY, makeApp, makeEvent } from "../helpers/api";

interface Media {
  schema: Schema;
}
interface Response_ {
  $ref?: string;
  headers?: Record<string, unknown>;
  content?: Record<string, Media>;
}
interface Operation {
  requestBody?: { content: Record<string, Media & { example: unknown }> };
  responses: Record<string, Response_>;
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; responses: Record<string, Response_> };
}

const doc = openApiDocument(docLimits(env)) as unknown as Doc;

/** A schema of the document as a standalone JSON Schema: the named schemas become its $defs. */
function validatorOf(schema: Schema): Validator {
  const local = (value: unknown) =>
    JSON.parse(JSON.stringify(value).replaceAll('"#/components/schemas/', '"#/$defs/')) as Schema;
  return new Validator({ ...local(schema), $defs: local(doc.components.schemas) } as Schema, "2020-12", false);
}

/** The document's operation for a concrete request path. */
function operationOf(method: string, url: string): Operation {
  const path = new URL(url, "http://eye.test").pathname;
  const bare = (p: string) => (p.length > 1 ? p.replace(/\/$/, "") : p);
  for (const [template, ops] of Object.entries(doc.paths)) {
    const pattern = new RegExp(`^${bare(template).replace(/\{[^}]+\}/g, "[^/]+")}/?$`);
    if (pattern.test(path) && ops[method.toLowerCase()]) return ops[method.toLowerCase()]!;
  }
  throw new Error(`${method} ${path} is not in the document`);
}

const resolve = (r: Response_): Response_ => (r.$ref ? doc.components.responses[r.$ref.split("/").pop()!]! : r);

/**
 * Checks one answer against the document: its status is listed for the operation (404 and 405 for
 * any path), every header named is there, and the body is valid against the media type's schema.
 */
async function conforms(method: string, url: string, res: Response): Promise<unknown> {
  const where = `${method} ${url} → ${res.status}`;
  const generic = { 404: "NotFound", 405: "MethodNotAllowed" } as Record<number, string>;
  let documented: Response_ | undefined;
  try {
    documented = operationOf(method, url).responses[String(res.status)];
  } catch (err) {
    if (!generic[res.status]) throw err;
  }
  documented = documented
    ? resolve(documented)
    : generic[res.status]
      ? doc.components.responses[generic[res.status]!]
      : undefined;
  expect(documented, `${where}: status not in the document`).toBeDefined();
  for (const header of Object.keys(documented!.headers ?? {})) {
    if (header === "Retry-After" || header === "WWW-Authenticate" || header === "Allow") continue; // checked where they apply
    expect(res.headers.get(header), `${where}: header ${header}`).not.toBeNull();
  }
  const [media, content] = Object.entries(documented!.content ?? {})[0]!;
  expect(res.headers.get("content-type"), where).toContain(media);
  const text = new TextDecoder().decode(await res.arrayBuffer());
  if (media === "application/x-ndjson") {
    const line = validatorOf({ $ref: "#/components/schemas/StoredEvent" });
    const lines = text.split("\n").filter(Boolean);
    for (const l of lines) expect(line.validate(JSON.parse(l)).errors, `${where}: ${l}`).toEqual([]);
    return lines.map((l) => JSON.parse(l));
  }
  const body: unknown = JSON.parse(text);
  expect(validatorOf(content.schema).validate(body).errors, `${where}: ${text.slice(0, 300)}`).toEqual([]);
  return body;
}

/** Calls the Worker and checks the answer against the document. */
async function call(method: string, path: string, init: RequestInit = {}) {
  const res = await api(path, { ...init, method });
  const status = res.status;
  return { status, headers: res.headers, body: await conforms(method, path, res) };
}

const json = (key: string) => ({ ...bearer(key), "content-type": "application/json" });

describe("the OpenAPI document against real answers", () => {
  it("POST /api/event/ and /validate: 202 (whole and partial), the dry run, and the errors' one shape", async () => {
    const app = await makeApp();
    // The document's own example is accepted as it stands.
    const example = operationOf("POST", "/api/event/").requestBody!.content["application/json"]!.example;
    expect(validatorOf({ $ref: "#/components/schemas/EventBatch" }).validate(example).errors).toEqual([]);
    expect(
      await call("POST", "/api/event/validate", { headers: json(app.writeKey), body: JSON.stringify(example) }),
    ).toMatchObject({ status: 200, body: { success: true } });

    const good = makeEvent();
    const bad = makeEvent({ timestamp: "yesterday" });
    expect(
      await call("POST", "/api/event/", { headers: json(app.writeKey), body: JSON.stringify([good]) }),
    ).toMatchObject({ status: 202, body: { success: true } });
    expect(
      await call("POST", "/api/event/", { headers: json(app.writeKey), body: JSON.stringify([makeEvent(), bad]) }),
    ).toMatchObject({ status: 202, body: { success: false } });
    expect(
      await call("POST", "/api/event/validate", { headers: json(app.writeKey), body: JSON.stringify([good, bad]) }),
    ).toMatchObject({ status: 200, body: { refused: 1 } });
    // text/plain with the key in the URL, gzip-encoded: what a beacon may send.
    const gzipped = await new Response(
      new Blob([JSON.stringify(makeEvent())]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer();
    const beacon = await call("POST", `/api/event/?key=${app.writeKey}`, {
      headers: { authorization: "", "content-type": "text/plain", "content-encoding": "gzip" },
      body: gzipped,
    });
    expect(beacon.status).toBe(202);

    const errors = [
      await call("POST", "/api/event/", { headers: json(app.writeKey), body: JSON.stringify([bad]) }),
      await call("POST", "/api/event/", { headers: json(app.writeKey), body: "{" }),
      await call("POST", "/api/event/", { headers: { authorization: "" }, body: "{}" }),
      await call("POST", "/api/event/", { headers: json(app.readKey), body: "{}" }),
      await call("POST", "/api/event/", {
        headers: { ...bearer(app.writeKey), "content-type": "text/csv" },
        body: "a,b",
      }),
      await call("POST", "/api/event/validate", {
        headers: json(app.writeKey),
        body: "x".repeat(docLimits(env).maxBodyBytes + 1),
      }),
    ];
    expect(errors.map((e) => [e.status, (e.body as { code: string }).code])).toEqual([
      [400, "invalid_events"],
      [400, "bad_request"],
      [401, "unauthorized"],
      [403, "forbidden"],
      [415, "unsupported_media_type"],
      [413, "payload_too_large"],
    ]);
    expect(errors[2]!.headers.get("www-authenticate")).toBe("Bearer");
  });

  it("every read route, in both pagination modes, with its bookmark, and its errors", async () => {
    const app = await makeApp();
    const event = makeEvent({ event_id: crypto.randomUUID(), category: "docs", name: "read" });
    await call("POST", "/api/event/", { headers: json(app.writeKey), body: JSON.stringify(event) });
    await call("POST", "/api/event/", {
      headers: json(app.writeKey),
      body: JSON.stringify(makeEvent({ timestamp: "never" })),
    });
    const read = { headers: bearer(app.readKey) };
    const session = encodeURIComponent(event.session_id as string);
    // Stored once the consumer has run: poll the receipt.
    const deadline = Date.now() + 15_000;
    let receipt = await call("GET", `/api/event/${event.event_id as string}`, read);
    while (receipt.status === 404 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      receipt = await call("GET", `/api/event/${event.event_id as string}`, read);
    }
    expect(receipt).toMatchObject({ status: 200, body: { event_id: event.event_id, application: app.appId } });

    const pages = [
      await call("GET", `/api/event/?session_id=${session}`, read),
      await call("GET", `/api/event/?session_id=${session}&pagination=cursor&limit=1`, read),
      await call("GET", `/api/sessions/${session}/events`, read),
    ];
    for (const page of pages) expect((page.body as { results: unknown[] }).results).toHaveLength(1);
    const exported = await call("GET", "/api/export?timestamp_after=2021-01-01&timestamp_before=2021-01-02", read);
    expect(exported.body).toContainEqual(expect.objectContaining({ event_id: event.event_id }));
    const reads = [
      ...pages,
      exported,
      await call("GET", "/api/errors/", read),
      await call("GET", "/api/errors/summary", read),
      await call("GET", "/api/stats/counts?timestamp_after=2021-01-01&timestamp_before=2021-01-02&interval=day", read),
      await call(
        "GET",
        "/api/stats/counts?by=name&category=docs&timestamp_after=2021-01-01&timestamp_before=2021-01-02&interval=day",
        read,
      ),
    ];
    for (const r of reads) expect(r.status).toBe(200);

    const errors = [
      await call("GET", "/api/event/?limit=0", read),
      await call("GET", "/api/event/not-a-uuid", read),
      await call("GET", `/api/event/${crypto.randomUUID()}`, read),
      await call("GET", "/api/event/", { headers: { authorization: "" } }),
      await call("GET", "/api/event/", { headers: bearer(app.writeKey) }),
      await call("GET", "/api/stats/counts", {
        headers: { ...bearer(app.readKey), "x-d1-bookmark": "not a bookmark" },
      }),
      await call("DELETE", "/api/event/", read),
      await call("GET", "/api/nothing-here", read),
    ];
    expect(errors.map((e) => [e.status, (e.body as { code: string }).code])).toEqual([
      [400, "invalid_query"],
      [400, "invalid_query"],
      [404, "not_found"],
      [401, "unauthorized"],
      [403, "forbidden"],
      [400, "bad_request"],
      [405, "method_not_allowed"],
      [404, "not_found"],
    ]);
    expect(errors[6]!.headers.get("allow")).toMatch(/GET/);
  });

  it("the SDK routes (docs/sdks.md): Segment's and PostHog's answers, their dry runs, their configuration and their errors", async () => {
    const basic = { authorization: `Basic ${btoa(`${DEV_WRITE_KEY}:`)}`, "content-type": "text/plain" };
    const track = (extra: object = {}) => JSON.stringify({ anonymousId: "docs", event: "docs", ...extra });
    const answers = [
      await call("POST", "/v1/track", { headers: basic, body: track() }),
      await call("POST", "/v1/t", { headers: basic, body: track({ writeKey: DEV_WRITE_KEY }) }),
      await call("POST", "/v1/batch", {
        headers: basic,
        body: JSON.stringify({ batch: [{ type: "track", anonymousId: "a", event: "e" }, { type: "track" }] }),
      }),
      await call("POST", "/v1/batch?dry_run=1", {
        headers: basic,
        body: JSON.stringify({ batch: [{ type: "page", anonymousId: "a" }] }),
      }),
      await call("POST", "/e/", {
        headers: { authorization: "", "content-type": "text/plain" },
        body: JSON.stringify({ api_key: DEV_WRITE_KEY, batch: [{ event: "docs", distinct_id: "d" }, { event: "x" }] }),
      }),
      await call("POST", "/capture/?dry_run=1", {
        headers: { authorization: "" },
        body: JSON.stringify({ api_key: DEV_WRITE_KEY, event: "docs", distinct_id: "d" }),
      }),
      await call("POST", "/v1/m", { headers: { authorization: "" }, body: "{}" }),
      await call("GET", "/v1/projects/k/settings", { headers: { authorization: "" } }),
      await call("GET", "/array/k/config", { headers: { authorization: "" } }),
      await call("POST", "/flags/?v=2", { headers: { authorization: "" }, body: "{}" }),
      await call("POST", "/decide/", { headers: { authorization: "" }, body: "{}" }),
    ];
    expect(answers.map((a) => a.status)).toEqual(Array(answers.length).fill(200));
    expect(answers.map((a) => (a.body as { success?: boolean }).success)).toEqual([
      true,
      true,
      false,
      true,
      false,
      true,
      true,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    const script = await api("/array/k/config.js", { headers: { authorization: "" } });
    expect(operationOf("GET", "/array/k/config.js").responses["200"]!.content).toHaveProperty([
      "application/javascript",
    ]);
    expect(script.headers.get("content-type")).toMatch(/^application\/javascript/);

    const errors = [
      await call("POST", "/v1/track", { headers: { authorization: "" }, body: track() }),
      await call("POST", "/v1/track", { headers: basic, body: JSON.stringify({ event: "nobody" }) }),
      await call("POST", "/v1/track", { headers: basic, body: track({ properties: { pad: "x".repeat(40_000) } }) }),
      await call("POST", "/e/?compression=lz64", { headers: { authorization: "" }, body: "data=x" }),
      await call("POST", "/e/", { headers: bearer(DEV_READ_KEY), body: "{}" }),
      await call("POST", "/v1/track?dry_run=maybe", { headers: basic, body: track() }),
      await call("POST", "/s/", { headers: { authorization: "" }, body: "x" }),
      await call("GET", "/v1/track", { headers: { authorization: "" } }),
    ];
    expect(errors.map((e) => [e.status, (e.body as { code: string }).code])).toEqual([
      [401, "unauthorized"],
      [400, "invalid_events"],
      [413, "payload_too_large"],
      [415, "unsupported_media_type"],
      [403, "forbidden"],
      [400, "invalid_query"],
      [404, "not_found"],
      [405, "method_not_allowed"],
    ]);
  });

  it("the service routes: health with no key, a scoped key and a key for every application; GET / pointing to the reference", async () => {
    const app = await makeApp();
    const health = [
      await call("GET", "/api/health", { headers: { authorization: "" } }),
      await call("GET", "/api/health", { headers: bearer(app.readKey) }),
      await call("GET", "/api/health", { headers: bearer(DEV_READ_KEY) }),
    ];
    expect(health.map((h) => typeof (h.body as { storage?: unknown }).storage)).toEqual([
      "undefined",
      "string",
      "object",
    ]);

    for (const path of ["/", "/api/"]) {
      const home = await call("GET", path, { headers: { authorization: "" } });
      expect(home.body).toMatchObject({ reference: "/docs", openapi: "/api/openapi.json" });
      expect((home.body as { endpoints: { path: string }[] }).endpoints.map((e) => e.path)).toContain(
        "/api/openapi.json",
      );
    }
    const page = await api("/", { headers: { authorization: "", accept: "text/html" } });
    const html = await page.text();
    expect(html).toContain('href="/docs/"');
    expect(html).toContain('href="/api/openapi.json"');
  });
});
