// The client's size as a page pays for it: dist/ bundled by esbuild, minified, then gzip -9.
// Whole library, and the tracker alone (what a page that only sends events imports).
//   npm run build && npm run size

import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist");

async function measure(label, contents) {
  const out = await build({
    stdin: { contents, resolveDir: dist, loader: "js" },
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    write: false,
    logLevel: "error",
  });
  const code = out.outputFiles[0].contents;
  console.log(
    `${label.padEnd(44)} ${String(code.byteLength).padStart(6)} B minified, ${String(gzipSync(code, { level: 9 }).byteLength).padStart(5)} B min+gzip`,
  );
}

await measure("everything (export * from index.js)", 'export * from "./index.js";');
await measure("sending only (createTracker, sessionId)", 'export { createTracker, sessionId } from "./index.js";');
await measure("reading only (createQueryClient)", 'export { createQueryClient } from "./index.js";');
