//! One ingestion run, in its stages: **list** (ListModels, ListModelPackageGroups) -> **plan**
//! (filters; which models are unchanged since the last run) -> **gather** (describe with
//! bounded concurrency, map; model package groups after the models, whose containers link
//! them to the groups' versions) ->
//! **write** (batches into the sink) -> **finish** (mark deleted, report, record the run).
//!
//! Where the run writes is a [`Sink`] built from the workflow's `sink:`; the runner never asks
//! which one. A [`Shutdown`] in [`RunOptions`] stops a run at its next batch boundary: the
//! batch being gathered is dropped, a batch write in progress completes, nothing is marked
//! deleted and the report says `interrupted`. Each batch is one write (one transaction in the
//! catalog), so the sink is left consistent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sagebridge_aws::{ClientOptions, Clients};
use sagebridge_catalog::{
    new_id, Catalog, IngestionRun, KnownModel, ModelWrite, RunStatus, WriteOutcome,
};
use serde::Serialize;

use crate::config::{ModelFilter, WorkflowConfig};
use crate::facts::ModelFacts;
use crate::fingerprint;
use crate::mapping::{redact, to_ml_model, ServiceRef};
use crate::shutdown::Shutdown;
use crate::sink::{CatalogSink, Incremental, OmError, Sink, SinkContext, SinkError};
use crate::source::{Deployments, ListedGroup, ListedModel, ModelFailure, Source};

/// Models written to the sink per batch (one catalog transaction).
const BATCH: usize = 200;

/// The failure entry of a listing that stopped part way.
const LISTING: &str = "(listing)";

/// The failure entry of a model registry listing that stopped part way.
const REGISTRY_LISTING: &str = "(model registry listing)";

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
    /// AWS calls per model kept by the filters (all calls of the run, listing and enrichments
    /// included, divided by the models read); 0 when there were none.
    pub calls_per_model: f64,
    /// Models whose facts (or, when unchanged, whose tags) came from `Search` pages instead of
    /// DescribeModel and ListTags.
    pub models_from_search: u64,
    /// Models whose tags came from the tagging API's `GetResources` pages instead of ListTags.
    pub tags_from_index: u64,
    /// One line per resource read one by one because `Search` (or the tagging API, for tags)
    /// was denied or not supported for it (not a problem: the run is complete, only slower).
    pub notes: Vec<String>,
    pub retries: u64,
    pub duration_ms: u64,
    pub models_per_second: f64,
    /// False when ListModels or ListModelPackageGroups failed part way: nothing was marked
    /// deleted then.
    pub listing_complete: bool,
    /// Model package groups listed (they count in `counts.listed` too).
    pub model_package_groups: usize,
    /// Models found unchanged since the sink last saw them, for which only the tags were read
    /// again (no DescribeModel, no training job): rebuilt from their stored facts (catalog),
    /// or proven unchanged by their `sourceHash` and not written (`metadata-rest`). Zero with
    /// `--full`.
    pub incremental: usize,
    /// The run was told to stop ([`RunOptions::shutdown`]) and did, between batches: the
    /// batches written are in the sink, the rest of the models were not written and nothing
    /// was marked deleted.
    pub interrupted: bool,
    /// Why mark-deleted was refused: the run would have marked more than
    /// `markDeletedMaxFraction` of the service's live models deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mass_delete_refused: Option<String>,
    /// False when a whole batch could not be written (the sink kept failing): nothing was
    /// marked deleted then.
    pub writes_complete: bool,
}

impl RunReport {
    /// 0 success, 3 completed with failures (or only in part: listing incomplete, interrupted).
    pub fn exit_code(&self) -> u8 {
        if self.counts.failed > 0
            || !self.listing_complete
            || self.interrupted
            || self.mass_delete_refused.is_some()
        {
            3
        } else {
            0
        }
    }

    pub fn summary(&self) -> String {
        let c = &self.counts;
        let mut s = format!(
            "service {}: listed {}, filtered {}, created {}, updated {}, unchanged {}, deleted {}, failed {} in {:.2}s ({:.0} models/s, {} AWS calls, {:.2} calls per model, {} retries)\n",
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
            self.calls_per_model,
            self.retries
        );
        for f in &self.failures {
            s.push_str(&format!("  failed: {}: {}\n", f.model, f.error));
        }
        for w in &self.warnings {
            s.push_str(&format!("  warning: {w}\n"));
        }
        for n in &self.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        if !self.listing_complete {
            s.push_str("  listing incomplete: no model was marked deleted\n");
        }
        if self.interrupted {
            s.push_str("  interrupted: the remaining models were not written and no model was marked deleted\n");
        }
        if !self.writes_complete {
            s.push_str(
                "  writes incomplete: a batch could not be written, no model was marked deleted\n",
            );
        }
        if let Some(why) = &self.mass_delete_refused {
            s.push_str(&format!("  mark-deleted refused: {why}\n"));
        }
        s
    }
}

