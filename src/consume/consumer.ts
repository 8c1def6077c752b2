// queue() consumer: validate each message, write the whole batch to D1 in one batch, then ack.
// Failures are retried with backoff; a message that keeps failing goes to the dead-letter
// queue, whose consumer records it in the error log and reports it to Sentry.
import { drizzle } from "drizzle-orm/d1";
import { numbersOf } from "../db/applications";
import type { Db } from "../db/db";
import { insertAll, type NewContextEventRow } from "../db/event-insert";
import type { NewErrorLogRow, NewEventRow } from "../db/schema";
import { sendAll } from "../shared/queue-send";
import { queueMessage } from "../shared/schemas";
import { createSentry, type Sentry } from "../shared/sentry";
import { clipChars, excerpt } from "../shared/sizes";
import { nowMicros } from "../shared/timestamp";

/** Seconds before retry n (1, 2, …): 2, 4, 8 … capped at five minutes. */
export const backoff = (attempts: number) => Math.min(2 ** Math.max(1, attempts), 300);

interface Planned {
  message: Message<unknown>;
  /** Events as rows, but with the application's id: its number is looked up when they are stored. */
  events: (Omit<NewEventRow, "app" | "context"> & { appId: string | null; contextBody: string | null })[];
  errors: NewErrorLogRow[];
}

/** What one message asks to store. A malformed message becomes an error-log row instead. */
export function plan(message: Message<unknown>): Planned {
  const parsed = queueMessage.safeParse(message.body);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 10);
    const reasons = issues.map((i) => ({ field: i.path.join(".") || null, message: i.message }));
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
          // What the summary counts it by: the first issue's path and zod's code for it.
          field: reasons[0]?.field ? clipChars(reasons[0].field) : null,
          rule: issues[0]?.code ?? null,
        },
      ],
    };
  }
  const body = parsed.data;
  if (body.kind === "invalid") {
    return {
      message,
      events: [],
      errors: body.items.map((item, position) => {
        // The first reason is what the error summary counts the event under.
        const first = item.reasons[0];
        return {
          kind: "invalid_event",
          appId: body.app,
          occurredAt: body.received_at,
          payload: item.payload,
          reasons: JSON.stringify(item.reasons),
          source: body.request_id,
          // A request's refused events all travel in its messages, each once per index.
          dedupKey: `invalid:${body.request_id}:${item.index ?? first?.index ?? `m${message.id}:${position}`}`,
          category: item.category === undefined ? null : clipChars(item.category),
          name: item.name === undefined ? null : clipChars(item.name),
          field: first?.field == null ? null : clipChars(first.field),
          rule: first?.rule === undefined ? null : clipChars(first.rule),
        };
      }),
    };
  }
  // The request's context, once for its events: its JSON text is the contexts row it goes under.
  const context = body.context ? JSON.stringify(body.context) : null;
  const country = body.context?.country ?? null;
  const device = body.context?.device ?? null;
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
      contextBody: context,
      country,
      device,
    })),
  };
}

/** Stores what the messages ask, in one D1 batch; applications go in by number. */
async function store(db: Db, plans: Planned[]): Promise<void> {
  const planned = plans.flatMap((p) => p.events);
  const nums = await numbersOf(db, new Set(planned.map((e) => e.appId)));
  const rows: NewContextEventRow[] = planned.map(({ appId, ...e }) => ({ ...e, app: nums.get(appId)! }));
  await insertAll(
    db,
    rows,
    plans.flatMap((p) => p.errors),
  );
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

/** D1 refusing writes for lack of space: SQLite's SQLITE_FULL, or D1's size limits in production. */
const FULL = /SQLITE_FULL|database or disk is full|Exceeded maximum (DB size|account storage)/i;

/**
 * D1 cannot write at all for now: it is full, or its storage was reset under the write (what a
 * full disk looks like to the Worker under the local runtime, which hides the SQLite error behind
 * "internal error" with `durableObjectReset`). Waiting is the cure; retrying toward the
 * dead-letter queue is not.
 */
export function isStorageUnavailable(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (FULL.test(e.message) || (e as { durableObjectReset?: unknown }).durableObjectReset === true) return true;
  }
  return false;
}

/** Seconds a message waits in the queue after its n-th hold while D1 is full: 5, 10, 20 … up to 15 minutes. */
export const holdDelay = (held: number) => Math.min(5 * 2 ** Math.max(0, held - 1), 900);

