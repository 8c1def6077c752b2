// Single-event POSTs (50 connections, 600 a load, a client address each) on a commit, the working
// tree, and the working tree without `[assets]`, in 3 interleaved passes: what the static-assets
// router costs a request under `wrangler dev` although `run_worker_first` sends the API to the Worker.
//   node bench/adhoc/assets.mjs [<commit>, default 16f69f7]
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { body, MANY_CLIENTS, measureLoad, WRITE_HEADERS } from "../lib/load.mjs";
import { ROOT } from "../lib/servers.mjs";
import { start, version } from "./common.mjs";

const toml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
const bare = path.join(ROOT, "wrangler.adhoc-no-assets.toml");
writeFileSync(bare, toml.slice(0, toml.indexOf("[assets]")) + toml.slice(toml.indexOf("[vars]")));
const V = [
  version(process.argv[2] ?? "16f69f7"),
  version("tree"),
  { ...version("tree", { config: "wrangler.adhoc-no-assets.toml" }), tag: "-no-assets" },
];
try {
  for (const v of V) {
    v.server = await start(v);
    v.passes = [];
  }
  for (let pass = 0; pass < 3; pass++) {
    for (const v of pass % 2 ? [...V].reverse() : V) {
      const m = await measureLoad(v.server, "1", {
        connections: 50,
        amount: 600,
        method: "POST",
        headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
        body: body(1),
        idReplacement: true,
      });
      v.passes.push({ rps: (m.statuses[202] ?? 0) / m.seconds, runtime: (m.cpuRuntime / m.requests) * 1e6 });
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }
  for (const v of V) {
    const mean = (k) => v.passes.reduce((s, p) => s + p[k], 0) / v.passes.length;
    console.log(
      `${v.key}${v.tag ?? ""}: ${mean("rps").toFixed(0)} req/s (${v.passes.map((p) => p.rps.toFixed(0)).join(", ")}), ` +
        `runtime CPU ${mean("runtime").toFixed(0)} µs per request (${v.passes.map((p) => p.runtime.toFixed(0)).join(", ")})`,
    );
  }
} finally {
  for (const v of V) await v.server?.stop();
  rmSync(bare, { force: true });
}
process.exit(0);