/// Fatal problems: the run could not start or the sink failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Aws(#[from] sagebridge_aws::AwsError),
    #[error("catalog: {0}")]
    Catalog(#[from] sagebridge_catalog::CatalogError),
    #[error("invalid filter pattern: {0}")]
    Filter(#[from] regex::Error),
    #[error("OpenMetadata: {0}")]
    OpenMetadata(#[from] OmError),
    #[error("catalog worker stopped: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl From<SinkError> for RunError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Catalog(e) => RunError::Catalog(e),
            SinkError::OpenMetadata(e) => RunError::OpenMetadata(e),
            SinkError::Join(e) => RunError::Join(e),
        }
    }
}

use sagebridge_aws::clock::now_millis as now_ms;

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
    /// Stops the run at its next batch boundary when it fires (see the module docs).
    pub shutdown: Option<Shutdown>,
    /// Mark deleted even more than `markDeletedMaxFraction` of the live models
    /// (`sagebridge ingest --allow-mass-delete`).
    pub allow_mass_delete: bool,
    /// The id of a run the caller records itself (a pipeline run of `serve`, which records its
    /// start, progress and end with the report): the report carries it and the sink records
    /// nothing. `None`: a new id, and the sink records the run.
    pub run_id: Option<String>,
}

/// Runs the workflow into the sink of its `sink:` (the embedded catalog by default).
pub async fn run(cfg: &WorkflowConfig, opts: &RunOptions) -> Result<RunReport, RunError> {
    let mut ctx = SinkContext::new(cfg);
    ctx.catalog_path = opts.catalog_path.clone();
    let sink = cfg.sink.build(&ctx).await?;
    run_with(cfg, sink.as_ref(), opts).await
}

/// Runs the workflow into the given catalog, whatever its `sink:` says.
pub async fn run_into(
    cfg: &WorkflowConfig,
    catalog: Arc<dyn Catalog>,
    opts: &RunOptions,
) -> Result<RunReport, RunError> {
    let sink = CatalogSink::new(catalog, &SinkContext::new(cfg));
    run_with(cfg, &sink, opts).await
}

/// Runs the workflow into `sink`: the stages of the module docs, in order.
pub async fn run_with(
    cfg: &WorkflowConfig,
    sink: &dyn Sink,
    opts: &RunOptions,
) -> Result<RunReport, RunError> {
    let mut run = Run::start(cfg, sink, opts).await?;
    let run_id = run.report.run_id.clone();
    let result = async {
        let listed = run.list().await;
        let plan = run.plan(listed).await?;
        run.gather_and_write(plan.todo, plan.groups).await?;
        run.finish(plan.seen, plan.known).await
    }
    .await;
    // Released whatever happened; a failed release only leaves a lock that goes stale.
    if let Err(e) = sink.unlock(run_id).await {
        tracing::warn!(error = %e, "could not release the service's ingestion lock");
    }
    result
}

/// A model to read, and whether it is unchanged since the last run.
struct Planned {
    listed: ListedModel,
    reuse: Reuse,
}

/// What an incremental run may skip for one model.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reuse {
    /// Read it in full.
    Nothing,
    /// Same ARN and creation time as the facts the sink stored: rebuild from them.
    StoredFacts,
    /// The identity half of the stored `sourceHash` matches the listing: unchanged if its
    /// surroundings still hash to this (the other half), else read in full.
    Surroundings(String),
}

/// What gathering one model gave.
enum Gathered {
    /// Its facts (`true`: rebuilt from stored facts), or why it could not be read.
    Facts(Box<Result<ModelFacts, ModelFailure>>, bool),
    /// Proven unchanged by its `sourceHash`: nothing to write.
    Unchanged,
}

/// What the list stage found.
struct Listed {
    models: Vec<ListedModel>,
    groups: Vec<ListedGroup>,
}

