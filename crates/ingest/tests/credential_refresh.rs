//! Assumed-role credentials that expire in the middle of a run are refreshed by the SDK's
//! identity cache without a failed call (issue: hardening §9). STS is moto, which honours a
//! short `DurationSeconds`; SageMaker is the testkit's fake with latency, so one run outlives
//! several credential lifetimes.
//!
//! The SDK's identity cache renews credentials 5 to 10 s before they expire (a 10 s buffer
//! less up to 5 s of jitter); with a 15 s lifetime each set is used for 5 to 10 s, so a run of
//! at least 14 s (120 calls one at a time, each answered after 120 ms) must assume the role at
//! least twice.

use std::sync::Arc;
use std::time::Duration;

use sagebridge_catalog::SqliteCatalog;
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::runner::{run_into, RunOptions};
use sagebridge_testkit::{count, FakeSageMaker, FakeSpec, MotoServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_longer_than_its_credentials_assumes_the_role_again_and_fails_nothing() {
    let moto = MotoServer::start().await.unwrap();
    moto.start_recording().await.unwrap();
    let fake = FakeSageMaker::start(FakeSpec::with_models(40))
        .await
        .unwrap();
    fake.handle().disable_bulk_search();
    fake.handle().set_latency(Duration::from_millis(120));
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
        endPointURL: {sagemaker}
        stsEndPointURL: {sts}
        assumeRoleArn: arn:aws:iam::123456789012:role/sagebridge-reader
        assumeRoleDurationSeconds: 15
  sourceConfig:
    config:
      type: MlModelMetadata
      concurrency: 1
",
        sagemaker = fake.endpoint(),
        sts = moto.endpoint()
    );
    let wf = WorkflowConfig::parse("wf.yaml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());

    let report = run_into(&wf, catalog, &RunOptions::default())
        .await
        .unwrap();

    assert_eq!(report.counts.created, 40, "{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.exit_code(), 0);
    let assumed = count(&moto.recording().await.unwrap(), "AssumeRole");
    assert!(
        assumed >= 2,
        "credentials of 15 s over a {} ms run: the role is assumed again (got {assumed})",
        report.duration_ms
    );
}
