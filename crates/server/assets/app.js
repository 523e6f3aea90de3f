// sagebridge web UI: a read-only single-page app over /api/catalog/* and /v1/*.
//
// Safety rules of this file: text from the server is only ever put into the page as text
// (DOM nodes built by `el`, `textContent`), never parsed as HTML; links are built from
// encodeURIComponent'd names or checked http(s) URLs; the gateway API key lives in
// sessionStorage of this tab and is only sent in the Authorization header, never shown.
//
// Sign-in: the admin token is posted once to /api/v1/session, which answers an HttpOnly
// session cookie (the script never sees it) and a CSRF token kept in memory only and sent as
// X-CSRF-Token on every state-changing request. A token in the URL fragment (`#token=...`,
// the URL `sagebridge serve` prints) signs in at load and is removed from the address bar.
"use strict";

const KEY_STORE = "sagebridge.apiKey";
const SESSION_PATH = "/api/v1/session";
const CSRF_HEADER = "X-CSRF-Token";

// ---------------------------------------------------------------------------------------------
// Pure helpers (also loaded by the Rust tests under node, see the export at the end).

// Builds an element; string children become text nodes, so data is never interpreted as HTML.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
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

// The endpoints a model is served by (from its extension), else its server URL.
function servedBy(model) {
  const ext = model.extension || {};
  if (Array.isArray(ext.endpoints) && ext.endpoints.length) return ext.endpoints.join(", ");
  return model.server || "";
}

// Whether a model matches the free-text filter (name, FQN, algorithm, tags, endpoints).
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

function formatTime(ms) {
  if (typeof ms !== "number") return "";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function formatVersion(v) {
  return typeof v === "number" ? v.toFixed(1) : "";
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

function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORE) || "";
  } catch (_) {
    return "";
  }
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: "Bearer " + key } : {};
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

async function getJson(path, withKey) {
  let res;
  try {
    res = await apiFetch(path, { headers: withKey ? authHeaders() : {} });
  } catch (e) {
    throw new ApiError(0, { message: "cannot reach the server: " + e.message, type: "network_error" });
  }
  const text = await res.text();
  if (!res.ok) {
    const err = errorOf(res.status, text);
    // The session ended (expired, signed out elsewhere): back to the sign-in view.
    if (res.status === 401 && !withKey) signedOut(err.message);
    throw err;
  }
  return JSON.parse(text);
}

function errorBox(e) {
  const err = e instanceof ApiError ? e.error : { message: String(e && e.message ? e.message : e) };
  const status = e instanceof ApiError && e.status ? "HTTP " + e.status : "error";
  let hint = null;
  if (e instanceof ApiError && e.status === 401) {
    hint = err.code === "invalid_api_key" ? "Set the gateway API key at the top of the page."
      : "Sign in again with an admin token.";
  }
  if (err.code === "catalog_unavailable") hint = "This server has no catalog file.";
  return el("div", { class: "error", role: "alert" },
    el("strong", {}, status), " ",
    err.type ? el("code", {}, err.type) : null, " ",
    err.code && err.code !== err.type ? el("code", {}, err.code) : null,
    el("div", {}, err.message || ""),
    hint ? el("div", { class: "muted" }, hint) : null);
}

function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

function jsonBlock(value) {
  return el("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// ---------------------------------------------------------------------------------------------
// API key panel

function refreshKeyStatus() {
  const status = document.getElementById("key-status");
  status.textContent = apiKey() ? "key set for this tab" : "no key set";
}

function setupKeyForm() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    input.value = "";
    try {
      if (key) sessionStorage.setItem(KEY_STORE, key);
    } catch (_) {
      // Storage disabled: the key cannot be kept.
    }
    refreshKeyStatus();
    route();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    try {
      sessionStorage.removeItem(KEY_STORE);
    } catch (_) {
      // Nothing stored.
    }
    input.value = "";
    refreshKeyStatus();
  });
  refreshKeyStatus();
}

// ---------------------------------------------------------------------------------------------
// Sign in and out

