// Shared checks for the *.security.test.ts files that feed the Worker hostile input.
import { expect } from "vitest";
import { api, type EventPage, getJson, makeEvent, postEvents, waitForCount } from "./api";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The dev keys and the first bytes of their stored SHA-256 (scripts/dev-seed.sql). */
const KEY_MATERIAL = /eye_dev_(write|read)_key|777479dcc06f|b0259938f3a0|Bearer eye_/;
/** "    at fn (file.js:1:2)" frames, or any file:line:col position. */
const STACK = /(\\n|\n)\s*at\s|\bat\s+\S+\s+\(|\.(js|ts|mjs):\d+:\d+/;
/** What a database error or a leaked statement looks like. */
const SQL = /SQLITE_|D1_ERROR|\bselect\s.+\sfrom\s|\binsert\s+into\b|\bon conflict\b|sqlite_master/i;

/** No stack frame and no key material in any response; no SQL text unless the test sent it. */
export function expectNoLeak(text: string, { sqlAllowed = false } = {}) {
  expect(text, "stack trace in response").not.toMatch(STACK);
  expect(text, "key material in response").not.toMatch(KEY_MATERIAL);
  if (!sqlAllowed) expect(text, "SQL in response").not.toMatch(SQL);
}

export interface ErrorBody {
  success: false;
  code: string;
  message: string;
  request_id: string;
  errors?: { index?: number; field: string | null; message: string }[];
  [extra: string]: unknown;
}

/**
 * A clear JSON error: the status, `success: false`, the code, a message (plus field errors)
 * matching `names`, a request id equal to X-Request-Id, and nothing leaked.
 */
export async function expectError(res: Response, status: number, code: string, names?: RegExp): Promise<ErrorBody> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expectNoLeak(text);
  const body = JSON.parse(text) as ErrorBody;
  expect(body).toMatchObject({ success: false, code });
  expect(typeof body.message).toBe("string");
  expect(body.message.length).toBeGreaterThan(0);
  expect(body.message.length, "error messages stay short whatever was sent").toBeLessThan(500);
  expect(body.request_id).toMatch(UUID);
  expect(res.headers.get("x-request-id")).toBe(body.request_id);
  if (names) expect(`${body.message} ${JSON.stringify(body.errors ?? [])}`).toMatch(names);
  return body;
}

/** One refused event in a 400/202 body: its index, the field named, and a message naming the problem. */
export function expectFieldError(
  body: ErrorBody | { errors?: ErrorBody["errors"] },
  index: number,
  field: string | null,
  message: RegExp,
) {
  const mine = (body.errors ?? []).filter((e) => e.index === index);
  // Every field error also says which rule it broke (README: Payload schemas).
  expect(mine, JSON.stringify(body.errors)).toContainEqual({
    index,
    field,
    message: expect.stringMatching(message),
    rule: expect.stringMatching(/^[a-z_]+$/),
  });
}

/**
 * A client that gives each request an address of its own, so no request shares a write budget
 * (100 requests / 10 s per key and address) with another: not with other files' traffic, nor with
 * the other tests of its file, which run concurrently (where the running test's name, read from a
 * shared helper, could name another test). No hostile test relies on two requests sharing one.
 */
export function clientOf(file: string) {
  let serial = 0;
  const address = () => `hostile-${file}-${++serial}-${crypto.randomUUID()}`;
  /** Every POST answer, whatever its status, is checked for leaks before the test sees it. */
  const checked = async (res: Response) => {
    expectNoLeak(await res.clone().text());
    return res;
  };
  return {
    post: async (body: unknown, extra: Record<string, string> = {}) =>
      checked(await postEvents(body, { "cf-connecting-ip": address(), ...extra })),
    /** POSTs raw bytes or a string with exactly the headers given (plus the key and the client address). */
    raw: async (body: BodyInit | null, extra: Record<string, string> = {}) =>
      checked(await api("/api/event/", { method: "POST", headers: { "cf-connecting-ip": address(), ...extra }, body })),
    /** Posts a valid event first: whatever the hostile request does, this one must be stored. */
    sentinel: async (tag: string) => {
      const event = makeEvent({ session_id: `sentinel-${tag}-${crypto.randomUUID()}`, category: "hostile sentinel" });
      const res = await postEvents(event, { "cf-connecting-ip": address() });
      expect(res.status, await res.clone().text()).toBe(202);
      return event.session_id as string;
    },
  };
}

export const bySession = (sessionId: string, extra = "") =>
  `/api/event/?session_id=${encodeURIComponent(sessionId)}${extra}`;

/** Waits until the session holds exactly `count` events, and returns the raw response text as well. */
export async function stored(sessionId: string, count = 1): Promise<{ page: EventPage; text: string }> {
  await waitForCount(bySession(sessionId), count);
  const res = await api(bySession(sessionId, "&limit=1000"));
  const text = await res.text();
  expect(res.status, text).toBe(200);
  expectNoLeak(text, { sqlAllowed: true }); // stored labels may look like SQL
  return { page: JSON.parse(text) as EventPage, text };
}

export async function countOf(sessionId: string): Promise<number> {
  return (await getJson(bySession(sessionId))).count ?? -1;
}

/** Bytes of a string in UTF-8. */
export const utf8 = (s: string) => new TextEncoder().encode(s);

export const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};

/** gzip of the given parts, streamed through CompressionStream (parts may repeat one buffer). */
export async function gzip(parts: Iterable<Uint8Array>): Promise<Uint8Array> {
  const cs = new CompressionStream("gzip");
  const writer = cs.writable.getWriter();
  const done = new Response(cs.readable).arrayBuffer();
  for (const part of parts) await writer.write(part);
  await writer.close();
  return new Uint8Array(await done);
}