/// What the plan stage decided.
#[derive(Default)]
struct Plan {
    todo: Vec<Planned>,
    /// Model package groups to read (always read again: versions come and go under the same
    /// ARN), after the models, whose containers link them to the groups' versions.
    groups: Vec<ListedGroup>,
    /// Names kept by the filters: what mark-deleted must not touch.
    seen: HashSet<String>,
    /// The sink's models when the run began.
    known: KnownModels,
}

/// What the plan stage learnt of the sink's models.
#[derive(Default)]
enum KnownModels {
    /// Not asked (`--full`).
    #[default]
    NotRead,
    /// The sink could not list them: the run was a full run, and marks nothing deleted.
    Failed,
    Read(HashMap<String, KnownModel>),
}

/// One run in progress.
struct Run<'a> {
    cfg: &'a WorkflowConfig,
    opts: &'a RunOptions,
    sink: &'a dyn Sink,
    filter: ModelFilter,
    source: Arc<Source>,
    service: ServiceRef,
    report: RunReport,
    outcome: WriteOutcome,
    start: Instant,
    started_at: i64,
}

impl<'a> Run<'a> {
    /// AWS clients and the source, the service in the sink, the run recorded as running.
    async fn start(
        cfg: &'a WorkflowConfig,
        sink: &'a dyn Sink,
        opts: &'a RunOptions,
    ) -> Result<Self, RunError> {
        let start = Instant::now();
        let started_at = now_ms();
        let filter = cfg.filter()?;
        let meta = cfg.metadata();
        let options = ClientOptions {
            attempt_timeout: Some(Duration::from_secs(meta.attempt_timeout_seconds)),
            operation_timeout: Some(Duration::from_secs(meta.operation_timeout_seconds)),
            ..ClientOptions::bulk(10)
        };
        let clients = Clients::new(cfg.aws(), &options).await?;
        let source = Arc::new(
            Source::new(
                &clients.sdk_config,
                cfg.aws().region(),
                &cfg.metadata().feature_group_tag_key,
            )
            .with_enrichment_deadline(Duration::from_secs(meta.enrichment_deadline_seconds)),
        );
        let service = sink.open_service().await?;
        let run = Run {
            cfg,
            opts,
            sink,
            filter,
            source,
            service,
            report: RunReport {
                run_id: opts.run_id.clone().unwrap_or_else(new_id),
                service: cfg.source.service_name.clone(),
                writes_complete: true,
                ..Default::default()
            },
            outcome: WriteOutcome::default(),
            start,
            started_at,
        };
        // Before anything is recorded or written: a run refused here leaves no trace.
        sink.lock(run.report.run_id.clone()).await?;
        if opts.run_id.is_none() {
            if let Err(e) = sink.record_run(run.record(RunStatus::Running, None)).await {
                let _ = sink.unlock(run.report.run_id.clone()).await;
                return Err(e.into());
            }
        }
        Ok(run)
    }

    /// The run as stored by the sink.
    fn record(&self, status: RunStatus, finished_at: Option<i64>) -> IngestionRun {
        IngestionRun {
            id: self.report.run_id.clone(),
            service: self.report.service.clone(),
            started_at: self.started_at,
            finished_at,
            status,
            report: serde_json::to_value(&self.report).unwrap_or_default(),
        }
    }

    fn progress(&self, p: Progress) {
        if let Some(hook) = &self.opts.progress {
            (hook.0)(p);
        }
    }

    /// Stage 1: every model and model package group of the account (as far as ListModels and
    /// ListModelPackageGroups got). The per-run indexes (endpoints, feature groups, Search's
    /// pages) load at the same time, so a slow or failing optional API costs the run only what
    /// outlasts the listing.
    async fn list(&mut self) -> Listed {
        let source = Arc::clone(&self.source);
        let (models, (mut groups, error), ()) = tokio::join!(
            self.list_models(),
            source.list_model_package_groups(),
            source.load_indexes()
        );
        let mut names = HashSet::new();
        groups.retain(|g| names.insert(g.name.clone()));
        self.report.model_package_groups = groups.len();
        self.report.counts.listed += groups.len();
        if let Some(e) = error {
            self.report.listing_complete = false;
            self.report.failures.push(Failure {
                model: REGISTRY_LISTING.into(),
                error: e.to_string(),
                error_kind: e.kind().into(),
            });
        }
        Listed { models, groups }
    }

