// What every write route does once it has its events: the application's payload rules, and the
// hand-over to the Queue of the accepted events and of the refused ones' notes for the error log.
// POST /api/event/ (routes.ts) and the SDK routes (segment-routes.ts, posthog-routes.ts) read
// their bodies and answer their own ways; this part is one.
import type { Context } from "hono";
import type { AppEnv } from "../request/app-env";
import { ApiError } from "../shared/errors";
import { sendAll } from "../shared/queue-send";
import type { EventsMessage, QueueMessage } from "../shared/schemas";
import { createSentry } from "../shared/sentry";
import { invalidMessages } from "./messages";
import { type PayloadRules, payloadRules, schemaTtlOf } from "./payload-schemas";
import type { Refused } from "./validate";

/** Seconds a client should wait before retrying when the queue refuses work. */
export const QUEUE_RETRY_AFTER = "5";

/** The payload rules of the request's application; schemas that do not compile are reported when read, not per request. */
export function rulesOf(c: Context<AppEnv>, app: string | null): Promise<PayloadRules> {
  return payloadRules(c.env.DB, app, schemaTtlOf(c.env), (broken) =>
    createSentry(c.env, c.executionCtx, c.req.raw)?.captureMessage(
      `payload schemas that do not compile (their events pass unchecked): ${broken.join(", ")}`,
      "error",
    ),
  );
}

/** A refused event as the error log takes it: its payload, why, and its type where the payload does not name one. */
export type RefusedNote = Refused & { label?: { category?: string; name?: string } };

/**
 * Queues the accepted events' messages, then the refused events' notes. Throws queue_unavailable
 * (503, Retry-After) when the queue did not take every event; a failure that lost only notes is
 * reported to Sentry and the events stand.
 */
export async function enqueue(
  c: Context<AppEnv>,
  events: EventsMessage[],
  refused: RefusedNote[],
  app: string | null,
  receivedAt: number,
): Promise<void> {
  const messages: QueueMessage[] =
    refused.length > 0 ? [...events, ...invalidMessages(refused, app, receivedAt, c.get("requestId"))] : events;
  const { sent, error } = await sendAll(c.env.EVENTS_QUEUE, messages);
  // Every failure is reported, also one that only lost the error-log notes of refused events.
  if (error !== undefined) createSentry(c.env, c.executionCtx, c.req.raw)?.captureException(error);
  if (error !== undefined && sent < events.length) {
    const count = (ms: QueueMessage[]) => ms.reduce((n, m) => n + (m.kind === "events" ? m.events.length : 0), 0);
    const queued = count(messages.slice(0, sent));
    throw new ApiError(
      "queue_unavailable",
      queued > 0
        ? `the queue took ${queued} of ${count(events)} events, then failed; resending the same request is safe`
        : "the queue is unavailable; nothing was accepted, retry later",
      { headers: { "Retry-After": QUEUE_RETRY_AFTER }, details: { accepted: queued }, cause: error },
    );
  }
}
