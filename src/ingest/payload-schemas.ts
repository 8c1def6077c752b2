// Payload schemas at ingestion: each event type's JSON Schema (payload_schemas, written by the
// operator CLI), read from D1 once per application per PAYLOAD_SCHEMA_CACHE_SECONDS and kept
// compiled in the isolate. @cfworker/json-schema interprets schemas (Workers forbid eval), and
// the CLI refuses any schema it could not check in bounded time (scripts/payload-schema-rules.ts).
import { type Schema, type SchemaDraft, Validator } from "@cfworker/json-schema";
import { inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type PayloadSchemaRow, payloadSchemas } from "../db/schema";
import { BoundedCache } from "../shared/bounded-cache";
import { boundedCacheMs, perIsolate } from "../shared/config";
import type { FieldError } from "../shared/errors";

/** How long an isolate keeps an application's schemas before reading them again: the bound on a change taking effect. */
export const SCHEMA_TTL_MS = 60_000;

const DRAFT_OF: Record<string, SchemaDraft> = {
  "https://json-schema.org/draft/2020-12/schema": "2020-12",
  "https://json-schema.org/draft/2019-09/schema": "2019-09",
  "http://json-schema.org/draft-07/schema": "7",
  "http://json-schema.org/draft-07/schema#": "7",
};

/** One event type's check: the reason its data fails, or null when it passes. */
export type PayloadCheck = (category: string, name: string, data: unknown) => Omit<FieldError, "index"> | null;

export interface PayloadRules {
  /** How many event types have a schema for this application. */
  types: number;
  check: PayloadCheck;
  /** Stored schemas that would not compile (the CLI refuses them; one written by hand could): their types pass unchecked. */
  broken: string[];
}

type Row = Pick<PayloadSchemaRow, "category" | "name" | "appId" | "schema">;

const typeKey = (category: string, name: string) => `${category}\u0000${name}`;

/** The `field` a failing value sits at: `data` for the payload itself, `data/price` inside it. */
const fieldOf = (instanceLocation: string) => `data${instanceLocation.replace(/^#/, "")}`;

/** Compiles the rows of one application (its own schemas take precedence over those for every application). */
export function compile(rows: Row[]): PayloadRules {
  const validators = new Map<string, Validator>();
  const broken: string[] = [];
  for (const row of [...rows].sort((a, b) => (a.appId === "" ? 0 : 1) - (b.appId === "" ? 0 : 1))) {
    try {
      const schema = JSON.parse(row.schema) as Schema;
      const draft = DRAFT_OF[typeof schema.$schema === "string" ? schema.$schema : ""] ?? "2020-12";
      validators.set(typeKey(row.category, row.name), new Validator(schema, draft, true));
    } catch {
      broken.push(`${row.category}/${row.name}${row.appId ? ` (${row.appId})` : ""}`);
    }
  }
  const check: PayloadCheck = (category, name, data) => {
    const validator = validators.get(typeKey(category, name));
    if (validator === undefined) return null;
    const { valid, errors } = validator.validate(data);
    if (valid) return null;
    // The validator lists the enclosing keywords first (properties, allOf …), the failing one last.
    const last = errors[errors.length - 1]!;
    const field = fieldOf(last.instanceLocation);
    return {
      field,
      rule: last.keyword,
      message: `${field} does not match the schema of ${category}/${name}: ${last.error}`,
    };
  };
  return { types: validators.size, check, broken };
}

const NO_RULES: PayloadRules = { types: 0, check: () => null, broken: [] };
const cache = new BoundedCache<Promise<PayloadRules>>(1000);

/** Forgets every cached schema (tests). */
export const forgetPayloadSchemas = () => cache.clear();

/**
 * The payload rules of an application (null: events sent without one), from the isolate's cache
 * while fresh; concurrent requests share one D1 read. `ttlMs` 0 reads D1 every time.
 */
export function payloadRules(
  db: D1Database,
  app: string | null,
  ttlMs = SCHEMA_TTL_MS,
  onBroken: (types: string[]) => void = () => {},
): Promise<PayloadRules> {
  const key = app ?? "";
  const cached = ttlMs > 0 ? cache.get(key) : undefined;
  if (cached) return cached;
  const { category, name, appId, schema } = payloadSchemas;
  const loading = drizzle(db)
    .select({ category, name, appId, schema })
    .from(payloadSchemas)
    .where(inArray(appId, ["", key]))
    .then((rows) => {
      const rules = rows.length === 0 ? NO_RULES : compile(rows);
      if (rules.broken.length > 0) onBroken(rules.broken);
      return rules;
    });
  if (ttlMs > 0) {
    cache.set(key, loading, ttlMs);
    // A failed read is not remembered: the next request tries again.
    loading.catch(() => cache.delete(key));
  }
  return loading;
}

/**
 * PAYLOAD_SCHEMA_CACHE_SECONDS as milliseconds, clamped to 60 s (docs/payload-schemas.md: a schema
 * change applies within that bound): 0 turns the cache off; unset or malformed is 60 s.
 */
export function schemaTtlMs(env: { PAYLOAD_SCHEMA_CACHE_SECONDS?: unknown }): number {
  return boundedCacheMs(env.PAYLOAD_SCHEMA_CACHE_SECONDS, SCHEMA_TTL_MS / 1000);
}

export const schemaTtlOf = perIsolate(schemaTtlMs);
