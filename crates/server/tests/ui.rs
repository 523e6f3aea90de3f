//! The web UI and the catalog API over real sockets: `app()` on 127.0.0.1:0 with a temp SQLite
//! catalog filled through `SqliteCatalog`, and the gateway in front of the fake SageMaker runtime.
//! The served script's pure helpers (escaping, SSE parsing) are also run under `node` when it is
//! installed.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sagebridge_catalog::{
    Catalog, EntityReference, IngestionRun, MlHyperParameter, MlModel, MlModelService, MlStore,
    ModelWrite, RunStatus, SecretKey, SqliteCatalog, TagLabel,
};
use sagebridge_gateway::config;
use sagebridge_server::AdminAuth;
use sagebridge_testkit::fake_runtime::{Behaviour, EndpointBehaviour, FakeRuntime};
use serde_json::{json, Value};

const KEY: &str = "ui-test-gateway-key-5f1e9a";
/// The admin token the tests sign in with.
const ADMIN: &str = "ui-test-admin-token-0c8f3e21";
const AWS_SECRET: &str = "ui-test-aws-secret-value-77c2";
/// A secret stored in clear by some other writer: the API must not send it.
const LEGACY_SECRET: &str = "legacy-plaintext-secret-3b9d";
const XSS: &str = "<script>alert(1)</script>";

struct Stack {
    base: String,
    http: reqwest::Client,
    /// The session cookie (`name=value`) of a sign-in with [`ADMIN`], as the page gets it.
    cookie: String,
    _fake: FakeRuntime,
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

impl Stack {
    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }
}

fn model(service: &str, name: &str, hash: &str, tags: &[&str]) -> ModelWrite {
    MlModel {
        name: name.to_owned(),
        fully_qualified_name: format!("{service}.{name}"),
        algorithm: "xgboost".to_owned(),
        ml_store: Some(MlStore {
            storage: Some(format!("s3://bucket/{name}/model.tar.gz")),
            image_repository: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1".into()),
        }),
        ml_hyper_parameters: vec![MlHyperParameter {
            name: "eta".into(),
            value: hash.into(),
            description: None,
        }],
        tags: tags
            .iter()
            .map(|t| TagLabel {
                tag_fqn: (*t).to_owned(),
                name: None,
                display_name: None,
                description: None,
                source: Default::default(),
                label_type: Default::default(),
                state: Default::default(),
                href: None,
            })
            .collect(),
        extension: Some(json!({"endpoints": [format!("ep-{hash}")]})),
        service: EntityReference::ml_model_service("svc-id", service),
        source_hash: Some(hash.to_owned()),
        ..MlModel::default()
    }
    .into()
}

fn run(id: &str, service: &str, started_at: i64, status: RunStatus, report: Value) -> IngestionRun {
    IngestionRun {
        id: id.to_owned(),
        service: service.to_owned(),
        started_at,
        finished_at: Some(started_at + 1500),
        status,
        report,
    }
}

