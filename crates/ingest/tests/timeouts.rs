//! A half-open socket never hangs a run: against a server on 127.0.0.1 that accepts connections
//! and never answers, each AWS call attempt ends at `attemptTimeoutSeconds` and the call at
//! `operationTimeoutSeconds`; the run reports the listing as failed and marks nothing deleted.
//! And an enrichment index that is still loading at `enrichmentDeadlineSeconds` is skipped for
//! the run: the models are read and written without it.

use std::sync::Arc;

use sagebridge_catalog::SqliteCatalog;
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::runner::{run_into, RunOptions};

/// Accepts up to 64 connections and holds them open without a byte of answer.
async fn stalling_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while held.len() < 64 {
            match listener.accept().await {
                Ok((socket, _)) => held.push(socket),
                Err(_) => break,
            }
        }
        std::future::pending::<()>().await;
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_ends_the_call_not_the_run() {
    let (url, server) = stalling_server().await;
    let text = format!(
        "source:
  type: sagemaker
  serviceName: stalled
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: testing
        awsSecretAccessKey: testing
        awsRegion: us-east-1
        endPointURL: {url}
  sourceConfig:
    config:
      type: MlModelMetadata
      attemptTimeoutSeconds: 1
      operationTimeoutSeconds: 2
"
    );
    let cfg = WorkflowConfig::parse("wf.yaml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());
    let report = run_into(&cfg, catalog, &RunOptions::default())
        .await
        .unwrap();
    assert!(!report.listing_complete, "{report:?}");
    assert_eq!(report.counts.deleted, 0);
    assert_eq!(report.exit_code(), 3);
    let listing = &report.failures[0];
    assert!(
        listing.error.to_lowercase().contains("timeout")
            || listing.error.to_lowercase().contains("timed out"),
        "{listing:?}"
    );
    server.abort();
}

#[test]
fn the_enrichment_deadline_is_at_least_a_second() {
    let text = "source:
  type: sagemaker
  serviceName: s
  serviceConnection: {config: {type: SageMaker, awsConfig: {awsRegion: us-east-1}}}
  sourceConfig:
    config: {type: MlModelMetadata, enrichmentDeadlineSeconds: 0}
";
    let e = WorkflowConfig::parse("wf.yaml", text, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("enrichmentDeadlineSeconds"), "{e}");
}

#[test]
fn the_operation_covers_its_attempts() {
    let text = "source:
  type: sagemaker
  serviceName: s
  serviceConnection: {config: {type: SageMaker, awsConfig: {awsRegion: us-east-1}}}
  sourceConfig:
    config: {type: MlModelMetadata, attemptTimeoutSeconds: 10, operationTimeoutSeconds: 5}
";
    let e = WorkflowConfig::parse("wf.yaml", text, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("operationTimeoutSeconds"), "{e}");
}

/// ListFeatureGroups answers only after ten minutes: at the 1 s enrichment deadline the run
/// stops waiting for it, links no features, says so once, and every model is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_still_loading_at_the_enrichment_deadline_is_skipped_not_awaited() {
    use sagebridge_testkit::{FakeSageMaker, FakeSpec};
    let fake = FakeSageMaker::start(FakeSpec {
        endpoints: 3,
        ..FakeSpec::with_models(20)
    })
    .await
    .unwrap();
    fake.handle().set_op_latency(
        "ListFeatureGroups",
        Some(std::time::Duration::from_secs(600)),
    );
    let text = format!(
        "source:
  type: sagemaker
  serviceName: late
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: testing
        awsSecretAccessKey: testing
        awsRegion: us-east-1
        endPointURL: {}
  sourceConfig:
    config:
      type: MlModelMetadata
      enrichmentDeadlineSeconds: 1
      attemptTimeoutSeconds: 900
      operationTimeoutSeconds: 900
",
        fake.endpoint()
    );
    let cfg = WorkflowConfig::parse("wf.yaml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());
    // A guard against a hang (the stalled calls would take ten minutes), not a timing check.
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        run_into(&cfg, catalog.clone(), &RunOptions::default()),
    )
    .await
    .expect("the run waited for the stalled index")
    .unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.summary());
    assert_eq!(report.counts.created, 20, "{}", report.summary());
    assert_eq!(report.models_from_search, 20);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let w = &report.warnings[0];
    assert!(
        w.starts_with("enrichments still loading after the 1 s enrichment deadline were skipped")
            && w.ends_with(": ML features"),
        "{w}"
    );
    assert_eq!(fake.handle().calls("DescribeModel"), 0);
    use sagebridge_catalog::{Catalog, ListQuery};
    let models = catalog
        .list_models(&ListQuery {
            service: Some("late".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(models.len(), 20);
}
