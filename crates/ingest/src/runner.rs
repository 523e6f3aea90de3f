//! One ingestion run: list, filter, gather facts with bounded concurrency, map, write to the
//! catalog in transactions, mark deleted, report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use sagebridge_aws::{ClientOptions, Clients};
use sagebridge_catalog::{
    new_id, Catalog, IngestionRun, MlModelService, ModelWrite, RunStatus, SqliteCatalog,
    WriteOutcome,
};
use serde::Serialize;

use crate::config::{MlModelMetadataConfig, WorkflowConfig};
use crate::facts::ModelFacts;
use crate::mapping::{redact, to_ml_model, ServiceRef};
use crate::openmetadata::{OmError, OpenMetadata};
use crate::source::Source;

/// Models written to the catalog per transaction.
const BATCH: usize = 200;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub listed: usize,
    pub filtered: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub model: String,
    pub error: String,
    #[serde(rename = "errorKind")]
    pub error_kind: String,
}

/// What a run did. Printed, stored with the run, and returned by `--json`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub run_id: String,
    pub service: String,
    pub counts: Counts,
    pub failures: Vec<Failure>,
    pub warnings: Vec<String>,
    pub aws_calls: BTreeMap<String, u64>,
    pub retries: u64,
    pub duration_ms: u64,
    pub models_per_second: f64,
    /// False when ListModels failed part way: nothing was marked deleted then.
    pub listing_complete: bool,
    /// Models rebuilt from their stored facts (same ARN and creation time as last run), for
    /// which only the tags were read again. Zero with `--full`.
    pub incremental: usize,
}

impl RunReport {
    /// 0 success, 3 completed with failures.
    pub fn exit_code(&self) -> u8 {
        if self.counts.failed > 0 || !self.listing_complete {
            3
        } else {
            0
        }
    }

    pub fn summary(&self) -> String {
        let c = &self.counts;
        let mut s = format!(
            "service {}: listed {}, filtered {}, created {}, updated {}, unchanged {}, deleted {}, failed {} in {:.2}s ({:.0} models/s, {} AWS calls, {} retries)\n",
            self.service,
            c.listed,
            c.filtered,
            c.created,
            c.updated,
            c.unchanged,
            c.deleted,
            c.failed,
            self.duration_ms as f64 / 1000.0,
            self.models_per_second,
            self.aws_calls.values().sum::<u64>(),
            self.retries
        );
        for f in &self.failures {
            s.push_str(&format!("  failed: {}: {}\n", f.model, f.error));
        }
        for w in &self.warnings {
            s.push_str(&format!("  warning: {w}\n"));
        }
        if !self.listing_complete {
            s.push_str("  listing incomplete: no model was marked deleted\n");
        }
        s
    }
}

