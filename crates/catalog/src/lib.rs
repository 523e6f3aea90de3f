//! The sagebridge catalog: what we know about SageMaker models, services, ingestion runs and
//! gateway models, stored in an embedded SQLite database.
//!
//! Entities are shaped like OpenMetadata's JSON (an [`MlModel`] serializes to a valid
//! `entity/data/mlmodel.json` document), so the same values feed our own UI, the admin API and
//! the OpenMetadata REST sink. Versioning follows OpenMetadata too: a model starts at 0.1, every
//! change adds 0.1 and keeps the previous document, and a model that disappears from its source
//! is soft-deleted (and restored if it comes back).
//!
//! Callers hold an `Arc<dyn Catalog>`; the trait is synchronous and async code calls it through
//! `spawn_blocking`. [`SqliteCatalog`] is the implementation; a PostgreSQL one can sit behind the
//! same trait when several replicas share a catalog.
//!
//! # Layout
//!
//! - `entities`: the serde entities ([`MlModel`] and its parts, [`MlModelService`],
//!   [`IngestionRun`], [`GatewayModel`]).
//! - `catalog`: the [`Catalog`] trait and its request and result types ([`ModelWrite`],
//!   [`WriteOutcome`], [`KnownModel`], [`ListQuery`]).
//! - `sqlite`: [`SqliteCatalog`], one connection in WAL mode with cached prepared statements and
//!   one transaction per call.
//! - `schema`: the tables and their migrations, numbered by `PRAGMA user_version`.
//! - `control`: the control plane's records (services with their connection, ingestion
//!   pipelines and their runs, gateway models, gateway API keys) and the [`ControlStore`] trait;
//!   `control_sqlite` implements it for [`SqliteCatalog`].
//! - `secrets`: encryption of secrets at rest (AES-256-GCM) and the [`SecretKey`].
//! - `error`: [`CatalogError`].

mod catalog;
mod control;
mod control_sqlite;
mod entities;
mod error;
mod schema;
mod secrets;
mod sqlite;

pub use catalog::{Catalog, KnownModel, ListQuery, ModelWrite, WriteOutcome};
pub use control::{
    ApiKeyEntry, ApiKeyInput, ControlStore, CreatedApiKey, GatewayCredentials, GatewayModelEntry,
    GatewayModelInput, GatewayModelWithSecrets, IngestionPipeline, NewRun, PipelineInput,
    PipelineRun, RunLogLine, RunProgress, RunTrigger, ServiceDeletion, ServiceEntry, ServiceInput,
    ServiceWithSecrets, UsageQuery, UsageRecord, RUN_LOG_LINES, RUN_LOG_LINE_CHARS,
};
pub use entities::{
    new_id, EntityReference, FeatureSource, FeatureSourceDataType, GatewayModel, IngestionRun,
    LabelType, MlFeature, MlFeatureDataType, MlHyperParameter, MlModel, MlModelService,
    MlModelServiceType, MlStore, RunStatus, TagLabel, TagSource, TagState,
};
pub use error::{CatalogError, Result};
pub use schema::INGESTION_LOCK_STALE_AFTER_MS;
pub use secrets::{
    hash_api_key, ApiKeySecret, ClearAwsConfig, KeySource, SecretFlags, SecretKey,
    API_KEY_DISPLAY_CHARS, API_KEY_PREFIX, REDACTED, SECRET_FIELDS, SECRET_KEY_ENV,
};
pub use sqlite::SqliteCatalog;

/// The schema version a freshly opened database has (its `PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = schema::LATEST;
