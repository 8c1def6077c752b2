// Reading a POST body safely: size cap before and after gzip, strict UTF-8, then JSON.
import { ApiError, clip } from "../shared/errors";

const ACCEPTED_TYPES = new Set(["application/json", "text/plain"]);

/** A client's header value as quoted in an error message. */
const shown = (value: string) => clip(value, 60);

/**
 * A Content-Type's media type (lower case) and parameters, per RFC 9110 §8.3.1: parameter
 * names are case-insensitive and values are tokens or quoted strings (`charset="UTF-8"`).
 */
export function mediaType(header: string): { type: string; params: Map<string, string> } {
  const semicolon = header.indexOf(";");
  const type = (semicolon < 0 ? header : header.slice(0, semicolon)).trim().toLowerCase();
  const params = new Map<string, string>();
  if (semicolon >= 0) {
    const PARAM = /;\s*([^\s;=]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"\s*|([^;]*))/gy;
    PARAM.lastIndex = semicolon;
    for (let m = PARAM.exec(header); m; m = PARAM.exec(header)) {
      const name = m[1]!.toLowerCase();
      const value = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]!.trim();
      if (!params.has(name)) params.set(name, value);
    }
  }
  return { type, params };
}

/** Reads the whole stream, refusing it as soon as it passes `max` bytes. */
export async function readCapped(stream: ReadableStream<Uint8Array>, max: number, what: string): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw new ApiError("payload_too_large", `${what} is larger than the ${max}-byte limit`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** A parsed body, and what JSON.parse hid in it, by event index (0 for a lone object). */
export interface ParsedBody {
  value: unknown;
  hidden: Map<number, HiddenProblem>;
}

/**
 * The request's JSON value. `application/json` or `text/plain` (what `sendBeacon` sends),
 * optionally gzip-encoded; at most `maxBytes` both on the wire and once inflated, so a
 * gzip bomb is stopped after `maxBytes` of output, not after inflating it all.
 */
export async function readJson(request: Request, maxBytes: number): Promise<ParsedBody> {
  const { type, params } = mediaType(request.headers.get("content-type") ?? "application/json");
  if (!ACCEPTED_TYPES.has(type)) {
    throw new ApiError(
      "unsupported_media_type",
      `Content-Type must be application/json or text/plain, not ${shown(type) || "empty"}`,
    );
  }
  const charset = params.get("charset")?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw new ApiError("unsupported_media_type", `the body must be UTF-8, not ${shown(charset)}`);
  }
  const encoding = (request.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding !== "identity" && encoding !== "gzip") {
    throw new ApiError("unsupported_media_type", `Content-Encoding must be gzip or none, not ${shown(encoding)}`);
  }
  const declared = Number(request.headers.get("content-length"));
  if (declared > maxBytes) {
    throw new ApiError("payload_too_large", `the body is larger than the ${maxBytes}-byte limit`);
  }
  if (!request.body) throw new ApiError("bad_request", "the body is empty: send an event object or an array of events");
  const bytes = await readBytes(request.body, maxBytes, encoding === "gzip");
  if (bytes.byteLength === 0) {
    throw new ApiError("bad_request", "the body is empty: send an event object or an array of events");
  }
  const { value, text } = parseJson(bytes);
  return { value, hidden: hiddenProblems(text) };
}

/**
 * A body's bytes, at most `maxBytes` on the wire and, with `gzip`, once inflated too. Wire bytes are
 * counted before inflating: without a Content-Length, a gzip body could otherwise be any size on the
 * wire (empty deflate blocks inflate to nothing).
 */
export async function readBytes(
  wire: ReadableStream<Uint8Array>,
  maxBytes: number,
  gzip: boolean,
): Promise<Uint8Array> {
  let wireBytes = 0;
  const overWire = () => new ApiError("payload_too_large", `the body is larger than the ${maxBytes}-byte limit`);
  try {
    return gzip
      ? await readCapped(
          wire
            .pipeThrough(
              new TransformStream<Uint8Array, Uint8Array>({
                transform(chunk, controller) {
                  wireBytes += chunk.byteLength;
                  if (wireBytes > maxBytes) controller.error(overWire());
                  else controller.enqueue(chunk);
                },
              }),
            )
            .pipeThrough(new DecompressionStream("gzip")),
          maxBytes,
          "the inflated body",
        )
      : await readCapped(wire, maxBytes, "the body");
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // The decompressor reports the wire cap as its own failure; the count says which it was.
    if (wireBytes > maxBytes) throw overWire();
    throw new ApiError("bad_request", "the body is not valid gzip", { cause: err });
  }
}

