//! `SqliteCatalog`: the embedded catalog, one SQLite database file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::catalog::{Catalog, KnownModel, ListQuery, ModelWrite, WriteOutcome};
use crate::entities::{new_id, GatewayModel, IngestionRun, MlModel, MlModelService, RunStatus};
use crate::error::{CatalogError, Result};
use crate::schema;
use crate::secrets::{self, SecretBox, SecretKey};

/// How long a writer waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Enough room for every statement this module prepares, so none is ever re-parsed.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// The first version of an entity, as in OpenMetadata.
pub(crate) const FIRST_VERSION: f64 = 0.1;

/// The catalog in one SQLite database (WAL mode, `synchronous=NORMAL`).
///
/// One connection behind a mutex serves every call; WAL lets other processes (a second
/// `sagebridge` reading the same file) read while this one writes.
#[derive(Debug)]
pub struct SqliteCatalog {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
    /// The cipher for secrets at rest; `None` when opened without a key (then the control
    /// store refuses to write or read secrets).
    secrets: Option<SecretBox>,
}

impl SqliteCatalog {
    /// Opens (creating if needed, with its parent folder) the database at `path` and brings its
    /// schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| CatalogError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        let open_error = |source| CatalogError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        Self::configure(&mut conn).map_err(|error| match error {
            CatalogError::Sqlite(source) => open_error(source),
            other => other,
        })?;
        tracing::debug!(path = %path.display(), "opened catalog");
        Ok(Self {
            conn: Mutex::new(conn),
            path: Some(path.to_owned()),
            secrets: None,
        })
    }

    /// [`SqliteCatalog::open`] with the key that encrypts secrets at rest (see
    /// [`SecretKey::for_catalog`]). A key other than the one the catalog's secrets were stored
    /// with is refused here with [`CatalogError::SecretKeyMismatch`]; the first key a catalog is
    /// opened with becomes its key.
    pub fn open_with_key(path: impl AsRef<Path>, key: SecretKey) -> Result<Self> {
        Self::open(path)?.with_key(key)
    }

    /// [`SqliteCatalog::open_in_memory`] with a secret key.
    pub fn open_in_memory_with_key(key: SecretKey) -> Result<Self> {
        Self::open_in_memory()?.with_key(key)
    }

    fn with_key(mut self, key: SecretKey) -> Result<Self> {
        let cipher = SecretBox::new(&key);
        {
            let mut conn = self.conn();
            let read_check = |conn: &Connection| -> Result<Option<String>> {
                Ok(conn
                    .prepare_cached("SELECT value FROM settings WHERE name = ?1")?
                    .query_row([secrets::KEY_CHECK_FIELD], |row| row.get(0))
                    .optional()?)
            };
            // Read first: a catalog that already has its key check is not written (and so
            // does not wait for the write lock an ingestion may hold).
            let check = match read_check(&conn)? {
                Some(sealed) => Some(sealed),
                None => {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let check = read_check(&tx)?;
                    if check.is_none() {
                        let sealed = cipher
                            .encrypt(secrets::KEY_CHECK_FIELD, secrets::KEY_CHECK_PLAINTEXT)?;
                        tx.prepare_cached("INSERT INTO settings (name, value) VALUES (?1, ?2)")?
                            .execute([secrets::KEY_CHECK_FIELD, sealed.as_str()])?;
                    }
                    tx.commit()?;
                    check
                }
            };
            if let Some(sealed) = check {
                let plain = cipher.decrypt(secrets::KEY_CHECK_FIELD, &sealed)?;
                if plain != secrets::KEY_CHECK_PLAINTEXT {
                    return Err(CatalogError::SecretKeyMismatch);
                }
            }
        }
        self.secrets = Some(cipher);
        Ok(self)
    }

    /// The cipher for secrets, when the catalog was opened with a key.
    pub(crate) fn cipher(&self) -> Option<&SecretBox> {
        self.secrets.as_ref()
    }

    /// Opens a private database that lives as long as this value (for tests and dry runs).
    pub fn open_in_memory() -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        Self::configure(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: None,
            secrets: None,
        })
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the open database (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn()
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    fn configure(conn: &mut Connection) -> Result<()> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        // An in-memory database answers "memory" here, which is fine.
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted and overwritten content is zeroed, so a replaced secret (a re-redacted
        // document, a deleted key) does not linger in free pages of the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        schema::migrate(conn)
    }

    /// The connection. A panic in another thread cannot leave it mid-transaction (a dropped
    /// transaction rolls back), so a poisoned lock is safe to take over.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) use sagebridge_aws::clock::now_millis;

/// The version after `version`: +0.1, rounded to one decimal as OpenMetadata does, so that
/// repeated additions never drift (0.1 + 0.2 is 0.3 here, not 0.30000000000000004).
pub(crate) fn next_version(version: f64) -> f64 {
    ((version * 10.0).round() + 1.0) / 10.0
}

pub(crate) fn to_json<T: Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| CatalogError::json(what, source))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| CatalogError::json(what, source))
}

