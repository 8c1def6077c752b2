// Per-client keys for the rate limits: IPv4 as is, IPv6 by /64, mapped IPv4 as IPv4.
import { describe, expect, it } from "vitest";
import { BoundedCache } from "../../src/shared/bounded-cache";
import { clientKey } from "../../src/shared/client-address";

describe("clientKey", () => {
  it("keys IPv6 clients by their /64, however the address is written", () => {
    const same = [
      "2001:db8:1:2::1",
      "2001:0db8:0001:0002:ffff:ffff:ffff:ffff",
      "2001:DB8:1:2:0:0:0:0",
      "2001:db8:1:2::abcd:1%eth0",
    ];
    for (const address of same) expect(clientKey(address), address).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(clientKey("::1")).toBe("0:0:0:0::/64");
    expect(clientKey("fe80::")).toBe("fe80:0:0:0::/64");
    expect(clientKey("64:ff9b::192.0.2.33")).toBe("64:ff9b:0:0::/64");
  });

  it("keys IPv4 clients, and IPv4-mapped IPv6 addresses, by the IPv4 address", () => {
    expect(clientKey("192.0.2.7")).toBe("192.0.2.7");
    expect(clientKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(clientKey("::ffff:c000:207")).toBe("192.0.2.7");
  });

  it("takes anything else as is, clipped, and no address as local", () => {
    expect(clientKey(undefined)).toBe("local");
    expect(clientKey("  ")).toBe("local");
    expect(clientKey("test-client-1")).toBe("test-client-1");
    expect(clientKey("1:2:3")).toBe("1:2:3");
    expect(clientKey("1::2::3")).toBe("1::2::3");
    expect(clientKey("x".repeat(10_000))).toHaveLength(64);
  });
});

describe("BoundedCache", () => {
  it("holds at most its capacity, evicting the least recently used, and forgets expired entries", () => {
    const cache = new BoundedCache<number>(3);
    cache.set("a", 1, 1000, 0);
    cache.set("b", 2, 1000, 0);
    cache.set("c", 3, 1000, 0);
    expect(cache.get("a", 1)).toBe(1); // "a" is now the most recently used
    cache.set("d", 4, 1000, 1);
    expect(cache.size).toBe(3);
    expect(cache.get("b", 2)).toBeUndefined();
    expect(cache.get("a", 2)).toBe(1);
    expect(cache.get("d", 1001)).toBeUndefined();
  });
});
