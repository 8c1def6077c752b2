// Runs bench/sqlite-tasks.cjs under a Node that can load better-sqlite3's native module.
// `npm install` builds that module for the Node that ran npm (Node 20 on our machines), while
// `npm run bench` runs under the project's Node 22: so the raw-SQLite side may need another Node.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT, STATE } from "./servers.mjs";

let chosen;
/** The first Node that loads better-sqlite3: this one, then each `node` on PATH outside node_modules. */
export function sqliteNode() {
  if (chosen) return chosen;
  const candidates = [process.execPath];
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir.includes("node_modules")) continue;
    const p = path.join(dir, "node");
    if (existsSync(p) && !candidates.includes(p)) candidates.push(p);
  }
  for (const p of ["/usr/bin/node", "/usr/local/bin/node"]) if (existsSync(p) && !candidates.includes(p)) candidates.push(p);
  for (const node of candidates) {
    const r = spawnSync(node, ["-e", "new (require('better-sqlite3'))(':memory:').prepare('select 1').get(); console.log(process.version)"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    if (r.status === 0) return (chosen = { node, version: r.stdout.trim() });
  }
  throw new Error("no Node here loads better-sqlite3; run `npm rebuild better-sqlite3` with the Node you bench with");
}

export function sqliteTask(task, args) {
  const { node } = sqliteNode();
  const argFile = path.join(STATE, `sqlite-${task}-args.json`);
  writeFileSync(argFile, JSON.stringify(args));
  return new Promise((resolve, reject) => {
    const child = spawn(node, [path.join(ROOT, "bench/sqlite-tasks.cjs"), task, `@${argFile}`], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`sqlite task ${task} failed (${code}): ${err}`));
      resolve(JSON.parse(out.trim().split("\n").pop()));
    });
  });
}
