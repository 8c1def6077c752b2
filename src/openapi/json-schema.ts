// zod → JSON Schema, with the annotations every document that speaks of our schemas shares: the
// OpenAPI document (npm run openapi) and the client's generated types (client/scripts/generate.mjs).
import * as z from "zod/mini";
import { MAX_DATA_DEPTH } from "../ingest/validate";
import { type Limits, limitsFrom, storageFrom } from "../shared/config";
import { eventId, eventInput, label } from "../shared/schemas";

export type JsonSchema = Record<string, unknown>;

/** The limits the document states; they come from wrangler.toml [vars], as the routes read them. */
export interface DocLimits extends Limits {
  exportMaxDays: number;
}

export const docLimits = (env: Partial<Record<keyof Env, unknown>>): DocLimits => ({
  ...limitsFrom(env),
  exportMaxDays: storageFrom(env).exportMaxDays,
});

/**
 * What JSON Schema cannot read from a schema (a custom check, a refinement), said here by the
 * schema's identity. test/unit/openapi.test.ts proves each claim against the validator itself.
 */
function annotations(limits: DocLimits): Map<unknown, JsonSchema> {
  return new Map<unknown, JsonSchema>([
    [
      label,
      {
        minLength: 1,
        maxLength: 150,
        description: "1–150 characters (JSON Schema counts code points, as the server does), well-formed Unicode",
      },
    ],
    [
      eventInput.shape.data,
      {
        type: "object",
        description:
          `any JSON object ({} too): at most ${limits.maxDataBytes} bytes serialized, nested at most ${MAX_DATA_DEPTH} levels, ` +
          "no key twice in one object, numbers a double holds exactly (send others as strings)",
      },
    ],
    [
      eventInput.shape.timestamp,
      {
        description:
          "`YYYY-MM-DD HH:MM[:SS[.f…]]` or ISO 8601 with `T`; optional `Z` or `±HH:MM` (none means UTC); up to 9 fraction digits, kept to the " +
          `microsecond; from 1684-07-28T00:12:25.259009Z to ${limits.maxFutureMicros / 1_000_000} s after the server receives it`,
        examples: ["2021-01-01 09:15:27.243860", "2021-01-01T09:15:27Z"],
      },
    ],
    [
      eventInput.shape.event_id,
      {
        description:
          "optional; when absent the server derives one from the event's content, so a retried request stores nothing twice",
      },
    ],
    [eventId, { format: "uuid" }],
  ]);
}

/** A regex with the `i` flag as a JSON Schema pattern, which has no flags: its letter ranges in both cases. */
const caseless = (source: string) =>
  source.replace(/([a-z])-([a-z])/g, (_, a: string, b: string) => `${a}-${b}${a.toUpperCase()}-${b.toUpperCase()}`);

/** z.int()'s bounds (the safe integers), which every integer here has and no reader needs told. */
const SAFE = [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];

/** The JSON Schema options every conversion uses: what goes on the wire (input), annotated. */
export function conversion(limits: DocLimits) {
  const notes = annotations(limits);
  return {
    io: "input" as const,
    // A custom check has no JSON Schema ("any" gives `{}`); the override fills it in, or refuses.
    unrepresentable: "any" as const,
    override(ctx: { zodSchema: unknown; jsonSchema: JsonSchema; path: (string | number)[] }) {
      const zod = (
        ctx.zodSchema as { _zod: { def: { type: string; checks?: { _zod: { def: { pattern?: unknown } } }[] } } }
      )._zod;
      const json = ctx.jsonSchema;
      for (const check of zod.def.checks ?? []) {
        const { pattern } = check._zod.def;
        if (pattern instanceof RegExp && pattern.flags.includes("i") && json.pattern === pattern.source)
          json.pattern = caseless(pattern.source);
      }
      if (json.type === "integer" && json.minimum === SAFE[0] && json.maximum === SAFE[1]) {
        delete json.minimum;
        delete json.maximum;
      }
      const note = notes.get(ctx.zodSchema);
      if (note) Object.assign(json, note);
      else if (zod.def.type === "custom")
        throw new Error(
          `a z.custom at ${ctx.path.join("/") || "the root"} has no JSON Schema: say what it accepts in annotations() (src/openapi/json-schema.ts)`,
        );
    },
  };
}

/**
 * Named schemas as JSON Schema, each referring to the others (by `$ref: uri(name)`) where one
 * holds another: the document's components.schemas, the client's generated types. No $schema
 * and no $id: the reader's dialect and names apply.
 */
export function namedJsonSchemas(
  named: Record<string, z.ZodMiniType>,
  limits: DocLimits,
  uri: (name: string) => string,
): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { ...conversion(limits), uri }) as {
    schemas: Record<string, JsonSchema>;
  };
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _, $id: __, ...json }]) => [id, json]));
}

/** One schema as JSON Schema, as the document writes it (no $schema: the document's dialect applies). */
export function jsonSchemaOf(schema: z.ZodMiniType, limits: DocLimits): JsonSchema {
  const { $schema: _, ...json } = z.toJSONSchema(schema, conversion(limits)) as JsonSchema;
  return json;
}
