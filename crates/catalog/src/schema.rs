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
    // 3: the control plane. Services get the connection the admin API stores (`aws_config`,
    // secrets encrypted by the store); pipelines, run progress and log lines, gateway model
    // credentials and API keys are new. Secrets that older versions may have left in clear in
    // a service document are replaced by the redaction marker. The tables of migration 1 this one
    // alters are created first if a file lacks them (a partial file, as tests build), so the
    // ALTERs cannot fail on it.
    r#"
    CREATE TABLE IF NOT EXISTS services (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        version     REAL NOT NULL,
        updated_at  INTEGER NOT NULL,
        document    TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS ingestion_runs (
        id           TEXT PRIMARY KEY,
        service      TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        status       TEXT NOT NULL,
        report       TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS gateway_models (
        name        TEXT PRIMARY KEY,
        spec        TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
    );

    ALTER TABLE services ADD COLUMN description TEXT;
    ALTER TABLE services ADD COLUMN aws_config TEXT;
    ALTER TABLE services ADD COLUMN created_at INTEGER;
    UPDATE services SET created_at = updated_at,
                        description = json_extract(document, '$.description');
    UPDATE services
       SET document = json_set(document, '$.connection.config.awsConfig.awsSecretAccessKey',
                               '**********')
     WHERE json_type(document, '$.connection.config.awsConfig.awsSecretAccessKey') = 'text';
    UPDATE services
       SET document = json_set(document, '$.connection.config.awsConfig.awsSessionToken',
                               '**********')
     WHERE json_type(document, '$.connection.config.awsConfig.awsSessionToken') = 'text';

    CREATE TABLE ingestion_pipelines (
        id             TEXT PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        service_id     TEXT NOT NULL REFERENCES services (id),
        description    TEXT,
        source_config  TEXT NOT NULL,
        schedule       TEXT,
        enabled        INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
    );
    CREATE INDEX ingestion_pipelines_by_service ON ingestion_pipelines (service_id, name);

    ALTER TABLE ingestion_runs ADD COLUMN pipeline_id TEXT;
    ALTER TABLE ingestion_runs ADD COLUMN run_trigger TEXT NOT NULL DEFAULT 'cli';
    ALTER TABLE ingestion_runs ADD COLUMN models_done INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE ingestion_runs ADD COLUMN models_total INTEGER;
    CREATE INDEX ingestion_runs_by_pipeline ON ingestion_runs (pipeline_id, started_at);
    -- At most one queued or running run per pipeline, whoever writes.
    CREATE UNIQUE INDEX ingestion_runs_one_active ON ingestion_runs (pipeline_id)
        WHERE pipeline_id IS NOT NULL AND status IN ('queued', 'running');

    CREATE TABLE run_log_lines (
        run_id  TEXT NOT NULL REFERENCES ingestion_runs (id) ON DELETE CASCADE,
        seq     INTEGER NOT NULL,
        line    TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;

    ALTER TABLE gateway_models ADD COLUMN service_id TEXT REFERENCES services (id);
    ALTER TABLE gateway_models ADD COLUMN aws_config TEXT;
    ALTER TABLE gateway_models ADD COLUMN created_at INTEGER;
    UPDATE gateway_models SET created_at = updated_at;
    CREATE INDEX gateway_models_by_service ON gateway_models (service_id);

    CREATE TABLE api_keys (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        prefix          TEXT NOT NULL,
        key_hash        TEXT NOT NULL UNIQUE,
        expires_at      INTEGER,
        allowed_models  TEXT,
        created_at      INTEGER NOT NULL,
        last_used_at    INTEGER
    );

    -- Small named values, e.g. the encrypted check value of the secret key.
    CREATE TABLE settings (
        name   TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    "#,
    // 4: container environments and hyperparameters re-redacted by the stricter rules of
    // `sagebridge_aws::secret` (an allow-list of harmless settings, credential-looking values),
    // in stored documents, facts and versions: done in code (`redact_stored`), after this.
    "SELECT 1;",
    // 5: one ingestion run per service at a time (a lock with a heartbeat, taken over when
    // stale).
    "CREATE TABLE ingestion_locks (
        service       TEXT PRIMARY KEY,
        run_id        TEXT NOT NULL,
        holder        TEXT NOT NULL,
        acquired_at   INTEGER NOT NULL,
        heartbeat_at  INTEGER NOT NULL
    );",
];

/// The migration after which stored documents are re-redacted.
const REDACTION_MIGRATION: usize = 4;

/// Applies [`sagebridge_aws::secret::redact_secret_keys`] to every stored model document, its
/// facts and its versions, writing back only what changed.
fn redact_stored(tx: &rusqlite::Transaction<'_>) -> Result<usize> {
    let mut changed = 0usize;
    for (table, column) in [
        ("models", "document"),
        ("models", "facts"),
        ("model_versions", "document"),
    ] {
        let exists: bool = tx.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            rusqlite::params![table, column],
            |row| row.get(0),
        )?;
        if !exists {
            continue;
        }
        let rows: Vec<(i64, String)> = {
            let mut statement = tx.prepare(&format!(
                "SELECT rowid, {column} FROM {table} WHERE {column} IS NOT NULL"
            ))?;
            let mapped = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            mapped.collect::<rusqlite::Result<_>>()?
        };
        for (rowid, text) in rows {
            let Ok(stored) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let mut value = stored.clone();
            sagebridge_aws::secret::redact_secret_keys(&mut value);
            if value != stored {
                tx.execute(
                    &format!("UPDATE {table} SET {column} = ?1 WHERE rowid = ?2"),
                    rusqlite::params![value.to_string(), rowid],
                )?;
                changed += 1;
            }
        }
    }
    if changed > 0 {
        tracing::info!(changed, "catalog migration: stored documents re-redacted");
    }
    Ok(changed)
}

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
    let mut redacted = false;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        tracing::debug!(version = index + 1, "applying catalog migration");
        tx.execute_batch(sql)?;
        if index + 1 == REDACTION_MIGRATION {
            redacted = redact_stored(&tx)? > 0;
        }
    }
    if current != LATEST {
        tx.pragma_update(None, "user_version", LATEST)?;
    }
    tx.commit()?;
    if redacted {
        // The old text of the re-redacted rows must not stay in the write-ahead log or in free
        // pages: copy the log into the file, then rebuild the file.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
    }
    Ok(())
}
