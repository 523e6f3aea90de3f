//! What keeps a run from losing or corrupting what the catalog holds, against the testkit's fake
//! SageMaker into a real SQLite catalog:
//! - a run never deletes what an implausible listing did not see: when more than
//!   `markDeletedMaxFraction` of a service's live models are gone from a complete listing (a
//!   wrong region, role or filter), nothing is marked deleted, the report says why and the exit
//!   code is 3, unless the run allows it;
//! - a name listed twice (a listing that shifted while it was paged) is read once;
//! - two runs of one service never interleave (the catalog's service lock);
//! - a model whose training job could not be read is read again next run.

use std::sync::Arc;

use sagebridge_catalog::{Catalog, ListQuery, SqliteCatalog};
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::runner::{run_into, RunOptions};
use sagebridge_testkit::{FakeSageMaker, FakeSpec};

fn workflow(endpoint: &str, extra: &str) -> WorkflowConfig {
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
{extra}"
    );
    WorkflowConfig::parse("wf.yaml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

fn live(catalog: &SqliteCatalog) -> u64 {
    catalog
        .count_models(&ListQuery {
            service: Some("sm".into()),
            ..Default::default()
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_lost_most_models_deletes_none_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());
    let forty = FakeSageMaker::start(FakeSpec::with_models(40))
        .await
        .unwrap();
    let report = run_into(
        &workflow(&forty.endpoint(), ""),
        catalog.clone(),
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((report.counts.created, report.exit_code()), (40, 0));

    // The same service now lists 10 of the 40: 30 of 40 would go, more than half.
    let ten = FakeSageMaker::start(FakeSpec::with_models(10))
        .await
        .unwrap();
    let wf = workflow(&ten.endpoint(), "");
    let report = run_into(&wf, catalog.clone(), &RunOptions::default())
        .await
        .unwrap();
    assert!(report.listing_complete);
    assert_eq!(report.counts.deleted, 0);
    assert_eq!(report.exit_code(), 3);
    let why = report.mass_delete_refused.as_deref().expect("refused");
    assert!(
        why.contains("30 of the service's 40 live models") && why.contains("--allow-mass-delete"),
        "{why}"
    );
    assert!(
        report.summary().contains("mark-deleted refused"),
        "{}",
        report.summary()
    );
    assert_eq!(live(&catalog), 40);

    // A higher threshold in the workflow lets it through.
    let lenient = workflow(&ten.endpoint(), "      markDeletedMaxFraction: 0.8\n");
    let report = run_into(
        &lenient,
        catalog.clone(),
        &RunOptions {
            full: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (report.counts.deleted, report.exit_code()),
        (30, 0),
        "{}",
        report.summary()
    );
    assert_eq!(live(&catalog), 10);

    // Back to 40, then down to 10 again: allowed explicitly.
    run_into(
        &workflow(&forty.endpoint(), ""),
        catalog.clone(),
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(live(&catalog), 40);
    let allow = RunOptions {
        allow_mass_delete: true,
        ..Default::default()
    };
    let report = run_into(&wf, catalog.clone(), &allow).await.unwrap();
    assert_eq!((report.counts.deleted, report.exit_code()), (30, 0));
    assert_eq!(report.mass_delete_refused, None);

    // A small share goes as before: 2 of 10.
    let eight = FakeSageMaker::start(FakeSpec::with_models(8))
        .await
        .unwrap();
    let report = run_into(
        &workflow(&eight.endpoint(), ""),
        catalog.clone(),
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((report.counts.deleted, report.exit_code()), (2, 0));
    assert_eq!(live(&catalog), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_listed_twice_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());
    let fake = FakeSageMaker::start(FakeSpec::with_models(250))
        .await
        .unwrap();
    fake.handle().overlap_list_models_pages(1);
    let report = run_into(
        &workflow(&fake.endpoint(), ""),
        catalog.clone(),
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.counts.listed, 250, "{}", report.summary());
    assert_eq!(report.counts.created, 250);
    assert!(
        report.warnings.iter().any(|w| w.contains("more than once")),
        "{:?}",
        report.warnings
    );
    assert_eq!(live(&catalog), 250);
}

#[test]
fn the_threshold_is_a_share() {
    let text = "source:
  type: sagemaker
  serviceName: sm
  serviceConnection: {config: {type: SageMaker, awsConfig: {awsRegion: us-east-1}}}
  sourceConfig:
    config:
      type: MlModelMetadata
      markDeletedMaxFraction: 1.5
";
    let e = WorkflowConfig::parse("wf.yaml", text, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("wf.yaml:") && e.contains("markDeletedMaxFraction"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_of_one_service_never_interleave() {
    use sagebridge_catalog::CatalogError;
    use sagebridge_ingest::runner::RunError;
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());
    let fake = FakeSageMaker::start(FakeSpec::with_models(20))
        .await
        .unwrap();
    let wf = workflow(&fake.endpoint(), "");
    let now = sagebridge_aws::clock::now_millis();

    // Another run (another process) holds the service and showed life a second ago.
    catalog
        .lock_service("sm", "other-run", "pid 4242", now - 1_000, 600_000, &|_| {
            false
        })
        .unwrap();
    let e = run_into(&wf, catalog.clone(), &RunOptions::default())
        .await
        .unwrap_err();
    match &e {
        RunError::Catalog(CatalogError::ServiceBusy { run_id, holder, .. }) => {
            assert_eq!(
                (run_id.as_str(), holder.as_str()),
                ("other-run", "pid 4242")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("wait for it to end"), "{e}");
    assert_eq!(live(&catalog), 0, "the refused run wrote nothing");
    assert!(
        catalog.list_runs(Some("sm"), 10).unwrap().is_empty(),
        "and recorded no run"
    );

    // A lock whose holder stopped showing life 20 minutes ago (a crash) is taken over.
    catalog.unlock_service("sm", "other-run").unwrap();
    catalog
        .lock_service(
            "sm",
            "crashed-run",
            "pid 1",
            now - 20 * 60_000,
            600_000,
            &|_| false,
        )
        .unwrap();
    let report = run_into(&wf, catalog.clone(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.counts.created, 20);
    // The run released the lock: the next run goes.
    let report = run_into(&wf, catalog.clone(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 0);
    catalog
        .lock_service(
            "sm",
            "next",
            "pid 2",
            sagebridge_aws::clock::now_millis(),
            600_000,
            &|_| false,
        )
        .unwrap();
}

/// A run killed with `kill -9` leaves its lock behind, fresh: the next run on the same host
/// sees that the holder's process is gone and takes it over at once instead of waiting ten
/// minutes for it to go stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_of_a_killed_process_on_this_host_is_taken_over_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());
    let fake = FakeSageMaker::start(FakeSpec::with_models(5))
        .await
        .unwrap();
    let wf = workflow(&fake.endpoint(), "");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    // A real process that has exited: its pid is known not to exist any more.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let now = sagebridge_aws::clock::now_millis();
    catalog
        .lock_service(
            "sm",
            "killed-run",
            &format!("pid {dead_pid} on {host}"),
            now,
            600_000,
            &|_| false,
        )
        .unwrap();
    let report = run_into(&wf, catalog.clone(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.counts.created, 5);

    // A live holder on this host (this test process) is waited for, as before.
    catalog
        .lock_service(
            "sm",
            "live-run",
            &format!("pid {} on {host}", std::process::id()),
            sagebridge_aws::clock::now_millis(),
            600_000,
            &|_| false,
        )
        .unwrap();
    let e = run_into(&wf, catalog.clone(), &RunOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("live-run"), "{e}");
}

/// A training job whose read failed (not "not found") leaves its model incomplete: the next run
/// reads it again instead of trusting the stored facts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_training_job_read_is_retried_next_run() {
    use sagebridge_testkit::Failure;
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());
    let fake = FakeSageMaker::start(FakeSpec::with_models(5))
        .await
        .unwrap();
    let handle = fake.handle();
    // Training jobs read one by one (Search would read them in bulk).
    handle.disable_bulk_search();
    handle.set_failure(
        "DescribeTrainingJob",
        Some(Failure {
            status: 400,
            error_type: "ResourceLimitExceeded".into(),
            message: "too many concurrent reads".into(),
            times: None,
        }),
    );
    let wf = workflow(&fake.endpoint(), "");
    let report = run_into(&wf, catalog.clone(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.counts.created, 5, "{}", report.summary());
    let facts = catalog.stored_facts("sm", "model-00000").unwrap().unwrap();
    assert!(facts.contains("trainingJob"), "{facts}");
    let model = catalog
        .get_model(Some("sm"), "model-00000")
        .unwrap()
        .unwrap();
    assert!(model.ml_hyper_parameters.is_empty());

    // The API recovers: the incomplete models are described again and get their training job.
    handle.set_failure("DescribeTrainingJob", None);
    let described = handle.calls("DescribeModel");
    let report = run_into(&wf, catalog.clone(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.summary());
    assert_eq!(
        handle.calls("DescribeModel") - described,
        5,
        "each model read again"
    );
    let model = catalog
        .get_model(Some("sm"), "model-00000")
        .unwrap()
        .unwrap();
    assert!(!model.ml_hyper_parameters.is_empty(), "{model:?}");
    // Complete now: a third run trusts the stored facts.
    let described = handle.calls("DescribeModel");
    run_into(&wf, catalog.clone(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(handle.calls("DescribeModel"), described);
}
