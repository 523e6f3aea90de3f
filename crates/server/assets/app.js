// sagebridge web UI: a single-page app over the admin API (/api/v1/*) and the gateway (/v1/*).
//
// Safety rules of this file: text from the server is only ever put into the page as text
// (DOM nodes built by `el`, `textContent`), never parsed as HTML; links are built from
// encodeURIComponent'd names or checked http(s) URLs; secrets typed into forms are sent once
// and never written back to the page (the API never returns them).
//
// Sign-in: the admin token is posted once to /api/v1/session, which answers an HttpOnly
// session cookie (the script never sees it) and a CSRF token kept in memory only and sent as
// X-CSRF-Token on every state-changing request (the admin API and the playground's /v1 calls).
// A token in the URL fragment (`#token=...`, the URL `sagebridge serve` prints) signs in at
// load and is removed from the address bar.
//
// Pages are hash routes (`#/services`, `#/models/<fqn>`, ...). Each one renders into <main>
// with its <h1> first; focus moves to that heading on every route change. A request error is
// shown next to what caused it; forms are never re-rendered on an error, so nothing typed is
// lost (an ended session opens a sign-in dialog over the page instead of leaving it).
"use strict";

const SESSION_PATH = "/api/v1/session";
const CSRF_HEADER = "X-CSRF-Token";
const API = "/api/v1";
const DEFAULT_SESSION_NAME = "OpenMetadataSession";

// ---------------------------------------------------------------------------------------------
// Pure helpers (also loaded by the Rust tests and the browser tests under node).

// Builds an element; string children become text nodes, so data is never interpreted as HTML.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = String(value);
    else if (name === "value") node.value = String(value);
    else if (name === "checked") node.checked = Boolean(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replaces a container's content with the given children.
function show(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

// The HTML-escaped form of a string, for the rare place text ends up in markup (none today:
// everything goes through `el`); kept for callers and tested.
function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

// An http(s) URL, or null: catalog data must not produce javascript: links.
function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

// Splits a server-sent event stream into `data:` payloads, across arbitrary chunk boundaries.
class SseParser {
  constructor() {
    this.buffer = "";
  }

  // Feeds decoded text; returns the payloads of the `data:` lines it completed, in order.
  push(text) {
    this.buffer += text;
    const out = [];
    let end;
    while ((end = this.buffer.indexOf("\n")) >= 0) {
      let line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (!line.startsWith("data:")) continue;
      let data = line.slice(5);
      if (data.startsWith(" ")) data = data.slice(1);
      out.push(data);
    }
    return out;
  }
}

// Splits a server-sent event stream into named events: feed decoded text, get the events it
// completed as { event, data } (data lines joined with newlines; the event name "message"
// when the stream names none).
class SseEventParser {
  constructor() {
    this.buffer = "";
    this.event = "";
    this.data = [];
  }

  push(text) {
    this.buffer += text;
    const out = [];
    let end;
    while ((end = this.buffer.indexOf("\n")) >= 0) {
      let line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (this.data.length) out.push({ event: this.event || "message", data: this.data.join("\n") });
        this.event = "";
        this.data = [];
      } else if (line.startsWith("event:")) {
        this.event = line.slice(6).trim();
      } else if (line.startsWith("data:")) {
        const data = line.slice(5);
        this.data.push(data.startsWith(" ") ? data.slice(1) : data);
      }
    }
    return out;
  }
}

// The endpoints a model is served by (from its extension), else its server URL.
function endpointsOf(model) {
  const ext = (model && model.extension) || {};
  if (Array.isArray(ext.endpoints)) {
    return ext.endpoints.map((e) => (typeof e === "string" ? e : e && (e.name || e.endpointName)))
      .filter((e) => typeof e === "string" && e);
  }
  return [];
}

function servedBy(model) {
  const endpoints = endpointsOf(model);
  if (endpoints.length) return endpoints.join(", ");
  return model.server || "";
}

// Whether a model matches a free-text filter (name, FQN, algorithm, tags, endpoints).
function modelMatches(model, text) {
  const needle = text.trim().toLowerCase();
  if (!needle) return true;
  const hay = [
    model.name, model.fullyQualifiedName, model.displayName, model.algorithm, servedBy(model),
    ...(model.tags || []).map((t) => t.tagFQN),
  ];
  return hay.some((h) => typeof h === "string" && h.toLowerCase().includes(needle));
}

// The admin token of a sign-in URL's fragment (`#token=<token>`), or null.
function tokenFromHash(hash) {
  const match = /^#token=([^&]*)/.exec(String(hash || ""));
  if (!match || !match[1]) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch (_) {
    return null;
  }
}

// Whether a request with this method changes state (and so needs the CSRF header).
function changesState(method) {
  return !["GET", "HEAD", "OPTIONS"].includes(String(method || "GET").toUpperCase());
}

// Whether `s` looks like an AWS region name (the server's own rule).
function isRegion(s) {
  return /^[a-z]{2}(-(gov|iso|isob|isof|isoe))?-[a-z]+-\d{1,2}$/.test(String(s));
}

// Why `arn` is not a well-formed IAM role ARN, or null (the server's own rule and words).
function roleArnProblem(arn) {
  arn = String(arn);
  if (arn.length <= 2048 && /^arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{12}:role\/[A-Za-z0-9_+=,.@/-]+$/.test(arn)) {
    return null;
  }
  const parts = arn.split(":");
  const rest = parts.length > 6 ? [...parts.slice(0, 5), parts.slice(5).join(":")] : parts;
  if (rest.length < 6 || rest[0] !== "arn") {
    return "an ARN has the form arn:<partition>:iam::<12-digit account id>:role/<role name>";
  }
  if (!["aws", "aws-cn", "aws-us-gov"].includes(rest[1])) {
    return "unknown partition `" + rest[1] + "` (aws, aws-cn or aws-us-gov)";
  }
  if (rest[2] !== "iam") return "service is `" + rest[2] + "`, a role ARN's is `iam`";
  if (rest[3] !== "") return "IAM ARNs have no region: the fourth field must be empty";
  if (!/^[0-9]{12}$/.test(rest[4])) return "account id `" + rest[4] + "` is not 12 digits";
  if (!rest[5].startsWith("role/")) return "resource `" + rest[5] + "` is not a role (expected role/<name>)";
  return "the role name has characters IAM does not allow";
}

// Splits an API error message into field errors: `a.b: text; c: text` -> [{path, text}].
// A message without a leading field path gives one entry with path "".
function fieldErrors(message) {
  const text = String(message || "");
  const parts = text.split(/; (?=[A-Za-z][\w.[\]]*: )/);
  return parts.map((part) => {
    const m = /^([A-Za-z][\w.[\]]*): ([\s\S]*)$/.exec(part);
    return m ? { path: m[1], text: m[2] } : { path: "", text: part };
  });
}

// The last plain key of a field path: `connection.config.awsConfig.awsRegion` -> `awsRegion`,
// `sourceConfig.config.mlModelFilterPattern.includes[0]` -> `includes`.
function fieldKey(path) {
  const last = String(path).split(".").pop() || "";
  return last.replace(/\[\d+\]$/, "");
}

// --- cron (UTC), the five-field form `sagebridge ingest --schedule` reads ---------------------

const CRON_ALIASES = {
  "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
};
const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

function cronField(text, min, max, names, nameBase) {
  const values = new Set();
  const value = (v) => {
    const up = v.toUpperCase();
    if (names && names.includes(up)) return names.indexOf(up) + nameBase;
    if (!/^\d+$/.test(v)) throw new Error("`" + v + "` is not a number");
    return Number(v);
  };
  for (const part of text.split(",")) {
    const [range, stepText] = part.split("/");
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) throw new Error("bad step `" + stepText + "`");
      step = Number(stepText);
    }
    let lo;
    let hi;
    if (range === "*" || range === "?") {
      lo = min;
      hi = max;
    } else if (range.includes("-")) {
      const [a, b] = range.split("-");
      lo = value(a);
      hi = value(b);
    } else {
      lo = value(range);
      hi = stepText !== undefined ? max : lo;
    }
    if (lo < min || hi > max || lo > hi) throw new Error("`" + part + "` is out of range " + min + "-" + max);
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  return values;
}

// Parses a cron expression: {minutes, hours, days, months, weekdays, domStar, dowStar}.
// Throws with a reason when it cannot be read.
function parseCron(expr) {
  let text = String(expr || "").trim();
  if (CRON_ALIASES[text.toLowerCase()]) text = CRON_ALIASES[text.toLowerCase()];
  const fields = text.split(/\s+/);
  if (fields.length !== 5) throw new Error("a cron expression has five fields: minute hour day-of-month month day-of-week");
  const [mi, ho, dom, mon, dow] = fields;
  const weekdays = cronField(dow, 0, 7, DAYS, 0);
  if (weekdays.has(7)) {
    weekdays.delete(7);
    weekdays.add(0);
  }
  return {
    minutes: cronField(mi, 0, 59),
    hours: cronField(ho, 0, 23),
    days: cronField(dom, 1, 31),
    months: cronField(mon, 1, 12, MONTHS, 1),
    weekdays,
    domStar: dom === "*" || dom === "?",
    dowStar: dow === "*" || dow === "?",
  };
}

// The next `count` fire times (epoch ms, UTC) of `expr` strictly after `fromMs`.
function nextFireTimes(expr, fromMs, count) {
  const cron = parseCron(expr);
  const out = [];
  const minutes = [...cron.minutes].sort((a, b) => a - b);
  const hours = [...cron.hours].sort((a, b) => a - b);
  const start = new Date(fromMs);
  const day0 = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
  // Five years of days is enough for any expression that fires at all (Feb 29 included).
  for (let d = 0; d < 366 * 5 && out.length < count; d++) {
    const day = new Date(day0 + d * 86400000);
    if (!cron.months.has(day.getUTCMonth() + 1)) continue;
    const domOk = cron.days.has(day.getUTCDate());
    const dowOk = cron.weekdays.has(day.getUTCDay());
    // As cron (and croner's default): both restricted means either one.
    const dayOk = cron.domStar && cron.dowStar ? true
      : cron.domStar ? dowOk : cron.dowStar ? domOk : domOk || dowOk;
    if (!dayOk) continue;
    for (const h of hours) {
      for (const m of minutes) {
        const t = day.getTime() + h * 3600000 + m * 60000;
        if (t > fromMs) {
          out.push(t);
          if (out.length === count) return out;
        }
      }
    }
  }
  return out;
}

// --- ingestion filter (OpenMetadata's: anchored at the start, case ignored) ------------------

// Compiles include/exclude patterns; returns {keeps(name), errors:[{list, index, message}]}.
function compileFilter(includes, excludes) {
  const errors = [];
  const compile = (list, name) => list.map((p, index) => {
    try {
      return new RegExp("^(?:" + p + ")", "i");
    } catch (e) {
      errors.push({ list: name, index, message: e.message });
      return null;
    }
  }).filter(Boolean);
  const inc = compile(includes, "includes");
  const exc = compile(excludes, "excludes");
  return {
    errors,
    keeps: (name) => (inc.length === 0 || inc.some((r) => r.test(name))) && !exc.some((r) => r.test(name)),
  };
}

// One pattern per line, blank lines dropped.
function lines(text) {
  return String(text || "").split("\n").map((l) => l.trim()).filter(Boolean);
}

// --- numbers ----------------------------------------------------------------------------------

function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

function similarityMatrix(vectors) {
  return vectors.map((a) => vectors.map((b) => cosine(a, b)));
}

// The changed leaves between two JSON values: [{path, before, after}] (undefined = absent).
function diffValues(a, b, path, out, ignore) {
  out = out || [];
  path = path || "";
  ignore = ignore || new Set();
  if (ignore.has(path)) return out;
  const isObj = (v) => v !== null && typeof v === "object";
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of [...keys].sort()) {
      const p = Array.isArray(a) ? path + "[" + k + "]" : path ? path + "." + k : k;
      diffValues(a[k], b[k], p, out, ignore);
    }
    return out;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, before: a, after: b });
  return out;
}

function formatTime(ms) {
  if (typeof ms !== "number") return "";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function formatVersion(v) {
  return typeof v === "number" ? v.toFixed(1) : "";
}

function formatDuration(ms) {
  if (typeof ms !== "number" || ms < 0) return "";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  return m + " min " + Math.round(s - m * 60) + " s";
}

// ---------------------------------------------------------------------------------------------
// HTTP

class ApiError extends Error {
  constructor(status, error) {
    super(error.message || "request failed");
    this.status = status;
    this.error = error;
  }
}

// Parses an error body in the OpenAI shape (`{error: {...}}`) or OpenMetadata's
// (`{code, message}`), or wraps whatever came.
function errorOf(status, text) {
  try {
    const body = JSON.parse(text);
    if (body && body.error && typeof body.error === "object") return new ApiError(status, body.error);
    if (body && typeof body.message === "string" && typeof body.code === "number") {
      return new ApiError(status, { message: body.message, type: "http_error" });
    }
  } catch (_) {
    // Not JSON: shown as is below.
  }
  return new ApiError(status, { message: text || "HTTP " + status, type: "http_error" });
}

// The browser session: whether signed in, and its CSRF token (memory only).
const session = { signedIn: false, csrf: "" };

// fetch() with the session cookie and, on state-changing requests, the CSRF header.
function apiFetch(path, options) {
  const opts = Object.assign({ credentials: "same-origin" }, options || {});
  const headers = Object.assign({}, opts.headers || {});
  if (changesState(opts.method) && session.csrf) headers[CSRF_HEADER] = session.csrf;
  opts.headers = headers;
  return fetch(path, opts);
}

// A JSON request; resolves to the parsed answer, rejects with an ApiError. A 401 means the
// session ended: the sign-in dialog opens over the page (nothing on it is lost).
async function api(method, path, body, options) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (options && options.signal) opts.signal = options.signal;
  let res;
  try {
    res = await apiFetch(path, opts);
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError(0, { message: "cannot reach the server (" + e.message + "): is `sagebridge serve` still running?", type: "network_error" });
  }
  const text = await res.text();
  if (!res.ok) {
    const err = errorOf(res.status, text);
    if (res.status === 401) sessionEnded();
    throw err;
  }
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch (_) {
    throw new ApiError(res.status, { message: "the server answered something that is not JSON", type: "http_error" });
  }
}

const get = (path, options) => api("GET", path, undefined, options);

// A hint a user can act on, for an error status.
function hintFor(e) {
  if (!(e instanceof ApiError)) return null;
  const err = e.error || {};
  if (err.code === "catalog_unavailable") return "This server has no catalog file: start `sagebridge serve` with --catalog.";
  switch (e.status) {
    case 0: return null;
    case 401: return "Sign in again with an admin token.";
    case 403: return "The request was refused; reload the page and try again.";
    case 404: return "It may have been deleted or renamed: go back to the list and reload.";
    case 405: return "This server does not offer this yet: it may be older than this page.";
    case 409: return "It clashes with the current state: see the message, change it and retry.";
    case 429: return "Too many requests: wait a moment and retry.";
    default: return e.status >= 500 ? "The server failed: see its log for the cause, then retry." : null;
  }
}

function errorBox(e, context) {
  const err = e instanceof ApiError ? e.error : { message: String(e && e.message ? e.message : e) };
  const status = e instanceof ApiError && e.status ? "HTTP " + e.status : "Error";
  const hint = hintFor(e);
  return el("div", { class: "error", role: "alert" },
    el("p", { class: "error-title" }, el("span", { "aria-hidden": "true" }, "⚠ "),
      context ? context + " failed" : "Request failed", " (" + status + ")"),
    el("p", {}, err.message || ""),
    hint ? el("p", { class: "muted" }, hint) : null);
}

// ---------------------------------------------------------------------------------------------
// Small building blocks

