// Handing accepted events (and refused ones, for the error log) to the Queue, within its limits:
// a message ≤ 128 KB, a sendBatch ≤ 100 messages and 256 KB. Events are packed many per message.
import type { FieldError } from "../shared/errors";
import { sizedMessage } from "../shared/queue-send";
import type { EventContext, EventsMessage, PreparedEvent, QueueMessage } from "../shared/schemas";
import { clipChars, excerpt, packBySize, utf8Length } from "../shared/sizes";

/** Serialized bytes per message we aim under (the platform's cap is 128 KB). */
export const MESSAGE_BYTES = 96 * 1024;

const jsonBytes = (value: unknown) => utf8Length(JSON.stringify(value));

export function eventMessages(
  events: PreparedEvent[],
  app: string | null,
  receivedAt: number,
  context: EventContext | null = null,
): EventsMessage[] {
  // ~100 bytes of envelope per message, plus the context once (≤ 2 KB: 15 fields of ≤ 150
  // characters); each event adds its JSON plus a comma.
  // Each event is weighed once: the sum of a message's is its size for sendAll too (sizedMessage).
  const envelope = 256 + (context === null ? 0 : jsonBytes(context));
  const weighed = events.map((e) => ({ e, bytes: jsonBytes(e) + 1 }));
  return packBySize(weighed, (w) => w.bytes, MESSAGE_BYTES - envelope).map((group) =>
    sizedMessage<EventsMessage>(
      {
        kind: "events",
        app,
        received_at: receivedAt,
        ...(context === null ? {} : { context }),
        events: group.map((w) => w.e),
      },
      group.reduce((sum, w) => sum + w.bytes, envelope),
    ),
  );
}

/** A refused event's `category` or `name` when it sent a string there, cut to 150 characters. */
function labelOf(payload: unknown, key: "category" | "name"): string | undefined {
  const value = typeof payload === "object" && payload !== null ? (payload as Record<string, unknown>)[key] : undefined;
  return typeof value === "string" ? clipChars(value) : undefined;
}

/**
 * The refused events' notes for the error log. `label` gives the event's type where the payload
 * does not name it as category and name (an SDK's message, mapped to a type by sdk.ts).
 */
export function invalidMessages(
  refused: { index: number; payload: unknown; reasons: FieldError[]; label?: { category?: string; name?: string } }[],
  app: string | null,
  receivedAt: number,
  requestId: string,
): QueueMessage[] {
  // The type rides beside the excerpt, which may cut it off, so the error summary can count by it.
  const items = refused.map((r) => ({
    index: r.index,
    payload: excerpt(r.payload),
    reasons: r.reasons,
    category: labelOf(r.label ?? r.payload, "category"),
    name: labelOf(r.label ?? r.payload, "name"),
  }));
  return packBySize(items, (i) => jsonBytes(i) + 1, MESSAGE_BYTES - 512).map((group) => ({
    kind: "invalid",
    app,
    received_at: receivedAt,
    request_id: requestId,
    items: group,
  }));
}
