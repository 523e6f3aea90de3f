// Starts the processes the browser tests run against, all on 127.0.0.1 with free ports:
// moto (the AWS emulator) seeded with the demo account, the fake SageMaker runtime, and
// `sagebridge serve` with a temp catalog and a gateway file whose models call the fake runtime.
// Every process is stopped by its PID; every wait is bounded.
"use strict";

const { spawn, execFile } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const REPO = path.resolve(__dirname, "..", "..");
const CACHE = process.env.SAGEBRIDGE_CACHE || path.join(os.homedir(), ".cache", "sagebridge");
const TARGET = process.env.CARGO_TARGET_DIR || path.join(CACHE, "target");
const BIN = path.join(TARGET, "debug");
const VENV = process.env.SAGEBRIDGE_VENV || path.join(CACHE, "venv");
/// The static gateway key of the test's sagebridge.yaml (so /v1 requires a key).
const STATIC_KEY = "ui-test-static-gateway-key";

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `check` (async, truthy = done) every `every` ms for at most `timeoutMs`.
async function waitFor(what, check, timeoutMs, every = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(every);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ": " + last.message : ""}`);
}

function requireFile(file, hint) {
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: ${hint}`);
}

class Stack {
  constructor() {
    this.children = [];
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "sagebridge-ui-"));
  }

  // Spawns a process with its output in files under the temp dir; remembers its PID.
  spawn(name, cmd, args, env) {
    const out = path.join(this.dir, name + ".out");
    const err = path.join(this.dir, name + ".err");
    const child = spawn(cmd, args, {
      cwd: this.dir,
      env: Object.assign({}, process.env, env || {}),
      stdio: ["ignore", fs.openSync(out, "w"), fs.openSync(err, "w")],
    });
    child.logs = { out, err };
    child.exited = null;
    child.on("exit", (code, signal) => { child.exited = { code, signal }; });
    this.children.push({ name, child });
    return child;
  }

  read(child, which) {
    try {
      return fs.readFileSync(child.logs[which], "utf8");
    } catch (_) {
      return "";
    }
  }

  // Waits for a line `prefix<value>` on the child's stdout; returns the value.
  async lineOf(name, child, prefix, timeoutMs) {
    return waitFor(`${name} to print "${prefix}"`, () => {
      if (child.exited) {
        throw new Error(`${name} exited (${JSON.stringify(child.exited)}):\n${this.read(child, "out")}\n${this.read(child, "err")}`);
      }
      const line = this.read(child, "out").split("\n").find((l) => l.startsWith(prefix));
      return line ? line.slice(prefix.length).trim() : null;
    }, timeoutMs);
  }

  async start() {
    for (const b of ["sagebridge", "sagebridge-seed", "sagebridge-fake-runtime"]) {
      requireFile(path.join(BIN, b), "build with `cargo build --workspace --all-targets --locked` (scripts/ui-test.sh does)");
    }
    requireFile(path.join(VENV, "bin", "moto_server"), "create the venv with `. scripts/env.sh; ensure_venv`");

    // moto, seeded with the demo account.
    const motoPort = await freePort();
    this.motoUrl = `http://127.0.0.1:${motoPort}`;
    this.moto = this.spawn("moto", path.join(VENV, "bin", "moto_server"), ["-H", "127.0.0.1", "-p", String(motoPort)],
      { MOTO_RECORDER_FILEPATH: path.join(this.dir, "moto_recording") });
    await waitFor("moto to answer", async () => {
      if (this.moto.exited) throw new Error("moto exited: " + this.read(this.moto, "err"));
      const r = await fetch(this.motoUrl + "/moto-api/");
      return r.ok;
    }, 30000, 200);
    await new Promise((resolve, reject) => {
      execFile(path.join(BIN, "sagebridge-seed"), ["--endpoint", this.motoUrl, "--preset", "demo"],
        { timeout: 120000, env: Object.assign({}, process.env, { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing" }) },
        (err, stdout, stderr) => (err ? reject(new Error(`seeding failed: ${err.message}\n${stderr}`)) : resolve(stdout)));
    });

    // The fake SageMaker runtime (demo-llm-chat, demo-embeddings, demo-rerank, demo-transcribe,
    // demo-speech).
    this.runtime = this.spawn("runtime", path.join(BIN, "sagebridge-fake-runtime"), ["--listen", "127.0.0.1:0", "--threads", "2"]);
    this.runtimeUrl = await this.lineOf("the fake runtime", this.runtime, "fake runtime listening on ", 30000);

    // sagebridge serve: embedding, rerank and audio models from the file; the chat endpoint is left
    // for the UI to serve (it is discovered by ingestion).
    const yaml = [
      "server:",
      "  apiKeys:",
      `    - ${STATIC_KEY}`,
      "awsConfig:",
      "  awsRegion: us-east-1",
      "  awsAccessKeyId: testing",
      "  awsSecretAccessKey: testing",
      `  endPointURL: ${this.runtimeUrl}`,
      "models:",
      "  - name: demo-embed",
      "    kind: embedding",
      "    endpointName: demo-embeddings",
      "    format: tei",
      "  - name: demo-rerank",
      "    kind: rerank",
      "    endpointName: demo-rerank",
      "    format: tei",
      "  - name: demo-transcribe",
      "    kind: transcription",
      "    endpointName: demo-transcribe",
      "    format: huggingface",
      "  - name: demo-speech",
      "    kind: speech",
      "    endpointName: demo-speech",
      "    format: openai",
      "",
    ].join("\n");
    const config = path.join(this.dir, "sagebridge.yaml");
    fs.writeFileSync(config, yaml);
    this.catalog = path.join(this.dir, "catalog.db");
    // `serve` exposes a catalog file that exists; an empty file is an empty SQLite database.
    fs.writeFileSync(this.catalog, "");
    this.serve = this.spawn("serve", path.join(BIN, "sagebridge"),
      ["serve", "-c", config, "--catalog", this.catalog, "--listen", "127.0.0.1:0"],
      { RUST_LOG: process.env.RUST_LOG || "info", AWS_EC2_METADATA_DISABLED: "true" });
    this.base = await this.lineOf("sagebridge serve", this.serve, "sagebridge listening on ", 60000);
    this.signInUrl = await this.lineOf("the sign-in URL", this.serve, "sign in: ", 5000);
    this.adminToken = decodeURIComponent(this.signInUrl.split("#token=")[1] || "");
    this.staticKey = STATIC_KEY;
    return this;
  }

  // The admin API with the admin token (for preconditions and checks, not for the journeys).
  async admin(method, p, body) {
    const r = await fetch(this.base + p, {
      method,
      headers: Object.assign({ Authorization: "Bearer " + this.adminToken },
        body === undefined ? {} : { "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch (_) {
      json = null;
    }
    return { status: r.status, json, text };
  }

  serverLog() {
    return this.serve ? this.read(this.serve, "err") : "";
  }

  async stop() {
    for (const { child } of this.children.reverse()) {
      if (child.exited) continue;
      try {
        process.kill(child.pid, "SIGTERM");
      } catch (_) {
        continue;
      }
      const deadline = Date.now() + 5000;
      while (!child.exited && Date.now() < deadline) await sleep(50);
      if (!child.exited) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch (_) {
          // Gone already.
        }
      }
    }
    this.children = [];
    if (!process.env.SAGEBRIDGE_UI_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = { Stack, waitFor, sleep, freePort, REPO, BIN };