function table(headers, rows, caption) {
  return el("div", { class: "table-wrap" },
    el("table", {},
      caption ? el("caption", { class: "visually-hidden" }, caption) : null,
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

function jsonBlock(value) {
  return el("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

function card(title, ...content) {
  return el("section", { class: "card" }, title ? el("h2", {}, title) : null, content);
}

function definitionList(pairs) {
  return el("dl", {}, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function muted(text) {
  return el("p", { class: "muted" }, text);
}

// A status shown with a symbol and a word (never colour alone).
const STATUS = {
  passed: ["✓", "passed", "ok"], success: ["✓", "success", "ok"], failed: ["✗", "failed", "bad"],
  skipped: ["–", "skipped", "neutral"], partial: ["!", "partial", "warn"], partialSuccess: ["!", "partial", "warn"],
  running: ["●", "running", "info"], queued: ["…", "queued", "info"], interrupted: ["!", "interrupted", "warn"],
  warning: ["!", "warning", "warn"], never: ["–", "never run", "neutral"], expired: ["!", "expired", "warn"], active: ["✓", "active", "ok"],
};

function badge(status, text) {
  const [symbol, word, tone] = STATUS[status] || ["?", String(status), "neutral"];
  return el("span", { class: "status status-" + tone },
    el("span", { class: "status-symbol", "aria-hidden": "true" }, symbol), " ", text || word);
}

// A labelled form control with its help text and an error slot, wired with aria attributes.
// spec: {id, label, type, value, help, required, placeholder, options:[[value,text]], rows,
//        autocomplete, min, max, step, checked, list}
function field(spec) {
  const helpId = spec.help ? spec.id + "-help" : null;
  const errorId = spec.id + "-error";
  const describedBy = [helpId, errorId].filter(Boolean).join(" ");
  let control;
  const common = {
    id: spec.id, name: spec.name || spec.id, required: spec.required, "aria-describedby": describedBy,
    placeholder: spec.placeholder, autocomplete: spec.autocomplete || "off", spellcheck: "false",
  };
  if (spec.type === "select") {
    control = el("select", common, (spec.options || []).map(([v, t]) =>
      el("option", { value: v, selected: String(spec.value ?? "") === String(v) }, t)));
  } else if (spec.type === "textarea") {
    control = el("textarea", Object.assign({ rows: spec.rows || 3 }, common));
    control.value = spec.value ?? "";
  } else if (spec.type === "checkbox") {
    control = el("input", { id: spec.id, name: spec.id, type: "checkbox", checked: spec.checked, "aria-describedby": describedBy });
    return el("div", { class: "field field-check" },
      control, el("label", { for: spec.id }, spec.label),
      spec.help ? el("p", { class: "help", id: helpId }, spec.help) : null,
      el("p", { class: "field-error", id: errorId, "aria-live": "polite" }));
  } else {
    control = el("input", Object.assign({
      type: spec.type || "text", min: spec.min, max: spec.max, step: spec.step, list: spec.list,
    }, common));
    control.value = spec.value ?? "";
  }
  return el("div", { class: "field" },
    el("label", { for: spec.id }, spec.label, spec.required ? el("span", { class: "req" }, " (required)") : null),
    control,
    spec.help ? el("p", { class: "help", id: helpId }, spec.help) : null,
    el("p", { class: "field-error", id: errorId, "aria-live": "polite" }));
}

function setFieldError(id, message) {
  const input = document.getElementById(id);
  const slot = document.getElementById(id + "-error");
  if (!input || !slot) return false;
  slot.textContent = message ? "⚠ " + message : "";
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  return true;
}

function clearFieldErrors(form) {
  for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

// Shows field errors next to their fields (ids `prefix + key`), the rest in `formError`.
// Returns how many were placed. Focuses the first invalid field.
function showErrors(form, formError, errors, prefix, keyMap) {
  const rest = [];
  let first = null;
  for (const { path, text } of errors) {
    const key = (keyMap && keyMap[path]) || (keyMap && keyMap[fieldKey(path)]) || fieldKey(path);
    const id = prefix + key;
    if (path && setFieldError(id, text)) {
      if (!first) first = document.getElementById(id);
    } else {
      rest.push(path ? path + ": " + text : text);
    }
  }
  if (rest.length) {
    show(formError, el("div", { class: "error", role: "alert" },
      el("p", { class: "error-title" }, "⚠ Not saved"), rest.map((r) => el("p", {}, r))));
  }
  if (first) first.focus();
  else if (rest.length) formError.focus();
  return errors.length;
}

function valueOf(id) {
  const node = document.getElementById(id);
  return node ? node.value.trim() : "";
}

function checked(id) {
  const node = document.getElementById(id);
  return Boolean(node && node.checked);
}

function announce(text) {
  const node = document.getElementById("announcer");
  if (node) {
    node.textContent = "";
    setTimeout(() => { node.textContent = text; }, 50);
  }
}

// Copies `text`; resolves to whether it worked. Falls back to a selected hidden textarea.
async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) {
    // Fall through to the selection copy.
  }
  const area = el("textarea", { class: "visually-hidden", "aria-hidden": "true", tabindex: "-1" });
  area.value = text;
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (_) {
    ok = false;
  }
  area.remove();
  return ok;
}

function copyButton(getText, label) {
  const status = el("span", { class: "copy-status", role: "status" });
  const button = el("button", {
    type: "button",
    onclick: async () => {
      const ok = await copyText(getText());
      status.textContent = ok ? "Copied" : "Copy failed: select the text and copy it by hand";
    },
  }, label || "Copy");
  return el("span", { class: "copy" }, button, " ", status);
}

// ---------------------------------------------------------------------------------------------
// Sign in and out

function refreshSession() {
  document.getElementById("session-status").textContent = session.signedIn ? "signed in" : "not signed in";
  document.getElementById("signout").hidden = !session.signedIn;
  document.body.classList.toggle("signed-out", !session.signedIn);
}

// Signs in with an admin token; throws an ApiError when the server refuses it.
async function signIn(token) {
  let res;
  try {
    res = await apiFetch(SESSION_PATH, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
    });
  } catch (e) {
    throw new ApiError(0, { message: "cannot reach the server: " + e.message, type: "network_error" });
  }
  const text = await res.text();
  if (!res.ok) throw errorOf(res.status, text);
  const body = JSON.parse(text);
  session.signedIn = body.signedIn === true;
  session.csrf = typeof body.csrfToken === "string" ? body.csrfToken : "";
  refreshSession();
}

// Asks the server whether the session cookie of this browser is still signed in.
async function checkSession() {
  try {
    const res = await apiFetch(SESSION_PATH, {});
    const body = res.ok ? JSON.parse(await res.text()) : {};
    session.signedIn = body.signedIn === true && body.credential === "session";
    session.csrf = session.signedIn && typeof body.csrfToken === "string" ? body.csrfToken : "";
  } catch (_) {
    session.signedIn = false;
    session.csrf = "";
  }
  refreshSession();
}

// A 401 from the API: the session ended. On a page with content, a dialog asks for the token
// again (the page and what was typed stay); otherwise the sign-in page shows.
function sessionEnded() {
  const wasSignedIn = session.signedIn;
  session.signedIn = false;
  session.csrf = "";
  refreshSession();
  if (!wasSignedIn) return;
  const dialog = document.getElementById("reauth");
  if (dialog && typeof dialog.showModal === "function" && !dialog.open) {
    show(document.getElementById("reauth-error"));
    dialog.showModal();
    document.getElementById("reauth-token").focus();
  } else if (!dialog || typeof dialog.showModal !== "function") {
    route();
  }
}

function setupReauth() {
  const dialog = document.getElementById("reauth");
  const form = document.getElementById("reauth-form");
  const input = document.getElementById("reauth-token");
  const error = document.getElementById("reauth-error");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await signIn(input.value.trim());
      input.value = "";
      dialog.close();
      announce("Signed in again. Retry what you were doing.");
    } catch (e) {
      show(error, errorBox(e, "Sign-in"));
      input.focus();
    }
  });
  document.getElementById("reauth-cancel").addEventListener("click", () => {
    dialog.close();
    route();
  });
}

async function signOut() {
  try {
    const res = await apiFetch(SESSION_PATH, { method: "DELETE" });
    if (!res.ok) throw errorOf(res.status, await res.text());
  } catch (e) {
    announce("Sign-out failed: " + e.message);
  }
  session.signedIn = false;
  session.csrf = "";
  refreshSession();
  location.hash = "#/signin";
  route();
}

function renderSignIn(main, message) {
  const input = el("input", { id: "signin-token", type: "password", autocomplete: "current-password", spellcheck: "false", required: true, "aria-describedby": "signin-help" });
  const error = el("div", { id: "signin-error", "aria-live": "polite" }, message ? errorBox(message, "Sign-in") : null);
  const form = el("form", { id: "signin-form", class: "signin", autocomplete: "off" },
    el("div", { class: "field" },
      el("label", { for: "signin-token" }, "Admin token"),
      input,
      el("p", { class: "help", id: "signin-help" },
        "One of the server's ", el("code", {}, "server.adminTokens"),
        ", or the token in the sign-in URL that ", el("code", {}, "sagebridge serve"),
        " printed when it started (opening that URL signs you in).")),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Sign in")),
    error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) {
      show(error, el("p", { class: "field-error" }, "⚠ Enter the admin token."));
      input.focus();
      return;
    }
    show(error, muted("Signing in…"));
    try {
      await signIn(token);
      input.value = "";
      const next = signInNext || "#/services";
      signInNext = null;
      if (location.hash === next) route();
      else location.hash = next;
    } catch (e) {
      show(error, errorBox(e, "Sign-in"));
      input.focus();
    }
  });
  append(main, el("p", {}, "Sign in to set up SageMaker services, ingestion, gateway models and API keys."), form);
}

let signInNext = null;

// ---------------------------------------------------------------------------------------------
// Page frame

let renderSerial = 0;

// Starts a page: clears <main>, puts the heading first and returns {main, alive()} where
// alive() turns false once another route has rendered (late answers are then dropped).
function page(title, ...actions) {
  const serial = ++renderSerial;
  const main = document.getElementById("main");
  const heading = el("h1", { id: "page-title", tabindex: "-1" }, title);
  show(main, el("div", { class: "page-head" }, heading, actions.length ? el("div", { class: "page-actions" }, actions) : null));
  document.title = title + " · sagebridge";
  return { main, heading, alive: () => serial === renderSerial };
}

function loading(text) {
  return el("p", { class: "muted loading", role: "status" }, text || "Loading…");
}

// ---------------------------------------------------------------------------------------------
// Services

function authMode(aws) {
  aws = aws || {};
  let base = aws.awsAccessKeyId ? "access key" : aws.profileName ? "profile " + aws.profileName : "default chain";
  if (aws.assumeRoleArn) base += " + assume role";
  return base;
}

async function viewServices() {
  const p = page("Services", el("a", { class: "button primary", href: "#/services/new" }, "Add service"));
  const body = el("div", {}, loading());
  append(p.main, el("p", { class: "lead" }, "SageMaker connections: where models are ingested from, and whose credentials gateway models can reuse."), body);
  let services;
  try {
    services = (await get(API + "/services/mlmodelServices")).data || [];
  } catch (e) {
    if (p.alive()) show(body, errorBox(e, "Loading the services"));
    return;
  }
  if (!p.alive()) return;
  if (!services.length) {
    show(body, el("div", { class: "empty" }, el("p", {}, "No service yet."),
      el("a", { class: "button primary", href: "#/services/new" }, "Add your first SageMaker service")));
    return;
  }
  const rows = services.map((s) => {
    const aws = (s.connection && s.connection.config && s.connection.config.awsConfig) || {};
    const modelsCell = el("td", { class: "num" }, "…");
    const runCell = el("td", {}, "…");
    get(API + "/mlmodels?limit=1&service=" + encodeURIComponent(s.name))
      .then((r) => { modelsCell.textContent = String((r.paging && r.paging.total) ?? (r.data || []).length); })
      .catch(() => { modelsCell.textContent = "?"; });
    // The list carries each service's pipeline count and last run (one request for the page).
    const last = s.lastRun || null;
    show(runCell, last ? [badge(last.status), " ", el("span", { class: "muted" }, formatTime(last.startedAt))]
      : s.pipelines ? badge("never") : el("a", { href: "#/ingestion/" + encodeURIComponent(s.id) + "/new" }, "add a pipeline"));
    return el("tr", {},
      el("th", { scope: "row" }, el("a", { href: "#/services/" + encodeURIComponent(s.id) }, s.name)),
      el("td", {}, aws.awsRegion || ""),
      el("td", {}, authMode(aws)),
      modelsCell,
      runCell,
      el("td", {}, el("a", { href: "#/ingestion/" + encodeURIComponent(s.id) }, "Ingestion")));
  });
  show(body, table(["Name", "Region", "Auth mode", "Models", "Last run", ""], rows, "Services"));
}

// The AWS connection fields in OpenMetadata's order, with their help.
const AWS_FIELDS = [
  { key: "awsRegion", label: "AWS Region", required: true, placeholder: "us-east-1",
    help: "The region of the SageMaker models and endpoints, e.g. us-east-1 or eu-west-1." },
  { key: "awsAccessKeyId", label: "AWS Access Key ID", placeholder: "AKIA…",
    help: "Leave empty to use the profile below, the environment or the instance role (the default credential chain)." },
  { key: "awsSecretAccessKey", label: "AWS Secret Access Key", type: "password", secret: true,
    help: "Needed with an access key ID. Never shown again once saved." },
  { key: "awsSessionToken", label: "AWS Session Token", type: "password", secret: true,
    help: "Only for temporary credentials (access keys starting with ASIA)." },
  { key: "endPointURL", label: "Endpoint URL", placeholder: "empty: AWS's own endpoints",
    help: "Overrides the SageMaker, SageMaker runtime and STS endpoints: a VPC endpoint, or an emulator such as moto for tests." },
  { key: "profileName", label: "Profile Name",
    help: "A profile of ~/.aws/config on the machine that runs sagebridge." },
  { key: "assumeRoleArn", label: "Assume Role ARN", placeholder: "arn:aws:iam::123456789012:role/sagebridge-reader",
    help: "A role sagebridge assumes with the credentials above; models are read with the role's permissions." },
  { key: "assumeRoleSessionName", label: "Assume Role Session Name", placeholder: DEFAULT_SESSION_NAME,
    help: "Shows in CloudTrail. Defaults to " + DEFAULT_SESSION_NAME + "." },
  { key: "assumeRoleSourceIdentity", label: "Assume Role Source Identity",
    help: "Optional source identity set on the role session (2 to 64 characters)." },
  { key: "assumeRoleExternalId", label: "Assume Role External ID",
    help: "Set when the role's trust policy requires sts:ExternalId (access granted to a third party)." },
  { key: "runtimeEndPointURL", label: "Runtime Endpoint URL", placeholder: "empty: the Endpoint URL",
    help: "The SageMaker runtime (InvokeEndpoint) endpoint when it differs: a runtime VPC endpoint." },
  { key: "stsEndPointURL", label: "STS Endpoint URL", placeholder: "empty: the Endpoint URL",
    help: "The STS endpoint (GetCallerIdentity, AssumeRole) when it differs: a regional STS VPC endpoint." },
];

// The awsConfig of a form whose AWS inputs have ids `prefix + key`. Empty fields are left out
// (secrets then stay as stored on an update).
function awsConfigFrom(prefix) {
  const aws = {};
  for (const f of AWS_FIELDS) {
    const v = valueOf(prefix + f.key);
    if (v) aws[f.key] = v;
  }
  return aws;
}

// Client-side checks of an awsConfig: [{path, text}]. `stored` says which secrets are stored.
function checkAws(aws, stored) {
  const errors = [];
  stored = stored || {};
  if (!aws.awsRegion) errors.push({ path: "awsRegion", text: "Enter the region, for example us-east-1." });
  else if (!isRegion(aws.awsRegion)) errors.push({ path: "awsRegion", text: "`" + aws.awsRegion + "` is not an AWS region name (for example us-east-1)." });
  const hasSecret = Boolean(aws.awsSecretAccessKey) || Boolean(stored.awsSecretAccessKey);
  if (aws.awsAccessKeyId && !hasSecret) errors.push({ path: "awsSecretAccessKey", text: "Enter the secret of this access key." });
  if (aws.awsSecretAccessKey && !aws.awsAccessKeyId) errors.push({ path: "awsAccessKeyId", text: "A secret needs its access key ID." });
  if (aws.awsSessionToken && !aws.awsAccessKeyId) errors.push({ path: "awsSessionToken", text: "A session token needs the access key ID and secret." });
  for (const key of ["endPointURL", "runtimeEndPointURL", "stsEndPointURL"]) {
    if (aws[key] && !/^https?:\/\/[^/\s]+/.test(aws[key])) errors.push({ path: key, text: "Enter a URL that starts with http: or https: (scheme, then the host)." });
  }
  if (aws.assumeRoleArn) {
    const problem = roleArnProblem(aws.assumeRoleArn);
    if (problem) errors.push({ path: "assumeRoleArn", text: "Invalid ARN: " + problem + "." });
  }
  for (const key of ["assumeRoleSessionName", "assumeRoleSourceIdentity"]) {
    if (aws[key] && !/^[A-Za-z0-9_+=,.@-]{2,64}$/.test(aws[key])) {
      errors.push({ path: key, text: "Use 2 to 64 characters of letters, digits and +=,.@_-" });
    }
  }
  return errors;
}

