// Sending messages to a Queue within its limits (a sendBatch ≤ 100 messages and 256 KB): what the
// ingestion routes do with accepted events and the consumer does with messages it holds back.
import { packBySize, utf8Length } from "./sizes";

/** Bytes and messages per sendBatch call (the platform's caps are 256 KB and 100). */
export const SEND_BATCH_BYTES = 224 * 1024;
export const SEND_BATCH_MESSAGES = 100;
/** Allowance for the queue's own per-message overhead inside a sendBatch. */
const MESSAGE_OVERHEAD = 512;

const jsonBytes = (value: unknown) => utf8Length(JSON.stringify(value));

// Messages whose serialized size is already known (at most): eventMessages sums its events' sizes
// while packing them, so sendAll need not serialize each message again to weigh it (≈5 µs of CPU
// per event in a 500-event POST: BENCHMARKS.md, "Where did the hot path's time go").
const knownBytes = new WeakMap<object, number>();

/** Records `bytes` as at least `message`'s serialized size, for sendAll's packing. */
export function sizedMessage<T extends object>(message: T, bytes: number): T {
  knownBytes.set(message, bytes);
  return message;
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
  const outgoing = messages.map((body) => ({
    body,
    bytes: ((typeof body === "object" && body !== null && knownBytes.get(body)) || jsonBytes(body)) + MESSAGE_OVERHEAD,
  }));
  let sent = 0;
  for (const group of packBySize(outgoing, (m) => m.bytes, SEND_BATCH_BYTES, SEND_BATCH_MESSAGES)) {
    try {
      await queue.sendBatch(
        group.map((m) => ({ body: m.body, contentType: "json" as const })),
        options,
      );
    } catch (error) {
      return { sent, error };
    }
    sent += group.length;
  }
  return { sent };
}
