// The web UI's journeys in a real browser (headless Debian chromium) against moto, the fake
// SageMaker runtime and `sagebridge serve`, all started here on 127.0.0.1. The journeys run in
// order and build on each other as a user would (service -> pipeline -> run -> models ->
// gateway -> playground -> keys); each saves screenshots under target/ui-screenshots/.
"use strict";

const { describe, before, after, test } = require("node:test");
const assert = require("node:assert/strict");
const { execFile } = require("node:child_process");
const { Stack, waitFor } = require("../lib/stack");
const { Browser } = require("../lib/browser");
const { userAndEnforce } = require("../lib/moto-iam");

const SERVICE = "moto-demo";
const PIPELINE = "demo-models";
const CHAT_MODEL = "demo-chat";
const CHAT_ENDPOINT = "demo-llm-chat";

// A 16-bit mono PCM WAV file of a 440 Hz tone lasting `seconds`.
function wavTone(seconds, rate = 16000) {
  const n = Math.round(seconds * rate);
  const b = Buffer.alloc(44 + n * 2);
  b.write("RIFF", 0);
  b.writeUInt32LE(36 + n * 2, 4);
  b.write("WAVEfmt ", 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write("data", 36);
  b.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 8000), 44 + i * 2);
  return b;
}

function curl(args) {
  return new Promise((resolve, reject) => {
    execFile("curl", ["-sS", "--max-time", "30", "-w", "\n%{http_code}", ...args], { timeout: 40000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error("curl failed: " + err.message + "\n" + stderr));
      const i = stdout.lastIndexOf("\n");
      resolve({ status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) });
    });
  });
}

