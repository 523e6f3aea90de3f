//! The control plane end to end over real HTTP on 127.0.0.1:0, against moto (seeded with the
//! demo account) and the fake SageMaker runtime: create a service, test its connection, create
//! a pipeline, trigger it and follow its events to the end, list the models, export
//! `workflow.yaml` and run it with the `sagebridge` binary, serve a discovered endpoint and call
//! it through `/v1`, manage API keys; every response, the log and the catalog file are scanned
//! for the sentinel secret, and a restart keeps the state and still decrypts it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sagebridge_catalog::{ControlStore, SecretKey, SqliteCatalog};
use sagebridge_ingest::shutdown::{self, ShutdownTrigger};
use sagebridge_server::{AdminAuth, ControlPlane};
use sagebridge_testkit::fake_runtime::{Behaviour, EndpointBehaviour, FakeRuntime};
use sagebridge_testkit::{sagemaker_client, seed, MotoServer, SeedSpec};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-0123456789abcdef";
const FILE_KEY: &str = "file-api-key-123";
/// Sent as the service's `awsSecretAccessKey`; must never come back or be logged.
const SENTINEL: &str = "SENTINEL-cp-secret-9b1f44e2-do-not-leak";

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

struct Stack {
    base: String,
    http: reqwest::Client,
    moto: MotoServer,
    fake: FakeRuntime,
    dir: tempfile::TempDir,
    key: SecretKey,
    control: Arc<ControlPlane>,
    stop: ShutdownTrigger,
    bodies: Mutex<Vec<String>>,
}

struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Stack {
    async fn start() -> Self {
        let moto = MotoServer::start().await.expect("moto");
        let summary = seed(&sagemaker_client(&moto.endpoint(), None), &SeedSpec::demo())
            .await
            .expect("seed");
        assert!(!summary.endpoints.is_empty());
        let fake = FakeRuntime::start().await.expect("fake runtime");
        for ep in &summary.endpoints {
            fake.set(&ep.name, EndpointBehaviour::new(Behaviour::OpenAiChat));
        }
        let yaml = format!(
            "server:\n  adminTokens: [\"{ADMIN}\"]\n  apiKeys: [\"{FILE_KEY}\"]\nawsConfig:\n  awsRegion: us-east-1\n  awsAccessKeyId: testing\n  awsSecretAccessKey: testing\n  endPointURL: {}\n",
            fake.endpoint()
        );
        let cfg = sagebridge_gateway::config::load_str("sagebridge.yaml", &yaml, &|_| None)
            .unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SecretKey::generate();
        let catalog = Arc::new(
            SqliteCatalog::open_with_key(dir.path().join("catalog.db"), key.clone())
                .expect("catalog"),
        );
        let control = ControlPlane::new(
            catalog,
            cfg.clone(),
            sagebridge_server::control::system_clock(),
        )
        .expect("control plane");
        let (stop, signal) = shutdown::channel();
        control.start(signal).expect("start");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let auth = Arc::new(AdminAuth::from_config(&cfg.server, &addr).expect("auth"));
        let app = sagebridge_server::app(Arc::clone(&control), auth);
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            moto,
            fake,
            dir,
            key,
            control,
            stop,
            bodies: Mutex::new(Vec::new()),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.text().await.expect("body");
        self.bodies.lock().unwrap().push(body.clone());
        Answer { status, body }
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, Some(ADMIN), body).await
    }

    /// The SSE events of a run until `end` (bounded: 60 s).
    async fn follow(&self, path: &str) -> Vec<(String, Value)> {
        let mut resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("events");
        assert_eq!(resp.status().as_u16(), 200);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("the run did not end within 60 s")
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        self.bodies.lock().unwrap().push(text.clone());
        parse_events(&text)
    }
}

/// The `(event, data)` pairs of a server-sent event stream.
fn parse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line
                    .strip_prefix("event: ")
                    .or_else(|| line.strip_prefix("event:"))
                {
                    event = e.trim().to_owned();
                } else if let Some(d) = line
                    .strip_prefix("data: ")
                    .or_else(|| line.strip_prefix("data:"))
                {
                    data.push_str(d);
                }
            }
            (!event.is_empty()).then(|| (event, serde_json::from_str(&data).unwrap_or(Value::Null)))
        })
        .collect()
}