function awsFieldset(prefix, aws, secrets, legend) {
  aws = aws || {};
  secrets = secrets || {};
  const fields = AWS_FIELDS.map((f) => {
    const stored = f.secret && secrets[f.key];
    return field({
      id: prefix + f.key, label: f.label, type: f.type, required: f.required,
      value: f.secret ? "" : aws[f.key] ?? "",
      placeholder: stored ? "stored: leave empty to keep it" : f.placeholder,
      help: stored ? f.help + " A value is stored: leave empty to keep it, or type a new one to replace it." : f.help,
      autocomplete: f.secret ? "new-password" : "off",
    });
  });
  // Live re-checks while typing, of fields that show an error: the message updates or goes away
  // as soon as the value is right. New errors only come on submit, so no message appears or
  // moves the layout between a press on a button and its click.
  for (const key of ["awsRegion", "assumeRoleArn", "endPointURL", "runtimeEndPointURL", "stsEndPointURL", "assumeRoleSessionName", "assumeRoleSourceIdentity"]) {
    const input = fields[AWS_FIELDS.findIndex((f) => f.key === key)].querySelector("input");
    input.addEventListener("input", () => {
      if (input.getAttribute("aria-invalid") !== "true") return;
      const value = input.value.trim();
      const errs = value ? checkAws(Object.assign({ awsRegion: "us-east-1" }, { [key]: value }), { awsSecretAccessKey: true })
        .filter((e) => e.path === key) : [];
      if (!errs.length || errs[0].text !== (document.getElementById(prefix + key + "-error").textContent || "").replace(/^⚠ /, "")) {
        setFieldError(prefix + key, errs.length ? errs[0].text : "");
      }
    });
  }
  return el("fieldset", {}, el("legend", {}, legend || "AWS connection"),
    el("div", { class: "grid" }, fields.slice(0, 4)),
    el("div", { class: "grid" }, fields.slice(4, 6)),
    el("details", { class: "subsection", open: Boolean(aws.assumeRoleArn) || undefined },
      el("summary", {}, "Assume a role (optional)"),
      el("div", { class: "grid" }, fields.slice(6, 10))),
    el("details", { class: "subsection", open: Boolean(aws.runtimeEndPointURL || aws.stsEndPointURL) || undefined },
      el("summary", {}, "Separate runtime and STS endpoints (optional)"),
      el("div", { class: "grid" }, fields.slice(10))));
}

// POSTs `body` to a test-connection route asking for events; calls `onSteps` with the steps so
// far after each one, and resolves to the final report. Errors reject as api() does.
async function streamSteps(path, body, onSteps) {
  let res;
  try {
    res = await apiFetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, { message: "cannot reach the server (" + e.message + "): is `sagebridge serve` still running?", type: "network_error" });
  }
  if (!res.ok) {
    const err = errorOf(res.status, await res.text());
    if (res.status === 401) sessionEnded();
    throw err;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseEventParser();
  const steps = [];
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    for (const ev of parser.push(decoder.decode(chunk.value, { stream: true }))) {
      const data = JSON.parse(ev.data);
      if (ev.event === "step") {
        steps.push(data);
        onSteps(steps.slice());
      } else if (ev.event === "report") {
        if (data.code && data.message && !data.steps) throw new ApiError(data.code, data);
        return data;
      }
    }
  }
  throw new ApiError(0, { message: "the test stopped before its report: see the server log", type: "network_error" });
}

// Renders a test-connection / check answer: each step with its status and cause, the policy.
function renderSteps(result) {
  const steps = Array.isArray(result.steps) ? result.steps : [];
  const failed = steps.filter((s) => (s.status || (s.passed ? "passed" : "failed")) === "failed");
  const summary = result.running
    ? el("p", { class: "summary running" }, badge("running", "Testing"), " " + steps.length + " step" + (steps.length === 1 ? "" : "s") + " done so far…")
    : result.passed
      ? el("p", { class: "summary final" }, badge("passed", "All mandatory steps passed"))
      : el("p", { class: "summary final" }, badge("failed", failed.length + " step" + (failed.length === 1 ? "" : "s") + " failed"));
  const items = steps.map((s) => {
    const status = s.status || (s.passed ? "passed" : "failed");
    return el("li", { class: "step step-" + status },
      el("div", { class: "step-head" }, badge(status), " ", el("strong", {}, s.name),
        s.mandatory === false ? el("span", { class: "muted" }, " (optional)") : null,
        typeof s.durationMs === "number" ? el("span", { class: "muted" }, " · " + formatDuration(s.durationMs)) : null),
      status === "skipped"
        ? el("p", { class: "muted" }, "Not run: " + String(s.skippedReason || s.error || "an earlier step failed").replace(/^skipped: /i, ""))
        : [
          s.error ? el("p", { class: "step-error" }, s.errorKind ? el("strong", {}, s.errorKind + ": ") : null, s.error) : null,
          s.iamAction ? el("p", {}, "Missing IAM permission: ", el("code", {}, s.iamAction)) : null,
          s.detail ? el("p", { class: "muted" }, s.detail) : null,
        ]);
  });
  const parts = [summary, el("ol", { class: "steps", "aria-label": "Steps" }, items)];
  if (result.policy) {
    const text = JSON.stringify(result.policy, null, 2);
    parts.push(el("div", { class: "policy" },
      el("h3", {}, "IAM policy that makes these steps pass"),
      el("p", { class: "muted" }, "Attach it to the user or role of these credentials."),
      el("pre", { class: "json", id: "iam-policy", tabindex: "0", "aria-label": "IAM policy JSON" }, text),
      copyButton(() => text, "Copy policy")));
  }
  return parts;
}

async function viewServiceForm(id) {
  const editing = Boolean(id);
  const p = page(editing ? "Edit service" : "Add service");
  let existing = null;
  if (editing) {
    const holder = el("div", {}, loading());
    append(p.main, holder);
    try {
      existing = await get(API + "/services/mlmodelServices/" + encodeURIComponent(id));
    } catch (e) {
      if (p.alive()) show(holder, errorBox(e, "Loading the service"));
      return;
    }
    if (!p.alive()) return;
    holder.remove();
    p.heading.textContent = "Service " + existing.name;
  }
  const aws = existing ? (existing.connection && existing.connection.config && existing.connection.config.awsConfig) || {} : {};
  const secrets = (existing && existing.secrets) || {};
  const formError = el("div", { id: "service-form-error", tabindex: "-1", "aria-live": "polite" });
  const testResult = el("div", { id: "test-result", "aria-live": "polite" });
  const saveButton = el("button", { type: "submit", class: "primary" }, editing ? "Save changes" : "Add service");
  const testButton = el("button", { type: "button", id: "test-connection" }, "Test connection");
  const form = el("form", { id: "service-form", novalidate: true, autocomplete: "off" },
    el("fieldset", {}, el("legend", {}, "Service"),
      el("div", { class: "grid" },
        field({ id: "svc-name", label: "Name", required: true, value: existing ? existing.name : "",
          help: "Unique. Models are named <service>.<model> in the catalog." }),
        field({ id: "svc-description", label: "Description", value: existing ? existing.description || "" : "",
          help: "Optional, shown in the catalog." }))),
    awsFieldset("svc-", aws, secrets, "AWS connection"),
    formError,
    el("div", { class: "actions" }, saveButton, testButton,
      el("a", { class: "button", href: "#/services" }, "Cancel")),
    el("section", { class: "card", "aria-labelledby": "test-title" },
      el("h2", { id: "test-title" }, "Test connection"),
      el("p", { class: "muted" }, "Runs each call ingestion needs with the values above (stored secrets fill in empty secret fields)."),
      testResult));
  append(p.main, form);
  if (editing) {
    append(p.main, dangerZone("Delete service", "Deletes the service with its pipelines, run history, gateway models using its credentials and catalog models.",
      async () => {
        await api("DELETE", API + "/services/mlmodelServices/" + encodeURIComponent(id) + "?recursive=true&hardDelete=true");
        announce("Service deleted");
        location.hash = "#/services";
      }));
  }

  const collect = () => {
    const body = {
      name: valueOf("svc-name"),
      serviceType: "SageMaker",
      connection: { config: { type: "SageMaker", awsConfig: awsConfigFrom("svc-") } },
    };
    const description = valueOf("svc-description");
    if (description || editing) body.description = description;
    return body;
  };
  const validate = (body) => {
    clearFieldErrors(form);
    show(formError);
    const errors = checkAws(body.connection.config.awsConfig, secrets);
    if (!body.name) errors.unshift({ path: "name", text: "Enter a name." });
    if (errors.length) {
      showErrors(form, formError, errors, "svc-", { name: "name", description: "description" });
      return false;
    }
    return true;
  };
  const keyMap = { name: "name", description: "description" };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = collect();
    if (!validate(body)) return;
    saveButton.disabled = true;
    show(formError, loading("Saving…"));
    try {
      const saved = editing
        ? await api("PUT", API + "/services/mlmodelServices/" + encodeURIComponent(id), body)
        : await api("POST", API + "/services/mlmodelServices", body);
      show(formError);
      announce("Service " + saved.name + " saved");
      location.hash = "#/services/" + encodeURIComponent(saved.id) + (editing ? "" : "?created=1");
      if (editing) show(formError, el("p", { class: "notice", role: "status" }, badge("passed", "Saved")));
    } catch (e) {
      show(formError);
      if (e instanceof ApiError && e.status === 400) showErrors(form, formError, fieldErrors(e.message), "svc-", keyMap);
      else show(formError, errorBox(e, "Saving the service"));
    } finally {
      saveButton.disabled = false;
    }
  });
  testButton.addEventListener("click", async () => {
    const body = collect();
    if (!validate(body)) return;
    const request = { connection: body.connection };
    if (editing) request.service = id;
    testButton.disabled = true;
    show(testResult, loading("Testing the connection… each step runs one AWS call."));
    try {
      // The form's values, not the stored ones: stored secrets fill in empty secret fields.
      // Asked as events, each step shows as soon as it is done; the report ends the stream.
      const result = await streamSteps(API + "/services/testConnection", request, (steps) =>
        show(testResult, renderSteps({ steps, running: true })));
      show(testResult, renderSteps(result));
      announce(result.passed ? "Connection test passed" : "Connection test failed");
    } catch (e) {
      if (e instanceof ApiError && e.status === 400) {
        show(testResult);
        showErrors(form, formError, fieldErrors(e.message), "svc-", keyMap);
      } else {
        show(testResult, errorBox(e, "Testing the connection"));
      }
    } finally {
      testButton.disabled = false;
    }
  });
  if (editing && /created=1/.test(location.hash)) {
    append(formError, el("p", { class: "notice", role: "status" }, badge("passed", "Service added."), " Test its connection, then ",
      el("a", { href: "#/ingestion/" + encodeURIComponent(id) + "/new" }, "add an ingestion pipeline"), "."));
  }
}

// A delete button with an inline confirmation (no window.confirm).
function dangerZone(label, explanation, action) {
  const status = el("div", { "aria-live": "polite" });
  const confirmBox = el("div", { class: "confirm", hidden: true },
    el("p", {}, explanation, " This cannot be undone."),
    el("button", {
      type: "button", class: "danger", onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          await action();
        } catch (e) {
          show(status, errorBox(e, label));
        } finally {
          ev.target.disabled = false;
        }
      },
    }, "Yes, " + label.toLowerCase()),
    " ",
    el("button", { type: "button", onclick: () => { confirmBox.hidden = true; opener.focus(); } }, "Cancel"));
  const opener = el("button", { type: "button", class: "danger-outline", onclick: () => { confirmBox.hidden = false; confirmBox.querySelector("button").focus(); } }, label + "…");
  return el("section", { class: "danger-zone" }, opener, confirmBox, status);
}

// ---------------------------------------------------------------------------------------------
// Ingestion

const SCHEDULE_PRESETS = [
  ["", "On demand only (no schedule)"],
  ["0 * * * *", "Hourly (at minute 0)"],
  ["0 0 * * *", "Daily (00:00 UTC)"],
  ["0 0 * * 0", "Weekly (Sunday 00:00 UTC)"],
  ["custom", "Custom cron expression"],
];

async function viewIngestion(serviceId) {
  const p = page("Ingestion");
  const body = el("div", {}, loading());
  append(p.main, el("p", { class: "lead" }, "Pipelines read a service's models into the catalog, on demand or on a schedule."), body);
  let services;
  try {
    services = (await get(API + "/services/mlmodelServices")).data || [];
  } catch (e) {
    if (p.alive()) show(body, errorBox(e, "Loading the services"));
    return;
  }
  if (!p.alive()) return;
  if (!services.length) {
    show(body, el("div", { class: "empty" }, el("p", {}, "Add a service first: pipelines ingest from a service."),
      el("a", { class: "button primary", href: "#/services/new" }, "Add service")));
    return;
  }
  const current = services.find((s) => s.id === serviceId) || services[0];
  const select = el("select", { id: "ingestion-service" },
    services.map((s) => el("option", { value: s.id, selected: s.id === current.id }, s.name)));
  select.addEventListener("change", () => { location.hash = "#/ingestion/" + encodeURIComponent(select.value); });
  const list = el("div", {}, loading());
  show(body,
    el("div", { class: "toolbar" },
      el("label", { for: "ingestion-service" }, "Service"), select,
      el("a", { class: "button primary", href: "#/ingestion/" + encodeURIComponent(current.id) + "/new" }, "Add pipeline")),
    list);
  let pipelines;
  try {
    pipelines = (await get(API + "/services/ingestionPipelines?service=" + encodeURIComponent(current.id))).data || [];
  } catch (e) {
    if (p.alive()) show(list, errorBox(e, "Loading the pipelines"));
    return;
  }
  if (!p.alive()) return;
  if (!pipelines.length) {
    show(list, el("div", { class: "empty" }, el("p", {}, "No pipeline for " + current.name + " yet."),
      el("a", { class: "button", href: "#/ingestion/" + encodeURIComponent(current.id) + "/new" }, "Add a pipeline")));
    return;
  }
  show(list, table(["Pipeline", "Filters", "Schedule (UTC)", "Mark deleted", "Last run"], pipelines.map((pl) => {
    const cfg = (pl.sourceConfig && pl.sourceConfig.config) || {};
    const pat = cfg.mlModelFilterPattern || {};
    const schedule = pl.airflowConfig && pl.airflowConfig.scheduleInterval;
    const lastCell = el("td", {}, "…");
    const run = pl.lastRun || null;
    show(lastCell, run ? [badge(run.status), " ", el("span", { class: "muted" }, formatTime(run.startedAt))] : badge("never"));
    return el("tr", {},
      el("th", { scope: "row" }, el("a", { href: "#/pipelines/" + encodeURIComponent(pl.id) }, pl.name)),
      el("td", {}, filterSummary(pat)),
      el("td", {}, schedule ? [el("code", {}, schedule), pl.enabled === false ? " (paused)" : ""] : "on demand"),
      el("td", {}, cfg.markDeletedMlModels === false ? "no" : "yes"),
      lastCell);
  }), "Pipelines"));
}

function filterSummary(pat) {
  const inc = pat.includes || [];
  const exc = pat.excludes || [];
  if (!inc.length && !exc.length) return "all models";
  return [inc.length ? ["include ", inc.map((i) => el("code", {}, i)).reduce((a, c) => a.length ? [...a, ", ", c] : [c], [])] : null,
    inc.length && exc.length ? "; " : null,
    exc.length ? ["exclude ", exc.map((i) => el("code", {}, i)).reduce((a, c) => a.length ? [...a, ", ", c] : [c], [])] : null];
}

