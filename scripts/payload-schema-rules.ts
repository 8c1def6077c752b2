// What a payload schema must be before the operator CLI stores it: valid JSON Schema that the
// Worker's validator (@cfworker/json-schema, an interpreter: no eval) checks in bounded time.
// Runs under Node (the CLI, the tests), never in the Worker: the regex analysis can take a second.
// Self-contained (no relative imports), so Node runs it as TypeScript without a build step.
import { dereference } from "@cfworker/json-schema";
import { isSafePattern } from "redos-detector";

/** Largest schema text accepted, in UTF-8 bytes. */
export const MAX_SCHEMA_BYTES = 16 * 1024;
/** Deepest nesting of schema objects. */
export const MAX_SCHEMA_DEPTH = 16;
/** Most subschemas the validator can visit for one value, with every $ref inlined. */
export const MAX_EXPANDED_SUBSCHEMAS = 64;

/** `$schema` values accepted; none means 2020-12. */
export const DRAFTS: Record<string, "2020-12" | "2019-09" | "7"> = {
  "https://json-schema.org/draft/2020-12/schema": "2020-12",
  "https://json-schema.org/draft/2019-09/schema": "2019-09",
  "http://json-schema.org/draft-07/schema": "7",
  "http://json-schema.org/draft-07/schema#": "7",
};

/** The formats the validator checks in linear time on any string (test/node/payload-schema-rules.test.ts measures them). */
export const SAFE_FORMATS = new Set([
  "date",
  "time",
  "date-time",
  "duration",
  "uri",
  "uri-reference",
  "email",
  "hostname",
  "ipv4",
  "ipv6",
  "uuid",
  "json-pointer",
  "relative-json-pointer",
]);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type SchemaObject = { [key: string]: Json };

// Keywords by what their value is. Anything else is refused: a misspelt keyword would otherwise
// validate nothing, silently.
const SUBSCHEMA = new Set([
  "not",
  "if",
  "then",
  "else",
  "additionalProperties",
  "unevaluatedProperties",
  "propertyNames",
  "additionalItems",
  "unevaluatedItems",
  "contains",
]);
const SUBSCHEMA_LIST = new Set(["allOf", "anyOf", "oneOf", "prefixItems"]);
const SUBSCHEMA_MAP = new Set(["properties", "patternProperties", "dependentSchemas", "$defs", "definitions"]);
const COUNT = new Set([
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "minContains",
  "maxContains",
]);
const NUMBER = new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]);
const ANNOTATION = new Set([
  "$schema",
  "$id",
  "$comment",
  "title",
  "description",
  "default",
  "examples",
  "readOnly",
  "writeOnly",
  "deprecated",
  "contentMediaType",
  "contentEncoding",
  "const",
  "enum",
]);
const TYPES = new Set(["null", "boolean", "object", "array", "number", "integer", "string"]);
// Refused with a reason of their own.
const REFUSED: Record<string, string> = {
  uniqueItems:
    "uniqueItems is not supported: the validator compares every pair of items (quadratic in the array's length, with an error per pair)",
  $dynamicRef: "$dynamicRef is not supported: recursive schemas are refused",
  $dynamicAnchor: "$dynamicAnchor is not supported: recursive schemas are refused",
  $recursiveRef: "$recursiveRef is not supported: recursive schemas are refused",
  $recursiveAnchor: "$recursiveAnchor is not supported: recursive schemas are refused",
  $anchor: "$anchor is not supported: use a JSON Pointer $ref such as #/$defs/name",
  dependencies: "dependencies is not supported: use dependentRequired or dependentSchemas",
};

