// The API reference (issue 10): public/api/openapi.json is what src/openapi/document.ts makes from the zod
// schemas, it names every route the app serves with the query parameters its schema parses, what
// JSON Schema cannot say is true of the validator, and /docs is served with nothing from elsewhere.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import * as z from "zod/mini";
import { createApp } from "../../src/app";
import { openApiDocument } from "../../src/openapi/document";
import { docLimits, type JsonSchema, jsonSchemaOf } from "../../src/openapi/json-schema";
import {
  errorQuery,
  errorSummaryQuery,
  eventInput,
  eventQuery,
  exportQuery,
  ingestQuery,
  label,
  posthogQuery,
  receiptQuery,
  segmentQuery,
  statsQuery,
} from "../../src/shared/schemas";
import { README_EVENT } from "../helpers/api";

const ORIGIN = "http://eye.test";
const asset = (path: string, init?: RequestInit) => env.ASSETS.fetch(`${ORIGIN}${path}`, init);

interface Operation {
  parameters?: ({ name: string; in: string; description?: string; schema: JsonSchema } | { $ref: string })[];
  requestBody?: { content: Record<string, { schema: JsonSchema; example?: unknown }> };
  responses: Record<string, unknown>;
  security: Record<string, string[]>[];
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, JsonSchema> };
}

const limits = docLimits(env);
const made = openApiDocument(limits) as unknown as Doc;
const served = async () => (await (await asset("/api/openapi.json")).json()) as Doc;

/** A path as the document writes it, without the trailing slash the app ignores (strict: false). */
const bare = (path: string) => (path.length > 1 ? path.replace(/\/$/, "") : path);
const documented = (doc: Doc) =>
  new Set(
    Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${bare(path)}`),
    ),
  );

/** The routes the app serves, as (method, path) in the document's notation; middleware left out. */
function appRoutes() {
  const routes = createApp().routes.filter((r) => !r.path.includes("*"));
  const open = (path: string) => bare(path.replace(/:([A-Za-z_]+)/g, "{$1}"));
  return {
    operations: new Set(routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${open(r.path)}`)),
    // app.all(path, methodNotAllowed): a path the app knows, answering 405 to other methods.
    paths: new Set(routes.map((r) => open(r.path))),
  };
}

const query = (op: Operation) =>
  (op.parameters ?? []).filter(
    (p): p is { name: string; in: string; description?: string; schema: JsonSchema } => "in" in p && p.in === "query",
  );