// The pipeline form; `pipeline` is null for a new one. Resolves nothing; saves on submit.
function pipelineForm(service, pipeline, knownModels, onSaved) {
  const cfg = (pipeline && pipeline.sourceConfig && pipeline.sourceConfig.config) || {};
  const pat = cfg.mlModelFilterPattern || {};
  const schedule = (pipeline && pipeline.airflowConfig && pipeline.airflowConfig.scheduleInterval) || "";
  const presetValue = SCHEDULE_PRESETS.some(([v]) => v === schedule && v !== "custom") ? schedule : "custom";
  const formError = el("div", { id: "pipeline-form-error", tabindex: "-1", "aria-live": "polite" });
  const preview = el("div", { id: "filter-preview", class: "preview", "aria-live": "polite" });
  const fireTimes = el("div", { id: "schedule-preview", class: "preview", "aria-live": "polite" });
  const saveButton = el("button", { type: "submit", class: "primary" }, pipeline ? "Save pipeline" : "Create pipeline");
  const form = el("form", { id: "pipeline-form", novalidate: true, autocomplete: "off" },
    el("fieldset", {}, el("legend", {}, "Pipeline"),
      el("div", { class: "grid" },
        field({ id: "pl-name", label: "Name", required: true, value: pipeline ? pipeline.name : service.name + "-metadata",
          help: "Unique within the service." }),
        field({ id: "pl-description", label: "Description", value: pipeline ? pipeline.description || "" : "" }))),
    el("fieldset", {}, el("legend", {}, "Which models"),
      el("div", { class: "grid" },
        field({ id: "pl-includes", label: "Include patterns", type: "textarea", rows: 3, value: (pat.includes || []).join("\n"),
          help: "Regular expressions, one per line, matched from the start of the model name, case ignored. Empty: every model." }),
        field({ id: "pl-excludes", label: "Exclude patterns", type: "textarea", rows: 3, value: (pat.excludes || []).join("\n"),
          help: "A model matching any of these is skipped, even when included." })),
      preview),
    el("fieldset", {}, el("legend", {}, "Options"),
      field({ id: "pl-markDeletedMlModels", label: "Mark models deleted in the catalog when they are gone from SageMaker", type: "checkbox",
        checked: cfg.markDeletedMlModels !== false }),
      field({ id: "pl-overrideMetadata", label: "Override descriptions and tags edited in the catalog", type: "checkbox",
        checked: cfg.overrideMetadata === true }),
      el("div", { class: "grid" },
        field({ id: "pl-featureGroupTagKey", label: "Feature group tag key", value: cfg.featureGroupTagKey || "ml:feature-groups",
          help: "The SageMaker tag that lists the feature groups a model was trained on (comma-separated); used for features and lineage." }),
        field({ id: "pl-concurrency", label: "Concurrency", type: "number", min: 1, max: 256, value: cfg.concurrency || 16,
          help: "How many models are described at once. Lower it if AWS throttles." }))),
    el("fieldset", {}, el("legend", {}, "Schedule"),
      el("div", { class: "grid" },
        field({ id: "pl-preset", label: "Run", type: "select", value: schedule ? presetValue : "", options: SCHEDULE_PRESETS }),
        field({ id: "pl-scheduleInterval", label: "Cron expression (UTC)", value: schedule, placeholder: "0 */6 * * *",
          help: "minute hour day-of-month month day-of-week, in UTC. Empty: on demand only." })),
      fireTimes,
      field({ id: "pl-pausePipeline", label: "Pause the schedule", type: "checkbox", checked: pipeline ? pipeline.enabled === false : false })),
    formError,
    el("div", { class: "actions" }, saveButton,
      el("a", { class: "button", href: "#/ingestion/" + encodeURIComponent(service.id) }, "Cancel")));

  // Reads this form's inputs (the form is built before it is put into the page).
  const own = (id) => form.querySelector("#" + id).value.trim();
  const updatePreview = () => {
    const f = compileFilter(lines(own("pl-includes")), lines(own("pl-excludes")));
    setFieldError("pl-includes", f.errors.filter((e) => e.list === "includes").map((e) => "line " + (e.index + 1) + ": " + e.message).join("; "));
    setFieldError("pl-excludes", f.errors.filter((e) => e.list === "excludes").map((e) => "line " + (e.index + 1) + ": " + e.message).join("; "));
    if (knownModels === null) {
      show(preview, muted("The models this service already has in the catalog are shown here once it has been ingested."));
      return;
    }
    const names = knownModels.map((m) => m.name);
    const kept = names.filter(f.keeps);
    const dropped = names.filter((n) => !f.keeps(n));
    if (!names.length) {
      show(preview, muted("No model of this service is in the catalog yet: the preview shows them after a first run."));
      return;
    }
    const listOf = (items) => el("ul", { class: "chips" }, items.slice(0, 40).map((n) => el("li", {}, n)),
      items.length > 40 ? el("li", { class: "muted" }, "and " + (items.length - 40) + " more") : null);
    show(preview,
      el("p", { id: "filter-preview-count" }, el("strong", {}, kept.length + " of " + names.length), " known models match."),
      el("details", { open: kept.length <= 40 || undefined }, el("summary", {}, "Matching (" + kept.length + ")"), listOf(kept)),
      dropped.length ? el("details", {}, el("summary", {}, "Left out (" + dropped.length + ")"), listOf(dropped)) : null);
  };
  const updateSchedule = () => {
    const expr = own("pl-scheduleInterval");
    if (!expr) {
      show(fireTimes, muted("No schedule: runs only with Run now (or `sagebridge ingest`)."));
      setFieldError("pl-scheduleInterval", "");
      return;
    }
    try {
      const times = nextFireTimes(expr, Date.now(), 5);
      setFieldError("pl-scheduleInterval", "");
      show(fireTimes, el("p", {}, "Next five runs (UTC):"),
        el("ol", { id: "next-fire-times", class: "fire-times" }, times.map((t) => el("li", {}, el("time", { datetime: new Date(t).toISOString() }, formatTime(t))))));
    } catch (e) {
      show(fireTimes);
      setFieldError("pl-scheduleInterval", e.message);
    }
  };
  form.querySelector("#pl-includes").addEventListener("input", updatePreview);
  form.querySelector("#pl-excludes").addEventListener("input", updatePreview);
  const preset = form.querySelector("#pl-preset");
  const cron = form.querySelector("#pl-scheduleInterval");
  preset.addEventListener("change", () => {
    if (preset.value !== "custom") cron.value = preset.value;
    else cron.focus();
    updateSchedule();
  });
  cron.addEventListener("input", () => {
    const v = cron.value.trim();
    preset.value = SCHEDULE_PRESETS.some(([p]) => p === v && p !== "custom") ? v : "custom";
    updateSchedule();
  });
  updatePreview();
  updateSchedule();
  // After a run, the catalog knows more models: the preview follows.
  form.setKnownModels = (models) => {
    knownModels = models;
    updatePreview();
  };

  const keyMap = { includes: "includes", excludes: "excludes", scheduleInterval: "scheduleInterval", name: "name" };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    show(formError);
    const includes = lines(valueOf("pl-includes"));
    const excludes = lines(valueOf("pl-excludes"));
    const errors = [];
    if (!valueOf("pl-name")) errors.push({ path: "name", text: "Enter a name." });
    const f = compileFilter(includes, excludes);
    for (const e of f.errors) errors.push({ path: e.list, text: "line " + (e.index + 1) + ": " + e.message });
    const expr = valueOf("pl-scheduleInterval");
    if (expr) {
      try {
        parseCron(expr);
      } catch (e) {
        errors.push({ path: "scheduleInterval", text: e.message });
      }
    }
    const concurrency = Number(valueOf("pl-concurrency"));
    if (!Number.isInteger(concurrency) || concurrency < 1) errors.push({ path: "concurrency", text: "Enter a whole number of at least 1." });
    if (errors.length) {
      showErrors(form, formError, errors, "pl-", keyMap);
      return;
    }
    const config = {
      type: "MlModelMetadata",
      markDeletedMlModels: checked("pl-markDeletedMlModels"),
      overrideMetadata: checked("pl-overrideMetadata"),
      featureGroupTagKey: valueOf("pl-featureGroupTagKey") || "ml:feature-groups",
      concurrency,
    };
    if (includes.length || excludes.length) config.mlModelFilterPattern = { includes, excludes };
    const body = {
      name: valueOf("pl-name"),
      pipelineType: "metadata",
      service: { id: service.id, type: "mlmodelService" },
      sourceConfig: { config },
      airflowConfig: { pausePipeline: checked("pl-pausePipeline") },
    };
    if (expr) body.airflowConfig.scheduleInterval = expr;
    const description = valueOf("pl-description");
    if (description || pipeline) body.description = description;
    saveButton.disabled = true;
    show(formError, loading("Saving…"));
    try {
      const saved = pipeline
        ? await api("PUT", API + "/services/ingestionPipelines/" + encodeURIComponent(pipeline.id), body)
        : await api("POST", API + "/services/ingestionPipelines", body);
      show(formError, el("p", { class: "notice", role: "status" }, badge("passed", "Saved")));
      announce("Pipeline " + saved.name + " saved");
      onSaved(saved);
    } catch (e) {
      show(formError);
      if (e instanceof ApiError && e.status === 400) showErrors(form, formError, fieldErrors(e.message), "pl-", keyMap);
      else show(formError, errorBox(e, "Saving the pipeline"));
    } finally {
      saveButton.disabled = false;
    }
  });
  return form;
}

// The models the catalog has for a service (for the filter preview), or null when unknown.
async function knownModelsOf(serviceName) {
  try {
    const r = await get(API + "/mlmodels?limit=1000&service=" + encodeURIComponent(serviceName));
    return r.data || [];
  } catch (_) {
    return null;
  }
}

async function viewPipelineNew(serviceId) {
  const p = page("Add pipeline");
  const holder = el("div", {}, loading());
  append(p.main, holder);
  let service;
  try {
    service = await get(API + "/services/mlmodelServices/" + encodeURIComponent(serviceId));
  } catch (e) {
    if (p.alive()) show(holder, errorBox(e, "Loading the service"));
    return;
  }
  const known = await knownModelsOf(service.name);
  if (!p.alive()) return;
  p.heading.textContent = "Add pipeline to " + service.name;
  show(holder, pipelineForm(service, null, known, (saved) => {
    location.hash = "#/pipelines/" + encodeURIComponent(saved.id);
  }));
}

const TERMINAL = ["success", "partial", "partialSuccess", "failed", "interrupted", "skipped"];

// Live view of one run: a progress bar, a status line and the log; follows the events route
// (falls back to polling the run when the stream cannot be opened).
function runMonitor(pipelineId, onEnd) {
  const progress = el("progress", { id: "run-progress", max: "1", "aria-label": "Run progress" });
  const statusLine = el("p", { id: "run-status", role: "status" });
  const log = el("pre", { id: "run-log", class: "log", role: "log", "aria-label": "Run log", tabindex: "0" });
  const reportBox = el("div", {});
  const root = el("section", { class: "card run-monitor", "aria-labelledby": "run-title", hidden: true },
    el("h2", { id: "run-title" }, "Current run"), progress, statusLine, reportBox,
    el("details", { open: true }, el("summary", {}, "Log"), log));
  let source = null;
  let poll = null;
  let seenLog = 0;
  const update = (run) => {
    const pr = run.progress || {};
    const done = pr.modelsDone || 0;
    const total = pr.modelsTotal;
    if (typeof total === "number" && total > 0) {
      progress.max = total;
      progress.value = Math.min(done, total);
    } else if (TERMINAL.includes(run.status)) {
      progress.max = 1;
      progress.value = 1;
    } else {
      progress.removeAttribute("value");
    }
    const count = typeof total === "number" ? done + " of " + total + " models" : done + " models";
    show(statusLine, badge(run.status), " ", count,
      run.startedAt ? el("span", { class: "muted" }, " · started " + formatTime(run.startedAt)) : null,
      runDuration(run) !== null ? el("span", { class: "muted" }, " · took " + formatDuration(runDuration(run))) : null);
    if (run.report) show(reportBox, runReport(run.report));
    if (Array.isArray(run.logLines)) {
      for (const line of run.logLines.slice(seenLog)) log.textContent += line + "\n";
      seenLog = Math.max(seenLog, run.logLines.length);
    }
  };
  const finish = (run) => {
    if (source) source.close();
    source = null;
    if (poll) clearInterval(poll);
    poll = null;
    update(run);
    announce("Run " + run.status);
    if (onEnd) onEnd(run);
  };
  const base = API + "/services/ingestionPipelines/" + encodeURIComponent(pipelineId) + "/runs/";
  const follow = (run) => {
    root.hidden = false;
    log.textContent = "";
    seenLog = 0;
    show(reportBox);
    update(run);
    if (TERMINAL.includes(run.status)) {
      finish(run);
      return;
    }
    const startPolling = () => {
      if (poll) return;
      let rounds = 0;
      poll = setInterval(async () => {
        rounds += 1;
        if (!root.isConnected || rounds > 3600) {
          clearInterval(poll);
          poll = null;
          return;
        }
        try {
          const r = await get(base + encodeURIComponent(run.id));
          if (TERMINAL.includes(r.status)) finish(r);
          else update(r);
        } catch (_) {
          // Try again on the next tick.
        }
      }, 1000);
    };
    if (typeof EventSource !== "function") {
      startPolling();
      return;
    }
    source = new EventSource(base + encodeURIComponent(run.id) + "/events");
    source.addEventListener("progress", (ev) => {
      try {
        update(JSON.parse(ev.data));
      } catch (_) {
        // A malformed event is skipped.
      }
    });
    source.addEventListener("log", (ev) => {
      try {
        const entry = JSON.parse(ev.data);
        log.textContent += entry.line + "\n";
        seenLog = Math.max(seenLog, (entry.seq || 0) + 1);
        log.scrollTop = log.scrollHeight;
      } catch (_) {
        // Skipped.
      }
    });
    source.addEventListener("end", (ev) => {
      // The server closes the stream after `end`: no reconnection, no fallback polling.
      if (source) source.close();
      source = null;
      let final = run;
      try {
        final = JSON.parse(ev.data);
      } catch (_) {
        // Keep the last known state.
      }
      // The final state with the log lines, when the server has them.
      get(base + encodeURIComponent(final.id || run.id)).then((r) => finish(Object.assign({}, final, r)))
        .catch(() => finish(final));
    });
    source.onerror = () => {
      // The stream broke before `end` (or the route is missing): poll the run instead.
      if (source) source.close();
      source = null;
      if (root.isConnected) startPolling();
    };
  };
  return { root, follow, stop: () => { if (source) source.close(); if (poll) clearInterval(poll); } };
}

// How long a run took, in ms (`durationMs`, else from its end and start), or null.
function runDuration(r) {
  if (typeof r.durationMs === "number") return r.durationMs;
  const end = r.finishedAt ?? r.endedAt;
  return typeof end === "number" && typeof r.startedAt === "number" ? end - r.startedAt : null;
}

function runCounts(report) {
  const c = Object.assign({}, report && report.counts, report);
  return ["listed", "created", "updated", "unchanged", "markedDeleted", "deleted", "filtered", "failed"]
    .filter((k) => typeof c[k] === "number")
    .map((k) => k.replace(/([A-Z])/g, " $1").toLowerCase() + " " + c[k]).join(", ");
}

function runReport(report) {
  const failures = Array.isArray(report.failures) ? report.failures : [];
  const warnings = Array.isArray(report.warnings) ? report.warnings : [];
  return el("div", { class: "report" },
    el("p", {}, runCounts(report)),
    failures.length ? el("details", {}, el("summary", {}, failures.length + " failure" + (failures.length === 1 ? "" : "s")),
      el("ul", {}, failures.map((f) => el("li", {}, el("code", {}, f.model || ""), " ", f.errorKind ? "(" + f.errorKind + ") " : "", f.error || "")))) : null,
    warnings.length ? el("details", {}, el("summary", {}, warnings.length + " warning" + (warnings.length === 1 ? "" : "s")),
      el("ul", {}, warnings.map((w) => el("li", {}, typeof w === "string" ? w : JSON.stringify(w))))) : null);
}

async function viewPipeline(id) {
  const p = page("Pipeline");
  const holder = el("div", {}, loading());
  append(p.main, holder);
  let pipeline;
  let service;
  try {
    pipeline = await get(API + "/services/ingestionPipelines/" + encodeURIComponent(id));
    service = await get(API + "/services/mlmodelServices/" + encodeURIComponent(pipeline.service.id));
  } catch (e) {
    if (p.alive()) show(holder, errorBox(e, "Loading the pipeline"));
    return;
  }
  const known = await knownModelsOf(service.name);
  if (!p.alive()) return;
  p.heading.textContent = "Pipeline " + pipeline.name;
  const runError = el("div", { "aria-live": "polite" });
  const history = el("div", { id: "run-history" }, loading());
  const runButton = el("button", { type: "button", class: "primary", id: "run-now" }, "Run now");
  let settingsForm = null;
  const monitor = runMonitor(id, () => {
    runButton.disabled = false;
    loadHistory();
    knownModelsOf(service.name).then((models) => {
      if (models && settingsForm) settingsForm.setKnownModels(models);
    });
  });
  const loadHistory = async () => {
    let runs;
    try {
      runs = (await get(API + "/services/ingestionPipelines/" + encodeURIComponent(id) + "/runs?limit=20")).data || [];
    } catch (e) {
      show(history, errorBox(e, "Loading the run history"));
      return [];
    }
    show(history, runs.length ? runHistoryTable(id, runs) : muted("No run yet: press Run now."));
    return runs;
  };
  runButton.addEventListener("click", async () => {
    runButton.disabled = true;
    show(runError);
    try {
      const run = await api("POST", API + "/services/ingestionPipelines/trigger/" + encodeURIComponent(id));
      monitor.follow(run);
      monitor.root.scrollIntoView({ block: "nearest" });
    } catch (e) {
      runButton.disabled = false;
      show(runError, errorBox(e, "Starting the run"));
    }
  });
  show(holder,
    el("p", { class: "lead" }, "Service ", el("a", { href: "#/services/" + encodeURIComponent(service.id) }, service.name),
      " · back to ", el("a", { href: "#/ingestion/" + encodeURIComponent(service.id) }, "its pipelines")),
    el("div", { class: "toolbar" }, runButton,
      el("a", { class: "button", id: "workflow-download", href: API + "/services/ingestionPipelines/" + encodeURIComponent(id) + "/workflow.yaml",
        download: pipeline.name + ".yaml" }, "Download workflow YAML")),
    runError,
    monitor.root,
    card("Run history", history),
    el("section", { class: "card" }, el("h2", {}, "Settings"), settingsForm = pipelineForm(service, pipeline, known, () => {})),
    dangerZone("Delete pipeline", "Deletes the pipeline and its run history (the catalog's models stay).", async () => {
      await api("DELETE", API + "/services/ingestionPipelines/" + encodeURIComponent(id));
      location.hash = "#/ingestion/" + encodeURIComponent(service.id);
    }));
  const runs = await loadHistory();
  const active = runs.find((r) => r.status === "running" || r.status === "queued");
  if (active && p.alive()) {
    runButton.disabled = true;
    monitor.follow(active);
  }
}

