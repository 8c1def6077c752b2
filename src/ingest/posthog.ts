// PostHog's capture API as its libraries send it (posthog-js, posthog-node): a body's events, and
// each mapped to an event of The Eye. The mapping, field by field, is docs/sdks.md's;
// posthog-routes.ts serves the paths.
import { ApiError } from "../shared/errors";
import { formatTimestamp } from "../shared/timestamp";
import { correctedTime, idText, isObject, type Reason, type SdkMessage, textOf, without } from "./sdk";

/** The capture paths; PostHog takes each with or without a trailing slash, as The Eye does. */
export const POSTHOG_CAPTURE_PATHS = ["/e", "/i/v0/e", "/batch", "/capture"];

/** The category of PostHog's own events; every other event (a custom one, $exception …) is a `track`. */
export const POSTHOG_CATEGORIES = new Map([
  ["$pageview", "page"],
  ["$pageleave", "page"],
  ["$screen", "screen"],
  ["$autocapture", "autocapture"],
  ["$rageclick", "autocapture"],
  ["$dead_click", "autocapture"],
  ["$identify", "identify"],
  ["$set", "identify"],
  ["$create_alias", "alias"],
  ["$merge_dangerously", "alias"],
  ["$groupidentify", "group"],
]);

/** Session recordings' events: refused by name (The Eye keeps no recordings). */
const RECORDING_EVENTS = new Set(["$snapshot", "$snapshot_items"]);

/** Where the write key may be: the envelope's api_key (posthog-js, posthog-node), token or $token; each event's too. */
const KEY_FIELDS = ["api_key", "token", "$token"] as const;

/** What an event's properties lose: its IP address, and the write key (which posthog-js copies into every event). */
const DROPPED_PROPERTIES = ["$ip", "token", "$token"];

export interface PosthogBody {
  messages: unknown[];
  keys: string[];
  sentAt?: unknown;
}

function keysOf(o: Record<string, unknown>, into: string[]): void {
  for (const k of KEY_FIELDS) if (typeof o[k] === "string" && o[k] !== "") into.push(o[k]);
  if (isObject(o.properties))
    for (const k of ["token", "$token"])
      if (typeof o.properties[k] === "string" && o.properties[k] !== "") into.push(o.properties[k]);
}

/** The events of a body: `{api_key, batch: […], sent_at}`, an array of events, or one event. */
export function posthogBody(body: unknown, maxMessages: number): PosthogBody {
  const keys: string[] = [];
  let messages: unknown[];
  let sentAt: unknown;
  if (Array.isArray(body)) messages = body;
  else if (isObject(body) && body.batch !== undefined) {
    if (!Array.isArray(body.batch)) throw new ApiError("invalid_events", "batch must be an array of events");
    messages = body.batch;
    sentAt = body.sent_at;
    for (const k of KEY_FIELDS) if (typeof body[k] === "string" && body[k] !== "") keys.push(body[k]);
  } else if (isObject(body)) messages = [body];
  else throw new ApiError("invalid_events", "the body must be an event, an array of events, or {batch: [...]}");
  if (messages.length === 0) throw new ApiError("invalid_events", "the body holds no events");
  if (messages.length > maxMessages)
    throw new ApiError("invalid_events", `too many events: ${messages.length}, at most ${maxMessages} per request`);
  for (const m of messages) if (isObject(m)) keysOf(m, keys);
  return { messages, keys, sentAt };
}

/** The event as the error log keeps it: without its IP address or write key. */
function withoutIp(m: Record<string, unknown>): Record<string, unknown> {
  const out = without(m, ["ip", ...KEY_FIELDS]);
  if (isObject(m.properties)) out.properties = without(m.properties, DROPPED_PROPERTIES);
  return out;
}

/** Maps one event. `receivedAt` in microseconds, for the clock-skew correction. */
export function mapPosthog(raw: unknown, batchSentAt: unknown, receivedAt: number): SdkMessage {
  if (!isObject(raw))
    return {
      fields: {},
      reasons: [{ field: null, message: "each event must be a JSON object", rule: "invalid_type" }],
      logged: raw,
      content: "",
    };
  const m = raw;
  const logged = withoutIp(m);
  const reasons: Reason[] = [];
  const refuse = (field: string | null, rule: string, message: string) => reasons.push({ field, message, rule });

  if (m.properties !== undefined && m.properties !== null && !isObject(m.properties))
    refuse("properties", "invalid_type", "properties must be an object");
  const properties = isObject(logged.properties) ? logged.properties : {};
  if (typeof m.event === "string" && RECORDING_EVENTS.has(m.event))
    refuse("event", "not_supported", `${m.event}: The Eye does not collect session recordings`);
  const distinctId = idText(m.distinct_id) ?? idText(properties.distinct_id) ?? idText(properties.$distinct_id);
  const sessionId = idText(properties.$session_id);
  if (distinctId === undefined && sessionId === undefined) refuse("distinct_id", "required", "distinct_id is required");
  if (m.uuid !== undefined && m.uuid !== null && typeof m.uuid !== "string")
    refuse("uuid", "invalid_type", "uuid must be a string");

  // now + (timestamp − sent_at), as PostHog's ingestion corrects it; `offset` (ms before sending) without a timestamp.
  const ignoreSentAt = properties.$ignore_sent_at === true;
  let time: { timestamp?: unknown; reason?: Reason };
  if (m.timestamp === undefined && typeof m.offset === "number" && Number.isFinite(m.offset))
    time = { timestamp: formatTimestamp(receivedAt - Math.round(m.offset * 1000)) };
  else time = correctedTime(m.timestamp, ignoreSentAt ? undefined : (m.sent_at ?? batchSentAt), receivedAt, "sent_at");
  if (time.reason) reasons.push(time.reason);

  const content = JSON.stringify(without(logged, ["sent_at"]));
  const event = m.event;
  const label = {
    category: (typeof event === "string" ? POSTHOG_CATEGORIES.get(event) : undefined) ?? "track",
    name: textOf(event),
  };
  if (reasons.length > 0) return { fields: {}, reasons, logged, label, content };

  const data: Record<string, unknown> = { properties };
  if (distinctId !== undefined) data.distinct_id = distinctId;
  for (const k of ["$set", "$set_once", "$unset"] as const) if (logged[k] !== undefined) data[k] = logged[k];
  return {
    event: {
      session_id: sessionId ?? distinctId,
      category: label.category,
      name: event,
      data,
      timestamp: time.timestamp,
    },
    fields: {
      session_id: sessionId !== undefined ? "properties.$session_id" : "distinct_id",
      name: "event",
      data: "properties",
      timestamp: "timestamp",
      event_id: "uuid",
    },
    reasons,
    logged,
    label,
    id: textOf(m.uuid),
    content,
    page: textOf(properties.$current_url),
    referrer: properties.$referrer === "$direct" ? undefined : textOf(properties.$referrer),
    userAgent: textOf(properties.$raw_user_agent),
  };
}
