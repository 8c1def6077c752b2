// The Eye's benchmark suite (issue 4): `npm run bench` (full: 1,167 s in the run of 07:45 UTC 2026-11-28, before the
// schemas, erasure and context phases; see bench/README.md) or `npm run bench -- --quick`.
// Starts everything it needs on 127.0.0.1 (wrangler dev instances on ports 8800–8899, each with its
// own --persist-to under bench/.state), runs the phases in PHASES below (each a module in phases/) side
// by side with their ceilings, prints a table and (full runs) writes it into BENCHMARKS.md. See bench/README.md.
//
// Flags: --quick         small sizes (a couple of minutes; results go to bench/.results/ only)
//        --only a,b      phases: e2e, ingest, counts, consumer, fix, query, tenants, quiet, keycache, schemas, flood, storage, cost, erasure, archive, context,
//                        and memory, before-after, hot-tier, hotpath (opt-in: only when named here)
//        --no-write      do not touch BENCHMARKS.md
//        --rebuild       reload the query data set even if a cached one matches
//        --ref <commit>  bench that commit's src/, migrations/ and wrangler.toml instead of the working tree
//        --flood-base <commit>, --flood-rate <req/s>   the `flood` phase's code before the fix, and its flood's pace
//        --minutes <n>, --control-minutes <m>, --clients each   the `memory` phase's load (10 min), its
//                        control's (half that; 0 = none), a new client address per request instead of 1,000
//        --base <commit> the earlier version of the `before-after`, `storage` and `tenants` phases (16f69f7; `hot-tier`: 98090c0),
//                        and the baseline of `hotpath` (main)
//        --hot-rows <n>  the `hot-tier` phase's query data set (1,000,000; 100,000 with --quick)
//        --also <c,…>, --passes <n>   `hotpath`: more versions beside base and head, and its passes (3)
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { warm } from "./lib/load.mjs";
import { render, writeBenchmarksMd } from "./lib/report.mjs";
import { devCommand, killAllSync, makeSnapshot, ROOT, Server, SNAP, STATE, stopAll } from "./lib/servers.mjs";
import { sqliteNode } from "./lib/sqlite.mjs";
import * as archive from "./phases/archive.mjs";
import * as authFlood from "./phases/auth-flood.mjs";
import * as beforeAfter from "./phases/before-after.mjs";
import * as context from "./phases/context.mjs";
import * as cost from "./phases/cost.mjs";
import * as erasure from "./phases/erasure.mjs";
import * as hotTier from "./phases/hot-tier.mjs";
import * as hotpath from "./phases/hotpath.mjs";
import * as keyCache from "./phases/key-cache.mjs";
import * as memory from "./phases/memory.mjs";
import * as payloadSchemas from "./phases/payload-schemas.mjs";
import * as pipeline from "./phases/pipeline.mjs";
import * as probe from "./phases/probe.mjs";
import * as query from "./phases/query.mjs";
import * as quiet from "./phases/quiet.mjs";
import * as storage from "./phases/storage.mjs";
import * as tenants from "./phases/tenants.mjs";

const argv = process.argv.slice(2);
/** The value of `--name v` or `--name=v`. */
const flag = (name) => {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  return argv[i].includes("=") ? argv[i].slice(name.length + 1) : argv[i + 1];
};
const QUICK = argv.includes("--quick");
const ONLY = flag("--only")?.split(",") ?? null;
/** Whether a measurement (a name --only takes) is selected. */
const selected = (name) => (!ONLY || ONLY.includes(name)) && !(argv.includes("--no-quiet") && name === "quiet");
const FLAGS = {
  ref: flag("--ref"),
  rebuild: argv.includes("--rebuild"),
  floodBase: flag("--flood-base"),
  floodRate: flag("--flood-rate"),
  minutes: flag("--minutes"),
  controlMinutes: flag("--control-minutes"),
  clients: flag("--clients"),
  base: flag("--base"),
  hotRows: flag("--hot-rows"),
  also: flag("--also"),
  passes: flag("--passes"),
};

// The phases, in the order they run; each is a module in bench/phases/ with run(ctx[, trivial]).
// `names`: what --only selects (a phase runs when any of its names is selected; an opt-in phase only when
// --only names it). `trivial`: it measures beside the trivial Worker, started once for all such phases.
// `key`: the phase returns its own results, kept as R[key] and rendered by its own render(); the others
// fill the shared tables in R that lib/report.mjs renders.
const PHASES = [
  { names: ["e2e", "ingest"], module: pipeline, trivial: true },
  { names: ["counts", "consumer", "fix"], module: probe },
  { names: ["query"], module: query, trivial: true },
  { names: ["tenants"], module: tenants, key: "tenants", trivial: true },
  { names: ["quiet"], module: quiet },
  { names: ["keycache"], module: keyCache },
  { names: ["schemas"], module: payloadSchemas, key: "payloadSchemas" },
  { names: ["flood"], module: authFlood, key: "flood" },
  { names: ["storage"], module: storage, key: "storage" },
  { names: ["cost"], module: cost, key: "billing" }, // R.cost is the shared report's cost table
  { names: ["erasure"], module: erasure, key: "erasure" },
  { names: ["archive"], module: archive, key: "archive" },
  { names: ["context"], module: context, key: "context" },
  { names: ["memory"], module: memory, key: "memory", optIn: true },
  { names: ["before-after"], module: beforeAfter, key: "beforeAfter", trivial: true, optIn: true },
  { names: ["hot-tier"], module: hotTier, key: "hotTier", trivial: true, optIn: true },
  { names: ["hotpath"], module: hotpath, key: "hotpath", trivial: true, optIn: true },
];
const runs = (p) => (p.optIn ? p.names.some((n) => ONLY?.includes(n)) : p.names.some(selected));

