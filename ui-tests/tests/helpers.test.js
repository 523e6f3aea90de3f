// The page script's pure helpers under node (no browser): cron fire times, ARN and region
// checks, field-error paths, the ingestion filter, similarity and version diffs, audio helpers.
"use strict";

const { test } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const m = require(path.join(__dirname, "..", "..", "crates", "server", "assets", "app.js"));

const iso = (ts) => ts.map((t) => new Date(t).toISOString());

test("cron: next five fire times in UTC", () => {
  const from = Date.UTC(2025, 0, 1, 10, 30);
  assert.deepEqual(iso(m.nextFireTimes("0 * * * *", from, 2)), ["2025-01-01T11:00:00.000Z", "2025-01-01T12:00:00.000Z"]);
  assert.deepEqual(iso(m.nextFireTimes("@weekly", from, 2)), ["2025-01-05T00:00:00.000Z", "2025-01-12T00:00:00.000Z"]);
  assert.deepEqual(iso(m.nextFireTimes("*/20 9-10 * * MON-FRI", from, 4)),
    ["2025-01-01T10:40:00.000Z", "2025-01-02T09:00:00.000Z", "2025-01-02T09:20:00.000Z", "2025-01-02T09:40:00.000Z"]);
  // Day of month and day of week both restricted: either one (cron's rule).
  assert.deepEqual(iso(m.nextFireTimes("0 0 1 * SUN", from, 2)), ["2025-01-05T00:00:00.000Z", "2025-01-12T00:00:00.000Z"]);
  assert.deepEqual(iso(m.nextFireTimes("0 12 29 2 *", from, 1)), ["2028-02-29T12:00:00.000Z"]);
  // Strictly after `from`.
  assert.deepEqual(iso(m.nextFireTimes("30 10 * * *", from, 1)), ["2025-01-02T10:30:00.000Z"]);
  assert.throws(() => m.parseCron("61 * * * *"), /out of range/);
  assert.throws(() => m.parseCron("* * *"), /five fields/);
  assert.throws(() => m.parseCron("*/0 * * * *"), /bad step/);
});

test("region and role ARN checks follow the server's words", () => {
  assert.ok(m.isRegion("us-east-1") && m.isRegion("us-gov-west-1") && m.isRegion("cn-north-1"));
  assert.ok(!m.isRegion("us-east") && !m.isRegion("US-EAST-1") && !m.isRegion(""));
  assert.equal(m.roleArnProblem("arn:aws:iam::123456789012:role/path/reader"), null);
  assert.match(m.roleArnProblem("arn:aws:iam::12345:role/x"), /account id `12345` is not 12 digits/);
  assert.match(m.roleArnProblem("arn:aws:s3:::bucket/x"), /service is `s3`/);
  assert.match(m.roleArnProblem("arn:aws:iam:us-east-1:123456789012:role/x"), /no region/);
  assert.match(m.roleArnProblem("arn:aws:iam::123456789012:user/x"), /not a role/);
  assert.match(m.roleArnProblem("role/x"), /has the form/);
});

test("server field errors are split by field path", () => {
  assert.deepEqual(m.fieldErrors("connection.config.awsConfig.awsRegion: `x` is not an AWS region; connection.config.awsConfig.assumeRoleArn: invalid ARN `a`: b"), [
    { path: "connection.config.awsConfig.awsRegion", text: "`x` is not an AWS region" },
    { path: "connection.config.awsConfig.assumeRoleArn", text: "invalid ARN `a`: b" },
  ]);
  assert.deepEqual(m.fieldErrors("service `x` not found"), [{ path: "", text: "service `x` not found" }]);
  assert.equal(m.fieldKey("sourceConfig.config.mlModelFilterPattern.includes[0]"), "includes");
  assert.equal(m.fieldKey("airflowConfig.scheduleInterval"), "scheduleInterval");
});

test("the filter preview matches like ingestion: anchored at the start, case ignored", () => {
  const f = m.compileFilter(["demo-"], ["demo-fraud"]);
  assert.deepEqual(["demo-churn", "DEMO-ltv", "x-demo-a", "demo-fraud-pipeline"].map(f.keeps), [true, true, false, false]);
  assert.ok(m.compileFilter([], []).keeps("anything"));
  assert.equal(m.compileFilter(["("], []).errors[0].list, "includes");
});

test("similarity matrix and version diff", () => {
  const s = m.similarityMatrix([[1, 0], [0, 2], [1, 1]]);
  assert.equal(s[0][0], 1);
  assert.equal(s[0][1], 0);
  assert.ok(Math.abs(s[0][2] - Math.SQRT1_2) < 1e-12);
  assert.deepEqual(m.diffValues({ a: 1, h: [{ v: "1" }] }, { a: 1, h: [{ v: "2" }], t: "x" }), [
    { path: "h[0].v", before: "1", after: "2" },
    { path: "t", before: undefined, after: "x" },
  ]);
  assert.deepEqual(m.diffValues({ version: 0.1 }, { version: 0.2 }, "", [], new Set(["version"])), []);
});

test("routes and durations", () => {
  assert.deepEqual(m.parseRoute("#/models/svc.a%2Fb"), { head: "models", rest: ["svc.a/b"], raw: "models/svc.a%2Fb" });
  assert.deepEqual(m.parseRoute("#/models?tag=x").head, "models");
  assert.equal(m.formatDuration(1500), "1.5 s");
  assert.equal(m.formatDuration(125000), "2 min 5 s");
});

test("named server-sent events are split across chunks and CRLF", () => {
  const p = new m.SseEventParser();
  assert.deepEqual(p.push('event: step\ndata: {"name":"A"}\n\nevent: st'), [{ event: "step", data: '{"name":"A"}' }]);
  assert.deepEqual(p.push('ep\r\ndata: {"name":"B"}\r\n\r\n: keep-alive\n\ndata: x\ndata: y\n\n'), [
    { event: "step", data: '{"name":"B"}' },
    { event: "message", data: "x\ny" },
  ]);
  assert.deepEqual(p.push("event: report\ndata: {}"), []);
});

test("audio: formats named by the gateway's refusal, transcripts by format, download names", () => {
  assert.deepEqual(m.producedFormats("model `tts` cannot produce `mp3` audio; it produces: wav, flac (the gateway does not transcode)"), ["wav", "flac"]);
  // Words that are not speech formats are dropped; a message naming none gives null.
  assert.deepEqual(m.producedFormats("it produces: wav, ogg"), ["wav"]);
  assert.equal(m.producedFormats("response_format must be a string"), null);
  assert.equal(m.producedFormats(undefined), null);
  assert.equal(m.transcriptOf("json", '{"text":"hello there"}'), "hello there");
  assert.equal(m.transcriptOf("json", "not json"), "not json");
  assert.equal(m.transcriptOf("text", "hello\n"), "hello\n");
  assert.equal(m.transcriptOf("verbose_json", '{"text":"a","segments":[]}'), '{\n  "text": "a",\n  "segments": []\n}');
  assert.equal(m.audioFileName("wav"), "speech.wav");
  assert.equal(m.audioFileName("../x"), "speech.audio");
});
