// Runs bench/sqlite-tasks.cjs (the raw-SQLite side: node:sqlite's DatabaseSync) in a child of this
// same Node — the project's Node 22 under `npm run bench` — so a long load never blocks the runner.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT, STATE } from "./servers.mjs";

// node:sqlite is stable enough for a benchmark but Node 22 still flags it experimental: the one
// warning it prints is switched off by name, every other warning still shows.
const NODE_ARGS = ["--disable-warning=ExperimentalWarning"];

/** The Node and SQLite library the raw-SQLite figures come from. */
export function sqliteNode() {
  return { node: process.execPath, version: process.version, sqlite: process.versions.sqlite };
}

export function sqliteTask(task, args) {
  const argFile = path.join(STATE, `sqlite-${task}-args.json`);
  writeFileSync(argFile, JSON.stringify(args));
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...NODE_ARGS, path.join(ROOT, "bench/sqlite-tasks.cjs"), task, `@${argFile}`],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
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
