//! The control plane's records (services with their connection, ingestion pipelines, their runs,
//! gateway models and gateway API keys) and the [`ControlStore`] trait that stores them.
//!
//! These are what `sagebridge serve` is configured with over its admin API, as OpenMetadata and
//! Dify are from their UIs. They live in the same catalog file as the models, so a service's
//! pipelines, runs and models are deleted together, and a copy of one file is a whole backup.
//!
//! Secrets never leave this API by accident: listing and get return [`ServiceEntry`] and
//! [`GatewayModelEntry`], whose `awsConfig` has no secret field and says which are set in
//! [`SecretFlags`]; the plaintext only comes out of the `*_with_secrets` methods, inside
//! [`ClearAwsConfig`], which is not `Serialize`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::entities::{new_id, IngestionRun, MlModelServiceType, RunStatus};
use crate::error::Result;
use crate::secrets::{ApiKeySecret, ClearAwsConfig, SecretFlags};

/// How many log lines a run keeps (the newest ones).
pub const RUN_LOG_LINES: usize = 200;

/// Longer log lines are cut to this many characters.
pub const RUN_LOG_LINE_CHARS: usize = 2_000;

/// What a service is created or replaced with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceInput {
    pub name: String,
    pub description: Option<String>,
    /// The workflow file's `awsConfig` object. On an update, a secret field left out (or sent as
    /// the redaction marker) keeps the stored secret; `null` removes it.
    pub aws_config: ClearAwsConfig,
}

/// A service as the control plane shows it: never with a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    pub id: String,
    pub name: String,
    pub service_type: MlModelServiceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The `awsConfig` without `awsSecretAccessKey` and `awsSessionToken`.
    pub aws_config: Value,
    /// Which secrets are stored (encrypted).
    pub secrets: SecretFlags,
    /// True once the service was created or updated through the control store (it has a stored
    /// connection); false for a service only known from ingestion with a workflow file, whose
    /// `awsConfig` is the redacted one that ingestion recorded.
    pub managed: bool,
    /// `Major.Minor` as OpenMetadata counts it.
    pub version: f64,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds.
    pub updated_at: i64,
}

/// A service with its secrets in clear, for running ingestion or a connection test. Not
/// `Serialize`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceWithSecrets {
    pub service: ServiceEntry,
    pub aws_config: ClearAwsConfig,
}

/// What a recursive service delete removed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeletion {
    /// Names of the deleted pipelines.
    pub pipelines: Vec<String>,
    /// Names of the deleted gateway models.
    pub gateway_models: Vec<String>,
    /// Deleted runs (of the pipelines, and those ingestion recorded for the service).
    pub runs: usize,
    /// Deleted models (with their version history).
    pub models: usize,
}

/// What a pipeline is created or replaced with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineInput {
    pub name: String,
    /// The service the pipeline ingests; it cannot change once the pipeline exists.
    pub service_id: String,
    pub description: Option<String>,
    /// Exactly the workflow file's `sourceConfig.config` (filters, mark deleted...).
    pub source_config: Value,
    /// A cron expression (UTC), or `None` for manual runs only. The caller validates it.
    pub schedule: Option<String>,
    pub enabled: bool,
}

/// An ingestion pipeline: what to ingest from which service, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionPipeline {
    pub id: String,
    pub name: String,
    pub service_id: String,
    /// The service's name, read with the pipeline.
    pub service_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub source_config: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunTrigger {
    /// A schedule fire time.
    Schedule,
    /// A request to run now.
    Manual,
    /// `sagebridge ingest` (every run recorded before pipelines existed).
    Cli,
}

impl RunTrigger {
    /// The name stored in the database and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
            Self::Cli => "cli",
        }
    }

    /// The inverse of [`RunTrigger::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Schedule, Self::Manual, Self::Cli]
            .into_iter()
            .find(|trigger| trigger.as_str() == s)
    }
}

/// How far a run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProgress {
    pub models_done: u64,
    /// Unknown until the listing finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models_total: Option<u64>,
}