function refreshSession() {
  document.getElementById("session-status").textContent = session.signedIn ? "signed in" : "not signed in";
  document.getElementById("signout").hidden = !session.signedIn;
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

// Forgets the session on this side and shows the sign-in view with `message`, if any.
function signedOut(message) {
  const wasSignedIn = session.signedIn;
  session.signedIn = false;
  session.csrf = "";
  refreshSession();
  if (message) show(document.getElementById("signin-error"), el("p", { class: "error", role: "alert" }, message));
  if (wasSignedIn) route();
}

async function signOut() {
  try {
    const res = await apiFetch(SESSION_PATH, { method: "DELETE" });
    if (!res.ok) throw errorOf(res.status, await res.text());
  } catch (e) {
    show(document.getElementById("signin-error"), errorBox(e));
  }
  signedOut(null);
}

function setupSignIn() {
  const form = document.getElementById("signin-form");
  const input = document.getElementById("signin-token");
  const error = document.getElementById("signin-error");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    show(error, el("p", { class: "muted" }, "Signing in…"));
    try {
      await signIn(token);
      input.value = "";
      show(error);
      route();
    } catch (e) {
      show(error, errorBox(e));
      input.focus();
    }
  });
  document.getElementById("signout").addEventListener("click", signOut);
}

// ---------------------------------------------------------------------------------------------
// View 1: models and one model

const modelsState = { models: [], loadedDeleted: null };

function renderModels() {
  const body = document.getElementById("models-body");
  const text = document.getElementById("models-filter").value;
  const service = document.getElementById("models-service").value;
  const shown = modelsState.models.filter(
    (m) => (!service || (m.service && m.service.name === service)) && modelMatches(m, text));
  document.getElementById("models-count").textContent =
    shown.length + " of " + modelsState.models.length + " models";
  if (!shown.length) {
    show(body, el("p", { class: "muted" }, modelsState.models.length ? "No model matches." : "The catalog has no models yet."));
    return;
  }
  show(body, table(
    ["Name", "Service", "Algorithm", "Version", "Served by", "Tags", "Deleted"],
    shown.map((m) => el("tr", { class: m.deleted ? "deleted" : null },
      el("td", {}, el("a", { href: "#/models/" + encodeURIComponent(m.fullyQualifiedName) }, m.name)),
      el("td", {}, m.service ? m.service.name || "" : ""),
      el("td", {}, m.algorithm || ""),
      el("td", { class: "num" }, formatVersion(m.version)),
      el("td", {}, servedBy(m)),
      el("td", { class: "num" }, String((m.tags || []).length)),
      el("td", {}, m.deleted ? "yes" : "")))));
}

async function loadModels() {
  const body = document.getElementById("models-body");
  const deleted = document.getElementById("models-deleted").checked;
  if (modelsState.loadedDeleted === deleted) {
    renderModels();
    return;
  }
  show(body, el("p", { class: "muted" }, "Loading…"));
  try {
    modelsState.models = await getJson("/api/catalog/models?deleted=" + deleted, false);
    modelsState.loadedDeleted = deleted;
  } catch (e) {
    modelsState.models = [];
    modelsState.loadedDeleted = null;
    document.getElementById("models-count").textContent = "";
    show(body, errorBox(e));
    return;
  }
  const select = document.getElementById("models-service");
  const current = select.value;
  const services = [...new Set(modelsState.models.map((m) => (m.service && m.service.name) || ""))]
    .filter(Boolean).sort();
  show(select, el("option", { value: "" }, "all services"),
    services.map((s) => el("option", { value: s, selected: s === current }, s)));
  renderModels();
}

function section(title, ...content) {
  return el("div", { class: "card" }, el("h3", {}, title), content);
}