    async fn list_models(&mut self) -> Vec<ListedModel> {
        let (mut listed, error) = self.source.list_models().await;
        // A name seen twice in paging (a listing that shifted under it) is read once.
        let mut names = HashSet::new();
        let before = listed.len();
        listed.retain(|m| names.insert(m.name.clone()));
        if listed.len() < before {
            self.report.warnings.push(format!(
                "ListModels returned {} name(s) more than once; each model was read once",
                before - listed.len()
            ));
        }
        self.report.counts.listed = listed.len();
        self.report.listing_complete = error.is_none();
        if let Some(e) = error {
            self.report.failures.push(Failure {
                model: LISTING.into(),
                error: e.to_string(),
                error_kind: e.kind().into(),
            });
        }
        listed
    }

    /// Stage 2: the filters, and which models are unchanged since the sink last saw them.
    async fn plan(&mut self, listed: Listed) -> Result<Plan, RunError> {
        let Listed {
            models: listed,
            groups,
        } = listed;
        let mode = self.sink.incremental();
        let known = if self.opts.full {
            KnownModels::NotRead
        } else {
            match self.sink.known_models().await {
                Ok(known) => KnownModels::Read(known),
                // Never a reason to stop, nor to delete: every model is read and written as
                // with `--full`, and mark-deleted is skipped (what the sink holds is unknown).
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the sink's models");
                    self.report.warnings.push(format!(
                        "could not read the models the sink holds ({e}): every model was read \
                         again and nothing was marked deleted"
                    ));
                    KnownModels::Failed
                }
            }
        };
        let empty = HashMap::new();
        let known_map = match &known {
            KnownModels::Read(k) => k,
            _ => &empty,
        };
        let service = self.service.name.clone();
        let mut plan = Plan::default();
        for model in listed {
            if !self.filter.keeps(&model.name) {
                self.report.counts.filtered += 1;
                continue;
            }
            plan.seen.insert(model.name.clone());
            let reuse = match (known_map.get(&model.name), mode) {
                (Some(k), Incremental::StoredFacts) if same_model(k, &model) => Reuse::StoredFacts,
                (Some(k), Incremental::SourceHash) if !k.deleted => k
                    .source_hash
                    .as_deref()
                    .and_then(|h| fingerprint::stored_surroundings(h, &service, &model))
                    .map_or(Reuse::Nothing, |rest| Reuse::Surroundings(rest.to_owned())),
                _ => Reuse::Nothing,
            };
            plan.todo.push(Planned {
                listed: model,
                reuse,
            });
        }
        for group in groups {
            if !self.filter.keeps(&group.name) {
                self.report.counts.filtered += 1;
                continue;
            }
            // One FQN, two entities: the model keeps it (ListModels is authoritative, and
            // OpenMetadata would take the second for an update of the first).
            if plan.seen.contains(&group.name) {
                self.report.warnings.push(format!(
                    "model package group {} not ingested: a model has the same name, and so \
                     the same fully qualified name",
                    group.name
                ));
                continue;
            }
            plan.seen.insert(group.name.clone());
            plan.groups.push(group);
        }
        plan.known = known;
        Ok(plan)
    }

    /// Stages 3 and 4: describe the planned models with bounded concurrency and write them in
    /// batches, until done or told to stop.
    async fn gather_and_write(
        &mut self,
        todo: Vec<Planned>,
        groups: Vec<ListedGroup>,
    ) -> Result<(), RunError> {
        self.source.load_indexes().await;
        self.progress(Progress::Listed(todo.len() + groups.len()));
        let (sink, source) = (self.sink, self.source.clone());
        let concurrency = self.cfg.metadata().concurrency;
        let feature_index = source.feature_index_digest();
        let feature_index = feature_index.as_str();
        let gathered = futures::stream::iter(todo)
            .map(|planned| gather(sink, &source, planned, feature_index))
            .buffer_unordered(concurrency);
        let mut batch = Vec::with_capacity(BATCH);
        let mut deployed = Deployments::new();
        self.drain(gathered, &mut batch, &mut deployed).await?;
        if !self.report.interrupted && !groups.is_empty() {
            let deployed = &deployed;
            let source = &source;
            let gathered = futures::stream::iter(groups)
                .map(|group| async move {
                    Gathered::Facts(Box::new(source.group_facts(&group, deployed).await), false)
                })
                .buffer_unordered(concurrency);
            self.drain(gathered, &mut batch, &mut Deployments::new())
                .await?;
        }
        if !batch.is_empty() && !self.stopping() {
            self.write(batch).await?;
        }
        Ok(())
    }

    /// Writes what `gathered` yields in batches (the last one, partial, stays in `batch`),
    /// noting which model packages each model was created from in `deployed`; stops early
    /// when told to.
    async fn drain(
        &mut self,
        gathered: impl futures::Stream<Item = Gathered>,
        batch: &mut Vec<ModelWrite>,
        deployed: &mut Deployments,
    ) -> Result<(), RunError> {
        let mut gathered = std::pin::pin!(gathered);
        let mut shutdown = self.opts.shutdown.clone();
        loop {
            let next = tokio::select! {
                biased;
                () = fired(&mut shutdown) => None,
                next = gathered.next() => Some(next),
            };
            let Some(next) = next else {
                self.report.interrupted = true;
                break;
            };
            let Some(next) = next else {
                break;
            };
            self.progress(Progress::ModelDone);
            let (facts, incremental) = match next {
                Gathered::Facts(facts, incremental) => (*facts, incremental),
                Gathered::Unchanged => {
                    self.report.incremental += 1;
                    self.outcome.unchanged += 1;
                    continue;
                }
            };
            self.report.incremental += usize::from(incremental);
            match facts {
                Ok(facts) => {
                    for package in facts
                        .primary_container
                        .iter()
                        .chain(&facts.containers)
                        .filter_map(|c| c.model_package_name.as_deref())
                    {
                        deployed
                            .entry(package.to_ascii_lowercase())
                            .or_default()
                            .push(facts.name.clone());
                    }
                    batch.push(self.model_write(&facts));
                }
                Err(failure) => self.model_failed(failure),
            }
            if batch.len() >= BATCH {
                if self.stopping() {
                    break;
                }
                self.write(std::mem::take(batch)).await?;
            }
        }
        Ok(())
    }

    /// Whether the run was told to stop (and so says its report).
    fn stopping(&mut self) -> bool {
        if self
            .opts
            .shutdown
            .as_ref()
            .is_some_and(Shutdown::is_shutdown)
        {
            self.report.interrupted = true;
        }
        self.report.interrupted
    }

    fn model_write(&self, facts: &ModelFacts) -> ModelWrite {
        let mut model = to_ml_model(facts, &self.service);
        if self.sink.incremental() == Incremental::SourceHash {
            model.source_hash = Some(fingerprint::source_hash(
                facts,
                &self.service,
                &self.source.feature_index_digest(),
            ));
        }
        ModelWrite {
            model,
            arn: Some(facts.arn.clone()),
            creation_time: Some(facts.creation_time),
            // Stored for incremental runs by sinks that keep facts, secrets redacted like
            // everything else there (the model built from them is the same: it is redacted
            // too).
            facts: self
                .sink
                .keeps_facts()
                .then(|| serde_json::to_string(&redact(facts)).ok())
                .flatten(),
        }
    }

    fn model_failed(&mut self, f: ModelFailure) {
        tracing::warn!(model = %f.model, error = %f.error, "model failed");
        // A model that exists but cannot be read is not deleted.
        self.report.failures.push(Failure {
            model: f.model.clone(),
            error: f.error.to_string(),
            error_kind: f.error.kind().into(),
        });
    }

    /// Writes one batch; models the sink refused become failures.
    async fn write(&mut self, batch: Vec<ModelWrite>) -> Result<(), RunError> {
        let written = self.sink.write(batch).await?;
        if let Err(e) = self.sink.touch_lock(self.report.run_id.clone()).await {
            tracing::debug!(error = %e, "could not refresh the service's ingestion lock");
        }
        self.outcome.add(written.outcome);
        self.report.writes_complete &= !written.incomplete;
        self.report
            .failures
            .extend(written.rejected.into_iter().map(|r| Failure {
                model: r.model,
                error: r.reason,
                error_kind: "Rejected".into(),
            }));
        Ok(())
    }

    /// Why marking the unseen models deleted would be implausible: more than one model and more
    /// than `markDeletedMaxFraction` of the service's live models would go (unless the run was
    /// told to allow it). The sink's models as the plan stage read them serve when there (the
    /// run only wrote models it saw); with `--full`, a sink that keeps facts is asked again,
    /// and a `sourceHash` sink (OpenMetadata) is not checked (as before it had incremental
    /// runs: that would cost another paging through all its models).
    async fn mass_delete_problem(
        &self,
        seen: &HashSet<String>,
        known: KnownModels,
    ) -> Result<Option<String>, RunError> {
        if self.opts.allow_mass_delete {
            return Ok(None);
        }
        let known = match known {
            KnownModels::Read(known) => known,
            _ if self.sink.incremental() == Incremental::StoredFacts => {
                self.sink.known_models().await?
            }
            _ => return Ok(None),
        };
        let live: Vec<&String> = known
            .iter()
            .filter(|(_, k)| !k.deleted)
            .map(|(name, _)| name)
            .collect();
        let doomed = live.iter().filter(|name| !seen.contains(**name)).count();
        let max = self.cfg.metadata().mark_deleted_max_fraction;
        if doomed > 1 && doomed as f64 > max * live.len() as f64 {
            return Ok(Some(format!(
                "{doomed} of the service's {} live models are gone from this listing, more than \
                 markDeletedMaxFraction ({max}) allows; nothing was marked deleted. If SageMaker \
                 really lost them, run again with --allow-mass-delete; else check the region, \
                 the credentials and the filter patterns",
                live.len()
            )));
        }
        Ok(None)
    }

    /// Stage 5: mark deleted (only after a complete, uninterrupted run), the report, the run
    /// recorded as finished.
    async fn finish(
        mut self,
        seen: HashSet<String>,
        known: KnownModels,
    ) -> Result<RunReport, RunError> {
        let counts = &mut self.report.counts;
        counts.created = self.outcome.created;
        counts.updated = self.outcome.updated;
        counts.unchanged = self.outcome.unchanged;
        counts.failed = self
            .report
            .failures
            .iter()
            .filter(|f| f.model != LISTING && f.model != REGISTRY_LISTING)
            .count();
        if self.cfg.metadata().mark_deleted_ml_models
            && self.report.listing_complete
            && self.report.writes_complete
            && !self.report.interrupted
            && !matches!(known, KnownModels::Failed)
        {
            match self.mass_delete_problem(&seen, known).await? {
                Some(why) => {
                    tracing::warn!("mark-deleted refused: {why}");
                    self.report.mass_delete_refused = Some(why);
                }
                None => self.report.counts.deleted = self.sink.mark_deleted(seen).await?,
            }
        }
        let report = &mut self.report;
        report.warnings.extend(self.source.warnings());
        report.notes = self.source.notes();
        report.aws_calls = self.source.stats.calls();
        report.models_from_search = self.source.models_from_search();
        report.tags_from_index = self.source.tags_from_index();
        let models = report.counts.listed - report.counts.filtered;
        report.calls_per_model = if models > 0 {
            self.source.stats.total_calls() as f64 / models as f64
        } else {
            0.0
        };
        report.retries = self.source.stats.retries();
        let elapsed = self.start.elapsed();
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
        if self.opts.run_id.is_none() {
            let record = self.record(status, Some(now_ms()));
            self.sink.record_run(record).await?;
        }
        Ok(self.report)
    }
}

