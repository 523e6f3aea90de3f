//! The catalog's error type.

use std::path::PathBuf;

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The database file could not be opened or prepared.
    #[error("cannot open catalog database {path}: {source}; check the path and its permissions")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The folder for the database file could not be created.
    #[error("cannot create the folder {path} for the catalog database: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer sagebridge.
    #[error(
        "catalog database schema version {found} is newer than this binary supports ({supported}); \
         upgrade sagebridge or point it at another database"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// The database needs a migration, but an ingestion (possibly of an older sagebridge) is
    /// writing to it: migrating under it could break the run, so the caller tries again later.
    #[error(
        "catalog database schema version {from} needs migrating to {to}, but ingestion run {run_id} \
         of service {service:?} ({holder}) is writing to it; try again when that run has ended"
    )]
    MigrationWaitsForRun {
        from: i64,
        to: i64,
        service: String,
        run_id: String,
        holder: String,
    },
    /// Any other SQLite failure (disk full, database locked past the busy timeout, constraint).
    #[error("catalog database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored document could not be read back, or a value could not be serialized.
    #[error("catalog document for {what} is not valid json: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// The same model name appears twice in one batch: the whole batch is rejected.
    #[error("model {name:?} of service {service:?} appears twice in one write batch; deduplicate the batch")]
    DuplicateInBatch { service: String, name: String },
    /// An entity is missing something the catalog needs to store it.
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// A lookup by bare name matched models of several services.
    #[error("model name {name:?} exists in several services ({services}); name the service")]
    AmbiguousName { name: String, services: String },
    /// No entity of this kind has this id or name.
    #[error("{kind} {key:?} not found; check the id or name")]
    NotFound { kind: &'static str, key: String },
    /// Another entity of this kind already has this name.
    #[error("a {kind} named {name:?} already exists; choose another name or update that one")]
    Conflict { kind: &'static str, name: String },
    /// A service still has pipelines, gateway models or models, and the delete was not
    /// recursive.
    #[error(
        "service {name:?} still has {pipelines} ingestion pipeline(s), {gateway_models} gateway \
         model(s) and {models} model(s); delete them first or delete the service recursively"
    )]
    HasDependents {
        name: String,
        pipelines: usize,
        gateway_models: usize,
        models: usize,
    },
    /// Another ingestion run of the service holds its lock (and has shown life recently).
    #[error(
        "another ingestion run of service {service:?} is going (run {run_id}, {holder}, last seen \
         {seen_secs_ago} s ago); wait for it to end: two runs of one service must not interleave \
         their writes and deletions"
    )]
    ServiceBusy {
        service: String,
        run_id: String,
        holder: String,
        seen_secs_ago: i64,
    },
    /// A pipeline already has a queued or running run.
    #[error("ingestion pipeline {pipeline:?} already has run {run_id} queued or running; wait for it to finish")]
    PipelineBusy { pipeline: String, run_id: String },
    /// The secret key does not decrypt what the catalog holds.
    #[error(
        "the secret key does not decrypt the stored secrets: set SAGEBRIDGE_SECRET_KEY to the key \
         used when they were stored"
    )]
    SecretKeyMismatch,
    /// A secret had to be encrypted or decrypted, but the catalog was opened without a key.
    #[error(
        "this catalog was opened without a secret key, so it cannot store or read secrets; \
         open it with SqliteCatalog::open_with_key"
    )]
    SecretKeyMissing,
    /// `SAGEBRIDGE_SECRET_KEY` or the key file does not hold a 32-byte key.
    #[error(
        "the secret key from {origin} is not usable: {reason}; it must be 32 bytes in standard \
         base64 or 64 hexadecimal digits"
    )]
    SecretKeyInvalid { origin: String, reason: String },
    /// The key file could not be read or created.
    #[error("cannot read or create the secret key file {path}: {source}; check the folder's permissions")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file can be read by other users.
    #[error(
        "the secret key file {path} is accessible by group or other users (mode {mode:o}); \
         run chmod 600 on it"
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    /// A stored encrypted value is not in the `enc:v1:` format.
    #[error("the stored secret {field} is damaged; set it again")]
    SecretCorrupt { field: String },
}

impl CatalogError {
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn not_found(kind: &'static str, key: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            key: key.into(),
        }
    }

    pub(crate) fn conflict(kind: &'static str, name: impl Into<String>) -> Self {
        Self::Conflict {
            kind,
            name: name.into(),
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// The catalog's result type.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
