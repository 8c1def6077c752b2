// Request bodies under the server's limits: events packed by count and by bytes.

/** UTF-8 byte length of a string, without encoding it. */
export function utf8Length(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // 2 bytes below U+0800, 3 above; a surrogate pair is 4, 2 per half.
    if (c >= 0x80) bytes += c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 1 : 2;
  }
  return bytes;
}

/** A queued event, serialized once when it is tracked. */
export interface Serialized {
  json: string;
  bytes: number;
}

/** The JSON array of some events: the body of one POST. */
export const bodyOf = (items: readonly Serialized[]) => `[${items.map((e) => e.json).join(",")}]`;

/** The byte size bodyOf(items) will have. */
export const bodyBytes = (items: readonly Serialized[]) => items.reduce((n, e) => n + e.bytes, 1 + items.length);

/**
 * The longest prefix of `items` that one body holds: at most `maxCount` events and `maxBytes`
 * bytes (brackets and commas counted). One event larger than `maxBytes` goes alone, for the
 * server to judge (it answers 413).
 */
export function takeBatch<T extends Serialized>(items: readonly T[], maxCount: number, maxBytes: number): T[] {
  let bytes = 2;
  let n = 0;
  while (n < items.length && n < maxCount) {
    const next = bytes + items[n]!.bytes + (n > 0 ? 1 : 0);
    if (n > 0 && next > maxBytes) break;
    bytes = next;
    n++;
  }
  return items.slice(0, n);
}
