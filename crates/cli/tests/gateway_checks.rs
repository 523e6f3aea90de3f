//! `sagebridge test-connection -c sagebridge.yaml`: the gateway's model checks, through the
//! real binary, against moto (endpoints it creates are `InService`) and against the fake
//! runtime, which also answers DescribeEndpoint with any status (`Creating`, `Failed`), which
//! moto cannot produce.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use sagebridge_testkit::fake_runtime::{Behaviour, EndpointBehaviour, FakeRuntime, Fault};
use sagebridge_testkit::{sagemaker_client, seed, MotoServer, SeedSpec};
use serde_json::Value;

/// A gateway config with static test keys against `endpoint_url` and the given model lines.
fn gateway_yaml(dir: &Path, endpoint_url: &str, models: &[&str]) -> PathBuf {
    let mut text = format!(
        "awsConfig:\n  awsRegion: us-east-1\n  awsAccessKeyId: testing\n  awsSecretAccessKey: testing-secret-value\n  endPointURL: {endpoint_url}\nmodels:\n"
    );
    for m in models {
        text.push_str(&format!("  - {m}\n"));
    }
    let path = dir.join("sagebridge.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary without blocking the test's runtime (the fake runs on it).
async fn sagebridge(args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sagebridge"));
    cmd.args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("test-connection finished within 60 s")
        .expect("run sagebridge")
}

/// The JSON report of `test-connection --json` and the exit code.
async fn check_json(config: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["test-connection", "-c", config.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = sagebridge(&args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// The step of model `name` whose name contains `call`.
fn step<'a>(report: &'a Value, name: &str, call: &str) -> &'a Value {
    let prefix = format!("model {name}: {call}");
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with(&prefix))
        .unwrap_or_else(|| panic!("no step `{prefix}` in {report}"))
}

/// Asserts a failed step of `kind` whose message contains `needle`.
fn check_failed(report: &Value, name: &str, kind: &str, needle: &str) {
    let s = step(report, name, "DescribeEndpoint");
    assert_eq!(s["passed"], false, "{name}: {s}");
    assert_eq!(s["errorKind"], kind, "{name}: {s}");
    let error = s["error"].as_str().unwrap();
    assert!(error.contains(needle), "{name}: {error}");
    assert!(!error.contains("testing-secret-value"), "{name}: {error}");
}

#[tokio::test]
async fn fake_control_plane_tells_in_service_from_creating_failed_missing_and_denied() {
    let fake = FakeRuntime::start().await.unwrap();
    fake.set("ep-ready", EndpointBehaviour::new(Behaviour::TgiChat));
    fake.set(
        "ep-creating",
        EndpointBehaviour::new(Behaviour::TgiChat).status("Creating"),
    );
    fake.set(
        "ep-failed",
        EndpointBehaviour::new(Behaviour::TeiEmbed).status("Failed"),
    );
    fake.set(
        "ep-denied",
        EndpointBehaviour::new(Behaviour::TgiChat).fault(Fault::AccessDenied {
            principal: "arn:aws:iam::123456789012:user/limited".into(),
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = gateway_yaml(
        dir.path(),
        &fake.endpoint(),
        &[
            "{name: ready, kind: chat, endpointName: ep-ready, format: tgi}",
            "{name: creating, kind: chat, endpointName: ep-creating, format: tgi}",
            "{name: failed, kind: embedding, endpointName: ep-failed, format: tei}",
            "{name: missing, kind: chat, endpointName: ep-missing, format: tgi}",
            "{name: denied, kind: chat, endpointName: ep-denied, format: tgi}",
        ],
    );

    let (code, report) = check_json(&config, &[]).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["passed"], false);
    assert_eq!(report["steps"].as_array().unwrap().len(), 5, "{report}");
    let ready = step(&report, "ready", "DescribeEndpoint ep-ready");
    assert_eq!(ready["passed"], true, "{ready}");
    assert!(ready["errorKind"].is_null(), "{ready}");
    assert!(
        ready["detail"]
            .as_str()
            .unwrap()
            .starts_with("status InService"),
        "{ready}"
    );
    check_failed(
        &report,
        "creating",
        "NotInService",
        "endpoint `ep-creating` is Creating; invocations work only once it is InService",
    );
    check_failed(
        &report,
        "failed",
        "NotInService",
        "endpoint `ep-failed` is Failed: The primary container for production variant AllTraffic did not pass the ping health check",
    );
    check_failed(
        &report,
        "missing",
        "NotFound",
        "endpoint `ep-missing` not found in us-east-1; is it in another region or account?",
    );
    check_failed(
        &report,
        "denied",
        "AccessDenied",
        "arn:aws:iam::123456789012:user/limited",
    );

    // One model at a time: the InService one passes, with or without an invocation.
    let (code, report) = check_json(&config, &["--model", "ready"]).await;
    assert_eq!(
        (code, &report["passed"]),
        (0, &Value::Bool(true)),
        "{report}"
    );
    assert_eq!(report["steps"].as_array().unwrap().len(), 1);
    let (code, report) = check_json(&config, &["--model", "ready", "--invoke"]).await;
    assert_eq!(code, 0, "{report}");
    let invoked = step(&report, "ready", "InvokeEndpoint ep-ready (tgi)");
    assert_eq!(invoked["passed"], true, "{invoked}");
    assert_eq!(
        invoked["detail"],
        "the container answered a one-token chat request"
    );
    // An endpoint that is not InService is not invoked at all.
    let before = fake
        .invocations()
        .iter()
        .filter(|i| i.endpoint == "ep-creating")
        .count();
    let (code, report) = check_json(&config, &["--model", "creating", "--invoke"]).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["steps"].as_array().unwrap().len(), 1, "{report}");
    check_failed(&report, "creating", "NotInService", "is Creating");
    let after = fake
        .invocations()
        .iter()
        .filter(|i| i.endpoint == "ep-creating")
        .count();
    assert_eq!(before, after);

    // The table: one line per step, `ok` or `FAILED` with the reason.
    let out = sagebridge(&["test-connection", "-c", config.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("model {name}:")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{table}"))
            .to_owned()
    };
    assert!(line("ready").contains(" ok "), "{table}");
    assert!(
        line("failed").contains("FAILED") && line("failed").contains("is Failed"),
        "{table}"
    );
    assert!(
        line("missing").contains("not found in us-east-1"),
        "{table}"
    );
}

#[tokio::test]
async fn moto_endpoint_in_service_passes_and_missing_is_not_found() {
    let moto = MotoServer::start().await.unwrap();
    let client = sagemaker_client(&moto.endpoint(), None);
    let spec = SeedSpec {
        models: 3,
        tags_per_model: 1,
        with_training_jobs: false,
        with_feature_groups: false,
        with_endpoints: true,
        multi_container: false,
        name_prefix: "gw-".to_owned(),
        ..SeedSpec::demo()
    };
    let seeded = seed(&client, &spec).await.unwrap();
    // Whichever endpoint the seed created: moto makes every endpoint InService at once.
    let endpoint = &seeded
        .endpoints
        .first()
        .expect("the seed created an endpoint")
        .name;
    let dir = tempfile::tempdir().unwrap();
    let config = gateway_yaml(
        dir.path(),
        &moto.endpoint(),
        &[
            &format!("{{name: llm, kind: chat, endpointName: {endpoint}, format: tgi}}"),
            "{name: gone, kind: embedding, endpointName: gw-deleted-endpoint, format: tei}",
        ],
    );
    let (code, report) = check_json(&config, &[]).await;
    assert_eq!(code, 1, "{report}");
    let ok = step(&report, "llm", &format!("DescribeEndpoint {endpoint}"));
    assert_eq!(ok["passed"], true, "{ok}");
    assert!(
        ok["detail"]
            .as_str()
            .unwrap()
            .starts_with("status InService"),
        "{ok}"
    );
    check_failed(
        &report,
        "gone",
        "NotFound",
        "endpoint `gw-deleted-endpoint` not found in us-east-1",
    );
    let (code, report) = check_json(&config, &["--model", "llm"]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["passed"], true);
    // A model name that is not in the config is a failure of its own, not an empty pass.
    let (code, report) = check_json(&config, &["--model", "nope"]).await;
    assert_eq!(code, 1, "{report}");
    assert!(report["steps"][0]["error"]
        .as_str()
        .unwrap()
        .contains("no model named `nope` in the config; configured: llm, gone"));
}
