// What the one-off probes of bench/adhoc/ share: a version to run (the working tree, or a commit
// exported under bench/.state/), its `wrangler dev`, the hot-path phase's 500-event bodies, and a
// CPU profile of the Worker's isolate through wrangler's inspector (the DevTools protocol).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { READ_HEADERS, warm } from "../lib/load.mjs";
import { devCommand, exportCommit, prepareLocal, ROOT, Server, STATE } from "../lib/servers.mjs";

export const OUT = path.join(ROOT, "bench/.results/adhoc");

/** `ref` "tree" is the working tree; anything else is a commit, exported once per run. */
export function version(ref, { config = "wrangler.toml" } = {}) {
  if (ref === "tree") return { key: "tree", root: ROOT, config: path.join(ROOT, config) };
  const root = path.join(STATE, `adhoc-${ref}`);
  exportCommit(ref, root);
  return { key: ref, root, config: path.join(root, config) };
}

/** A fresh `wrangler dev` of the version on an empty local D1 (kept when `keep`: a later probe reads it). */
export async function start(v, { keep = false } = {}) {
  const persist = path.join(STATE, `adhoc-${v.key}${v.tag ?? ""}-d1`);
  if (!keep) {
    rmSync(persist, { recursive: true, force: true });
    prepareLocal(persist, { config: v.config, root: v.root });
  }
  const server = await Server.start(`adhoc-${v.key}${v.tag ?? ""}`, {
    persist,
    config: v.config,
    argv: devCommand(v.root),
  });
  await warm(`${server.url}/api/event/?limit=1`, READ_HEADERS);
  return server;
}

const CATEGORIES = ["page interaction", "navigation", "form", "media", "error"];

/** The hot-path phase's 500-event body (20 events a session, 5 categories, 50 names); `now` dates them a minute ago instead of 2021. */
export function mixedBody(n, id, now = false) {
  const parts = [];
  for (let k = 0; k < n; k++) {
    const s = String(k % 60).padStart(2, "0");
    const ts = now
      ? new Date(Date.now() - 60_000 + k).toISOString()
      : `2021-01-01 09:${String(Math.floor(k / 60) % 60).padStart(2, "0")}:${s}.${String(k).padStart(6, "0")}`;
    parts.push(
      `{"session_id":"${id}-${Math.floor(k / 20)}","category":"${CATEGORIES[k % 5]}","name":"name ${k % 50}",` +
        `"data":{"host":"www.xxxxx.com","path":"/p/${k % 500}","element":"chat bubble","seq":${k}},"timestamp":"${ts}"}`,
    );
  }
  return `[${parts.join(",")}]`;
}

/** The Worker isolate's CPU profiler: start(), then stop(name) writes bench/.results/adhoc/<name>.cpuprofile and returns its summary. */
export async function profiler(server) {
  const list = await (await fetch(`http://127.0.0.1:${server.inspectorPort}/json`)).json();
  const ws = new WebSocket(list[0].webSocketDebuggerUrl, { headers: { origin: "http://127.0.0.1" } });
  await new Promise((resolve) => {
    ws.onopen = resolve;
  });
  let id = 0;
  const pending = new Map();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    pending.get(m.id)?.(m.result);
    pending.delete(m.id);
  };
  const call = (method, params = {}) =>
    new Promise((resolve) => {
      const i = ++id;
      pending.set(i, resolve);
      ws.send(JSON.stringify({ id: i, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 200 });
  return {
    start: () => call("Profiler.start"),
    async stop(name) {
      const { profile } = await call("Profiler.stop");
      mkdirSync(OUT, { recursive: true });
      writeFileSync(path.join(OUT, `${name}.cpuprofile`), JSON.stringify(profile));
      ws.close();
      return summarize(profile);
    },
  };
}

/**
 * Busy time, self time and inclusive time by function. A sample's time is clamped to 1 ms: the
 * first sample after the isolate waited (for D1, the queue, the next request) carries the wait.
 */
export function summarize(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n) => `${n.callFrame.functionName || "(anonymous)"}:${n.callFrame.lineNumber}`;
  const self = new Map();
  const inclusive = new Map();
  let busy = 0;
  profile.samples.forEach((s, i) => {
    const n = byId.get(s);
    if (n.callFrame.functionName === "(idle)") return;
    const us = Math.min(profile.timeDeltas[i] ?? 0, 1000);
    busy += us;
    self.set(label(n), (self.get(label(n)) ?? 0) + us);
    const seen = new Set();
    for (let p = s; p; p = parent.get(p)) {
      const k = label(byId.get(p));
      if (!seen.has(k)) inclusive.set(k, (inclusive.get(k) ?? 0) + us);
      seen.add(k);
    }
  });
  const list = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${(us / 1000).toFixed(1).padStart(8)} ms  ${k}`)
      .join("\n");
  return `busy ${(busy / 1000).toFixed(0)} ms\n-- self\n${list(self)}\n-- inclusive\n${list(inclusive)}`;
}
