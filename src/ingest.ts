// POST /api/event/: read the body, validate every event at the edge, hand the valid ones to the Queue.
import { Hono } from "hono";
import type { AppEnv } from "./app-env";
import { rateLimit, requireKey } from "./auth";
import { readJson } from "./body";
import { limitsFrom } from "./config";
import { ApiError, errorBody } from "./errors";
import { eventMessages, invalidMessages, sendAll } from "./queue";
import type { QueueMessage } from "./schemas";
import { createSentry } from "./sentry";
import { nowMicros } from "./timestamp";
import { eventsOf, validateEvents } from "./validate";

/** Seconds a client should wait before retrying when the queue refuses work. */
export const QUEUE_RETRY_AFTER = "5";

export const ingest = new Hono<AppEnv>().post("/", requireKey("write"), rateLimit, async (c) => {
  const limits = limitsFrom(c.env);
  const receivedAt = nowMicros();
  const requestId = c.get("requestId");
  const app = c.get("appId") ?? null;

  const body = await readJson(c.req.raw, limits.maxBodyBytes);
  const candidates = eventsOf(body.value, limits.maxEventsPerRequest);
  const { accepted, refused } = validateEvents(candidates, limits, receivedAt, app, body.hidden);

  const messages: QueueMessage[] = eventMessages(accepted, app, receivedAt);
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
        candidates.length === 1 ? `the event is invalid: ${errors[0]?.message}` : `none of the ${candidates.length} events is valid`,
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
});