/// Fatal problems: the run could not start or the catalog failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Aws(#[from] sagebridge_aws::AwsError),
    #[error("catalog: {0}")]
    Catalog(#[from] sagebridge_catalog::CatalogError),
    #[error("invalid filter pattern: {0}")]
    Filter(#[from] regex::Error),
    #[error("unknown sink type `{0}`; use `catalog` or `metadata-rest`")]
    Sink(String),
    #[error("OpenMetadata: {0}")]
    OpenMetadata(#[from] OmError),
    #[error("catalog worker stopped: {0}")]
    Join(#[from] tokio::task::JoinError),
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// What a run reports while it goes, for a progress bar or log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Listing done: this many models will be read.
    Listed(usize),
    /// One more model read (or failed).
    ModelDone,
}

/// Receives [`Progress`] events; called from the run's task, so it must be quick.
#[derive(Clone)]
pub struct ProgressHook(pub Arc<dyn Fn(Progress) + Send + Sync>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

/// Options beside the workflow file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Called as the run goes.
    pub progress: Option<ProgressHook>,
    /// Overrides the sink's catalog path.
    pub catalog_path: Option<std::path::PathBuf>,
    /// Describe every model again, even those unchanged since the last run.
    pub full: bool,
}

/// Where a run writes.
enum Target {
    Catalog(Arc<dyn Catalog>),
    OpenMetadata(Box<OpenMetadata>),
}

/// Runs the workflow into its sink: the embedded catalog (`catalog`, default) or an
/// OpenMetadata server (`metadata-rest`).
pub async fn run(cfg: &WorkflowConfig, opts: &RunOptions) -> Result<RunReport, RunError> {
    match cfg.sink.kind.as_str() {
        "catalog" => {}
        "metadata-rest" => {
            let om = OpenMetadata::new(cfg.workflow_config.open_metadata_server_config.as_ref())?;
            let version = om.version().await?;
            tracing::info!(%version, "writing to OpenMetadata");
            return run_target(cfg, Target::OpenMetadata(Box::new(om)), opts).await;
        }
        other => return Err(RunError::Sink(other.to_owned())),
    }
    let path = opts
        .catalog_path
        .clone()
        .unwrap_or_else(|| cfg.catalog_path());
    let catalog: Arc<dyn Catalog> =
        Arc::new(tokio::task::spawn_blocking(move || SqliteCatalog::open(path)).await??);
    run_into(cfg, catalog, opts).await
}

/// Runs the workflow into the given catalog.
pub async fn run_into(
    cfg: &WorkflowConfig,
    catalog: Arc<dyn Catalog>,
    opts: &RunOptions,
) -> Result<RunReport, RunError> {
    run_target(cfg, Target::Catalog(catalog), opts).await
}

async fn run_target(
    cfg: &WorkflowConfig,
    target: Target,
    opts: &RunOptions,
) -> Result<RunReport, RunError> {
    let start = Instant::now();
    let started_at = now_ms();
    let meta = cfg.metadata();
    let filter = cfg.filter()?;
    let service_name = cfg.source.service_name.clone();
    let clients = Clients::new(cfg.aws(), &ClientOptions::bulk(10)).await?;
    let source = Arc::new(Source::new(
        &clients.sdk_config,
        cfg.aws().region(),
        &meta.feature_group_tag_key,
    ));

    let connection = serde_json::json!({"config": {
        "type": "SageMaker",
        // Secrets serialize as a redaction marker: nothing secret reaches the catalog.
        "awsConfig": cfg.aws(),
    }});
    let service = MlModelService {
        name: service_name.clone(),
        connection: Some(connection),
        ..Default::default()
    };
    let service_ref = match &target {
        Target::Catalog(catalog) => {
            let cat = catalog.clone();
            let service =
                tokio::task::spawn_blocking(move || cat.upsert_service(&service)).await??;
            ServiceRef {
                id: service.id.clone(),
                name: service.name.clone(),
            }
        }
        Target::OpenMetadata(om) => ServiceRef {
            id: om.ensure_service(&service_name, cfg.aws()).await?,
            name: service_name.clone(),
        },
    };
    // The embedded catalog keeps the run history and the facts for incremental runs;
    // OpenMetadata has neither (it skips unchanged models by `sourceHash` itself).
    let catalog = match &target {
        Target::Catalog(c) => Some(c.clone()),
        Target::OpenMetadata(_) => None,
    };

    let mut report = RunReport {
        run_id: new_id(),
        service: service_name.clone(),
        ..Default::default()
    };
    let run_record = |status, finished_at, report: &RunReport| IngestionRun {
        id: report.run_id.clone(),
        service: service_name.clone(),
        started_at,
        finished_at,
        status,
        report: serde_json::to_value(report).unwrap_or_default(),
    };
    if let Some(cat) = catalog.clone() {
        let rec = run_record(RunStatus::Running, None, &report);
        tokio::task::spawn_blocking(move || cat.record_run(&rec)).await??;
    }

    let (listed, list_error) = source.list_models().await;
    report.counts.listed = listed.len();
    report.listing_complete = list_error.is_none();
    if let Some(e) = &list_error {
        report.failures.push(Failure {
            model: "(listing)".into(),
            error: e.to_string(),
            error_kind: e.kind().into(),
        });
    }
    let known = match &catalog {
        Some(cat) if !opts.full => {
            let cat = cat.clone();
            let svc = service_name.clone();
            tokio::task::spawn_blocking(move || cat.known_models(&svc)).await??
        }
        _ => HashMap::new(),
    };
    let mut seen = HashSet::new();
    let mut todo = Vec::new();
    for listed in listed {
        if filter.keeps(&listed.name) {
            seen.insert(listed.name.clone());
            // Immutable in SageMaker: same ARN and creation time means same model.
            let unchanged = known.get(&listed.name).is_some_and(|k| {
                !k.deleted
                    && listed.arn.is_some()
                    && k.arn == listed.arn
                    && listed.creation_time.is_some()
                    && k.creation_time == listed.creation_time
            });
            todo.push((listed.name, unchanged));
        } else {
            report.counts.filtered += 1;
        }
    }
    source.load_indexes().await;
    let progress = |p| {
        if let Some(hook) = &opts.progress {
            (hook.0)(p);
        }
    };
    progress(Progress::Listed(todo.len()));

    let incremental = Arc::new(AtomicUsize::new(0));
    let mut stream = futures::stream::iter(todo)
        .map(|(name, unchanged)| {
            let source = source.clone();
            let catalog = catalog.clone();
            let service = service_name.clone();
            let incremental = incremental.clone();
            async move {
                if let (true, Some(catalog)) = (unchanged, catalog) {
                    let stored = stored_facts(catalog, service, name.clone()).await;
                    if let Some(stored) = stored.filter(|f| f.incomplete.is_empty()) {
                        incremental.fetch_add(1, Ordering::Relaxed);
                        return source.refresh_facts(stored).await;
                    }
                }
                source.model_facts(&name).await
            }
        })
        .buffer_unordered(meta.concurrency);
    let mut batch = Vec::with_capacity(BATCH);
    let mut outcome = WriteOutcome::default();
    while let Some(r) = stream.next().await {
        progress(Progress::ModelDone);
        match r {
            Ok(facts) => {
                let model = to_ml_model(&facts, &service_ref);
                batch.push(ModelWrite {
                    model,
                    arn: Some(facts.arn.clone()),
                    creation_time: Some(facts.creation_time),
                    // Stored in the catalog for incremental runs, secrets redacted like
                    // everything else there (the model built from them is the same: it is
                    // redacted too). OpenMetadata keeps no facts.
                    facts: catalog
                        .is_some()
                        .then(|| serde_json::to_string(&redact(&facts)).ok())
                        .flatten(),
                });
                if batch.len() >= BATCH {
                    let written = write(&target, std::mem::take(&mut batch), meta).await?;
                    outcome.add(written.0);
                    report.failures.extend(written.1);
                }
            }
            Err(f) => {
                tracing::warn!(model = %f.model, error = %f.error, "model failed");
                // A model that exists but cannot be read is not deleted.
                report.failures.push(Failure {
                    model: f.model.clone(),
                    error: f.error.to_string(),
                    error_kind: f.error.kind().into(),
                });
            }
        }
    }
    if !batch.is_empty() {
        let written = write(&target, batch, meta).await?;
        outcome.add(written.0);
        report.failures.extend(written.1);
    }
    report.counts.created = outcome.created;
    report.counts.updated = outcome.updated;
    report.counts.unchanged = outcome.unchanged;
    report.counts.failed = report
        .failures
        .iter()
        .filter(|f| f.model != "(listing)")
        .count();

    if meta.mark_deleted_ml_models && report.listing_complete {
        report.counts.deleted = match &target {
            Target::Catalog(cat) => {
                let cat = cat.clone();
                let svc = service_name.clone();
                tokio::task::spawn_blocking(move || cat.mark_deleted(&svc, &seen))
                    .await??
                    .len()
            }
            Target::OpenMetadata(om) => om.mark_deleted(&service_name, &seen).await?,
        };
    }

    report.incremental = incremental.load(Ordering::Relaxed);
    report.warnings = source.warnings();
    report.aws_calls = source.stats.calls();
    report.retries = source.stats.retries();
    let elapsed = start.elapsed();
    report.duration_ms = elapsed.as_millis() as u64;
    let processed = report.counts.created + report.counts.updated + report.counts.unchanged;
    report.models_per_second = if elapsed.as_secs_f64() > 0.0 {
        processed as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    };
    let status = if report.exit_code() == 0 {
        RunStatus::Success
    } else {
        RunStatus::PartialSuccess
    };
    if let Some(cat) = catalog.clone() {
        let rec = run_record(status, Some(now_ms()), &report);
        tokio::task::spawn_blocking(move || cat.record_run(&rec)).await??;
    }
    Ok(report)
}

/// The facts stored with a model by an earlier run; `None` (describe it again) when there are
/// none or they cannot be read back.
async fn stored_facts(
    catalog: Arc<dyn Catalog>,
    service: String,
    name: String,
) -> Option<ModelFacts> {
    let text = tokio::task::spawn_blocking(move || catalog.stored_facts(&service, &name))
        .await
        .ok()?
        .ok()??;
    serde_json::from_str(&text).ok()
}

/// Writes one batch; rows the sink refused come back as failures.
async fn write(
    target: &Target,
    batch: Vec<ModelWrite>,
    meta: &MlModelMetadataConfig,
) -> Result<(WriteOutcome, Vec<Failure>), RunError> {
    match target {
        Target::Catalog(catalog) => {
            let cat = catalog.clone();
            let outcome = tokio::task::spawn_blocking(move || cat.write_models(&batch)).await??;
            Ok((outcome, Vec::new()))
        }
        Target::OpenMetadata(om) => {
            let models: Vec<_> = batch.into_iter().map(|w| w.model).collect();
            let bulk = om.write(&models, meta.override_metadata).await?;
            let failures = bulk
                .failed
                .into_iter()
                .map(|f| Failure {
                    model: f.model,
                    error: format!("OpenMetadata rejected the model: {}", f.message),
                    error_kind: "Rejected".into(),
                })
                .collect();
            let outcome = WriteOutcome {
                created: bulk.created,
                updated: bulk.updated,
                ..WriteOutcome::default()
            };
            Ok((outcome, failures))
        }
    }
}
