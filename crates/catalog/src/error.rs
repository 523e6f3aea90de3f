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
}

impl CatalogError {
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json {
            what: what.into(),
            source,
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
