// Headless Debian chromium driven by playwright-core (no browser download), screenshots under
// target/ui-screenshots/ and axe-core scans.
"use strict";

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");
const { REPO } = require("./stack");

const CHROMIUM = process.env.SAGEBRIDGE_CHROMIUM || "/usr/bin/chromium";
const SHOTS = path.join(REPO, "target", "ui-screenshots");
const ARGS = [
  "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const AXE_SOURCE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

class Browser {
  async start(options) {
    this.userDir = fs.mkdtempSync(path.join(os.tmpdir(), "sagebridge-chromium-"));
    this.context = await chromium.launchPersistentContext(this.userDir, Object.assign({
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 900 },
      timeout: 60000,
    }, options || {}));
    this.context.setDefaultTimeout(15000);
    this.page = this.context.pages()[0] || await this.context.newPage();
    this.consoleErrors = [];
    this.page.on("console", (m) => { if (m.type() === "error") this.consoleErrors.push(m.text()); });
    this.page.on("pageerror", (e) => this.consoleErrors.push("page error: " + e.message));
    fs.mkdirSync(SHOTS, { recursive: true });
    return this;
  }

  async shot(name, opts) {
    const file = path.join(SHOTS, name + ".png");
    await this.page.screenshot(Object.assign({ path: file, fullPage: true }, opts || {}));
    return file;
  }

  // axe-core on the current page; returns the serious and critical violations.
  async axe() {
    // Evaluated over the DevTools protocol, which the page's CSP does not apply to.
    const loaded = await this.page.evaluate(() => typeof window.axe === "object");
    if (!loaded) await this.page.evaluate(AXE_SOURCE);
    const result = await this.page.evaluate(() => window.axe.run(document, {
      resultTypes: ["violations"],
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    }));
    return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary) }));
  }

  async stop() {
    if (this.context) await this.context.close().catch(() => {});
    if (this.userDir) fs.rmSync(this.userDir, { recursive: true, force: true });
  }
}

module.exports = { Browser, SHOTS };
