// POST /api/event/: read the body, validate every event at the edge, hand the valid ones to the Queue.
import { type Context, Hono } from "hono";
import type { AppEnv } from "../request/app-env";
import { rateLimit, requireKey } from "../request/auth";
import { parseQuery } from "../request/query-string";
import { limitsOf } from "../shared/config";
import { errorBody } from "../shared/errors";
import { ingestQuery } from "../shared/schemas";
import { nowMicros } from "../shared/timestamp";
import { readJson } from "./body";
import { contextOf } from "./context";
import { eventMessages } from "./messages";
import { enqueue, rulesOf } from "./pipeline";
import { eventsOf, validateEvents } from "./validate";

/** Reads and validates a request's events: the same for ingestion and for the dry run. */
async function validateRequest(c: Context<AppEnv>) {
  const limits = limitsOf(c.env);
  const receivedAt = nowMicros();
  const app = c.get("appId") ?? null;

  const body = await readJson(c.req.raw, limits.maxBodyBytes);
  const candidates = eventsOf(body.value, limits.maxEventsPerRequest);
  const rules = await rulesOf(c, app);
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
    await enqueue(c, eventMessages(accepted, app, receivedAt, context), refused, app, receivedAt);

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
