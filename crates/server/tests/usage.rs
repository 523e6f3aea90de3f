//! Usage and limits per API key, end to end over real HTTP on 127.0.0.1: `serve` (with its
//! catalog file) in front of the fake SageMaker runtime. Requests of catalog keys and of a key
//! of `server.apiKeys` show up per key and model in `/metrics` and in
//! `GET /api/v1/gateway/usage`, which survives a restart of `serve`; a requests-per-minute limit
//! answers 429 with `Retry-After`, a tokens-per-minute limit answers 429 once the tokens are
//! spent; no key appears in the metrics, the usage or the log.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sagebridge_gateway::config;
use sagebridge_ingest::shutdown::{self, ShutdownTrigger};
use sagebridge_server::ServeOptions;
use sagebridge_testkit::fake_runtime::{Behaviour, EndpointBehaviour, FakeRuntime};
use serde_json::{json, Value};

const ADMIN: &str = "usage-admin-token-0123456789";
const FILE_KEY: &str = "usage-file-key-SENTINEL-4f1c";

/// A `MakeWriter` that keeps every log line, to scan it.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every log line of this test process, at debug level.
fn capture_logs() -> LogBuffer {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test process");
    logs
}

struct Served {
    base: String,
    http: reqwest::Client,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Every body and header the tests read, to scan for keys.
    seen: Mutex<Vec<String>>,
}

fn config(fake: &FakeRuntime) -> config::GatewayConfig {
    let yaml = format!(
        "server:\n  adminTokens: [\"{ADMIN}\"]\n  apiKeys: [\"{FILE_KEY}\"]\n\
         awsConfig:\n  awsRegion: us-east-1\n  awsAccessKeyId: testing\n  \
         awsSecretAccessKey: testing-secret\n  endPointURL: {}\n\
         models:\n  - {{name: chat, kind: chat, endpointName: ep-chat, format: openai}}\n  \
         - {{name: embed, kind: embedding, endpointName: ep-embed, format: openai}}\n",
        fake.endpoint()
    );
    config::load_str("usage.yaml", &yaml, &|_: &str| None).unwrap_or_else(|e| panic!("{e}"))
}

async fn serve(cfg: &config::GatewayConfig, catalog: &std::path::Path) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, signal) = shutdown::channel();
    let opts = ServeOptions {
        listen: None,
        catalog_path: Some(catalog.to_path_buf()),
    };
    let cfg = cfg.clone();
    let task =
        tokio::spawn(
            async move { sagebridge_server::serve_on(listener, &cfg, &opts, signal).await },
        );
    Served {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        trigger,
        task,
        seen: Mutex::new(Vec::new()),
    }
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Served {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(bearer);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let headers = format!("{:?}", resp.headers());
        let body = resp.text().await.expect("body");
        let mut seen = self.seen.lock().unwrap();
        seen.push(headers);
        seen.push(body.clone());
        Answer {
            status,
            retry_after,
            body,
        }
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, ADMIN, body).await
    }

    /// Creates a catalog key; returns (id, key).
    async fn create_key(&self, body: Value) -> (String, String) {
        let a = self
            .admin(reqwest::Method::POST, "/api/v1/gateway/keys", Some(body))
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        // The one answer that holds the key by design.
        self.seen.lock().unwrap().pop();
        let v = a.json();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["key"].as_str().unwrap().to_owned(),
        )
    }

    /// A chat completion of 3 prompt words and 2 completion tokens (the fake's counts).
    async fn chat(&self, key: &str, model: &str) -> Answer {
        self.call(
            reqwest::Method::POST,
            "/v1/chat/completions",
            key,
            Some(json!({"model": model, "max_tokens": 2,
                        "messages": [{"role": "user", "content": "one two three"}]})),
        )
        .await
    }

    async fn metrics(&self) -> String {
        self.admin(reqwest::Method::GET, "/metrics", None)
            .await
            .body
    }

    async fn usage(&self, query: &str) -> Value {
        let a = self
            .admin(
                reqwest::Method::GET,
                &format!("/api/v1/gateway/usage{query}"),
                None,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.json()
    }

    async fn stop(self) -> Vec<String> {
        self.trigger.trigger();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("serve stops")
            .expect("join")
            .expect("serve");
        self.seen.into_inner().unwrap()
    }
}

