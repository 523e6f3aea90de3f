//! The `Catalog` trait and the plain types its operations take and return.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::entities::{GatewayModel, IngestionRun, MlModel, MlModelService};
use crate::error::Result;

/// The store behind ingestion, the admin API and the gateway registry.
///
/// Every method is blocking (SQLite does file I/O under a lock): async callers run them with
/// `tokio::task::spawn_blocking`, holding the catalog as `Arc<dyn Catalog>`. Each method is atomic:
/// it either applies all its changes or none.
pub trait Catalog: Send + Sync {
    /// Creates the service, or updates the stored one with the same name.
    ///
    /// The stored id is kept; the version goes up by 0.1 only when something changed. Returns the
    /// service as stored.
    fn upsert_service(&self, service: &MlModelService) -> Result<MlModelService>;

    /// The service with this name, if any.
    fn get_service(&self, name: &str) -> Result<Option<MlModelService>>;

    /// Every service, ordered by name.
    fn list_services(&self) -> Result<Vec<MlModelService>>;

    /// Writes a batch of models in one transaction and says what happened to them.
    ///
    /// A new model is created at version 0.1. A stored model whose `sourceHash` differs (or, when
    /// the incoming model has no hash, whose document differs) becomes a new version: the previous
    /// document is kept in the version history, the version goes up by 0.1 and `updatedAt` is
    /// refreshed. A soft-deleted model seen again is restored, which counts as an update. Anything
    /// else is left untouched and counted as unchanged. If any model of the batch fails, nothing of
    /// the batch is written.
    fn write_models(&self, models: &[ModelWrite]) -> Result<WriteOutcome>;

    /// What the catalog knows about each model of a service (deleted ones included), by name, so
    /// an incremental run can skip models whose source did not change.
    fn known_models(&self, service: &str) -> Result<HashMap<String, KnownModel>>;

    /// The source facts stored with a model by [`ModelWrite::facts`], if any.
    fn stored_facts(&self, service: &str, name: &str) -> Result<Option<String>>;

    /// Soft-deletes every live model of `service` whose name is not in `seen_names`, in one
    /// transaction, and returns their names in order.
    ///
    /// Callers only do this after a run that listed the whole service: with an empty `seen_names`
    /// every model of the service is marked deleted.
    fn mark_deleted(&self, service: &str, seen_names: &HashSet<String>) -> Result<Vec<String>>;

    /// One model, soft-deleted ones included.
    ///
    /// Without a service, `name` is looked up as a fully qualified name first, then as a bare
    /// name; a bare name found in several services is an error.
    fn get_model(&self, service: Option<&str>, name: &str) -> Result<Option<MlModel>>;

    /// Models matching the query, ordered by service and name.
    fn list_models(&self, query: &ListQuery) -> Result<Vec<MlModel>>;

    /// How many models match the query, ignoring its `limit` and `offset`.
    fn count_models(&self, query: &ListQuery) -> Result<u64>;

    /// Every version of a model, newest (the current one) first; empty for an unknown FQN.
    fn model_versions(&self, fqn: &str) -> Result<Vec<MlModel>>;

    /// Stores a run, or replaces the stored run with the same id (a run is recorded when it starts
    /// and again when it ends).
    fn record_run(&self, run: &IngestionRun) -> Result<()>;

    /// Takes the ingestion lock of `service` for run `run_id` (held by `holder`, e.g. a pid),
    /// so two runs of one service never interleave. A lock whose holder has not shown life
    /// ([`Catalog::touch_service_lock`]) for `stale_after_ms` is taken over (a crashed run);
    /// a live one answers [`crate::CatalogError::ServiceBusy`]. A lock whose holder
    /// `holder_gone` says no longer exists (a killed process on this host) is taken over at
    /// once, in the same transaction.
    fn lock_service(
        &self,
        service: &str,
        run_id: &str,
        holder: &str,
        now_ms: i64,
        stale_after_ms: i64,
        holder_gone: &dyn Fn(&str) -> bool,
    ) -> Result<()>;

    /// Shows that run `run_id` still holds the lock of `service`.
    fn touch_service_lock(&self, service: &str, run_id: &str, now_ms: i64) -> Result<()>;

    /// Releases the lock of `service` if run `run_id` holds it.
    fn unlock_service(&self, service: &str, run_id: &str) -> Result<()>;

    /// One run by id.
    fn get_run(&self, id: &str) -> Result<Option<IngestionRun>>;

    /// The latest runs, newest first, of one service or of all.
    fn list_runs(&self, service: Option<&str>, limit: usize) -> Result<Vec<IngestionRun>>;

    /// Creates or replaces a gateway model and returns it as stored.
    fn put_gateway_model(&self, model: &GatewayModel) -> Result<GatewayModel>;

    /// One gateway model by name.
    fn get_gateway_model(&self, name: &str) -> Result<Option<GatewayModel>>;

    /// Every gateway model, ordered by name.
    fn list_gateway_models(&self) -> Result<Vec<GatewayModel>>;

    /// Deletes a gateway model; returns whether it existed.
    fn delete_gateway_model(&self, name: &str) -> Result<bool>;
}

/// One model to write, with the source facts the catalog indexes for incremental runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelWrite {
    /// The model; its `service.name` and `name` identify it in the catalog.
    pub model: MlModel,
    /// The source's own identifier (the SageMaker model ARN).
    pub arn: Option<String>,
    /// When the source created the model, in epoch milliseconds.
    pub creation_time: Option<i64>,
    /// The source facts the model was built from (opaque JSON), for incremental runs.
    pub facts: Option<String>,
}

impl From<MlModel> for ModelWrite {
    fn from(model: MlModel) -> Self {
        Self {
            model,
            arn: None,
            creation_time: None,
            facts: None,
        }
    }
}

/// What [`Catalog::write_models`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WriteOutcome {
    pub created: usize,
    /// Changed or restored models.
    pub updated: usize,
    pub unchanged: usize,
}

impl WriteOutcome {
    /// Adds another batch's counts to these.
    pub fn add(&mut self, other: WriteOutcome) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// The indexed facts of a stored model, for incremental runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnownModel {
    pub arn: Option<String>,
    pub creation_time: Option<i64>,
    pub source_hash: Option<String>,
    pub deleted: bool,
}

/// A filter for [`Catalog::list_models`]; the default lists every live model.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListQuery {
    /// Only models of this service.
    pub service: Option<String>,
    /// Include soft-deleted models.
    pub include_deleted: bool,
    /// Only models whose name contains this text, ignoring ASCII case.
    pub name_contains: Option<String>,
    /// At most this many models.
    pub limit: Option<usize>,
    /// Skip this many models first.
    pub offset: usize,
}
