// Event payloads as text nodes: pretty JSON with keys, strings, numbers and literals coloured, and a
// one-line preview. Payloads come from whoever holds a write key, so nothing here is ever parsed as HTML.
const TOKEN = /("(?:\\.|[^"\\])*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;

/** @param {string} cls @param {string} text */
function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

/** A <pre> with the value as indented JSON. @param {unknown} value */
export function jsonBlock(value) {
  const pre = document.createElement("pre");
  pre.className = "json";
  const text = JSON.stringify(value, null, 2) ?? "undefined";
  let at = 0;
  for (const m of text.matchAll(TOKEN)) {
    if (m.index > at) pre.append(text.slice(at, m.index));
    if (m[1] !== undefined) {
      pre.append(span(m[2] ? "k" : "s", m[1]));
      if (m[2]) pre.append(m[2]);
    } else if (m[3] !== undefined) pre.append(span("n", m[3]));
    else pre.append(span("l", m[0]));
    at = m.index + m[0].length;
  }
  pre.append(text.slice(at));
  return pre;
}

/** The value on one line, cut to `max` characters. @param {unknown} value @param {number} [max] */
export function preview(value, max = 160) {
  const text = JSON.stringify(value) ?? "";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
