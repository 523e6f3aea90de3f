//! The SQLite schema and its migrations, tracked with `PRAGMA user_version`.
//!
//! Migration `i` (counting from 1) takes the database from version `i - 1` to `i`. Migrations are
//! only ever appended: a released migration is never edited.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{CatalogError, Result};

/// Each entity is kept as its JSON document; the columns beside it exist for lookups, filters and
/// incremental runs, and are written from the same values as the document.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE services (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        version     REAL NOT NULL,
        updated_at  INTEGER NOT NULL,
        document    TEXT NOT NULL
    );

    CREATE TABLE models (
        id             TEXT PRIMARY KEY,
        service        TEXT NOT NULL,
        name           TEXT NOT NULL,
        fqn            TEXT NOT NULL UNIQUE,
        arn            TEXT,
        creation_time  INTEGER,
        source_hash    TEXT,
        deleted        INTEGER NOT NULL DEFAULT 0,
        version        REAL NOT NULL,
        updated_at     INTEGER NOT NULL,
        document       TEXT NOT NULL,
        UNIQUE (service, name)
    );
    CREATE INDEX models_by_service_deleted ON models (service, deleted);
    CREATE INDEX models_by_arn ON models (arn);
    CREATE INDEX models_by_name ON models (name);

    CREATE TABLE model_versions (
        fqn         TEXT NOT NULL,
        version     REAL NOT NULL,
        updated_at  INTEGER NOT NULL,
        document    TEXT NOT NULL,
        PRIMARY KEY (fqn, version)
    );

    CREATE TABLE ingestion_runs (
        id           TEXT PRIMARY KEY,
        service      TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        status       TEXT NOT NULL,
        report       TEXT NOT NULL
    );
    CREATE INDEX ingestion_runs_by_service ON ingestion_runs (service, started_at);
    CREATE INDEX ingestion_runs_by_start ON ingestion_runs (started_at);

    CREATE TABLE gateway_models (
        name        TEXT PRIMARY KEY,
        spec        TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    "#,
    // 2: the source facts a model was built from, so an incremental run can rebuild it
    // without describing the model again.
    r#"
    ALTER TABLE models ADD COLUMN facts TEXT;
    "#,
];

/// The schema version this binary writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`LATEST`] in one transaction, or refuses a newer database.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if current > LATEST {
        return Err(CatalogError::SchemaTooNew {
            found: current,
            supported: LATEST,
        });
    }
    let start = usize::try_from(current).unwrap_or(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        tracing::debug!(version = index + 1, "applying catalog migration");
        tx.execute_batch(sql)?;
    }
    if current != LATEST {
        tx.pragma_update(None, "user_version", LATEST)?;
    }
    tx.commit()?;
    Ok(())
}
