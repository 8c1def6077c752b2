// Reading an SDK's POST body: the encodings Segment's and PostHog's libraries use on top of what
// POST /api/event/ takes (body.ts). JSON as application/json or text/plain; gzip declared by
// Content-Encoding or ?compression=gzip-js, or undeclared (posthog-js sends its gzip as text/plain
// with no header, so the magic bytes 1f 8b are what tell it); a form whose `data=` is base64 of the
// JSON (posthog-js's ?compression=base64, its beacons) or the JSON itself. The size cap holds on
// the wire and once inflated, as in body.ts.
import { ApiError, clip } from "../shared/errors";
import { mediaType, parseJson, readBytes } from "./body";

const TYPES = new Set(["application/json", "text/plain", "application/x-www-form-urlencoded"]);

/** ?compression= values posthog-js has sent; lz64 (an old LZ-string encoding) is named and refused. */
const COMPRESSIONS = new Set(["gzip-js", "gzip", "base64"]);

const isGzip = (bytes: Uint8Array) => bytes.byteLength >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

/** Inflates a gzip body already read, at most `maxBytes` once inflated. */
const inflate = (bytes: Uint8Array, maxBytes: number) =>
  readBytes(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(), maxBytes, true);

function fromBase64(text: string): Uint8Array {
  // URL-safe or not, with or without padding; a form may have turned + into spaces.
  const b64 = text.trim().replace(/ /g, "+").replace(/-/g, "+").replace(/_/g, "/");
  try {
    return Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  } catch {
    throw new ApiError("bad_request", "the form's data is not valid base64");
  }
}

/**
 * The body's JSON value and text (for hiddenProblems). `maxBytes` is the smaller of ours and the
 * protocol's; `limit` names the protocol's when it is the one that binds ("Segment's limit for one call").
 */
export async function readSdkBody(
  request: Request,
  maxBytes: number,
  limit?: string,
): Promise<{ value: unknown; text: string }> {
  try {
    return await read(request, maxBytes);
  } catch (err) {
    if (limit && err instanceof ApiError && err.code === "payload_too_large")
      throw new ApiError("payload_too_large", `${err.message} (${limit})`);
    throw err;
  }
}

async function read(request: Request, maxBytes: number): Promise<{ value: unknown; text: string }> {
  const header = request.headers.get("content-type");
  const { type, params } = mediaType(header ?? "application/json");
  if (!TYPES.has(type)) {
    throw new ApiError(
      "unsupported_media_type",
      `Content-Type must be application/json, text/plain or application/x-www-form-urlencoded, not ${clip(type, 60) || "empty"}`,
    );
  }
  const charset = params.get("charset")?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw new ApiError("unsupported_media_type", `the body must be UTF-8, not ${clip(charset, 60)}`);
  }
  const encoding = (request.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding !== "identity" && encoding !== "gzip") {
    throw new ApiError("unsupported_media_type", `Content-Encoding must be gzip or none, not ${clip(encoding, 60)}`);
  }
  const compression = new URL(request.url).searchParams.get("compression")?.toLowerCase();
  if (compression !== undefined && !COMPRESSIONS.has(compression)) {
    throw new ApiError(
      "unsupported_media_type",
      `compression must be gzip-js, gzip or base64, not ${clip(compression, 60)} (lz64 is not supported)`,
    );
  }
  if (Number(request.headers.get("content-length")) > maxBytes) {
    throw new ApiError("payload_too_large", `the body is larger than the ${maxBytes}-byte limit`);
  }
  const empty = () => new ApiError("bad_request", "the body is empty");
  if (!request.body) throw empty();

  let bytes = await readBytes(request.body, maxBytes, encoding === "gzip");
  if (encoding !== "gzip" && isGzip(bytes)) bytes = await inflate(bytes, maxBytes);
  else if (compression?.startsWith("gzip") && encoding !== "gzip") {
    throw new ApiError("bad_request", "the body is not valid gzip, as ?compression says it is");
  }
  if (bytes.byteLength === 0) throw empty();

  if (type === "application/x-www-form-urlencoded") {
    const text = parseText(bytes);
    // JSON sent with a form's type (curl -d's default) is read as JSON.
    const lead = text.trimStart()[0];
    if (lead === "{" || lead === "[") return parseJson(bytes);
    const form = new URLSearchParams(text);
    const data = form.get("data");
    if (data === null || data === "") throw new ApiError("bad_request", "a form body must carry the events as data=");
    const first = data.trimStart()[0];
    // The JSON itself, or base64 of it (posthog-js's ?compression=base64), itself perhaps gzip.
    if (compression !== "base64" && (first === "{" || first === "[")) return parseJson(new TextEncoder().encode(data));
    let decoded = fromBase64(data);
    if (isGzip(decoded)) decoded = await inflate(decoded, maxBytes);
    if (decoded.byteLength > maxBytes)
      throw new ApiError("payload_too_large", `the body is larger than the ${maxBytes}-byte limit`);
    return parseJson(decoded);
  }
  return parseJson(bytes);
}

function parseText(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("bad_request", "the body is not valid UTF-8");
  }
}
