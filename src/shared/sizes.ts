// Byte sizes and size-bounded grouping: what keeps queue messages and D1 statements under the platform limits.

/** UTF-8 byte length of a string, without allocating its encoding. */
export function utf8Length(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // 2 bytes below U+0800, 3 above; a surrogate pair is 4, 2 per half.
    if (c >= 0x80) bytes += c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 1 : 2;
  }
  return bytes;
}

/** Splits items into groups whose summed sizes stay under `max` (an item larger than `max` goes alone). */
export function packBySize<T>(items: T[], sizeOf: (item: T) => number, max: number, maxCount = Infinity): T[][] {
  const groups: T[][] = [];
  let group: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (group.length > 0 && (bytes + size > max || group.length >= maxCount)) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(item);
    bytes += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/**
 * The first `max` characters (code points) of a string, well-formed: what the error log keeps of a
 * client's label, whose length the client chose.
 */
export function clipChars(s: string, max = 150): string {
  if (s.length <= max) return s.toWellFormed();
  let end = 0;
  for (let n = 0; n < max && end < s.length; n++) {
    const c = s.charCodeAt(end);
    end += c >= 0xd800 && c <= 0xdbff && end + 1 < s.length ? 2 : 1;
  }
  return s.slice(0, end).toWellFormed();
}

/** Longest excerpt of a refused event kept in the error log. */
export const PAYLOAD_EXCERPT = 2048;

/** JSON text of whatever a client sent, cut to `max` characters (even if it cannot be serialized). */
export function excerpt(value: unknown, max = PAYLOAD_EXCERPT): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = "[not serializable: nested too deeply]";
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
