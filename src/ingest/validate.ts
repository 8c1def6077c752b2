// Edge validation: turns a parsed body into events ready for the queue, and per-event errors.
import type { Limits } from "../shared/config";
import { ApiError, type FieldError } from "../shared/errors";
import { eventInput, type PreparedEvent } from "../shared/schemas";
import { sha256Hex } from "../shared/sha256";
import { utf8Length } from "../shared/sizes";
import type { HiddenProblem } from "./body";
import type { PayloadCheck } from "./payload-schemas";

/** Deepest nesting of objects/arrays allowed inside `data`. */
export const MAX_DATA_DEPTH = 32;

export interface Refused {
  index: number;
  payload: unknown;
  reasons: FieldError[];
}

export interface Validated {
  accepted: PreparedEvent[];
  refused: Refused[];
}

/** The body as a list of candidate events: one object, or an array of 1..max of them. */
export function eventsOf(body: unknown, maxEvents: number): unknown[] {
  if (Array.isArray(body)) {
    if (body.length === 0) throw new ApiError("invalid_events", "the array holds no events");
    if (body.length > maxEvents) {
      throw new ApiError("invalid_events", `too many events: ${body.length}, at most ${maxEvents} per request`);
    }
    return body;
  }
  if (typeof body === "object" && body !== null) return [body];
  throw new ApiError("invalid_events", "the body must be an event object or an array of events");
}

/**
 * Why `data` cannot be stored exactly as sent, or null. Walks without recursion, so a
 * hostile nesting depth costs at most MAX_DATA_DEPTH levels of work.
 */
function dataProblem(data: Record<string, unknown>): { rule: string; message: string } | null {
  let level: unknown[] = [data];
  for (let depth = 1; level.length > 0; depth++) {
    if (depth > MAX_DATA_DEPTH)
      return { rule: "too_deep", message: `must not nest deeper than ${MAX_DATA_DEPTH} levels` };
    const next: unknown[] = [];
    for (const value of level) {
      for (const child of Array.isArray(value) ? value : Object.values(value as object)) {
        if (typeof child === "number" && !Number.isFinite(child)) {
          return {
            rule: "not_finite",
            message: "holds a number too large to represent (JSON numbers must be finite doubles)",
          };
        }
        if (typeof child === "object" && child !== null) next.push(child);
      }
    }
    level = next;
  }
  return null;
}

/**
 * A stable UUID (version 8) derived from `fields`: the same fields always give the same id.
 * Hashed synchronously: crypto.subtle.digest's promise per event cost about 20 µs each, and
 * node:crypto's createHash about 11 (BENCHMARKS.md); sha256.ts gives the same digest.
 */
export function derivedId(fields: unknown[]): string {
  const hex = sha256Hex(JSON.stringify(fields));
  // Version 8 in the 13th hex digit, variant 10xx in the 17th.
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * The id of an event sent without one, from what makes it itself, so a retried request stores
 * nothing twice: its application, its content, and which copy of that content it is within its
 * request (`copy`: 0 for the first). A request that carries the same event twice meant two
 * events, and a resent request maps every copy to the same id again. The first copy's id is the
 * content's alone, as before copies were counted.
 */
function contentId(app: string | null, e: Omit<PreparedEvent, "event_id">, copy: number): string {
  const fields: unknown[] = [app, e.session_id, e.category, e.name, e.timestamp, e.data];
  if (copy > 0) fields.push(copy);
  return derivedId(fields);
}

export function validateEvents(
  candidates: unknown[],
  limits: Limits,
  receivedAt: number,
  app: string | null,
  hiddenProblems: Map<number, HiddenProblem> = new Map(),
  checkPayload: PayloadCheck = () => null,
): Validated {
  const accepted: PreparedEvent[] = [];
  const refused: Refused[] = [];
  // Copies of one content seen so far (by its first copy's id), and where each event_id was first accepted.
  const copies = new Map<string, number>();
  const firstAt = new Map<string, number>();
  for (const [index, candidate] of candidates.entries()) {
    const reasons: FieldError[] = [];
    // A duplicate key or an unstorable number that JSON.parse hid (see body.ts).
    const hidden = hiddenProblems.get(index);
    const parsed = eventInput.safeParse(candidate);
    if (!parsed.success) {
      const seen = new Set<string>();
      for (const issue of parsed.error.issues) {
        const field = issue.path.length > 0 ? String(issue.path[0]) : null;
        if (seen.has(String(field))) continue;
        seen.add(String(field));
        reasons.push({
          index,
          field,
          message: field === null ? "each event must be a JSON object" : `${field} ${issue.message}`,
          rule: issue.code,
        });
      }
      if (hidden && !seen.has(hidden.field)) reasons.push({ index, ...hidden });
    } else {
      const e = parsed.data;
      if (hidden) reasons.push({ index, ...hidden });
      const problem = hidden?.field === "data" ? hidden : dataProblem(e.data);
      const data = problem ? "" : JSON.stringify(e.data);
      if (problem) {
        if (hidden?.field !== "data")
          reasons.push({ index, field: "data", message: `data ${problem.message}`, rule: problem.rule });
      } else if (utf8Length(data) > limits.maxDataBytes) {
        reasons.push({
          index,
          field: "data",
          message: `data is larger than ${limits.maxDataBytes} bytes once serialized`,
          rule: "too_big",
        });
      } else {
        // The event type's payload schema, if one is registered; checked only on storable data.
        const failure = checkPayload(e.category, e.name, e.data);
        if (failure) reasons.push({ index, ...failure });
      }
      if (e.timestamp > receivedAt + limits.maxFutureMicros) {
        reasons.push({ index, field: "timestamp", message: "timestamp is in the future", rule: "future" });
      }
      if (reasons.length === 0) {
        const event = { session_id: e.session_id, category: e.category, name: e.name, data, timestamp: e.timestamp };
        let eventId = e.event_id;
        if (eventId === undefined || eventId === null) {
          const first = contentId(app, event, 0);
          const copy = copies.get(first) ?? 0;
          copies.set(first, copy + 1);
          eventId = copy === 0 ? first : contentId(app, event, copy);
        }
        // The client named two events alike: only one can be stored, so the second is refused
        // rather than counted as accepted and silently dropped by the store.
        const earlier = firstAt.get(eventId);
        if (earlier !== undefined) {
          reasons.push({
            index,
            field: "event_id",
            message: `event_id repeats the event at index ${earlier}; an event_id is stored once`,
            rule: "duplicate",
          });
        } else {
          firstAt.set(eventId, index);
          accepted.push({ event_id: eventId, ...event });
        }
      }
    }
    if (reasons.length > 0) refused.push({ index, payload: candidate, reasons });
  }
  return { accepted, refused };
}
