// POST /api/event/: read the body, validate every event at the edge, hand the valid ones to the Queue.
import { type Context, Hono } from "hono";
import type { AppEnv } from "../request/app-env";
import { rateLimit, requireKey } from "../request/auth";
import { parseQuery } from "../request/query-string";
import { limitsFrom } from "../shared/config";
import { ApiError, errorBody } from "../shared/errors";
import { sendAll } from "../shared/queue-send";
import { ingestQuery, type QueueMessage } from "../shared/schemas";
import { createSentry } from "../shared/sentry";
import { nowMicros } from "../shared/timestamp";
import { readJson } from "./body";
import { contextOf } from "./context";
import { eventMessages, invalidMessages } from "./messages";
import { payloadRules, schemaTtlMs } from "./payload-schemas";
import { eventsOf, validateEvents } from "./validate";

/** Seconds a client should wait before retrying when the queue refuses work. */
export const QUEUE_RETRY_AFTER = "5";

/** Reads and validates a request's events: the same for ingestion and for the dry run. */
async function validateRequest(c: Context<AppEnv>) {
  const limits = limitsFrom(c.env);
  const receivedAt = nowMicros();
  const app = c.get("appId") ?? null;

  const body = await readJson(c.req.raw, limits.maxBodyBytes);
  const candidates = eventsOf(body.value, limits.maxEventsPerRequest);
  // Schemas that do not compile are reported when they are read, not on every request.
  const rules = await payloadRules(c.env.DB, app, schemaTtlMs(c.env), (broken) =>
    createSentry(c.env, c.executionCtx, c.req.raw)?.captureMessage(
      `payload schemas that do not compile (their events pass unchecked): ${broken.join(", ")}`,
      "error",
    ),
  );
  return {
    candidates,
    receivedAt,
    app,
    ...validateEvents(candidates, limits, receivedAt, app, body.hidden, rules.check),
  };
}

export const ingest = new Hono<AppEnv>()
  .post("/", requireKey("write"), rateLimit, async (c) => {
    const requestId = c.get("requestId");
    const { candidates, receivedAt, app, accepted, refused } = await validateRequest(c);

    // One context for the request's events, worked out once (context.ts) and packed once per message.
    const page = parseQuery(ingestQuery, c.req.queries());
    const context =
      accepted.length === 0
        ? null
        : contextOf(c.req.raw, c.get("contextMode") ?? "on", {
            development: c.env.ENVIRONMENT === "development",
            page: page.page,
            referrer: page.referrer,
          });
    const messages: QueueMessage[] = eventMessages(accepted, app, receivedAt, context);
    const eventMessageCount = messages.length;
    if (refused.length > 0) messages.push(...invalidMessages(refused, app, receivedAt, requestId));

    const { sent, error } = await sendAll(c.env.EVENTS_QUEUE, messages);
    // Every failure is reported, also one that only lost the error-log notes of refused events.
    if (error !== undefined) createSentry(c.env, c.executionCtx, c.req.raw)?.captureException(error);
    if (error !== undefined && sent < eventMessageCount) {
      const queued = messages.slice(0, sent).reduce((n, m) => n + (m.kind === "events" ? m.events.length : 0), 0);
      throw new ApiError(
        "queue_unavailable",
        queued > 0
          ? `the queue took ${queued} of ${accepted.length} events, then failed; resending the same request is safe`
          : "the queue is unavailable; nothing was accepted, retry later",
        { headers: { "Retry-After": QUEUE_RETRY_AFTER }, details: { accepted: queued }, cause: error },
      );
    }

    const errors = refused.flatMap((r) => r.reasons);
    if (accepted.length === 0) {
      return c.json(
        errorBody(
          "invalid_events",
          candidates.length === 1
            ? `the event is invalid: ${errors[0]?.message}`
            : `none of the ${candidates.length} events is valid`,
          requestId,
          { errors },
        ),
        400,
      );
    }
    return c.json(
      refused.length === 0
        ? { success: true, accepted: accepted.length }
        : { success: false, accepted: accepted.length, errors },
      202,
    );
  })
  // The dry run: what POST /api/event/ would accept and refuse, and the event_id each accepted
  // event would be stored under (a delivery receipt's key); nothing is queued or logged.
  .post("/validate", requireKey("write"), rateLimit, async (c) => {
    const { candidates, accepted, refused } = await validateRequest(c);
    const ids = new Map<number, string>();
    let next = 0;
    const refusedAt = new Set(refused.map((r) => r.index));
    for (let index = 0; index < candidates.length; index++)
      if (!refusedAt.has(index)) ids.set(index, accepted[next++]!.event_id);
    return c.json({
      success: refused.length === 0,
      accepted: accepted.length,
      refused: refused.length,
      events: candidates.map((_, index) =>
        ids.has(index)
          ? { index, accepted: true, event_id: ids.get(index) }
          : { index, accepted: false, errors: refused.find((r) => r.index === index)!.reasons },
      ),
    });
  });
