// wrangler.toml's two environments, as wrangler resolves them. Wrangler inherits main, the cron and
// observability into [env.staging] but no binding, var or queue: staging repeats them by hand. This
// keeps the copy honest: the same bindings and settings as production, its own resources (named
// "the-eye-staging…"), its own rate-limit namespaces, and each environment's consumer able to tell its
// dead letters (DEAD_LETTER_QUEUE) from its events.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";

/** What this test reads of wrangler's resolved config (its own type does not resolve under this tsconfig). */
interface Resolved {
  name: string;
  main: string;
  triggers: unknown;
  observability?: { enabled?: boolean };
  assets: unknown;
  vars: Record<string, unknown>;
  d1_databases: { binding: string; database_name?: string; database_id?: string }[];
  r2_buckets: { binding: string; bucket_name?: string }[];
  ratelimits: { name: string; namespace_id: string; simple: unknown }[];
  queues: {
    producers?: { binding: string; queue: string }[];
    consumers?: { queue: string; dead_letter_queue?: string; max_concurrency?: number; retry_delay?: number }[];
  };
}

const config = path.resolve(import.meta.dirname, "../../wrangler.toml");
const read = (env: string) =>
  unstable_readConfig({ config, env: env || undefined }, { hideWarnings: true }) as unknown as Resolved;
const production = read("");
const staging = read("staging");
/** A production resource's name as staging's must be. */
const staged = (name: string | undefined) => name?.replace(/^the-eye/, "the-eye-staging");

describe("wrangler.toml: staging beside production", () => {
  it("deploys its own Worker with what it inherits: code, cron, observability", () => {
    expect(production.name).toBe("the-eye");
    expect(staging.name).toBe("the-eye-staging");
    expect(staging.main).toBe(production.main);
    expect(staging.triggers).toEqual(production.triggers);
    expect(production.observability?.enabled).toBe(true);
    expect(staging.observability).toEqual(production.observability);
    expect(staging.assets).toEqual(production.assets);
  });

  it("has every binding production has, under the same name, on its own resources", () => {
    const d1 = (c: Resolved) => c.d1_databases.map((d) => ({ ...d, database_id: undefined }));
    expect(d1(staging)).toEqual(d1(production).map((d) => ({ ...d, database_name: staged(d.database_name) })));
    for (const c of [production, staging]) for (const d of c.d1_databases) expect(d.database_id).toBeUndefined();
    expect(staging.r2_buckets).toEqual(
      production.r2_buckets.map((b) => ({ ...b, bucket_name: staged(b.bucket_name) })),
    );
    expect(staging.queues.producers).toEqual(
      production.queues.producers?.map((p) => ({ ...p, queue: staged(p.queue) })),
    );
  });

  it("consumes its own queues with production's settings", () => {
    expect(staging.queues.consumers).toEqual(
      production.queues.consumers?.map((c) => ({
        ...c,
        queue: staged(c.queue),
        ...(c.dead_letter_queue ? { dead_letter_queue: staged(c.dead_letter_queue) } : {}),
      })),
    );
    for (const c of [production, staging])
      for (const consumer of c.queues.consumers ?? []) {
        // Bounded against D1's one writer: without it a backlog scales to 250 consumers.
        expect(consumer.max_concurrency).toBeGreaterThan(0);
        expect(consumer.retry_delay).toBeGreaterThan(0);
      }
  });

  it("tells its dead letters from its events by its own DEAD_LETTER_QUEUE", () => {
    for (const c of [production, staging]) {
      const events = c.queues.producers?.find((p) => p.binding === "EVENTS_QUEUE")?.queue;
      const consumer = c.queues.consumers?.find((q) => q.queue === events);
      expect(consumer?.dead_letter_queue).toBeDefined();
      expect(c.vars.DEAD_LETTER_QUEUE).toBe(consumer?.dead_letter_queue);
      expect(c.queues.producers?.find((p) => p.binding === "DEAD_LETTERS")?.queue).toBe(consumer?.dead_letter_queue);
      expect(c.queues.consumers?.some((q) => q.queue === consumer?.dead_letter_queue)).toBe(true);
    }
  });

  it("has production's vars but its own ENVIRONMENT and DEAD_LETTER_QUEUE", () => {
    const { ENVIRONMENT, DEAD_LETTER_QUEUE, ...rest } = production.vars;
    expect(ENVIRONMENT).toBe("production");
    expect(staging.vars).toEqual({
      ...rest,
      ENVIRONMENT: "staging",
      DEAD_LETTER_QUEUE: staged(String(DEAD_LETTER_QUEUE)),
    });
  });

  it("limits as production does, in rate-limit namespaces of its own (they are account-wide)", () => {
    const limits = (c: Resolved) => c.ratelimits.map(({ name, simple }) => ({ name, simple }));
    expect(limits(staging)).toEqual(limits(production));
    const ids = [...production.ratelimits, ...staging.ratelimits].map((r) => r.namespace_id);
    expect(new Set(ids).size).toBe(ids.length);
    // Not the documentation's examples, which other projects on the account may have copied.
    for (const id of ids) expect(Number(id)).toBeGreaterThan(100_000);
  });
});
