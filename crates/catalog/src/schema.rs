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
    // 6: gateway usage per UTC day, API key (by name) and model, with the failures by error
    // class beside it; per-key limits (requests and tokens per minute) on the API keys.
    "CREATE TABLE gateway_usage (
        day                TEXT NOT NULL,
        key_name           TEXT NOT NULL,
        model              TEXT NOT NULL,
        requests           INTEGER NOT NULL,
        prompt_tokens      INTEGER NOT NULL,
        completion_tokens  INTEGER NOT NULL,
        latency_ms         INTEGER NOT NULL,
        PRIMARY KEY (day, key_name, model)
    ) WITHOUT ROWID;
    CREATE TABLE gateway_usage_errors (
        day       TEXT NOT NULL,
        key_name  TEXT NOT NULL,
        model     TEXT NOT NULL,
        class     TEXT NOT NULL,
        count     INTEGER NOT NULL,
        PRIMARY KEY (day, key_name, model, class)
    ) WITHOUT ROWID;
    ALTER TABLE api_keys ADD COLUMN requests_per_minute INTEGER;
    ALTER TABLE api_keys ADD COLUMN tokens_per_minute INTEGER;",
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

/// The service, run and holder of an ingestion lock with a recent heartbeat, if any (none before
/// the lock table exists).
fn live_ingestion_lock(
    tx: &rusqlite::Transaction<'_>,
    now_ms: i64,
) -> Result<Option<(String, String, String)>> {
    use rusqlite::OptionalExtension;
    let exists: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'ingestion_locks'",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(None);
    }
    Ok(tx
        .query_row(
            "SELECT service, run_id, holder FROM ingestion_locks WHERE heartbeat_at > ?1
             ORDER BY heartbeat_at DESC LIMIT 1",
            [now_ms - INGESTION_LOCK_STALE_AFTER_MS],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?)
}

/// The schema version this binary writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// How long an ingestion lock lives without a heartbeat before another run may take it over
/// (a run touches its lock at every batch; a crashed run leaves one behind).
pub const INGESTION_LOCK_STALE_AFTER_MS: i64 = 10 * 60 * 1000;

/// Brings the database to [`LATEST`] in one transaction, or refuses a newer database.
///
/// An up-to-date database is only read: no write lock is taken, so opening it never waits for
/// (or blocks) an ingestion writing in another process. A database that needs a migration is
/// not migrated while an ingestion holds a live lock on it (the run was written against the
/// schema it started with): that is [`CatalogError::MigrationWaitsForRun`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_with(conn, MIGRATIONS, sagebridge_aws::clock::now_millis())
}

