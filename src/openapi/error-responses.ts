import { type ErrorCode, STATUS } from "../shared/errors";
import { ref } from "./responses";

/** When each code is answered. */
const WHEN: Record<ErrorCode, string> = {
  bad_request: "the body is not JSON, not UTF-8, not gzip, or empty; or X-D1-Bookmark is malformed",
  invalid_events: "no event is valid, or the body holds too many events (`errors` names each event's fields)",
  invalid_query: "a query or path parameter is invalid (`errors` names it)",
  unauthorized:
    "no key, or an unknown or revoked one, or a read key in the URL, or two different keys in one SDK request",
  forbidden:
    "the wrong kind of key for the route, an origin the application does not allow, or a scoped key naming another application",
  not_found: "no such route, or no such stored event",
  method_not_allowed: "the path does not serve this method (`Allow` lists those it does)",
  conflict: "several applications stored this event_id; add `?app_id=`",
  payload_too_large:
    "the body is over MAX_BODY_BYTES, on the wire or once inflated (on Segment's routes over 32 KB a call or 500 KB a batch, when smaller; the message names the limit)",
  unsupported_media_type:
    "a Content-Type other than application/json or text/plain (on the SDK routes also a form), a charset other than UTF-8, a Content-Encoding other than gzip, or a ?compression= other than gzip-js, gzip or base64",
  rate_limited:
    "too many requests from this client with this write key, or too many unknown keys from this address; wait `Retry-After` seconds",
  internal_error: "a bug: quote the request_id when reporting it",
  queue_unavailable:
    "the queue refused the events; `accepted` says how many it took (resending the same request is safe)",
};

const pascal = (code: string) => code.replace(/(^|_)([a-z])/g, (_, __, ch: string) => ch.toUpperCase());

/** Each status's response, named after its first code (BadRequest, Unauthorized, …). */
export const statusName = (status: number) =>
  pascal(Object.keys(STATUS).find((code) => STATUS[code as ErrorCode] === status)!);

export function errorResponses() {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const [code, status] of Object.entries(STATUS) as [ErrorCode, number][])
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  const extra: Record<number, Record<string, unknown>> = {
    401: { "WWW-Authenticate": { $ref: "#/components/headers/WWWAuthenticate" } },
    405: { Allow: { $ref: "#/components/headers/Allow" } },
    429: { "Retry-After": { $ref: "#/components/headers/RetryAfter" } },
    503: { "Retry-After": { $ref: "#/components/headers/RetryAfter" } },
  };
  return Object.fromEntries(
    [...byStatus].map(([status, codes]) => [
      statusName(status),
      {
        description: codes.map((code) => `\`${code}\`: ${WHEN[code]}`).join("; "),
        headers: { "X-Request-Id": { $ref: "#/components/headers/XRequestId" }, ...extra[status] },
        content: { "application/json": { schema: { ...ref("Error"), properties: { code: { enum: codes } } } } },
      },
    ]),
  );
}
