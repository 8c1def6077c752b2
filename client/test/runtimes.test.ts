// The built client (dist/) where else it claims to run: inside a Worker (workerd, through the
// repository's own Miniflare), and in a Node 20 process (the oldest Node it supports; the tests
// themselves run on the repository's Node 22).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { eyeUrl, newSession, WRITE_KEY, waitForEvents } from "./helpers/eye.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const DIST = path.resolve(import.meta.dirname, "../dist/index.js");

/** A Node 20 binary: NODE20_PATH, or the machine's own node when it is 20. */
function node20(): string | undefined {
  for (const candidate of [process.env.NODE20_PATH, "/usr/bin/node", "/usr/local/bin/node"]) {
    if (!candidate || !existsSync(candidate)) continue;
    const version = spawnSync(candidate, ["--version"], { encoding: "utf8" }).stdout.trim();
    if (version.startsWith("v20.")) return candidate;
  }
  return undefined;
}

describe("runtimes", () => {
  it("inside a Worker: track() in a fetch handler, flush() in waitUntil, and the event arrives", async () => {
    const entry = `
      import { createTracker } from ${JSON.stringify(DIST)};
      export default {
        async fetch(request, env, ctx) {
          const { endpoint, writeKey, session } = await request.json();
          // No timer in a Worker (the default there): the flush runs in waitUntil, after the response.
          const tracker = createTracker({ endpoint, writeKey, sessionId: session });
          const id = tracker.track("worker", "request", { runtime: navigator.userAgent });
          ctx.waitUntil(tracker.flush());
          return Response.json({ id });
        },
      };`;
    const bundle = await build({
      stdin: { contents: entry, resolveDir: ROOT, loader: "js" },
      bundle: true,
      format: "esm",
      write: false,
      logLevel: "error",
    });
    const miniflare = (await import(
      pathToFileURL(path.join(ROOT, "node_modules/miniflare/dist/src/index.js")).href
    )) as typeof import("miniflare");
    const mf = new miniflare.Miniflare({
      workers: [
        {
          config: {
            name: "client-in-a-worker",
            compatibilityDate: "2026-11-01",
            manifest: {
              mainModule: "worker.mjs",
              modules: { "worker.mjs": { type: "esm", contents: bundle.outputFiles[0]!.text } },
            },
          },
        },
      ],
    });
    try {
      const session = newSession("worker");
      const res = await mf.dispatchFetch("http://worker.local/", {
        method: "POST",
        body: JSON.stringify({ endpoint: eyeUrl(), writeKey: WRITE_KEY, session }),
      });
      const { id } = (await res.json()) as { id: string };
      const [stored] = await waitForEvents(session, 1);
      expect(stored).toMatchObject({ event_id: id, category: "worker", data: { runtime: "Cloudflare-Workers" } });
    } finally {
      await mf.dispose();
    }
  });

  const node = node20();
  it.runIf(node !== undefined)("in a Node 20 process: tracks, closes (flushing), and the event arrives", async () => {
    const session = newSession("node20");
    const script = `
      const { createTracker } = await import(${JSON.stringify(pathToFileURL(DIST).href)});
      const tracker = createTracker({ endpoint: process.env.EYE, writeKey: process.env.KEY, sessionId: process.env.SESSION });
      const id = tracker.track("node", "script", { version: process.version });
      const result = await tracker.close();
      console.log(JSON.stringify({ id, ...result }));`;
    const r = spawnSync(node!, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      env: { ...process.env, EYE: eyeUrl(), KEY: WRITE_KEY, SESSION: session },
      timeout: 30_000,
    });
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout) as { id: string; sent: number; queued: number };
    expect(out).toMatchObject({ sent: 1, queued: 0 });
    const [stored] = await waitForEvents(session, 1);
    expect(stored!.event_id).toBe(out.id);
    expect(String(stored!.data.version)).toMatch(/^v20\./);
  });
});
