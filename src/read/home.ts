// GET /: what a newcomer (or a browser) finds at the root: the service, its version, the API.
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

const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (ch) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot" }[ch]};`);

function page(): string {
  const rows = ENDPOINTS.map(
    (e) =>
      `<tr><td>${e.method}</td><td><code>${escapeHtml(e.path)}</code></td><td>${e.key}</td><td>${escapeHtml(e.what)}</td></tr>`,
  ).join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>The Eye ${version}</title></head><body>
<h1>The Eye</h1><p>An event collector for user-behaviour events, version ${version}.</p>
<p>Keys travel in <code>Authorization: Bearer &lt;key&gt;</code> (a write key may also be <code>?key=</code>).</p>
<table><thead><tr><th>method</th><th>path</th><th>key</th><th>what</th></tr></thead><tbody>${rows}</tbody></table>
<p>In a browser: the <a href="${EXPLORER}/">events explorer</a> (a read key) and the <a href="${REFERENCE}/">API reference</a>
(OpenAPI 3.1: <a href="${OPENAPI}">${OPENAPI}</a>). More in the repository's README.md and SECURITY.md.</p></body></html>`;
}

export const home = new Hono<AppEnv>().get("/", (c) => {
  // A browser asks for HTML first; everything else gets JSON.
  const accept = c.req.header("accept") ?? "";
  if (/\btext\/html\b/i.test(accept) && !/^\s*application\/json/i.test(accept)) return c.html(page());
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