/** How long an isolate stays quiet in Sentry about unwritable storage after reporting it once. */
const FULL_REPORT_QUIET_MS = 10 * 60_000;
let fullReportedAt = -Infinity;

/**
 * D1 cannot write (full): nothing can be stored until space is made (retention, a purge). Each
 * message goes back to its queue as a fresh copy that waits longer each time, and the original is
 * acknowledged only once the copy is queued: a retry would count toward max_retries and end in the
 * dead-letter queue, and past its own retries, nowhere. Sentry hears of it once, not per message.
 */
async function holdWhileFull(
  messages: readonly Message<unknown>[],
  queue: Queue,
  queueName: string,
  sentry: Sentry | undefined,
  err: unknown,
) {
  if (Date.now() - fullReportedAt > FULL_REPORT_QUIET_MS) {
    fullReportedAt = Date.now();
    sentry?.setExtra("cause", String(err));
    sentry?.captureMessage(
      `D1 cannot write (full, or its storage was reset): ${messages.length} message(s) of ${queueName} held in the queue until it can`,
      "error",
    );
  }
  const byDelay = new Map<number, Message<unknown>[]>();
  for (const m of messages) {
    const held =
      typeof m.body === "object" && m.body !== null ? Number((m.body as { held?: unknown }).held ?? 0) || 0 : 0;
    const delay = holdDelay(held + 1);
    byDelay.set(delay, [...(byDelay.get(delay) ?? []), m]);
  }
  for (const [delaySeconds, group] of byDelay) {
    const copies = group.map((m) =>
      typeof m.body === "object" && m.body !== null && !Array.isArray(m.body)
        ? { ...m.body, held: ((m.body as { held?: number }).held ?? 0) + 1 }
        : m.body,
    );
    const { sent } = await sendAll(queue, copies, { delaySeconds });
    // Copies that could not be queued stay with the original, which the queue delivers again.
    for (const [i, m] of group.entries()) {
      if (i < sent) m.ack();
      else m.retry({ delaySeconds });
    }
  }
}

export async function consumeEvents(batch: MessageBatch<unknown>, env: Env, sentry?: Sentry): Promise<void> {
  const db = drizzle(env.DB);
  const plans = batch.messages.map(plan);
  try {
    await store(db, plans);
    for (const p of plans) p.message.ack();
    return;
  } catch (err) {
    if (isStorageUnavailable(err)) return holdWhileFull(batch.messages, env.EVENTS_QUEUE, batch.queue, sentry, err);
    sentry?.captureException(err);
    if (plans.length === 1) return fail(db, plans[0]!);
  }
  // The batch write failed: store message by message, so one bad message cannot hold back the rest.
  for (const [i, p] of plans.entries()) {
    try {
      await store(db, [p]);
      p.message.ack();
    } catch (err) {
      if (isStorageUnavailable(err))
        return holdWhileFull(
          plans.slice(i).map((q) => q.message),
          env.EVENTS_QUEUE,
          batch.queue,
          sentry,
          err,
        );
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
    reasons: JSON.stringify([
      { field: null, message: `not stored after ${m.attempts} delivery attempts to ${batch.queue}` },
    ]),
    source: m.id,
    dedupKey: `dead:${batch.queue}:${m.id}`,
  }));
  sentry?.captureMessage(`${rows.length} message(s) reached the dead-letter queue ${batch.queue}`, "error");
  try {
    await insertAll(drizzle(env.DB), [], rows);
    batch.ackAll();
  } catch (err) {
    if (isStorageUnavailable(err)) return holdWhileFull(batch.messages, env.DEAD_LETTERS, batch.queue, sentry, err);
    sentry?.captureException(err);
    for (const m of batch.messages) m.retry({ delaySeconds: backoff(m.attempts) });
  }
}

export async function queue(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
  const sentry = createSentry(env, ctx);
  sentry?.setTag("handler", "queue");
  sentry?.setTag("queue", batch.queue);
  sentry?.setExtra("messages", batch.messages.length);
  // Which messages, to find them in the dead-letter queue or the error log (ids carry no key).
  sentry?.setExtra(
    "message_ids",
    batch.messages.slice(0, 10).map((m) => m.id),
  );
  try {
    if (batch.queue.endsWith("-dlq")) await consumeDeadLetters(batch, env, sentry);
    else await consumeEvents(batch, env, sentry);
  } catch (err) {
    sentry?.captureException(err);
    throw err;
  }
}
