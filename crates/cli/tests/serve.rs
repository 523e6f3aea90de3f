//! `sagebridge serve` as users run it: the real binary on `127.0.0.1:0` in front of the fake
//! SageMaker runtime, driven by the official `openai` Python client (chat, streaming chat,
//! embeddings) and by plain HTTP (`/healthz`, `/v1/models`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sagebridge_testkit::fake_runtime::{
    fake_embedding, Behaviour, EndpointBehaviour, FakeRuntime, Split,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "serve-test-key-0123456789";
const KEY_ENV: &str = "SAGEBRIDGE_SERVE_TEST_KEY";

/// The `sagebridge serve` child; killed (by its PID, through `Child::kill`) and reaped on drop,
/// also when an assertion fails half-way.
struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
    /// The second line of stdout: the sign-in URL when no admin token is configured.
    second_line: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `sagebridge serve -c <config> --listen 127.0.0.1:0` and waits for the line that
/// announces the bound address.
async fn start_server(config: &Path, dir: &Path) -> Server {
    let log = dir.join("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_sagebridge"))
        .arg("serve")
        .arg("-c")
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--catalog"])
        // No catalog file: the catalog routes stay off and no ./sagebridge.db is picked up.
        .arg(dir.join("no-catalog.db"))
        .env(KEY_ENV, KEY)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start sagebridge serve");
    let mut server = Server {
        child,
        base: String::new(),
        log,
        second_line: String::new(),
    };
    let stdout = server.child.stdout.take().unwrap();
    let (line, second) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let (mut line, mut second) = (String::new(), String::new());
            reader.read_line(&mut line)?;
            reader.read_line(&mut second)?;
            Ok::<_, std::io::Error>((line, second))
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("serve printed no address within 30 s"))
    .unwrap()
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("sagebridge listening on http://")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line {line:?}; log:\n{}",
                server.log_text()
            )
        });
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
    server.base = format!("http://{addr}");
    server.second_line = second.trim().to_owned();
    server
}

/// A plain HTTP/1.1 GET over a fresh connection: (status, body).
async fn http_get(base: &str, path: &str, key: Option<&str>) -> (u16, String) {
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the answer arrived within 10 s")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    (status, body.to_owned())
}

fn python() -> String {
    let venv = std::env::var("SAGEBRIDGE_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sagebridge/venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let python = format!("{venv}/bin/python");
    assert!(
        Path::new(&python).exists(),
        "no Python venv at {venv}: run `source scripts/env.sh; ensure_venv`"
    );
    python
}

#[tokio::test]
async fn serve_binary_with_the_openai_client_and_plain_http() {
    let fake = FakeRuntime::start().await.unwrap();
    fake.set(
        "ep-tgi",
        EndpointBehaviour::new(Behaviour::TgiChat).split(Split::Random { seed: 9, max: 7 }),
    );
    fake.set("ep-openai", EndpointBehaviour::new(Behaviour::OpenAiChat));
    fake.set("ep-tei", EndpointBehaviour::new(Behaviour::TeiEmbed));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sagebridge.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server:
  apiKeys: ["${{{KEY_ENV}}}"]
awsConfig:
  awsRegion: us-east-1
  awsAccessKeyId: testing
  awsSecretAccessKey: testing-secret-value
  endPointURL: {url}
models:
  - {{name: chat-tgi, kind: chat, endpointName: ep-tgi, format: tgi, chatTemplate: chatml}}
  - {{name: chat-openai, kind: chat, endpointName: ep-openai, format: openai, contextLength: 8192}}
  - {{name: embed-tei, kind: embedding, endpointName: ep-tei, format: tei}}
"#,
            url = fake.endpoint()
        ),
    )
    .unwrap();
    let server = start_server(&config, dir.path()).await;

    // No server.adminTokens: `serve` printed a sign-in URL with a generated admin token, which
    // opens the admin routes (and is never logged).
    let token = server
        .second_line
        .strip_prefix(&format!("sign in: {}/#token=", server.base))
        .unwrap_or_else(|| panic!("no sign-in URL: {:?}", server.second_line))
        .to_owned();
    assert_eq!(token.len(), 64, "{token}");
    let (status, body) = http_get(&server.base, "/api/v1/session", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"signedIn": true, "credential": "bearer"})
    );
    let (status, body) = http_get(&server.base, "/metrics", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = http_get(&server.base, "/metrics", Some(&token)).await;
    assert_eq!(status, 200, "{body}");

    // Plain HTTP: health without a key, the model list only with one.
    let (status, body) = http_get(&server.base, "/healthz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "ok"})
    );
    let (status, body) = http_get(&server.base, "/v1/models", None).await;
    assert_eq!(status, 401, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let (status, body) = http_get(&server.base, "/v1/models", Some(KEY)).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "list");
    let models: Vec<(&str, &str)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        models,
        vec![
            ("chat-tgi", "chat"),
            ("chat-openai", "chat"),
            ("embed-tei", "embedding")
        ]
    );
    assert_eq!(v["data"][1]["owned_by"], "sagemaker");
    assert_eq!(v["data"][1]["context_length"], 8192);

    // The official client: chat, streaming chat, embeddings.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/serve_client.py");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(python())
            .arg(script)
            .env("OPENAI_BASE_URL", format!("{}/v1", server.base))
            .env("OPENAI_API_KEY", KEY)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finished within 60 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    let v: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(v["chat"], "Hello, world!", "{v}");
    assert_eq!(v["chat_finish"], "stop");
    assert_eq!(v["chat_model"], "chat-tgi");
    assert_eq!(v["chat_openai"], "Hello, world!");
    // The fake counts words: 4 in the prompt, 4 tokens in the answer.
    assert_eq!(v["chat_openai_total_tokens"], 8);
    assert_eq!(v["stream"], "Hello, world!");
    assert_eq!(v["stream_chunks"], 4);
    assert_eq!(v["stream_finish"], "stop");
    assert_eq!(v["stream_usage_completion_tokens"], 5);
    assert_eq!(v["embedding_dims"], json!([8, 8, 8]));
    let floats = |v: &Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    assert_eq!(floats(&v["embedding1"]), fake_embedding("second", 8));
    // TEI reports no token counts: the gateway's estimate (about 4 characters a token).
    assert_eq!(v["embedding_prompt_tokens"], 6);
    assert_eq!(
        floats(&v["embedding_short"]),
        fake_embedding("first", 8)[..4].to_vec()
    );
    assert_eq!(v["too_many_dims_status"], 400);
    assert_eq!(v["unknown_model_status"], 404);

    // What reached SageMaker: the chatml prompt, one streamed call, signed requests.
    let calls = fake.invocations();
    let tgi: Vec<_> = calls.iter().filter(|c| c.endpoint == "ep-tgi").collect();
    assert_eq!(tgi.len(), 2, "{calls:?}");
    assert_eq!(tgi.iter().filter(|c| c.stream).count(), 1);
    assert!(tgi[0].json()["inputs"]
        .as_str()
        .unwrap()
        .contains("<|im_start|>user\nSay hello<|im_end|>"));
    assert!(tgi[0]
        .header("authorization")
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256 Credential=testing/"));
    assert_eq!(fake.streams_completed(), 1);
    let log = server.log_text();
    assert!(
        !log.contains("testing-secret-value") && !log.contains(KEY) && !log.contains(&token),
        "{log}"
    );
}