function definitionList(pairs) {
  return el("dl", {}, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function renderModel(m, versions) {
  const source = safeUrl(m.sourceUrl);
  const server = safeUrl(m.server);
  const store = m.mlStore || {};
  const parts = [
    el("h2", {}, m.displayName || m.name, m.deleted ? el("span", { class: "badge" }, "deleted") : null),
    m.description ? el("p", {}, m.description) : null,
    definitionList([
      ["Fully qualified name", el("code", {}, m.fullyQualifiedName)],
      ["Service", m.service ? m.service.name : ""],
      ["Algorithm", m.algorithm],
      ["Version", formatVersion(m.version)],
      ["Updated", formatTime(m.updatedAt)],
      ["Target", m.target],
      ["Server", server ? el("a", { href: server, rel: "noopener noreferrer", target: "_blank" }, server) : m.server],
      ["Source", source ? el("a", { href: source, rel: "noopener noreferrer", target: "_blank" }, source) : m.sourceUrl],
    ]),
    section("ML store", definitionList([
      ["Storage", store.storage ? el("code", {}, store.storage) : ""],
      ["Image", store.imageRepository ? el("code", {}, store.imageRepository) : ""],
    ])),
    section("Hyperparameters", (m.mlHyperParameters || []).length
      ? table(["Name", "Value", "Description"], m.mlHyperParameters.map((h) =>
        el("tr", {}, el("td", {}, h.name), el("td", {}, el("code", {}, h.value)), el("td", {}, h.description || ""))))
      : el("p", { class: "muted" }, "none")),
    section("Features", (m.mlFeatures || []).length
      ? table(["Name", "Type", "Sources", "Description"], m.mlFeatures.map((f) =>
        el("tr", {}, el("td", {}, f.name), el("td", {}, f.dataType || ""),
          el("td", {}, (f.featureSources || []).map((s) => s.name).join(", ")),
          el("td", {}, f.description || ""))))
      : el("p", { class: "muted" }, "none")),
    section("Tags", (m.tags || []).length
      ? el("ul", { class: "tags" }, m.tags.map((t) => el("li", {}, el("code", {}, t.tagFQN),
        t.description ? [" ", el("span", { class: "muted" }, t.description)] : null)))
      : el("p", { class: "muted" }, "none")),
    section("Endpoints and extension",
      el("p", {}, "Served by: ", servedBy(m) || el("span", { class: "muted" }, "not deployed")),
      m.extension ? jsonBlock(m.extension) : el("p", { class: "muted" }, "no extension")),
    section("Version history", versions instanceof Error ? errorBox(versions)
      : table(["Version", "Updated", "Algorithm", "Served by", "Tags", "Deleted"],
        versions.map((v) => el("tr", {},
          el("td", { class: "num" }, formatVersion(v.version)),
          el("td", {}, formatTime(v.updatedAt)),
          el("td", {}, v.algorithm || ""),
          el("td", {}, servedBy(v)),
          el("td", { class: "num" }, String((v.tags || []).length)),
          el("td", {}, v.deleted ? "yes" : ""))))),
  ];
  return parts;
}

async function loadModel(name) {
  const body = document.getElementById("model-body");
  show(body, el("p", { class: "muted" }, "Loading…"));
  const path = "/api/catalog/models/" + encodeURIComponent(name);
  let model;
  try {
    model = await getJson(path, false);
  } catch (e) {
    show(body, errorBox(e));
    return;
  }
  let versions;
  try {
    versions = await getJson(path + "/versions", false);
  } catch (e) {
    versions = e;
  }
  show(body, renderModel(model, versions));
}

// ---------------------------------------------------------------------------------------------
// View 2: services and runs

function renderConnection(connection) {
  return connection ? jsonBlock(connection) : el("span", { class: "muted" }, "none");
}

async function loadServices() {
  const body = document.getElementById("services-body");
  show(body, el("p", { class: "muted" }, "Loading…"));
  let services;
  try {
    services = await getJson("/api/catalog/services", false);
  } catch (e) {
    show(body, errorBox(e));
    show(document.getElementById("runs-body"));
    return;
  }
  const select = document.getElementById("runs-service");
  const current = select.value;
  show(select, el("option", { value: "" }, "all services"),
    services.map((s) => el("option", { value: s.name, selected: s.name === current }, s.name)));
  show(body, services.length
    ? table(["Name", "Type", "Version", "Updated", "Connection (secrets redacted)"],
      services.map((s) => el("tr", { class: s.deleted ? "deleted" : null },
        el("td", {}, s.displayName || s.name),
        el("td", {}, s.serviceType || ""),
        el("td", { class: "num" }, formatVersion(s.version)),
        el("td", {}, formatTime(s.updatedAt)),
        el("td", {}, renderConnection(s.connection)))))
    : el("p", { class: "muted" }, "No service yet: run `sagebridge ingest`."));
  await loadRuns();
}

function runCounts(report) {
  const c = (report && report.counts) || {};
  return ["listed", "created", "updated", "unchanged", "deleted", "filtered", "failed"]
    .filter((k) => typeof c[k] === "number")
    .map((k) => k + " " + c[k]).join(", ");
}

async function loadRuns() {
  const body = document.getElementById("runs-body");
  const service = document.getElementById("runs-service").value;
  const limit = document.getElementById("runs-limit").value;
  const query = new URLSearchParams({ limit });
  if (service) query.set("service", service);
  let runs;
  try {
    runs = await getJson("/api/catalog/runs?" + query, false);
  } catch (e) {
    show(body, errorBox(e));
    return;
  }
  if (!runs.length) {
    show(body, el("p", { class: "muted" }, "No ingestion run recorded."));
    return;
  }
  show(body, table(["Started", "Service", "Status", "Duration", "Counts", "Failures", "Warnings"],
    runs.map((r) => {
      const report = r.report || {};
      const failures = Array.isArray(report.failures) ? report.failures : [];
      const warnings = Array.isArray(report.warnings) ? report.warnings : [];
      const duration = typeof r.finishedAt === "number" ? ((r.finishedAt - r.startedAt) / 1000).toFixed(1) + " s" : "";
      return el("tr", { class: "status-" + r.status },
        el("td", {}, formatTime(r.startedAt)),
        el("td", {}, r.service),
        el("td", {}, r.status),
        el("td", { class: "num" }, duration),
        el("td", {}, runCounts(report)),
        el("td", {}, failures.length ? el("ul", {}, failures.map((f) =>
          el("li", {}, el("code", {}, f.model || ""), " ", f.errorKind ? "(" + f.errorKind + ") " : "", f.error || ""))) : ""),
        el("td", {}, warnings.length ? el("ul", {}, warnings.map((w) => el("li", {}, String(w)))) : ""));
    })));
}

// ---------------------------------------------------------------------------------------------
// View 3: gateway models

async function gatewayModels() {
  const body = await getJson("/v1/models", true);
  return Array.isArray(body.data) ? body.data : [];
}

async function loadGateway() {
  const body = document.getElementById("gateway-body");
  show(body, el("p", { class: "muted" }, "Loading…"));
  let models;
  try {
    models = await gatewayModels();
  } catch (e) {
    show(body, errorBox(e));
    return;
  }
  show(body, models.length
    ? table(["Model", "Kind", "Format", "Owned by", "Context length"], models.map((m) => el("tr", {},
      el("td", {}, el("code", {}, m.id)),
      el("td", {}, m.kind || ""),
      el("td", {}, m.format || ""),
      el("td", {}, m.owned_by || ""),
      el("td", { class: "num" }, m.context_length === undefined ? "" : String(m.context_length)))))
    : el("p", { class: "muted" }, "The gateway file declares no model."));
}

// ---------------------------------------------------------------------------------------------
// View 4: chat playground

const chat = { messages: [], controller: null };

function chatBubble(role, text) {
  return el("div", { class: "msg msg-" + role },
    el("div", { class: "role" }, role), el("div", { class: "content" }, text));
}

function renderChatLog() {
  const log = document.getElementById("chat-log");
  show(log, chat.messages.map((m) => chatBubble(m.role, m.content)));
  return log;
}

async function loadChat() {
  const select = document.getElementById("chat-model");
  const status = document.getElementById("chat-status");
  let models;
  try {
    models = (await gatewayModels()).filter((m) => m.kind === "chat");
  } catch (e) {
    show(select);
    show(status, errorBox(e));
    return;
  }
  const current = select.value;
  show(select, models.map((m) => el("option", { value: m.id, selected: m.id === current }, m.id)));
  show(status, models.length ? "" : "The gateway has no chat model.");
  renderChatLog();
}

function setBusy(busy) {
  document.getElementById("chat-send").disabled = busy;
  document.getElementById("chat-stop").disabled = !busy;
}

async function sendChat() {
  const input = document.getElementById("chat-input");
  const model = document.getElementById("chat-model").value;
  const status = document.getElementById("chat-status");
  const text = input.value.trim();
  if (!text || chat.controller) return;
  if (!model) {
    show(status, "Pick a chat model first.");
    return;
  }
  chat.messages.push({ role: "user", content: text });
  input.value = "";
  const log = renderChatLog();
  const answer = el("div", { class: "content" });
  const bubble = el("div", { class: "msg msg-assistant" }, el("div", { class: "role" }, "assistant"), answer);
  log.appendChild(bubble);
  const request = {
    model,
    messages: chat.messages,
    stream: true,
    max_tokens: Number(document.getElementById("chat-max-tokens").value) || undefined,
    temperature: Number(document.getElementById("chat-temperature").value),
  };
  chat.controller = new AbortController();
  setBusy(true);
  show(status, "streaming…");
  let content = "";
  let failure = null;
  try {
    const res = await apiFetch("/v1/chat/completions", {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, authHeaders()),
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
  if (content) chat.messages.push({ role: "assistant", content });
  if (failure) bubble.appendChild(errorBox(failure));
  show(status, failure ? "failed" : chat.controller.signal.aborted ? "stopped" : "done");
  chat.controller = null;
  setBusy(false);
}

function setupChat() {
  document.getElementById("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sendChat();
  });
  document.getElementById("chat-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      sendChat();
    }
  });
  document.getElementById("chat-stop").addEventListener("click", () => {
    if (chat.controller) chat.controller.abort();
  });
  document.getElementById("chat-clear").addEventListener("click", () => {
    if (chat.controller) chat.controller.abort();
    chat.messages = [];
    renderChatLog();
    show(document.getElementById("chat-status"));
  });
}

// ---------------------------------------------------------------------------------------------
// Routing: #/models, #/models/<fqn>, #/services, #/gateway, #/chat

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [head, ...rest] = hash.split("/");
  let view = ["models", "services", "gateway", "chat"].includes(head) ? head : "models";
  let param = null;
  if (!session.signedIn) {
    view = "signin";
  } else if (view === "models" && rest.length && rest.join("/")) {
    view = "model";
    try {
      param = decodeURIComponent(rest.join("/"));
    } catch (_) {
      param = rest.join("/");
    }
  }
  for (const section of document.querySelectorAll("[data-view]")) {
    section.hidden = section.dataset.view !== view;
  }
  const nav = view === "model" ? "models" : view;
  if (view === "signin") {
    document.getElementById("signin-token").focus();
  }
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view === "models") loadModels();
  else if (view === "model") loadModel(param);
  else if (view === "services") loadServices();
  else if (view === "gateway") loadGateway();
  else if (view === "chat") loadChat();
}

async function start() {
  setupKeyForm();
  setupSignIn();
  setupChat();
  document.getElementById("models-filter").addEventListener("input", renderModels);
  document.getElementById("models-service").addEventListener("change", renderModels);
  document.getElementById("models-deleted").addEventListener("change", loadModels);
  document.getElementById("runs-service").addEventListener("change", loadRuns);
  document.getElementById("runs-limit").addEventListener("change", loadRuns);
  document.getElementById("gateway-reload").addEventListener("click", loadGateway);
  // A sign-in URL: take the token out of the address bar (and the history) first, then use it.
  const token = tokenFromHash(location.hash);
  if (token !== null) {
    history.replaceState(null, "", location.pathname + location.search);
    try {
      await signIn(token);
    } catch (e) {
      show(document.getElementById("signin-error"), errorBox(e));
    }
  } else {
    await checkSession();
  }
  window.addEventListener("hashchange", route);
  route();
}

if (typeof window !== "undefined" && typeof document !== "undefined") {
  document.addEventListener("DOMContentLoaded", start);
}

if (typeof module !== "undefined") {
  module.exports = {
    el, escapeHtml, safeUrl, SseParser, servedBy, modelMatches, errorOf, tokenFromHash, changesState,
  };
}
