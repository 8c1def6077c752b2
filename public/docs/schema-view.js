// The API reference's schema views: how the document's schemas, their types and constraints, and
// its markdown render as plain DOM (every text goes in as text, never as HTML). docs.js hands over
// the document (useDocument) so local $refs resolve.

let doc = null;

/** The OpenAPI document the $refs are resolved in. */
export function useDocument(d) {
  doc = d;
}

/** An element with attributes (on* are listeners) and children (strings become text). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return el;
}

/** The document's markdown, the little it uses: paragraphs, `code` and **bold**. */
export function prose(text, tag = "p") {
  if (!text) return [];
  return text.split(/\n\s*\n/).map((para) =>
    h(
      tag,
      null,
      para
        .replace(/\s*\n\s*/g, " ")
        .split(/(`[^`]+`|\*\*[^*]+\*\*)/)
        .map((part) =>
          part.startsWith("`") && part.endsWith("`") && part.length > 1
            ? h("code", null, part.slice(1, -1))
            : part.startsWith("**") && part.endsWith("**") && part.length > 3
              ? h("strong", null, part.slice(2, -2))
              : part,
        ),
    ),
  );
}

/** Follows a local $ref (#/components/…) to what it names. */
export function resolve(obj) {
  let seen = 0;
  while (obj?.$ref && seen++ < 20) {
    const target = obj.$ref
      .replace(/^#\//, "")
      .split("/")
      .reduce((o, k) => (o ? o[k.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined), doc);
    if (!target) break;
    const { $ref, ...rest } = obj;
    obj = Object.keys(rest).length ? { ...target, ...rest, _also: rest } : target;
  }
  return obj;
}

export const refName = (ref) => ref.split("/").pop();
export const anchor = (kind, name) => `${kind}-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;

// ---- Schemas

const CONSTRAINTS = [
  ["format", (v) => `format ${v}`],
  ["pattern", (v) => `pattern ${v}`],
  ["minLength", (v) => `≥ ${v} chars`],
  ["maxLength", (v) => `≤ ${v} chars`],
  ["minItems", (v) => `≥ ${v} items`],
  ["maxItems", (v) => `≤ ${v} items`],
  ["minimum", (v) => `≥ ${v}`],
  ["maximum", (v) => `≤ ${v}`],
];

function typeLabel(s) {
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  const t = Array.isArray(s.type) ? s.type.join(" | ") : s.type;
  if (t === "array") return "array";
  return t ?? (s.anyOf || s.oneOf ? "one of" : Object.keys(s).length === 0 ? "any JSON" : "");
}

/** A schema as a nested list; a $ref is a link to its section and opens in place. */
export function schemaView(schema, depth = 0) {
  if (!schema) return h("span", { class: "muted" }, "—");
  if (schema.$ref && depth > 0) {
    const name = refName(schema.$ref);
    const { $ref, ...also } = schema;
    const details = h(
      "details",
      { class: "schema-view" },
      h("summary", null, h("a", { href: `#${anchor("schema", name)}` }, name), extraNote(also)),
    );
    details.addEventListener(
      "toggle",
      () => {
        if (details.open && details.childNodes.length === 1) details.append(schemaBody(resolve({ $ref }), depth + 1));
      },
      { once: false },
    );
    return details;
  }
  return h("div", { class: "schema-view" }, schemaBody(resolve(schema), depth + 1));
}

/** What an operation adds to a named schema ($ref with siblings), such as the codes of one status. */
function extraNote(also) {
  const code = also?.properties?.code?.enum;
  if (code) return h("span", { class: "constraint" }, ` with code ${code.join(" | ")}`);
  return Object.keys(also ?? {}).length ? h("span", { class: "constraint" }, ` ${JSON.stringify(also)}`) : null;
}

function schemaBody(s, depth) {
  if (depth > 12) return h("span", { class: "muted" }, "…");
  const parts = [];
  const label = typeLabel(s);
  if (label) parts.push(h("span", { class: "type" }, label));
  for (const [k, fmt] of CONSTRAINTS)
    if (s[k] !== undefined) parts.push(h("span", { class: "constraint" }, ` · ${fmt(s[k])}`));
  if (s.description) parts.push(h("div", { class: "muted" }, prose(s.description, "span")));
  if (s.examples)
    parts.push(
      h(
        "div",
        { class: "constraint" },
        "e.g. ",
        s.examples
          .map((e) => h("code", null, JSON.stringify(e)))
          .reduce((a, e) => a.concat(a.length ? [", ", e] : [e]), []),
      ),
    );
  if (s._also) parts.push(extraNote(s._also));
  const variants = s.anyOf ?? s.oneOf;
  if (variants)
    parts.push(
      h(
        "ul",
        null,
        variants.map((v) => h("li", null, schemaView(v, depth))),
      ),
    );
  if (s.type === "array" || (Array.isArray(s.type) && s.type.includes("array"))) {
    if (s.items)
      parts.push(h("ul", null, h("li", null, h("span", { class: "muted" }, "items: "), schemaView(s.items, depth))));
  }
  if (s.properties) {
    const required = new Set(s.required ?? []);
    parts.push(
      h(
        "ul",
        null,
        Object.entries(s.properties).map(([name, p]) =>
          h(
            "li",
            null,
            h("code", null, name),
            required.has(name) ? h("span", { class: "req" }, "required") : null,
            " ",
            schemaView(p, depth),
          ),
        ),
      ),
    );
  }
  if (s.propertyNames?.enum) parts.push(h("div", { class: "constraint" }, `keys: ${s.propertyNames.enum.join(", ")}`));
  if (s.additionalProperties === false) parts.push(h("div", { class: "constraint" }, "no other fields"));
  else if (s.additionalProperties && Object.keys(s.additionalProperties).length)
    parts.push(
      h(
        "ul",
        null,
        h("li", null, h("span", { class: "muted" }, "values: "), schemaView(s.additionalProperties, depth)),
      ),
    );
  return h("div", null, parts);
}

// ---- Operations
