//! One ingestion run of a pipeline, started by the admin API or the scheduler.
//!
//! The run is recorded `queued` under a new id before anything else (the store refuses a second
//! active run of the pipeline atomically: that is the 409), then the task builds the workflow
//! from the stored service (secrets decrypted in memory only) and pipeline, runs it into this
//! catalog under the same id, and records progress and log lines every few hundred
//! milliseconds and the final status with the report at the end. A shutdown of `serve` stops
//! it at the next batch boundary: `interrupted`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sagebridge_catalog::{
    Catalog, ControlStore, NewRun, PipelineRun, RunProgress, RunStatus, RunTrigger, SqliteCatalog,
};
use sagebridge_ingest::config::WorkflowConfig;
use sagebridge_ingest::runner::{self, Progress, ProgressHook, RunOptions, RunReport};
use serde_json::{json, Value};

use super::ControlPlane;
use crate::admin::{workflow_document, AdminError};

/// How often a running run's progress and new log lines are written to the catalog.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Failures listed one per log line at the end of a run; the rest are counted.
const FAILURE_LINES: usize = 50;

/// Progress and log lines a run collects between two flushes.
#[derive(Default)]
struct Live {
    done: AtomicU64,
    /// `u64::MAX` until the listing finished.
    total: AtomicU64,
    lines: Mutex<Vec<String>>,
}

impl Live {
    fn new() -> Self {
        Self {
            total: AtomicU64::new(u64::MAX),
            ..Default::default()
        }
    }