const isObject = (v: unknown): v is SchemaObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** The schema a JSON Pointer fragment (`#`, `#/$defs/price`) names inside `root`, or undefined. */
function resolve(root: Json, ref: string): Json | undefined {
  if (ref === "#") return root;
  if (!ref.startsWith("#/")) return undefined;
  let node: Json | undefined = root;
  for (const raw of ref.slice(2).split("/")) {
    let token: string;
    try {
      token = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    } catch {
      return undefined;
    }
    if (Array.isArray(node)) node = /^(0|[1-9]\d*)$/.test(token) ? node[Number(token)] : undefined;
    else if (isObject(node)) node = Object.hasOwn(node, token) ? node[token] : undefined;
    else return undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** Every subschema directly under `schema`: its path, itself, and the keyword it sits under ($ref not followed). */
function children(schema: SchemaObject, at: string): [string, Json, string][] {
  const out: [string, Json, string][] = [];
  for (const [key, value] of Object.entries(schema)) {
    if (SUBSCHEMA.has(key)) out.push([`${at}/${key}`, value, key]);
    else if (key === "items") {
      if (Array.isArray(value)) for (const [i, s] of value.entries()) out.push([`${at}/items/${i}`, s, key]);
      else out.push([`${at}/items`, value, key]);
    } else if (SUBSCHEMA_LIST.has(key) && Array.isArray(value))
      for (const [i, s] of value.entries()) out.push([`${at}/${key}/${i}`, s, key]);
    else if (SUBSCHEMA_MAP.has(key) && isObject(value))
      for (const [k, s] of Object.entries(value)) out.push([`${at}/${key}/${k}`, s, key]);
  }
  return out;
}

/** Why `pattern` cannot be used, or null: it must compile as a Unicode regex and never backtrack badly. */
export function patternProblem(pattern: string): string | null {
  try {
    new RegExp(pattern, "u");
  } catch (e) {
    return `is not a valid regular expression (${(e as Error).message})`;
  }
  const verdict = isSafePattern(pattern, { unicode: true, timeout: 1000 });
  if (!verdict.safe) {
    return "can backtrack without bound on some strings (redos-detector finds inputs it matches in many ways, which a regex engine may try one by one); anchor it (^…$) and keep its repeated parts from matching the same characters, or use a format";
  }
  return null;
}

/** The problems of one schema object's own keywords (not of its subschemas). */
function keywordProblems(schema: SchemaObject, at: string, root: Json): string[] {
  const problems: string[] = [];
  const say = (key: string, message: string) => problems.push(`${at}/${key} ${message}`);
  for (const [key, value] of Object.entries(schema)) {
    if (REFUSED[key]) problems.push(`${at}/${key}: ${REFUSED[key]}`);
    else if (key === "$ref") {
      if (typeof value !== "string") say(key, "must be a string");
      else if (!value.startsWith("#"))
        say(key, "must point inside the schema (#/…): remote references are not fetched");
      else if (!isObject(resolve(root, value)) && typeof resolve(root, value) !== "boolean")
        say(key, `points at no schema: ${value}`);
    } else if (key === "$schema") {
      if (typeof value !== "string" || !DRAFTS[value]) say(key, `must be one of ${Object.keys(DRAFTS).join(", ")}`);
    } else if (key === "$id") {
      if (at !== "#") say(key, "is allowed on the root schema only");
    } else if (key === "type") {
      const list = Array.isArray(value) ? value : [value];
      if (list.length === 0 || !list.every((t) => typeof t === "string" && TYPES.has(t)))
        say(key, `must be one of ${[...TYPES].join(", ")}, or a list of them`);
    } else if (key === "required") {
      if (!Array.isArray(value) || !value.every((v) => typeof v === "string"))
        say(key, "must be a list of property names");
    } else if (key === "dependentRequired") {
      if (
        !isObject(value) ||
        !Object.values(value).every((l) => Array.isArray(l) && l.every((v) => typeof v === "string"))
      )
        say(key, "must map property names to lists of property names");
    } else if (key === "enum") {
      if (!Array.isArray(value) || value.length === 0) say(key, "must be a non-empty list");
    } else if (COUNT.has(key)) {
      if (!Number.isInteger(value) || (value as number) < 0) say(key, "must be a non-negative integer");
    } else if (NUMBER.has(key)) {
      if (typeof value !== "number") say(key, "must be a number");
    } else if (key === "multipleOf") {
      if (typeof value !== "number" || value <= 0) say(key, "must be a number above 0");
    } else if (key === "pattern") {
      const problem = typeof value === "string" ? patternProblem(value) : "must be a string";
      if (problem) say(key, problem);
    } else if (key === "patternProperties" && isObject(value)) {
      for (const p of Object.keys(value)) {
        const problem = patternProblem(p);
        if (problem) say(key, `key ${JSON.stringify(p)} ${problem}`);
      }
    } else if (key === "format") {
      if (typeof value !== "string" || !SAFE_FORMATS.has(value))
        say(key, `must be one of ${[...SAFE_FORMATS].join(", ")}`);
    } else if (SUBSCHEMA_LIST.has(key)) {
      if (!Array.isArray(value) || value.length === 0) say(key, "must be a non-empty list of schemas");
    } else if (SUBSCHEMA_MAP.has(key)) {
      if (!isObject(value)) say(key, "must be an object of schemas");
    } else if (key === "items") {
      if (Array.isArray(value) && value.length === 0) say(key, "must be a schema or a non-empty list of schemas");
    } else if (!SUBSCHEMA.has(key) && !ANNOTATION.has(key)) {
      say(key, "is not a keyword the validator knows (a misspelt keyword would check nothing)");
    }
  }
  return problems;
}

/**
 * Why a schema cannot be registered, as a list of messages naming where (`#/properties/price/minimum …`);
 * empty when it can. `text` is the schema as the operator gave it.
 */
export function schemaProblems(text: string): string[] {
  if (new TextEncoder().encode(text).length > MAX_SCHEMA_BYTES)
    return [`the schema is larger than ${MAX_SCHEMA_BYTES} bytes`];
  let root: Json;
  try {
    root = JSON.parse(text) as Json;
  } catch (e) {
    return [`the schema is not JSON: ${(e as Error).message}`];
  }
  if (!isObject(root)) return ["the schema must be a JSON object (an event's data is an object)"];
  if (root.type !== undefined && root.type !== "object")
    return ['#/type must be "object" (an event\'s data is an object)'];

  // Walk every schema object (each once, $ref not followed), checking its keywords and depth.
  const problems: string[] = [];
  const stack: [Json, string, number][] = [[root, "#", 1]];
  while (stack.length > 0 && problems.length < 20) {
    const [node, at, depth] = stack.pop()!;
    if (typeof node === "boolean") continue;
    if (!isObject(node)) {
      problems.push(`${at} must be a schema (an object or a boolean)`);
      continue;
    }
    if (depth > MAX_SCHEMA_DEPTH) {
      problems.push(`${at} nests deeper than ${MAX_SCHEMA_DEPTH} schema levels`);
      continue;
    }
    problems.push(...keywordProblems(node, at, root));
    for (const [path, child] of children(node, at)) stack.push([child, path, depth + 1]);
  }
  if (problems.length > 0) return problems;

  // Every $ref must resolve the way the validator resolves it, or each event would fail on it.
  try {
    const copy = JSON.parse(text) as Json;
    const lookup = dereference(copy as object) as Record<string, unknown>;
    const refs: [Json, string][] = [[copy, "#"]];
    while (refs.length > 0) {
      const [node, at] = refs.pop()!;
      if (!isObject(node)) continue;
      const absolute = (node as { __absolute_ref__?: string }).__absolute_ref__;
      if (typeof node.$ref === "string" && (absolute === undefined || lookup[absolute] === undefined)) {
        problems.push(`${at}/$ref points at no schema the validator can find: ${node.$ref}`);
      }
      for (const [path, child] of children(node, at)) refs.push([child, path]);
    }
  } catch (e) {
    problems.push(`the validator cannot read the schema: ${(e as Error).message}`);
  }
  if (problems.length > 0) return problems;

  // With every $ref inlined, how many subschemas can one value visit? A loop is unbounded; a
  // schema that references one definition twice at each of many levels doubles per level.
  const size = new Map<Json, number>();
  const onPath = new Set<Json>();
  const expanded = (node: Json, at: string): number => {
    if (!isObject(node)) return 1;
    const known = size.get(node);
    if (known !== undefined) return known;
    if (onPath.has(node))
      throw new Error(
        `${at} is a $ref loop: recursive schemas are refused (their cost grows with the value, not the schema)`,
      );
    onPath.add(node);
    let total = 1;
    // Definitions are visited only through a $ref.
    for (const [path, child, keyword] of children(node, at))
      if (keyword !== "$defs" && keyword !== "definitions") total += expanded(child, path);
    if (typeof node.$ref === "string") total += expanded(resolve(root, node.$ref)!, node.$ref);
    onPath.delete(node);
    size.set(node, Math.min(total, MAX_EXPANDED_SUBSCHEMAS + 1));
    return Math.min(total, MAX_EXPANDED_SUBSCHEMAS + 1);
  };
  try {
    const total = expanded(root, "#");
    if (total > MAX_EXPANDED_SUBSCHEMAS) {
      return [`the schema expands to more than ${MAX_EXPANDED_SUBSCHEMAS} subschemas once its $refs are inlined`];
    }
  } catch (e) {
    return [(e as Error).message];
  }
  return [];
}