/// The `sagebridge` binary beside this test binary (built by `cargo build --workspace`).
fn sagebridge_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let bin = dir.join("sagebridge");
    assert!(
        bin.exists(),
        "{} is missing: build with `cargo build --workspace --all-targets`",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_tested_ingested_on_demand_exported_and_served() {
    let logs = LogBuffer::default();
    // Each test runs in its own process (nextest), so the global subscriber is this test's.
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(logs.clone())
            .finish(),
    );
    let s = Stack::start().await;
    use reqwest::Method as M;

    // Credentials: none is 401, a gateway key is 403 on an admin route.
    let a = s
        .call(M::GET, "/api/v1/services/mlmodelServices", None, None)
        .await;
    assert_eq!(a.status, 401, "{}", a.body);
    let a = s
        .call(
            M::GET,
            "/api/v1/services/mlmodelServices",
            Some(FILE_KEY),
            None,
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);

    // A service pointing at moto, with the sentinel as its secret.
    let aws = json!({"awsRegion": "us-east-1", "awsAccessKeyId": "testing",
        "awsSecretAccessKey": SENTINEL, "endPointURL": s.moto.endpoint()});
    let a = s
        .admin(M::POST, "/api/v1/services/mlmodelServices", Some(json!({"name": "demo",
            "serviceType": "SageMaker", "connection": {"config": {"type": "SageMaker", "awsConfig": aws}}})))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let service = a.json();
    assert_eq!(service["secrets"]["awsSecretAccessKey"], true);
    let service_id = service["id"].as_str().unwrap().to_owned();

    // Test connection: the job's steps, all passing against moto, and a policy to copy.
    let a = s
        .admin(
            M::POST,
            &format!("/api/v1/services/mlmodelServices/{service_id}/testConnection"),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let report = a.json();
    assert_eq!(report["passed"], true, "{report}");
    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        &names[..4],
        [
            "GetCallerIdentity",
            "ListModels",
            "DescribeModel",
            "ListTags"
        ]
    );
    for step in report["steps"].as_array().unwrap().iter().take(4) {
        assert_eq!(step["status"], "passed", "{step}");
    }
    assert!(report["policy"]["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .contains(&json!("sagemaker:ListModels")));
    // Asked for events, the same check streams each step as it is done, then the report.
    let text = s
        .http
        .post(format!(
            "{}/api/v1/services/mlmodelServices/{service_id}/testConnection",
            s.base
        ))
        .bearer_auth(ADMIN)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = parse_events(&text);
    let step_events: Vec<&Value> = events
        .iter()
        .filter(|(e, _)| e == "step")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(step_events.len(), names.len(), "{text}");
    assert_eq!(step_events[0]["name"], "GetCallerIdentity");
    let (last, streamed) = events.last().unwrap();
    assert_eq!(last, "report");
    assert_eq!(streamed["passed"], true);
    assert_eq!(streamed["steps"].as_array().unwrap().len(), names.len());
    // An unsaved connection takes the stored secret of the service it names; a bad region is a
    // 400 naming the field.
    let a = s
        .admin(
            M::POST,
            "/api/v1/services/testConnection",
            Some(json!({"service": "demo",
            "connection": {"config": {"type": "SageMaker", "awsConfig": {"awsRegion": "us-east-1",
                "awsAccessKeyId": "testing", "endPointURL": s.moto.endpoint()}}}})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["passed"], true, "{}", a.body);
    let a = s
        .admin(
            M::POST,
            "/api/v1/services/testConnection",
            Some(json!({
            "connection": {"config": {"awsConfig": {"awsRegion": "mars-north-9x"}}}})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("connection.config.awsConfig.awsRegion"),
        "{}",
        a.body
    );

    // A pipeline with a filter and a schedule; a bad cron is a 400 naming the field.
    let pipeline_body = |cron: &str| {
        json!({"name": "nightly", "pipelineType": "metadata",
        "service": {"id": service_id, "type": "mlmodelService"},
        "sourceConfig": {"config": {"type": "MlModelMetadata",
            "mlModelFilterPattern": {"includes": ["demo-.*"]}}},
        "airflowConfig": {"scheduleInterval": cron}})
    };
    let a = s
        .admin(
            M::POST,
            "/api/v1/services/ingestionPipelines",
            Some(pipeline_body("61 * * * *")),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("airflowConfig.scheduleInterval"),
        "{}",
        a.body
    );
    let a = s
        .admin(
            M::POST,
            "/api/v1/services/ingestionPipelines",
            Some(pipeline_body("0 3 * * *")),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let pipeline_id = a.json()["id"].as_str().unwrap().to_owned();

    // Run now; a second trigger while it runs is 409.
    let a = s
        .admin(
            M::POST,
            &format!("/api/v1/services/ingestionPipelines/trigger/{pipeline_id}"),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let run = a.json();
    assert_eq!(run["trigger"], "manual");
    let run_id = run["id"].as_str().unwrap().to_owned();
    let a = s
        .admin(
            M::POST,
            &format!("/api/v1/services/ingestionPipelines/trigger/{pipeline_id}"),
            None,
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(
        a.json()["message"].as_str().unwrap().contains("nightly"),
        "{}",
        a.body
    );
    let missing = s
        .admin(
            M::POST,
            "/api/v1/services/ingestionPipelines/trigger/nope",
            None,
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);

    // Follow the run to its end.
    let events = s
        .follow(&format!(
            "/api/v1/services/ingestionPipelines/{pipeline_id}/runs/{run_id}/events"
        ))
        .await;
    let (last, end) = events.last().expect("events");
    assert_eq!(last, "end", "{events:?}");
    assert_eq!(end["status"], "success", "{end}");
    assert_eq!(end["progress"]["modelsTotal"], 40, "{end}");
    assert_eq!(end["progress"]["modelsDone"], 40, "{end}");
    assert_eq!(end["report"]["counts"]["created"], 40, "{end}");
    let lines: Vec<&str> = events
        .iter()
        .filter(|(e, _)| e == "log")
        .map(|(_, d)| d["line"].as_str().unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("listed 40 models")),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().contains("40"), "{lines:?}");
    let a = s
        .admin(
            M::GET,
            &format!("/api/v1/services/ingestionPipelines/{pipeline_id}/runs/{run_id}"),
            None,
        )
        .await;
    assert_eq!(a.json()["status"], "success");
    assert_eq!(a.json()["logLines"].as_array().unwrap().len(), lines.len());
    let a = s
        .admin(
            M::GET,
            &format!("/api/v1/services/ingestionPipelines/{pipeline_id}/runs"),
            None,
        )
        .await;
    assert_eq!(a.json()["paging"]["total"], 1, "{}", a.body);

    // Lists carry the last run, so a page needs no request per row.
    let a = s
        .admin(
            M::GET,
            "/api/v1/services/ingestionPipelines?service=demo",
            None,
        )
        .await;
    assert_eq!(
        a.json()["data"][0]["lastRun"]["status"],
        "success",
        "{}",
        a.body
    );
    assert_eq!(a.json()["data"][0]["lastRun"]["id"], run_id.as_str());
    let a = s
        .admin(M::GET, "/api/v1/services/mlmodelServices", None)
        .await;
    let demo = a.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "demo")
        .cloned()
        .unwrap();
    assert_eq!(demo["pipelines"], 1, "{demo}");
    assert_eq!(demo["lastRun"]["status"], "success", "{demo}");

    // The models, by service and by tag.
    let a = s
        .admin(M::GET, "/api/v1/mlmodels?service=demo&limit=10", None)
        .await;
    assert_eq!(a.json()["paging"]["total"], 40, "{}", a.body);
    assert_eq!(a.json()["data"].as_array().unwrap().len(), 10);

    // The exported workflow runs as is with `sagebridge ingest`, its secret from the environment.
    let a = s
        .admin(
            M::GET,
            &format!("/api/v1/services/ingestionPipelines/{pipeline_id}/workflow.yaml"),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("${AWS_SECRET_ACCESS_KEY}"), "{}", a.body);
    let workflow = s.dir.path().join("nightly.yaml");
    std::fs::write(&workflow, &a.body).unwrap();
    let out = tokio::process::Command::new(sagebridge_bin())
        .args(["ingest", "-c"])
        .arg(&workflow)
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("SAGEBRIDGE_SECRET_KEY")
        .output()
        .await
        .expect("run sagebridge");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Serve a discovered endpoint; it answers on /v1 at once (the fake runtime serves it).
    let a = s.admin(M::GET, "/api/v1/gateway/discovered", None).await;
    let found = a.json()["data"].as_array().unwrap().clone();
    assert!(!found.is_empty(), "{}", a.body);
    let endpoint = found[0]["endpointName"].as_str().unwrap().to_owned();
    let a = s
        .admin(
            M::POST,
            "/api/v1/gateway/models",
            Some(json!({"name": "demo-chat", "kind": "chat",
            "format": "openai", "endpointName": endpoint})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["credentials"], "gateway");
    let a = s
        .admin(
            M::POST,
            "/api/v1/gateway/models",
            Some(json!({"name": "bad", "kind": "chat",
        "format": "tei", "endpointName": endpoint})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.json()["message"].as_str().unwrap().starts_with("format"),
        "{}",
        a.body
    );
    let a = s.admin(M::GET, "/api/v1/gateway/discovered", None).await;
    assert!(!a.body.contains(&format!("\"{endpoint}\"")), "{}", a.body);
    let chat = json!({"model": "demo-chat", "messages": [{"role": "user", "content": "hi"}]});
    let a = s
        .call(
            M::POST,
            "/v1/chat/completions",
            Some(FILE_KEY),
            Some(chat.clone()),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.json()["choices"][0]["message"]["content"].is_string(),
        "{}",
        a.body
    );
    let a = s
        .admin(M::POST, "/api/v1/gateway/models/demo-chat/check", None)
        .await;
    assert_eq!(a.json()["passed"], true, "{}", a.body);
    let a = s.admin(M::GET, "/api/v1/gateway/models", None).await;
    assert_eq!(
        a.json()["data"][0]["lastCheck"]["passed"],
        true,
        "{}",
        a.body
    );

    // A model with its own credentials: the secret is stored, never answered, and kept by an
    // update that leaves it out.
    let own_aws = json!({"awsRegion": "us-east-1", "awsAccessKeyId": "testing",
        "awsSecretAccessKey": SENTINEL, "endPointURL": s.fake.endpoint()});
    let a = s
        .admin(
            M::POST,
            "/api/v1/gateway/models",
            Some(json!({"name": "own-chat", "kind": "chat",
            "format": "openai", "endpointName": endpoint, "awsConfig": own_aws})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["credentials"], "own");
    assert_eq!(a.json()["secrets"]["awsSecretAccessKey"], true);
    let own_chat = json!({"model": "own-chat", "messages": [{"role": "user", "content": "hi"}]});
    let a = s
        .call(
            M::POST,
            "/v1/chat/completions",
            Some(FILE_KEY),
            Some(own_chat.clone()),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = s
        .admin(
            M::PUT,
            "/api/v1/gateway/models/own-chat",
            Some(json!({"kind": "chat",
            "format": "openai", "endpointName": endpoint, "maxTokens": 64,
            "awsConfig": {"awsRegion": "us-east-1", "awsAccessKeyId": "testing",
                "endPointURL": s.fake.endpoint()}})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["maxTokens"], 64);
    assert_eq!(
        a.json()["secrets"]["awsSecretAccessKey"],
        true,
        "{}",
        a.body
    );
    let a = s
        .call(
            M::POST,
            "/v1/chat/completions",
            Some(FILE_KEY),
            Some(own_chat),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = s
        .admin(
            M::PUT,
            "/api/v1/gateway/models/nope",
            Some(json!({"kind": "chat", "endpointName": "x"})),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.body);

    // SageMaker's API on moto and the runtime elsewhere (a runtime VPC endpoint): the check
    // describes the endpoint on moto and invokes it on the fake runtime.
    let a = s
        .admin(
            M::POST,
            "/api/v1/gateway/models",
            Some(json!({"name": "split-chat", "kind": "chat",
            "format": "openai", "endpointName": endpoint, "awsConfig": {"awsRegion": "us-east-1",
                "awsAccessKeyId": "testing", "awsSecretAccessKey": "testing",
                "endPointURL": s.moto.endpoint(), "runtimeEndPointURL": s.fake.endpoint()}})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = s
        .admin(
            M::POST,
            "/api/v1/gateway/models/split-chat/check?invoke=true",
            None,
        )
        .await;
    assert_eq!(a.json()["passed"], true, "{}", a.body);
    let split = json!({"model": "split-chat", "messages": [{"role": "user", "content": "hi"}]});
    let a = s
        .call(M::POST, "/v1/chat/completions", Some(FILE_KEY), Some(split))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);

    // Bad input names its field; unknown things are 404.
    for (body, field) in [
        (json!({"name": "old", "expiresAt": 1}), "expiresAt"),
        (
            json!({"name": "nope", "allowedModels": ["no-such-model"]}),
            "allowedModels",
        ),
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "colour": "red"}), "unknown field"),
    ] {
        let a = s.admin(M::POST, "/api/v1/gateway/keys", Some(body)).await;
        assert_eq!(a.status, 400, "{}", a.body);
        assert!(
            a.json()["message"].as_str().unwrap().contains(field),
            "{field}: {}",
            a.body
        );
    }
    let a = s
        .admin(M::DELETE, "/api/v1/gateway/keys/no-such-key", None)
        .await;
    assert_eq!(a.status, 404, "{}", a.body);
    let a = s
        .admin(
            M::GET,
            &format!("/api/v1/services/ingestionPipelines/{pipeline_id}/runs?limit=0"),
            None,
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.json()["message"].as_str().unwrap().starts_with("limit"),
        "{}",
        a.body
    );
    let a = s
        .admin(
            M::GET,
            &format!("/api/v1/services/ingestionPipelines/{pipeline_id}/runs/no-such-run"),
            None,
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.body);
    let a = s
        .admin(
            M::POST,
            "/api/v1/services/mlmodelServices/no-such-service/testConnection",
            None,
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.body);
    let a = s
        .admin(M::POST, "/api/v1/gateway/models/no-such-model/check", None)
        .await;
    assert_eq!(a.status, 404, "{}", a.body);

    // API keys: shown once, limited to a model, revoked.
    let a = s
        .admin(
            M::POST,
            "/api/v1/gateway/keys",
            Some(json!({"name": "app", "allowedModels": ["demo-chat"]})),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let key = a.json()["key"].as_str().unwrap().to_owned();
    let key_id = a.json()["id"].as_str().unwrap().to_owned();
    let listed = s.admin(M::GET, "/api/v1/gateway/keys", None).await;
    assert!(!listed.body.contains(&key), "the key is listed in clear");
    let a = s
        .call(
            M::POST,
            "/v1/chat/completions",
            Some(&key),
            Some(chat.clone()),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = s
        .call(
            M::POST,
            "/v1/chat/completions",
            Some(&key),
            Some(json!({"model": "other", "messages": []})),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.json()["error"]["code"], "model_not_allowed");
    let a = s
        .admin(M::DELETE, &format!("/api/v1/gateway/keys/{key_id}"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = s
        .call(
            M::POST,
            "/v1/chat/completions",
            Some(&key),
            Some(chat.clone()),
        )
        .await;
    assert_eq!(a.status, 401, "{}", a.body);
    // Deleting the model takes it off /v1 at once.
    let a = s
        .admin(M::DELETE, "/api/v1/gateway/models/demo-chat", None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = s
        .call(M::POST, "/v1/chat/completions", Some(FILE_KEY), Some(chat))
        .await;
    assert_eq!(a.status, 404, "{}", a.body);

    // The sentinel secret is in no response, no log line and not in the catalog file in clear.
    s.stop.trigger();
    s.control.shutdown().await;
    for body in s.bodies.lock().unwrap().iter() {
        assert!(
            !body.contains(SENTINEL),
            "a response holds the secret: {body}"
        );
    }
    let log = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        log.contains("pipeline run finished"),
        "the log was not captured"
    );
    assert!(!log.contains(SENTINEL), "the log holds the secret");
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(SENTINEL.len())
                .any(|w| w == SENTINEL.as_bytes()),
            "a catalog file holds the secret in clear"
        );
    }

    // A restart keeps the state and decrypts the secret; a wrong key is a clear error.
    let path = s.dir.path().join("catalog.db");
    let reopened = SqliteCatalog::open_with_key(&path, s.key.clone()).unwrap();
    let svc = reopened.service_by_name("demo").unwrap();
    assert_eq!(
        reopened
            .service_with_secrets(&svc.id)
            .unwrap()
            .aws_config
            .expose()["awsSecretAccessKey"],
        SENTINEL
    );
    assert_eq!(reopened.pipelines(None).unwrap().len(), 1);
    assert!(!reopened.pipeline_runs(&pipeline_id, 10).unwrap().is_empty());
    let wrong = SqliteCatalog::open_with_key(&path, SecretKey::generate());
    let message = match wrong {
        Ok(c) => c
            .service_with_secrets(&svc.id)
            .map(|_| ())
            .unwrap_err()
            .to_string(),
        Err(e) => e.to_string(),
    };
    assert!(message.to_lowercase().contains("key"), "{message}");
    assert!(!message.contains(SENTINEL));
    drop(s.fake);
}
