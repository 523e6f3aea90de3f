//! Where a run writes. Each sink is built from the workflow's `sink:` the way Vector builds its
//! components ([`SinkConfig::build`]) and used through one small [`Sink`] trait, so the runner
//! never asks which sink it has and a new sink is one new module here.
//!
//! - [`catalog`]: the embedded SQLite catalog (`type: catalog`, the default). It keeps the run
//!   history and the facts incremental runs rebuild unchanged models from; its blocking calls
//!   run on `spawn_blocking` inside the sink.
//! - [`openmetadata`]: an OpenMetadata server over its REST API (`type: metadata-rest`). It
//!   keeps neither: its incremental runs read the service's models and their `sourceHash`
//!   back from OpenMetadata and prove a model unchanged from that hash
//!   ([`crate::fingerprint`]).

pub mod catalog;
pub mod openmetadata;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use futures::future::BoxFuture;
use futures::FutureExt as _;
use sagebridge_aws::AwsConfig;
use sagebridge_catalog::{IngestionRun, KnownModel, ModelWrite, WriteOutcome};

use crate::config::{OpenMetadataServerConfig, SinkConfig, WorkflowConfig};
use crate::facts::ModelFacts;
use crate::mapping::ServiceRef;

pub use catalog::CatalogSink;
pub use openmetadata::{MetadataRestSink, OmError, OpenMetadata};

/// What building a sink needs besides its own `config:`.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// `source.serviceName`: the service every model of the run belongs to.
    pub service: String,
    /// The SageMaker connection, stored with the service (secrets never in clear).
    pub aws: AwsConfig,
    /// `sourceConfig.config.overrideMetadata`.
    pub override_metadata: bool,
    /// `workflowConfig.openMetadataServerConfig`, for `metadata-rest`.
    pub open_metadata: Option<OpenMetadataServerConfig>,
    /// Overrides the `catalog` sink's `config.path` (`--catalog`).
    pub catalog_path: Option<PathBuf>,
}

impl SinkContext {
    /// The context of a workflow's sink.
    pub fn new(cfg: &WorkflowConfig) -> Self {
        Self {
            service: cfg.source.service_name.clone(),
            aws: cfg.aws().clone(),
            override_metadata: cfg.metadata().override_metadata,
            open_metadata: cfg.workflow_config.open_metadata_server_config.clone(),
            catalog_path: None,
        }
    }
}

/// A sink could not do what the run asked: the run stops (a refused row is not this, see
/// [`Written::rejected`]).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("catalog: {0}")]
    Catalog(#[from] sagebridge_catalog::CatalogError),
    /// Its message names OpenMetadata already.
    #[error(transparent)]
    OpenMetadata(#[from] OmError),
    #[error("catalog worker stopped: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// One model the sink refused while writing the rest of its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub model: String,
    /// Why, as a sentence for the report.
    pub reason: String,
}

/// What writing one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub outcome: WriteOutcome,
    /// Models refused one by one; the run reports each as failed and goes on.
    pub rejected: Vec<Rejected>,
    /// Some models of the batch could not be written at all (the server kept failing): they
    /// are in `rejected`, and the run must not delete anything (what the sink has is not what
    /// the run saw).
    pub incomplete: bool,
}

/// How a sink lets an incremental run prove a model unchanged since it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incremental {
    /// The sink keeps each model's ARN, creation time and facts ([`Sink::stored_facts`]): an
    /// unchanged model is rebuilt from them (tags and links read again) and written.
    StoredFacts,
    /// The sink gives back each model's `sourceHash` only ([`KnownModel::source_hash`], made by
    /// [`crate::fingerprint::source_hash`]): a model whose hash proves it unchanged is not
    /// described and not written at all; any other model is read in full.
    SourceHash,
}

/// The operations one run needs from where it writes. All of them are scoped to the service
/// of the [`SinkContext`] the sink was built with.
pub trait Sink: Send + Sync {
    /// Whether the sink answers and accepts our credentials; a sentence on what it found.
    fn healthcheck(&self) -> BoxFuture<'_, Result<String, SinkError>>;

    /// Creates or updates the service; its reference goes into every model.
    fn open_service(&self) -> BoxFuture<'_, Result<ServiceRef, SinkError>>;

    /// What the sink knows of the service's live models (for incremental runs and the
    /// mass-delete check).
    fn known_models(&self) -> BoxFuture<'_, Result<HashMap<String, KnownModel>, SinkError>>;

    /// The facts an earlier run stored with a model; `None` when there are none or they
    /// cannot be read back (the model is then described again).
    fn stored_facts(&self, name: String) -> BoxFuture<'_, Option<ModelFacts>>;

    /// Whether [`ModelWrite::facts`] is kept (and so worth filling in).
    fn keeps_facts(&self) -> bool;

    /// How an incremental run decides that a model is unchanged.
    fn incremental(&self) -> Incremental {
        Incremental::StoredFacts
    }

    /// Writes one batch (the catalog in one transaction; OpenMetadata in bulk requests).
    fn write(&self, batch: Vec<ModelWrite>) -> BoxFuture<'_, Result<Written, SinkError>>;

    /// Soft-deletes the service's models not in `seen` (names); returns how many.
    fn mark_deleted(&self, seen: HashSet<String>) -> BoxFuture<'_, Result<usize, SinkError>>;

    /// Stores the run (at its start and its end); a no-op for a sink without run history.
    fn record_run(&self, run: IngestionRun) -> BoxFuture<'_, Result<(), SinkError>>;

    /// Takes the service's ingestion lock for run `run_id` (two runs of one service must not
    /// interleave); a sink that cannot hold one (OpenMetadata) does nothing.
    fn lock(&self, _run_id: String) -> BoxFuture<'_, Result<(), SinkError>> {
        futures::future::ready(Ok(())).boxed()
    }

    /// Shows that run `run_id` is alive and still holds the lock.
    fn touch_lock(&self, _run_id: String) -> BoxFuture<'_, Result<(), SinkError>> {
        futures::future::ready(Ok(())).boxed()
    }

    /// Releases the lock run `run_id` holds.
    fn unlock(&self, _run_id: String) -> BoxFuture<'_, Result<(), SinkError>> {
        futures::future::ready(Ok(())).boxed()
    }
}

impl SinkConfig {
    /// Builds the sink this config describes.
    pub async fn build(&self, ctx: &SinkContext) -> Result<Box<dyn Sink>, SinkError> {
        let sink: Box<dyn Sink> = match self {
            SinkConfig::Catalog(c) => Box::new(CatalogSink::open(c, ctx).await?),
            SinkConfig::MetadataRest(_) => Box::new(MetadataRestSink::new(ctx)?),
        };
        Ok(sink)
    }

    /// The server `test-connection` checks for this sink (its step name), if it has one: the
    /// embedded catalog is a local file and has none.
    pub fn server_name(&self) -> Option<&'static str> {
        match self {
            SinkConfig::Catalog(_) => None,
            SinkConfig::MetadataRest(_) => Some("OpenMetadata"),
        }
    }
}
