// Reading a POST body safely: size cap before and after gzip, strict UTF-8, then JSON.
import { ApiError } from "./errors";

const ACCEPTED_TYPES = new Set(["application/json", "text/plain"]);

/** Reads the whole stream, refusing it as soon as it passes `max` bytes. */
async function readCapped(stream: ReadableStream<Uint8Array>, max: number, what: string): Promise<Uint8Array> {
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

/**
 * The request's JSON value. `application/json` or `text/plain` (what `sendBeacon` sends),
 * optionally gzip-encoded; at most `maxBytes` both on the wire and once inflated, so a
 * gzip bomb is stopped after `maxBytes` of output, not after inflating it all.
 */
export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  const type = (request.headers.get("content-type") ?? "application/json").split(";")[0]!.trim().toLowerCase();
  if (!ACCEPTED_TYPES.has(type)) {
    throw new ApiError("unsupported_media_type", `Content-Type must be application/json or text/plain, not ${type || "empty"}`);
  }
  const charset = /charset=([^;]+)/i.exec(request.headers.get("content-type") ?? "")?.[1]?.trim().toLowerCase();
  if (charset && charset !== "utf-8" && charset !== "utf8") {
    throw new ApiError("unsupported_media_type", `the body must be UTF-8, not ${charset}`);
  }
  const encoding = (request.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding !== "identity" && encoding !== "gzip") {
    throw new ApiError("unsupported_media_type", `Content-Encoding must be gzip or none, not ${encoding}`);
  }
  const declared = Number(request.headers.get("content-length"));
  if (declared > maxBytes) {
    throw new ApiError("payload_too_large", `the body is larger than the ${maxBytes}-byte limit`);
  }
  if (!request.body) throw new ApiError("bad_request", "the body is empty: send an event object or an array of events");

  let bytes: Uint8Array;
  try {
    const wire = request.body;
    bytes =
      encoding === "gzip"
        ? await readCapped(wire.pipeThrough(new DecompressionStream("gzip")), maxBytes, "the inflated body")
        : await readCapped(wire, maxBytes, "the body");
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError("bad_request", "the body is not valid gzip", { cause: err });
  }
  if (bytes.byteLength === 0) {
    throw new ApiError("bad_request", "the body is empty: send an event object or an array of events");
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("bad_request", "the body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError("bad_request", `the body is not valid JSON: ${(err as Error).message}`);
  }
}
