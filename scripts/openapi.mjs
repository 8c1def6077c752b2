#!/usr/bin/env node
// Writes public/api/openapi.json, the static file served at GET /api/openapi.json and rendered by
// /docs, from src/openapi.ts: the zod schemas the routes validate with, and the limits wrangler.toml's
// [vars] set (as the Worker reads them). The Worker never builds it, so its bundle carries none of it.
//   npm run openapi              rewrite the file
//   npm run openapi -- --check   exit 1 when the file is not what the code gives (test/unit/openapi.test.ts checks it too)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUTPUT = path.join(root, "public/api/openapi.json");

/** src/openapi.ts bundled (zod included) into a temporary module, and imported. */
async function loadDocument() {
  const out = await build({
    stdin: { contents: 'export { openApiDocument, docLimits } from "./src/openapi.ts";', resolveDir: root, loader: "ts" },
    bundle: true,
    format: "esm",
    platform: "node",
    write: false,
    logLevel: "error",
  });
  const file = path.join(mkdtempSync(path.join(tmpdir(), "eye-openapi-")), "openapi.mjs");
  writeFileSync(file, out.outputFiles[0].text);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

const { openApiDocument, docLimits } = await loadDocument();
const wrangler = await import(pathToFileURL(createRequire(path.join(root, "package.json")).resolve("wrangler")).href);
const { vars } = wrangler.unstable_readConfig({ config: path.join(root, "wrangler.toml") });
const text = `${JSON.stringify(openApiDocument(docLimits(vars)), null, 2)}\n`;

if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(OUTPUT, "utf8");
  } catch {}
  if (current !== text) {
    console.error("public/api/openapi.json is not what src/openapi.ts and wrangler.toml give: run npm run openapi");
    process.exit(1);
  }
  console.log("public/api/openapi.json is up to date");
} else {
  writeFileSync(OUTPUT, text);
  console.log(`wrote public/api/openapi.json (${text.length} bytes)`);
}