/// A run with what the control plane adds to an [`IngestionRun`]. Serializes flat: the run's
/// fields, then `pipelineId`, `trigger`, `progress` and `logLines`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRun {
    #[serde(flatten)]
    pub run: IngestionRun,
    /// `None` for runs of `sagebridge ingest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<String>,
    pub trigger: RunTrigger,
    pub progress: RunProgress,
    /// The last log lines, oldest first; filled by [`ControlStore::pipeline_run`] only (lists
    /// leave it empty, see [`ControlStore::run_log`]).
    #[serde(default)]
    pub log_lines: Vec<String>,
}

/// A run to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// Chosen by the caller so the runner can record its report under the same id.
    pub id: String,
    pub pipeline_id: String,
    pub trigger: RunTrigger,
    /// `Queued`, `Running` or `Skipped`.
    pub status: RunStatus,
}

impl NewRun {
    /// A queued run with a new id.
    pub fn new(pipeline_id: impl Into<String>, trigger: RunTrigger) -> Self {
        Self {
            id: new_id(),
            pipeline_id: pipeline_id.into(),
            trigger,
            status: RunStatus::Queued,
        }
    }
}

/// One stored log line of a run; `seq` counts from 1 and never repeats within a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunLogLine {
    pub seq: u64,
    pub line: String,
}

/// Where a gateway model gets its AWS credentials.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum GatewayCredentials {
    /// None of its own: the gateway's top-level `awsConfig` (or the default chain) applies.
    #[default]
    Inherit,
    /// The connection of this service (by id).
    Service(String),
    /// Its own `awsConfig`; on an update, secrets left out keep the stored ones.
    Own(ClearAwsConfig),
}

/// What a gateway model is created or replaced with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GatewayModelInput {
    /// The `model` name clients send; it cannot change once the model exists.
    pub name: String,
    /// A `models:` entry of `sagebridge.yaml` without `awsConfig` (credentials go in
    /// `credentials`); its `name`, if present, must equal `name`. No secret field may appear.
    pub spec: Value,
    pub credentials: GatewayCredentials,
}

/// A gateway model as the control plane shows it: never with a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayModelEntry {
    pub name: String,
    /// The `models:` entry, without `awsConfig`.
    pub spec: Value,
    /// Set when the model uses a service's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// Its own `awsConfig` without secrets, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_config: Option<Value>,
    /// Which secrets its own `awsConfig` stores (encrypted).
    pub secrets: SecretFlags,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A gateway model with the credentials it runs with, in clear. Not `Serialize`.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayModelWithSecrets {
    pub model: GatewayModelEntry,
    /// Its own `awsConfig`, or its service's; `None` when it inherits the gateway's.
    pub aws_config: Option<ClearAwsConfig>,
}

impl GatewayModelWithSecrets {
    /// The full `models:` entry with `awsConfig` (secrets in clear) put back, as the gateway's
    /// config parser takes it. Never for a response or a log.
    pub fn expose_model_config(&self) -> Value {
        let mut config = self.model.spec.clone();
        if let Value::Object(map) = &mut config {
            map.insert("name".to_owned(), Value::String(self.model.name.clone()));
            if let Some(aws) = &self.aws_config {
                map.insert("awsConfig".to_owned(), aws.expose().clone());
            }
        }
        config
    }
}

/// What a gateway API key is created with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiKeyInput {
    pub name: String,
    /// Epoch milliseconds after which the key no longer works.
    pub expires_at: Option<i64>,
    /// The models the key may call; `None` for every model.
    pub allowed_models: Option<Vec<String>>,
    /// Requests the key may start in any minute; `None` for no limit.
    pub requests_per_minute: Option<u64>,
    /// Tokens (prompt and completion) the key may spend in any minute; `None` for no limit.
    pub tokens_per_minute: Option<u64>,
}

/// A gateway API key as stored: only a hash of the key is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyEntry {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// SHA-256 of the key, lowercase hex (see [`crate::hash_api_key`]). Not serialized.
    #[serde(skip)]
    pub key_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
}

impl ApiKeyEntry {
    /// Whether the key has expired at `now_ms` (epoch milliseconds).
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|at| now_ms >= at)
    }

    /// Whether the key may call `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models
            .as_ref()
            .is_none_or(|models| models.iter().any(|m| m == model))
    }
}

