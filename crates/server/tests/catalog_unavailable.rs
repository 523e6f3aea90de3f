//! `serve` with a catalog it cannot open (issue: hardening §5): a file written by a newer
//! sagebridge, a corrupt file, a folder that does not exist. The server starts anyway, serves
//! the gateway file's models under `/v1`, says `degraded` on `/healthz`, answers the admin API
//! with 503 `catalog_unavailable` naming the cause, and picks the catalog up once it can be
//! opened, without a restart. Real sockets on 127.0.0.1, the fake SageMaker runtime.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sagebridge_catalog::SqliteCatalog;
use sagebridge_gateway::config;
use sagebridge_ingest::shutdown::{self, ShutdownTrigger};
use sagebridge_server::ServeOptions;
use sagebridge_testkit::fake_runtime::{Behaviour, EndpointBehaviour, FakeRuntime};
use serde_json::Value;

const ADMIN: &str = "admin-token-catalog-0123456789";
const KEY: &str = "catalog-test-api-key";

struct Served {
    _fake: FakeRuntime,
    base: String,
    http: reqwest::Client,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(catalog: &Path) -> Served {
    let fake = FakeRuntime::start().await.unwrap();
    fake.set("ep-tgi", EndpointBehaviour::new(Behaviour::TgiChat));
    let yaml = format!(
        "server:\n  apiKeys: [\"{KEY}\"]\n  adminTokens: [\"{ADMIN}\"]\n  catalogRetrySeconds: 0.2\n\
         awsConfig:\n  awsRegion: us-east-1\n  awsAccessKeyId: testing\n  \
         awsSecretAccessKey: testing-secret\n  endPointURL: {}\n\
         models:\n  - {{name: chat, kind: chat, endpointName: ep-tgi, format: tgi}}\n",
        fake.endpoint()
    );
    let cfg =
        config::load_str("serve.yaml", &yaml, &|_: &str| None).unwrap_or_else(|e| panic!("{e}"));
    let opts = ServeOptions {
        listen: None,
        catalog_path: Some(catalog.to_owned()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (trigger, signal) = shutdown::channel();
    let task =
        tokio::spawn(
            async move { sagebridge_server::serve_on(listener, &cfg, &opts, signal).await },
        );
    Served {
        _fake: fake,
        base,
        http: reqwest::Client::new(),
        trigger,
        task,
    }
}

impl Served {
    async fn admin_get(&self, path: &str) -> (u16, Option<String>, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, retry, r.json().await.unwrap_or(Value::Null))
    }

    async fn health(&self) -> Value {
        self.http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn chat(&self) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Polls the services list until it answers `want` (bounded: 100 tries, 10 s).
    async fn wait_for_services_status(&self, want: u16) -> Value {
        let mut last = Value::Null;
        for _ in 0..100 {
            let (status, _, body) = self.admin_get("/api/v1/services/mlmodelServices").await;
            if status == want {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the services list never answered {want}; last body {last}");
    }

    async fn stop(self) {
        self.trigger.trigger();
        self.task.await.unwrap().unwrap();
    }
}

fn fresh_catalog(dir: &Path) -> PathBuf {
    let path = dir.join("catalog.db");
    drop(SqliteCatalog::open(&path).unwrap());
    path
}

fn set_user_version(path: &Path, version: i64) {
    let conn = rusqlite_connection(path);
    conn.pragma_update(None, "user_version", version).unwrap();
}

fn rusqlite_connection(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// Asserts the degraded answers: 503 `catalog_unavailable` naming `cause`, `/healthz`
/// degraded, and the gateway file's model answering.
async fn assert_degraded(s: &Served, cause: &str) {
    let (status, retry, body) = s.admin_get("/api/v1/services/mlmodelServices").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["errorType"], "catalog_unavailable", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(cause), "{message} should name {cause:?}");
    assert!(retry.is_some(), "a 503 says when to come back");
    let health = s.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(health["catalog"]["reason"]
        .as_str()
        .unwrap()
        .contains(cause));
    let (status, answer) = s.chat().await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["object"], "chat.completion");
}

#[tokio::test]
async fn a_newer_catalog_is_refused_without_being_written_then_picked_up_when_it_fits() {
    let dir = tempfile::tempdir().unwrap();
    let path = fresh_catalog(dir.path());
    let latest = sagebridge_catalog::SCHEMA_VERSION;
    set_user_version(&path, latest + 1);
    let before = std::fs::read(&path).unwrap();

    let s = serve(&path).await;
    assert_degraded(&s, "is newer than this binary supports").await;
    // Not migrated, not stamped with a key check: the file is as it was.
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // The newer binary is rolled back (the file is at our version again): no restart needed.
    set_user_version(&path, latest);
    let body = s.wait_for_services_status(200).await;
    assert!(body["data"].is_array(), "{body}");
    assert_eq!(s.health().await["status"], "ok");
    s.stop().await;
}

#[tokio::test]
async fn a_corrupt_catalog_is_a_503_not_a_failed_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let s = serve(&path).await;
    assert_degraded(&s, "not a database").await;
    assert_eq!(
        std::fs::read(&path).unwrap(),
        vec![0x5a; 8192],
        "left as it was"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_catalog_whose_folder_is_missing_is_not_created_elsewhere_until_the_folder_appears() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("volume-not-mounted");
    let path = folder.join("catalog.db");
    let s = serve(&path).await;
    assert_degraded(&s, "does not exist").await;
    assert!(!folder.exists(), "serve must not create the folder");

    std::fs::create_dir(&folder).unwrap();
    s.wait_for_services_status(200).await;
    assert!(path.exists());
    s.stop().await;
}