/// Fills a catalog file: two services (one with a clear-text secret), three models of which one
/// has two versions and one has a `<script>` name and tag, and three runs.
fn seed(cat: &SqliteCatalog) {
    cat.upsert_service(&MlModelService {
        name: "prod".into(),
        connection: Some(json!({"config": {"type": "SageMaker", "awsConfig": {
            "awsRegion": "us-east-1",
            "awsSecretAccessKey": "<redacted>",
            "awsSessionToken": "<redacted>",
        }}})),
        ..Default::default()
    })
    .unwrap();
    cat.upsert_service(&MlModelService {
        name: "legacy".into(),
        connection: Some(json!({"config": {"awsConfig": {
            "awsRegion": "eu-west-1",
            "awsSecretAccessKey": LEGACY_SECRET,
        }}})),
        ..Default::default()
    })
    .unwrap();
    cat.write_models(&[
        model("prod", "churn", "h1", &["Team.ml"]),
        model("prod", XSS, "h1", &[&format!("Team.{XSS}")]),
        model("legacy", "fraud", "h1", &[]),
    ])
    .unwrap();
    // A second version of `churn`.
    cat.write_models(&[model("prod", "churn", "h2", &["Team.ml", "Tier.gold"])])
        .unwrap();
    cat.record_run(&run(
        "run-1",
        "prod",
        1_700_000_000_000,
        RunStatus::Success,
        json!({"counts": {"listed": 2, "created": 2, "failed": 0}, "failures": [], "warnings": []}),
    ))
    .unwrap();
    cat.record_run(&run(
        "run-2",
        "prod",
        1_700_000_100_000,
        RunStatus::PartialSuccess,
        json!({"counts": {"listed": 3, "updated": 1, "failed": 1},
               "failures": [{"model": "broken", "error": "AccessDenied on DescribeModel", "errorKind": "accessDenied"}],
               "warnings": ["feature group fg-1 not found"]}),
    ))
    .unwrap();
    cat.record_run(&run(
        "run-3",
        "legacy",
        1_700_000_050_000,
        RunStatus::Failed,
        json!({"counts": {"listed": 0}, "failures": [], "warnings": []}),
    ))
    .unwrap();
}

