// What Segment's and PostHog's routes share once their messages are mapped (segment.ts, posthog.ts):
// the write key wherever the SDK carries it, the timestamp correction, the event ids, and the one
// pipeline: each mapped event through validateEvents, payload schemas and the queue like any POST
// /api/event/ event, each refusal named by the SDK's own field, the dry run. docs/sdks.md is the contract.
import type { Context } from "hono";
import type { AppEnv } from "../request/app-env";
import { authenticate, limitRate, sdkHeaderKey } from "../request/auth";
import { limitsOf } from "../shared/config";
import { ApiError, errorBody, type FieldError } from "../shared/errors";
import type { EventContext, EventsMessage, PreparedEvent } from "../shared/schemas";
import { formatTimestamp, parseTimestamp } from "../shared/timestamp";
import { ENVELOPE, type HiddenProblem } from "./body";
import { contextOf } from "./context";
import { eventMessages } from "./messages";
import { enqueue, type RefusedNote, rulesOf } from "./pipeline";
import { derivedId, validateEvents } from "./validate";

export type Protocol = "segment" | "posthog";

/** The Eye's fields an SDK message feeds. */
type EyeField = "session_id" | "category" | "name" | "data" | "timestamp" | "event_id";

/** A problem of one message, before it has an index. */
export type Reason = Omit<FieldError, "index">;

/** One SDK message, mapped: the event it becomes, or why it cannot be one. */
export interface SdkMessage {
  /** The event (timestamp as text, as a client would send it); absent when the mapping refused the message. */
  event?: { session_id: unknown; category: string; name: unknown; data: Record<string, unknown>; timestamp: unknown };
  /** The SDK's field that fed each of The Eye's, so a refusal names the field the SDK sent. */
  fields: Partial<Record<EyeField, string>>;
  /** Why the mapping refused it (no identity, an unknown type, a message over Segment's 32 KB …). */
  reasons: Reason[];
  /** The message as the error log keeps it: as sent, without its IP address or write key. */
  logged: unknown;
  /** Its type as far as the message says it, also when refused: the error log's category and name. */
  label?: { category?: string; name?: string };
  /** messageId or uuid as sent, when a string. */
  id?: string;
  /** The message as text without what changes when it is resent (sentAt, retry counts): the id of one sent without an id. */
  content: string;
  /** The page, referrer and browser the message names, for its context (as ?page= and ?referrer= do). */
  page?: string;
  referrer?: string;
  userAgent?: string;
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A string, or a finite number as a string (SDKs send ids of either type); undefined for anything else or "". */
export function idText(v: unknown): string | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return typeof v === "string" && v !== "" ? v : undefined;
}

export const textOf = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** A shallow copy of `o` without `keys`. */
export function without(o: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!keys.includes(k)) out[k] = v;
  return out;
}

/**
 * When the event happened: the client's time shifted by its clock's skew, the difference between
 * when it says it sent the request and when we received it (Segment's `receivedAt − (sentAt −
 * timestamp)`, PostHog's `now + (timestamp − sent_at)`: the same), in microseconds. Without a
 * send time the client's time as it is; without either, the receive time. A client time that does
 * not parse is passed on as sent, for validateEvents to refuse by its own rule.
 */
