// The API reference: fetches /api/openapi.json from this origin and renders its operations,
// parameters, bodies, responses and schemas, with a "Try it" form per operation. Plain DOM: every
// text from the document goes in as text, never as HTML. The key lives in one variable.

import { anchor, h, prose, refName, resolve, schemaView, useDocument } from "./schema-view.js";

let key = "";
let doc = null;

const SECURITY_TEXT = (op) => {
  const schemes = doc.components?.securitySchemes ?? {};
  const options = (op.security ?? doc.security ?? []).map((req) => Object.keys(req));
  if (options.length === 0) return "none";
  return options
    .map((names) =>
      names.length === 0 ? "none" : names.map((n) => `${n} (${schemes[n]?.description ?? n})`).join(" and "),
    )
    .join("; or ");
};

function paramsTable(params) {
  return h(
    "table",
    null,
    h(
      "thead",
      null,
      h("tr", null, h("th", null, "name"), h("th", null, "in"), h("th", null, "schema"), h("th", null, "what")),
    ),
    h(
      "tbody",
      null,
      params.map((p) =>
        h(
          "tr",
          null,
          h(
            "td",
            { class: "name" },
            h("code", null, p.name),
            p.required ? h("span", { class: "req" }, "required") : null,
          ),
          h("td", null, p.in),
          h("td", null, schemaView(p.schema, 1)),
          h("td", null, prose(p.description, "span")),
        ),
      ),
    ),
  );
}

function responsesTable(responses) {
  return h(
    "table",
    null,
    h(
      "thead",
      null,
      h("tr", null, h("th", null, "status"), h("th", null, "what"), h("th", null, "headers"), h("th", null, "body")),
    ),
    h(
      "tbody",
      null,
      Object.entries(responses).map(([status, raw]) => {
        const r = resolve(raw);
        const name = raw.$ref ? refName(raw.$ref) : null;
        return h(
          "tr",
          null,
          h("td", { class: `status-${status[0]}` }, status, name ? h("div", { class: "muted" }, name) : null),
          h("td", null, prose(r.description, "div")),
          h(
            "td",
            null,
            Object.entries(r.headers ?? {}).map(([hn, hv]) =>
              h("div", { title: resolve(hv).description ?? "" }, h("code", null, hn)),
            ),
          ),
          h(
            "td",
            null,
            Object.entries(r.content ?? {}).map(([media, m]) =>
              h("div", null, h("span", { class: "muted" }, media), schemaView(m.schema, 1)),
            ),
          ),
        );
      }),
    ),
  );
}

/** A JSON value that fits a schema, for the body field: the document's example, else one made up. */
function exampleOf(schema, depth = 0) {
  const s = resolve(schema) ?? {};
  if (depth > 8) return null;
  if (s.examples?.length) return s.examples[0];
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  const variants = s.anyOf ?? s.oneOf;
  if (variants) return exampleOf(variants[0], depth + 1);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  if (type === "object" || s.properties) {
    const out = {};
    for (const [k, v] of Object.entries(s.properties ?? {}))
      if ((s.required ?? []).includes(k)) out[k] = exampleOf(v, depth + 1);
    return out;
  }
  if (type === "array") return [exampleOf(s.items, depth + 1)];
  if (type === "integer" || type === "number") return s.minimum ?? 0;
  if (type === "boolean") return true;
  if (type === "string") return "string";
  return null;
}