    fn log(&self, line: impl Into<String>) {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.into());
    }

    fn progress(&self) -> RunProgress {
        let total = self.total.load(Ordering::Relaxed);
        RunProgress {
            models_done: self.done.load(Ordering::Relaxed),
            models_total: (total != u64::MAX).then_some(total),
        }
    }

    fn take_lines(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ControlPlane {
    /// Starts a run of pipeline `id` now. 404 for an unknown pipeline, 409 while the pipeline
    /// has a run queued or running. The answer is the run as recorded (`queued`).
    pub async fn trigger(
        self: &Arc<Self>,
        pipeline_id: &str,
        trigger: RunTrigger,
    ) -> Result<PipelineRun, AdminError> {
        let catalog = Arc::clone(&self.catalog);
        let id = pipeline_id.to_owned();
        let (run, workflow) = tokio::task::spawn_blocking(move || {
            let pipeline = catalog.pipeline(&id)?;
            let service = catalog.service_with_secrets(&pipeline.service_id)?;
            let doc = workflow_document(
                &pipeline,
                &service.service.name,
                service.aws_config.expose().clone(),
                catalog.path(),
            );
            let run = catalog.create_run(&NewRun::new(&pipeline.id, trigger))?;
            Ok::<_, AdminError>((run, doc))
        })
        .await
        .map_err(|e| AdminError::internal(format!("catalog task failed: {e}")))??;
        let me = Arc::clone(self);
        let run_id = run.run.id.clone();
        self.spawn_run(async move { me.execute(run_id, workflow).await });
        Ok(run)
    }

    /// Records a fire time that came while the pipeline was still running.
    pub(crate) async fn record_skipped(&self, pipeline_id: &str) -> Result<(), AdminError> {
        let catalog = Arc::clone(&self.catalog);
        let id = pipeline_id.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut run = NewRun::new(id, RunTrigger::Schedule);
            run.status = RunStatus::Skipped;
            catalog.create_run(&run).map(|_| ())
        })
        .await
        .map_err(|e| AdminError::internal(format!("catalog task failed: {e}")))??;
        Ok(())
    }

    /// The run task: from `queued` to a final status, whatever happens.
    async fn execute(self: Arc<Self>, run_id: String, workflow: Value) {
        let live = Arc::new(Live::new());
        let (status, report) = match self.run_workflow(&run_id, &workflow, &live).await {
            Ok(report) => {
                for line in report_lines(&report) {
                    live.log(line);
                }
                (final_status(&report), serde_json::to_value(&report).ok())
            }
            Err(message) => {
                live.log(format!("run failed: {message}"));
                (RunStatus::Failed, Some(json!({"error": message})))
            }
        };
        let catalog = Arc::clone(&self.catalog);
        let id = run_id.clone();
        let finished = tokio::task::spawn_blocking(move || {
            catalog.record_run_progress(&id, live.progress(), &live.take_lines())?;
            catalog.finish_run(&id, status, report.as_ref())
        })
        .await;
        match finished {
            Ok(Ok(run)) => {
                tracing::info!(run = %run_id, status = run.run.status.as_str(), "pipeline run finished")
            }
            Ok(Err(e)) => {
                tracing::error!(run = %run_id, error = %e, "could not record the end of a pipeline run")
            }
            Err(e) => {
                tracing::error!(run = %run_id, error = %e, "recording the end of a pipeline run failed")
            }
        }
    }

    /// Parses and runs the workflow, flushing progress while it goes.
    async fn run_workflow(
        &self,
        run_id: &str,
        workflow: &Value,
        live: &Arc<Live>,
    ) -> Result<RunReport, String> {
        let cfg = WorkflowConfig::parse("pipeline", &workflow.to_string(), &|_| None)
            .map_err(|e| format!("the stored pipeline is not a valid workflow: {e}"))?;
        self.blocking_store(run_id, |c, id| c.start_run(id).map(|_| ()))
            .await?;
        live.log(format!(
            "ingesting service {} from {}",
            cfg.source.service_name,
            cfg.aws().region()
        ));
        let hook_live = Arc::clone(live);
        let opts = RunOptions {
            progress: Some(ProgressHook(Arc::new(move |p| match p {
                Progress::Listed(n) => {
                    hook_live.total.store(n as u64, Ordering::Relaxed);
                    hook_live.log(format!("listed {n} models to read"));
                }
                Progress::ModelDone => {
                    hook_live.done.fetch_add(1, Ordering::Relaxed);
                }
            }))),
            shutdown: Some(self.run_shutdown()),
            run_id: Some(run_id.to_owned()),
            ..Default::default()
        };
        let catalog: Arc<dyn Catalog> = Arc::clone(&self.catalog) as Arc<dyn Catalog>;
        let run = runner::run_into(&cfg, catalog, &opts);
        tokio::pin!(run);
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        loop {
            tokio::select! {
                result = &mut run => return result.map_err(|e| e.to_string()),
                _ = tick.tick() => {
                    let progress = live.progress();
                    let lines = live.take_lines();
                    // A failed progress write only delays what the UI shows.
                    if let Err(e) = self
                        .blocking_store(run_id, move |c, id| c.record_run_progress(id, progress, &lines))
                        .await
                    {
                        tracing::debug!(run = %run_id, error = %e, "could not record run progress");
                    }
                }
            }
        }
    }

    async fn blocking_store<F>(&self, run_id: &str, f: F) -> Result<(), String>
    where
        F: FnOnce(&SqliteCatalog, &str) -> sagebridge_catalog::Result<()> + Send + 'static,
    {
        let catalog = Arc::clone(&self.catalog);
        let id = run_id.to_owned();
        tokio::task::spawn_blocking(move || f(&catalog, &id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// `success`; `partialSuccess` (failures, or a listing that stopped part way); `failed` when
/// the listing failed before any model was seen (nothing was read); or `interrupted`.
fn final_status(report: &RunReport) -> RunStatus {
    if report.interrupted {
        RunStatus::Interrupted
    } else if !report.listing_complete && report.counts.listed == 0 {
        RunStatus::Failed
    } else if report.exit_code() == 0 {
        RunStatus::Success
    } else {
        RunStatus::PartialSuccess
    }
}

/// The log lines that end a run: its failures and warnings, then the summary.
fn report_lines(report: &RunReport) -> Vec<String> {
    let mut lines: Vec<String> = report
        .failures
        .iter()
        .take(FAILURE_LINES)
        .map(|f| format!("failed: {}: {} ({})", f.model, f.error, f.error_kind))
        .collect();
    if report.failures.len() > FAILURE_LINES {
        lines.push(format!(
            "... and {} more failures (see the run report)",
            report.failures.len() - FAILURE_LINES
        ));
    }
    lines.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
    if report.interrupted {
        lines.push("stopped at a batch boundary: serve is shutting down".to_owned());
    }
    lines.push(report.summary());
    lines
}
