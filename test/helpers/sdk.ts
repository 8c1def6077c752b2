// What the SDK route tests share: a POST as an SDK sends it (no Bearer unless given), gzip, Basic
// auth, the events of a session, and the error log's entries of a type.
import { api, bearer, DEV_READ_KEY, type EventPage, getJson } from "./api";

/** A POST to an SDK path with exactly these headers (api() would add the dev write key as Bearer). */
export function sdkPost(path: string, body: BodyInit | object, headers: Record<string, string> = {}) {
  return api(path, {
    method: "POST",
    headers: { authorization: "", "content-type": "application/json", ...headers },
    body: typeof body === "object" && !(body instanceof Uint8Array) ? JSON.stringify(body) : body,
  });
}

/** Segment's libraries' Authorization: the write key as the Basic user, no password. */
export const basic = (key: string) => ({ authorization: `Basic ${btoa(`${key}:`)}` });

export async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export const uid = (prefix: string) => `${prefix}-${crypto.randomUUID()}`;

/** Polls until a session holds `n` events (at least), then reads it again a moment later, so a late duplicate shows too. */
export async function sessionEvents(session: string, n: number, key = DEV_READ_KEY): Promise<EventPage["results"]> {
  const path = `/api/event/?session_id=${encodeURIComponent(session)}&limit=1000`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const page = await getJson(path, { headers: bearer(key) });
    if (page.results.length >= n) break;
    if (Date.now() > deadline) throw new Error(`session ${session}: ${page.results.length} of ${n} events`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1200));
  return (await getJson(path, { headers: bearer(key) })).results;
}

export interface ErrorEntry {
  kind: string;
  category: string | null;
  name: string | null;
  field: string | null;
  rule: string | null;
  payload: string;
  reasons: { index?: number; field: string | null; message: string; rule?: string }[];
}

/** Polls the error log until a query returns `n` entries. */
export async function errorEntries(query: string, n: number, key = DEV_READ_KEY): Promise<ErrorEntry[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const page = await getJson<{ count: number; results: ErrorEntry[] }>(`/api/errors/?${query}`, {
      headers: bearer(key),
    });
    if (page.count >= n) return page.results;
    if (Date.now() > deadline) throw new Error(`/api/errors/?${query}: ${page.count} of ${n} entries`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
