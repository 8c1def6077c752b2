// Starting and stopping `wrangler dev` instances on 127.0.0.1, each with its own ports and
// its own --persist-to directory, and reading the CPU time of the workerd processes they run.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import net from "node:net";
import path from "node:path";

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
export const STATE = path.join(ROOT, "bench/.state");
const BIN = path.join(ROOT, "node_modules/.bin");

/**
 * The code under test, copied once per run: src/, migrations/, wrangler.toml and the probe. Every
 * instance runs from this copy, so edits others make to the working tree during a run neither
 * reload a running `wrangler dev` (it watches its sources) nor mix two versions in one run.
 */
export const SNAP = path.join(STATE, "snapshot");
export const snapConfig = () => path.join(SNAP, "wrangler.toml");
export function makeSnapshot(ref) {
  rmSync(SNAP, { recursive: true, force: true });
  if (ref) {
    // A committed version instead of the working tree (`--ref <commit>`): what others have not committed stays out.
    exportCommit(ref, SNAP);
  } else {
    mkdirSync(SNAP, { recursive: true });
    cpSync(path.join(ROOT, "src"), path.join(SNAP, "src"), { recursive: true });
    cpSync(path.join(ROOT, "migrations"), path.join(SNAP, "migrations"), { recursive: true });
    if (existsSync(path.join(ROOT, "public")))
      cpSync(path.join(ROOT, "public"), path.join(SNAP, "public"), { recursive: true });
    copyFileSync(path.join(ROOT, "wrangler.toml"), snapConfig());
    copyFileSync(path.join(ROOT, "package.json"), path.join(SNAP, "package.json")); // src/ imports its version
    if (existsSync(path.join(ROOT, "tsconfig.json")))
      copyFileSync(path.join(ROOT, "tsconfig.json"), path.join(SNAP, "tsconfig.json"));
  }
  mkdirSync(path.join(SNAP, "bench/probe"), { recursive: true });
  copyFileSync(path.join(ROOT, "bench/probe/index.js"), path.join(SNAP, "bench/probe/index.js"));
  const h = createHash("sha256");
  const walk = (dir) => {
    for (const f of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, f.name);
      if (f.isDirectory()) walk(p);
      else h.update(path.relative(SNAP, p)).update(readFileSync(p));
    }
  };
  walk(SNAP);
  return h.digest("hex").slice(0, 12);
}

/** The environment every child gets: node_modules/.bin first (Node 22 and wrangler), no telemetry. */
export function childEnv(extra = {}) {
  return {
    ...process.env,
    PATH: `${BIN}:${process.env.PATH}`,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_LOG_SANITIZE: "true",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    ...extra,
  };
}

function portFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

const taken = new Set();
/** A free port in 8800–8899 that this run has not handed out yet. */
export async function freePort() {
  for (let port = 8800; port <= 8899; port++) {
    if (taken.has(port)) continue;
    if (await portFree(port)) {
      taken.add(port);
      return port;
    }
  }
  throw new Error("no free port in 8800-8899");
}

/**
 * The steps `npm run dev` runs, read from package.json, so the bench runs the Worker exactly
 * as a developer does, only with its own port and --persist-to directory.
 */
export function devSteps(root = ROOT) {
  const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
  const expand = (script, depth = 0) =>
    script
      .split("&&")
      .map((s) => s.replace(/<\s*\/dev\/null/g, "").trim())
      .filter(Boolean)
      .map((s) => s.split(/\s+/))
      .flatMap((argv) =>
        // `npm run X`: the steps of script X, so each wrangler step can be pointed at our state.
        argv[0] === "npm" && argv[1] === "run" && pkg.scripts[argv[2]] && depth < 5
          ? expand([pkg.scripts[argv[2]], ...argv.slice(argv[3] === "--" ? 4 : 3)].join(" "), depth + 1)
          : [argv],
      );
  return expand(pkg.scripts.dev);
}

/**
 * Runs the preparatory steps of `npm run dev` (migrations, seeding) against `persist`; `root` is the
 * checkout whose package.json and scripts/ they come from (another commit's, for a before/after).
 */