function runHistoryTable(pipelineId, runs) {
  return table(["Started", "Trigger", "Status", "Duration", "Counts", "Failures / warnings", "Log"], runs.map((r) => {
    const report = r.report || {};
    const failures = Array.isArray(report.failures) ? report.failures : [];
    const warnings = Array.isArray(report.warnings) ? report.warnings : [];
    const logBox = el("pre", { class: "log" });
    const details = el("details", {}, el("summary", {}, "Show log"), logBox);
    details.addEventListener("toggle", async () => {
      if (!details.open || logBox.dataset.loaded) return;
      logBox.textContent = "Loading…";
      try {
        const full = await get(API + "/services/ingestionPipelines/" + encodeURIComponent(pipelineId) + "/runs/" + encodeURIComponent(r.id));
        logBox.textContent = (full.logLines || []).join("\n") || "(no log lines)";
        logBox.dataset.loaded = "1";
      } catch (e) {
        show(logBox, e.message);
      }
    });
    return el("tr", {},
      el("td", {}, formatTime(r.startedAt)),
      el("td", {}, r.trigger || ""),
      el("td", {}, badge(r.status)),
      el("td", { class: "num" }, runDuration(r) !== null ? formatDuration(runDuration(r)) : ""),
      el("td", {}, runCounts(report)),
      el("td", {}, failures.length || warnings.length ? runReport({ failures, warnings }) : "none"),
      el("td", {}, details));
  }), "Run history");
}

// ---------------------------------------------------------------------------------------------
// Models

const modelsQuery = { q: "", service: "", tag: "", algorithm: "", deleted: false, limit: 50, cursors: [""] };

function queryFromHash() {
  const i = location.hash.indexOf("?");
  return new URLSearchParams(i >= 0 ? location.hash.slice(i + 1) : "");
}

async function viewModels() {
  const params = queryFromHash();
  for (const k of ["q", "service", "tag", "algorithm"]) modelsQuery[k] = params.get(k) || "";
  modelsQuery.deleted = params.get("deleted") === "true";
  modelsQuery.cursors = [""];
  const p = page("Models");
  const search = el("input", { id: "models-q", type: "search", value: modelsQuery.q, placeholder: "name contains…" });
  const serviceSelect = el("select", { id: "models-service" }, el("option", { value: "" }, "All services"));
  const tag = el("input", { id: "models-tag", type: "text", value: modelsQuery.tag, placeholder: "e.g. team.fraud", list: "tag-suggestions" });
  const algorithm = el("input", { id: "models-algorithm", type: "text", value: modelsQuery.algorithm, placeholder: "e.g. xgboost" });
  const deleted = el("input", { id: "models-deleted", type: "checkbox", checked: modelsQuery.deleted });
  const pageSize = el("select", { id: "models-limit" }, [25, 50, 100, 200].map((n) => el("option", { value: n, selected: n === modelsQuery.limit }, n + " per page")));
  const body = el("div", { id: "models-body" }, loading());
  const count = el("p", { id: "models-count", role: "status", class: "muted" });
  const pager = el("div", { class: "pager" });
  append(p.main,
    el("form", { class: "filters", role: "search", "aria-label": "Filter models", onsubmit: (ev) => { ev.preventDefault(); reload(); } },
      el("div", { class: "field" }, el("label", { for: "models-q" }, "Search"), search),
      el("div", { class: "field" }, el("label", { for: "models-service" }, "Service"), serviceSelect),
      el("div", { class: "field" }, el("label", { for: "models-tag" }, "Tag"), tag, el("datalist", { id: "tag-suggestions" })),
      el("div", { class: "field" }, el("label", { for: "models-algorithm" }, "Algorithm"), algorithm),
      el("div", { class: "field field-check" }, deleted, el("label", { for: "models-deleted" }, "Include deleted")),
      el("div", { class: "field" }, el("label", { for: "models-limit" }, "Page size"), pageSize),
      el("div", { class: "field" }, el("span", { class: "label-spacer", "aria-hidden": "true" }, " "), el("button", { type: "submit" }, "Apply"))),
    count, body, pager);
  get(API + "/services/mlmodelServices").then((r) => {
    for (const s of r.data || []) serviceSelect.appendChild(el("option", { value: s.name, selected: s.name === modelsQuery.service }, s.name));
  }).catch(() => {});
  let timer = null;
  const reload = () => {
    modelsQuery.q = search.value.trim();
    modelsQuery.service = serviceSelect.value;
    modelsQuery.tag = tag.value.trim();
    modelsQuery.algorithm = algorithm.value.trim();
    modelsQuery.deleted = deleted.checked;
    modelsQuery.limit = Number(pageSize.value);
    modelsQuery.cursors = [""];
    const qs = new URLSearchParams();
    for (const k of ["q", "service", "tag", "algorithm"]) if (modelsQuery[k]) qs.set(k, modelsQuery[k]);
    if (modelsQuery.deleted) qs.set("deleted", "true");
    // Keep the filters in the address (back and reload keep them) without re-rendering.
    history.replaceState(null, "", "#/models" + (qs.toString() ? "?" + qs : ""));
    loadPage();
  };
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(reload, 300); });
  for (const c of [serviceSelect, deleted, pageSize]) c.addEventListener("change", reload);
  for (const c of [tag, algorithm]) c.addEventListener("change", reload);
  const loadPage = async () => {
    const cursor = modelsQuery.cursors[modelsQuery.cursors.length - 1];
    const qs = new URLSearchParams({ limit: String(modelsQuery.limit) });
    for (const k of ["q", "service", "tag", "algorithm"]) if (modelsQuery[k]) qs.set(k, modelsQuery[k]);
    if (modelsQuery.deleted) qs.set("deleted", "true");
    if (cursor) qs.set("after", cursor);
    body.setAttribute("aria-busy", "true");
    let r;
    try {
      r = await get(API + "/mlmodels?" + qs);
    } catch (e) {
      body.removeAttribute("aria-busy");
      if (p.alive()) show(body, errorBox(e, "Loading the models"));
      show(pager);
      count.textContent = "";
      return;
    }
    if (!p.alive()) return;
    body.removeAttribute("aria-busy");
    const models = r.data || [];
    const total = (r.paging && r.paging.total) ?? models.length;
    const offset = (modelsQuery.cursors.length - 1) * modelsQuery.limit;
    count.textContent = models.length
      ? "Showing " + (offset + 1) + "–" + (offset + models.length) + " of " + total.toLocaleString("en") + " models"
      : "";
    const tags = new Set();
    for (const m of models) for (const t of m.tags || []) tags.add(t.tagFQN);
    show(document.getElementById("tag-suggestions"), [...tags].sort().map((t) => el("option", { value: t })));
    if (!models.length) {
      show(body, el("div", { class: "empty" }, el("p", {}, total ? "No model on this page." :
        modelsQuery.q || modelsQuery.tag || modelsQuery.algorithm || modelsQuery.service ? "No model matches these filters." :
          "The catalog has no models yet: run an ingestion pipeline."),
      el("a", { href: "#/ingestion" }, "Go to ingestion")));
    } else {
      show(body, table(["Name", "Service", "Algorithm", "Version", "Endpoints", "Tags", "Updated"], models.map((m) => {
        const tagList = (m.tags || []).map((t) => t.tagFQN);
        return el("tr", { class: m.deleted ? "deleted" : null },
          el("th", { scope: "row" }, el("a", { href: "#/models/" + encodeURIComponent(m.fullyQualifiedName) }, m.name),
            m.deleted ? [" ", badge("skipped", "deleted")] : null),
          el("td", {}, m.service ? m.service.name || "" : ""),
          el("td", {}, m.algorithm || ""),
          el("td", { class: "num" }, formatVersion(m.version)),
          el("td", {}, endpointsOf(m).join(", ")),
          el("td", {}, el("ul", { class: "chips" }, tagList.slice(0, 3).map((t) => el("li", {}, t)),
            tagList.length > 3 ? el("li", { class: "muted" }, "+" + (tagList.length - 3)) : null)),
          el("td", {}, formatTime(m.updatedAt)));
      }), "Models"));
    }
    const prev = el("button", { type: "button", disabled: modelsQuery.cursors.length <= 1, onclick: () => { modelsQuery.cursors.pop(); loadPage().then(() => count.focus()); } }, "← Previous");
    const next = el("button", { type: "button", disabled: !(r.paging && r.paging.after), onclick: () => { modelsQuery.cursors.push(r.paging.after); loadPage().then(() => count.focus()); } }, "Next →");
    count.setAttribute("tabindex", "-1");
    show(pager, prev, el("span", { class: "muted" }, "Page " + modelsQuery.cursors.length + " of " + Math.max(1, Math.ceil(total / modelsQuery.limit))), next);
  };
  loadPage();
}

async function viewModel(fqn) {
  const p = page(fqn);
  const holder = el("div", {}, loading());
  append(p.main, el("p", {}, el("a", { href: "#/models" }, "← All models")), holder);
  const base = API + "/mlmodels/name/" + encodeURIComponent(fqn);
  let model;
  try {
    model = await get(base);
  } catch (e) {
    if (p.alive()) show(holder, errorBox(e, "Loading the model"));
    return;
  }
  const [versions, gateway, discovered] = await Promise.all([
    // OpenMetadata's shape: {entityType, versions: [...]} (entries may be JSON strings there).
    get(base + "/versions").then((r) => (Array.isArray(r) ? r : r.versions || r.data || [])
      .map((v) => (typeof v === "string" ? JSON.parse(v) : v)), (e) => e),
    get(API + "/gateway/models").then((r) => r.data || [], () => null),
    get(API + "/gateway/discovered").then((r) => r.data || [], () => null),
  ]);
  if (!p.alive()) return;
  p.heading.textContent = model.displayName || model.name;
  const store = model.mlStore || {};
  const source = safeUrl(model.sourceUrl);
  const endpoints = endpointsOf(model);
  show(holder,
    model.deleted ? el("p", { class: "notice" }, badge("skipped", "Deleted"), " This model is gone from SageMaker; the catalog keeps its history.") : null,
    model.description ? el("p", {}, model.description) : null,
    definitionList([
      ["Fully qualified name", el("code", {}, model.fullyQualifiedName)],
      ["Service", model.service ? model.service.name : ""],
      ["Algorithm", model.algorithm],
      ["Version", formatVersion(model.version)],
      ["Updated", formatTime(model.updatedAt)],
      ["Target", model.target],
      ["Source", source ? el("a", { href: source, rel: "noopener noreferrer", target: "_blank" }, "Open in the AWS console") : model.sourceUrl],
    ]),
    card("ML store", definitionList([
      ["Storage", store.storage ? el("code", {}, store.storage) : el("span", { class: "muted" }, "none")],
      ["Image repository", store.imageRepository ? el("code", {}, store.imageRepository) : el("span", { class: "muted" }, "none")],
    ])),
    card("Hyperparameters", (model.mlHyperParameters || []).length
      ? table(["Name", "Value", "Description"], model.mlHyperParameters.map((h) =>
        el("tr", {}, el("th", { scope: "row" }, h.name), el("td", {}, el("code", {}, h.value ?? "")), el("td", {}, h.description || ""))), "Hyperparameters")
      : muted("No hyperparameters recorded (the model has no training job).")),
    card("Features", (model.mlFeatures || []).length
      ? table(["Name", "Type", "Sources", "Description"], model.mlFeatures.map((f) =>
        el("tr", {}, el("th", { scope: "row" }, f.name), el("td", {}, f.dataType || ""),
          el("td", {}, (f.featureSources || []).map((s) => s.fullyQualifiedName || s.name).join(", ")),
          el("td", {}, f.description || ""))), "Features")
      : muted("No features recorded.")),
    card("Tags", (model.tags || []).length
      ? el("ul", { class: "chips" }, model.tags.map((t) => el("li", {}, el("a", { href: "#/models?tag=" + encodeURIComponent(t.tagFQN) }, t.tagFQN))))
      : muted("No tags.")),
    card("Endpoints", endpointsCard(endpoints, gateway, discovered)),
    card("Version history", versions instanceof Error ? errorBox(versions, "Loading the versions") : versionHistory(versions)));
}

function endpointsCard(endpoints, gateway, discovered) {
  if (!endpoints.length) return muted("No endpoint serves this model.");
  return table(["Endpoint", "Gateway model", ""], endpoints.map((name) => {
    const served = (gateway || []).filter((g) => g.endpointName === name);
    const found = (discovered || []).find((d) => d.endpointName === name);
    let action = null;
    if (!served.length) {
      action = el("a", { class: "button", href: "#/gateway/new?endpoint=" + encodeURIComponent(name) }, "Serve this endpoint");
    }
    return el("tr", {},
      el("th", { scope: "row" }, el("code", {}, name)),
      el("td", {}, served.length ? served.map((g) => el("a", { href: "#/playground/" + (g.kind === "embedding" ? "embeddings" : g.kind || "chat") + "?model=" + encodeURIComponent(g.name) }, g.name))
        : gateway === null ? "unknown" : found && found.kind ? "not served (suggested: " + [found.kind, found.format].filter(Boolean).join(", ") + ")" : "not served"),
      el("td", {}, action));
  }), "Endpoints");
}

const VERSION_IGNORED = new Set(["version", "updatedAt", "updatedBy", "changeDescription", "href", "incrementalChangeDescription"]);

function versionHistory(versions) {
  if (!versions.length) return muted("No history.");
  const sorted = [...versions].sort((a, b) => (b.version || 0) - (a.version || 0));
  const diffBox = el("div", { id: "version-diff", "aria-live": "polite" });
  const pick = (name, index) => el("input", { type: "radio", name, value: index, checked: name === "va" ? index === Math.min(1, sorted.length - 1) : index === 0,
    "aria-label": (name === "va" ? "Compare from version " : "Compare to version ") + formatVersion(sorted[index].version) });
  const rows = sorted.map((v, i) => el("tr", {},
    el("td", {}, pick("va", i)), el("td", {}, pick("vb", i)),
    el("th", { scope: "row", class: "num" }, formatVersion(v.version)),
    el("td", {}, formatTime(v.updatedAt)),
    el("td", {}, v.algorithm || ""),
    el("td", {}, endpointsOf(v).join(", ")),
    el("td", {}, v.deleted ? "deleted" : "")));
  const wrap = el("div", {}, table(["From", "To", "Version", "Updated", "Algorithm", "Endpoints", "State"], rows, "Versions"), diffBox);
  const render = () => {
    const a = sorted[Number((wrap.querySelector("input[name=va]:checked") || {}).value || 0)];
    const b = sorted[Number((wrap.querySelector("input[name=vb]:checked") || {}).value || 0)];
    if (!a || !b) return;
    if (a === b) {
      show(diffBox, muted("Pick two different versions to see what changed."));
      return;
    }
    const changes = diffValues(a, b, "", [], new Set(VERSION_IGNORED));
    const fmt = (v) => (v === undefined ? el("span", { class: "muted" }, "(absent)") : el("code", {}, typeof v === "string" ? v : JSON.stringify(v)));
    show(diffBox, el("h3", {}, "Changes from " + formatVersion(a.version) + " to " + formatVersion(b.version)),
      changes.length ? table(["Field", formatVersion(a.version), formatVersion(b.version)], changes.map((c) =>
        el("tr", {}, el("th", { scope: "row" }, el("code", {}, c.path)), el("td", { class: "diff-old" }, el("span", { class: "visually-hidden" }, "before: "), fmt(c.before)),
          el("td", { class: "diff-new" }, el("span", { class: "visually-hidden" }, "after: "), fmt(c.after)))), "Changes")
        : muted("No field changed."));
  };
  wrap.addEventListener("change", render);
  render();
  return wrap;
}

