// The explorer's chart: events per hour or day as stacked SVG bars, one colour per series, drawn from
// a GET /api/stats/counts answer. No library: axes, ticks and the tooltip are the few lines below.
const SVG = "http://www.w3.org/2000/svg";
const MARGIN = { top: 10, right: 6, bottom: 24, left: 44 };
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** @param {string} tag @param {Record<string, string | number>} attrs @param {Element} [parent] */
function el(tag, attrs, parent) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  parent?.append(node);
  return node;
}

/** 1, 2 or 5 times a power of ten, at least `raw`. @param {number} raw */
function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

/** @param {number} n */
export const compact = (n) =>
  n >= 1e6
    ? `${+(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`
    : n >= 1e4
      ? `${+(n / 1e3).toFixed(n >= 1e5 ? 0 : 1)}k`
      : n.toLocaleString("en-US");

/** "Mar 4", "Mar 4 13:00", "13:00" for a bucket start (UTC). @param {string} iso @param {"day" | "hour" | "time"} form */
export function bucketLabel(iso, form) {
  const d = new Date(iso);
  const day = `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
  const time = `${String(d.getUTCHours()).padStart(2, "0")}:00`;
  return form === "day" ? day : form === "time" ? time : `${day} ${time}`;
}

/**
 * @typedef {{ key: string, color: string, counts: number[], total: number }} Series  color: a palette slot, s0…s7 or other (CSS classes c-…)
 * @typedef {{ interval: "hour" | "day", buckets: string[], totals: number[], series: Series[] }} ChartData
 */

/**
 * Draws the chart into `host` (replacing what was there) and wires the tooltip.
 * @param {HTMLElement} host @param {ChartData} data @param {HTMLElement} tooltip
 */
export function drawChart(host, data, tooltip) {
  host.replaceChildren();
  const width = Math.max(host.clientWidth, 200);
  const height = Math.max(host.clientHeight, 120);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" }, host);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const n = data.buckets.length;
  const max = Math.max(...data.totals, 0);

  // Y axis: 3–5 round ticks.
  const step = niceStep(Math.max(max, 4) / 4);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const y = (/** @type {number} */ v) => MARGIN.top + plotH - (v / top) * plotH;
  const grid = el("g", { class: "grid" }, svg);
  const axis = el("g", { class: "axis" }, svg);
  for (let v = 0; v <= top + 1e-9; v += step) {
    el("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v), class: v === 0 ? "zero" : "" }, grid);
    const t = el("text", { x: MARGIN.left - 8, y: y(v) + 4, "text-anchor": "end" }, axis);
    t.textContent = compact(v);
  }

  // X axis: a label every k buckets, k chosen so labels stay ~80 px apart, aligned to round times.
  const band = plotW / Math.max(n, 1);
  const steps = data.interval === "hour" ? [1, 2, 3, 6, 12, 24, 48, 72, 168, 336] : [1, 2, 7, 14, 28, 56, 91, 182];
  const every = steps.find((s) => s * band >= 80) ?? steps[steps.length - 1];
  const unit = data.interval === "hour" ? 3_600_000 : 86_400_000;
  let labelled = 0;
  for (let i = 0; i < n; i++) {
    const start = Date.parse(data.buckets[i]);
    if (Math.round(start / unit) % every !== 0) continue;
    const d = new Date(start);
    // Midnight and day ticks show the date; the first tick of an hourly axis its date and hour; the rest the hour.
    const form =
      data.interval === "day" || d.getUTCHours() === 0 || every >= 24 ? "day" : labelled === 0 ? "hour" : "time";
    const x = MARGIN.left + band * i + (every === 1 ? band / 2 : 0);
    const t = el("text", { x, y: height - 6, "text-anchor": every === 1 ? "middle" : "start" }, axis);
    t.textContent = bucketLabel(data.buckets[i], form);
    el(
      "line",
      { x1: x, x2: x, y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 4, stroke: "currentColor", opacity: 0.3 },
      axis,
    );
    labelled++;
  }

  if (max === 0) {
    const t = el(
      "text",
      { x: MARGIN.left + plotW / 2, y: MARGIN.top + plotH / 2, "text-anchor": "middle", class: "empty" },
      svg,
    );
    t.textContent = "No events in this window";
    return;
  }

  // Bars: each bucket a column of the series stacked largest (first) at the bottom.
  const gap = band > 6 ? Math.min(band * 0.25, 8) : band > 2.5 ? 1 : 0;
  const bars = el("g", {}, svg);
  for (let i = 0; i < n; i++) {
    const col = el("g", { class: "col" }, bars);
    const x = MARGIN.left + band * i;
    el("rect", { class: "hit", x, y: MARGIN.top, width: band, height: plotH }, col);
    let base = 0;
    for (const s of data.series) {
      const v = s.counts[i] ?? 0;
      if (v <= 0) continue;
      const y0 = y(base);
      const y1 = y(base + v);
      el(
        "rect",
        {
          class: `bar c-${s.color}`,
          x: x + gap / 2,
          y: y1,
          width: Math.max(band - gap, 0.8),
          height: Math.max(y0 - y1, 0.8),
        },
        col,
      );
      base += v;
    }
    col.addEventListener("mouseenter", () => col.classList.add("on"));
    col.addEventListener("mousemove", (e) => showTip(tooltip, data, i, /** @type {MouseEvent} */ (e)));
    col.addEventListener("mouseleave", () => {
      col.classList.remove("on");
      tooltip.hidden = true;
    });
  }
}

/** @param {HTMLElement} tip @param {ChartData} data @param {number} i @param {MouseEvent} e */
function showTip(tip, data, i, e) {
  const title = document.createElement("div");
  title.className = "t";
  const start = data.buckets[i];
  title.textContent =
    data.interval === "day"
      ? `${bucketLabel(start, "day")} (UTC)`
      : `${bucketLabel(start, "hour")}–${bucketLabel(data.buckets[i + 1] ?? new Date(Date.parse(start) + 3_600_000).toISOString(), "time")} UTC`;
  const rows = data.series.filter((s) => (s.counts[i] ?? 0) > 0).map((s) => row(s.key, s.counts[i] ?? 0, s.color));
  const total = row("Total", data.totals[i] ?? 0, null);
  total.classList.add("total");
  tip.replaceChildren(title, ...rows, total);
  tip.hidden = false;
  const pad = 14;
  const { width, height } = tip.getBoundingClientRect();
  const left = e.clientX + pad + width > innerWidth ? e.clientX - pad - width : e.clientX + pad;
  tip.style.left = `${Math.max(4, left)}px`;
  tip.style.top = `${Math.max(4, Math.min(e.clientY - height / 2, innerHeight - height - 4))}px`;
}

/** @param {string} key @param {number} value @param {string | null} color */
function row(key, value, color) {
  const r = document.createElement("div");
  r.className = "row";
  if (color) {
    const sw = document.createElement("span");
    sw.className = `swatch c-${color}`;
    r.append(sw);
  }
  const k = document.createElement("span");
  k.className = "k";
  k.textContent = key;
  const v = document.createElement("span");
  v.className = "v";
  v.textContent = value.toLocaleString("en-US");
  r.append(k, v);
  return r;
}
