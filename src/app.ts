// The Hono app: request ids, one error handler, one JSON error shape, 404/405 as JSON, and the routes.
import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "./app-env";
import { ApiError, errorBody, type ErrorCode } from "./errors";
import { ingest } from "./ingest";
import { errorsQuery, eventsQuery, sessions } from "./query";
import { createSentry } from "./sentry";

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
  503: "queue_unavailable",
};

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

  app.notFound((c) =>
    c.json(errorBody("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`, c.get("requestId")), 404),
  );

  app.onError((err, c) => {
    const requestId = c.get("requestId");
    c.header("X-Request-Id", requestId);
    if (err instanceof ApiError) {
      for (const [name, value] of Object.entries(err.headers ?? {})) c.header(name, value);
      return c.json(errorBody(err.code, err.message, requestId, err), err.status);
    }
    if (err instanceof HTTPException && err.status < 500) {
      const code = CODE_BY_STATUS[err.status] ?? "bad_request";
      return c.json(errorBody(code, err.message || code.replace(/_/g, " "), requestId), err.status);
    }
    // A bug: the stack goes to Sentry, the client gets the request id and nothing else.
    const sentry = createSentry(c.env, c.executionCtx, c.req.raw);
    sentry?.setTag("request_id", requestId);
    sentry?.captureException(err);
    console.error(`request ${requestId} failed`, err);
    return c.json(errorBody("internal_error", "internal error; quote the request id when reporting it", requestId), 500);
  });

  app.route("/api/event", ingest);
  app.route("/api/event", eventsQuery);
  app.all("/api/event", methodNotAllowed("GET, HEAD, POST, OPTIONS"));
  app.route("/api/sessions", sessions);
  app.all("/api/sessions/:session_id/events", methodNotAllowed("GET, HEAD"));
  app.route("/api/errors", errorsQuery);
  app.all("/api/errors", methodNotAllowed("GET, HEAD"));

  return app;
}

export type AppType = ReturnType<typeof createApp>;