// ---------------------------------------------------------------------------------------------
// Gateway models

function gatewayTabs(current) {
  return el("nav", { class: "tabs", "aria-label": "Gateway views" },
    el("a", { href: "#/gateway", "aria-current": current === "models" ? "page" : null }, "Models"),
    el("a", { href: "#/gateway/discovered", "aria-current": current === "discovered" ? "page" : null }, "Discovered endpoints"));
}

async function viewGateway() {
  const p = page("Gateway models", el("a", { class: "button primary", href: "#/gateway/new" }, "Add model"));
  const body = el("div", {}, loading());
  append(p.main, gatewayTabs("models"),
    el("p", { class: "lead" }, "The SageMaker endpoints served on /v1 with the OpenAI API. Models from sagebridge.yaml are read-only here."), body);
  let models;
  try {
    models = (await get(API + "/gateway/models")).data || [];
  } catch (e) {
    if (p.alive()) show(body, errorBox(e, "Loading the gateway models"));
    return;
  }
  if (!p.alive()) return;
  if (!models.length) {
    show(body, el("div", { class: "empty" }, el("p", {}, "No gateway model yet."),
      el("a", { class: "button", href: "#/gateway/discovered" }, "See the endpoints ingestion found")));
    return;
  }
  show(body, table(["Name", "Kind", "Format", "Endpoint", "Region", "Source", "Last check", "Actions"], models.flatMap((m) => {
    const checkRow = el("tr", { class: "check-row", hidden: true });
    const checkCell = el("td", { colspan: "8" });
    checkRow.appendChild(checkCell);
    const lastCell = el("td", {}, m.lastCheck ? [badge(m.lastCheck.passed ? "passed" : "failed"), " ", el("span", { class: "muted" }, formatTime(m.lastCheck.checkedAt))] : el("span", { class: "muted" }, "not checked"));
    const runCheck = async (invoke, button) => {
      button.disabled = true;
      checkRow.hidden = false;
      show(checkCell, loading("Checking " + m.name + "…"));
      try {
        const r = await api("POST", API + "/gateway/models/" + encodeURIComponent(m.name) + "/check" + (invoke ? "?invoke=true" : ""));
        show(checkCell, el("h3", {}, "Check of " + m.name), renderSteps(r));
        show(lastCell, badge(r.passed ? "passed" : "failed"), " ", el("span", { class: "muted" }, "just now"));
      } catch (e) {
        show(checkCell, errorBox(e, "Checking " + m.name));
      } finally {
        button.disabled = false;
      }
    };
    const check = el("button", { type: "button", onclick: (ev) => runCheck(false, ev.target), "aria-label": "Check " + m.name }, "Check");
    const invoke = el("button", { type: "button", onclick: (ev) => runCheck(true, ev.target), "aria-label": "Check + call " + m.name }, "Check + call");
    const row = el("tr", {},
      el("th", { scope: "row" }, el("code", {}, m.name)),
      el("td", {}, m.kind || ""),
      el("td", {}, m.format || ""),
      el("td", {}, m.endpointName || ""),
      el("td", {}, m.region || (m.awsConfig && m.awsConfig.awsRegion) || ""),
      el("td", {}, m.readOnly || m.source === "file" ? "sagebridge.yaml (read-only)" : m.service ? "UI · service " + m.service.name : "UI · own credentials"),
      lastCell,
      el("td", { class: "row-actions" }, check, " ", invoke, " ",
        m.readOnly || m.source === "file" ? null : el("a", { class: "button", href: "#/gateway/edit/" + encodeURIComponent(m.name), "aria-label": "Edit " + m.name }, "Edit"), " ",
        el("a", { class: "button", href: "#/playground/" + (m.kind === "embedding" ? "embeddings" : m.kind || "chat") + "?model=" + encodeURIComponent(m.name), "aria-label": "Try " + m.name + " in the playground" }, "Try")));
    return [row, checkRow];
  }), "Gateway models"));
}

async function viewDiscovered() {
  const p = page("Discovered endpoints");
  const body = el("div", {}, loading());
  append(p.main, gatewayTabs("discovered"),
    el("p", { class: "lead" }, "InService endpoints found by ingestion that no gateway model serves yet, with the kind and format their container suggests."), body);
  let found;
  let services;
  try {
    [found, services] = await Promise.all([
      get(API + "/gateway/discovered").then((r) => r.data || []),
      get(API + "/services/mlmodelServices").then((r) => r.data || []),
    ]);
  } catch (e) {
    if (p.alive()) show(body, errorBox(e, "Loading the discovered endpoints"));
    return;
  }
  if (!p.alive()) return;
  if (!found.length) {
    show(body, el("div", { class: "empty" }, el("p", {}, "Nothing to serve: every endpoint ingestion found is served already, or no ingestion has run."),
      el("a", { href: "#/ingestion" }, "Go to ingestion")));
    return;
  }
  show(body, table(["Endpoint", "Model", "Region", "Suggested kind", "Suggested format", "Why", "Serve"], found.map((d) => {
    const status = el("div", { "aria-live": "polite" });
    const serviceName = (d.model || "").split(".")[0];
    // The connection of the service that found the endpoint when it is stored here; a service
    // known only from a workflow file has none, and the gateway's own awsConfig applies.
    const service = services.find((s) => s.name === serviceName && s.managed);
    const credentials = service ? "the connection of service " + service.name : "the gateway's default credentials (sagebridge.yaml)";
    const quick = el("button", {
      type: "button", class: "primary", disabled: !d.kind, title: "Uses " + credentials,
      "aria-label": "Serve " + d.endpointName + " now with " + credentials,
      onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          const body = { name: d.suggestedName || d.endpointName, kind: d.kind, endpointName: d.endpointName };
          if (service) body.service = service.id;
          if (d.format) body.format = d.format;
          const created = await api("POST", API + "/gateway/models", body);
          show(status, badge("passed", "Served as " + created.name), " ", el("a", { href: "#/playground/" + (created.kind === "embedding" ? "embeddings" : created.kind) + "?model=" + encodeURIComponent(created.name) }, "try it"));
        } catch (e) {
          ev.target.disabled = false;
          show(status, errorBox(e, "Serving " + d.endpointName));
        }
      },
    }, "Serve");
    return el("tr", {},
      el("th", { scope: "row" }, el("code", {}, d.endpointName)),
      el("td", {}, el("a", { href: "#/models/" + encodeURIComponent(d.model) }, d.model)),
      el("td", {}, d.region || ""),
      el("td", {}, d.kind || el("span", { class: "muted" }, "unknown: pick one")),
      el("td", {}, d.format || el("span", { class: "muted" }, "unknown")),
      el("td", { class: "reason" }, d.reason || ""),
      el("td", { class: "row-actions" }, quick, " ",
        el("a", { class: "button", href: "#/gateway/new?endpoint=" + encodeURIComponent(d.endpointName), "aria-label": "Review and serve " + d.endpointName }, "Review…"),
        status));
  }), "Discovered endpoints"));
}

const KINDS = [["chat", "chat (/v1/chat/completions)"], ["embedding", "embedding (/v1/embeddings)"], ["rerank", "rerank (/v1/rerank)"],
  ["transcription", "transcription (/v1/audio/transcriptions, /translations)"], ["speech", "speech (/v1/audio/speech)"]];
const FORMATS = [["", "default for the kind"], ["openai", "openai: vLLM, TGI Messages API, LMI, SGLang; OpenAI-compatible TTS"], ["tgi", "tgi: Text Generation Inference"],
  ["lmi", "lmi: DJL Large Model Inference"], ["tei", "tei: Text Embeddings Inference"], ["jumpstart", "jumpstart: JumpStart embeddings or Whisper"],
  ["huggingface", "huggingface: Hugging Face toolkit, raw audio (Whisper)"], ["dify", "dify: Dify's SageMaker shapes"]];
const GW_AWS = ["awsRegion", "awsAccessKeyId", "awsSecretAccessKey", "awsSessionToken", "endPointURL", "profileName", "assumeRoleArn", "assumeRoleSessionName", "assumeRoleSourceIdentity", "assumeRoleExternalId", "runtimeEndPointURL", "stsEndPointURL"];