/** Strict UTF-8, then JSON: the value and the text it was parsed from (for hiddenProblems). */
export function parseJson(bytes: Uint8Array): { value: unknown; text: string } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("bad_request", "the body is not valid UTF-8");
  }
  try {
    return { value: JSON.parse(text), text };
  } catch (err) {
    throw new ApiError("bad_request", `the body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * What JSON.parse silently changes, so an event cannot be stored as sent: a key given twice
 * in one object (the last one wins, and a proxy that keeps the first would read another event),
 * or a number in `data` that a double cannot hold (it would be stored as another number).
 */
export interface HiddenProblem {
  field: string;
  message: string;
  rule: string;
}

/** Nesting levels whose keys are checked for duplicates: deeper events are refused anyway (data ≤ 32). */
const TRACKED_DEPTH = 64;
/** An object frame with no key seen yet; a string is its only key so far, a Set holds two or more. */
const NO_KEYS = 0;
type Frame = null | typeof NO_KEYS | string | Set<string>;

const quoted = (s: string) => {
  const q = JSON.stringify(s);
  return q.length > 42 ? `${q.slice(0, 40)}…"` : q;
};

/**
 * The decimal a JSON number denotes, normalized to `[-]0.DIGITSeEXP` (zero is "0"). Zeros are
 * trimmed by index scans: a regex such as `/0+$/` retries from every zero of a long run that
 * ends in another digit, which is quadratic in V8 (2 s for 40,000 zeros under Node).
 */
export function decimal(token: string): string {
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(token);
  if (!m) return token;
  const whole = m[2] ?? "";
  const digits = whole + (m[3] ?? "");
  let start = 0;
  while (start < digits.length && digits.charCodeAt(start) === 0x30) start++;
  let end = digits.length;
  while (end > start && digits.charCodeAt(end - 1) === 0x30) end--;
  return start === end ? "0" : `${m[1]}0.${digits.slice(start, end)}e${Number(m[4] ?? 0) + whole.length - start}`;
}

/**
 * Longest number text checked; a longer one is refused. Every number that survives as a double
 * fits: at most 17 significant digits, plus zeros out to the exponent range (about 330 characters).
 */
export const MAX_NUMBER_CHARS = 400;

/** Why a number's text cannot be stored as sent (as a double), or null. */
function numberProblem(token: string): string | null {
  if (token.length > MAX_NUMBER_CHARS) {
    return `holds a number ${token.slice(0, 12)}… of more than ${MAX_NUMBER_CHARS} characters; send it as a string`;
  }
  const sent = token.length > 40 ? `${token.slice(0, 40)}…` : token;
  const value = Number(token);
  if (!Number.isFinite(value)) return `holds the number ${sent}, too large to store; send it as a string`;
  if (decimal(token) === decimal(String(value))) return null;
  return `holds the number ${sent}, which would be stored as ${value}; send it as a string`;
}

/** Where a body's events are, for hiddenProblems: The Eye's shape, or an SDK's. */
export interface BodyShape {
  /** The key of a top-level object whose array holds the events (`batch`); else the body is one event or an array of them. */
  envelope?: string;
  /** The one event field whose numbers are checked (`data`); null checks every field's. */
  numbersIn: string | null;
}

/** POST /api/event/'s shape: one event or an array of them, numbers checked in `data`. */
const EVENTS: BodyShape = { numbersIn: "data" };

/** A problem of the envelope around the events (a key given twice in it): keyed by this index. */
export const ENVELOPE = -1;

/**
 * Scans valid JSON text for what JSON.parse hides: duplicate keys anywhere in an event, and
 * numbers inside `data` (or `shape.numbersIn`) that do not survive as doubles. Returns the first
 * problem per event, keyed by the event's index in the body (0 for a lone object), and a duplicate
 * key outside the events of an envelope under ENVELOPE. Linear; strings are skipped with indexOf.
 */
export function hiddenProblems(text: string, shape: BodyShape = EVENTS): Map<number, HiddenProblem> {
  const problems = new Map<number, HiddenProblem>();
  const frames: Frame[] = [];
  const { envelope, numbersIn } = shape;
  let depth = 0;
  // 1 when the body is one event, 2 when it is an array of events, 3 inside an envelope's array
  let eventDepth = 0;
  let element = 0;
  let field: string | null = null; // the event field whose value is being read
  let expectKey = false;
  // Envelope only: the top-level key being read, and whether the scan is inside its array of events.
  let topKey: string | null = null;
  let inEvents = envelope === undefined;
  const n = text.length;
  for (let i = 0; i < n; ) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      for (;;) {
        j = text.indexOf('"', j);
        let k = j - 1;
        while (text.charCodeAt(k) === 0x5c) k--;
        if ((j - 1 - k) % 2 === 0) break;
        j++;
      }
      if (expectKey && depth <= TRACKED_DEPTH) {
        const raw = text.slice(i + 1, j);
        const key = raw.includes("\\") ? (JSON.parse(text.slice(i, j + 1)) as string) : raw;
        if (depth === eventDepth) field = key;
        if (!inEvents && depth === 1) topKey = key;
        const frame = frames[depth - 1];
        let repeated = false;
        if (frame === NO_KEYS) frames[depth - 1] = key;
        else if (typeof frame === "string") {
          if (frame === key) repeated = true;
          else frames[depth - 1] = new Set([frame, key]);
        } else if (frame instanceof Set) {
          if (frame.has(key)) repeated = true;
          else frame.add(key);
        }
        if (repeated && !inEvents) {
          if (!problems.has(ENVELOPE))
            problems.set(ENVELOPE, {
              field: topKey ?? key,
              message:
                depth === 1
                  ? `${key} appears more than once in the body`
                  : `${topKey} has the key ${quoted(key)} more than once in one object`,
              rule: "duplicate_key",
            });
        } else if (repeated && !problems.has(element)) {
          if (depth === eventDepth)
            problems.set(element, {
              field: key,
              message: `${key} appears more than once in the event`,
              rule: "duplicate_key",
            });
          else if (field !== null && depth > eventDepth) {
            problems.set(element, {
              field,
              message: `${field} has the key ${quoted(key)} more than once in one object`,
              rule: "duplicate_key",
            });
          }
        }
      }
      expectKey = false;
      i = j + 1;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth === 1) eventDepth = envelope !== undefined ? 3 : c === 0x5b ? 2 : 1;
      else if (depth === 2 && !inEvents && c === 0x5b && topKey === envelope) inEvents = true;
      if (depth <= TRACKED_DEPTH) frames[depth - 1] = c === 0x7b ? NO_KEYS : null;
      if (depth === eventDepth) field = null;
      expectKey = c === 0x7b;
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 1 && envelope !== undefined) inEvents = false;
      expectKey = false;
      i++;
    } else if (c === 0x2c) {
      if (depth === eventDepth - 1 && eventDepth > 1 && inEvents) element++;
      expectKey = depth <= TRACKED_DEPTH && frames[depth - 1] !== null;
      i++;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      let plain = true; // digits, sign and point only: up to 15 digits always survive as a double
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if ((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x2d) continue;
        if (d === 0x65 || d === 0x45 || d === 0x2b) {
          plain = false;
          continue;
        }
        break;
      }
      if (
        field !== null &&
        (numbersIn === null || field === numbersIn) &&
        depth > eventDepth &&
        inEvents &&
        !(plain && j - i <= 15) &&
        !problems.has(element)
      ) {
        const problem = numberProblem(text.slice(i, j));
        if (problem) problems.set(element, { field, message: `${field} ${problem}`, rule: "inexact_number" });
      }
      i = j;
    } else {
      i++;
    }
  }
  return problems;
}