export function prepareLocal(persist, { config = snapConfig(), root = ROOT } = {}) {
  mkdirSync(persist, { recursive: true });
  for (const argv of devSteps(root)) {
    if (argv[0] === "wrangler" && argv[1] === "dev") continue;
    const args = [...argv.slice(1)];
    if (argv[0] === "wrangler") {
      args.push("--persist-to", persist);
      if (config) args.push("--config", config);
    } else {
      console.warn(`  [bench] note: running dev step as is (cannot redirect its state): ${argv.join(" ")}`);
    }
    const r = spawnSync(argv[0], args, {
      cwd: root,
      env: childEnv({ CI: "true" }),
      stdio: ["ignore", "pipe", "pipe"],
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`${argv.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  }
}

/** The `wrangler dev` argv of `npm run dev` (plus the bench's own flags). */
export function devCommand(root = ROOT) {
  const step = devSteps(root).find((a) => a[0] === "wrangler" && a[1] === "dev");
  if (!step) throw new Error("package.json scripts.dev has no `wrangler dev` step");
  return step;
}

export class Server {
  constructor(name, { port, inspectorPort, persist, argv, log }) {
    Object.assign(this, { name, port, inspectorPort, persist, argv, log });
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(name, { persist, config, extra = [], argv = ["wrangler", "dev"] }) {
    const port = await freePort();
    const inspectorPort = await freePort();
    mkdirSync(path.join(STATE, "logs"), { recursive: true });
    const log = path.join(STATE, "logs", `${name}.log`);
    const args = [
      ...argv.slice(1),
      ...(config ? ["--config", config] : []),
      "--port",
      String(port),
      "--ip",
      "127.0.0.1",
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      persist,
      "--show-interactive-dev-session=false",
      ...extra,
    ];
    const s = new Server(name, { port, inspectorPort, persist, argv: [argv[0], ...args], log });
    const out = createWriteStream(log);
    // Own process group, so stop() ends wrangler and the workerd processes it started, and nothing else.
    s.child = spawn(argv[0], args, { cwd: ROOT, env: childEnv(), detached: true, stdio: ["ignore", "pipe", "pipe"] });
    s.child.stdout.pipe(out);
    s.child.stderr.pipe(out);
    s.exited = new Promise((resolve) => s.child.once("exit", resolve));
    live.add(s);
    await s.ready();
    return s;
  }

  async ready(timeoutMs = 120_000) {
    const until = Date.now() + timeoutMs;
    let exited = false;
    this.exited.then(() => (exited = true));
    while (Date.now() < until) {
      if (exited) throw new Error(`${this.name}: wrangler exited during start; see ${this.log}`);
      try {
        const res = await fetch(`${this.url}/__bench_ready`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (this.workerdPids().length > 0) return;
      } catch {}
      await sleep(250);
    }
    throw new Error(`${this.name}: not ready after ${timeoutMs} ms; see ${this.log}`);
  }

  /** The workerd processes under this wrangler (its proxy and the Worker's runtime). */
  workerdPids() {
    return descendants(this.child.pid).filter((pid) => comm(pid) === "workerd");
  }

  /** CPU seconds (user + system) used so far by this instance's workerd processes. */
  cpuSeconds() {
    let ticks = 0;
    for (const pid of this.workerdPids()) ticks += cpuTicks(pid);
    return ticks / CLK_TCK;
  }

  /**
   * CPU seconds by role: `proxy` is the workerd wrangler puts in front (its entry socket is our port),
   * `runtime` the workerd that runs the Worker, its D1 and its Queue.
   */
  cpuByRole() {
    const out = { proxy: 0, runtime: 0 };
    for (const pid of this.workerdPids()) out[this.isProxy(pid) ? "proxy" : "runtime"] += cpuTicks(pid) / CLK_TCK;
    return out;
  }

  /** Resident memory of the workerd processes, MiB. */
  rssMiB() {
    const r = this.rssByRole();
    return r.proxy + r.runtime;
  }

  /**
   * Resident memory (MiB) by role: the two workerd processes as in cpuByRole(), and `wrangler`,
   * the Node processes of the wrangler CLI itself (its dev server, its log of every request).
   */
  rssByRole() {
    const out = { proxy: 0, runtime: 0, wrangler: 0 };
    for (const pid of [this.child.pid, ...descendants(this.child.pid)]) {
      const role = comm(pid) === "workerd" ? (this.isProxy(pid) ? "proxy" : "runtime") : "wrangler";
      out[role] += rssKiB(pid) / 1024;
    }
    return out;
  }

  /** CPU seconds of wrangler's own Node processes (not its workerd children). */
  wranglerCpuSeconds() {
    let ticks = 0;
    for (const pid of [this.child.pid, ...descendants(this.child.pid)])
      if (comm(pid) !== "workerd") ticks += cpuTicks(pid);
    return ticks / CLK_TCK;
  }

  isProxy(pid) {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`entry=127.0.0.1:${this.port}`);
    } catch {
      return false;
    }
  }

  /**
   * How often wrangler has reloaded the Worker since it started: it rebuilds and restarts the runtime
   * when a file it watches changes (another engineer's edit can do it), which resets what a load measures.
   */
  reloads() {
    try {
      return readFileSync(this.log, "utf8").split("Reloading local server").length - 1;
    } catch {
      return 0;
    }
  }

  async stop() {
    if (!live.has(this)) return;
    live.delete(this);
    try {
      process.kill(-this.child.pid, "SIGTERM");
    } catch {}
    const done = await Promise.race([this.exited.then(() => true), sleep(8000).then(() => false)]);
    if (!done) {
      try {
        process.kill(-this.child.pid, "SIGKILL");
      } catch {}
      await this.exited;
    }
    // workerd children may outlive wrangler for a moment; wait until the group is gone.
    for (let i = 0; i < 40; i++) {
      try {
        process.kill(-this.child.pid, 0);
      } catch {
        return;
      }
      await sleep(100);
    }
    try {
      process.kill(-this.child.pid, "SIGKILL");
    } catch {}
  }
}

const live = new Set();
export async function stopAll() {
  await Promise.all([...live].map((s) => s.stop()));
}
/** Synchronous last resort (process exit): kill the process groups this run started. */
export function killAllSync() {
  for (const s of live) {
    try {
      process.kill(-s.child.pid, "SIGKILL");
    } catch {}
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

function statFields(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  // comm may hold spaces: fields start after the last ')'.
  const close = text.lastIndexOf(")");
  return { comm: text.slice(text.indexOf("(") + 1, close), rest: text.slice(close + 2).split(" ") };
}
function comm(pid) {
  try {
    return statFields(pid).comm;
  } catch {
    return "";
  }
}
function cpuTicks(pid) {
  try {
    const { rest } = statFields(pid);
    // rest[0] is field 3 (state): utime is field 14, stime field 15.
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return 0;
  }
}
function rssKiB(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}
function descendants(root) {
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = Number(statFields(name).rest[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {}
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/** The D1 database file(s) wrangler keeps under a --persist-to directory. */
export function d1Files(persist) {
  const dir = path.join(persist, "v3/d1/miniflare-D1DatabaseObject");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite")
    .map((f) => path.join(dir, f));
}

/**
 * A wrangler config derived from the snapshot's wrangler.toml (or `template`, another commit's), same
 * bindings, vars, queues and D1, written to `file` with another entry point (a path relative to the
 * template's folder) and optionally another migrations folder.
 */
export function writeDerivedConfig({
  file,
  main,
  nameSuffix,
  migrationsDir,
  transform = (t) => t,
  template = snapConfig(),
}) {
  let text = readFileSync(template, "utf8");
  const dir = path.dirname(file);
  const rel = (p) => path.relative(dir, path.resolve(path.dirname(template), p));
  text = text
    .replace(/^main\s*=\s*".*"/m, `main = "${rel(main)}"`)
    .replace(/^name\s*=\s*"(.*)"/m, `name = "$1-${nameSuffix}"`)
    .replace(/^(\s*migrations_dir\s*=\s*)"(.*)"/gm, (_, k, d) => `${k}"${rel(migrationsDir ?? d)}"`)
    // Static assets (public/ since 7ef60c3) stay the template's.
    .replace(/^(\s*directory\s*=\s*)"(.*)"/gm, (_, k, d) => `${k}"${rel(d)}"`);
  text = transform(text);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    file,
    `# GENERATED by bench/lib/servers.mjs from wrangler.toml on every bench run; do not edit.\n${text}`,
  );
  return file;
}

/** The project's config with the probe (bench/probe/index.js, in the snapshot) as its entry. */
export function writeProbeConfig(transform) {
  return writeDerivedConfig({
    file: path.join(SNAP, "bench/probe/wrangler.toml"),
    main: "bench/probe/index.js",
    nameSuffix: "bench-probe",
    transform,
  });
}

/** The first `[[queues.consumers]]` block's max_batch_timeout (the events queue's), set to `seconds`. */
export const withBatchTimeout = (seconds) => (text) => {
  const at = text.indexOf("[[queues.consumers]]");
  if (at < 0) return text;
  const head = text.slice(0, at);
  const rest = text.slice(at);
  return head + rest.replace(/max_batch_timeout\s*=\s*[\d.]+/, `max_batch_timeout = ${seconds}`);
};

/**
 * The Worker as it was at git `ref` (src/, migrations/, wrangler.toml, scripts/, public/, package.json), written
 * to `dir` for a before/after in one run; its imports resolve to this checkout's node_modules.
 * Returns the short commit, or throws if `ref` is unknown.
 */
export function exportCommit(ref, dir) {
  const commit = spawnSync("git", ["rev-parse", "--short", `${ref}^{commit}`], { cwd: ROOT, encoding: "utf8" });
  if (commit.status !== 0) throw new Error(`git rev-parse ${ref}: ${commit.stderr.trim()}`);
  const paths = ["src", "migrations", "wrangler.toml", "scripts", "public", "package.json", "tsconfig.json"].filter(
    (p) => spawnSync("git", ["cat-file", "-e", `${ref}:${p}`], { cwd: ROOT }).status === 0,
  );
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const archive = spawnSync("git", ["archive", ref, ...paths], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 });
  if (archive.status !== 0) throw new Error(`git archive ${ref}: ${archive.stderr}`);
  const tar = spawnSync("tar", ["-x", "-C", dir], { input: archive.stdout });
  if (tar.status !== 0) throw new Error(`tar -x into ${dir}: ${tar.stderr}`);
  return commit.stdout.trim();
}
