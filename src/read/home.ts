// GET /: what a newcomer finds at the root: the service, its version, the API, as JSON; a browser gets
// the static home page, which shows the same.
import { Hono } from "hono";
import { version } from "../../package.json";
import type { AppEnv } from "../request/app-env";

const ENDPOINTS = [
  { method: "POST", path: "/api/event/", key: "write", what: "send one event or an array of up to 500" },
  {
    method: "POST",
    path: "/api/event/validate",
    key: "write",
    what: "the dry run: what would be accepted or refused, and why; stores nothing",
  },
  {
    method: "GET",
    path: "/api/event/",
    key: "read",
    what: "query events: session_id, category, name, time range; limit/offset or cursor pages",
  },
  { method: "GET", path: "/api/sessions/{session_id}/events", key: "read", what: "one session's events, oldest first" },
  {
    method: "GET",
    path: "/api/event/{event_id}",
    key: "read",
    what: "a delivery receipt: the stored event, or 404 while it is not stored",
  },
  {
    method: "GET",
    path: "/api/errors/",
    key: "read",
    what: "the error log: refused events, malformed and dead-lettered messages; by kind, application, type, field, rule",
  },
  {
    method: "GET",
    path: "/api/errors/summary",
    key: "read",
    what: "refused events and failures counted by kind, rule, type and field over a time window",
  },
  {
    method: "GET",
    path: "/api/stats/counts",
    key: "read",
    what: "events counted per hour or day by category or name, from the hourly counts",
  },
  { method: "GET", path: "/api/export", key: "read", what: "every event in a time range as NDJSON, hot or archived" },
  {
    method: "GET",
    path: "/api/health",
    key: "none (read key: storage details)",
    what: "liveness, version, storage tiers",
  },
  {
    method: "GET",
    path: "/api/openapi.json",
    key: "none",
    what: "this API as an OpenAPI 3.1 document, rendered at /docs",
  },
] as const;

/** The interactive API reference (a static page under public/docs/) and the document it renders; the events explorer (public/explorer/). */
const REFERENCE = "/docs";
const OPENAPI = "/api/openapi.json";
const EXPLORER = "/explorer";

const DOCS = `${REFERENCE} (the API reference, from ${OPENAPI}); README.md of the project's repository (Endpoints, Configuration, Deploying); SECURITY.md for keys`;

/**
 * The page a browser gets: public/home/index.html, the explorer's look, which reads this route's
 * JSON for the version and the endpoints. It is fetched through the assets binding rather than
 * put at public/index.html, because static assets are served before the Worker for the paths they
 * match: an index.html would answer GET / to every client, JSON clients too. Relayed, it keeps the
 * headers public/_headers gives it (its own policy: the page's script and style, GET / of this
 * origin), which app.ts's secureHeaders leaves in place; every response the Worker makes itself
 * keeps `default-src 'none'`. Never cached: the answer at / depends on Accept.
 */
const HOME_PAGE = "/home/";

export const home = new Hono<AppEnv>().get("/", async (c) => {
  // A browser asks for HTML first; everything else gets JSON.
  const accept = c.req.header("accept") ?? "";
  if (/\btext\/html\b/i.test(accept) && !/^\s*application\/json/i.test(accept)) {
    const page = await c.env.ASSETS.fetch(new URL(HOME_PAGE, c.req.url));
    if (page.ok) {
      const res = new Response(page.body, page);
      res.headers.set("Cache-Control", "no-store");
      return res;
    }
  }
  return c.json({
    service: "The Eye",
    version,
    api: "/api/",
    endpoints: ENDPOINTS,
    docs: DOCS,
    reference: REFERENCE,
    openapi: OPENAPI,
    explorer: EXPLORER,
  });
});
