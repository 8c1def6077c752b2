// What wrangler.toml ships, against what SECURITY.md promises of it: a revoked key stops working
// within 60 seconds. The Worker clamps KEY_CACHE_SECONDS to that bound (src/shared/config.ts), and
// the shipped value is within it, read the way wrangler reads the file.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { keyCacheMs, MAX_KEY_CACHE_SECONDS } from "../../src/shared/config";

const shipped = unstable_readConfig({ config: path.resolve(import.meta.dirname, "../../wrangler.toml") }).vars;

describe("KEY_CACHE_SECONDS", () => {
  it("ships at most 60 seconds, the revocation bound SECURITY.md states", () => {
    expect(MAX_KEY_CACHE_SECONDS).toBe(60);
    expect(typeof shipped.KEY_CACHE_SECONDS).toBe("string");
    expect(Number(shipped.KEY_CACHE_SECONDS)).toBeGreaterThanOrEqual(0);
    expect(Number(shipped.KEY_CACHE_SECONDS)).toBeLessThanOrEqual(60);
    expect(keyCacheMs(shipped)).toBe(Number(shipped.KEY_CACHE_SECONDS) * 1000);
  });

  it("is clamped to 60 seconds whatever the operator sets; 0 turns the cache off; unset or malformed is 60", () => {
    const ms = (value: string | undefined) => keyCacheMs({ KEY_CACHE_SECONDS: value });
    expect([ms("61"), ms("600"), ms("3600"), ms("1e9"), ms("Infinity")]).toEqual([
      60_000, 60_000, 60_000, 60_000, 60_000,
    ]);
    expect([ms("60"), ms("1"), ms("0.5"), ms("0")]).toEqual([60_000, 1_000, 500, 0]);
    expect([ms(undefined), ms(""), ms(" "), ms("-1"), ms("soon"), ms("NaN")]).toEqual(Array(6).fill(60_000));
  });
});
