// The query data sets: N synthetic events loaded the fast way into a local D1 file, for any code
// version (its migrations, its wrangler.toml, its dev steps), kept and reused while they match.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { childEnv, d1Files, prepareLocal, ROOT, SNAP, STATE, snapConfig, writeDerivedConfig } from "./servers.mjs";
import { sqliteTask } from "./sqlite.mjs";

/** What a data set depends on: the migrations and the loader. */
export function migrationsHash(migDir = path.join(SNAP, "migrations")) {
  const h = createHash("sha256");
  for (const f of readdirSync(migDir)
    .filter((f) => f.endsWith(".sql"))
    .sort())
    h.update(f).update(readFileSync(path.join(migDir, f)));
  h.update(readFileSync(path.join(ROOT, "bench/sqlite-tasks.cjs")));
  return h.digest("hex").slice(0, 16);
}

/** A wrangler migrations folder holding those of `migDir` that `filter` keeps (by file name); returns their names. */
export function stageMigrations(migDir, stageDir, filter) {
  rmSync(stageDir, { recursive: true, force: true });
  mkdirSync(stageDir, { recursive: true });
  const all = readdirSync(migDir)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  const kept = all.filter(filter);
  for (const f of kept) copyFileSync(path.join(migDir, f), path.join(stageDir, f));
  return kept;
}

/** Applies a migrations folder with wrangler to the local D1 under `persist`, as the code's config names it. */
export function applyMigrations(persist, { migrationsDir, template = snapConfig(), name = "stage" }) {
  const config = writeDerivedConfig({
    file: path.join(STATE, `${name}-wrangler.toml`),
    main: "src/index.ts",
    nameSuffix: `bench-${name}`,
    migrationsDir,
    template,
  });
  const t0 = Date.now();
  execFileSync(
    "wrangler",
    ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist, "--config", config],
    { cwd: ROOT, env: childEnv({ CI: "true" }), stdio: ["ignore", "pipe", "pipe"] },
  );
  return (Date.now() - t0) / 1000;
}

/**
 * The data set `name` (a folder under bench/.state): apply the code's migrations up to the one that
 * creates `events`, write the rows straight into the local D1 SQLite file with node:sqlite (wrangler
 * not running), then apply the remaining migrations and the dev seed as `npm run dev` does, so
 * backfills in later migrations (count roll-ups, compact events) cover the rows as they would have
 * covered events stored before them.
 *
 * `code`: { migrationsDir, config, root } of the code version (default: the run's snapshot).
 * `load`: what the loader writes ({ appId } one application, or { apps, tenant } several; see sqlite-tasks.cjs).
 */
export async function buildDataset({ name, rows, load, code = {}, rebuild = false, log = () => {} }) {
  const migDir = code.migrationsDir ?? path.join(SNAP, "migrations");
  const config = code.config ?? snapConfig();
  const dir = path.join(STATE, name);
  const markerFile = path.join(dir, "dataset.json");
  const hash = migrationsHash(migDir);
  const loadKey = JSON.stringify(load);
  if (!rebuild && existsSync(markerFile)) {
    const marker = JSON.parse(readFileSync(markerFile, "utf8"));
    if (marker.rows === rows && marker.hash === hash && marker.load === loadKey && d1Files(dir).length === 1) {
      log(
        `reusing the ${rows}-event data set in ${path.relative(ROOT, dir)} (built ${marker.builtAt}, load ${marker.loadSeconds} s)`,
      );
      return { dir, file: d1Files(dir)[0], marker, reused: true };
    }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const all = readdirSync(migDir)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  const firstWithEvents = all.findIndex((f) =>
    /CREATE TABLE [`"]?events[`"]?/i.test(readFileSync(path.join(migDir, f), "utf8")),
  );
  const stage = path.join(STATE, `${name}-migrations-stage1`);
  stageMigrations(migDir, stage, (f) => all.indexOf(f) <= firstWithEvents);
  const t0 = Date.now();
  applyMigrations(dir, { migrationsDir: stage, template: config, name: `${name}-stage1` });
  const [file] = d1Files(dir);
  log(`loading ${rows} events into ${path.relative(ROOT, file)} with node:sqlite`);
  const loaded = await sqliteTask("load", { file, rows, seed: 42, ...load });
  const t1 = Date.now();
  prepareLocal(dir, { config, root: code.root ?? ROOT }); // the remaining migrations + dev seed, exactly as `npm run dev`
  const migrateSeconds = (Date.now() - t1) / 1000;
  const marker = {
    rows,
    hash,
    load: loadKey,
    appId: load.appId,
    builtAt: new Date().toISOString(),
    loadSeconds: loaded.seconds,
    migrateSeconds,
    totalSeconds: (Date.now() - t0) / 1000,
    appliedAfterLoad: all.slice(firstWithEvents + 1),
  };
  writeFileSync(markerFile, JSON.stringify(marker, null, 2));
  return { dir, file, marker, reused: false };
}
