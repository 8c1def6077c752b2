// What the generators share (npm run openapi, the client's generate.mjs): the server's TypeScript
// sources bundled by esbuild (zod included) and imported into Node, and wrangler.toml's [vars] as
// the repository's own wrangler reads them. Needs the repository's install (npm ci at the root).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Bundles `entry` (module code resolved from the repository's root) and imports the result. */
export async function importBundled(entry, { platform = "node", prefix = "eye-source-" } = {}) {
  const out = await build({
    stdin: { contents: entry, resolveDir: ROOT, loader: "ts" },
    bundle: true,
    format: "esm",
    platform,
    write: false,
    logLevel: "error",
  });
  // Fully bundled, so it imports from anywhere; a file (not a data: URL) keeps stack traces readable.
  const file = path.join(mkdtempSync(path.join(tmpdir(), prefix)), "bundle.mjs");
  writeFileSync(file, out.outputFiles[0].text);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

/** wrangler.toml's [vars], read by the repository's own wrangler. */
export async function wranglerVars() {
  const require = createRequire(path.join(ROOT, "package.json"));
  const wrangler = await import(pathToFileURL(require.resolve("wrangler")).href);
  return wrangler.unstable_readConfig({ config: path.join(ROOT, "wrangler.toml") }).vars;
}

/**
 * Writes a generated file, or with --check on the command line only compares: exit 1 (and `fix`
 * named) when the file on disk is not what the code gives.
 */
export function writeOrCheck(file, text, fix) {
  const name = path.relative(process.cwd(), file);
  if (!process.argv.includes("--check")) {
    writeFileSync(file, text);
    console.log(`wrote ${name} (${text.length} bytes)`);
    return;
  }
  let current = "";
  try {
    current = readFileSync(file, "utf8");
  } catch {}
  if (current !== text) {
    console.error(`${name} is not what the code gives: run ${fix}`);
    process.exit(1);
  }
  console.log(`${name} is up to date`);
}
