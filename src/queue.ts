// Handing accepted events (and refused ones, for the error log) to the Queue, within its limits:
// a message ≤ 128 KB, a sendBatch ≤ 100 messages and 256 KB. Events are packed many per message.
import type { FieldError } from "./errors";
import type { EventContext, EventsMessage, PreparedEvent, QueueMessage } from "./schemas";
import { clipChars, packBySize, utf8Length } from "./sizes";

/** Serialized bytes per message we aim under (the platform's cap is 128 KB). */
export const MESSAGE_BYTES = 96 * 1024;
/** Bytes and messages per sendBatch call (the platform's caps are 256 KB and 100). */
export const SEND_BATCH_BYTES = 224 * 1024;
export const SEND_BATCH_MESSAGES = 100;
/** Allowance for the queue's own per-message overhead inside a sendBatch. */
const MESSAGE_OVERHEAD = 512;

const jsonBytes = (value: unknown) => utf8Length(JSON.stringify(value));

export function eventMessages(events: PreparedEvent[], app: string | null, receivedAt: number, context: EventContext | null = null): EventsMessage[] {
  // ~100 bytes of envelope per message, plus the context once (≤ 2 KB: 15 fields of ≤ 150
  // characters); each event adds its JSON plus a comma.
  const envelope = 256 + (context === null ? 0 : jsonBytes(context));
  return packBySize(events, (e) => jsonBytes(e) + 1, MESSAGE_BYTES - envelope).map((group) => ({
    kind: "events",
    app,
    received_at: receivedAt,
    ...(context === null ? {} : { context }),
    events: group,
  }));
}

/**
 * Sends messages in as few sendBatch calls as the limits allow, in order. Returns how
 * many messages were sent before a failure (all of them when it returns normally) and the error.
 */
export async function sendAll(
  queue: Queue,
  messages: unknown[],
  options: { delaySeconds?: number } = {},
): Promise<{ sent: number; error?: unknown }> {
  const outgoing = messages.map((body) => ({ body, bytes: jsonBytes(body) + MESSAGE_OVERHEAD }));
  let sent = 0;
  for (const group of packBySize(outgoing, (m) => m.bytes, SEND_BATCH_BYTES, SEND_BATCH_MESSAGES)) {
    try {
      await queue.sendBatch(group.map((m) => ({ body: m.body, contentType: "json" as const })), options);
    } catch (error) {
      return { sent, error };
    }
    sent += group.length;
  }
  return { sent };
}

/** Longest excerpt of a refused event kept in the error log. */
export const PAYLOAD_EXCERPT = 2048;

/** JSON text of whatever a client sent, cut to `max` characters (even if it cannot be serialized). */
export function excerpt(value: unknown, max = PAYLOAD_EXCERPT): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = "[not serializable: nested too deeply]";
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A refused event's `category` or `name` when it sent a string there, cut to 150 characters. */
function labelOf(payload: unknown, key: "category" | "name"): string | undefined {
  const value = typeof payload === "object" && payload !== null ? (payload as Record<string, unknown>)[key] : undefined;
  return typeof value === "string" ? clipChars(value) : undefined;
}

export function invalidMessages(
  refused: { index: number; payload: unknown; reasons: FieldError[] }[],
  app: string | null,
  receivedAt: number,
  requestId: string,
): QueueMessage[] {
  // The type rides beside the excerpt, which may cut it off, so the error summary can count by it.
  const items = refused.map((r) => ({
    index: r.index,
    payload: excerpt(r.payload),
    reasons: r.reasons,
    category: labelOf(r.payload, "category"),
    name: labelOf(r.payload, "name"),
  }));
  return packBySize(items, (i) => jsonBytes(i) + 1, MESSAGE_BYTES - 512).map((group) => ({
    kind: "invalid",
    app,
    received_at: receivedAt,
    request_id: requestId,
    items: group,
  }));
}
