// What wrangler.toml ships, against what SECURITY.md promises of it: a revoked key stops working
// within 60 seconds. The Worker clamps KEY_CACHE_SECONDS to that bound (src/shared/config.ts), and
// the shipped value is within it, read the way wrangler reads the file. And which paths go to the
// Worker first, past the static assets: all of its routes, none of public/'s files.
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { createApp } from "../../src/app";
import { SCHEMA_TTL_MS, schemaTtlMs } from "../../src/ingest/payload-schemas";
import { keyCacheMs, keyCacheMsOf, limitsOf, MAX_KEY_CACHE_SECONDS, perIsolate } from "../../src/shared/config";

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

describe("PAYLOAD_SCHEMA_CACHE_SECONDS", () => {
  it("ships at most 60 seconds, the bound docs/payload-schemas.md gives a schema change", () => {
    expect(SCHEMA_TTL_MS).toBe(60_000);
    expect(typeof shipped.PAYLOAD_SCHEMA_CACHE_SECONDS).toBe("string");
    expect(Number(shipped.PAYLOAD_SCHEMA_CACHE_SECONDS)).toBeGreaterThanOrEqual(0);
    expect(Number(shipped.PAYLOAD_SCHEMA_CACHE_SECONDS)).toBeLessThanOrEqual(60);
    expect(schemaTtlMs(shipped)).toBe(Number(shipped.PAYLOAD_SCHEMA_CACHE_SECONDS) * 1000);
  });

  it("is clamped to 60 seconds whatever the operator sets; 0 turns the cache off; unset or malformed is 60", () => {
    const ms = (value: string | undefined) => schemaTtlMs({ PAYLOAD_SCHEMA_CACHE_SECONDS: value });
    expect([ms("61"), ms("86400"), ms("1e9"), ms("Infinity")]).toEqual([60_000, 60_000, 60_000, 60_000]);
    expect([ms("60"), ms("2"), ms("0.5"), ms("0")]).toEqual([60_000, 2_000, 500, 0]);
    expect([ms(undefined), ms(""), ms(" "), ms("-1"), ms("later")]).toEqual(Array(5).fill(60_000));
  });
});

describe("perIsolate", () => {
  it("reads an env once, and an altered copy of it again", () => {
    let reads = 0;
    const ttl = perIsolate((env: { KEY_CACHE_SECONDS?: string }) => {
      reads++;
      return keyCacheMs(env);
    });
    const env = { KEY_CACHE_SECONDS: "5" };
    expect([ttl(env), ttl(env), ttl(env)]).toEqual([5_000, 5_000, 5_000]);
    expect(reads).toBe(1);
    expect(ttl({ ...env, KEY_CACHE_SECONDS: "0" })).toBe(0);
    expect(reads).toBe(2);
    expect(keyCacheMsOf({ KEY_CACHE_SECONDS: "7" })).toBe(7_000);
    expect(limitsOf({ MAX_EVENTS_PER_REQUEST: "2" }).maxEventsPerRequest).toBe(2);
    expect(limitsOf({}).maxEventsPerRequest).toBe(500);
  });
});

// The router of Workers static assets: a path matching a "!" rule of run_worker_first is the assets';
// one matching any other rule goes to the Worker without the assets service looking it up. A rule's
// `*` matches anything, slashes too (workers-shared's generateGlobOnlyRuleRegExp).
const assets = unstable_readConfig({ config: path.resolve(import.meta.dirname, "../../wrangler.toml") }).assets;
const rules: string[] = Array.isArray(assets?.run_worker_first) ? assets.run_worker_first : [];
const glob = (rule: string) =>
  new RegExp(
    `^${rule
      .split("*")
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
const toAssets = rules.filter((r) => r.startsWith("!")).map((r) => glob(r.slice(1)));
const toWorker = rules.filter((r) => !r.startsWith("!")).map(glob);
const route = (pathname: string) =>
  toAssets.some((r) => r.test(pathname)) ? "assets" : toWorker.some((r) => r.test(pathname)) ? "worker" : "lookup";

describe("run_worker_first", () => {
  it("sends every file under public/ to the assets, index pages by their directory too", () => {
    const dir = path.resolve(import.meta.dirname, "../../public");
    const served = readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile() && !["README.md", ".assetsignore", "_headers"].includes(f.name))
      .map((f) => `/${path.relative(dir, path.join(f.parentPath, f.name)).split(path.sep).join("/")}`);
    expect(served).toContain("/explorer/index.html");
    const paths = served.flatMap((p) => (p.endsWith("/index.html") ? [p, p.slice(0, -10), p.slice(0, -11)] : [p]));
    expect(paths.filter((p) => route(p) !== "assets")).toEqual([]);
  });

  it("sends every route of the Worker to the Worker, without a lookup", () => {
    const paths = [
      ...new Set(
        createApp()
          .routes.filter((r) => r.method !== "ALL")
          .map((r) => r.path),
      ),
    ].map((p) => p.replace(/:[^/]+/g, "x"));
    expect(paths).toContain("/api/event");
    expect(paths).toContain("/v1/batch");
    const misrouted = paths.flatMap((p) => [p, `${p}/`]).filter((p) => route(p) !== "worker");
    expect(misrouted).toEqual([]);
    expect(route("/no/such/path")).toBe("worker");
  });
});
