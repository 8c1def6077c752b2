// Starts a stand-in Sentry on loopback: it records every envelope toucan-js posts, and lists them on GET.
import { createServer } from "node:http";
import { gunzipSync } from "node:zlib";
import type { TestProject } from "vitest/node";

export default async function setup(project: TestProject) {
  const received: { path: string; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "GET") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(received));
        return;
      }
      let body = Buffer.concat(chunks);
      if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
      received.push({ path: req.url ?? "", body: body.toString("utf8") });
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  project.provide("sentryPort", typeof address === "object" && address ? address.port : 0);
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

declare module "vitest" {
  interface ProvidedContext {
    sentryPort: number;
  }
}
