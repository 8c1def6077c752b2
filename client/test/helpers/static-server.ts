// Serves the built client (dist/) and a blank test page on 127.0.0.1, as a web site would: the
// page's origin differs from The Eye's, so what it sends is cross-origin, as in production.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import path from "node:path";

const DIST = path.resolve(import.meta.dirname, "../../dist");

/** The page: loads the built client and leaves it on window for the test to drive. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>The Eye client test page</title></head>
<body><p>client test page</p>
<script type="module">
  import * as EyeClient from "/dist/index.js";
  window.EyeClient = EyeClient;
  window.dispatchEvent(new Event("eye-client-ready"));
</script></body></html>`;

export async function staticServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/page.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      return res.end(PAGE);
    }
    if (url.pathname.startsWith("/dist/")) {
      const file = path.resolve(DIST, url.pathname.slice("/dist/".length));
      if (file.startsWith(DIST + path.sep)) {
        try {
          const body = await readFile(file);
          res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
          return res.end(body);
        } catch {
          // fall through to 404
        }
      }
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