/// Immutable in SageMaker: same ARN and creation time means same model.
fn same_model(known: &KnownModel, listed: &ListedModel) -> bool {
    !known.deleted
        && listed.arn.is_some()
        && known.arn == listed.arn
        && listed.creation_time.is_some()
        && known.creation_time == listed.creation_time
}

/// The facts of one planned model: rebuilt from the facts the sink stored (only the tags are
/// read again) when it is unchanged and they are complete; nothing when its `sourceHash`
/// proves it unchanged (only the tags are read); else described.
async fn gather(sink: &dyn Sink, source: &Source, model: Planned, feature_index: &str) -> Gathered {
    match &model.reuse {
        Reuse::Nothing => {}
        Reuse::StoredFacts => {
            let stored = sink.stored_facts(model.listed.name.clone()).await;
            if let Some(stored) = stored.filter(|f| f.incomplete.is_empty()) {
                return Gathered::Facts(Box::new(source.refresh_facts(stored).await), true);
            }
        }
        Reuse::Surroundings(stored) => match source.surroundings(&model.listed).await {
            Ok((tags, endpoints)) => {
                if fingerprint::surroundings(&tags, &endpoints, feature_index) == *stored {
                    return Gathered::Unchanged;
                }
            }
            Err(failure) => return Gathered::Facts(Box::new(Err(failure)), false),
        },
    }
    Gathered::Facts(Box::new(source.model_facts(&model.listed).await), false)
}

/// Resolves when the shutdown signal fires; never without one.
async fn fired(shutdown: &mut Option<Shutdown>) {
    match shutdown {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
