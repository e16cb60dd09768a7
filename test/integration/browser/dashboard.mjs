// Drives the admin dashboard in headless Chromium (Debian's, never a downloaded browser):
// checks the live figures render, then edits and applies a filter chain, first a broken
// one (the validation errors must show), then a good one.
//
//   node dashboard.mjs ADMIN_URL TOKEN NEW_BODY SCREENSHOT.png
//
// Prints one JSON line with what it saw; exits non-zero on any failure.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [adminUrl, token, newBody, screenshot] = process.argv.slice(2);
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "pounce-dashboard-"));
const seen = {};

const context = await chromium.launchPersistentContext(profile, {
  executablePath: browserPath,
  headless: true,
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(adminUrl + "/");

  if (token) {
    // The page itself needs no token; its first data request gets 401 and asks for one.
    await page.waitForSelector("#auth", { state: "visible", timeout: 10000 });
    seen.asked_for_token = true;
    await page.fill("#token", token);
    await page.click("#token-save");
  }

  await page.waitForFunction(() => document.getElementById("state").textContent === "LIVE",
                             null, { timeout: 10000 });
  seen.state = await page.textContent("#state");
  // Two stats samples make a rate; traffic runs while the page watches.
  await page.waitForFunction(() => parseFloat(document.getElementById("rps").textContent) > 0,
                             null, { timeout: 15000 });
  seen.rps = parseFloat(await page.textContent("#rps"));
  await page.waitForFunction(() => document.getElementById("latency-p99").textContent !== "–",
                             null, { timeout: 15000 });
  seen.latency_p50 = await page.textContent("#latency-p50");
  seen.latency_p99 = await page.textContent("#latency-p99");
  seen.connections = await page.textContent("#connections");
  seen.listeners = await page.$$eval("#listeners tbody tr", (rows) => rows.map((r) => ({
    name: r.dataset.listener,
    chain: [...r.querySelectorAll("td.chain span")].map((s) => s.textContent),
  })));
  seen.counters = await page.$$eval("#counters tbody tr td:first-child",
                                    (cells) => cells.map((c) => c.textContent));

  // The editor loads the chain of the selected listener as YAML.
  await page.waitForFunction(() => document.getElementById("chain-editor").value.includes("direct_response"),
                             null, { timeout: 10000 });
  const original = await page.inputValue("#chain-editor");
  seen.loaded_chain = original;

  // A broken chain: the errors are shown, nothing changes.
  await page.fill("#chain-editor", original.replace("body:", "bodee:"));
  await page.click("#chain-apply");
  await page.waitForFunction(() => document.querySelectorAll("#chain-errors li").length > 0,
                             null, { timeout: 10000 });
  seen.errors = await page.$$eval("#chain-errors li", (items) => items.map((i) => i.textContent));
  seen.error_result = await page.textContent("#chain-result");

  // A good one: applied, and the listener table shows the new version.
  await page.fill("#chain-editor", original.replace(/body: .*/, `body: "${newBody}"`));
  await page.click("#chain-apply");
  await page.waitForFunction(() => document.getElementById("chain-result").textContent.startsWith("applied"),
                             null, { timeout: 10000 });
  seen.applied = await page.textContent("#chain-result");
  await page.waitForFunction(() => document.getElementById("config-version").textContent === "2",
                             null, { timeout: 10000 });
  seen.config_version = await page.textContent("#config-version");
  // The 401 before the token and the 400 of the broken chain are expected answers.
  seen.console_errors = consoleErrors.filter((e) => !e.startsWith("Failed to load resource"));
  await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(seen));