const SIZES = QUICK
  ? {
      ingestSeconds: 2,
      e2eSingle: 1_000,
      e2eBatch: 10_000,
      countSingle: 300,
      countBatchEvents: 5_000,
      consumerBatches: 4,
      queryRows: 100_000,
      latencySeconds: 0.5,
      budgetMin: 8,
    }
  : {
      ingestSeconds: 10,
      e2eSingle: 10_000,
      e2eBatch: 100_000,
      countSingle: 2_000,
      countBatchEvents: 20_000,
      consumerBatches: 20,
      queryRows: 1_000_000,
      latencySeconds: 2,
      budgetMin: 20,
    };

const R = { meta: {}, ingest: [], e2e: [], counts: [], consumer: [], query: null, cost: {}, notes: [] };

function log(...a) {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);
}

async function main() {
  const t0 = Date.now();
  // The memory phase's sustained loads come on top of the usual budget.
  const budgetMin =
    SIZES.budgetMin +
    PHASES.filter(runs).reduce((n, p) => n + (p.module.budgetMinutes?.({ quick: QUICK, flags: FLAGS }) ?? 0), 0);
  const deadline = setTimeout(() => {
    console.error(`bench: over its ${budgetMin}-minute budget; stopping everything it started`);
    killAllSync();
    process.exit(3);
  }, budgetMin * 60_000);
  deadline.unref();
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
      killAllSync();
      process.exit(130);
    });
  }
  process.on("exit", killAllSync);

  mkdirSync(STATE, { recursive: true });
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 22)
    throw new Error(`wrangler needs Node >= 22 (this is ${process.version}); run it as \`npm run bench\``);
  meta();
  R.meta.snapshot = makeSnapshot(FLAGS.ref);
  log(
    `code under test copied to ${path.relative(ROOT, SNAP)} (content hash ${R.meta.snapshot}); later edits to the working tree do not affect this run`,
  );
  log(`mode ${QUICK ? "QUICK" : "FULL"}; raw SQLite under ${R.meta.sqliteNode}`);

  const trivialConfig = path.join(ROOT, "bench/trivial/wrangler.toml");
  const ctx = { sizes: SIZES, quick: QUICK, log, R, flags: FLAGS, selected, trivialConfig };
  const chosen = PHASES.filter(runs);
  const lastWithTrivial = chosen.findLastIndex((p) => p.trivial);
  let trivial;
  for (const [i, p] of chosen.entries()) {
    if (p.trivial && !trivial) {
      trivial = await Server.start("trivial", { persist: path.join(STATE, "trivial"), config: trivialConfig });
      await warm(`${trivial.url}/`, {});
      log(`trivial Worker on ${trivial.url}`);
    }
    const out = await p.module.run(ctx, trivial);
    if (p.key) R[p.key] = out;
    if (i === lastWithTrivial) await trivial.stop();
  }

  await stopAll();
  R.meta.totalSeconds = (Date.now() - t0) / 1000;
  R.meta.loadavgAtEnd = os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(" ");
  // The measurements first, so a failure in rendering loses none of them.
  mkdirSync(path.join(ROOT, "bench/.results"), { recursive: true });
  const stamp = `${QUICK ? "quick" : "full"}${ONLY ? `-only-${ONLY.join("-")}` : ""}`;
  writeFileSync(path.join(ROOT, `bench/.results/${stamp}.json`), JSON.stringify(R, null, 2));
  const md = [
    render(R),
    ...PHASES.filter((p) => p.key && R[p.key]).map((p) => p.module.render(R[p.key]).join("\n")),
  ].join("\n");
  console.log(`\n${md}`);
  writeFileSync(path.join(ROOT, `bench/.results/${stamp}.md`), md);
  if (!QUICK && !ONLY && !argv.includes("--no-write")) {
    writeBenchmarksMd(path.join(ROOT, "BENCHMARKS.md"), md);
    log("results written to BENCHMARKS.md and bench/.results/full.{md,json}");
  } else {
    log(
      `results written to bench/.results/${stamp}.{md,json}${QUICK || ONLY ? " (quick or partial runs leave BENCHMARKS.md alone)" : ""}`,
    );
  }
  log(`done in ${R.meta.totalSeconds.toFixed(0)} s`);
}

function meta() {
  const version = (p) => {
    try {
      return JSON.parse(readFileSync(path.join(ROOT, "node_modules", p, "package.json"), "utf8")).version;
    } catch {
      return "?";
    }
  };
  let git = "?";
  try {
    git = execFileSync("git", ["rev-parse", "--short", `${FLAGS.ref ?? "HEAD"}^{commit}`], {
      cwd: ROOT,
      encoding: "utf8",
    }).trim();
    const dirty =
      !FLAGS.ref &&
      execFileSync("git", ["status", "--porcelain", "--", "src", "migrations", "wrangler.toml", "public"], {
        cwd: ROOT,
        encoding: "utf8",
      }).trim();
    if (dirty) git += " + uncommitted changes in src/migrations/wrangler.toml";
  } catch {}
  const s = sqliteNode();
  Object.assign(R.meta, {
    mode: QUICK ? "quick" : "full",
    date: new Date().toISOString(),
    git,
    node: process.version,
    sqliteNode: `${s.node} (${s.version})`,
    sqlite: s.sqlite,
    wrangler: version("wrangler"),
    workerd: version("workerd"),
    autocannon: version("autocannon"),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    loadavgAtStart: os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(" "),
    sizes: SIZES,
    devCommand: devCommand().join(" "),
  });
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
