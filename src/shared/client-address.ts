// Who a client is, for per-client limits: its address as Cloudflare reports it, with IPv6
// clients keyed by their /64 (one subscriber's allocation, inside which a client can pick any
// address it likes, so a per-address limit on IPv6 would limit nothing).

/** Longest header value taken as an address: Cloudflare's are short; anything longer is clipped. */
const MAX_ADDRESS = 64;

/** Expands an IPv6 address to its eight 16-bit groups, or null when it is not one. */
function ipv6Groups(address: string): number[] | null {
  let text = address.replace(/%.*$/, ""); // a zone id (fe80::1%eth0) names a local interface
  // An embedded IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) is the last two groups.
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const octets = v4.slice(1).map(Number);
    if (octets.some((o) => o > 255)) return null;
    text = `${text.slice(0, v4.index)}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === "" ? [] : part.split(":"));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return null;
  return groups.map((g) => parseInt(g, 16));
}

/**
 * The key a per-client limit counts under: an IPv4 address as is, an IPv6 address as its /64
 * (`2001:db8:1:2::/64`), an IPv4-mapped IPv6 address as its IPv4 address. Anything else (a
 * local test label) is taken as is, clipped. No address (local development) is "local".
 */
export function clientKey(address: string | null | undefined): string {
  const text = (address ?? "").trim().slice(0, MAX_ADDRESS);
  if (text === "") return "local";
  if (!text.includes(":")) return text;
  const groups = ipv6Groups(text);
  if (!groups) return text;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join(".");
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}