function tryIt(path, method, op) {
  // Content-Encoding is the gzip box's to set.
  const params = (op.parameters ?? [])
    .map(resolve)
    .filter((p) => !(p.in === "header" && p.name.toLowerCase() === "content-encoding"));
  const inputs = new Map();
  const fields = params.map((p) => {
    const id = `${anchor("try", op.operationId ?? path)}-${p.in}-${p.name}`;
    const s = resolve(p.schema) ?? {};
    const input = s.enum
      ? h(
          "select",
          { id },
          h("option", { value: "" }, "(none)"),
          s.enum.map((v) => h("option", { value: v }, v)),
        )
      : h("input", {
          id,
          type: "text",
          class: "mono",
          placeholder: p.in === "path" ? "required" : "",
          spellcheck: "false",
        });
    inputs.set(p, input);
    return h(
      "label",
      { for: id },
      h("code", null, p.name),
      h("span", { class: "muted" }, ` (${p.in})`),
      h("br"),
      input,
    );
  });
  const body = op.requestBody ? resolve(op.requestBody) : null;
  const media = body ? Object.keys(body.content ?? {}) : [];
  const mediaSelect = body
    ? h(
        "select",
        null,
        media.map((m) => h("option", { value: m }, m)),
      )
    : null;
  const example = body ? (body.content[media[0]].example ?? exampleOf(body.content[media[0]].schema)) : null;
  const textarea = body
    ? h("textarea", { spellcheck: "false", "aria-label": "request body" }, JSON.stringify(example, null, 2))
    : null;
  const gzip = body && typeof CompressionStream === "function" ? h("input", { type: "checkbox" }) : null;
  const canKeyInQuery = (op.security ?? []).some((req) =>
    Object.keys(req).some((n) => doc.components?.securitySchemes?.[n]?.in === "query"),
  );
  const keyInQuery = canKeyInQuery ? h("input", { type: "checkbox" }) : null;
  const output = h("div");

  async function send(event) {
    event.preventDefault();
    output.replaceChildren(h("p", { class: "muted" }, "Sending…"));
    let url = path;
    const query = new URLSearchParams();
    const headers = new Headers();
    for (const [p, input] of inputs) {
      const value = input.value;
      if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(value));
      else if (value === "") continue;
      else if (p.in === "query") query.set(p.name, value);
      else if (p.in === "header") headers.set(p.name, value);
    }
    if (key && (op.security ?? []).length > 0) {
      if (keyInQuery?.checked) query.set("key", key);
      else headers.set("Authorization", `Bearer ${key}`);
    }
    const qs = query.toString();
    const target = `${url}${qs ? `?${qs}` : ""}`;
    const init = { method: method.toUpperCase(), headers };
    if (body) {
      headers.set("Content-Type", mediaSelect.value);
      let payload = new TextEncoder().encode(textarea.value);
      if (gzip?.checked) {
        payload = new Uint8Array(
          await new Response(new Blob([payload]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
        );
        headers.set("Content-Encoding", "gzip");
      }
      init.body = payload;
    }
    const started = performance.now();
    let res;
    try {
      res = await fetch(target, init);
    } catch (err) {
      output.replaceChildren(h("p", { class: "status-5" }, `The request failed: ${err.message}`));
      return;
    }
    const ms = Math.round(performance.now() - started);
    const text = await res.text();
    let shown = text;
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      /* NDJSON or text: as it came */
    }
    if (shown.length > 200_000) shown = `${shown.slice(0, 200_000)}\n… (${shown.length} characters; cut here)`;
    output.replaceChildren(
      h(
        "p",
        null,
        h("span", { class: `status-${String(res.status)[0]}` }, `${res.status} ${res.statusText}`),
        h(
          "span",
          { class: "muted" },
          ` · ${ms} ms · ${method.toUpperCase()} ${target.replace(/([?&]key=)[^&]*/, "$1…")}`,
        ),
      ),
      h("pre", { "aria-label": "response headers" }, [...res.headers].map(([n, v]) => `${n}: ${v}`).join("\n")),
      h("pre", { "aria-label": "response body" }, shown || "(empty body)"),
      h("details", null, h("summary", null, "as curl"), h("pre", null, curl(target, init))),
    );
  }

  return h(
    "details",
    { class: "try" },
    h("summary", null, "Try it"),
    h(
      "form",
      { onsubmit: send },
      fields.length ? h("div", { class: "fields" }, fields) : null,
      body
        ? [
            h("label", null, "Body", textarea),
            h(
              "div",
              { class: "row" },
              h("label", null, "Content-Type ", mediaSelect),
              gzip ? h("label", null, gzip, "gzip") : null,
            ),
          ]
        : null,
      h(
        "div",
        { class: "row" },
        h("button", { type: "submit" }, "Send"),
        keyInQuery ? h("label", null, keyInQuery, "key in the URL (?key=), as sendBeacon sends it") : null,
        h("span", { class: "muted" }, (op.security ?? []).length ? "uses the key above" : "no key needed"),
      ),
      output,
    ),
  );
}

/** The request as a curl command; the key is left as $EYE_KEY. */
function curl(target, init) {
  const q = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;
  const parts = [`curl -i -X ${init.method} ${q(location.origin + target.replace(/([?&]key=)[^&]*/, "$1$EYE_KEY"))}`];
  for (const [n, v] of init.headers)
    parts.push(n === "authorization" ? '-H "Authorization: Bearer $EYE_KEY"' : `-H ${q(`${n}: ${v}`)}`);
  if (init.body)
    parts.push(
      init.headers.get("Content-Encoding") === "gzip"
        ? "--data-binary @body.json.gz"
        : `--data-binary ${q(new TextDecoder().decode(init.body))}`,
    );
  return parts.join(" \\\n  ");
}

