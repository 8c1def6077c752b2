// The one error type: a code from a fixed list, mapped to an HTTP status, rendered in one JSON shape.
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const STATUS = {
  bad_request: 400,
  invalid_events: 400,
  invalid_query: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  queue_unavailable: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof STATUS;

/** One problem with one field: `index` is the event's position in a batch, when there is one. */
export interface FieldError {
  index?: number;
  field: string | null;
  message: string;
  /**
   * What rule the value broke, for machines and for the error summary: a JSON Schema keyword
   * (`minimum`, `required`) for a payload schema, `future` for a timestamp too far ahead, zod's
   * issue code otherwise (`invalid_type`, `too_big`).
   */
  rule?: string;
}

export class ApiError extends HTTPException {
  readonly code: ErrorCode;
  readonly errors?: FieldError[];
  readonly headers?: Record<string, string>;
  /** Extra top-level fields for the body, such as how many events a failed request had queued. */
  readonly details?: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      errors?: FieldError[];
      headers?: Record<string, string>;
      details?: Record<string, unknown>;
      cause?: unknown;
    } = {},
  ) {
    super(STATUS[code], { message, cause: options.cause });
    this.code = code;
    this.errors = options.errors;
    this.headers = options.headers;
    this.details = options.details;
  }
}

/** Client input as quoted in an error message: never echoed back whole. */
export function clip(text: string, max = 100): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The general code for a status (the first listed above), for HTTP errors raised outside our routes. */
export function codeOf(status: number): ErrorCode {
  const entry = Object.entries(STATUS).find(([, s]) => s === status);
  return entry ? (entry[0] as ErrorCode) : "bad_request";
}

/** The JSON body of every error response. `success: false` keeps the original's contract. */
export function errorBody(
  code: ErrorCode,
  message: string,
  requestId: string,
  extra: { errors?: FieldError[]; details?: Record<string, unknown> } = {},
) {
  return {
    success: false as const,
    code,
    message,
    request_id: requestId,
    ...extra.details,
    ...(extra.errors ? { errors: extra.errors } : {}),
  };
}