fn service_of(model: &MlModel) -> Result<&str> {
    match model.service.name.as_deref() {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(CatalogError::invalid(
            "model",
            format!("model {:?} has no service name", model.name),
        )),
    }
}

fn check_model(model: &MlModel) -> Result<()> {
    if model.name.is_empty() {
        return Err(CatalogError::invalid("model", "the model name is empty"));
    }
    if model.fully_qualified_name.is_empty() {
        return Err(CatalogError::invalid(
            "model",
            format!("model {:?} has no fullyQualifiedName", model.name),
        ));
    }
    Ok(())
}

/// Whether `incoming` says the same as the stored document (ignoring what the catalog sets).
fn same_content(stored: &MlModel, incoming: &MlModel) -> bool {
    let mut candidate = incoming.clone();
    candidate.id.clone_from(&stored.id);
    candidate.version = stored.version;
    candidate.updated_at = stored.updated_at;
    candidate.deleted = stored.deleted;
    candidate == *stored
}

/// The `WHERE` clause and parameters of a model query.
fn model_filter(query: &ListQuery) -> (String, Vec<SqlValue>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    if let Some(service) = &query.service {
        values.push(SqlValue::Text(service.clone()));
        clauses.push(format!("service = ?{}", values.len()));
    }
    if !query.include_deleted {
        clauses.push("deleted = 0".to_owned());
    }
    if let Some(text) = query.name_contains.as_ref().filter(|t| !t.is_empty()) {
        values.push(SqlValue::Text(text.clone()));
        clauses.push(format!("instr(lower(name), lower(?{})) > 0", values.len()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (filter, values)
}

/// The stored state of one model, as `write_models` needs it.
struct StoredRow {
    id: String,
    version: f64,
    deleted: bool,
    source_hash: Option<String>,
}

impl Catalog for SqliteCatalog {
    fn lock_service(
        &self,
        service: &str,
        run_id: &str,
        holder: &str,
        now_ms: i64,
        stale_after_ms: i64,
        holder_gone: &dyn Fn(&str) -> bool,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<(String, String, i64)> = tx
            .prepare_cached(
                "SELECT run_id, holder, heartbeat_at FROM ingestion_locks WHERE service = ?1",
            )?
            .query_row([service], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        if let Some((other, other_holder, seen)) = current {
            let gone = other != run_id && holder_gone(&other_holder);
            if other != run_id && now_ms - seen < stale_after_ms && !gone {
                return Err(CatalogError::ServiceBusy {
                    service: service.to_owned(),
                    run_id: other,
                    holder: other_holder,
                    seen_secs_ago: (now_ms - seen).max(0) / 1000,
                });
            }
            if gone {
                tracing::warn!(
                    service,
                    dead_run = %other,
                    holder = %other_holder,
                    "taking over the ingestion lock of a run whose process no longer exists (killed?)"
                );
            } else if other != run_id {
                tracing::warn!(
                    service,
                    stale_run = %other,
                    holder = %other_holder,
                    "taking over the ingestion lock of a run that stopped showing life (a crash?)"
                );
            }
        }
        tx.prepare_cached(
            "INSERT INTO ingestion_locks (service, run_id, holder, acquired_at, heartbeat_at)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (service) DO UPDATE SET run_id = excluded.run_id,
                 holder = excluded.holder, acquired_at = excluded.acquired_at,
                 heartbeat_at = excluded.heartbeat_at",
        )?
        .execute(params![service, run_id, holder, now_ms])?;
        tx.commit()?;
        Ok(())
    }

    fn touch_service_lock(&self, service: &str, run_id: &str, now_ms: i64) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE ingestion_locks SET heartbeat_at = ?3 WHERE service = ?1 AND run_id = ?2",
            )?
            .execute(params![service, run_id, now_ms])?;
        Ok(())
    }

    fn unlock_service(&self, service: &str, run_id: &str) -> Result<()> {
        self.conn()
            .prepare_cached("DELETE FROM ingestion_locks WHERE service = ?1 AND run_id = ?2")?
            .execute(params![service, run_id])?;
        Ok(())
    }

    fn upsert_service(&self, service: &MlModelService) -> Result<MlModelService> {
        if service.name.is_empty() {
            return Err(CatalogError::invalid(
                "service",
                "the service name is empty",
            ));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored: Option<String> = tx
            .prepare_cached("SELECT document FROM services WHERE name = ?1")?
            .query_row([&service.name], |row| row.get(0))
            .optional()?;
        let what = format!("service {}", service.name);
        let mut next = service.clone();
        // Writers redact secrets before this; a clear one must still never reach the file.
        if let Some(connection) = next.connection.as_mut() {
            secrets::scrub_secrets(connection);
        }
        if next.fully_qualified_name.is_empty() {
            next.fully_qualified_name.clone_from(&next.name);
        }
        let result = match stored {
            None => {
                if next.id.is_empty() {
                    next.id = new_id();
                }
                next.version = Some(FIRST_VERSION);
                next.updated_at = Some(now_millis());
                tx.prepare_cached(
                    "INSERT INTO services (id, name, version, updated_at, document, description,
                                           created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?4)",
                )?
                .execute(params![
                    next.id,
                    next.name,
                    FIRST_VERSION,
                    next.updated_at,
                    to_json(&what, &next)?,
                    next.description
                ])?;
                next
            }
            Some(text) => {
                let old: MlModelService = from_json(&what, &text)?;
                next.id.clone_from(&old.id);
                next.version = old.version;
                next.updated_at = old.updated_at;
                if next == old {
                    return Ok(old);
                }
                let version = next_version(old.version.unwrap_or(FIRST_VERSION));
                next.version = Some(version);
                next.updated_at = Some(now_millis());
                tx.prepare_cached(
                    "UPDATE services SET version = ?2, updated_at = ?3, document = ?4
                     WHERE id = ?1",
                )?
                .execute(params![
                    next.id,
                    version,
                    next.updated_at,
                    to_json(&what, &next)?
                ])?;
                next
            }
        };
        tx.commit()?;
        Ok(result)
    }

    fn get_service(&self, name: &str) -> Result<Option<MlModelService>> {
        let conn = self.conn();
        let text: Option<String> = conn
            .prepare_cached("SELECT document FROM services WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?;
        text.map(|text| from_json(&format!("service {name}"), &text))
            .transpose()
    }

    fn list_services(&self) -> Result<Vec<MlModelService>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare_cached("SELECT name, document FROM services ORDER BY name")?;
        let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?;
        let mut services = Vec::new();
        for row in rows {
            let (name, text): (String, String) = row?;
            services.push(from_json(&format!("service {name}"), &text)?);
        }
        Ok(services)
    }

    fn write_models(&self, models: &[ModelWrite]) -> Result<WriteOutcome> {
        let now = now_millis();
        let mut conn = self.conn();
        // Dropping `tx` on any early return below rolls the whole batch back.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcome = WriteOutcome::default();
        {
            let mut select = tx.prepare_cached(
                "SELECT id, version, deleted, source_hash FROM models
                 WHERE service = ?1 AND name = ?2",
            )?;
            let mut select_document =
                tx.prepare_cached("SELECT document FROM models WHERE id = ?1")?;
            let mut archive = tx.prepare_cached(
                "INSERT INTO model_versions (fqn, version, updated_at, document)
                 SELECT fqn, version, updated_at, document FROM models WHERE id = ?1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO models (id, service, name, fqn, arn, creation_time, source_hash,
                                     deleted, version, updated_at, document, facts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10, ?11)",
            )?;
            let mut update = tx.prepare_cached(
                "UPDATE models SET fqn = ?2, arn = ?3, creation_time = ?4, source_hash = ?5,
                                   deleted = 0, version = ?6, updated_at = ?7, document = ?8,
                                   facts = ?9
                 WHERE id = ?1",
            )?;
            // An unchanged model keeps its document; its facts are filled in if missing
            // (written by an older version) or refreshed with the same content.
            let mut refresh_facts = tx.prepare_cached(
                "UPDATE models SET arn = ?2, creation_time = ?3, facts = ?4
                 WHERE id = ?1 AND (facts IS NOT ?4 OR arn IS NOT ?2 OR creation_time IS NOT ?3)",
            )?;
            let mut in_batch: HashSet<(&str, &str)> = HashSet::with_capacity(models.len());

            for write in models {
                let model = &write.model;
                check_model(model)?;
                let service = service_of(model)?;
                if !in_batch.insert((service, model.name.as_str())) {
                    return Err(CatalogError::DuplicateInBatch {
                        service: service.to_owned(),
                        name: model.name.clone(),
                    });
                }
                let what = format!("model {}", model.fully_qualified_name);
                let stored = select
                    .query_row(params![service, model.name], |row| {
                        Ok(StoredRow {
                            id: row.get(0)?,
                            version: row.get(1)?,
                            deleted: row.get(2)?,
                            source_hash: row.get(3)?,
                        })
                    })
                    .optional()?;

                let Some(stored) = stored else {
                    let mut next = model.clone();
                    if next.id.is_empty() {
                        next.id = new_id();
                    }
                    next.deleted = false;
                    next.version = Some(FIRST_VERSION);
                    next.updated_at = Some(now);
                    insert.execute(params![
                        next.id,
                        service,
                        next.name,
                        next.fully_qualified_name,
                        write.arn,
                        write.creation_time,
                        next.source_hash,
                        FIRST_VERSION,
                        now,
                        to_json(&what, &next)?,
                        write.facts
                    ])?;
                    outcome.created += 1;
                    continue;
                };

                let same = match &model.source_hash {
                    Some(hash) => stored.source_hash.as_deref() == Some(hash.as_str()),
                    None => {
                        let text: String =
                            select_document.query_row([&stored.id], |row| row.get(0))?;
                        same_content(&from_json(&what, &text)?, model)
                    }
                };
                if same && !stored.deleted {
                    if write.facts.is_some() {
                        refresh_facts.execute(params![
                            stored.id,
                            write.arn,
                            write.creation_time,
                            write.facts
                        ])?;
                    }
                    outcome.unchanged += 1;
                    continue;
                }

                archive.execute([&stored.id])?;
                let version = next_version(stored.version);
                let mut next = model.clone();
                next.id = stored.id;
                next.deleted = false;
                next.version = Some(version);
                next.updated_at = Some(now);
                update.execute(params![
                    next.id,
                    next.fully_qualified_name,
                    write.arn,
                    write.creation_time,
                    next.source_hash,
                    version,
                    now,
                    to_json(&what, &next)?,
                    write.facts
                ])?;
                outcome.updated += 1;
            }
        }
        tx.commit()?;
        Ok(outcome)
    }

    fn known_models(&self, service: &str) -> Result<HashMap<String, KnownModel>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT name, arn, creation_time, source_hash, deleted FROM models WHERE service = ?1",
        )?;
        let rows = statement.query_map([service], |row| {
            Ok((
                row.get::<_, String>(0)?,
                KnownModel {
                    arn: row.get(1)?,
                    creation_time: row.get(2)?,
                    source_hash: row.get(3)?,
                    deleted: row.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn stored_facts(&self, service: &str, name: &str) -> Result<Option<String>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare_cached("SELECT facts FROM models WHERE service = ?1 AND name = ?2")?;
        Ok(statement
            .query_row([service, name], |row| row.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }

    fn mark_deleted(&self, service: &str, seen_names: &HashSet<String>) -> Result<Vec<String>> {
        let now = now_millis();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = Vec::new();
        {
            // Names first: a run sees almost every live model, and reading every document
            // to delete a few cost as much memory as the catalog's whole service.
            let mut live = tx.prepare_cached(
                "SELECT id, name FROM models WHERE service = ?1 AND deleted = 0 ORDER BY name",
            )?;
            let unseen = live
                .query_map([service], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?
                .filter(|row| {
                    row.as_ref()
                        .map_or(true, |(_, name)| !seen_names.contains(name))
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut read =
                tx.prepare_cached("SELECT fqn, version, document FROM models WHERE id = ?1")?;
            let mut archive = tx.prepare_cached(
                "INSERT INTO model_versions (fqn, version, updated_at, document)
                 SELECT fqn, version, updated_at, document FROM models WHERE id = ?1",
            )?;
            let mut update = tx.prepare_cached(
                "UPDATE models SET deleted = 1, version = ?2, updated_at = ?3, document = ?4
                 WHERE id = ?1",
            )?;
            for (id, name) in unseen {
                let (fqn, version, text) = read.query_row([&id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, f64>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })?;
                let what = format!("model {fqn}");
                let mut model: MlModel = from_json(&what, &text)?;
                let version = next_version(version);
                model.deleted = true;
                model.version = Some(version);
                model.updated_at = Some(now);
                archive.execute([&id])?;
                update.execute(params![id, version, now, to_json(&what, &model)?])?;
                deleted.push(name);
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    fn get_model(&self, service: Option<&str>, name: &str) -> Result<Option<MlModel>> {
        let conn = self.conn();
        let what = || format!("model {name}");
        if let Some(service) = service {
            let text: Option<String> = conn
                .prepare_cached("SELECT document FROM models WHERE service = ?1 AND name = ?2")?
                .query_row([service, name], |row| row.get(0))
                .optional()?;
            return text.map(|text| from_json(&what(), &text)).transpose();
        }
        let by_fqn: Option<String> = conn
            .prepare_cached("SELECT document FROM models WHERE fqn = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?;
        if let Some(text) = by_fqn {
            return from_json(&what(), &text).map(Some);
        }
        let mut statement = conn.prepare_cached(
            "SELECT service, document FROM models WHERE name = ?1 ORDER BY service",
        )?;
        let mut matches = statement
            .query_map([name], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        match matches.len() {
            0 => Ok(None),
            1 => {
                let (_, text) = matches.remove(0);
                from_json(&what(), &text).map(Some)
            }
            _ => Err(CatalogError::AmbiguousName {
                name: name.to_owned(),
                services: matches
                    .iter()
                    .map(|(service, _)| service.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    fn list_models(&self, query: &ListQuery) -> Result<Vec<MlModel>> {
        let (filter, mut values) = model_filter(query);
        let limit = query
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        values.push(SqlValue::Integer(limit));
        values.push(SqlValue::Integer(offset));
        let sql = format!(
            "SELECT fqn, document FROM models{filter} ORDER BY service, name LIMIT ?{} OFFSET ?{}",
            values.len() - 1,
            values.len()
        );
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map(params_from_iter(values), |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut models = Vec::new();
        for row in rows {
            let (fqn, text) = row?;
            models.push(from_json(&format!("model {fqn}"), &text)?);
        }
        Ok(models)
    }

    fn count_models(&self, query: &ListQuery) -> Result<u64> {
        let (filter, values) = model_filter(query);
        let conn = self.conn();
        let count: i64 = conn
            .prepare_cached(&format!("SELECT count(*) FROM models{filter}"))?
            .query_row(params_from_iter(values), |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    fn model_versions(&self, fqn: &str) -> Result<Vec<MlModel>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT document FROM (
                 SELECT version, document FROM models WHERE fqn = ?1
                 UNION ALL
                 SELECT version, document FROM model_versions WHERE fqn = ?1
             ) ORDER BY version DESC",
        )?;
        let rows = statement.query_map([fqn], |row| row.get::<_, String>(0))?;
        let what = format!("model {fqn}");
        let mut versions = Vec::new();
        for text in rows {
            versions.push(from_json(&what, &text?)?);
        }
        Ok(versions)
    }

    fn record_run(&self, run: &IngestionRun) -> Result<()> {
        if run.id.is_empty() {
            return Err(CatalogError::invalid(
                "ingestion run",
                "the run id is empty",
            ));
        }
        let report = to_json(&format!("run {}", run.id), &run.report)?;
        self.conn()
            .prepare_cached(
                "INSERT INTO ingestion_runs (id, service, started_at, finished_at, status, report)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET
                     service = excluded.service, started_at = excluded.started_at,
                     finished_at = excluded.finished_at, status = excluded.status,
                     report = excluded.report",
            )?
            .execute(params![
                run.id,
                run.service,
                run.started_at,
                run.finished_at,
                run.status.as_str(),
                report
            ])?;
        Ok(())
    }

    fn get_run(&self, id: &str) -> Result<Option<IngestionRun>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT id, service, started_at, finished_at, status, report
             FROM ingestion_runs WHERE id = ?1",
        )?;
        let row = statement.query_row([id], read_run_row).optional()?;
        row.map(RunRow::into_run).transpose()
    }

    fn list_runs(&self, service: Option<&str>, limit: usize) -> Result<Vec<IngestionRun>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT id, service, started_at, finished_at, status, report
             FROM ingestion_runs WHERE ?1 IS NULL OR service = ?1
             ORDER BY started_at DESC, id DESC LIMIT ?2",
        )?;
        let rows = statement
            .query_map(params![service, limit], read_run_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(RunRow::into_run).collect()
    }

    fn put_gateway_model(&self, model: &GatewayModel) -> Result<GatewayModel> {
        if model.name.is_empty() {
            return Err(CatalogError::invalid(
                "gateway model",
                "the model name is empty",
            ));
        }
        let mut stored = model.clone();
        stored.updated_at = Some(now_millis());
        let spec = to_json(&format!("gateway model {}", model.name), &model.spec)?;
        self.conn()
            .prepare_cached(
                "INSERT INTO gateway_models (name, spec, updated_at, created_at)
                 VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec,
                                                  updated_at = excluded.updated_at",
            )?
            .execute(params![stored.name, spec, stored.updated_at])?;
        Ok(stored)
    }

    fn get_gateway_model(&self, name: &str) -> Result<Option<GatewayModel>> {
        let conn = self.conn();
        let row = conn
            .prepare_cached("SELECT name, spec, updated_at FROM gateway_models WHERE name = ?1")?
            .query_row([name], read_gateway_row)
            .optional()?;
        row.map(GatewayRow::into_model).transpose()
    }

    fn list_gateway_models(&self) -> Result<Vec<GatewayModel>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare_cached("SELECT name, spec, updated_at FROM gateway_models ORDER BY name")?;
        let rows = statement
            .query_map([], read_gateway_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(GatewayRow::into_model).collect()
    }

    fn delete_gateway_model(&self, name: &str) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached("DELETE FROM gateway_models WHERE name = ?1")?
            .execute([name])?;
        Ok(changed > 0)
    }
}

/// The columns of an `ingestion_runs` row, before its JSON is parsed.
struct RunRow {
    id: String,
    service: String,
    started_at: i64,
    finished_at: Option<i64>,
    status: String,
    report: String,
}

fn read_run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: row.get(0)?,
        service: row.get(1)?,
        started_at: row.get(2)?,
        finished_at: row.get(3)?,
        status: row.get(4)?,
        report: row.get(5)?,
    })
}

impl RunRow {
    fn into_run(self) -> Result<IngestionRun> {
        let what = format!("run {}", self.id);
        let status = RunStatus::parse(&self.status).ok_or_else(|| {
            CatalogError::invalid(
                "ingestion run",
                format!("{what} has an unknown status {:?}", self.status),
            )
        })?;
        Ok(IngestionRun {
            report: from_json(&what, &self.report)?,
            id: self.id,
            service: self.service,
            started_at: self.started_at,
            finished_at: self.finished_at,
            status,
        })
    }
}

/// The columns of a `gateway_models` row, before its JSON is parsed.
struct GatewayRow {
    name: String,
    spec: String,
    updated_at: i64,
}

fn read_gateway_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<GatewayRow> {
    Ok(GatewayRow {
        name: row.get(0)?,
        spec: row.get(1)?,
        updated_at: row.get(2)?,
    })
}

impl GatewayRow {
    fn into_model(self) -> Result<GatewayModel> {
        Ok(GatewayModel {
            spec: from_json(&format!("gateway model {}", self.name), &self.spec)?,
            name: self.name,
            updated_at: Some(self.updated_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_step_by_a_tenth_without_drift() {
        let mut version = FIRST_VERSION;
        for _ in 0..29 {
            version = next_version(version);
        }
        assert_eq!(version, 3.0);
        assert_eq!(next_version(0.1), 0.2);
        assert_eq!(next_version(0.2), 0.3);
        assert_eq!(next_version(0.9), 1.0);
    }

    #[test]
    fn model_filter_numbers_its_parameters() {
        let query = ListQuery {
            service: Some("svc".into()),
            name_contains: Some("xg".into()),
            ..ListQuery::default()
        };
        let (filter, values) = model_filter(&query);
        assert_eq!(
            filter,
            " WHERE service = ?1 AND deleted = 0 AND instr(lower(name), lower(?2)) > 0"
        );
        assert_eq!(values.len(), 2);
        let (filter, values) = model_filter(&ListQuery {
            include_deleted: true,
            ..ListQuery::default()
        });
        assert_eq!(filter, "");
        assert!(values.is_empty());
    }
}