describe("public/api/openapi.json", () => {
  it("is served as a static file and is exactly what src/openapi/document.ts makes from the schemas (else: npm run openapi)", async () => {
    const res = await asset("/api/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(made)));
    expect(made).toMatchObject({ openapi: "3.1.0", info: { title: "The Eye" } });
  });

  it("names every route the app serves, and serves every route it names", async () => {
    const doc = await served();
    const { operations, paths } = appRoutes();
    const inDoc = documented(doc);
    expect(
      [...operations].filter((op) => !inDoc.has(op)),
      "routes missing from the document",
    ).toEqual([]);
    const docPaths = new Set(Object.keys(doc.paths).map(bare));
    expect(
      [...paths].filter((p) => !docPaths.has(p)),
      "paths with a 405 handler missing from the document",
    ).toEqual([]);
    // The other way round: an operation the app does not route is a static file.
    for (const op of [...inDoc].filter((op) => !operations.has(op))) {
      const [method, path] = op.split(" ") as [string, string];
      expect(method, op).toBe("GET");
      expect((await asset(path)).status, op).toBe(200);
    }
  });

  it("lists as query parameters exactly the keys of the zod schema each route parses, each described", () => {
    const parses: Record<string, z.ZodMiniObject> = {
      "POST /api/event": ingestQuery,
      "GET /api/event": eventQuery,
      "GET /api/sessions/{session_id}/events": eventQuery,
      "GET /api/event/{event_id}": receiptQuery,
      "GET /api/export": exportQuery,
      "GET /api/errors": errorQuery,
      "GET /api/errors/summary": errorSummaryQuery,
      "GET /api/stats/counts": statsQuery,
    };
    // The SDK routes that take events (docs/sdks.md).
    for (const [path, ops] of Object.entries(made.paths)) {
      if (!ops.post?.requestBody || path.startsWith("/api/")) continue;
      parses[`POST ${bare(path)}`] = path.startsWith("/v1/") ? segmentQuery : posthogQuery;
    }
    for (const [path, ops] of Object.entries(made.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const key = `${method.toUpperCase()} ${bare(path)}`;
        const schema = parses[key];
        const params = query(op);
        expect(
          params.map((p) => p.name),
          key,
        ).toEqual(schema ? Object.keys(schema.shape) : []);
        if (!schema) continue;
        const properties = (jsonSchemaOf(schema, limits) as { properties: Record<string, JsonSchema> }).properties;
        for (const p of params) {
          expect(p.description, `${key} ${p.name}`).toMatch(/\w/);
          const { description: _, ...expected } = properties[p.name]!;
          expect(p.schema, `${key} ${p.name}`).toEqual(expected);
        }
      }
    }
  });

  it("describes the event with z.toJSONSchema(eventInput): the same fields, types and required list", () => {
    const event = made.components.schemas.Event as { properties: Record<string, JsonSchema>; required: string[] };
    expect(event).toEqual(jsonSchemaOf(eventInput, limits));
    const raw = z.toJSONSchema(eventInput, { io: "input", unrepresentable: "any" }) as {
      properties: Record<string, JsonSchema>;
      required: string[];
    };
    expect(Object.keys(event.properties)).toEqual(Object.keys(raw.properties));
    expect(event.required).toEqual(raw.required);
    for (const [field, schema] of Object.entries(raw.properties)) {
      if (schema.type !== undefined) expect(event.properties[field]!.type, field).toEqual(schema.type);
    }
    // Both request media types carry the batch: one event or an array of them, within the limit.
    const post = made.paths["/api/event/"]!.post!;
    expect(Object.keys(post.requestBody!.content)).toEqual(["application/json", "text/plain"]);
    expect(made.components.schemas.EventBatch).toEqual({
      anyOf: [
        { $ref: "#/components/schemas/Event" },
        {
          type: "array",
          minItems: 1,
          maxItems: limits.maxEventsPerRequest,
          items: { $ref: "#/components/schemas/Event" },
        },
      ],
    });
  });

  it("says of each label, data and event_id only what the validator enforces", () => {
    const event = made.components.schemas.Event as {
      properties: Record<string, JsonSchema & { anyOf?: JsonSchema[] }>;
    };
    const accepts = (fields: Record<string, unknown>) => eventInput.safeParse({ ...README_EVENT, ...fields }).success;
    const { minLength, maxLength } = event.properties.session_id!;
    expect([minLength, maxLength]).toEqual([1, 150]);
    // JSON Schema counts code points, as the validator does.
    expect(accepts({ session_id: "😀".repeat(maxLength as number) })).toBe(true);
    expect(accepts({ session_id: "x".repeat((maxLength as number) + 1) })).toBe(false);
    expect(accepts({ session_id: "" })).toBe(false);
    expect(jsonSchemaOf(label, limits)).toMatchObject({ minLength: 1, maxLength: 150 });

    expect(event.properties.data!.type).toBe("object");
    expect(accepts({ data: {} })).toBe(true);
    for (const data of [[], "x", 1, null]) expect(accepts({ data }), JSON.stringify(data)).toBe(false);

    const pattern = new RegExp(event.properties.event_id!.anyOf![0]!.pattern as string);
    for (const id of ["0190b6e4-7c3a-7d2e-9f10-aa55bb66cc77", "0190B6E4-7C3A-7D2E-9F10-AA55BB66CC77"]) {
      expect(pattern.test(id), id).toBe(true);
      expect(accepts({ event_id: id }), id).toBe(true);
    }
    expect(pattern.test("0190b6e4")).toBe(false);
    expect(accepts({ event_id: "0190b6e4" })).toBe(false);
  });

  it("offers the write key as a bearer token or ?key= on POST (on Segment's routes as Basic too, on the SDKs' in the body), the read key as a bearer token only", () => {
    for (const [path, ops] of Object.entries(made.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const schemes = op.security.flatMap((req) => Object.keys(req)).sort();
        const sdk = !path.startsWith("/api/");
        // An SDK's POST without events (metrics, flags, recordings) takes no key; one with events may carry it in the body ({}).
        if (sdk && method === "post" && !op.requestBody) expect(schemes, path).toEqual([]);
        else if (sdk && method === "post") {
          expect(schemes, path).toEqual(
            path.startsWith("/v1/")
              ? ["writeKey", "writeKeyBasic", "writeKeyInQuery"]
              : ["writeKey", "writeKeyInQuery"],
          );
          expect(op.security).toContainEqual({});
        } else if (method === "post") expect(schemes, `${method} ${path}`).toEqual(["writeKey", "writeKeyInQuery"]);
        else
          expect(
            schemes.filter((s) => s.startsWith("write")),
            `${method} ${path}`,
          ).toEqual([]);
      }
    }
  });
});

describe("/docs", () => {
  it("is a static page that renders /api/openapi.json of this origin, with nothing from elsewhere", async () => {
    const redirect = await asset("/docs", { redirect: "manual" });
    expect([301, 307, 308]).toContain(redirect.status);
    expect(redirect.headers.get("location")).toBe("/docs/");
    const page = await asset("/docs/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const html = await page.text();
    expect(html).toContain('src="docs.js"');
    const files = {
      html,
      js: await (await asset("/docs/docs.js")).text(),
      css: await (await asset("/docs/docs.css")).text(),
    };
    expect(files.js).toContain('fetch("/api/openapi.json"');
    for (const [name, text] of Object.entries(files)) {
      expect(text.length, name).toBeGreaterThan(500);
      // No CDN: no absolute URL anywhere (it works offline).
      expect(text.match(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/gi) ?? [], name).toEqual([]);
    }
  });
});
