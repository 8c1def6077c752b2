// The home page (public/home/, what a browser gets at GET /) in headless Chromium against
// `wrangler dev`: the Worker relays the static page under the static pages' policy, and the page
// shows the service's version and endpoints from GET / as JSON, with no error in the console.
// Screenshots go to $EXPLORER_SCREENSHOTS (default: the-eye-explorer under the temp directory).
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { version } from "../../package.json";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Locally a missing browser skips these tests; in CI (which installs it) it fails them.
const run = existsSync(CHROMIUM) || process.env.CI !== undefined;
if (!run) console.warn(`home page browser tests skipped: no ${CHROMIUM} (apt-get install -y chromium)`);
const SHOTS = process.env.EXPLORER_SCREENSHOTS ?? path.join(tmpdir(), "the-eye-explorer");

const url = inject("eyeUrl");
let browser: Browser;

beforeAll(async () => {
  if (!run) return;
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
  });
});

afterAll(async () => {
  await browser?.close();
});

describe.runIf(run)("the home page", () => {
  it("is what a browser gets at /, showing the version and every endpoint of GET / as JSON", async () => {
    const service = (await (await fetch(`${url}/`)).json()) as { version: string; endpoints: { path: string }[] };
    expect(service.version).toBe(version);

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(String(e)));
    // A blocked script or style (the page's policy) is reported in the console.
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    const answer = await page.goto(`${url}/`);
    expect(answer?.headers()["content-security-policy"]).toMatch(/^default-src 'none'; script-src 'self'/);
    await page.waitForSelector("#endpoints tbody tr");

    expect(await page.textContent("#version")).toBe(`version ${version}`);
    expect(await page.title()).toBe(`The Eye ${version}`);
    expect(await page.locator("#endpoints tbody td.path").allTextContents()).toEqual(
      service.endpoints.map((e) => e.path),
    );
    // Styled by the explorer's stylesheet: the header is the explorer's.
    expect(await page.locator("header.top").evaluate((e) => getComputedStyle(e).position)).toBe("sticky");
    for (const href of ["/explorer/", "/docs/", "/api/openapi.json"])
      expect(await page.locator(`main a[href="${href}"]`).count(), href).toBe(1);
    expect(problems).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, "home.png"), fullPage: true });
    await context.close();
  });
});