async fn fake() -> FakeRuntime {
    let fake = FakeRuntime::start().await.unwrap();
    fake.set("ep-chat", EndpointBehaviour::new(Behaviour::OpenAiChat));
    fake.set("ep-embed", EndpointBehaviour::new(Behaviour::OpenAiEmbed));
    fake
}

fn has_line(text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
}

/// The usage row of `key` and `model` in an answer of the usage route.
fn row<'a>(usage: &'a Value, key: &str, model: &str) -> &'a Value {
    usage["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key && r["model"] == model)
        .unwrap_or_else(|| panic!("no usage of {key}/{model} in {usage}"))
}

#[tokio::test]
async fn usage_per_key_and_model_is_in_metrics_and_the_catalog_and_survives_a_restart() {
    let logs = capture_logs();
    let fake = fake().await;
    let cfg = config(&fake);
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.db");
    let s = serve(&cfg, &catalog).await;
    let (_, team_key) = s.create_key(json!({"name": "team"})).await;

    for _ in 0..2 {
        assert_eq!(s.chat(&team_key, "chat").await.status, 200);
    }
    let unknown = s.chat(&team_key, "no-such-model").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let embedded = s
        .call(
            reqwest::Method::POST,
            "/v1/embeddings",
            &team_key,
            Some(json!({"model": "embed", "input": ["a b", "c"]})),
        )
        .await;
    assert_eq!(embedded.status, 200, "{}", embedded.body);
    let embed_tokens = embedded.json()["usage"]["prompt_tokens"].as_u64().unwrap();
    // The file's key, streaming with the container's usage.
    let streamed = s
        .call(
            reqwest::Method::POST,
            "/v1/chat/completions",
            FILE_KEY,
            Some(json!({"model": "chat", "max_tokens": 2, "stream": true,
                        "stream_options": {"include_usage": true},
                        "messages": [{"role": "user", "content": "one two three"}]})),
        )
        .await;
    assert_eq!(streamed.status, 200);
    assert!(streamed.body.contains("[DONE]"), "{}", streamed.body);

    let text = s.metrics().await;
    for line in [
        "sagebridge_gateway_key_requests_total{key=\"team\",model=\"chat\"} 2",
        "sagebridge_gateway_key_tokens_total{key=\"team\",model=\"chat\",type=\"prompt\"} 6",
        "sagebridge_gateway_key_tokens_total{key=\"team\",model=\"chat\",type=\"completion\"} 4",
        "sagebridge_gateway_key_requests_total{key=\"team\",model=\"\"} 1",
        "sagebridge_gateway_key_errors_total{key=\"team\",model=\"\",class=\"model_not_found\"} 1",
        "sagebridge_gateway_key_requests_total{key=\"team\",model=\"embed\"} 1",
        "sagebridge_gateway_key_requests_total{key=\"file-key-1\",model=\"chat\"} 1",
        "sagebridge_gateway_key_tokens_total{key=\"file-key-1\",model=\"chat\",type=\"completion\"} 2",
        "sagebridge_gateway_key_request_duration_seconds_count{key=\"team\",model=\"chat\"} 2",
    ] {
        has_line(&text, line);
    }

    let usage = s.usage("?key=team").await;
    let chat = row(&usage, "team", "chat");
    assert_eq!(chat["requests"], 2, "{usage}");
    assert_eq!(chat["promptTokens"], 6);
    assert_eq!(chat["completionTokens"], 4);
    assert_eq!(chat["errors"], 0);
    let day = chat["day"].as_str().unwrap().to_owned();
    assert_eq!(
        row(&usage, "team", "")["errorsByClass"],
        json!({"model_not_found": 1})
    );
    assert_eq!(row(&usage, "team", "embed")["promptTokens"], embed_tokens);
    assert!(
        usage["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["key"] == "team"),
        "{usage}"
    );
    assert_eq!(usage["totals"]["requests"], 4);
    let by_model = s.usage("?model=chat").await;
    assert_eq!(row(&by_model, "file-key-1", "chat")["requests"], 1);
    let none = s.usage("?from=2000-01-01&to=2000-01-31").await;
    assert_eq!(none["data"], json!([]));
    for (query, field) in [
        ("?from=yesterday", "from"),
        ("?to=2030-13-01", "to"),
        ("?from=2030-02-02&to=2030-01-01", "from"),
        ("?since=2030-01-01", "since"),
    ] {
        let a = s
            .admin(
                reqwest::Method::GET,
                &format!("/api/v1/gateway/usage{query}"),
                None,
            )
            .await;
        assert_eq!(a.status, 400, "{query}: {}", a.body);
        assert!(a.body.contains(field), "{query}: {}", a.body);
    }

    // A request after the last read is written at shutdown.
    assert_eq!(s.chat(&team_key, "chat").await.status, 200);
    let mut seen = s.stop().await;

    let s = serve(&cfg, &catalog).await;
    let usage = s
        .usage(&format!("?key=team&model=chat&from={day}&to={day}"))
        .await;
    assert_eq!(row(&usage, "team", "chat")["requests"], 3, "{usage}");
    let restarted = s.metrics().await;
    assert!(
        !restarted.contains("key=\"team\""),
        "Prometheus counters start again with the process"
    );
    assert_eq!(s.chat(&team_key, "chat").await.status, 200);
    let usage = s.usage("?key=team&model=chat").await;
    assert_eq!(row(&usage, "team", "chat")["requests"], 4, "{usage}");
    seen.extend(s.stop().await);

    seen.push(text);
    seen.push(String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned());
    assert!(seen.last().unwrap().contains("gateway API key created"));
    for (i, text) in seen.iter().enumerate() {
        for secret in [team_key.as_str(), FILE_KEY] {
            assert!(!text.contains(secret), "a key in text {i}: {text}");
        }
    }
}

#[tokio::test]
async fn per_key_limits_answer_429_with_retry_after_and_follow_a_change() {
    let logs = capture_logs();
    let fake = fake().await;
    let cfg = config(&fake);
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&cfg, &dir.path().join("catalog.db")).await;

    // Requests per minute: the third of a minute is refused until the first leaves the window.
    let (rpm_id, rpm_key) = s
        .create_key(json!({"name": "rpm", "requestsPerMinute": 2}))
        .await;
    for _ in 0..2 {
        assert_eq!(s.chat(&rpm_key, "chat").await.status, 200);
    }
    let refused = s.chat(&rpm_key, "chat").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let retry: u64 = refused
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["type"], "rate_limit_error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("requestsPerMinute"));
    // Other keys are not held back.
    assert_eq!(s.chat(FILE_KEY, "chat").await.status, 200);

    // A raised limit applies to the next request.
    let updated = s
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/gateway/keys/{rpm_id}"),
            Some(json!({"requestsPerMinute": 3})),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.json()["requestsPerMinute"], 3);
    assert!(updated.json().get("key").is_none());
    assert_eq!(s.chat(&rpm_key, "chat").await.status, 200);
    assert_eq!(s.chat(&rpm_key, "chat").await.status, 429);

    // Tokens per minute: 5 tokens a request (3 prompt, 2 completion) under a limit of 8: the
    // second request is admitted (5 < 8) and takes the key past it, the third is refused.
    let (_, tpm_key) = s
        .create_key(json!({"name": "tpm", "tokensPerMinute": 8}))
        .await;
    assert_eq!(s.chat(&tpm_key, "chat").await.status, 200);
    assert_eq!(s.chat(&tpm_key, "chat").await.status, 200);
    let spent = s.chat(&tpm_key, "chat").await;
    assert_eq!(spent.status, 429, "{}", spent.body);
    assert!(spent.retry_after.is_some());
    assert_eq!(spent.json()["error"]["code"], "tokens_limited");

    let text = s.metrics().await;
    has_line(
        &text,
        "sagebridge_gateway_key_errors_total{key=\"rpm\",model=\"\",class=\"rate_limited\"} 2",
    );
    has_line(
        &text,
        "sagebridge_gateway_key_errors_total{key=\"tpm\",model=\"\",class=\"tokens_limited\"} 1",
    );
    has_line(
        &text,
        "sagebridge_gateway_key_requests_total{key=\"tpm\",model=\"chat\"} 2",
    );
    let usage = s.usage("?key=tpm").await;
    assert_eq!(
        row(&usage, "tpm", "")["errorsByClass"],
        json!({"tokens_limited": 1})
    );

    // Bad limits and a renaming are refused, naming the field.
    for (body, field) in [
        (json!({"tokensPerMinute": 0}), "tokensPerMinute"),
        (json!({"requestsPerMinute": 0}), "requestsPerMinute"),
        (json!({"name": "other"}), "name"),
    ] {
        let a = s
            .admin(
                reqwest::Method::PUT,
                &format!("/api/v1/gateway/keys/{rpm_id}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        assert!(a.body.contains(field), "{body}: {}", a.body);
    }
    let missing = s
        .admin(
            reqwest::Method::PUT,
            "/api/v1/gateway/keys/no-such-key",
            Some(json!({})),
        )
        .await;
    assert_eq!(missing.status, 404);

    let mut seen = s.stop().await;
    seen.push(text);
    seen.push(String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned());
    assert!(seen.last().unwrap().contains("over its limit"));
    for text in &seen {
        for secret in [rpm_key.as_str(), tpm_key.as_str(), FILE_KEY] {
            assert!(!text.contains(secret), "a key in: {text}");
        }
    }
}

/// `/v1/chat/completions` and `/v1/embeddings` check the API key themselves (no boxed
/// middleware on the hot path); the other `/v1` routes go through the `auth` middleware. The
/// same refusal must read the same on both kinds of route.
#[tokio::test]
async fn hot_routes_and_middleware_routes_refuse_alike() {
    let fake = fake().await;
    let cfg = config(&fake);
    let dir = tempfile::tempdir().unwrap();
    let s = serve(&cfg, &dir.path().join("catalog.db")).await;
    let (_, only_chat) = s
        .create_key(json!({"name": "only-chat", "allowedModels": ["chat"]}))
        .await;
    let (_, one_a_minute) = s
        .create_key(json!({"name": "one-a-minute", "requestsPerMinute": 1}))
        .await;
    let routes = [
        (
            "/v1/chat/completions",
            json!({"model": "embed", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("/v1/embeddings", json!({"model": "embed", "input": "hi"})),
        (
            "/v1/rerank",
            json!({"model": "embed", "query": "q", "documents": ["d"]}),
        ),
    ];
    // The one request `one-a-minute` may start: every later one, on any route, is over.
    let first = s
        .call(
            reqwest::Method::GET,
            "/v1/models",
            &one_a_minute,
            None::<Value>,
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(s.chat(&one_a_minute, "chat").await.status, 200);
    let mut answers: Vec<Vec<(u16, Value)>> = Vec::new();
    for (path, body) in &routes {
        let mut seen = Vec::new();
        for (key, want_status, want_code) in [
            ("", 401, "invalid_api_key"),
            ("sk-not-a-key-of-this-gateway", 401, "invalid_api_key"),
            (only_chat.as_str(), 403, "model_not_allowed"),
            (one_a_minute.as_str(), 429, "rate_limited"),
        ] {
            let a = s
                .call(reqwest::Method::POST, path, key, Some(body.clone()))
                .await;
            assert_eq!(a.status, want_status, "{path} with {want_code}: {}", a.body);
            assert_eq!(a.json()["error"]["code"], want_code, "{path}: {}", a.body);
            seen.push((a.status, a.json()));
        }
        answers.push(seen);
    }
    // The middleware's answers (rerank) and the hot routes' are alike, status, type and code.
    for (route, seen) in routes.iter().zip(&answers).skip(1) {
        for ((status, v), (chat_status, chat_v)) in seen.iter().zip(&answers[0]) {
            assert_eq!(status, chat_status, "{}", route.0);
            assert_eq!(v["error"]["type"], chat_v["error"]["type"], "{}", route.0);
            assert_eq!(v["error"]["code"], chat_v["error"]["code"], "{}", route.0);
        }
    }
    s.stop().await;
}
