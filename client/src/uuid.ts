// Event ids: UUIDv7 (RFC 9562), given to each event when it is queued so that a resent batch is
// stored once. Written here rather than imported: 25 lines, no dependency, and the same code in
// browsers, Node ≥ 20 and Workers through crypto.getRandomValues (crypto.randomUUID is v4 only,
// and browsers offer it on secure origins only).

let lastMs = -1;
let counter = 0;

/**
 * A UUIDv7: 48 bits of Unix milliseconds, then a 12-bit counter (RFC 9562 §6.2, method 1) that
 * starts at a random value below 2048 each millisecond and counts up within it, then 62 random
 * bits. Ids made by one page or process sort in the order they were made, also within a
 * millisecond; when the counter runs out, the clock part moves on by one millisecond.
 */
export function uuidv7(now: number = Date.now()): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  if (now > lastMs) {
    lastMs = now;
    counter = ((bytes[6]! << 8) | bytes[7]!) & 0x7ff;
  } else if (++counter > 0xfff) {
    lastMs++;
    counter = 0;
  }
  let ms = lastMs;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
