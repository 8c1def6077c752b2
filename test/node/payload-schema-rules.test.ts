// What `npm run schemas` refuses to register (scripts/payload-schema-rules.ts): invalid schemas, and
// hostile ones whose checking would not be bounded — huge, deeply nested, $ref loops, references
// that blow up when inlined, catastrophic regexes, quadratic keywords. Under Node, where the clock
// advances during synchronous work, so the bounds on checking time are measured, not assumed.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { format, type Schema, Validator } from "@cfworker/json-schema";
import { describe, expect, it } from "vitest";
import {
  MAX_EXPANDED_SUBSCHEMAS,
  MAX_SCHEMA_BYTES,
  SAFE_FORMATS,
  schemaProblems,
} from "../../scripts/payload-schema-rules";
import { compile } from "../../src/ingest/payload-schemas";
import { cpuTime, described, growth } from "../helpers/timing";

const problems = (schema: unknown) => schemaProblems(typeof schema === "string" ? schema : JSON.stringify(schema));

/** A chain of definitions, each referencing the next twice: 2^levels subschemas once inlined. */
const doubling = (levels: number) => ({
  $defs: Object.fromEntries(
    Array.from({ length: levels }, (_, i) => [
      `d${i}`,
      i === levels - 1 ? { type: "number" } : { allOf: [{ $ref: `#/$defs/d${i + 1}` }, { $ref: `#/$defs/d${i + 1}` }] },
    ]),
  ),
  properties: { x: { $ref: "#/$defs/d0" } },
});