fn migrate_with(conn: &mut Connection, migrations: &[&str], now_ms: i64) -> Result<()> {
    let latest = migrations.len() as i64;
    let version = |conn: &Connection| -> Result<i64> {
        Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
    };
    let seen = version(conn)?;
    if seen > latest {
        return Err(CatalogError::SchemaTooNew {
            found: seen,
            supported: latest,
        });
    }
    if seen == latest {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated between the read above and the lock.
    let current = version(&tx)?;
    if current > latest {
        return Err(CatalogError::SchemaTooNew {
            found: current,
            supported: latest,
        });
    }
    if current == latest {
        return Ok(());
    }
    if let Some((service, run_id, holder)) = live_ingestion_lock(&tx, now_ms)? {
        return Err(CatalogError::MigrationWaitsForRun {
            from: current,
            to: latest,
            service,
            run_id,
            holder,
        });
    }
    let start = usize::try_from(current).unwrap_or(0);
    let mut redacted = false;
    for (index, sql) in migrations.iter().enumerate().skip(start) {
        tracing::debug!(version = index + 1, "applying catalog migration");
        tx.execute_batch(sql)?;
        if index + 1 == REDACTION_MIGRATION {
            redacted = redact_stored(&tx)? > 0;
        }
    }
    tx.pragma_update(None, "user_version", latest)?;
    tx.commit()?;
    if redacted {
        // The old text of the re-redacted rows must not stay in the write-ahead log or in free
        // pages: copy the log into the file, then rebuild the file.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn at_version(n: usize) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_with(&mut conn, &MIGRATIONS[..n], NOW).unwrap();
        conn
    }

    fn user_version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    fn with_next(extra: &'static str) -> Vec<&'static str> {
        let mut all = MIGRATIONS.to_vec();
        all.push(extra);
        all
    }

    #[test]
    fn a_live_ingestion_lock_postpones_a_migration_and_a_stale_one_does_not() {
        let mut conn = at_version(MIGRATIONS.len());
        conn.execute(
            "INSERT INTO ingestion_locks (service, run_id, holder, acquired_at, heartbeat_at)
             VALUES ('sm', 'run-1', 'pid 42', ?1, ?1)",
            [NOW - 1_000],
        )
        .unwrap();
        let next = with_next("CREATE TABLE added_later (x INTEGER);");

        let err = migrate_with(&mut conn, &next, NOW).unwrap_err();
        match &err {
            CatalogError::MigrationWaitsForRun {
                from,
                to,
                service,
                run_id,
                holder,
            } => {
                assert_eq!((*from, *to), (LATEST, LATEST + 1));
                assert_eq!((service.as_str(), run_id.as_str()), ("sm", "run-1"));
                assert_eq!(holder, "pid 42");
            }
            other => panic!("expected MigrationWaitsForRun, got {other:?}"),
        }
        assert!(err
            .to_string()
            .contains("try again when that run has ended"));
        assert_eq!(user_version(&conn), LATEST, "nothing was migrated");

        // The same lock without a heartbeat for longer than the stale window is a crashed run.
        let later = NOW + INGESTION_LOCK_STALE_AFTER_MS;
        migrate_with(&mut conn, &next, later).unwrap();
        assert_eq!(user_version(&conn), LATEST + 1);
        conn.execute("INSERT INTO added_later (x) VALUES (1)", [])
            .unwrap();
    }

    #[test]
    fn an_up_to_date_database_is_opened_without_a_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate(&mut conn).unwrap();
        }
        // Another process holds the write lock (an ingestion writing a batch).
        let mut writer = Connection::open(&path).unwrap();
        let held = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let mut reader = Connection::open(&path).unwrap();
        // No busy timeout: a migration that wanted the write lock would fail at once.
        migrate(&mut reader).unwrap();
        assert_eq!(user_version(&reader), LATEST);
        held.rollback().unwrap();
    }

    #[test]
    fn migration_6_keeps_api_keys_and_adds_their_limits_and_the_usage_tables() {
        let mut conn = at_version(5);
        conn.execute(
            "INSERT INTO api_keys (id, name, prefix, key_hash, created_at)
             VALUES ('k1', 'ci', 'sbk_abcd', 'h1', 1)",
            [],
        )
        .unwrap();
        migrate_with(&mut conn, &MIGRATIONS[..6], NOW).unwrap();
        let (name, rpm, tpm): (String, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT name, requests_per_minute, tokens_per_minute FROM api_keys",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((name.as_str(), rpm, tpm), ("ci", None, None));
        conn.execute(
            "INSERT INTO gateway_usage VALUES ('2030-01-02', 'ci', 'm', 1, 2, 3, 4)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO gateway_usage_errors VALUES ('2030-01-02', 'ci', 'm', 'timeout', 1)",
            [],
        )
        .unwrap();
        // One row per day, key and model.
        assert!(conn
            .execute(
                "INSERT INTO gateway_usage VALUES ('2030-01-02', 'ci', 'm', 1, 0, 0, 0)",
                [],
            )
            .is_err());
    }

    #[test]
    fn a_newer_database_is_refused_without_being_written() {
        let mut conn = at_version(MIGRATIONS.len());
        conn.pragma_update(None, "user_version", LATEST + 3)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, CatalogError::SchemaTooNew { found, supported }
            if found == LATEST + 3 && supported == LATEST)
        );
        assert_eq!(user_version(&conn), LATEST + 3);
    }
}
