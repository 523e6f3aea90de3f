//! The scheduler of `serve` with a paused tokio clock: a due pipeline fires at its cron time
//! (trigger `schedule`), a fire time that comes while the pipeline runs is recorded `skipped`,
//! a disabled pipeline never fires, and a restart marks the run a crash left `running` as
//! interrupted and keeps the history.
//!
//! The pipelines' service points at a closed port on 127.0.0.1, so their runs fail at once,
//! without AWS: the test is about when runs start, not what they do.

use std::sync::Arc;
use std::time::Duration;

use sagebridge_catalog::{
    ClearAwsConfig, ControlStore, NewRun, PipelineInput, RunStatus, RunTrigger, SecretKey,
    ServiceInput, SqliteCatalog,
};
use sagebridge_ingest::shutdown;
use sagebridge_server::control::Clock;
use sagebridge_server::ControlPlane;
use serde_json::json;

/// 2026-01-05T10:00:30Z: the first hourly fire time is 29.5 minutes away.
const START: i64 = 1_767_607_230;

/// Epoch seconds from the paused tokio clock, starting at [`START`].
fn paused_clock(origin: tokio::time::Instant) -> Clock {
    Arc::new(move || START + i64::try_from(origin.elapsed().as_secs()).unwrap_or(0))
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn setup(catalog: &SqliteCatalog) -> (String, String) {
    let service = catalog
        .create_service(&ServiceInput {
            name: "sched".into(),
            description: None,
            aws_config: ClearAwsConfig::new(json!({
                "awsRegion": "us-east-1",
                "awsAccessKeyId": "testing",
                "awsSecretAccessKey": "testing",
                "endPointURL": format!("http://127.0.0.1:{}", closed_port()),
            })),
        })
        .unwrap();
    let pipeline = |name: &str, enabled: bool| PipelineInput {
        name: name.into(),
        service_id: service.id.clone(),
        description: None,
        source_config: json!({"type": "MlModelMetadata"}),
        schedule: Some("30 * * * *".into()),
        enabled,
    };
    let hourly = catalog.create_pipeline(&pipeline("hourly", true)).unwrap();
    let paused = catalog.create_pipeline(&pipeline("paused", false)).unwrap();
    (hourly.id, paused.id)
}

/// Moves the paused clock on by `secs`, a minute at a time, letting the tasks run.
async fn advance(secs: u64) {
    for _ in 0..secs / 60 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

/// Waits (virtual time, bounded) until the pipeline has no active run.
async fn settle(catalog: &SqliteCatalog, pipeline: &str) {
    for _ in 0..600 {
        if catalog.active_run(pipeline).unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the run of {pipeline} did not end");
}

fn base_config() -> sagebridge_gateway::GatewayConfig {
    sagebridge_gateway::config::load_str("sagebridge.yaml", "server: {}\n", &|_| None).unwrap()
}

#[tokio::test(start_paused = true)]
async fn due_runs_fire_overlaps_are_skipped_and_a_restart_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let key = SecretKey::generate();
    let catalog = Arc::new(SqliteCatalog::open_with_key(&path, key.clone()).unwrap());
    let (hourly, paused) = setup(&catalog);
    let origin = tokio::time::Instant::now();

    let control =
        ControlPlane::new(Arc::clone(&catalog), base_config(), paused_clock(origin)).unwrap();
    let (stop, signal) = shutdown::channel();
    control.start(signal).unwrap();

    // Before 10:30 nothing fires.
    advance(25 * 60).await;
    assert!(catalog.pipeline_runs(&hourly, 10).unwrap().is_empty());
    // At 10:30 the enabled pipeline fires (and fails fast: nothing listens on its endpoint).
    advance(6 * 60).await;
    settle(&catalog, &hourly).await;
    let runs = catalog.pipeline_runs(&hourly, 10).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].trigger, RunTrigger::Schedule);
    assert_eq!(runs[0].run.status, RunStatus::Failed, "{runs:?}");
    assert!(catalog.pipeline_runs(&paused, 10).unwrap().is_empty());

    // A run still going at 11:30 (started by hand here) makes that fire time `skipped`.
    let mut manual = NewRun::new(&hourly, RunTrigger::Manual);
    manual.status = RunStatus::Running;
    let manual = catalog.create_run(&manual).unwrap();
    advance(60 * 60).await;
    let runs = catalog.pipeline_runs(&hourly, 10).unwrap();
    let skipped: Vec<_> = runs
        .iter()
        .filter(|r| r.run.status == RunStatus::Skipped)
        .collect();
    assert_eq!(skipped.len(), 1, "{runs:?}");
    assert_eq!(skipped[0].trigger, RunTrigger::Schedule);
    assert_eq!(runs.len(), 3, "{runs:?}");

    // A crash leaves the manual run `running`; the next start marks it interrupted and keeps the
    // history; the scheduler goes on firing (12:30).
    stop.trigger();
    control.shutdown().await;
    drop(control);
    let reopened = Arc::new(SqliteCatalog::open_with_key(&path, key).unwrap());
    let control =
        ControlPlane::new(Arc::clone(&reopened), base_config(), paused_clock(origin)).unwrap();
    let (_stop, signal) = shutdown::channel();
    control.start(signal).unwrap();
    let after = reopened.pipeline_run(&manual.run.id).unwrap();
    assert_eq!(after.run.status, RunStatus::Interrupted);
    assert_eq!(reopened.pipeline_runs(&hourly, 10).unwrap().len(), 3);
    advance(60 * 60).await;
    settle(&reopened, &hourly).await;
    let runs = reopened.pipeline_runs(&hourly, 10).unwrap();
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert_eq!(runs[0].trigger, RunTrigger::Schedule);
    assert!(reopened.pipeline_runs(&paused, 10).unwrap().is_empty());
}