async function viewGatewayForm(name) {
  const editing = Boolean(name);
  const p = page(editing ? "Edit gateway model" : "Add gateway model");
  const holder = el("div", {}, loading());
  append(p.main, gatewayTabs(null), holder);
  const params = queryFromHash();
  let model = null;
  let services = [];
  let suggestion = null;
  try {
    services = (await get(API + "/services/mlmodelServices")).data || [];
    if (editing) model = await get(API + "/gateway/models/" + encodeURIComponent(name));
    const endpoint = params.get("endpoint");
    if (!editing && endpoint) {
      const found = (await get(API + "/gateway/discovered").catch(() => ({ data: [] }))).data || [];
      suggestion = found.find((d) => d.endpointName === endpoint) || { endpointName: endpoint, suggestedName: endpoint };
    }
  } catch (e) {
    if (p.alive()) show(holder, errorBox(e, "Loading"));
    return;
  }
  if (!p.alive()) return;
  if (model && (model.readOnly || model.source === "file")) {
    show(holder, el("p", { class: "notice" }, "Model " + model.name + " comes from sagebridge.yaml: change it in that file."), jsonBlock(model));
    return;
  }
  const m = model || {};
  const suggestedService = suggestion && services.find((s) => s.name === String(suggestion.model || "").split(".")[0]);
  const serviceId = m.service ? m.service.id : suggestedService ? suggestedService.id : services[0] ? services[0].id : "";
  const credMode = m.awsConfig && !m.service ? "own" : services.length ? "service" : "own";
  const formError = el("div", { id: "gateway-form-error", tabindex: "-1", "aria-live": "polite" });
  const checkResult = el("div", { id: "gateway-check", "aria-live": "polite" });
  const saveButton = el("button", { type: "submit", class: "primary" }, editing ? "Save changes" : "Serve this model");
  const serviceRadio = el("input", { type: "radio", id: "gw-cred-service", name: "gw-cred", value: "service", checked: credMode === "service", disabled: !services.length });
  const ownRadio = el("input", { type: "radio", id: "gw-cred-own", name: "gw-cred", value: "own", checked: credMode === "own" });
  const serviceBox = el("div", { class: "cred-box" },
    field({ id: "gw-service", label: "Service", type: "select", value: serviceId, options: services.map((s) => [s.id, s.name]),
      help: "Its region and credentials are used to call the endpoint." }));
  const ownBox = el("div", { class: "cred-box" }, awsFieldset("gw-", m.awsConfig || {}, m.secrets || {}, "Own AWS credentials"));
  const syncCred = () => {
    serviceBox.hidden = !serviceRadio.checked;
    ownBox.hidden = !ownRadio.checked;
  };
  serviceRadio.addEventListener("change", syncCred);
  ownRadio.addEventListener("change", syncCred);
  const form = el("form", { id: "gateway-form", novalidate: true, autocomplete: "off" },
    el("fieldset", {}, el("legend", {}, "Model"),
      suggestion && suggestion.reason ? el("p", { class: "notice" }, "Suggested from the endpoint's container: " + suggestion.reason) : null,
      el("div", { class: "grid" },
        field({ id: "gw-name", label: "Name", required: true, value: m.name || (suggestion && (suggestion.suggestedName || suggestion.endpointName)) || "",
          help: "What clients send as `model` on /v1." }),
        field({ id: "gw-kind", label: "Kind", type: "select", required: true, value: m.kind || (suggestion && suggestion.kind) || "chat", options: KINDS }),
        field({ id: "gw-endpointName", label: "SageMaker endpoint name", required: true, value: m.endpointName || (suggestion && suggestion.endpointName) || "" }),
        field({ id: "gw-format", label: "Format", type: "select", value: m.format || (suggestion && suggestion.format) || "", options: FORMATS,
          help: "The request and answer shapes of the container behind the endpoint." }),
        field({ id: "gw-inferenceComponent", label: "Inference component", value: m.inferenceComponent || "",
          help: "For endpoints that host several models as inference components." }),
        field({ id: "gw-targetVariant", label: "Target variant", value: m.targetVariant || "",
          help: "Send every call to this production variant." }))),
    el("fieldset", {}, el("legend", {}, "Credentials"),
      el("div", { class: "radio-row" }, serviceRadio, el("label", { for: "gw-cred-service" }, "Use a service's credentials"),
        ownRadio, el("label", { for: "gw-cred-own" }, "Own credentials or role")),
      serviceBox, ownBox),
    el("details", { class: "subsection" }, el("summary", {}, "Defaults (optional)"),
      el("div", { class: "grid" },
        field({ id: "gw-maxTokens", label: "Max tokens", type: "number", min: 1, value: m.maxTokens ?? "", help: "Default when a request gives none." }),
        field({ id: "gw-temperature", label: "Temperature", type: "number", min: 0, max: 2, step: 0.1, value: m.temperature ?? "" }),
        field({ id: "gw-contextLength", label: "Context length", type: "number", min: 1, value: m.contextLength ?? "" }),
        field({ id: "gw-chatTemplate", label: "Chat template", value: m.chatTemplate || "", placeholder: "llama-3, chatml, …",
          help: "For tgi/lmi chat models: how messages become a prompt." }),
        field({ id: "gw-maxBatchSize", label: "Max batch size", type: "number", min: 1, value: m.maxBatchSize ?? "", help: "Embeddings per call." }),
        field({ id: "gw-coldStartWaitSeconds", label: "Cold-start wait (seconds)", type: "number", min: 0, max: 900, value: m.coldStartWaitSeconds ?? "",
          help: "Only with an inference component, which can scale to zero: how long a request waits for a copy to start (0 to 900; empty or 0 answers 503 at once)." }),
        field({ id: "gw-vision", label: "Takes images (vision)", type: "checkbox", checked: m.vision === true,
          help: "Chat models only: image_url parts (data: URLs) are passed to the container; without it they are refused." }))),
    formError,
    el("div", { class: "actions" }, saveButton, el("a", { class: "button", href: "#/gateway" }, "Cancel")),
    checkResult);
  show(holder, form);
  syncCred();
  if (editing) {
    append(holder, dangerZone("Delete model", "Stops serving " + m.name + " on /v1 at once.", async () => {
      await api("DELETE", API + "/gateway/models/" + encodeURIComponent(m.name));
      location.hash = "#/gateway";
    }));
  }
  const keyMap = { service: "service" };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    show(formError);
    const body = { name: valueOf("gw-name"), kind: valueOf("gw-kind"), endpointName: valueOf("gw-endpointName") };
    for (const k of ["format", "inferenceComponent", "targetVariant", "chatTemplate"]) if (valueOf("gw-" + k)) body[k] = valueOf("gw-" + k);
    for (const k of ["maxTokens", "temperature", "contextLength", "maxBatchSize", "coldStartWaitSeconds"]) if (valueOf("gw-" + k) !== "") body[k] = Number(valueOf("gw-" + k));
    if (checked("gw-vision")) body.vision = true;
    const errors = [];
    if (body.coldStartWaitSeconds !== undefined && !(body.coldStartWaitSeconds >= 0 && body.coldStartWaitSeconds <= 900))
      errors.push({ path: "coldStartWaitSeconds", text: "Enter 0 to 900 seconds." });
    if (!body.name) errors.push({ path: "name", text: "Enter a name." });
    if (!body.endpointName) errors.push({ path: "endpointName", text: "Enter the SageMaker endpoint name." });
    if (serviceRadio.checked) {
      body.service = valueOf("gw-service");
      if (!body.service) errors.push({ path: "service", text: "Pick a service." });
    } else {
      const aws = {};
      for (const k of GW_AWS) if (valueOf("gw-" + k)) aws[k] = valueOf("gw-" + k);
      body.awsConfig = aws;
      errors.push(...checkAws(aws, m.secrets || {}));
    }
    if (errors.length) {
      showErrors(form, formError, errors, "gw-", keyMap);
      return;
    }
    saveButton.disabled = true;
    show(formError, loading("Saving…"));
    try {
      const saved = editing
        ? await api("PUT", API + "/gateway/models/" + encodeURIComponent(m.name), body)
        : await api("POST", API + "/gateway/models", body);
      show(formError, el("p", { class: "notice", role: "status" }, badge("passed", "Saved: " + saved.name + " is served on /v1 now."), " ",
        el("a", { href: "#/playground/" + (saved.kind === "embedding" ? "embeddings" : saved.kind) + "?model=" + encodeURIComponent(saved.name) }, "Try it in the playground"), " · ",
        el("a", { href: "#/gateway" }, "Back to the list")));
      announce("Gateway model " + saved.name + " saved");
      show(checkResult, loading("Checking the endpoint…"));
      api("POST", API + "/gateway/models/" + encodeURIComponent(saved.name) + "/check")
        .then((r) => show(checkResult, el("h2", {}, "Check"), renderSteps(r)))
        .catch((e) => show(checkResult, errorBox(e, "Checking the model")));
    } catch (e) {
      show(formError);
      if (e instanceof ApiError && e.status === 400) showErrors(form, formError, fieldErrors(e.message), "gw-", keyMap);
      else show(formError, errorBox(e, "Saving the gateway model"));
    } finally {
      saveButton.disabled = false;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// API keys

// Reads the two limit fields `<prefix>requestsPerMinute` and `<prefix>tokensPerMinute` into
// `body` (left out when empty); the problems found, by field.
function readLimits(prefix, body) {
  const errors = [];
  for (const k of ["requestsPerMinute", "tokensPerMinute"]) {
    const text = valueOf(prefix + k);
    if (text === "") continue;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) errors.push({ path: k, text: "Enter a whole number of at least 1, or leave it empty for no limit." });
    else body[k] = n;
  }
  return errors;
}

function limitsText(k) {
  const parts = [];
  if (k.requestsPerMinute) parts.push(k.requestsPerMinute + " requests/min");
  if (k.tokensPerMinute) parts.push(k.tokensPerMinute + " tokens/min");
  return parts.length ? parts.join(" · ") : "none";
}

async function viewKeys() {
  const p = page("API keys");
  const created = el("div", { id: "key-created", "aria-live": "polite" });
  const formError = el("div", { id: "key-form-error", tabindex: "-1", "aria-live": "polite" });
  const list = el("div", { id: "keys-list" }, loading());
  const modelsBox = el("div", { class: "checks", id: "key-models" }, muted("Loading the models…"));
  const createButton = el("button", { type: "submit", class: "primary" }, "Create key");
  const form = el("form", { id: "key-form", novalidate: true, autocomplete: "off" },
    el("div", { class: "grid" },
      field({ id: "key-name", label: "Name", required: true, help: "Who or what uses the key, e.g. dify-prod." }),
      field({ id: "key-expires", label: "Expires on (optional)", type: "date", help: "The key stops working at the start of this day (UTC)." }),
      field({ id: "key-requestsPerMinute", label: "Requests per minute (optional)", type: "number", min: 1,
        help: "More in any 60 seconds are answered 429 with Retry-After. Empty: no limit." }),
      field({ id: "key-tokensPerMinute", label: "Tokens per minute (optional)", type: "number", min: 1,
        help: "Prompt and completion tokens; a request is admitted while the last 60 seconds used fewer. Empty: no limit." })),
    el("fieldset", {}, el("legend", {}, "Allowed models (none ticked: all models)"), modelsBox),
    formError,
    el("div", { class: "actions" }, createButton));
  append(p.main, el("p", { class: "lead" }, "Keys for the OpenAI-compatible API on /v1. A key is shown once, when it is created."),
    card("Create a key", form, created), card("Keys", list));
  get(API + "/gateway/models").then((r) => {
    const models = r.data || [];
    show(modelsBox, models.length ? models.map((m) => el("span", { class: "check" },
      el("input", { type: "checkbox", id: "key-model-" + m.name, value: m.name }), el("label", { for: "key-model-" + m.name }, m.name)))
      : muted("No gateway model yet."));
  }).catch((e) => show(modelsBox, errorBox(e, "Loading the models")));
  const loadKeys = async () => {
    let keys;
    try {
      keys = (await get(API + "/gateway/keys")).data || [];
    } catch (e) {
      show(list, errorBox(e, "Loading the keys"));
      return;
    }
    if (!keys.length) {
      show(list, muted("No key yet."));
      return;
    }
    show(list, table(["Name", "Key", "Models", "Limits", "Created", "Last used", "Expires", "State", ""], keys.map((k) => {
      const status = el("div", { "aria-live": "polite" });
      const editBox = el("div", { class: "limits-edit" });
      const edit = el("button", {
        type: "button", "aria-label": "Edit the limits of " + k.name, "aria-expanded": "false", onclick: (ev) => {
          const open = !editBox.firstChild;
          ev.target.setAttribute("aria-expanded", String(open));
          if (!open) {
            show(editBox);
            return;
          }
          const prefix = "limits-" + k.id + "-";
          const editError = el("div", { tabindex: "-1", "aria-live": "polite" });
          const save = el("button", { type: "submit", class: "primary" }, "Save limits");
          const editForm = el("form", { novalidate: true, autocomplete: "off", "aria-label": "Limits of " + k.name },
            field({ id: prefix + "requestsPerMinute", label: "Requests per minute", type: "number", min: 1, value: k.requestsPerMinute ?? "", help: "Empty: no limit." }),
            field({ id: prefix + "tokensPerMinute", label: "Tokens per minute", type: "number", min: 1, value: k.tokensPerMinute ?? "", help: "Empty: no limit." }),
            editError, save);
          editForm.addEventListener("submit", async (submitted) => {
            submitted.preventDefault();
            clearFieldErrors(editForm);
            show(editError);
            // PUT replaces the settings: the expiry and allowed models go back as they are.
            const update = {};
            if (k.expiresAt) update.expiresAt = k.expiresAt;
            if (k.allowedModels) update.allowedModels = k.allowedModels;
            const errors = readLimits(prefix, update);
            if (errors.length) {
              showErrors(editForm, editError, errors, prefix);
              return;
            }
            save.disabled = true;
            try {
              await api("PUT", API + "/gateway/keys/" + encodeURIComponent(k.id), update);
              announce("Limits of " + k.name + " saved");
              loadKeys();
            } catch (e) {
              save.disabled = false;
              if (e instanceof ApiError && e.status === 400) showErrors(editForm, editError, fieldErrors(e.message), prefix);
              else show(editError, errorBox(e, "Saving the limits of " + k.name));
            }
          });
          show(editBox, editForm);
          document.getElementById(prefix + "requestsPerMinute").focus();
        },
      }, "Edit limits");
      const revoke = el("button", {
        type: "button", class: "danger-outline", "aria-label": "Revoke " + k.name, onclick: async (ev) => {
          if (ev.target.dataset.armed !== "1") {
            ev.target.dataset.armed = "1";
            ev.target.textContent = "Confirm revoke";
            return;
          }
          ev.target.disabled = true;
          try {
            await api("DELETE", API + "/gateway/keys/" + encodeURIComponent(k.id));
            announce("Key " + k.name + " revoked");
            loadKeys();
          } catch (e) {
            ev.target.disabled = false;
            show(status, errorBox(e, "Revoking " + k.name));
          }
        },
      }, "Revoke");
      return el("tr", {},
        el("th", { scope: "row" }, k.name),
        el("td", {}, el("code", {}, (k.prefix || "") + "…")),
        el("td", {}, (k.allowedModels || []).length ? k.allowedModels.join(", ") : "all"),
        el("td", {}, limitsText(k)),
        el("td", {}, formatTime(k.createdAt)),
        el("td", {}, k.lastUsedAt ? formatTime(k.lastUsedAt) : "never"),
        el("td", {}, k.expiresAt ? formatTime(k.expiresAt) : "never"),
        el("td", {}, badge(k.expired ? "expired" : "active")),
        el("td", {}, edit, " ", revoke, status, editBox));
    }), "API keys"));
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    show(formError);
    const body = { name: valueOf("key-name") };
    if (!body.name) {
      showErrors(form, formError, [{ path: "name", text: "Enter a name." }], "key-");
      return;
    }
    const expires = valueOf("key-expires");
    if (expires) {
      const ms = Date.parse(expires + "T00:00:00Z");
      if (Number.isNaN(ms) || ms <= Date.now()) {
        showErrors(form, formError, [{ path: "expires", text: "Pick a day in the future." }], "key-");
        return;
      }
      body.expiresAt = ms;
    }
    const allowed = [...modelsBox.querySelectorAll("input:checked")].map((i) => i.value);
    if (allowed.length) body.allowedModels = allowed;
    const limitErrors = readLimits("key-", body);
    if (limitErrors.length) {
      showErrors(form, formError, limitErrors, "key-");
      return;
    }
    createButton.disabled = true;
    try {
      const key = await api("POST", API + "/gateway/keys", body);
      const secret = el("input", { id: "new-key", type: "text", readonly: true, value: key.key, "aria-describedby": "new-key-help", spellcheck: "false" });
      show(created, el("div", { class: "notice key-once" },
        el("h3", {}, "Key " + key.name + " created"),
        el("label", { for: "new-key" }, "The key (shown only now)"),
        el("div", { class: "copy-row" }, secret, copyButton(() => key.key, "Copy key")),
        el("p", { id: "new-key-help", class: "help" }, "Copy it now: it cannot be shown again. Use it as ", el("code", {}, "Authorization: Bearer <key>"), " on /v1."),
        el("button", { type: "button", onclick: () => show(created) }, "Done, hide it")));
      secret.focus();
      secret.select();
      form.reset();
      loadKeys();
    } catch (e) {
      if (e instanceof ApiError && e.status === 400) showErrors(form, formError, fieldErrors(e.message), "key-");
      else show(formError, errorBox(e, "Creating the key"));
    } finally {
      createButton.disabled = false;
    }
  });
  loadKeys();
}

// ---------------------------------------------------------------------------------------------
// Playground

const chat = { messages: [], controller: null };

async function playgroundModels(kind) {
  const r = await get("/v1/models");
  return (r.data || []).filter((m) => !kind || m.kind === kind);
}

function playgroundTabs(current) {
  const tab = (id, label) => el("a", { href: "#/playground/" + id, "aria-current": current === id ? "page" : null }, label);
  return el("nav", { class: "tabs", "aria-label": "Playground modes" }, tab("chat", "Chat"), tab("embeddings", "Embeddings"), tab("rerank", "Rerank"),
    tab("transcription", "Transcription"), tab("speech", "Speech"));
}

async function modelPicker(kind, id) {
  const select = el("select", { id, required: true });
  const wrap = el("div", { class: "field" }, el("label", { for: id }, "Model"), select, el("p", { class: "field-error", id: id + "-error", "aria-live": "polite" }));
  const wanted = queryFromHash().get("model");
  try {
    const models = await playgroundModels(kind);
    // The panels read a model's own fields (a speech model's `response_formats`) from here.
    wrap.models = models;
    show(select, models.map((m) => el("option", { value: m.id, selected: m.id === wanted }, m.id)));
    if (!models.length) setFieldError(id, "No " + kind + " model is served: add one under Gateway models.");
  } catch (e) {
    setFieldError(id, "Cannot list the models: " + e.message);
  }
  return wrap;
}

// The playground's tabs; a gateway model's kind names its tab, but for `embedding`.
const PLAYGROUND_MODES = ["chat", "embeddings", "rerank", "transcription", "speech"];

async function viewPlayground(mode) {
  mode = PLAYGROUND_MODES.includes(mode) ? mode : "chat";
  const p = page("Playground");
  const holder = el("div", {}, loading());
  append(p.main, playgroundTabs(mode), holder);
  if (mode === "chat") await chatPanel(p, holder);
  else if (mode === "embeddings") await embeddingsPanel(p, holder);
  else if (mode === "rerank") await rerankPanel(p, holder);
  else if (mode === "transcription") await transcriptionPanel(p, holder);
  else await speechPanel(p, holder);
}

async function chatPanel(p, holder) {
  const picker = await modelPicker("chat", "chat-model");
  if (!p.alive()) return;
  const log = el("div", { id: "chat-log", class: "chat-log", role: "log", "aria-label": "Conversation", tabindex: "0" });
  const input = el("textarea", { id: "chat-input", rows: 3, placeholder: "Ask something (Ctrl+Enter sends)" });
  const status = el("p", { id: "chat-status", role: "status", class: "muted" });
  const send = el("button", { type: "submit", id: "chat-send", class: "primary" }, "Send");
  const stop = el("button", { type: "button", id: "chat-stop", disabled: true }, "Stop");
  const clear = el("button", { type: "button", id: "chat-clear" }, "New chat");
  const render = () => show(log, chat.messages.length ? chat.messages.map((m) => bubble(m.role, m.content)) : muted("No message yet."));
  const form = el("form", { id: "chat-form", autocomplete: "off" },
    el("div", { class: "grid" }, picker,
      field({ id: "chat-max-tokens", label: "Max tokens", type: "number", min: 1, max: 32768, value: 256 }),
      field({ id: "chat-temperature", label: "Temperature", type: "number", min: 0, max: 2, step: 0.1, value: 0.7 })),
    field({ id: "chat-system", label: "System prompt (optional)", type: "textarea", rows: 2 }),
    log,
    el("div", { class: "field" }, el("label", { for: "chat-input" }, "Message"), input),
    el("div", { class: "actions" }, send, stop, clear), status);
  show(holder, form);
  render();
  const sendChat = async () => {
    const text = input.value.trim();
    const model = valueOf("chat-model");
    if (!text || chat.controller) return;
    if (!model) {
      setFieldError("chat-model", "Pick a chat model first.");
      return;
    }
    chat.messages.push({ role: "user", content: text });
    input.value = "";
    render();
    const answer = el("div", { class: "content" });
    const box = el("div", { class: "msg msg-assistant" }, el("div", { class: "role" }, "assistant"), answer);
    log.appendChild(box);
    const messages = [];
    if (valueOf("chat-system")) messages.push({ role: "system", content: valueOf("chat-system") });
    messages.push(...chat.messages);
    const request = { model, messages, stream: true };
    const maxTokens = Number(valueOf("chat-max-tokens"));
    if (maxTokens > 0) request.max_tokens = maxTokens;
    const temperature = valueOf("chat-temperature");
    if (temperature !== "") request.temperature = Number(temperature);
    chat.controller = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    status.textContent = "Streaming…";
    let content = "";
    let failure = null;
    try {
      const res = await apiFetch("/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request),
        signal: chat.controller.signal,
      });
      if (!res.ok) throw errorOf(res.status, await res.text());
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const parser = new SseParser();
      let done = false;
      while (!done) {
        const chunk = await reader.read();
        if (chunk.done) break;
        for (const data of parser.push(decoder.decode(chunk.value, { stream: true }))) {
          if (data === "[DONE]") {
            done = true;
            break;
          }
          const event = JSON.parse(data);
          if (event.error) throw new ApiError(res.status, event.error);
          for (const choice of event.choices || []) {
            const delta = choice.delta && choice.delta.content;
            if (typeof delta === "string") {
              content += delta;
              answer.textContent = content;
            }
          }
        }
        log.scrollTop = log.scrollHeight;
      }
    } catch (e) {
      failure = e.name === "AbortError" ? null : e;
    }
    const aborted = chat.controller.signal.aborted;
    if (content) chat.messages.push({ role: "assistant", content });
    if (failure) {
      box.appendChild(errorBox(failure, "The chat request"));
      // The question stays in the box so it can be sent again.
      if (!content) {
        chat.messages.pop();
        input.value = text;
      }
    }
    if (!content && !failure) answer.textContent = aborted ? "(stopped before any token)" : "(empty answer)";
    status.textContent = failure ? "Failed" : aborted ? "Stopped" : "Done";
    chat.controller = null;
    send.disabled = false;
    stop.disabled = true;
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sendChat();
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      sendChat();
    }
  });
  stop.addEventListener("click", () => {
    if (chat.controller) chat.controller.abort();
  });
  clear.addEventListener("click", () => {
    if (chat.controller) chat.controller.abort();
    chat.messages = [];
    render();
    status.textContent = "";
  });
}

function bubble(role, text) {
  return el("div", { class: "msg msg-" + role }, el("div", { class: "role" }, role), el("div", { class: "content" }, text));
}

async function postV1(path, body) {
  let res;
  try {
    res = await apiFetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { message: "cannot reach the server: " + e.message, type: "network_error" });
  }
  const text = await res.text();
  if (!res.ok) throw errorOf(res.status, text);
  return JSON.parse(text);
}