function operationSection(path, method, op) {
  const params = (op.parameters ?? []).map(resolve);
  const body = op.requestBody ? resolve(op.requestBody) : null;
  return h(
    "section",
    { class: "op", id: anchor("op", op.operationId ?? `${method}${path}`) },
    h(
      "h3",
      null,
      h("span", { class: `method ${method}` }, method),
      h("span", { class: "path" }, path),
      h("span", { class: "summary" }, op.summary ?? ""),
    ),
    prose(op.description),
    h("div", null, h("strong", null, "Key: "), SECURITY_TEXT(op)),
    params.length ? [h("h4", null, "Parameters"), paramsTable(params)] : null,
    body
      ? [
          h("h4", null, "Request body"),
          prose(body.description),
          Object.entries(body.content ?? {}).map(([media, m]) =>
            h("div", null, h("span", { class: "muted" }, media), schemaView(m.schema, 1)),
          ),
        ]
      : null,
    h("h4", null, "Responses"),
    responsesTable(op.responses ?? {}),
    tryIt(path, method, op),
  );
}

function render() {
  document.getElementById("version").textContent = doc.info?.version ? `v${doc.info.version}` : "";
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const byTag = new Map((doc.tags ?? []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of ["get", "put", "post", "delete", "patch", "head", "options"]) {
      const op = item[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? "other";
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push({ path, method, op });
    }
  }
  const intro = h("div", { class: "intro" }, prose(doc.info?.description));
  const sections = [];
  const navItems = [];
  for (const { tag, ops } of byTag.values()) {
    if (ops.length === 0) continue;
    navItems.push(h("h2", null, tag.name));
    sections.push(
      h(
        "h2",
        { id: anchor("tag", tag.name) },
        tag.name,
        tag.description ? h("span", { class: "summary" }, ` — ${tag.description}`) : null,
      ),
    );
    for (const { path, method, op } of ops) {
      navItems.push(
        h(
          "a",
          { href: `#${anchor("op", op.operationId ?? `${method}${path}`)}` },
          h("span", { class: `method ${method}` }, method),
          " ",
          h("span", { class: "path" }, path),
        ),
      );
      sections.push(operationSection(path, method, op));
    }
  }
  const schemas = Object.entries(doc.components?.schemas ?? {});
  navItems.push(
    h("h2", null, "schemas"),
    schemas.map(([name]) => h("a", { href: `#${anchor("schema", name)}` }, name)),
  );
  sections.push(
    h("h2", null, "Schemas"),
    schemas.map(([name, s]) =>
      h("section", { class: "schema", id: anchor("schema", name) }, h("h3", null, name), schemaView(s)),
    ),
  );
  const schemes = Object.entries(doc.components?.securitySchemes ?? {});
  const auth = h(
    "div",
    null,
    h("h2", null, "Keys"),
    h(
      "table",
      null,
      h(
        "tbody",
        null,
        schemes.map(([name, s]) =>
          h(
            "tr",
            null,
            h("td", { class: "name" }, h("code", null, name)),
            h(
              "td",
              null,
              s.type !== "http"
                ? `?${s.name}=<key>`
                : s.scheme?.toLowerCase() === "basic"
                  ? "Authorization: Basic base64(<key>:)"
                  : "Authorization: Bearer <key>",
            ),
            h("td", null, s.description ?? ""),
          ),
        ),
      ),
    ),
  );
  main.replaceChildren(intro, auth, ...sections);
  nav.replaceChildren(...navItems.flat());
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

document.getElementById("key").addEventListener("input", (e) => {
  key = e.target.value.trim();
});
document.getElementById("key-form").addEventListener("submit", (e) => e.preventDefault());

fetch("/api/openapi.json", { headers: { accept: "application/json" } })
  .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`${res.status} ${res.statusText}`))))
  .then((json) => {
    doc = json;
    useDocument(json);
    render();
  })
  .catch((err) => {
    const status = document.getElementById("status");
    status.className = "error";
    status.textContent = `Could not load /api/openapi.json: ${err.message}`;
  });
