// queue() consumer: validate each message, write the whole batch to D1 in one batch, then ack.
// Nothing answered 202 is lost: while D1 cannot write (full, down, overloaded) messages are held in
// the queue as fresh copies that wait longer each time; a message D1 refuses while it answers is
// retried with backoff, then goes to the dead-letter queue, whose consumer keeps it whole in R2 for
// the maintenance to replay (replayDeadLetters), notes it in the error log and tells Sentry.
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { numbersOf } from "../db/applications";
import type { Db } from "../db/db";
import { insertAll, type NewContextEventRow } from "../db/event-insert";
import { generations, type NewErrorLogRow, type NewEventRow } from "../db/schema";
import { storageFrom } from "../shared/config";
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
  events: (Omit<NewEventRow, "app"> & { appId: string | null })[];
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
async function store(db: Db, plans: Planned[], hotDays?: number): Promise<void> {
  const planned = plans.flatMap((p) => p.events);
  const nums = await numbersOf(db, new Set(planned.map((e) => e.appId)));
  const rows: NewContextEventRow[] = planned.map(({ appId, ...e }) => ({ ...e, app: nums.get(appId)! }));
  await insertAll(
    db,
    rows,
    plans.flatMap((p) => p.errors),
    { hotDays },
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

/**
 * Whether D1 answers a statement on the events table at all. Asked only after a message failed to
 * store: if this fails too, the failure is D1's (down, overloaded, a migration missing), not the
 * message's, and the message is held rather than retried toward the dead-letter queue. Reads no row.
 */
async function d1Answers(db: Db): Promise<boolean> {
  try {
    await db.run(sql`SELECT 1 FROM ${generations} LIMIT 0`);
    return true;
  } catch {
    return false;
  }
}

/** Seconds a message waits in the queue after its n-th hold while D1 cannot write: 5, 10, 20 … up to 15 minutes. */
export const holdDelay = (held: number) => Math.min(5 * 2 ** Math.max(0, held - 1), 900);

/** How long an isolate stays quiet in Sentry about unwritable storage after reporting it once. */
const HOLD_REPORT_QUIET_MS = 10 * 60_000;
let holdReportedAt = -Infinity;

/** An error's message and its causes' (drizzle wraps D1's own message in its cause). */
const causes = (err: unknown) => {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 5; e = e instanceof Error ? e.cause : undefined)
    parts.push(e instanceof Error ? e.message : String(e));
  return parts.join(" ← ");
};

const heldCount = (body: unknown) =>
  typeof body === "object" && body !== null ? Number((body as { held?: unknown }).held ?? 0) || 0 : 0;

/**
 * D1 cannot store these messages for now (full, down, overloaded): each goes back to its queue as a
 * fresh copy that waits longer each time, and the original is acknowledged only once the copy is
 * queued. A retry would count toward max_retries and end in the dead-letter queue; a fresh copy
 * starts its own retention, so a message is held for as long as D1 needs, however long that is.
 * Sentry hears of it once per isolate per ten minutes, not per message.
 */
async function hold(
  messages: readonly Message<unknown>[],
  queue: Queue,
  queueName: string,
  sentry: Sentry | undefined,
  err: unknown,
) {
  if (sentry && Date.now() - holdReportedAt > HOLD_REPORT_QUIET_MS) {
    holdReportedAt = Date.now();
    sentry.setExtra("cause", causes(err));
    sentry.captureMessage(
      `D1 cannot store (${isStorageUnavailable(err) ? "full, or its storage was reset" : "it fails every write"}): ${messages.length} message(s) of ${queueName} held in the queue until it can`,
      "error",
    );
  }
  const byDelay = new Map<number, Message<unknown>[]>();
  for (const m of messages) {
    const delay = holdDelay(heldCount(m.body) + 1);
    byDelay.set(delay, [...(byDelay.get(delay) ?? []), m]);
  }
  for (const [delaySeconds, group] of byDelay) {
    const copies = group.map((m) =>
      typeof m.body === "object" && m.body !== null && !Array.isArray(m.body)
        ? { ...m.body, held: heldCount(m.body) + 1 }
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
  const hotDays = storageFrom(env).hotDays;
  const plans = batch.messages.map(plan);
  try {
    await store(db, plans, hotDays);
    for (const p of plans) p.message.ack();
    return;
  } catch (err) {
    if (isStorageUnavailable(err)) return hold(batch.messages, env.EVENTS_QUEUE, batch.queue, sentry, err);
  }
  // The batch write failed: store message by message, so one bad message cannot hold back the rest.
  const failed: { plan: Planned; err: unknown }[] = [];
  for (const [i, p] of plans.entries()) {
    try {
      await store(db, [p], hotDays);
      p.message.ack();
    } catch (err) {
      if (isStorageUnavailable(err)) {
        const rest = [...failed.map((f) => f.plan), ...plans.slice(i)].map((q) => q.message);
        return hold(rest, env.EVENTS_QUEUE, batch.queue, sentry, err);
      }
      failed.push({ plan: p, err });
    }
  }
  if (failed.length === 0) return;
  // D1 fails even a statement that writes nothing: the fault is D1's, so the messages wait for it.
  if (!(await d1Answers(db)))
    return hold(
      failed.map((f) => f.plan.message),
      env.EVENTS_QUEUE,
      batch.queue,
      sentry,
      failed[0]!.err,
    );
  // D1 answers, yet these messages cannot be stored: retried with backoff, then the dead-letter
  // queue, which keeps them whole for a replay (consumeDeadLetters).
  for (const { plan: p, err } of failed) {
    sentry?.captureException(err);
    await fail(db, p);
  }
}

/** Where a dead letter is kept whole, in the archive bucket beside (never inside) the lake's events/. */
export const deadLetterKey = (queueName: string, messageId: string) =>
  `${DEAD_LETTER_PREFIX}${encodeURIComponent(queueName)}/${encodeURIComponent(messageId)}.json`;
export const DEAD_LETTER_PREFIX = "dead-letters/";

/**
 * Dead letters: messages the consumer gave up on while D1 answered (it failed them one by one).
 * Each is kept whole in R2 (not in D1, which may be what failed), noted in the error log, and
 * reported to Sentry; the maintenance replays it (replayDeadLetters), and the insert's dedup on
 * (event_id, app) stores each event once however often it is replayed. While R2 cannot take them,
 * they are held in the dead-letter queue as fresh copies, as the events queue holds for D1.
 */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env, sentry?: Sentry): Promise<void> {
  try {
    await Promise.all(
      batch.messages.map((m) =>
        env.ARCHIVE.put(deadLetterKey(batch.queue, m.id), JSON.stringify(m.body), {
          httpMetadata: { contentType: "application/json" },
          customMetadata: { queue: batch.queue, attempts: String(m.attempts), at: String(nowMicros()) },
        }),
      ),
    );
  } catch (err) {
    sentry?.captureException(err);
    return hold(batch.messages, env.DEAD_LETTERS, batch.queue, sentry, err);
  }
  sentry?.captureMessage(
    `${batch.messages.length} message(s) reached the dead-letter queue ${batch.queue}; kept whole in R2 under ${DEAD_LETTER_PREFIX} for replay`,
    "error",
  );
  const rows: NewErrorLogRow[] = batch.messages.map((m) => ({
    kind: "dead_letter",
    occurredAt: nowMicros(),
    payload: excerpt(m.body),
    reasons: JSON.stringify([
      {
        field: null,
        message: `not stored after ${m.attempts} delivery attempts to ${batch.queue}; kept whole at ${deadLetterKey(batch.queue, m.id)}, replayed by the maintenance`,
      },
    ]),
    source: m.id,
    dedupKey: `dead:${batch.queue}:${m.id}`,
  }));
  // The messages are safe in R2: the note is worth a try, not a retry.
  await insertAll(drizzle(env.DB), [], rows).catch((err: unknown) => sentry?.captureException(err));
  batch.ackAll();
}

/** What a replay run did: dead letters stored (and deleted from R2), and those that failed again. */
export interface ReplayRun {
  replayed: number;
  failed: number;
  done: boolean;
}

/**
 * Stores the dead letters kept in R2, oldest listing first, until none is left or `deadline` (ms
 * since the epoch) passes, deleting each once it is stored. One that still cannot be stored stays
 * for the next run (and is counted); one that is not a queue message is logged as malformed and
 * goes. Exactly once: the insert skips an (event_id, app) already stored, the error log a dedup key.
 */
export async function replayDeadLetters(
  env: Env,
  { deadline, now = Date.now }: { deadline: number; now?: () => number },
): Promise<ReplayRun> {
  const db = drizzle(env.DB);
  const run: ReplayRun = { replayed: 0, failed: 0, done: false };
  let cursor: string | undefined;
  do {
    const listed = await env.ARCHIVE.list({ prefix: DEAD_LETTER_PREFIX, cursor, limit: 100 });
    for (const object of listed.objects) {
      if (now() >= deadline) return run;
      const stored = await env.ARCHIVE.get(object.key);
      if (!stored) continue;
      const text = await stored.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      const id = decodeURIComponent(object.key.slice(object.key.lastIndexOf("/") + 1).replace(/\.json$/, ""));
      try {
        await store(db, [plan({ id, body, attempts: 0 } as unknown as Message<unknown>)], storageFrom(env).hotDays);
      } catch {
        run.failed++;
        continue;
      }
      await env.ARCHIVE.delete(object.key);
      run.replayed++;
    }
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor);
  run.done = true;
  return run;
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
    if (batch.queue === env.DEAD_LETTER_QUEUE) await consumeDeadLetters(batch, env, sentry);
    else await consumeEvents(batch, env, sentry);
  } catch (err) {
    sentry?.captureException(err);
    throw err;
  }
}