export function correctedTime(
  client: unknown,
  sentAt: unknown,
  receivedAt: number,
  sentAtField: string,
): { timestamp?: unknown; reason?: Reason } {
  if (client === undefined || client === null) return { timestamp: formatTimestamp(receivedAt) };
  if (sentAt === undefined || sentAt === null || typeof client !== "string") return { timestamp: client };
  const at = typeof sentAt === "string" ? parseTimestamp(sentAt) : undefined;
  if (!at?.ok)
    return {
      reason: { field: sentAtField, message: `${sentAtField} is not a timestamp`, rule: "invalid_format" },
    };
  const when = parseTimestamp(client);
  if (!when.ok) return { timestamp: client };
  const micros = receivedAt - (at.micros - when.micros);
  return { timestamp: Number.isSafeInteger(micros) ? formatTimestamp(micros) : client };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A refusal of validateEvents, named by the SDK's field (`data/properties/price` → `properties/price`)
 * and by message indexes (`taken`: each candidate's message).
 */
function renamed(reason: FieldError, index: number, fields: SdkMessage["fields"], taken: number[]): FieldError {
  const field = reason.field;
  const top = field?.split("/")[0] as EyeField | undefined;
  const to = top === "data" && field !== "data" ? field!.slice(5) : top ? fields[top] : undefined;
  if (!to || !field) return { ...reason, index };
  const message = (reason.message.startsWith(field) ? `${to}${reason.message.slice(field.length)}` : reason.message)
    // validateEvents's "repeats the event at index 3" counts candidates, not the request's messages.
    .replace(/repeats the event at index (\d+)/, (_, i: string) => `repeats the message at index ${taken[Number(i)]}`);
  return { ...reason, index, field: to, message };
}

/**
 * The write key wherever the SDK carried it: Authorization (Basic or Bearer), ?key=, or the body
 * (`bodyKeys`: the envelope's and each message's). Every copy must be the same key.
 */
export function keyOf(c: Context<AppEnv>, bodyKeys: Iterable<string>): string | undefined {
  const keys = new Set(bodyKeys);
  const outside = sdkHeaderKey(c) ?? c.req.query("key");
  if (outside !== undefined) keys.add(outside);
  if (keys.size > 1)
    throw new ApiError("unauthorized", "the request carries more than one write key; send one", {
      headers: { "WWW-Authenticate": "Basic, Bearer" },
    });
  return keys.values().next().value;
}

/** Checks the key (as POST /api/event/ does: caches, origins, failed-key limits), then the write rate limit. */
export async function admit(c: Context<AppEnv>, key: string | undefined, missing: string): Promise<void> {
  await authenticate(c, "write", key, missing);
  await limitRate(c);
}

/** What a request's messages came to. */
export interface Outcome {
  messages: number;
  accepted: number;
  errors: FieldError[];
  /** Per message, for the dry run. */
  results: (
    | { index: number; accepted: true; event_id: string; event: Record<string, unknown> }
    | { index: number; accepted: false; errors: FieldError[] }
  )[];
}

/**
 * Validates the mapped messages as POST /api/event/ validates events (its limits, payload schemas,
 * the future rule, a repeated event_id refused by name), then, unless `dryRun`, queues the accepted
 * ones with each message's context and the refused ones' notes for the error log.
 */
export async function ingestMessages(
  c: Context<AppEnv>,
  protocol: Protocol,
  messages: SdkMessage[],
  hidden: Map<number, HiddenProblem>,
  receivedAt: number,
  dryRun: boolean,
): Promise<Outcome> {
  const envelope = hidden.get(ENVELOPE);
  if (envelope)
    throw new ApiError("bad_request", `the body cannot be read as sent: ${envelope.message}`, {
      errors: [{ field: envelope.field, message: envelope.message, rule: envelope.rule }],
    });
  const limits = limitsOf(c.env);
  const app = c.get("appId") ?? null;
  const refusedAt = new Map<number, FieldError[]>();
  // The messages the mapping took, in order, and each one's id (the SDK's, else derived from it).
  const taken: number[] = [];
  const candidates: Record<string, unknown>[] = [];
  const copies = new Map<string, number>();
  for (const [index, m] of messages.entries()) {
    const problem = hidden.get(index);
    const reasons = [...m.reasons, ...(problem ? [problem] : [])];
    if (reasons.length > 0 || !m.event) {
      refusedAt.set(
        index,
        reasons.map((r) => ({ index, ...r })),
      );
      continue;
    }
    let eventId: string;
    if (m.id !== undefined && UUID.test(m.id)) eventId = m.id.toLowerCase();
    else if (m.id !== undefined) eventId = derivedId([app, protocol, "id", m.id]);
    else {
      // No id: the message's content and which copy of it this is, as for events without an event_id.
      const copy = copies.get(m.content) ?? 0;
      copies.set(m.content, copy + 1);
      eventId = derivedId(copy === 0 ? [app, protocol, m.content] : [app, protocol, m.content, copy]);
    }
    taken.push(index);
    candidates.push({ ...m.event, event_id: eventId });
  }
  const rules = candidates.length > 0 ? await rulesOf(c, app) : undefined;
  const { accepted, refused } = validateEvents(candidates, limits, receivedAt, app, new Map(), rules?.check);
  for (const r of refused) {
    const index = taken[r.index]!;
    refusedAt.set(
      index,
      r.reasons.map((reason) => renamed(reason, index, messages[index]!.fields, taken)),
    );
  }

  // validateEvents keeps the candidates' order: the accepted ones are the taken ones not refused.
  const acceptedAt: number[] = taken.filter((index) => !refusedAt.has(index));
  const outcome: Outcome = {
    messages: messages.length,
    accepted: accepted.length,
    errors: [...refusedAt.keys()].sort((a, b) => a - b).flatMap((i) => refusedAt.get(i)!),
    results: [],
  };
  if (dryRun) {
    const byIndex = new Map(acceptedAt.map((index, k) => [index, accepted[k]!]));
    outcome.results = messages.map((_, index) => {
      const e = byIndex.get(index);
      return e
        ? { index, accepted: true as const, event_id: e.event_id, event: shown(e) }
        : { index, accepted: false as const, errors: refusedAt.get(index)! };
    });
    return outcome;
  }

  // Each message's own context (its page, referrer and browser), packed once per distinct context.
  const mode = c.get("contextMode") ?? "on";
  const development = c.env.ENVIRONMENT === "development";
  const groups = new Map<string, { context: EventContext | null; events: PreparedEvent[] }>();
  for (const [k, index] of acceptedAt.entries()) {
    const m = messages[index]!;
    const context = contextOf(c.req.raw, mode, {
      development,
      page: m.page,
      referrer: m.referrer,
      userAgent: m.userAgent,
    });
    const key = JSON.stringify(context);
    const group = groups.get(key) ?? { context, events: [] };
    group.events.push(accepted[k]!);
    groups.set(key, group);
  }
  const packed: EventsMessage[] = [];
  for (const g of groups.values()) packed.push(...eventMessages(g.events, app, receivedAt, g.context));
  const notes: RefusedNote[] = [...refusedAt].map(([index, reasons]) => ({
    index,
    payload: messages[index]!.logged,
    reasons,
    label: messages[index]!.label ?? {},
  }));
  await enqueue(c, packed, notes, app, receivedAt);
  return outcome;
}

/** An accepted event as the dry run shows it: as GET /api/event/ would return it. */
function shown(e: PreparedEvent): Record<string, unknown> {
  return {
    session_id: e.session_id,
    timestamp: formatTimestamp(e.timestamp),
    category: e.category,
    name: e.name,
    data: JSON.parse(e.data) as unknown,
  };
}

/** The answer of a dry run (?dry_run=1): POST /api/event/validate's shape, each accepted event shown as it would be stored. */
export function dryRunBody(o: Outcome) {
  return {
    success: o.accepted === o.messages,
    accepted: o.accepted,
    refused: o.messages - o.accepted,
    events: o.results,
  };
}

/**
 * The answer when no message was accepted: 400, which the SDKs drop rather than retry (resending
 * would fail again), with every message's reasons, as POST /api/event/ answers.
 */
export function noneAccepted(c: Context<AppEnv>, o: Outcome) {
  return c.json(
    errorBody(
      "invalid_events",
      o.messages === 1
        ? `the message is invalid: ${o.errors[0]?.message}`
        : `none of the ${o.messages} messages is valid`,
      c.get("requestId"),
      { errors: o.errors },
    ),
    400,
  );
}

/** `?dry_run=1` (or `true`): validate and answer per message, store and log nothing (segmentQuery, posthogQuery). */
export const isDryRun = (q: { dry_run?: string }) => q.dry_run === "1" || q.dry_run === "true";
