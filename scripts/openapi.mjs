#!/usr/bin/env node
// Writes public/api/openapi.json, the static file served at GET /api/openapi.json and rendered by
// /docs, from src/openapi/document.ts: the zod schemas the routes validate with, and the limits wrangler.toml's
// [vars] set (as the Worker reads them). The Worker never builds it, so its bundle carries none of it.
//   npm run openapi              rewrite the file
//   npm run openapi -- --check   exit 1 when the file is not what the code gives (test/unit/openapi.test.ts checks it too)
import path from "node:path";
import { importBundled, ROOT, wranglerVars, writeOrCheck } from "./load-source.mjs";

const OUTPUT = path.join(ROOT, "public/api/openapi.json");
const { openApiDocument, docLimits } = await importBundled(
  'export { openApiDocument } from "./src/openapi/document.ts"; export { docLimits } from "./src/openapi/json-schema.ts";',
  { prefix: "eye-openapi-" },
);
const vars = await wranglerVars();
const text = `${JSON.stringify(openApiDocument(docLimits(vars)), null, 2)}\n`;

writeOrCheck(OUTPUT, text, "npm run openapi");
