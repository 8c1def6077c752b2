// The Hono app: request ids, one error handler, one JSON error shape, 404/405 as JSON, and the routes.
import { type Context, Hono } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { ingest } from "./ingest/routes";
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

/** Answers a method the path does not serve: 405 with the methods it does. */
const methodNotAllowed = (allow: string) => (c: Context<AppEnv>) => {
  throw new ApiError("method_not_allowed", `${c.req.method} is not allowed here; use ${allow}`, {
    headers: { Allow: allow },
  });
};

export function createApp() {
  const app = new Hono<AppEnv>({ strict: false });

  app.use(async (c, next) => {
    const requestId = crypto.randomUUID();
    c.set("requestId", requestId);
    await next();
    c.header("X-Request-Id", requestId);
  });

  app.use(
    secureHeaders({
      contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      crossOriginResourcePolicy: "cross-origin",
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

  app.route("/", home);
  app.route("/api", home);
  app.all("/", methodNotAllowed("GET, HEAD"));
  app.route("/api/event", ingest);
  app.route("/api/event", eventsQuery);
  app.all("/api/event", methodNotAllowed("GET, HEAD, POST, OPTIONS"));
  // Before the receipt's /:event_id, which would otherwise take a GET of the dry run's path.
  app.all("/api/event/validate", methodNotAllowed("POST, OPTIONS"));
  app.route("/api/event", receipt);
  app.all("/api/event/:event_id", methodNotAllowed("GET, HEAD"));
  app.route("/api/sessions", sessions);
  app.all("/api/sessions/:session_id/events", methodNotAllowed("GET, HEAD"));
  app.route("/api/errors", errorsQuery);
  app.route("/api/export", exportEvents);
  app.route("/api/health", health);
  app.all("/api/health", methodNotAllowed("GET, HEAD"));
  app.all("/api/export", methodNotAllowed("GET, HEAD"));
  app.all("/api/errors", methodNotAllowed("GET, HEAD"));
  app.all("/api/errors/summary", methodNotAllowed("GET, HEAD"));
  app.route("/api/stats", stats);
  app.all("/api/stats/counts", methodNotAllowed("GET, HEAD"));

  return app;
}

export type AppType = ReturnType<typeof createApp>;
