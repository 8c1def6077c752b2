// The home page: the service's name, version and endpoints, read from GET / as JSON (the Worker's
// src/read/home.ts, where they are written once) and put in the page as text, never as HTML.

/** @typedef {{ method: string, path: string, key: string, what: string }} Endpoint */
/** @typedef {{ service: string, version: string, endpoints: Endpoint[], docs: string }} Service */

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {string} tag @param {string} [cls] @param {string} [text] */
function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {Service} service */
function show(service) {
  document.title = `${service.service} ${service.version}`;
  byId("service").textContent = service.service;
  byId("version").textContent = `version ${service.version}`;
  byId("docs").textContent = `More: ${service.docs}.`;
  const rows = service.endpoints.map((e) => {
    const tr = h("tr");
    const path = h("td", "path");
    path.append(h("code", "", e.path));
    tr.append(
      h("td", `method ${e.method.toLowerCase()}`, e.method),
      path,
      h("td", "key", e.key),
      h("td", "what", e.what),
    );
    return tr;
  });
  /** @type {HTMLTableSectionElement} */ (document.querySelector("#endpoints tbody")).replaceChildren(...rows);
  byId("status").textContent = "";
}

async function load() {
  const status = byId("status");
  try {
    const res = await fetch("/", { headers: { accept: "application/json" }, cache: "no-store" });
    if (!res.ok) throw new Error(`GET / answered ${res.status}`);
    show(/** @type {Service} */ (await res.json()));
  } catch (err) {
    status.classList.add("error");
    status.textContent = `The endpoints could not be loaded: ${err instanceof Error ? err.message : String(err)}`;
  }
}

void load();