/// A key just created: the entry, and the key itself, which is shown once and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedApiKey {
    pub entry: ApiKeyEntry,
    pub key: ApiKeySecret,
}

/// Gateway usage of one API key (by name) and one model on one UTC day: what the gateway adds
/// to the catalog in batches ([`ControlStore::add_usage`]) and what the usage query answers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// The key's name (never the key): a catalog key's name, `file-key-N` for the N-th key of
    /// `server.apiKeys`, or what the gateway calls callers without a key.
    pub key: String,
    /// The model asked for; empty when the request named none the gateway could read.
    pub model: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The requests' latencies added up, in milliseconds.
    pub latency_ms: u64,
    /// Failed requests by error class (the gateway's error codes).
    pub errors: std::collections::BTreeMap<String, u64>,
}

/// Which usage to read: every filter is optional; days are `YYYY-MM-DD` and inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageQuery {
    pub key: Option<String>,
    pub model: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The control plane's store, beside [`crate::Catalog`] on the same database.
///
/// Blocking and atomic per call, like [`crate::Catalog`]. Lookups of one entity answer
/// [`crate::CatalogError::NotFound`] when it does not exist, creates and renames answer
/// [`crate::CatalogError::Conflict`] on a name already taken, and an invalid input answers
/// [`crate::CatalogError::Invalid`] naming the field. Writing or reading a secret needs a
/// catalog opened with a key ([`crate::SqliteCatalog::open_with_key`]), else
/// [`crate::CatalogError::SecretKeyMissing`].
pub trait ControlStore: Send + Sync {
    /// Creates a service (a SageMaker connection) with its secrets encrypted.
    fn create_service(&self, input: &ServiceInput) -> Result<ServiceEntry>;

    /// Replaces the description and `awsConfig` of a service (secrets left out are kept). The
    /// name cannot change: models and runs refer to the service by name.
    fn update_service(&self, id: &str, input: &ServiceInput) -> Result<ServiceEntry>;

    /// One service by id.
    fn service(&self, id: &str) -> Result<ServiceEntry>;

    /// One service by name.
    fn service_by_name(&self, name: &str) -> Result<ServiceEntry>;

    /// Every service (also those only known from ingestion), ordered by name.
    fn services(&self) -> Result<Vec<ServiceEntry>>;

    /// A service with its secrets decrypted.
    fn service_with_secrets(&self, id: &str) -> Result<ServiceWithSecrets>;

    /// Deletes a service. Without `recursive`, a service with pipelines, gateway models or models
    /// is refused with [`crate::CatalogError::HasDependents`]; with it, they go too (pipelines
    /// with their runs, models with their versions), as OpenMetadata's `recursive=true` does.
    /// A pipeline with a queued or running run blocks the delete either way
    /// ([`crate::CatalogError::PipelineBusy`]).
    fn delete_service(&self, id: &str, recursive: bool) -> Result<ServiceDeletion>;

    /// Creates a pipeline of an existing service.
    fn create_pipeline(&self, input: &PipelineInput) -> Result<IngestionPipeline>;

    /// Replaces a pipeline (its service cannot change).
    fn update_pipeline(&self, id: &str, input: &PipelineInput) -> Result<IngestionPipeline>;

    /// One pipeline by id.
    fn pipeline(&self, id: &str) -> Result<IngestionPipeline>;

    /// One pipeline by name.
    fn pipeline_by_name(&self, name: &str) -> Result<IngestionPipeline>;

    /// The pipelines of one service, or all, ordered by name.
    fn pipelines(&self, service_id: Option<&str>) -> Result<Vec<IngestionPipeline>>;

    /// Deletes a pipeline and its runs; returns how many runs went. Refused while a run is
    /// queued or running.
    fn delete_pipeline(&self, id: &str) -> Result<usize>;

    /// Records a new run of a pipeline, started now. A `Queued` or `Running` run is refused with
    /// [`crate::CatalogError::PipelineBusy`] while another run of the pipeline is queued or
    /// running (checked atomically); a `Skipped` run is always recorded, already finished.
    fn create_run(&self, run: &NewRun) -> Result<PipelineRun>;

