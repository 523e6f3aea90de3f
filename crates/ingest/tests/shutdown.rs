//! A run told to stop (`RunOptions::shutdown`) stops at a batch boundary: the batches written
//! stay, nothing more is written, nothing is marked deleted, and the report says
//! `interrupted`. Against the testkit's fake SageMaker, into a real SQLite catalog.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sagebridge_catalog::{Catalog, ListQuery, RunStatus, SqliteCatalog};
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::runner::{run_into, Progress, ProgressHook, RunOptions};
use sagebridge_ingest::shutdown;
use sagebridge_testkit::{FakeSageMaker, FakeSpec};

fn workflow(endpoint: &str) -> WorkflowConfig {
    let text = format!(
        "source:
  type: sagemaker
  serviceName: sm
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: testing
        awsSecretAccessKey: testing
        awsRegion: us-east-1
        endPointURL: {endpoint}
  sourceConfig:
    config:
      type: MlModelMetadata
      markDeletedMlModels: true
"
    );
    WorkflowConfig::parse("wf.yaml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

fn live_models(catalog: &SqliteCatalog) -> u64 {
    catalog
        .count_models(&ListQuery {
            service: Some("sm".into()),
            ..Default::default()
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_told_to_stop_before_it_starts_writes_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());
    // A first, complete run of 40 models.
    let before = FakeSageMaker::start(FakeSpec::with_models(40))
        .await
        .unwrap();
    let report = run_into(
        &workflow(&before.endpoint()),
        catalog.clone(),
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.counts.created, 40);
    assert!(!report.interrupted);

    // The account now has 10 of them (others gone: a complete run would mark 30 deleted).
    let after = FakeSageMaker::start(FakeSpec::with_models(10))
        .await
        .unwrap();
    let (trigger, signal) = shutdown::channel();
    trigger.trigger();
    let opts = RunOptions {
        shutdown: Some(signal),
        full: true,
        ..Default::default()
    };
    let report = run_into(&workflow(&after.endpoint()), catalog.clone(), &opts)
        .await
        .unwrap();
    assert!(report.interrupted, "{report:?}");
    assert_eq!(report.counts.listed, 10);
    assert_eq!(
        report.counts.created + report.counts.updated + report.counts.unchanged,
        0
    );
    assert_eq!(report.counts.deleted, 0, "{report:?}");
    assert_eq!(report.exit_code(), 3);
    assert!(
        report.summary().contains("interrupted"),
        "{}",
        report.summary()
    );
    assert_eq!(serde_json::to_value(&report).unwrap()["interrupted"], true);
    assert_eq!(
        after.handle().calls("DescribeModel"),
        0,
        "no model was read"
    );
    assert_eq!(live_models(&catalog), 40, "nothing was marked deleted");
    let runs = catalog.list_runs(Some("sm"), 10).unwrap();
    let last = runs.iter().find(|r| r.id == report.run_id).unwrap();
    assert_eq!(last.status, RunStatus::PartialSuccess);
    assert_eq!(last.report["interrupted"], true);

    // Without the signal the same run marks the 30 deleted: the skip above was the shutdown.
    // (30 of 40 is more than markDeletedMaxFraction allows by default: this run allows it.)
    let report = run_into(
        &workflow(&after.endpoint()),
        catalog.clone(),
        &RunOptions {
            allow_mass_delete: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!report.interrupted);
    assert_eq!(report.counts.deleted, 30, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_told_to_stop_midway_keeps_the_batches_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());
    let sagemaker = FakeSageMaker::start(FakeSpec::with_models(450))
        .await
        .unwrap();
    let (trigger, signal) = shutdown::channel();
    // Told to stop while the second batch (models 201-400) is being gathered.
    let done = Arc::new(AtomicUsize::new(0));
    let hook = {
        let done = done.clone();
        ProgressHook(Arc::new(move |p| {
            if p == Progress::ModelDone && done.fetch_add(1, Ordering::SeqCst) + 1 == 250 {
                trigger.trigger();
            }
        }))
    };
    let opts = RunOptions {
        progress: Some(hook),
        shutdown: Some(signal),
        ..Default::default()
    };
    let report = run_into(&workflow(&sagemaker.endpoint()), catalog.clone(), &opts)
        .await
        .unwrap();
    assert!(report.interrupted, "{report:?}");
    assert_eq!(report.counts.listed, 450);
    // The first batch of 200 was written whole; the second was dropped at the signal.
    assert_eq!(report.counts.created, 200, "{report:?}");
    assert_eq!(report.counts.failed, 0, "{report:?}");
    assert_eq!(report.counts.deleted, 0);
    assert_eq!(
        done.load(Ordering::SeqCst),
        250,
        "no model was handled after the signal"
    );
    assert_eq!(live_models(&catalog), 200);
    assert_eq!(report.exit_code(), 3);
}
