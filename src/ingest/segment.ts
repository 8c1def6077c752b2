// Segment's HTTP Tracking API as its libraries send it (@segment/analytics-node, analytics.js /
// @segment/analytics-next): a body's messages, and each message mapped to an event of The Eye.
// The mapping, field by field, is docs/sdks.md's; segment-routes.ts serves the paths.
import { ApiError } from "../shared/errors";
import { utf8Length } from "../shared/sizes";
import { correctedTime, idText, isObject, type Reason, type SdkMessage, textOf, without } from "./sdk";

export const SEGMENT_TYPES = ["track", "page", "screen", "identify", "group", "alias"] as const;
export type SegmentType = (typeof SEGMENT_TYPES)[number];

/** Every call's path under /v1/: its name and analytics.js's one letter (/v1/t is track). */
export const SEGMENT_CALLS: [string, SegmentType][] = SEGMENT_TYPES.flatMap((t) => [
  [t, t],
  [t[0]!, t],
]);

/** Segment's limits (its HTTP API docs): one message, and one /v1/batch request. */
export const SEGMENT_MESSAGE_BYTES = 32 * 1024;
export const SEGMENT_BATCH_BYTES = 500 * 1024;

/** What a message keeps in `data`: the rest are The Eye's other fields, transport, or an IP address. */
const KEPT = ["properties", "traits", "userId", "anonymousId", "groupId", "previousId", "category", "context"] as const;

/** The messages of a body and the write keys it carries (the envelope's and each message's `writeKey`). */
export interface SegmentBody {
  messages: unknown[];
  keys: string[];
  /** The batch's sentAt, for messages without their own. */
  sentAt?: unknown;
}

/**
 * One call's message (POST /v1/track …), or a batch's (`{batch: […], context?, integrations?,
 * writeKey?, sentAt?}`, /v1/batch and analytics.js's /v1/b), the batch's context and integrations
 * merged under each message's own, as Segment does.
 */
export function segmentBody(body: unknown, batch: boolean, maxMessages: number): SegmentBody {
  if (!isObject(body)) throw new ApiError("invalid_events", "the body must be a JSON object (a Segment message)");
  const keys: string[] = [];
  const key = (o: Record<string, unknown>) => {
    if (typeof o.writeKey === "string" && o.writeKey !== "") keys.push(o.writeKey);
  };
  key(body);
  if (!batch) return { messages: [body], keys };
  const items = body.batch;
  if (!Array.isArray(items)) throw new ApiError("invalid_events", "batch must be an array of messages");
  if (items.length === 0) throw new ApiError("invalid_events", "the batch holds no messages");
  if (items.length > maxMessages)
    throw new ApiError("invalid_events", `too many messages: ${items.length}, at most ${maxMessages} per request`);
  const shared = { context: body.context, integrations: body.integrations };
  const messages = items.map((item) => {
    if (!isObject(item)) return item;
    key(item);
    const merged = { ...item };
    for (const name of ["context", "integrations"] as const)
      if (isObject(shared[name])) merged[name] = { ...shared[name], ...(isObject(item[name]) ? item[name] : {}) };
    return merged;
  });
  return { messages, keys, sentAt: body.sentAt };
}

/** The SDK's own session id where there is one: context.sessionId, or Amplitude's in the integrations' options. */
function sessionOf(m: Record<string, unknown>): { value: string; field: string } | undefined {
  const context = isObject(m.context) ? m.context : {};
  const integrations = isObject(m.integrations) ? m.integrations : {};
  const candidates: [unknown, string][] = [
    [context.sessionId, "context.sessionId"],
    [
      isObject(integrations["Actions Amplitude"]) ? integrations["Actions Amplitude"].session_id : undefined,
      "integrations.Actions Amplitude.session_id",
    ],
    [
      isObject(integrations.Amplitude) ? integrations.Amplitude.session_id : undefined,
      "integrations.Amplitude.session_id",
    ],
  ];
  for (const [value, field] of candidates) {
    const text = idText(value);
    if (text !== undefined) return { value: text, field };
  }
  return undefined;
}

/** A message's name: track's event, the page's or screen's name (else the page's path), else the call type. */
function nameOf(type: SegmentType, m: Record<string, unknown>): { value: unknown; field: string } {
  if (type === "track") return { value: m.event, field: "event" };
  if (type === "page" || type === "screen") {
    if (m.name !== undefined && m.name !== null && m.name !== "") return { value: m.name, field: "name" };
    const properties = isObject(m.properties) ? m.properties : {};
    const page = isObject(m.context) && isObject(m.context.page) ? m.context.page : {};
    if (textOf(properties.path)) return { value: properties.path, field: "properties.path" };
    if (type === "page" && textOf(page.path)) return { value: page.path, field: "context.page.path" };
  }
  return { value: type, field: "type" };
}

