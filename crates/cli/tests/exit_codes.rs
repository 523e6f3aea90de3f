//! The exit codes of `sagebridge ingest` beyond success: 3 when a model fails and the run goes
//! on (the JSON report counts it), 1 when the run cannot go on (no report, the cause on
//! stderr). Against the testkit's fake SageMaker, which can fail one DescribeModel call.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sagebridge_testkit::{Failure, FakeOpenMetadata, FakeSageMaker, FakeSpec};

/// A workflow file for the fake at `endpoint`, with `sink` as its `sink:` section.
fn workflow(dir: &Path, endpoint: &str, sink: &str) -> PathBuf {
    let text = format!(
        "source:\n  type: sagemaker\n  serviceName: sm\n  serviceConnection:\n    config:\n      type: SageMaker\n      awsConfig:\n        awsAccessKeyId: testing\n        awsSecretAccessKey: testing\n        awsRegion: us-east-1\n        endPointURL: {endpoint}\n  sourceConfig:\n    config:\n      type: MlModelMetadata\n{sink}"
    );
    let p = dir.join("wf.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn catalog_sink(path: &Path) -> String {
    format!(
        "sink:\n  type: catalog\n  config:\n    path: {}\n",
        path.display()
    )
}

fn ingest(wf: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sagebridge"))
        .args(["ingest", "-c", wf.to_str().unwrap(), "--json"])
        .output()
        .unwrap()
}

fn report(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_model_exits_3_and_the_others_are_ingested() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(25))
        .await
        .unwrap();
    // One DescribeModel is denied (not retried); every other call answers. Models are read
    // one by one (no bulk Search), so DescribeModel is called.
    fake.handle().disable_bulk_search();
    fake.handle().set_failure(
        "DescribeModel",
        Some(Failure::access_denied("sagemaker:DescribeModel").times(1)),
    );
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(
        dir.path(),
        &fake.endpoint(),
        &catalog_sink(&dir.path().join("c.db")),
    );

    let out = ingest(&wf);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(3), "{r}");
    assert_eq!(r["counts"]["listed"], 25, "{r}");
    assert_eq!(r["counts"]["created"], 24, "{r}");
    assert_eq!(r["counts"]["failed"], 1, "{r}");
    assert_eq!(r["counts"]["deleted"], 0, "{r}");
    assert_eq!(r["listingComplete"], true, "{r}");
    assert_eq!(r["interrupted"], false, "{r}");
    let failures = r["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{r}");
    assert_eq!(failures[0]["errorKind"], "AccessDenied", "{r}");
    assert!(
        failures[0]["model"].as_str().unwrap().starts_with("model-"),
        "{r}"
    );
    assert_eq!(fake.handle().calls("DescribeModel"), 25);

    // The next run reads the failed model again and exits 0.
    let out = ingest(&wf);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r}");
    assert_eq!(r["counts"]["created"], 1, "{r}");
    assert_eq!(r["counts"]["unchanged"], 24, "{r}");
    assert_eq!(r["counts"]["failed"], 0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_catalog_path_exits_1_without_a_report() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(5))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The catalog's folder cannot be created: a file is in its way.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "").unwrap();
    let db = blocker.join("c.db");
    let wf = workflow(dir.path(), &fake.endpoint(), &catalog_sink(&db));

    let out = ingest(&wf);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no report on a fatal error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: catalog: "), "{err}");
    assert_eq!(fake.handle().calls("ListModels"), 0, "nothing was read");
    assert!(!db.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_openmetadata_exits_1_and_a_refused_token_too() {
    let fake = FakeSageMaker::start(FakeSpec::with_models(5))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let om_sink = |url: &str, token: &str| {
        format!(
            "sink:\n  type: metadata-rest\n  config: {{}}\nworkflowConfig:\n  openMetadataServerConfig:\n    hostPort: {url}/api\n    authProvider: openmetadata\n    securityConfig:\n      jwtToken: {token}\n"
        )
    };
    // Nothing listens on the discard port.
    let wf = workflow(
        dir.path(),
        &fake.endpoint(),
        &om_sink("http://127.0.0.1:9", "some-token"),
    );
    let out = ingest(&wf);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach OpenMetadata"), "{err}");

    let om = FakeOpenMetadata::start("the-right-token").await.unwrap();
    let wf = workflow(
        dir.path(),
        &fake.endpoint(),
        &om_sink(&om.url(), "a-wrong-token"),
    );
    let out = ingest(&wf);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("jwtToken"), "{err}");
    assert!(
        !err.contains("a-wrong-token") && !err.contains("the-right-token"),
        "{err}"
    );
    assert!(om.models().is_empty());
    assert_eq!(fake.handle().calls("DescribeModel"), 0);
}