describe("registering a payload schema", () => {
  it("accepts ordinary schemas: types, bounds, anchored patterns, formats, local $refs, drafts 2020-12, 2019-09 and 7", () => {
    expect(
      problems({
        type: "object",
        required: ["price"],
        properties: { price: { type: "number", minimum: 0 }, sku: { type: "string", pattern: "^[A-Z]{3}-[0-9]+$" } },
      }),
    ).toEqual([]);
    expect(
      problems({
        $defs: { money: { type: "number", multipleOf: 0.01 } },
        properties: { total: { $ref: "#/$defs/money" }, email: { type: "string", format: "email" } },
        additionalProperties: false,
      }),
    ).toEqual([]);
    expect(
      problems({
        $schema: "http://json-schema.org/draft-07/schema#",
        definitions: { n: { type: "integer" } },
        properties: { n: { $ref: "#/definitions/n" } },
      }),
    ).toEqual([]);
    expect(
      problems({
        $schema: "https://json-schema.org/draft/2019-09/schema",
        properties: { tags: { type: "array", items: { type: "string", maxLength: 30 }, maxItems: 10 } },
      }),
    ).toEqual([]);
    expect(
      problems({
        if: { required: ["a"] },
        // biome-ignore lint/suspicious/noThenProperty: JSON Schema's own keyword
        then: { required: ["b"] },
        patternProperties: { "^x-[a-z]+$": { type: "string" } },
      }),
    ).toEqual([]);
  });

  it("refuses what is not a schema of an object, naming where", () => {
    expect(problems("{nope")).toEqual([expect.stringMatching(/^the schema is not JSON/)]);
    expect(problems([])).toEqual([expect.stringMatching(/must be a JSON object/)]);
    expect(problems({ type: "string" })).toEqual([expect.stringMatching(/#\/type must be "object"/)]);
    expect(problems({ properties: { a: { type: "float" } } })).toEqual([
      expect.stringMatching(/^#\/properties\/a\/type must be one of/),
    ]);
    expect(problems({ properties: { a: { minimum: "3" } } })).toEqual(["#/properties/a/minimum must be a number"]);
    expect(problems({ properties: { a: 3 } })).toEqual(["#/properties/a must be a schema (an object or a boolean)"]);
    expect(problems({ required: "a" })).toEqual(["#/required must be a list of property names"]);
    expect(problems({ $schema: "http://json-schema.org/draft-04/schema#" })).toEqual([
      expect.stringMatching(/^#\/\$schema must be one of/),
    ]);
  });

  it("refuses an unknown keyword, since a misspelt one would check nothing", () => {
    expect(problems({ properties: { price: { minimun: 0 } } })).toEqual([
      expect.stringMatching(/^#\/properties\/price\/minimun is not a keyword the validator knows/),
    ]);
  });

  it("refuses a schema larger than MAX_SCHEMA_BYTES and one nested deeper than 16 levels", () => {
    expect(problems({ description: "x".repeat(MAX_SCHEMA_BYTES) })).toEqual([
      `the schema is larger than ${MAX_SCHEMA_BYTES} bytes`,
    ]);
    const deep = JSON.parse(`${'{"properties":{"a":'.repeat(20)}{}${"}}".repeat(20)}`);
    expect(problems(deep)).toEqual([expect.stringMatching(/nests deeper than 16 schema levels$/)]);
    // Deep enough to overflow a recursive reader: still an answer, not a crash.
    const deeper = `${'{"not":'.repeat(100_000)}{}${"}".repeat(100_000)}`;
    expect(problems(deeper).join()).toMatch(/larger than|deeper than/);
  });

  it("refuses $ref loops, direct or through definitions, and recursive schemas even when they descend into the value", () => {
    expect(problems({ $ref: "#" })).toEqual([expect.stringMatching(/\$ref loop/)]);
    expect(
      problems({
        $defs: { a: { allOf: [{ $ref: "#/$defs/b" }] }, b: { anyOf: [{ $ref: "#/$defs/a" }] } },
        properties: { x: { $ref: "#/$defs/a" } },
      }),
    ).toEqual([expect.stringMatching(/\$ref loop/)]);
    expect(problems({ properties: { children: { type: "array", items: { $ref: "#" } } } })).toEqual([
      expect.stringMatching(/\$ref loop/),
    ]);
    expect(problems({ properties: { x: { $recursiveRef: "#" } } })).toEqual([
      expect.stringMatching(/recursive schemas are refused/),
    ]);
    expect(problems({ properties: { x: { $dynamicRef: "#meta" } } })).toEqual([
      expect.stringMatching(/recursive schemas are refused/),
    ]);
  });

  it("refuses references that multiply when inlined beyond MAX_EXPANDED_SUBSCHEMAS, and remote or dangling references", () => {
    expect(problems(doubling(5))).toEqual([]); // 2^4 leaves: fine
    expect(problems(doubling(40))).toEqual([
      `the schema expands to more than ${MAX_EXPANDED_SUBSCHEMAS} subschemas once its $refs are inlined`,
    ]);
    expect(problems({ properties: { a: { $ref: "https://example.com/schema.json" } } })).toEqual([
      expect.stringMatching(/remote references are not fetched/),
    ]);
    expect(problems({ properties: { a: { $ref: "#/$defs/missing" } } })).toEqual([
      expect.stringMatching(/points at no schema/),
    ]);
    expect(problems({ properties: { a: { $ref: "#/properties" } } })).toEqual([
      expect.stringMatching(/points at no schema/),
    ]);
  });

  it("refuses patterns that backtrack catastrophically, in pattern and in patternProperties keys, and patterns that do not compile", () => {
    for (const p of ["^(a+)+$", "^(a|a)*$", "^([a-z0-9]+\\.)*[a-z]+$", "^(\\w+\\s?)*$"]) {
      expect(problems({ properties: { s: { type: "string", pattern: p } } })).toEqual([
        expect.stringMatching(/pattern can backtrack without bound/),
      ]);
    }
    expect(problems({ patternProperties: { "^(a+)+$": {} } })).toEqual([
      expect.stringMatching(/patternProperties key "\^\(a\+\)\+\$" can backtrack/),
    ]);
    expect(problems({ properties: { s: { pattern: "([" } } })).toEqual([
      expect.stringMatching(/is not a valid regular expression/),
    ]);
  });

  it("refuses what would make the Worker's own check exponential: 4 more characters, about 16× the time", async () => {
    // The Worker's check (src/ingest/payload-schemas.ts) given what the CLI refuses, as a schema
    // written by hand into D1 would reach it, against what the CLI accepts.
    const checkWith = (pattern: string) => {
      const schema = JSON.stringify({ properties: { s: { type: "string", pattern } } });
      const { check } = compile([{ category: "c", name: "n", appId: "", schema }]);
      return (chars: number) => check("c", "n", { s: `${"a".repeat(chars)}!` });
    };
    expect(problems({ properties: { s: { type: "string", pattern: "^(a+)+$" } } })).not.toEqual([]);
    expect(problems({ properties: { s: { type: "string", pattern: "^a+$" } } })).toEqual([]);
    const refused = await growth(checkWith("^(a+)+$"), [19, 23], { repeats: 3, clock: cpuTime });
    expect(refused.ratio, described(refused)).toBeGreaterThan(4);
    // What it accepts stays linear, also on strings 10,000 times as long: 4× the string, about 4× the time.
    const accepted = await growth(checkWith("^a+$"), [50_000, 200_000], { clock: cpuTime });
    expect(accepted.ratio, described(accepted)).toBeLessThan(8);
  }, 30_000);

  it("refuses uniqueItems, which the validator checks pair by pair with an error per equal pair", () => {
    expect(problems({ properties: { tags: { type: "array", uniqueItems: true, maxItems: 10 } } })).toEqual([
      expect.stringMatching(/uniqueItems is not supported/),
    ]);
  });

  it("allows only formats whose check stays linear on a hostile 32 KiB string", async () => {
    const hostile = (n: number) => [
      "a".repeat(n),
      `${"a-".repeat(n / 2)}!`,
      `http://${"a".repeat(n)}`,
      `${"1".repeat(n)}@x`,
      `a@${"a.".repeat(n / 2)}`,
      "0".repeat(n),
    ];
    const inputs = new Map([32_000, 128_000].map((n) => [n, hostile(n)]));
    for (const name of SAFE_FORMATS) {
      const check = (format as Record<string, (s: string) => boolean>)[name]!;
      // 4× the strings: about 4× the time when linear, 16× when quadratic (ten rounds, to time more than the clock's grain).
      const g = await growth(
        (n) => {
          for (let round = 0; round < 10; round++) for (const s of inputs.get(n)!) check(s);
        },
        [32_000, 128_000],
        { clock: cpuTime },
      );
      expect(g.ratio, `${name}: ${described(g)}`).toBeLessThan(8);
    }
    expect(problems({ properties: { u: { format: "url" } } })).toEqual([
      expect.stringMatching(/format must be one of/),
    ]);
  }, 30_000);

  it("bounds the checking of the costliest schema it accepts against the costliest 32 KiB payload", async () => {
    // anyOf branches that each walk the whole array before failing on its last item: the
    // largest such schema under MAX_EXPANDED_SUBSCHEMAS.
    const branches = Math.floor((MAX_EXPANDED_SUBSCHEMAS - 2) / 2);
    const schema = {
      type: "object",
      properties: {
        a: {
          anyOf: Array.from({ length: branches }, (_, i) => ({ type: "array", items: { type: "number", maximum: i } })),
        },
      },
    };
    expect(problems(schema)).toEqual([]);
    const payload = (items: number) => ({ a: [...Array.from({ length: items }, () => 0), 1e9] });
    // The costliest payload: 16,000 numbers are as many as 32 KiB of data can hold.
    expect(JSON.stringify(payload(16_000)).length).toBeLessThanOrEqual(32 * 1024);
    const validator = new Validator(schema as Schema, "2020-12", true);
    expect(validator.validate(payload(16_000)).valid).toBe(false);
    // Linear in the payload, which the data limit caps: 4× the items, about 4× the time (≈110–130 ms
    // at 16,000 measured here; a typical schema takes ≈7 µs per event).
    const inputs = new Map([4_000, 16_000].map((n) => [n, payload(n)]));
    const g = await growth((n) => validator.validate(inputs.get(n)), [4_000, 16_000], { repeats: 3, clock: cpuTime });
    expect(g.ratio, described(g)).toBeLessThan(8);
  }, 60_000);

  it("is what `npm run schemas -- check` applies: exit 1 with the reasons, exit 0 when fine", () => {
    const dir = tmpdir();
    const bad = path.join(dir, `bad-${process.pid}.json`);
    const good = path.join(dir, `good-${process.pid}.json`);
    writeFileSync(bad, JSON.stringify({ properties: { s: { pattern: "^(a+)+$" } } }));
    writeFileSync(good, JSON.stringify({ properties: { s: { type: "string" } } }));
    const cli = (file: string) =>
      execFileSync(process.execPath, ["scripts/schemas.mjs", "check", file], { encoding: "utf8", stdio: "pipe" });
    expect(cli(good)).toMatch(/can be registered/);
    expect(() => cli(bad)).toThrow(/the schema is refused:\n\s+#\/properties\/s\/pattern can backtrack/);
  });
});