describe("sagebridge serve web UI", { timeout: 15 * 60 * 1000 }, () => {
  const stack = new Stack();
  const browser = new Browser();
  let aws; // the moto IAM user's key pair
  let page;
  const state = {};

  const go = async (hash) => {
    const url = stack.base + "/" + hash;
    // The same address again is no navigation: reload to render the page afresh.
    if (page.url() === url) await page.reload();
    else await page.goto(url);
    await page.locator("#page-title").waitFor();
  };
  const settled = async () => {
    await page.waitForFunction(() => !document.querySelector("#main .loading"), null, { timeout: 30000 });
  };
  const heading = () => page.locator("#page-title").innerText();

  before(async () => {
    await stack.start();
    aws = await userAndEnforce(stack.motoUrl, "sagebridge-ui");
    await browser.start();
    page = browser.page;
  });

  after(async () => {
    if (process.env.SAGEBRIDGE_UI_DEBUG) console.error(stack.serverLog());
    await browser.stop();
    await stack.stop();
  });

  test("sign in with the admin token and with the sign-in URL; sign out", async () => {
    await page.goto(stack.base + "/#/services");
    await page.locator("#signin-token").waitFor();
    assert.equal(await heading(), "Sign in");
    // The field has focus and a label.
    assert.equal(await page.evaluate(() => document.activeElement.id), "signin-token");
    await browser.shot("01-sign-in-page");
    await page.fill("#signin-token", "not-the-token");
    await page.click("#signin-form button[type=submit]");
    await page.locator("#signin-error .error").waitFor();
    assert.match(await page.locator("#signin-error").innerText(), /admin token is not valid/);
    await browser.shot("01-sign-in-wrong-token");
    await page.fill("#signin-token", stack.adminToken);
    await page.click("#signin-form button[type=submit]");
    await page.waitForFunction(() => document.getElementById("page-title").textContent === "Services");
    // Focus moved to the page heading; the session bar says so.
    assert.equal(await page.evaluate(() => document.activeElement.id), "page-title");
    assert.equal(await page.locator("#session-status").innerText(), "signed in");
    await settled();
    await browser.shot("01-services-empty");

    await page.click("#signout");
    await page.locator("#signin-token").waitFor();
    assert.equal(await page.locator("#session-status").innerText(), "not signed in");
    // The URL serve prints signs in and leaves no token in the address bar.
    await page.goto(stack.signInUrl);
    await page.waitForFunction(() => document.getElementById("page-title").textContent === "Services");
    assert.ok(!page.url().includes("token="), page.url());
    assert.equal(await page.locator("#session-status").innerText(), "signed in");
  });

  test("add a service pointing at moto (client-side checks, then saved)", async () => {
    await go("#/services");
    await page.click("text=Add service");
    await page.locator("#service-form").waitFor();
    await page.fill("#svc-name", SERVICE);
    await page.fill("#svc-awsRegion", "us-east");
    await page.fill("#svc-awsAccessKeyId", aws.accessKeyId);
    await page.fill("#svc-awsSecretAccessKey", aws.secretAccessKey);
    await page.fill("#svc-endPointURL", stack.motoUrl);
    await page.click("text=Assume a role (optional)");
    await page.fill("#svc-assumeRoleArn", "arn:aws:iam::12345:role/reader");
    await page.click("#service-form button[type=submit]");
    // Both mistakes are shown next to their fields; nothing is sent, nothing typed is lost.
    await page.locator("#svc-awsRegion-error:not(:empty)").waitFor();
    assert.match(await page.locator("#svc-awsRegion-error").innerText(), /not an AWS region/);
    assert.match(await page.locator("#svc-assumeRoleArn-error").innerText(), /account id `12345` is not 12 digits/);
    assert.equal(await page.getAttribute("#svc-awsRegion", "aria-invalid"), "true");
    assert.equal(await page.inputValue("#svc-name"), SERVICE);
    assert.equal(await page.inputValue("#svc-awsSecretAccessKey"), aws.secretAccessKey);
    await browser.shot("02-service-form-errors");

    await page.fill("#svc-awsRegion", "us-east-1");
    await page.fill("#svc-assumeRoleArn", "");
    await page.click("#service-form button[type=submit]");
    await page.waitForFunction((name) => document.getElementById("page-title").textContent === "Service " + name, SERVICE, { timeout: 15000 });
    state.serviceId = decodeURIComponent(new URL(page.url()).hash.replace(/^#\/services\//, "").split("?")[0]);
    // Stored, and its secret is never sent back (the form shows it as stored).
    const r = await stack.admin("GET", "/api/v1/services/mlmodelServices/" + encodeURIComponent(state.serviceId));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.connection.config.awsConfig.awsRegion, "us-east-1");
    assert.ok(!r.text.includes(aws.secretAccessKey), "the API sent the secret back");
    assert.equal(await page.inputValue("#svc-awsSecretAccessKey"), "");
    assert.match(await page.getAttribute("#svc-awsSecretAccessKey", "placeholder"), /stored/);
    assert.ok(!(await page.content()).includes(aws.secretAccessKey), "the page shows the secret");
    await browser.shot("02-service-saved");
  });

  test("test the service's connection: every step passes", async () => {
    await go("#/services/" + encodeURIComponent(state.serviceId));
    await page.locator("#service-form").waitFor();
    await page.click("#test-connection");
    await page.locator("#test-result .summary.final").waitFor({ timeout: 60000 });
    const summary = await page.locator("#test-result .summary.final").innerText();
    assert.match(summary, /All mandatory steps passed/, await page.locator("#test-result").innerText());
    const steps = await page.locator("#test-result li.step").count();
    assert.ok(steps >= 2, "steps shown: " + steps);
    assert.equal(await page.locator("#test-result li.step-failed").count(), 0);
    // The policy is there, ready to copy.
    const policy = JSON.parse(await page.locator("#iam-policy").innerText());
    assert.equal(policy.Version, "2012-10-17");
    assert.ok(policy.Statement[0].Action.length > 0);
    await page.click("text=Copy policy");
    await page.locator(".copy-status:not(:empty)").waitFor();
    await browser.shot("03-test-connection-passed");
  });

  test("test a connection with a wrong secret: the failing step and its cause", async () => {
    await go("#/services/new");
    await page.locator("#service-form").waitFor();
    await page.fill("#svc-name", "moto-wrong-secret");
    await page.fill("#svc-awsRegion", "us-east-1");
    await page.fill("#svc-awsAccessKeyId", aws.accessKeyId);
    await page.fill("#svc-awsSecretAccessKey", "this-is-not-the-secret");
    await page.fill("#svc-endPointURL", stack.motoUrl);
    await page.click("#test-connection");
    await page.locator("#test-result .summary.final").waitFor({ timeout: 60000 });
    assert.match(await page.locator("#test-result .summary.final").innerText(), /failed/);
    const failed = page.locator("#test-result li.step-failed").first();
    await failed.waitFor();
    const text = await failed.innerText();
    assert.match(text, /failed/);
    assert.ok((await failed.locator(".step-error").innerText()).trim().length > 10, text);
    // What was typed is still there to fix.
    assert.equal(await page.inputValue("#svc-awsSecretAccessKey"), "this-is-not-the-secret");
    assert.equal(await page.inputValue("#svc-name"), "moto-wrong-secret");
    await browser.shot("04-test-connection-wrong-secret");
  });

  test("create a pipeline with a filter and a schedule", async () => {
    await go("#/ingestion/" + encodeURIComponent(state.serviceId));
    await settled();
    await page.click("text=Add pipeline");
    await page.locator("#pipeline-form").waitFor();
    await page.fill("#pl-name", PIPELINE);
    await page.fill("#pl-includes", "demo-");
    await page.fill("#pl-excludes", "demo-fraud-pipeline");
    await page.selectOption("#pl-preset", "0 0 * * *");
    assert.equal(await page.inputValue("#pl-scheduleInterval"), "0 0 * * *");
    // The next five fire times, computed in the page, at midnight UTC on five days in a row.
    const times = await page.locator("#next-fire-times time").evaluateAll((ts) => ts.map((t) => t.getAttribute("datetime")));
    assert.equal(times.length, 5);
    for (const t of times) assert.match(t, /T00:00:00\.000Z$/);
    assert.equal(Date.parse(times[1]) - Date.parse(times[0]), 86400000);
    // A bad cron expression is caught in the page.
    await page.fill("#pl-scheduleInterval", "61 * * * *");
    assert.match(await page.locator("#pl-scheduleInterval-error").innerText(), /out of range/);
    await page.fill("#pl-scheduleInterval", "0 */6 * * *");
    assert.equal(await page.locator("#next-fire-times li").count(), 5);
    await browser.shot("05-pipeline-form");
    await page.click("#pipeline-form button[type=submit]");
    await page.waitForFunction((name) => document.getElementById("page-title").textContent === "Pipeline " + name, PIPELINE, { timeout: 15000 });
    state.pipelineId = decodeURIComponent(new URL(page.url()).hash.replace(/^#\/pipelines\//, ""));
    const r = await stack.admin("GET", "/api/v1/services/ingestionPipelines/" + encodeURIComponent(state.pipelineId));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.sourceConfig.config.mlModelFilterPattern, { includes: ["demo-"], excludes: ["demo-fraud-pipeline"] });
    assert.equal(r.json.airflowConfig.scheduleInterval, "0 */6 * * *");
    await settled();
    await browser.shot("05-pipeline-page");
  });

  test("run the pipeline and watch the progress reach the end", async () => {
    await go("#/pipelines/" + encodeURIComponent(state.pipelineId));
    await settled();
    await page.click("#run-now");
    await page.locator("#run-progress").waitFor();
    await page.locator("#run-status:not(:empty)").waitFor();
    await browser.shot("06-run-started");
    await page.waitForFunction(() => /success|partial|failed|interrupted/.test(document.getElementById("run-status").textContent), null, { timeout: 180000 });
    const status = await page.locator("#run-status").innerText();
    assert.match(status, /success/, status + "\n" + await page.locator("#run-log").innerText());
    const progress = await page.locator("#run-progress").evaluate((p) => ({ value: p.value, max: p.max }));
    assert.equal(progress.value, progress.max, JSON.stringify(progress));
    assert.ok(progress.max > 1, JSON.stringify(progress));
    assert.ok((await page.locator("#run-log").innerText()).trim().split("\n").length >= 1);
    // The run is in the history, and the filter preview now knows the service's models.
    await page.locator("#run-history table tbody tr").first().waitFor({ timeout: 15000 });
    assert.match(await page.locator("#run-history table tbody tr").first().innerText(), /success/);
    // The run took time and the pipeline's settings know the models now.
    assert.match(status, /took \d/);
    await page.locator("#filter-preview-count").waitFor();
    assert.match(await page.locator("#filter-preview-count").innerText(), /^\d+ of \d+ known models match/);
    assert.match(await page.locator("#run-history table tbody tr").first().locator("td:nth-child(4)").innerText(), /\d/);
    await browser.shot("06-run-finished");
    // The workflow YAML downloads.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#workflow-download")]);
    assert.match(download.suggestedFilename(), /\.yaml$/);
  });

  test("find a model by tag and open it: hyperparameters shown", async () => {
    const r = await stack.admin("GET", "/api/v1/mlmodels?limit=1000&service=" + SERVICE);
    assert.equal(r.status, 200, r.text);
    const model = r.json.data.find((m) => (m.mlHyperParameters || []).length && (m.tags || []).length);
    assert.ok(model, "no ingested model has hyperparameters and tags");
    const tag = model.tags[0].tagFQN;
    await go("#/models");
    await settled();
    await page.fill("#models-tag", tag);
    await page.press("#models-tag", "Enter");
    await page.waitForFunction((t) => location.hash.includes("tag=" + encodeURIComponent(t)), tag);
    const link = page.locator("#models-body a", { hasText: model.name });
    await link.first().waitFor();
    assert.match(await page.locator("#models-count").innerText(), /Showing 1–\d+ of \d+ models/);
    await browser.shot("07-models-by-tag");
    await link.first().click();
    await page.waitForFunction((n) => document.getElementById("page-title").textContent === n, model.name);
    await settled();
    const hyper = page.locator("section.card", { has: page.locator("h2", { hasText: "Hyperparameters" }) });
    const rows = await hyper.locator("tbody tr").allInnerTexts();
    assert.equal(rows.length, model.mlHyperParameters.length);
    assert.ok(rows.some((row) => row.includes(model.mlHyperParameters[0].name)));
    await browser.shot("07-model-page");
  });

  test("serve a discovered endpoint", async () => {
    await go("#/gateway/discovered");
    await settled();
    const row = page.locator("tr", { has: page.locator("code", { hasText: CHAT_ENDPOINT }) });
    await row.waitFor();
    await browser.shot("08-discovered");
    await row.locator("text=Review…").click();
    await page.locator("#gateway-form").waitFor();
    assert.equal(await page.inputValue("#gw-endpointName"), CHAT_ENDPOINT);
    assert.equal(await page.inputValue("#gw-kind"), "chat");
    await page.fill("#gw-name", CHAT_MODEL);
    // The endpoint lives in the fake runtime, so this model gets its own credentials.
    await page.check("#gw-cred-own");
    await page.fill("#gw-awsRegion", "us-east-1");
    await page.fill("#gw-awsAccessKeyId", "testing");
    await page.fill("#gw-awsSecretAccessKey", "testing");
    await page.fill("#gw-endPointURL", stack.runtimeUrl);
    await page.click("text=Defaults (optional)");
    await page.check("#gw-vision");
    // A cold-start wait needs an inference component: the server's error is beside the field.
    await page.fill("#gw-coldStartWaitSeconds", "30");
    await page.click("#gateway-form button[type=submit]");
    await page.locator("#gw-coldStartWaitSeconds[aria-invalid=true]").waitFor({ timeout: 20000 });
    assert.match(await page.locator("#gw-coldStartWaitSeconds-error").innerText(), /inferenceComponent/);
    await page.fill("#gw-coldStartWaitSeconds", "");
    await page.click("#gateway-form button[type=submit]");
    await page.locator("#gateway-form-error .notice").waitFor({ timeout: 20000 });
    assert.match(await page.locator("#gateway-form-error").innerText(), /served on \/v1 now/);
    const stored = await stack.admin("GET", "/api/v1/gateway/models/" + encodeURIComponent(CHAT_MODEL));
    assert.equal(stored.status, 200);
    assert.equal(stored.json.vision, true, JSON.stringify(stored.json));
    await page.locator("#gateway-check .summary, #gateway-check .error").first().waitFor({ timeout: 30000 });
    await browser.shot("08-served");
    await go("#/gateway");
    await settled();
    assert.ok(await page.locator("tbody th code", { hasText: CHAT_MODEL }).count() === 1);
    await browser.shot("08-gateway-models");
  });

  test("chat with it in the playground and see the streamed answer", async () => {
    await go("#/playground/chat?model=" + CHAT_MODEL);
    await page.locator("#chat-form").waitFor();
    assert.equal(await page.inputValue("#chat-model"), CHAT_MODEL);
    await page.fill("#chat-input", "Say hello");
    await page.click("#chat-send");
    await page.waitForFunction(() => document.getElementById("chat-status").textContent !== "Streaming…" && document.getElementById("chat-status").textContent !== "", null, { timeout: 30000 });
    assert.equal(await page.locator("#chat-status").innerText(), "Done", await page.locator("#chat-log").innerText());
    const answer = await page.locator(".msg-assistant .content").last().innerText();
    assert.ok(answer.trim().length > 0, "empty answer");
    await browser.shot("09-chat");
    // Embeddings and rerank against the file's models.
    await go("#/playground/embeddings");
    await page.click("#emb-form button[type=submit]");
    await page.locator("#emb-matrix").waitFor({ timeout: 20000 });
    assert.match(await page.locator("#emb-dimensions").innerText(), /3 vectors of \d+ dimensions/);
    assert.equal(await page.locator("#emb-matrix tbody tr").count(), 3);
    await browser.shot("09-embeddings");
    await go("#/playground/rerank");
    await page.click("#rr-form button[type=submit]");
    await page.locator("#rr-result tbody tr").first().waitFor({ timeout: 20000 });
    const scores = await page.locator("#rr-result tbody tr td:nth-child(2)").allInnerTexts();
    const sorted = [...scores].map(Number).sort((a, b) => b - a);
    assert.deepEqual(scores.map(Number), sorted);
    await browser.shot("09-rerank");
  });

  test("transcribe an uploaded WAV file, as text and as subtitles", async () => {
    await go("#/playground/transcription");
    await page.locator("#tr-form").waitFor();
    assert.equal(await page.inputValue("#tr-model"), "demo-transcribe");
    // Sending without a file says so next to the file input.
    await page.click("#tr-form button[type=submit]");
    assert.match(await page.locator("#tr-file-error").innerText(), /Choose an audio file/);
    await page.setInputFiles("#tr-file", { name: "tone.wav", mimeType: "audio/wav", buffer: wavTone(1.5) });
    await page.fill("#tr-language", "en");
    await page.click("#tr-form button[type=submit]");
    await page.locator("#tr-text").waitFor({ timeout: 20000 });
    // The fake container hears its fixed words and the file's duration.
    assert.equal((await page.locator("#tr-text").innerText()).trim(), "the quick brown fox (1.50 s)");
    await browser.shot("09-transcription");
    await page.selectOption("#tr-format", "srt");
    await page.click("#tr-form button[type=submit]");
    await page.waitForFunction(() => /-->/.test((document.getElementById("tr-text") || {}).textContent || ""), null, { timeout: 20000 });
    const srt = await page.locator("#tr-text").innerText();
    assert.match(srt, /^1\n00:00:00,000 --> 00:00:01,500\nthe quick brown fox \(1\.50 s\)/, srt);
    await page.selectOption("#tr-format", "verbose_json");
    await page.click("#tr-form button[type=submit]");
    await page.waitForFunction(() => /"segments"/.test((document.getElementById("tr-text") || {}).textContent || ""), null, { timeout: 20000 });
    const verbose = JSON.parse(await page.locator("#tr-text").innerText());
    assert.equal(verbose.text, "the quick brown fox (1.50 s)");
    assert.equal(verbose.task, "transcribe");
    await browser.shot("09-transcription-verbose");
    // The same file to /v1/audio/translations (its verbose_json names the task), sent from the keyboard.
    await page.selectOption("#tr-task", "translations");
    await page.selectOption("#tr-format", "verbose_json");
    await page.focus("#tr-form button[type=submit]");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => /"translate"/.test((document.getElementById("tr-text") || {}).textContent || ""), null, { timeout: 20000 });
    assert.equal(JSON.parse(await page.locator("#tr-text").innerText()).task, "translate");
  });

  test("synthesize speech: the answer plays and downloads; a format the model lacks is refused", async () => {
    await go("#/playground/speech");
    await page.locator("#sp-form").waitFor();
    assert.equal(await page.inputValue("#sp-model"), "demo-speech");
    // The select offers what /v1/models says the model produces: wav only.
    assert.deepEqual(await page.locator("#sp-format option").evaluateAll((os) => os.map((o) => o.value)), ["wav"]);
    // A format it lacks (a list that did not say, as an older gateway's): the gateway's 400
    // names what it produces, and the select keeps only those.
    await page.evaluate(() => {
      const o = document.createElement("option");
      o.value = "mp3";
      o.textContent = "mp3";
      document.getElementById("sp-format").append(o);
    });
    await page.selectOption("#sp-format", "mp3");
    await page.click("#sp-form button[type=submit]");
    await page.locator("#sp-result .error").waitFor({ timeout: 20000 });
    const refusal = await page.locator("#sp-result .error").innerText();
    assert.match(refusal, /HTTP 400/);
    assert.match(refusal, /cannot produce `mp3` audio; it produces: wav/);
    assert.deepEqual(await page.locator("#sp-format option").evaluateAll((os) => os.map((o) => o.value)), ["wav"]);
    assert.match(await page.locator("#sp-format-error").innerText(), /produces wav only/);
    await browser.shot("09-speech-refused");
    // The produced format: the audio element gets a blob source it can play.
    await page.fill("#sp-input", "one two three four five six seven eight nine ten");
    await page.click("#sp-form button[type=submit]");
    await page.locator("#sp-audio").waitFor({ timeout: 20000 });
    assert.match(await page.getAttribute("#sp-audio", "src"), /^blob:/);
    // Ten words of the fake's 0.1 s each: the browser decoded a second of audio.
    const duration = await page.waitForFunction(() => {
      const a = document.getElementById("sp-audio");
      return a && a.readyState >= 1 && Number.isFinite(a.duration) ? a.duration : null;
    }, null, { timeout: 20000 });
    assert.ok(Math.abs((await duration.jsonValue()) - 1) < 0.01, String(await duration.jsonValue()));
    assert.equal(await page.evaluate(() => document.getElementById("sp-audio").error), null);
    assert.match(await page.locator("#sp-summary").innerText(), /audio\/wav/);
    assert.equal(await page.getAttribute("#sp-download", "href"), await page.getAttribute("#sp-audio", "src"));
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#sp-download")]);
    assert.equal(download.suggestedFilename(), "speech.wav");
    const saved = await download.path();
    const bytes = require("node:fs").readFileSync(saved);
    assert.equal(bytes.subarray(0, 4).toString(), "RIFF");
    assert.deepEqual(await browser.axe(), []);
    await browser.shot("09-speech");
  });

  test("serve a transcription endpoint from the gateway form", async () => {
    await go("#/gateway/new");
    await page.locator("#gateway-form").waitFor();
    await page.fill("#gw-name", "ui-whisper");
    await page.selectOption("#gw-kind", "transcription");
    await page.fill("#gw-endpointName", "demo-transcribe");
    await page.selectOption("#gw-format", "huggingface");
    await page.check("#gw-cred-own");
    await page.fill("#gw-awsRegion", "us-east-1");
    await page.fill("#gw-awsAccessKeyId", "testing");
    await page.fill("#gw-awsSecretAccessKey", "testing");
    await page.fill("#gw-endPointURL", stack.runtimeUrl);
    await page.click("#gateway-form button[type=submit]");
    await page.locator("#gateway-form-error .notice").waitFor({ timeout: 20000 });
    assert.match(await page.locator("#gateway-form-error").innerText(), /served on \/v1 now/);
    const stored = await stack.admin("GET", "/api/v1/gateway/models/ui-whisper");
    assert.equal(stored.status, 200);
    assert.equal(stored.json.kind, "transcription", JSON.stringify(stored.json));
    assert.equal(stored.json.format, "huggingface", JSON.stringify(stored.json));
    await browser.shot("10-gateway-transcription-served");
  });

  test("create an API key and use it with curl; revoke it", async () => {
    await go("#/keys");
    await settled();
    await page.fill("#key-name", "ui-test-key");
    await page.fill("#key-requestsPerMinute", "2");
    await page.click("#key-form button[type=submit]");
    await page.locator("#new-key").waitFor();
    const key = await page.inputValue("#new-key");
    assert.ok(key.length >= 20, "key too short: " + key.length);
    await page.click("text=Copy key");
    await page.locator("#key-created .copy-status:not(:empty)").waitFor();
    await browser.shot("10-key-created");
    const ok = await curl([stack.base + "/v1/models", "-H", "Authorization: Bearer " + key]);
    assert.equal(ok.status, 200, ok.body);
    assert.ok(JSON.parse(ok.body).data.some((m) => m.id === CHAT_MODEL), ok.body);
    const chat = await curl([stack.base + "/v1/chat/completions", "-H", "Authorization: Bearer " + key, "-H", "Content-Type: application/json",
      "-d", JSON.stringify({ model: CHAT_MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 16 })]);
    assert.equal(chat.status, 200, chat.body);
    const chatBody = JSON.stringify({ model: CHAT_MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 });
    const chatArgs = [stack.base + "/v1/chat/completions", "-H", "Authorization: Bearer " + key, "-H", "Content-Type: application/json", "-d", chatBody];
    assert.equal((await curl(chatArgs)).status, 200);
    // The third request of the minute is over the key's limit of 2.
    const limited = await curl(chatArgs);
    assert.equal(limited.status, 429, limited.body);
    assert.equal(JSON.parse(limited.body).error.code, "rate_limited");
    const none = await curl([stack.base + "/v1/models"]);
    assert.equal(none.status, 401, none.body);
    // The key is listed by its prefix only, then revoked.
    await page.click("text=Done, hide it");
    const row = page.locator("#keys-list tr", { hasText: "ui-test-key" });
    await row.waitFor();
    assert.ok(!(await page.content()).includes(key), "the key is still on the page");
    assert.match(await row.innerText(), /2 requests\/min/);
    // A raised limit applies to the next request.
    await row.locator("button", { hasText: "Edit limits" }).click();
    await row.locator("input[id$='-requestsPerMinute']").fill("100");
    await row.locator("input[id$='-tokensPerMinute']").fill("0");
    await row.locator("button", { hasText: "Save limits" }).click();
    await row.locator("[aria-invalid=true]").waitFor();
    await row.locator("input[id$='-tokensPerMinute']").fill("");
    await browser.shot("10-key-limits");
    await row.locator("button", { hasText: "Save limits" }).click();
    await page.waitForFunction(() => document.querySelector("#keys-list").textContent.includes("100 requests/min"), null, { timeout: 15000 });
    assert.equal((await curl(chatArgs)).status, 200);
    await row.locator("button", { hasText: "Revoke" }).click();
    await row.locator("button", { hasText: "Confirm revoke" }).click();
    await page.waitForFunction(() => !document.querySelector("#keys-list").textContent.includes("ui-test-key"), null, { timeout: 15000 });
    const revoked = await curl([stack.base + "/v1/models", "-H", "Authorization: Bearer " + key]);
    assert.equal(revoked.status, 401, revoked.body);
    await browser.shot("10-key-revoked");
  });

  test("every page: no serious or critical axe violation, no overflow at 390px", async () => {
    const routes = [
      ["services", "#/services"],
      ["service-new", "#/services/new"],
      ["service-edit", "#/services/" + encodeURIComponent(state.serviceId || "x")],
      ["ingestion", "#/ingestion"],
      ["pipeline-new", "#/ingestion/" + encodeURIComponent(state.serviceId || "x") + "/new"],
      ["pipeline", "#/pipelines/" + encodeURIComponent(state.pipelineId || "x")],
      ["models", "#/models"],
      ["gateway", "#/gateway"],
      ["gateway-discovered", "#/gateway/discovered"],
      ["gateway-new", "#/gateway/new"],
      ["keys", "#/keys"],
      ["playground-chat", "#/playground/chat"],
      ["playground-embeddings", "#/playground/embeddings"],
      ["playground-rerank", "#/playground/rerank"],
      ["playground-transcription", "#/playground/transcription"],
      ["playground-speech", "#/playground/speech"],
    ];
    const first = await stack.admin("GET", "/api/v1/mlmodels?limit=1");
    if (first.status === 200 && first.json.data.length) routes.push(["model", "#/models/" + encodeURIComponent(first.json.data[0].fullyQualifiedName)]);
    const problems = [];
    for (const [name, hash] of routes) {
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
        await go(hash);
        await settled().catch(() => {});
        assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.id), "page-title", name);
        if (width === 1280) {
          const violations = await browser.axe();
          if (violations.length) problems.push({ page: name, violations });
        } else {
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          if (overflow > 1) problems.push({ page: name, width, overflow });
          await browser.shot("11-mobile-" + name);
        }
      }
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    assert.deepEqual(problems, [], JSON.stringify(problems, null, 2));
  });

  test("the sign-in page passes axe signed out", async () => {
    const fresh = new Browser();
    await fresh.start();
    try {
      await fresh.page.goto(stack.base + "/");
      await fresh.page.locator("#signin-token").waitFor();
      const violations = await fresh.axe();
      assert.deepEqual(violations, []);
      await fresh.page.setViewportSize({ width: 390, height: 844 });
      await fresh.shot("11-mobile-sign-in");
    } finally {
      await fresh.stop();
    }
  });

  test("no script error in the console", () => {
    // 4xx answers to fetch() are logged by chromium as resource errors; script errors are not
    // allowed at all.
    const scriptErrors = browser.consoleErrors.filter((e) => !/Failed to load resource/.test(e));
    assert.deepEqual(scriptErrors, []);
  });
});
