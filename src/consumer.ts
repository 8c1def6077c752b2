// queue() consumer: validate each message, write the whole batch to D1 in one batch, then ack.
// Failures are retried with backoff; a message that keeps failing goes to the dead-letter
// queue, whose consumer records it in the error log and reports it to Sentry.
import { drizzle } from "drizzle-orm/d1";
import { insertAll, type Db } from "./db/events";
import type { NewErrorLogRow, NewEventRow } from "./db/schema";
import { excerpt } from "./queue";
import { queueMessage } from "./schemas";
import { createSentry, type Sentry } from "./sentry";
import { nowMicros } from "./timestamp";

/** Seconds before retry n (1, 2, …): 2, 4, 8 … capped at five minutes. */
export const backoff = (attempts: number) => Math.min(2 ** Math.max(1, attempts), 300);

interface Planned {
  message: Message<unknown>;
  events: NewEventRow[];
  errors: NewErrorLogRow[];
}

/** What one message asks to store. A malformed message becomes an error-log row instead. */
export function plan(message: Message<unknown>): Planned {
  const parsed = queueMessage.safeParse(message.body);
  if (!parsed.success) {
    const reasons = parsed.error.issues.slice(0, 10).map((i) => ({ field: i.path.join(".") || null, message: i.message }));
    return {
      message,
      events: [],
      errors: [
        {
          kind: "malformed_message",
          occurredAt: nowMicros(),
          payload: excerpt(message.body),
          reasons: JSON.stringify(reasons),
          source: message.id,
          dedupKey: `malformed:${message.id}`,
        },
      ],
    };
  }
  const body = parsed.data;
  if (body.kind === "invalid") {
    return {
      message,
      events: [],
      errors: body.items.map((item, position) => ({
        kind: "invalid_event",
        appId: body.app,
        occurredAt: body.received_at,
        payload: item.payload,
        reasons: JSON.stringify(item.reasons),
        source: body.request_id,
        // A request's refused events all travel in its messages, each once per index.
        dedupKey: `invalid:${body.request_id}:${item.index ?? item.reasons[0]?.index ?? `m${message.id}:${position}`}`,
      })),
    };
  }
  return {
    message,
    errors: [],
    events: body.events.map((e) => ({
      eventId: e.event_id,
      sessionId: e.session_id,
      category: e.category,
      name: e.name,
      data: e.data,
      timestamp: e.timestamp,
      receivedAt: body.received_at,
      appId: body.app,
    })),
  };
}

async function store(db: Db, plans: Planned[]): Promise<void> {
  await insertAll(db, plans.flatMap((p) => p.events), plans.flatMap((p) => p.errors));
}

/**
 * A message that could not be stored: note it in the error log if D1 takes that much (the
 * cause itself goes to Sentry, not to the log), then hand it back to the queue with backoff.
 */
async function fail(db: Db, p: Planned): Promise<void> {
  const delaySeconds = backoff(p.message.attempts);
  const note: NewErrorLogRow = {
    kind: "consumer_failure",
    occurredAt: nowMicros(),
    payload: excerpt(p.message.body),
    reasons: JSON.stringify([
      { field: null, message: `not stored on delivery attempt ${p.message.attempts}; retrying in ${delaySeconds} s` },
    ]),
    source: p.message.id,
    dedupKey: `failure:${p.message.id}:${p.message.attempts}`,
  };
  await insertAll(db, [], [note]).catch(() => {});
  p.message.retry({ delaySeconds });
}

export async function consumeEvents(batch: MessageBatch<unknown>, env: Env, sentry?: Sentry): Promise<void> {
  const db = drizzle(env.DB);
  const plans = batch.messages.map(plan);
  try {
    await store(db, plans);
    for (const p of plans) p.message.ack();
    return;
  } catch (err) {
    sentry?.captureException(err);
    if (plans.length === 1) return fail(db, plans[0]!);
  }
  // The batch write failed: store message by message, so one bad message cannot hold back the rest.
  for (const p of plans) {
    try {
      await store(db, [p]);
      p.message.ack();
    } catch (err) {
      sentry?.captureException(err);
      await fail(db, p);
    }
  }
}

/** Dead letters: messages the consumer gave up on. Record each, tell Sentry, then ack. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env, sentry?: Sentry): Promise<void> {
  const rows: NewErrorLogRow[] = batch.messages.map((m) => ({
    kind: "dead_letter",
    occurredAt: nowMicros(),
    payload: excerpt(m.body),
    reasons: JSON.stringify([{ field: null, message: `not stored after ${m.attempts} delivery attempts to ${batch.queue}` }]),
    source: m.id,
    dedupKey: `dead:${batch.queue}:${m.id}`,
  }));
  sentry?.captureMessage(`${rows.length} message(s) reached the dead-letter queue ${batch.queue}`, "error");
  try {
    await insertAll(drizzle(env.DB), [], rows);
    batch.ackAll();
  } catch (err) {
    sentry?.captureException(err);
    for (const m of batch.messages) m.retry({ delaySeconds: backoff(m.attempts) });
  }
}

export async function queue(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
  const sentry = createSentry(env, ctx);
  sentry?.setTag("queue", batch.queue);
  sentry?.setExtra("messages", batch.messages.length);
  try {
    if (batch.queue.endsWith("-dlq")) await consumeDeadLetters(batch, env, sentry);
    else await consumeEvents(batch, env, sentry);
  } catch (err) {
    sentry?.captureException(err);
    throw err;
  }
}