async function embeddingsPanel(p, holder) {
  const picker = await modelPicker("embedding", "emb-model");
  if (!p.alive()) return;
  const out = el("div", { id: "emb-result", "aria-live": "polite" });
  const run = el("button", { type: "submit", class: "primary" }, "Embed");
  const form = el("form", { id: "emb-form", autocomplete: "off" }, picker,
    field({ id: "emb-inputs", label: "Texts, one per line", type: "textarea", rows: 5, required: true,
      value: "A cat sits on the mat.\nA kitten is lying on a rug.\nQuarterly revenue grew by 12%.",
      help: "Each line is embedded; the matrix shows the cosine similarity of every pair." }),
    el("div", { class: "actions" }, run), out);
  show(holder, form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const inputs = lines(valueOf("emb-inputs"));
    clearFieldErrors(form);
    if (!inputs.length) {
      setFieldError("emb-inputs", "Enter at least one line.");
      return;
    }
    run.disabled = true;
    show(out, loading("Embedding…"));
    try {
      const r = await postV1("/v1/embeddings", { model: valueOf("emb-model"), input: inputs });
      const vectors = (r.data || []).sort((a, b) => a.index - b.index).map((d) => d.embedding);
      const m = similarityMatrix(vectors);
      const label = (i) => (i + 1) + ". " + (inputs[i].length > 40 ? inputs[i].slice(0, 40) + "…" : inputs[i]);
      show(out,
        el("p", { id: "emb-dimensions" }, el("strong", {}, vectors.length + " vectors of " + ((vectors[0] || []).length) + " dimensions"),
          r.usage && r.usage.prompt_tokens !== undefined ? el("span", { class: "muted" }, " · " + r.usage.prompt_tokens + " tokens") : null),
        el("h3", {}, "Cosine similarity"),
        el("div", { class: "table-wrap" }, el("table", { class: "matrix", id: "emb-matrix" },
          el("caption", { class: "visually-hidden" }, "Cosine similarity between the inputs"),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Input"), inputs.map((_, j) => el("th", { scope: "col" }, String(j + 1))))),
          el("tbody", {}, m.map((row, i) => el("tr", {}, el("th", { scope: "row" }, label(i)),
            row.map((v) => el("td", { class: "num sim-" + Math.max(0, Math.min(4, Math.floor(v * 5))) }, v.toFixed(3)))))))));
    } catch (e) {
      show(out, errorBox(e, "The embeddings request"));
    } finally {
      run.disabled = false;
    }
  });
}

async function rerankPanel(p, holder) {
  const picker = await modelPicker("rerank", "rr-model");
  if (!p.alive()) return;
  const out = el("div", { id: "rr-result", "aria-live": "polite" });
  const run = el("button", { type: "submit", class: "primary" }, "Rerank");
  const form = el("form", { id: "rr-form", autocomplete: "off" }, picker,
    field({ id: "rr-query", label: "Query", required: true, value: "How do I reset my password?" }),
    field({ id: "rr-docs", label: "Documents, one per line", type: "textarea", rows: 5, required: true,
      value: "Open Settings, then Security, and choose Reset password.\nOur office is open from 9 to 5.\nPasswords must have twelve characters." }),
    el("div", { class: "actions" }, run), out);
  show(holder, form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    const documents = lines(valueOf("rr-docs"));
    const query = valueOf("rr-query");
    if (!query) return setFieldError("rr-query", "Enter a query.");
    if (!documents.length) return setFieldError("rr-docs", "Enter at least one document.");
    run.disabled = true;
    show(out, loading("Reranking…"));
    try {
      const r = await postV1("/v1/rerank", { model: valueOf("rr-model"), query, documents });
      const results = [...(r.results || [])].sort((a, b) => b.relevance_score - a.relevance_score);
      show(out, table(["Rank", "Score", "Document"], results.map((x, i) =>
        el("tr", {}, el("td", { class: "num" }, String(i + 1)), el("td", { class: "num" }, Number(x.relevance_score).toFixed(4)),
          el("td", {}, documents[x.index] ?? "")))), "Reranked documents");
    } catch (e) {
      show(out, errorBox(e, "The rerank request"));
    } finally {
      run.disabled = false;
    }
  });
}

// The `response_format` values of OpenAI's /v1/audio/transcriptions and /v1/audio/speech.
const TRANSCRIPTION_FORMATS = [["json", "json (the text)"], ["text", "text"], ["srt", "srt (subtitles)"], ["vtt", "vtt (WebVTT subtitles)"], ["verbose_json", "verbose_json (segments)"]];
const SPEECH_FORMATS = ["wav", "mp3", "opus", "aac", "flac", "pcm"];
const SPEECH_VOICES = ["alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer"];

// The formats a speech model produces, read from the gateway's 400 for a format it cannot
// produce ("... it produces: wav, mp3 (the gateway does not transcode)"); null when the message
// names none. /v1/models lists them (`response_formats`); this covers a list that did not.
function producedFormats(message) {
  const m = /produces: ([a-z0-9, ]+)/.exec(String(message || ""));
  if (!m) return null;
  const formats = m[1].split(",").map((f) => f.trim()).filter((f) => SPEECH_FORMATS.includes(f));
  return formats.length ? formats : null;
}

// What a transcription answer shows: the text of `json`, the body of `text`/`srt`/`vtt`, the
// indented document of `verbose_json`.
function transcriptOf(format, body) {
  if (format === "json") {
    try {
      const v = JSON.parse(body);
      if (v && typeof v.text === "string") return v.text;
    } catch (_) {
      // Shown as it came below.
    }
    return body;
  }
  if (format === "verbose_json") {
    try {
      return JSON.stringify(JSON.parse(body), null, 2);
    } catch (_) {
      return body;
    }
  }
  return body;
}

// A file name for downloaded audio, from the format asked for.
function audioFileName(format) {
  return "speech." + (SPEECH_FORMATS.includes(format) ? format : "audio");
}

async function transcriptionPanel(p, holder) {
  const picker = await modelPicker("transcription", "tr-model");
  if (!p.alive()) return;
  const out = el("div", { id: "tr-result", "aria-live": "polite" });
  const run = el("button", { type: "submit", class: "primary" }, "Transcribe");
  const form = el("form", { id: "tr-form", novalidate: true, autocomplete: "off" },
    el("div", { class: "grid" }, picker,
      field({ id: "tr-task", label: "Task", type: "select", value: "transcriptions",
        options: [["transcriptions", "Transcribe (same language)"], ["translations", "Translate to English"]] }),
      field({ id: "tr-format", label: "Response format", type: "select", value: "json", options: TRANSCRIPTION_FORMATS }),
      field({ id: "tr-language", label: "Language (optional)", placeholder: "en", help: "ISO-639-1 code, e.g. en, de, fr." })),
    el("div", { class: "field" },
      el("label", { for: "tr-file" }, "Audio file", el("span", { class: "req" }, " (required)")),
      el("input", { id: "tr-file", name: "tr-file", type: "file", accept: "audio/*,.wav,.mp3,.flac,.ogg,.webm,.m4a", required: true, "aria-describedby": "tr-file-help tr-file-error" }),
      el("p", { class: "help", id: "tr-file-help" }, "Sent as is; the server's request size limit applies."),
      el("p", { class: "field-error", id: "tr-file-error", "aria-live": "polite" })),
    field({ id: "tr-prompt", label: "Prompt (optional)", type: "textarea", rows: 2 }),
    el("div", { class: "actions" }, run), out);
  show(holder, form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    const input = document.getElementById("tr-file");
    const file = input.files && input.files[0];
    const model = valueOf("tr-model");
    if (!model) return setFieldError("tr-model", "Pick a transcription model first.");
    if (!file) {
      setFieldError("tr-file", "Choose an audio file.");
      input.focus();
      return;
    }
    const format = valueOf("tr-format") || "json";
    const data = new FormData();
    data.append("file", file, file.name);
    data.append("model", model);
    data.append("response_format", format);
    if (valueOf("tr-language")) data.append("language", valueOf("tr-language"));
    if (valueOf("tr-prompt")) data.append("prompt", valueOf("tr-prompt"));
    const path = "/v1/audio/" + (valueOf("tr-task") === "translations" ? "translations" : "transcriptions");
    run.disabled = true;
    show(out, loading("Transcribing…"));
    try {
      let res;
      try {
        // No Content-Type: the browser writes the multipart boundary.
        res = await apiFetch(path, { method: "POST", body: data });
      } catch (e) {
        throw new ApiError(0, { message: "cannot reach the server: " + e.message, type: "network_error" });
      }
      const text = await res.text();
      if (!res.ok) throw errorOf(res.status, text);
      show(out, el("h3", {}, "Transcript (" + format + ")"),
        el("pre", { id: "tr-text", class: format === "json" || format === "text" ? "transcript" : "json", tabindex: "0", "aria-label": "Transcript" },
          transcriptOf(format, text)));
    } catch (e) {
      show(out, errorBox(e, "The transcription request"));
    } finally {
      run.disabled = false;
    }
  });
}

async function speechPanel(p, holder) {
  const picker = await modelPicker("speech", "sp-model");
  if (!p.alive()) return;
  const out = el("div", { id: "sp-result", "aria-live": "polite" });
  const run = el("button", { type: "submit", class: "primary" }, "Speak");
  const formatOptions = (formats) => formats.map((f) => [f, f]);
  // What model `id` produces, as /v1/models lists it; every format when the list does not say.
  const formatsOf = (id) => {
    const m = (picker.models || []).find((x) => x.id === id);
    const listed = m && Array.isArray(m.response_formats) ? m.response_formats.filter((f) => SPEECH_FORMATS.includes(f)) : [];
    return listed.length ? listed : SPEECH_FORMATS;
  };
  const offered = formatsOf(picker.querySelector("select").value);
  const form = el("form", { id: "sp-form", novalidate: true, autocomplete: "off" },
    el("div", { class: "grid" }, picker,
      field({ id: "sp-voice", label: "Voice", type: "select", value: "alloy", options: SPEECH_VOICES.map((v) => [v, v]) }),
      field({ id: "sp-format", label: "Audio format", type: "select", value: offered[0], options: formatOptions(offered),
        help: "What the model's container produces (the gateway does not transcode)." }),
      field({ id: "sp-speed", label: "Speed", type: "number", min: 0.25, max: 4, step: 0.25, value: 1 })),
    field({ id: "sp-input", label: "Text", type: "textarea", rows: 3, required: true, value: "Hello from the sagebridge playground." }),
    el("div", { class: "actions" }, run), out);
  show(holder, form);
  // The blob URL of the audio shown, revoked when the next answer replaces it.
  let url = null;
  const release = () => {
    if (url) URL.revokeObjectURL(url);
    url = null;
  };
  // Another model: the formats it produces, keeping the one chosen when it has it.
  document.getElementById("sp-model").addEventListener("change", () => {
    const select = document.getElementById("sp-format");
    const current = select.value;
    show(select, formatOptions(formatsOf(valueOf("sp-model"))).map(([v, t]) => el("option", { value: v, selected: v === current }, t)));
    clearFieldErrors(form);
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    const model = valueOf("sp-model");
    const input = valueOf("sp-input");
    if (!model) return setFieldError("sp-model", "Pick a speech model first.");
    if (!input) return setFieldError("sp-input", "Enter the text to speak.");
    const format = valueOf("sp-format");
    const request = { model, input, voice: valueOf("sp-voice"), response_format: format };
    const speed = Number(valueOf("sp-speed"));
    if (speed > 0 && speed !== 1) request.speed = speed;
    run.disabled = true;
    show(out, loading("Synthesizing…"));
    release();
    try {
      let res;
      try {
        res = await apiFetch("/v1/audio/speech", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request) });
      } catch (e) {
        throw new ApiError(0, { message: "cannot reach the server: " + e.message, type: "network_error" });
      }
      if (!res.ok) throw errorOf(res.status, await res.text());
      const blob = await res.blob();
      url = URL.createObjectURL(blob);
      const type = blob.type || "audio/" + format;
      show(out,
        el("p", { id: "sp-summary" }, el("strong", {}, (blob.size / 1024).toFixed(1) + " KiB of " + type)),
        el("audio", { id: "sp-audio", controls: true, src: url, preload: "metadata", "aria-label": "Synthesized speech" }),
        el("p", {}, el("a", { id: "sp-download", class: "button", href: url, download: audioFileName(format) }, "Download " + audioFileName(format))));
    } catch (e) {
      const formats = e instanceof ApiError && e.status === 400 && e.error && e.error.param === "response_format" ? producedFormats(e.error.message) : null;
      if (formats) {
        const select = document.getElementById("sp-format");
        show(select, formatOptions(formats).map(([v, t]) => el("option", { value: v }, t)));
        setFieldError("sp-format", "This model produces " + formats.join(", ") + " only: pick one of them.");
        select.focus();
      }
      show(out, errorBox(e, "The speech request"));
    } finally {
      run.disabled = false;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Routing

function parseRoute(hash) {
  const raw = String(hash || "").replace(/^#\/?/, "");
  const path = raw.split("?")[0];
  const parts = path.split("/").map((s) => {
    try {
      return decodeURIComponent(s);
    } catch (_) {
      return s;
    }
  });
  return { head: parts[0] || "", rest: parts.slice(1).filter((s) => s !== "") , raw: path };
}

let lastPath = null;

function route() {
  const { head, rest, raw } = parseRoute(location.hash);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === head || (head === "pipelines" && link.dataset.nav === "ingestion")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  closeNav();
  const main = document.getElementById("main");
  if (!session.signedIn) {
    main.dataset.view = "signin";
    if (head && head !== "signin") signInNext = location.hash;
    const p = page("Sign in");
    renderSignIn(p.main, null);
    lastPath = "signin";
    const input = document.getElementById("signin-token");
    if (input) input.focus();
    return;
  }
  main.dataset.view = head || "services";
  let work;
  if (head === "services" && rest[0] === "new") work = viewServiceForm(null);
  else if (head === "services" && rest[0]) work = viewServiceForm(rest[0]);
  else if (head === "ingestion" && rest[0] && rest[1] === "new") work = viewPipelineNew(rest[0]);
  else if (head === "ingestion") work = viewIngestion(rest[0]);
  else if (head === "pipelines" && rest[0]) work = viewPipeline(rest[0]);
  else if (head === "models" && rest.length) work = viewModel(rest.join("/"));
  else if (head === "models") work = viewModels();
  else if (head === "gateway" && rest[0] === "discovered") work = viewDiscovered();
  else if (head === "gateway" && rest[0] === "new") work = viewGatewayForm(null);
  else if (head === "gateway" && rest[0] === "edit" && rest[1]) work = viewGatewayForm(rest[1]);
  else if (head === "gateway") work = viewGateway();
  else if (head === "keys") work = viewKeys();
  else if (head === "playground") work = viewPlayground(rest[0]);
  else if (head === "signin") {
    location.replace("#/services");
    return;
  } else work = viewServices();
  // Focus goes to the new page's heading (not on a same-page re-render).
  const heading = document.getElementById("page-title");
  if (heading && raw !== lastPath) heading.focus({ preventScroll: false });
  lastPath = raw;
  Promise.resolve(work).catch((e) => {
    append(document.getElementById("main"), errorBox(e, "Showing this page"));
  });
}

function closeNav() {
  const toggle = document.getElementById("nav-toggle");
  if (toggle) {
    toggle.setAttribute("aria-expanded", "false");
    document.getElementById("nav").classList.remove("open");
  }
}

function setupChrome() {
  const toggle = document.getElementById("nav-toggle");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    document.getElementById("nav").classList.toggle("open", open);
  });
  document.getElementById("skip-link").addEventListener("click", (ev) => {
    ev.preventDefault();
    const heading = document.getElementById("page-title");
    if (heading) heading.focus();
  });
  document.getElementById("signout").addEventListener("click", signOut);
}

// Signs in with the token of a sign-in URL (`#token=...`) when the address has one: the token
// leaves the address bar (and the history) first. Returns whether there was one.
async function signInFromHash() {
  const token = tokenFromHash(location.hash);
  if (token === null) return false;
  history.replaceState(null, "", location.pathname + location.search + "#/services");
  let failure = null;
  try {
    await signIn(token);
  } catch (e) {
    failure = e;
  }
  route();
  if (failure) {
    const box = document.getElementById("signin-error");
    if (box) show(box, errorBox(failure, "Signing in with the link"));
  }
  return true;
}

async function start() {
  setupChrome();
  setupReauth();
  // The sign-in URL opened in a new tab, or pasted into this one (a same-page hash change).
  window.addEventListener("hashchange", async () => {
    if (!(await signInFromHash())) route();
  });
  if (await signInFromHash()) return;
  await checkSession();
  route();
}

if (typeof window !== "undefined" && typeof document !== "undefined") {
  document.addEventListener("DOMContentLoaded", start);
}

if (typeof module !== "undefined") {
  module.exports = {
    el, escapeHtml, safeUrl, SseParser, SseEventParser, servedBy, endpointsOf, modelMatches, errorOf, tokenFromHash, changesState,
    isRegion, roleArnProblem, fieldErrors, fieldKey, parseCron, nextFireTimes, compileFilter, lines, cosine,
    similarityMatrix, diffValues, formatDuration, parseRoute, producedFormats, transcriptOf, audioFileName,
  };
}