/// The app on 127.0.0.1:0, with a seeded catalog or none, and the gateway over the fake runtime.
async fn stack(with_catalog: bool) -> Stack {
    let fake = FakeRuntime::start().await.unwrap();
    fake.set("ep-chat", EndpointBehaviour::new(Behaviour::OpenAiChat));
    fake.set("ep-embed", EndpointBehaviour::new(Behaviour::TeiEmbed));
    let yaml = format!(
        r#"
server:
  apiKeys: ["{KEY}"]
  adminTokens: ["{ADMIN}"]
awsConfig:
  awsRegion: us-east-1
  awsAccessKeyId: testing
  awsSecretAccessKey: {AWS_SECRET}
  endPointURL: {url}
models:
  - {{name: chat-a, kind: chat, endpointName: ep-chat, format: openai}}
  - {{name: embed-a, kind: embedding, endpointName: ep-embed, format: tei}}
"#,
        url = fake.endpoint()
    );
    let cfg = config::load_str("ui.yaml", &yaml, &|_: &str| None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(
        SqliteCatalog::open_with_key(dir.path().join("catalog.db"), SecretKey::generate()).unwrap(),
    );
    if with_catalog {
        seed(&catalog);
    }
    let control = sagebridge_server::ControlPlane::new(
        catalog,
        cfg.clone(),
        sagebridge_server::control::system_clock(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let auth = Arc::new(AdminAuth::from_config(&cfg.server, &addr).unwrap());
    let app = sagebridge_server::app(control, auth);
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Signed out, the catalog is closed; signing in as the page does opens it.
    let r = http
        .get(format!("{base}/api/v1/mlmodels"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"token": ADMIN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    Stack {
        base,
        http,
        cookie,
        _fake: fake,
        _dir: dir,
        _server: server,
    }
}

/// The three assets as served, checked for status, content type and security headers.
async fn assets(s: &Stack) -> (String, String, String) {
    let mut bodies = Vec::new();
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
    ] {
        let (status, headers, body) = s.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["content-type"], content_type, "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("connect-src 'self'"), "{path}: {csp}");
        // The speech playground plays a blob URL; no other media source.
        assert!(csp.contains("media-src blob:;"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        bodies.push(body);
    }
    let css = bodies.pop().unwrap();
    let js = bodies.pop().unwrap();
    (bodies.pop().unwrap(), js, css)
}

#[tokio::test]
async fn the_page_has_its_pages_and_only_local_assets() {
    let s = stack(true).await;
    let (html, js, css) = assets(&s).await;
    for marker in [
        r#"<main id="main""#,
        r#"id="page-title" tabindex="-1""#,
        r#"data-nav="services""#,
        r#"data-nav="ingestion""#,
        r#"data-nav="models""#,
        r#"data-nav="gateway""#,
        r#"data-nav="keys""#,
        r#"data-nav="playground""#,
        r#"id="signout""#,
        r#"id="reauth-token" type="password""#,
        r#"<script src="/ui/app.js" defer></script>"#,
        r#"<link rel="stylesheet" href="/ui/app.css">"#,
    ] {
        assert!(html.contains(marker), "no {marker} in the page");
    }
    // One script tag, with a src: no inline script (the CSP would block it anyway).
    assert_eq!(html.matches("<script").count(), 1);
    // Nothing from another origin: no CDN, no fonts, no absolute URLs.
    for text in [&html, &js, &css] {
        assert!(!text.contains("http://") && !text.contains("https://"));
        assert!(!text.contains("//cdn") && !text.contains("@import"));
    }
    // Every route the pages use is referenced by the script, and only the admin API's.
    for path in [
        r#"const API = "/api/v1""#,
        r#""/services/mlmodelServices""#,
        r#""/services/testConnection""#,
        r#""/services/ingestionPipelines""#,
        r#""/services/ingestionPipelines/trigger/""#,
        r#""/events""#,
        r#""/workflow.yaml""#,
        r#""/mlmodels?""#,
        r#""/mlmodels/name/""#,
        "/versions",
        r#""/gateway/models""#,
        r#""/gateway/discovered""#,
        r#""/gateway/keys""#,
        "/v1/models",
        "/v1/chat/completions",
        "/v1/audio/",
        "/v1/audio/speech",
        "/v1/embeddings",
        "/v1/rerank",
        "stream: true",
        "[DONE]",
        "getReader()",
        "/api/v1/session",
        "X-CSRF-Token",
        "history.replaceState",
        r#"credentials: "same-origin""#,
        r#"id: "signin-token", type: "password""#,
    ] {
        assert!(js.contains(path), "the script does not use {path}");
    }
    assert!(
        !js.contains("/api/catalog"),
        "the script still uses /api/catalog"
    );
    // Unknown UI paths are plain 404s.
    assert_eq!(s.get("/ui/nope.js").await.0, 404);
}

#[tokio::test]
async fn the_script_puts_data_in_the_page_as_text_and_keeps_no_secret() {
    let s = stack(true).await;
    let (html, js, css) = assets(&s).await;
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "localStorage",
        "sessionStorage",
    ] {
        assert!(!js.contains(sink), "the script uses {sink}");
    }
    assert!(js.contains("document.createTextNode(String(child))"));
    assert!(js.contains("textContent"));
    // The token input is emptied once signed in.
    assert!(js.contains(r#"input.value = """#));
    for text in [&html, &js, &css] {
        for secret in [KEY, ADMIN, AWS_SECRET, LEGACY_SECRET, "testing"] {
            assert!(!text.contains(secret), "an asset contains {secret}");
        }
    }
}

/// What the gateway views call, with and without the key.
#[tokio::test]
async fn gateway_views_use_v1_models_and_streamed_chat() {
    let s = stack(false).await;
    let r = s
        .http
        .get(format!("{}/v1/models", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_api_key");

    let models: Value = s
        .http
        .get(format!("{}/v1/models", s.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<(&str, &str)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("chat-a", "chat"), ("embed-a", "embedding")]);

    let body = chat_stream(&s).await;
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    // The SSE body the playground parses gives the fake runtime's tokens back, under node,
    // fed in 7-byte pieces that split events and lines.
    if let Some(out) = run_node(&format!(
        "const p = new m.SseParser(); const body = {body}; let text = '';\n\
         for (let i = 0; i < body.length; i += 7) {{\n\
           for (const d of p.push(body.slice(i, i + 7))) {{\n\
             if (d === '[DONE]') break;\n\
             for (const c of JSON.parse(d).choices) text += c.delta.content || '';\n\
           }}\n\
         }}\n\
         console.log(text);",
        body = serde_json::to_string(&body).unwrap()
    )) {
        assert_eq!(out.trim(), "Hello, world!");
    }

    // A model of the wrong kind is refused in the OpenAI error shape the playground shows.
    let r = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth(KEY)
        .json(&json!({"model": "embed-a", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let err: Value = r.json().await.unwrap();
    assert!(err["error"]["message"].is_string(), "{err}");
}

async fn chat_stream(s: &Stack) -> String {
    let r = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth(KEY)
        .json(&json!({"model": "chat-a", "stream": true, "max_tokens": 16,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    r.text().await.unwrap()
}

/// Runs `script` under node with the served `app.js` loaded as `m`; `None` when node is not
/// installed (the static checks above still hold then).
fn run_node(script: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.js");
    std::fs::write(
        &app,
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/app.js")),
    )
    .unwrap();
    let prelude = format!(
        "const m = require({});\n",
        serde_json::to_string(&app.to_string_lossy()).unwrap()
    );
    let out = match Command::new("node")
        .arg("-e")
        .arg(format!("{prelude}{script}"))
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("node is not installed: the script's helpers were not run");
            return None;
        }
        Err(e) => panic!("cannot run node: {e}"),
    };
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn the_scripts_helpers_escape_markup_and_split_sse() {
    // A minimal DOM: elements record children; text nodes record their text. The served `el`
    // must turn a `<script>` string into a text node, not into markup or an element.
    let script = r#"
globalThis.document = {
  createElement: (tag) => ({ tag, children: [], attrs: {},
    appendChild(c) { this.children.push(c); }, setAttribute(k, v) { this.attrs[k] = v; },
    addEventListener() {} }),
  createTextNode: (text) => ({ text }),
};
const x = "<script>alert(1)</script>";
const td = m.el("td", { title: x }, x, m.el("code", {}, "Team." + x));
const out = {
  escaped: m.escapeHtml(x + "&\"'"),
  first: td.children[0],
  nested: td.children[1].children[0],
  nestedTag: td.children[1].tag,
  title: td.attrs.title,
  safe: [m.safeUrl("javascript:alert(1)"), m.safeUrl("https://x.example/a")],
  filter: [m.modelMatches({ name: "a", tags: [{ tagFQN: "Team." + x }] }, "SCRIPT"),
           m.modelMatches({ name: "a" }, "zzz")],
  served: [m.servedBy({ extension: { endpoints: ["e1", "e2"] } }), m.servedBy({ server: "u" })],
  sse: new m.SseParser().push('data: {"a":1}\r\n\r\n: comment\ndata:[DONE]\n\ndata: partial'),
  error: m.errorOf(404, '{"error":{"message":"gone","type":"not_found_error"}}').error,
  plain: m.errorOf(502, "bad gateway").error,
  openmetadata: m.errorOf(401, '{"code":401,"message":"sign in first"}').error,
  fragment: [m.tokenFromHash('#token=ab%2Bc'), m.tokenFromHash('#/models'), m.tokenFromHash('#token=')],
  changes: ["GET", "POST", "put", "DELETE", "PATCH", undefined].map(m.changesState),
};
console.log(JSON.stringify(out));
"#;
    let Some(out) = run_node(script) else {
        // Without node, check at least that the helper is the text-node one.
        let js = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/app.js"));
        assert!(js.contains("document.createTextNode(String(child))"));
        return;
    };
    let out: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        out,
        json!({
            "escaped": "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;",
            "first": {"text": XSS},
            "nested": {"text": format!("Team.{XSS}")},
            "nestedTag": "code",
            "title": XSS,
            "safe": [null, "https://x.example/a"],
            "filter": [true, false],
            "served": ["e1, e2", "u"],
            "sse": ["{\"a\":1}", "[DONE]"],
            "error": {"message": "gone", "type": "not_found_error"},
            "plain": {"message": "bad gateway", "type": "http_error"},
            "openmetadata": {"message": "sign in first", "type": "http_error"},
            "fragment": ["ab+c", null, null],
            "changes": [false, true, true, true, true, false],
        })
    );
}
