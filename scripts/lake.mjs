#!/usr/bin/env node
// The lake on a laptop: mirrors the R2 archive into a folder with the same Hive paths
// (events/app_id=…/date=…/part-….parquet), so DuckDB, ClickHouse or Spark read it as they would read
// R2 in place. It copies the objects the archive manifest (D1's archive_objects) lists as live, never
// an R2 listing, so a pull made during a compaction sees its inputs or its output, never both; files
// of the folder that are no longer live (merged by a compaction since the last pull) are removed,
// and files already there with the right size are kept. Locally it reads the state `npm run dev`
// keeps (.wrangler/state, or --persist-to) through wrangler's getPlatformProxy; with --remote,
// production through `wrangler d1 execute` and `wrangler r2 object get`. --env <env> selects a
// wrangler environment, passed through as wrangler's own --env.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { flag, run } from "./d1.mjs";

const USAGE = `usage: npm run lake -- <command> [--remote] [--env <env>] [--persist-to <dir>] [--config <wrangler.toml>]
  pull <dir>     mirror the archive's live objects into <dir>, same paths (events/app_id=…/date=…/…);
                 files no longer live are removed, files already there are kept
  list           the live objects' keys, one a line (what an in-place reader should read)
--remote: production (wrangler's login); --env <env>: a wrangler environment; --persist-to <dir>: the local
state of \`wrangler dev --persist-to <dir>\` (default .wrangler/state). Then, e.g.:
  duckdb -c "SELECT count(*) FROM read_parquet('<dir>/events/**/*.parquet', hive_partitioning = true)"`;

const args = process.argv.slice(2);
const remote = args.includes("--remote");
const env = flag(args, "--env");
const persistTo = flag(args, "--persist-to");
const configPath = flag(args, "--config");

/** The live objects, in key order, from one read of the manifest (one consistent set), and where the older archive ends. */
const LIVE_SQL = "SELECT key, bytes FROM archive_objects WHERE state = 'live' ORDER BY key";
const LEGACY_SQL = "SELECT legacy_through AS n FROM archive_state WHERE id = 1";

/** wrangler's own flags for the chosen database and environment. */
const where = () => [
  remote ? "--remote" : "--local",
  ...(env ? ["--env", env] : []),
  ...(configPath ? ["--config", configPath] : []),
];

function wrangler(argv, options = {}) {
  return execFileSync("wrangler", argv, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 256 * 1024 * 1024,
    ...options,
  });
}

/** The archive as the chosen place holds it: its live objects, the older archive's, and a way to fetch each. */
async function openArchive() {
  if (remote) {
    const sql = (command) =>
      JSON.parse(wrangler(["d1", "execute", "DB", ...where(), "--json", "--command", command])).flatMap(
        (r) => r.results ?? [],
      );
    const { unstable_readConfig } = await import("wrangler");
    const config = unstable_readConfig({ env, config: configPath });
    const bucket = config.r2_buckets.find((b) => b.binding === "ARCHIVE")?.bucket_name;
    if (!bucket) throw new Error("no R2 bucket bound as ARCHIVE in wrangler.toml");
    const legacy = sql(LEGACY_SQL)[0]?.n ?? 0;
    if (legacy > 0)
      console.warn(
        `note: the archive holds gzip NDJSON objects from before the manifest (ids up to ${legacy}); a remote pull copies the Parquet objects only`,
      );
    return {
      live: sql(LIVE_SQL),
      legacy: [],
      fetch: (key, file) => wrangler(["r2", "object", "get", `${bucket}/${key}`, ...where(), "--file", file]),
      close: async () => {},
    };
  }
  const { getPlatformProxy } = await import("wrangler");
  const proxy = await getPlatformProxy({
    configPath,
    environment: env,
    persist: persistTo ? { path: path.join(persistTo, "v3") } : true,
  });
  const { DB, ARCHIVE } = proxy.env;
  const all = async (command) => {
    try {
      return (await DB.prepare(command).all()).results;
    } catch (err) {
      if (/no such table/.test(String(err))) return [];
      throw err;
    }
  };
  const legacyThrough = (await all(LEGACY_SQL))[0]?.n ?? 0;
  const legacy = [];
  if (legacyThrough > 0) {
    let cursor;
    do {
      const listed = await ARCHIVE.list({ prefix: "events/", cursor });
      for (const o of listed.objects) {
        const first = /\/part-(\d+)\.ndjson\.gz$/.exec(o.key)?.[1];
        if (first !== undefined && Number(first) <= legacyThrough) legacy.push({ key: o.key, bytes: o.size });
      }
      cursor = listed.truncated ? listed.cursor : undefined;
    } while (cursor);
  }
  return {
    live: await all(LIVE_SQL),
    legacy,
    fetch: async (key, file) => {
      const object = await ARCHIVE.get(key);
      if (!object) throw new Error(`gone while pulled: ${key} (a compaction's grace ended?): pull again`);
      writeFileSync(file, new Uint8Array(await object.arrayBuffer()));
    },
    close: () => proxy.dispose(),
  };
}

/** Every file under a folder, as paths relative to `root`. */
function filesUnder(root, dir = root) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? filesUnder(root, path.join(dir, d.name)) : [path.relative(root, path.join(dir, d.name))],
  );
}

await run(
  {
    async list() {
      const archive = await openArchive();
      try {
        for (const o of [...archive.live, ...archive.legacy]) console.log(o.key);
      } finally {
        await archive.close();
      }
    },
    async pull([dir]) {
      if (!dir) throw new Error(USAGE);
      const archive = await openArchive();
      try {
        const wanted = [...archive.live, ...archive.legacy];
        const keep = new Set(wanted.map((o) => o.key));
        let copied = 0;
        let bytes = 0;
        for (const o of wanted) {
          const file = path.join(dir, ...o.key.split("/"));
          if (existsSync(file) && statSync(file).size === o.bytes) continue;
          mkdirSync(path.dirname(file), { recursive: true });
          await archive.fetch(o.key, `${file}.part`);
          renameSync(`${file}.part`, file);
          copied++;
          bytes += o.bytes;
        }
        let removed = 0;
        for (const rel of filesUnder(dir, path.join(dir, "events"))) {
          const key = rel.split(path.sep).join("/");
          if (!keep.has(key)) {
            rmSync(path.join(dir, rel));
            removed++;
          }
        }
        console.log(
          `${wanted.length} objects live (${archive.live.length} Parquet, ${archive.legacy.length} gzip NDJSON from before the manifest): ${copied} copied (${bytes} bytes), ${wanted.length - copied} already there, ${removed} no longer live removed, in ${dir}`,
        );
      } finally {
        await archive.close();
      }
    },
  },
  USAGE,
  ["--env", "--persist-to", "--config"],
);