    /// Moves a queued run to running and sets its start to now.
    fn start_run(&self, id: &str) -> Result<PipelineRun>;

    /// Ends a run with a final status (not `Queued` or `Running`) and, if given, its report.
    fn finish_run(
        &self,
        id: &str,
        status: RunStatus,
        report: Option<&Value>,
    ) -> Result<PipelineRun>;

    /// Updates a run's progress and appends log lines, keeping the last [`RUN_LOG_LINES`]. Cheap
    /// enough to call after every batch.
    fn record_run_progress(&self, id: &str, progress: RunProgress, lines: &[String]) -> Result<()>;

    /// One run with its log lines.
    fn pipeline_run(&self, id: &str) -> Result<PipelineRun>;

    /// The runs of a pipeline, newest (last created) first, at most `limit`, without log lines.
    fn pipeline_runs(&self, pipeline_id: &str, limit: usize) -> Result<Vec<PipelineRun>>;

    /// The queued or running run of a pipeline, if any.
    fn active_run(&self, pipeline_id: &str) -> Result<Option<PipelineRun>>;

    /// The kept log lines of a run with `seq` above `after_seq`, oldest first (for following a
    /// run: pass the last `seq` seen).
    fn run_log(&self, id: &str, after_seq: u64) -> Result<Vec<RunLogLine>>;

    /// Marks every queued or running run of a pipeline as interrupted (ended now) and returns
    /// their ids: at start, these are runs a crash left behind. Runs of `sagebridge ingest`
    /// (trigger `cli`) are left alone, since another process may be running them.
    fn mark_running_as_interrupted(&self) -> Result<Vec<String>>;

    /// Creates a gateway model (the name must be free).
    fn create_gateway_model(&self, input: &GatewayModelInput) -> Result<GatewayModelEntry>;

    /// Replaces the spec and credentials of a gateway model (`input.name` must be `name`).
    fn update_gateway_model(
        &self,
        name: &str,
        input: &GatewayModelInput,
    ) -> Result<GatewayModelEntry>;

    /// One gateway model by name.
    fn gateway_model(&self, name: &str) -> Result<GatewayModelEntry>;

    /// Every gateway model, ordered by name.
    fn gateway_models(&self) -> Result<Vec<GatewayModelEntry>>;

    /// One gateway model with its credentials in clear (its own, or its service's).
    fn gateway_model_with_secrets(&self, name: &str) -> Result<GatewayModelWithSecrets>;

    /// Every gateway model with its credentials in clear, ordered by name (to load the gateway).
    fn gateway_models_with_secrets(&self) -> Result<Vec<GatewayModelWithSecrets>>;

    /// Deletes a gateway model.
    fn delete_gateway_model_entry(&self, name: &str) -> Result<()>;

    /// Creates a gateway API key; the key is only in the answer.
    fn create_api_key(&self, input: &ApiKeyInput) -> Result<CreatedApiKey>;

    /// Every API key, ordered by name.
    fn api_keys(&self) -> Result<Vec<ApiKeyEntry>>;

    /// The key with this hash ([`crate::hash_api_key`]), expired or not.
    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyEntry>>;

    /// The unexpired key with this hash, recording its use at `now_ms` (at most once a minute
    /// per key, so a busy gateway does not write on every request).
    fn use_api_key(&self, key_hash: &str, now_ms: i64) -> Result<Option<ApiKeyEntry>>;

    /// Replaces the settings of an API key (expiry, allowed models, limits); `input.name` must
    /// be the key's name (usage is recorded under it, so it does not change).
    fn update_api_key(&self, id: &str, input: &ApiKeyInput) -> Result<ApiKeyEntry>;

    /// Deletes an API key.
    fn delete_api_key(&self, id: &str) -> Result<()>;

    /// Adds usage counts to the daily aggregates, all in one transaction.
    fn add_usage(&self, records: &[UsageRecord]) -> Result<()>;

    /// The daily aggregates that match `query`, ordered by day, key and model.
    fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageRecord>>;
}
