// A new user's first request: GET / names the service, its version and where the API and docs are;
// a browser gets the static home page, which reads the same from GET / as JSON.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { version } from "../../package.json";
import { BASE, worker } from "../helpers/api";

describe("GET /", () => {
  it("answers JSON with the service, its version, the API's endpoints and where the docs are, with no key", async () => {
    for (const path of ["/", "/api", "/api/"]) {
      const res = await worker.fetch(`${BASE}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      const body = (await res.json()) as {
        service: string;
        version: string;
        api: string;
        endpoints: { method: string; path: string }[];
        docs: string;
      };
      expect(body).toMatchObject({ service: "The Eye", version, api: "/api/" });
      expect(body.endpoints.map((e) => `${e.method} ${e.path}`)).toEqual(
        expect.arrayContaining([
          "POST /api/event/",
          "GET /api/event/",
          "GET /api/sessions/{session_id}/events",
          "GET /api/errors/",
        ]),
      );
      expect(body.docs).toMatch(/README/);
    }
  });

  it("answers a browser with the static home page, under the static pages' policy, never cached", async () => {
    const res = await worker.fetch(`${BASE}/`, {
      headers: { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    // public/_headers' policy for the page: its own script and style, and GET / of this origin.
    expect(res.headers.get("content-security-policy")).toMatch(
      /^default-src 'none'; script-src 'self'; style-src 'self';.*connect-src 'self';.*frame-ancestors 'none'$/,
    );
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await res.text();
    expect(html).toBe(await (await env.ASSETS.fetch(`${BASE}/home/`)).text());
    for (const href of ['href="/explorer/"', 'href="/docs/"', 'href="/api/openapi.json"', 'src="/home/home.js"'])
      expect(html).toContain(href);
    // The page shows the version and the endpoints from GET / as JSON (test/browser/home.test.ts
    // runs it), so they are written in one place.
    const script = await (await env.ASSETS.fetch(`${BASE}/home/home.js`)).text();
    expect(script).toMatch(/fetch\("\/", \{ headers: \{ accept: "application\/json" \}/);
  });

  it("answers JSON to a client that asks for JSON first, even beside text/html", async () => {
    const res = await worker.fetch(`${BASE}/`, { headers: { accept: "application/json, text/html;q=0.5" } });
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await res.json()).toMatchObject({ service: "The Eye", version });
  });

  it("answers other methods with 405 and Allow", async () => {
    const res = await worker.fetch(`${BASE}/`, { method: "POST", body: "{}" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
  });
});
