// The Hono app: request ids, one error handler, one JSON error shape, 404/405 as JSON, and the routes.
import { Hono } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { POSTHOG_PREFIXES, posthog } from "./ingest/posthog-routes";
import { ingest } from "./ingest/routes";
import { SEGMENT_PREFIXES, segment } from "./ingest/segment-routes";
import { exportEvents } from "./read/export";
import { health } from "./read/health";
import { home } from "./read/home";
import { errorsQuery, eventsQuery, sessions } from "./read/query";
import { receipt } from "./read/receipt";
import { stats } from "./read/stats";
import type { AppEnv } from "./request/app-env";
import { ApiError, clip, codeOf, errorBody } from "./shared/errors";
import { createSentry } from "./shared/sentry";

const isIngestPath = (path: string) => /^\/api\/event(\/validate)?\/?$/.test(path);

/** The SDKs' paths (Segment's /v1/…, PostHog's), open to any page's preflight as ingestion is. */
const isSdkPath = (path: string) => /^\/(v1|e|i\/v0\/e|batch|capture|decide|flags|array|s)(\/|$)/.test(path);

const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * The methods each mounted path answers, read from the router once every route is mounted, so a
 * 405's Allow never falls out of step with the routes. GET brings HEAD; the paths open to any
 * page's preflight list OPTIONS. A static path wins over a parameter one (`/api/event/validate`
 * is not an `/api/event/:event_id`).
 */
function allowedMethods(routes: { method: string; path: string }[]) {
  const byPath = new Map<string, Set<string>>();
  for (const { method, path } of routes) {
    if (method === "ALL") continue; // middleware, not a route
    const key = path.replace(/\/+$/, "") || "/";
    const methods = byPath.get(key) ?? new Set<string>();
    methods.add(method);
    if (method === "GET") methods.add("HEAD");
    if (isIngestPath(key) || isSdkPath(key)) methods.add("OPTIONS");
    byPath.set(key, methods);
  }
  const table = [...byPath].map(([path, methods]) => ({
    match: new RegExp(`^${path.replace(/:[^/]+/g, "[^/]+")}/?$`),
    dynamic: path.includes(":"),
    allow: METHOD_ORDER.filter((m) => methods.has(m)),
  }));
  table.sort((a, b) => Number(a.dynamic) - Number(b.dynamic));
  return { of: (path: string) => table.find((t) => t.match.test(path))?.allow };
}

export function createApp() {
  const app = new Hono<AppEnv>({ strict: false });

  app.use(async (c, next) => {
    const requestId = crypto.randomUUID();
    c.set("requestId", requestId);
    await next();
    c.header("X-Request-Id", requestId);
  });

  // A header a handler set stands: the one that sets any is GET / relaying the static home page
  // (read/home.ts), whose policy is the static pages' own (public/_headers).
  app.use(
    secureHeaders({
      contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      crossOriginResourcePolicy: "cross-origin",
      overwrite: false,
    }),
  );
  app.use(async (c, next) => {
    await next();
    if (!c.res.headers.has("Cache-Control")) c.header("Cache-Control", "no-store");
  });

  // Ingestion is called from any page that embeds a write key: preflights are answered at once
  // (they carry no key, so the application's origin list is enforced on the POST itself).
  // The read API sends CORS headers only to the origins in READ_CORS_ORIGINS.
  app.use(
    "/api/*",
    cors({
      origin: (origin, c) => {
        const method = c.req.method === "OPTIONS" ? c.req.header("access-control-request-method") : c.req.method;
        if (method === "POST" && isIngestPath(c.req.path)) return origin || "*";
        const allowed = (c.env.READ_CORS_ORIGINS ?? "").split(",").map((o: string) => o.trim());
        return origin && allowed.includes(origin) ? origin : null;
      },
      allowMethods: (_origin, c) =>
        isIngestPath(c.req.path) ? ["POST", "GET", "HEAD", "OPTIONS"] : ["GET", "HEAD", "OPTIONS"],
      allowHeaders: ["Authorization", "Content-Type", "Content-Encoding", "X-D1-Bookmark"],
      exposeHeaders: ["X-Request-Id", "Retry-After", "X-D1-Bookmark"],
      maxAge: 86400,
    }),
  );

  // The SDKs' paths, called from any page that embeds a write key, as ingestion is: the SDKs send
  // Authorization (analytics.js's Basic) and, on a resend, X-Retry-Count (analytics.js: refused by
  // the preflight, a browser would never send the retry), and read Retry-After; the application's
  // origin list is enforced where the key is checked.
  const sdkCors = cors({
    origin: (origin) => origin || "*",
    allowMethods: ["GET", "HEAD", "POST", "OPTIONS"],
    allowHeaders: ["Authorization", "Content-Type", "Content-Encoding", "X-Retry-Count"],
    exposeHeaders: ["X-Request-Id", "Retry-After"],
    maxAge: 86400,
  });
  for (const path of [...SEGMENT_PREFIXES, ...POSTHOG_PREFIXES]) app.use(path, sdkCors);

  app.notFound((c) =>
    c.json(
      errorBody("not_found", `no route for ${c.req.method} ${clip(new URL(c.req.url).pathname)}`, c.get("requestId")),
      404,
    ),
  );

  app.onError((err, c) => {
    const requestId = c.get("requestId");
    c.header("X-Request-Id", requestId);
    if (err instanceof ApiError) {
      for (const [name, value] of Object.entries(err.headers ?? {})) c.header(name, value);
      return c.json(errorBody(err.code, err.message, requestId, err), err.status);
    }
    if (err instanceof HTTPException && err.status < 500) {
      const code = codeOf(err.status);
      return c.json(errorBody(code, err.message || code.replace(/_/g, " "), requestId), err.status);
    }
    // A bug: the stack goes to Sentry, the client gets the request id and nothing else.
    const sentry = createSentry(c.env, c.executionCtx, c.req.raw);
    sentry?.setTag("request_id", requestId);
    sentry?.captureException(err);
    console.error(`request ${requestId} failed`, err);
    return c.json(
      errorBody("internal_error", "internal error; quote the request id when reporting it", requestId),
      500,
    );
  });

  app.use(async (c, next) => {
    const allow = allowed.of(c.req.path);
    if (allow && !allow.includes(c.req.method)) {
      throw new ApiError("method_not_allowed", `${c.req.method} is not allowed here; use ${allow.join(", ")}`, {
        headers: { Allow: allow.join(", ") },
      });
    }
    await next();
  });

  app.route("/", home);
  app.route("/api", home);
  app.route("/api/event", ingest);
  app.route("/api/event", eventsQuery);
  app.route("/api/event", receipt);
  app.route("/api/sessions", sessions);
  app.route("/api/errors", errorsQuery);
  app.route("/api/export", exportEvents);
  app.route("/api/health", health);
  app.route("/api/stats", stats);
  // Last, so the 405 guard's table finds every path above before these.
  app.route("/", segment);
  app.route("/", posthog);

  const allowed = allowedMethods(app.routes);
  return app;
}

export type AppType = ReturnType<typeof createApp>;
