//! The `--json` outputs of `test-connection`, `ingest` and `models` are an interface people
//! script against: fields may be added, never renamed or dropped. These tests pin the names
//! (and JSON types) of the fields scripts read, through the real binary, so a rename fails here.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use sagebridge_testkit::fake_runtime::{Behaviour, EndpointBehaviour, FakeRuntime};
use sagebridge_testkit::fake_sagemaker::Failure;
use sagebridge_testkit::{FakeSageMaker, FakeSpec, MotoServer};
use serde_json::Value;

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Num,
    Arr,
    Obj,
    /// Present, a string or `null` (an optional value is written as `null`, not left out).
    StrOrNull,
}

/// Asserts that `value` has `key`, of `kind`.
fn field<'a>(value: &'a Value, key: &str, kind: Kind) -> &'a Value {
    let v = value
        .get(key)
        .unwrap_or_else(|| panic!("no `{key}` in {value}"));
    let ok = match kind {
        Kind::Str => v.is_string(),
        Kind::Bool => v.is_boolean(),
        Kind::Num => v.is_number(),
        Kind::Arr => v.is_array(),
        Kind::Obj => v.is_object(),
        Kind::StrOrNull => v.is_string() || v.is_null(),
    };
    assert!(ok, "`{key}` is not {kind:?}: {value}");
    v
}

fn fields(value: &Value, spec: &[(&str, Kind)]) {
    for (key, kind) in spec {
        field(value, key, *kind);
    }
}

/// Runs the binary without blocking the test's runtime (the fakes run on it).
async fn sagebridge(args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sagebridge"));
    cmd.args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("sagebridge finished within 120 s")
        .expect("run sagebridge")
}