/** The message without its IP address and write key: what the error log and `data` may hold of it. */
function withoutIp(m: Record<string, unknown>): Record<string, unknown> {
  const out = without(m, ["writeKey"]);
  if (isObject(m.context) && "ip" in m.context) out.context = without(m.context, ["ip"]);
  return out;
}

/**
 * Maps one message. `type` is the path's (POST /v1/track) or, in a batch, the message's own.
 * `receivedAt` in microseconds, for the clock-skew correction.
 */
export function mapSegment(
  raw: unknown,
  pathType: SegmentType | undefined,
  batchSentAt: unknown,
  receivedAt: number,
): SdkMessage {
  if (!isObject(raw))
    return {
      fields: {},
      reasons: [{ field: null, message: "each message must be a JSON object", rule: "invalid_type" }],
      logged: raw,
      content: "",
    };
  const m = raw;
  const logged = withoutIp(m);
  const reasons: Reason[] = [];
  const refuse = (field: string | null, rule: string, message: string) => reasons.push({ field, message, rule });

  if (utf8Length(JSON.stringify(m)) > SEGMENT_MESSAGE_BYTES)
    refuse(null, "too_big", `the message is larger than ${SEGMENT_MESSAGE_BYTES} bytes (Segment's limit per message)`);
  let type: SegmentType | undefined = pathType;
  if (pathType === undefined) {
    if (m.type === undefined) refuse("type", "required", "type is required in a batch");
    else if (!(SEGMENT_TYPES as readonly unknown[]).includes(m.type))
      refuse("type", "invalid_value", `type must be one of ${SEGMENT_TYPES.join(", ")}`);
    else type = m.type as SegmentType;
  } else if (m.type !== undefined && m.type !== pathType) {
    refuse("type", "invalid_value", `type is ${String(m.type).slice(0, 20)}, but this path takes ${pathType}`);
  }
  for (const name of ["properties", "traits", "context", "integrations"] as const)
    if (m[name] !== undefined && m[name] !== null && !isObject(m[name]))
      refuse(name, "invalid_type", `${name} must be an object`);
  const userId = idText(m.userId);
  const anonymousId = idText(m.anonymousId);
  if (userId === undefined && anonymousId === undefined)
    refuse("userId", "required", "userId or anonymousId is required");
  if (type === "group" && idText(m.groupId) === undefined) refuse("groupId", "required", "groupId is required");
  if (type === "alias" && idText(m.previousId) === undefined)
    refuse("previousId", "required", "previousId is required");
  if (m.messageId !== undefined && typeof m.messageId !== "string")
    refuse("messageId", "invalid_type", "messageId must be a string");
  else if (typeof m.messageId === "string" && m.messageId.length > 200)
    refuse("messageId", "too_big", "messageId must be at most 200 characters");

  const clientField = m.timestamp !== undefined ? "timestamp" : "originalTimestamp";
  const time = correctedTime(m[clientField], m.sentAt ?? batchSentAt, receivedAt, "sentAt");
  if (time.reason) reasons.push(time.reason);

  const context = isObject(m.context) ? m.context : {};
  const page = isObject(context.page) ? context.page : {};
  const content = JSON.stringify(without(logged, ["sentAt", "_metadata"]));
  const name = type === undefined ? undefined : nameOf(type, m);
  const label = { category: type, name: textOf(name?.value) };
  if (reasons.length > 0 || type === undefined || name === undefined)
    return { fields: {}, reasons, logged, label, content };

  const session =
    sessionOf(m) ??
    (anonymousId !== undefined ? { value: anonymousId, field: "anonymousId" } : { value: userId, field: "userId" });
  const data: Record<string, unknown> = {};
  for (const k of KEPT) if (logged[k] !== undefined && logged[k] !== null) data[k] = logged[k];
  // A page or screen name became the event's name; a category it carries stays in data.
  return {
    event: { session_id: session.value, category: type, name: name.value, data, timestamp: time.timestamp },
    fields: {
      session_id: session.field,
      name: name.field,
      data: type === "identify" || type === "group" ? "traits" : "properties",
      timestamp: clientField,
      event_id: "messageId",
    },
    reasons,
    logged,
    label,
    id: typeof m.messageId === "string" && m.messageId !== "" ? m.messageId : undefined,
    content,
    page: textOf(page.url),
    referrer: textOf(page.referrer),
    userAgent: textOf(context.userAgent),
  };
}