/// Exit code and stdout as JSON.
async fn json(args: &[&str]) -> (i32, Value) {
    let out = sagebridge(args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn workflow(dir: &Path, endpoint: &str) -> PathBuf {
    let text = format!(
        "source:\n  type: sagemaker\n  serviceName: sm\n  serviceConnection:\n    config:\n      type: SageMaker\n      awsConfig:\n        awsAccessKeyId: testing\n        awsSecretAccessKey: testing\n        awsRegion: us-east-1\n        endPointURL: {endpoint}\n  sourceConfig:\n    config:\n      type: MlModelMetadata\nsink:\n  type: catalog\n  config:\n    path: {}\n",
        dir.join("c.db").display()
    );
    let p = dir.join("wf.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The run report of `ingest --json`.
fn run_report(r: &Value) {
    fields(
        r,
        &[
            ("runId", Kind::Str),
            ("service", Kind::Str),
            ("counts", Kind::Obj),
            ("failures", Kind::Arr),
            ("warnings", Kind::Arr),
            ("awsCalls", Kind::Obj),
            ("retries", Kind::Num),
            ("durationMs", Kind::Num),
            ("modelsPerSecond", Kind::Num),
            ("listingComplete", Kind::Bool),
            ("incremental", Kind::Num),
        ],
    );
    for count in [
        "listed",
        "filtered",
        "created",
        "updated",
        "unchanged",
        "deleted",
        "failed",
    ] {
        field(&r["counts"], count, Kind::Num);
    }
    for (api, n) in r["awsCalls"].as_object().unwrap() {
        assert!(n.is_u64(), "awsCalls.{api} is not a count: {r}");
    }
    for f in r["failures"].as_array().unwrap() {
        fields(
            f,
            &[
                ("model", Kind::Str),
                ("error", Kind::Str),
                ("errorKind", Kind::Str),
            ],
        );
    }
}

/// One `MlModel` document of `models list/show --json`.
fn ml_model(m: &Value) {
    fields(
        m,
        &[
            ("id", Kind::Str),
            ("name", Kind::Str),
            ("fullyQualifiedName", Kind::Str),
            ("algorithm", Kind::Str),
            ("service", Kind::Obj),
            ("serviceType", Kind::Str),
            ("deleted", Kind::Bool),
            ("version", Kind::Num),
            ("tags", Kind::Arr),
        ],
    );
    fields(&m["service"], &[("id", Kind::Str), ("type", Kind::Str)]);
    for t in m["tags"].as_array().unwrap() {
        field(t, "tagFQN", Kind::Str);
    }
}

// The fake runs in this test's runtime while the binary runs: it needs a worker of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_models_keep_their_field_names() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(3))
        .await
        .unwrap();
    // Models read one by one, so the per-model calls below are counted.
    fake.handle().disable_bulk_search();
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(dir.path(), &fake.endpoint());
    let wf = wf.to_str().unwrap();
    let db = dir.path().join("c.db");
    let db = db.to_str().unwrap();

    let (code, r) = json(&["ingest", "-c", wf, "--json"]).await;
    assert_eq!(code, 0, "{r}");
    run_report(&r);
    assert_eq!(r["service"], "sm");
    assert_eq!(r["counts"]["listed"], 3, "{r}");
    assert_eq!(r["counts"]["created"], 3, "{r}");
    assert_eq!(r["counts"]["failed"], 0, "{r}");
    assert_eq!(r["listingComplete"], true, "{r}");
    // Calls are counted per API, by the API's name.
    assert_eq!(r["awsCalls"]["ListModels"], 1, "{r}");
    assert_eq!(r["awsCalls"]["DescribeModel"], 3, "{r}");
    assert_eq!(r["awsCalls"]["GetResources"], 1, "{r}");
    assert_eq!(r["tagsFromIndex"], 3, "{r}");

    let (code, models) = json(&["models", "list", "--json", "--catalog", db]).await;
    assert_eq!(code, 0, "{models}");
    let models = models.as_array().expect("a JSON array of models");
    assert_eq!(models.len(), 3);
    for m in models {
        ml_model(m);
    }
    let name = models[0]["name"].as_str().unwrap();
    let (code, shown) = json(&["models", "show", name, "--json", "--catalog", db]).await;
    assert_eq!(code, 0, "{shown}");
    ml_model(&shown);
    assert_eq!(&shown, &models[0]);

    // A run with failures (exit 3) lists them with their cause.
    fake.handle().set_failure(
        "DescribeModel",
        Some(Failure::access_denied("sagemaker:DescribeModel")),
    );
    let (code, r) = json(&["ingest", "-c", wf, "--json", "--full"]).await;
    assert_eq!(code, 3, "{r}");
    run_report(&r);
    assert_eq!(r["counts"]["failed"], 3, "{r}");
    let failures = r["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 3, "{r}");
    assert_eq!(failures[0]["errorKind"], "AccessDenied", "{r}");
}

#[tokio::test]
async fn workflow_test_connection_keeps_its_field_names() {
    let moto = MotoServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(dir.path(), &moto.endpoint());
    let (code, report) = json(&["test-connection", "-c", wf.to_str().unwrap(), "--json"]).await;
    assert!(code == 0 || code == 1, "{report}");
    field(&report, "passed", Kind::Bool);
    let steps = field(&report, "steps", Kind::Arr).as_array().unwrap();
    assert!(!steps.is_empty(), "{report}");
    for s in steps {
        fields(
            s,
            &[
                ("name", Kind::Str),
                ("passed", Kind::Bool),
                ("mandatory", Kind::Bool),
                ("error", Kind::StrOrNull),
                ("errorKind", Kind::StrOrNull),
                ("detail", Kind::StrOrNull),
                ("durationMs", Kind::Num),
            ],
        );
        assert_eq!(
            s["error"].is_string(),
            s["passed"] == false,
            "a failed or skipped step says why, a passed one has no error: {s}"
        );
        let status = s["status"].as_str().unwrap_or_default();
        assert!(["passed", "failed", "skipped"].contains(&status), "{s}");
        assert_eq!(s["passed"] == true, status == "passed", "{s}");
    }
    // `passed` is "no mandatory step failed" (a step skipped for want of objects is no failure).
    let all_mandatory_passed = steps
        .iter()
        .all(|s| s["status"] != "failed" || s["mandatory"] == false);
    assert_eq!(report["passed"], all_mandatory_passed, "{report}");
    assert_eq!(code == 0, all_mandatory_passed, "{report}");
}

#[tokio::test]
async fn gateway_test_connection_keeps_its_field_names() {
    let fake = FakeRuntime::start().await.unwrap();
    fake.set("ep-ready", EndpointBehaviour::new(Behaviour::TgiChat));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sagebridge.yaml");
    std::fs::write(
        &config,
        format!(
            "awsConfig:\n  awsRegion: us-east-1\n  awsAccessKeyId: testing\n  awsSecretAccessKey: testing\n  endPointURL: {}\nmodels:\n  - {{name: ready, kind: chat, endpointName: ep-ready, format: tgi}}\n  - {{name: missing, kind: chat, endpointName: ep-missing, format: tgi}}\n",
            fake.endpoint()
        ),
    )
    .unwrap();
    let (code, report) = json(&["test-connection", "-c", config.to_str().unwrap(), "--json"]).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(field(&report, "passed", Kind::Bool), false);
    let steps = field(&report, "steps", Kind::Arr).as_array().unwrap();
    let (mut passed, mut failed) = (0, 0);
    for s in steps {
        fields(
            s,
            &[
                ("name", Kind::Str),
                ("passed", Kind::Bool),
                ("mandatory", Kind::Bool),
                ("durationMs", Kind::Num),
            ],
        );
        if s["passed"] == true {
            passed += 1;
        } else {
            failed += 1;
            fields(s, &[("error", Kind::Str), ("errorKind", Kind::Str)]);
        }
    }
    assert!(passed > 0 && failed > 0, "{report}");
}
