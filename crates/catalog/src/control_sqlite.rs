//! [`ControlStore`] for [`SqliteCatalog`]: the control plane's records in the catalog file.
//!
//! Every write runs in one `IMMEDIATE` transaction, so checks (name free, service exists, no
//! run active) and the write they guard cannot interleave with another writer. Secrets are
//! sealed by [`crate::secrets`] before any SQL sees them.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{json, Map, Value};

use crate::control::{
    ApiKeyEntry, ApiKeyInput, ControlStore, CreatedApiKey, GatewayCredentials, GatewayModelEntry,
    GatewayModelInput, GatewayModelWithSecrets, IngestionPipeline, NewRun, PipelineInput,
    PipelineRun, RunLogLine, RunProgress, RunTrigger, ServiceDeletion, ServiceEntry, ServiceInput,
    ServiceWithSecrets, UsageQuery, UsageRecord, RUN_LOG_LINES, RUN_LOG_LINE_CHARS,
};
use crate::entities::{new_id, IngestionRun, MlModelService, MlModelServiceType, RunStatus};
use crate::error::{CatalogError, Result};
use crate::secrets::{
    self, generate_api_key, hash_api_key, ClearAwsConfig, SecretFlags, API_KEY_DISPLAY_CHARS,
};
use crate::sqlite::{from_json, next_version, now_millis, to_json, SqliteCatalog, FIRST_VERSION};

const SERVICE: &str = "service";
const PIPELINE: &str = "ingestion pipeline";
const RUN: &str = "ingestion run";
const GATEWAY_MODEL: &str = "gateway model";
const API_KEY: &str = "api key";

/// A key's last use is written at most this often (milliseconds).
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

// ---------------------------------------------------------------------------------------------
// Services

const SERVICE_COLUMNS: &str =
    "id, name, version, updated_at, document, description, aws_config, created_at";

/// The columns of a `services` row, before its JSON is parsed.
struct ServiceRow {
    id: String,
    name: String,
    version: f64,
    updated_at: i64,
    document: String,
    description: Option<String>,
    aws_config: Option<String>,
    created_at: Option<i64>,
}

fn read_service_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ServiceRow> {
    Ok(ServiceRow {
        id: row.get(0)?,
        name: row.get(1)?,
        version: row.get(2)?,
        updated_at: row.get(3)?,
        document: row.get(4)?,
        description: row.get(5)?,
        aws_config: row.get(6)?,
        created_at: row.get(7)?,
    })
}

impl ServiceRow {
    fn what(&self) -> String {
        format!("service {}", self.name)
    }

    /// The stored `awsConfig` (secrets sealed), when the control store wrote one.
    fn stored_aws_config(&self) -> Result<Option<Value>> {
        self.aws_config
            .as_deref()
            .map(|text| from_json(&self.what(), text))
            .transpose()
    }

    fn document(&self) -> Result<MlModelService> {
        from_json(&self.what(), &self.document)
    }

    fn into_entry(self) -> Result<ServiceEntry> {
        let document = self.document()?;
        let (aws_config, secrets, managed) = match self.stored_aws_config()? {
            Some(stored) => {
                let (shown, flags) = secrets::redact(&stored);
                (shown, flags, true)
            }
            // Known from ingestion only: the redacted config it recorded, if any.
            None => (recorded_config(&document), SecretFlags::default(), false),
        };
        Ok(ServiceEntry {
            id: self.id,
            name: self.name,
            service_type: document.service_type,
            description: self.description.or(document.description),
            aws_config,
            secrets,
            managed,
            version: self.version,
            created_at: self.created_at.unwrap_or(self.updated_at),
            updated_at: self.updated_at,
        })
    }
}

fn service_row_by(conn: &Connection, column: &str, key: &str) -> Result<ServiceRow> {
    let sql = format!("SELECT {SERVICE_COLUMNS} FROM services WHERE {column} = ?1");
    conn.prepare_cached(&sql)?
        .query_row([key], read_service_row)
        .optional()?
        .ok_or_else(|| CatalogError::not_found(SERVICE, key))
}

fn service_name_taken(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM services WHERE name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The service document OpenMetadata's API shapes: the connection without secrets.
fn service_document(
    id: &str,
    name: &str,
    description: Option<&str>,
    shown: &Value,
    version: f64,
    updated_at: i64,
) -> MlModelService {
    MlModelService {
        id: id.to_owned(),
        name: name.to_owned(),
        fully_qualified_name: name.to_owned(),
        service_type: MlModelServiceType::SageMaker,
        display_name: None,
        description: description.map(str::to_owned),
        connection: Some(json!({"config": {"type": "SageMaker", "awsConfig": shown}})),
        deleted: false,
        version: Some(version),
        updated_at: Some(updated_at),
    }
}

fn check_name(what: &'static str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(CatalogError::invalid(what, "the name is empty"));
    }
    Ok(())
}

/// Seals an `awsConfig` and makes sure no secret field hides deeper in it.
fn seal_aws_config(
    catalog: &SqliteCatalog,
    incoming: &ClearAwsConfig,
    previous: Option<&Value>,
) -> Result<Value> {
    let sealed = secrets::seal(catalog.cipher(), incoming, previous)?;
    if let Some(field) = secrets::find_secret_field(&secrets::redact(&sealed).0) {
        return Err(CatalogError::invalid(
            "awsConfig",
            format!("{field} is only allowed at the top of awsConfig"),
        ));
    }
    Ok(sealed)
}

/// The `awsConfig` ingestion recorded in a service document, without secrets (`{}` if none).
fn recorded_config(document: &MlModelService) -> Value {
    document
        .connection
        .as_ref()
        .and_then(|c| c.pointer("/config/awsConfig"))
        .map_or_else(|| json!({}), |config| secrets::redact(config).0)
}

/// The service's `awsConfig` with its secrets decrypted (a service only known from ingestion
/// has none: its recorded config is returned as is).
fn clear_service_config(catalog: &SqliteCatalog, row: &ServiceRow) -> Result<ClearAwsConfig> {
    match row.stored_aws_config()? {
        Some(stored) => secrets::open(catalog.cipher(), &stored),
        None => Ok(ClearAwsConfig::new(recorded_config(&row.document()?))),
    }
}

// ---------------------------------------------------------------------------------------------
// Pipelines

const PIPELINE_SELECT: &str = "SELECT p.id, p.name, p.service_id, s.name, p.description,
        p.source_config, p.schedule, p.enabled, p.created_at, p.updated_at
     FROM ingestion_pipelines p JOIN services s ON s.id = p.service_id";

struct PipelineRow {
    id: String,
    name: String,
    service_id: String,
    service_name: String,
    description: Option<String>,
    source_config: String,
    schedule: Option<String>,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

fn read_pipeline_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PipelineRow> {
    Ok(PipelineRow {
        id: row.get(0)?,
        name: row.get(1)?,
        service_id: row.get(2)?,
        service_name: row.get(3)?,
        description: row.get(4)?,
        source_config: row.get(5)?,
        schedule: row.get(6)?,
        enabled: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

impl PipelineRow {
    fn into_pipeline(self) -> Result<IngestionPipeline> {
        Ok(IngestionPipeline {
            source_config: from_json(&format!("pipeline {}", self.name), &self.source_config)?,
            id: self.id,
            name: self.name,
            service_id: self.service_id,
            service_name: self.service_name,
            description: self.description,
            schedule: self.schedule,
            enabled: self.enabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn pipeline_by(conn: &Connection, column: &str, key: &str) -> Result<IngestionPipeline> {
    let sql = format!("{PIPELINE_SELECT} WHERE p.{column} = ?1");
    conn.prepare_cached(&sql)?
        .query_row([key], read_pipeline_row)
        .optional()?
        .ok_or_else(|| CatalogError::not_found(PIPELINE, key))?
        .into_pipeline()
}

/// The pipeline input with its schedule normalised, after checking it.
fn check_pipeline(input: &PipelineInput) -> Result<(String, Option<String>)> {
    check_name(PIPELINE, &input.name)?;
    if !input.source_config.is_object() {
        return Err(CatalogError::invalid(
            "sourceConfig",
            "sourceConfig must be a JSON object",
        ));
    }
    if let Some(field) = secrets::find_secret_field(&input.source_config) {
        return Err(CatalogError::invalid(
            "sourceConfig",
            format!("{field} does not belong in sourceConfig; put credentials in the service"),
        ));
    }
    let schedule = input
        .schedule
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let source = to_json(&format!("pipeline {}", input.name), &input.source_config)?;
    Ok((source, schedule))
}

fn active_run_id(conn: &Connection, pipeline_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM ingestion_runs
             WHERE pipeline_id = ?1 AND status IN ('queued', 'running')",
        )?
        .query_row([pipeline_id], |row| row.get(0))
        .optional()?)
}

// ---------------------------------------------------------------------------------------------
// Runs

const RUN_SELECT: &str = "SELECT id, service, started_at, finished_at, status, report,
        pipeline_id, run_trigger, models_done, models_total
     FROM ingestion_runs";

struct RunRow {
    id: String,
    service: String,
    started_at: i64,
    finished_at: Option<i64>,
    status: String,
    report: String,
    pipeline_id: Option<String>,
    trigger: String,
    models_done: i64,
    models_total: Option<i64>,
}

fn read_run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: row.get(0)?,
        service: row.get(1)?,
        started_at: row.get(2)?,
        finished_at: row.get(3)?,
        status: row.get(4)?,
        report: row.get(5)?,
        pipeline_id: row.get(6)?,
        trigger: row.get(7)?,
        models_done: row.get(8)?,
        models_total: row.get(9)?,
    })
}

impl RunRow {
    fn into_run(self) -> Result<PipelineRun> {
        let what = format!("run {}", self.id);
        let status = RunStatus::parse(&self.status).ok_or_else(|| {
            CatalogError::invalid(
                RUN,
                format!("{what} has an unknown status {:?}", self.status),
            )
        })?;
        let trigger = RunTrigger::parse(&self.trigger).ok_or_else(|| {
            CatalogError::invalid(
                RUN,
                format!("{what} has an unknown trigger {:?}", self.trigger),
            )
        })?;
        Ok(PipelineRun {
            run: IngestionRun {
                report: from_json(&what, &self.report)?,
                id: self.id,
                service: self.service,
                started_at: self.started_at,
                finished_at: self.finished_at,
                status,
            },
            pipeline_id: self.pipeline_id,
            trigger,
            progress: RunProgress {
                models_done: u64::try_from(self.models_done).unwrap_or(0),
                models_total: self.models_total.and_then(|n| u64::try_from(n).ok()),
            },
            log_lines: Vec::new(),
        })
    }
}

fn run_by_id(conn: &Connection, id: &str) -> Result<PipelineRun> {
    conn.prepare_cached(&format!("{RUN_SELECT} WHERE id = ?1"))?
        .query_row([id], read_run_row)
        .optional()?
        .ok_or_else(|| CatalogError::not_found(RUN, id))?
        .into_run()
}

fn log_lines(conn: &Connection, run_id: &str, after_seq: u64) -> Result<Vec<RunLogLine>> {
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(
        "SELECT seq, line FROM run_log_lines WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let rows = statement.query_map(params![run_id, after], |row| {
        Ok(RunLogLine {
            seq: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
            line: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn cut_line(line: &str) -> String {
    match line.char_indices().nth(RUN_LOG_LINE_CHARS) {
        Some((end, _)) => line[..end].to_owned(),
        None => line.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway models

const GATEWAY_SELECT: &str = "SELECT name, spec, service_id, aws_config,
        coalesce(created_at, updated_at), updated_at
     FROM gateway_models";

struct GatewayRow {
    name: String,
    spec: String,
    service_id: Option<String>,
    aws_config: Option<String>,
    created_at: i64,
    updated_at: i64,
}

fn read_gateway_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<GatewayRow> {
    Ok(GatewayRow {
        name: row.get(0)?,
        spec: row.get(1)?,
        service_id: row.get(2)?,
        aws_config: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

impl GatewayRow {
    fn what(&self) -> String {
        format!("gateway model {}", self.name)
    }

    fn stored_aws_config(&self) -> Result<Option<Value>> {
        self.aws_config
            .as_deref()
            .map(|text| from_json(&self.what(), text))
            .transpose()
    }

    fn entry(&self) -> Result<GatewayModelEntry> {
        let (aws_config, secrets) = match self.stored_aws_config()? {
            Some(stored) => {
                let (shown, flags) = secrets::redact(&stored);
                (Some(shown), flags)
            }
            None => (None, SecretFlags::default()),
        };
        Ok(GatewayModelEntry {
            name: self.name.clone(),
            spec: from_json(&self.what(), &self.spec)?,
            service_id: self.service_id.clone(),
            aws_config,
            secrets,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn gateway_row(conn: &Connection, name: &str) -> Result<GatewayRow> {
    conn.prepare_cached(&format!("{GATEWAY_SELECT} WHERE name = ?1"))?
        .query_row([name], read_gateway_row)
        .optional()?
        .ok_or_else(|| CatalogError::not_found(GATEWAY_MODEL, name))
}

/// The spec to store: an object without `name` and without any credentials.
fn check_gateway_spec(input: &GatewayModelInput) -> Result<Value> {
    check_name(GATEWAY_MODEL, &input.name)?;
    let Value::Object(map) = &input.spec else {
        return Err(CatalogError::invalid(
            "spec",
            "the gateway model spec must be a JSON object",
        ));
    };
    let mut spec: Map<String, Value> = map.clone();
    match spec.remove("name") {
        None => {}
        Some(Value::String(name)) if name == input.name => {}
        Some(_) => {
            return Err(CatalogError::invalid(
                "spec",
                format!("spec.name must be {:?} or left out", input.name),
            ))
        }
    }
    if spec.contains_key("awsConfig") {
        return Err(CatalogError::invalid(
            "spec",
            "awsConfig does not belong in the spec; give it as the model's own credentials",
        ));
    }
    let spec = Value::Object(spec);
    if let Some(field) = secrets::find_secret_field(&spec) {
        return Err(CatalogError::invalid(
            "spec",
            format!("{field} does not belong in the spec; give it in the model's awsConfig"),
        ));
    }
    Ok(spec)
}

/// The `service_id` and sealed `aws_config` columns for the credentials.
fn gateway_credentials(
    catalog: &SqliteCatalog,
    conn: &Connection,
    credentials: &GatewayCredentials,
    previous: Option<&Value>,
) -> Result<(Option<String>, Option<String>)> {
    match credentials {
        GatewayCredentials::Inherit => Ok((None, None)),
        GatewayCredentials::Service(id) => {
            service_row_by(conn, "id", id)?;
            Ok((Some(id.clone()), None))
        }
        GatewayCredentials::Own(config) => {
            let sealed = seal_aws_config(catalog, config, previous)?;
            Ok((None, Some(to_json("gateway model awsConfig", &sealed)?)))
        }
    }
}

fn gateway_with_secrets(
    catalog: &SqliteCatalog,
    conn: &Connection,
    row: &GatewayRow,
) -> Result<GatewayModelWithSecrets> {
    let aws_config = match (&row.service_id, row.stored_aws_config()?) {
        (_, Some(stored)) => Some(secrets::open(catalog.cipher(), &stored)?),
        (Some(service_id), None) => {
            let service = service_row_by(conn, "id", service_id)?;
            Some(clear_service_config(catalog, &service)?)
        }
        (None, None) => None,
    };
    Ok(GatewayModelWithSecrets {
        model: row.entry()?,
        aws_config,
    })
}

// ---------------------------------------------------------------------------------------------
// API keys

const API_KEY_SELECT: &str = "SELECT id, name, prefix, key_hash, expires_at, allowed_models,
        created_at, last_used_at, requests_per_minute, tokens_per_minute
     FROM api_keys";

fn read_api_key_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(ApiKeyEntry, Option<String>)> {
    Ok((
        ApiKeyEntry {
            id: row.get(0)?,
            name: row.get(1)?,
            prefix: row.get(2)?,
            key_hash: row.get(3)?,
            expires_at: row.get(4)?,
            allowed_models: None,
            created_at: row.get(6)?,
            last_used_at: row.get(7)?,
            requests_per_minute: row.get::<_, Option<i64>>(8)?.map(|n| n.max(0) as u64),
            tokens_per_minute: row.get::<_, Option<i64>>(9)?.map(|n| n.max(0) as u64),
        },
        row.get(5)?,
    ))
}

fn api_key_entry((mut entry, allowed): (ApiKeyEntry, Option<String>)) -> Result<ApiKeyEntry> {
    entry.allowed_models = allowed
        .as_deref()
        .map(|text| from_json(&format!("api key {}", entry.name), text))
        .transpose()?;
    Ok(entry)
}

fn api_key_by(conn: &Connection, column: &str, key: &str) -> Result<Option<ApiKeyEntry>> {
    conn.prepare_cached(&format!("{API_KEY_SELECT} WHERE {column} = ?1"))?
        .query_row([key], read_api_key_row)
        .optional()?
        .map(api_key_entry)
        .transpose()
}

/// Checks the settings of a key (create or update) and gives its `allowed_models` as stored.
fn check_api_key_settings(input: &ApiKeyInput) -> Result<Option<String>> {
    check_name(API_KEY, &input.name)?;
    if input.allowed_models.as_ref().is_some_and(Vec::is_empty) {
        return Err(CatalogError::invalid(
            "allowedModels",
            "an empty list allows no model; leave it out to allow every model",
        ));
    }
    for (field, value) in [
        ("requestsPerMinute", input.requests_per_minute),
        ("tokensPerMinute", input.tokens_per_minute),
    ] {
        if value == Some(0) || value.is_some_and(|n| i64::try_from(n).is_err()) {
            return Err(CatalogError::invalid(
                field,
                "must be a positive integer; leave it out for no limit",
            ));
        }
    }
    input
        .allowed_models
        .as_ref()
        .map(|models| to_json(&format!("api key {}", input.name), models))
        .transpose()
}

// ---------------------------------------------------------------------------------------------
// Usage

fn read_usage_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UsageRecord> {
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, i64>(i)?.max(0) as u64) };
    Ok(UsageRecord {
        day: row.get(0)?,
        key: row.get(1)?,
        model: row.get(2)?,
        requests: count(3)?,
        prompt_tokens: count(4)?,
        completion_tokens: count(5)?,
        latency_ms: count(6)?,
        errors: Default::default(),
    })
}

// ---------------------------------------------------------------------------------------------

impl ControlStore for SqliteCatalog {
    fn create_service(&self, input: &ServiceInput) -> Result<ServiceEntry> {
        check_name(SERVICE, &input.name)?;
        let sealed = seal_aws_config(self, &input.aws_config, None)?;
        let (shown, _) = secrets::redact(&sealed);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if service_name_taken(&tx, &input.name)? {
            return Err(CatalogError::conflict(SERVICE, &input.name));
        }
        let id = new_id();
        let now = now_millis();
        let what = format!("service {}", input.name);
        let document = service_document(
            &id,
            &input.name,
            input.description.as_deref(),
            &shown,
            FIRST_VERSION,
            now,
        );
        tx.prepare_cached(
            "INSERT INTO services (id, name, version, updated_at, document, description,
                                   aws_config, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?4)",
        )?
        .execute(params![
            id,
            input.name,
            FIRST_VERSION,
            now,
            to_json(&what, &document)?,
            input.description,
            to_json(&what, &sealed)?
        ])?;
        let entry = service_row_by(&tx, "id", &id)?.into_entry()?;
        tx.commit()?;
        tracing::info!(service = %entry.name, id = %entry.id, "created service");
        Ok(entry)
    }

    fn update_service(&self, id: &str, input: &ServiceInput) -> Result<ServiceEntry> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = service_row_by(&tx, "id", id)?;
        if !input.name.is_empty() && input.name != row.name {
            return Err(CatalogError::invalid(
                "name",
                format!(
                    "the service name cannot change from {:?}: models and runs refer to it",
                    row.name
                ),
            ));
        }
        let previous = row.stored_aws_config()?;
        let sealed = seal_aws_config(self, &input.aws_config, previous.as_ref())?;
        let description = input.description.clone();
        if previous.as_ref() == Some(&sealed) && row.description == description {
            return row.into_entry();
        }
        let (shown, _) = secrets::redact(&sealed);
        let version = next_version(row.version);
        let now = now_millis();
        let mut document = row.document()?;
        let fresh = service_document(
            &row.id,
            &row.name,
            description.as_deref(),
            &shown,
            version,
            now,
        );
        document.description = fresh.description;
        document.connection = fresh.connection;
        document.version = fresh.version;
        document.updated_at = fresh.updated_at;
        let what = row.what();
        tx.prepare_cached(
            "UPDATE services SET version = ?2, updated_at = ?3, document = ?4, description = ?5,
                                 aws_config = ?6, created_at = coalesce(created_at, updated_at)
             WHERE id = ?1",
        )?
        .execute(params![
            row.id,
            version,
            now,
            to_json(&what, &document)?,
            description,
            to_json(&what, &sealed)?
        ])?;
        let entry = service_row_by(&tx, "id", id)?.into_entry()?;
        tx.commit()?;
        Ok(entry)
    }

    fn service(&self, id: &str) -> Result<ServiceEntry> {
        service_row_by(&self.conn(), "id", id)?.into_entry()
    }

    fn service_by_name(&self, name: &str) -> Result<ServiceEntry> {
        service_row_by(&self.conn(), "name", name)?.into_entry()
    }

    fn services(&self) -> Result<Vec<ServiceEntry>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services ORDER BY name"
        ))?;
        let rows = statement
            .query_map([], read_service_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(ServiceRow::into_entry).collect()
    }

    fn service_with_secrets(&self, id: &str) -> Result<ServiceWithSecrets> {
        let row = service_row_by(&self.conn(), "id", id)?;
        let aws_config = clear_service_config(self, &row)?;
        Ok(ServiceWithSecrets {
            service: row.into_entry()?,
            aws_config,
        })
    }

    fn delete_service(&self, id: &str, recursive: bool) -> Result<ServiceDeletion> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = service_row_by(&tx, "id", id)?;
        let pipelines: Vec<(String, String)> = tx
            .prepare_cached(
                "SELECT id, name FROM ingestion_pipelines WHERE service_id = ?1 ORDER BY name",
            )?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let gateway_models: Vec<String> = tx
            .prepare_cached("SELECT name FROM gateway_models WHERE service_id = ?1 ORDER BY name")?
            .query_map([id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let models: i64 = tx
            .prepare_cached("SELECT count(*) FROM models WHERE service = ?1")?
            .query_row([&row.name], |r| r.get(0))?;
        let models = usize::try_from(models).unwrap_or(0);
        if !recursive && (!pipelines.is_empty() || !gateway_models.is_empty() || models > 0) {
            return Err(CatalogError::HasDependents {
                name: row.name,
                pipelines: pipelines.len(),
                gateway_models: gateway_models.len(),
                models,
            });
        }
        for (pipeline_id, pipeline_name) in &pipelines {
            if let Some(run_id) = active_run_id(&tx, pipeline_id)? {
                return Err(CatalogError::PipelineBusy {
                    pipeline: pipeline_name.clone(),
                    run_id,
                });
            }
        }
        let runs = tx
            .prepare_cached(
                "DELETE FROM ingestion_runs
                 WHERE service = ?2
                    OR pipeline_id IN (SELECT id FROM ingestion_pipelines WHERE service_id = ?1)",
            )?
            .execute(params![id, row.name])?;
        tx.prepare_cached("DELETE FROM ingestion_pipelines WHERE service_id = ?1")?
            .execute([id])?;
        tx.prepare_cached("DELETE FROM gateway_models WHERE service_id = ?1")?
            .execute([id])?;
        tx.prepare_cached(
            "DELETE FROM model_versions WHERE fqn IN (SELECT fqn FROM models WHERE service = ?1)",
        )?
        .execute([&row.name])?;
        let models = tx
            .prepare_cached("DELETE FROM models WHERE service = ?1")?
            .execute([&row.name])?;
        tx.prepare_cached("DELETE FROM services WHERE id = ?1")?
            .execute([id])?;
        tx.commit()?;
        tracing::info!(service = %row.name, id, recursive, runs, models, "deleted service");
        Ok(ServiceDeletion {
            pipelines: pipelines.into_iter().map(|(_, name)| name).collect(),
            gateway_models,
            runs,
            models,
        })
    }

    fn create_pipeline(&self, input: &PipelineInput) -> Result<IngestionPipeline> {
        let (source, schedule) = check_pipeline(input)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        service_row_by(&tx, "id", &input.service_id)?;
        let taken = tx
            .prepare_cached("SELECT 1 FROM ingestion_pipelines WHERE name = ?1")?
            .query_row([&input.name], |_| Ok(()))
            .optional()?
            .is_some();
        if taken {
            return Err(CatalogError::conflict(PIPELINE, &input.name));
        }
        let id = new_id();
        let now = now_millis();
        tx.prepare_cached(
            "INSERT INTO ingestion_pipelines (id, name, service_id, description, source_config,
                                              schedule, enabled, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        )?
        .execute(params![
            id,
            input.name,
            input.service_id,
            input.description,
            source,
            schedule,
            input.enabled,
            now
        ])?;
        let pipeline = pipeline_by(&tx, "id", &id)?;
        tx.commit()?;
        Ok(pipeline)
    }

    fn update_pipeline(&self, id: &str, input: &PipelineInput) -> Result<IngestionPipeline> {
        let (source, schedule) = check_pipeline(input)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored = pipeline_by(&tx, "id", id)?;
        if !input.service_id.is_empty() && input.service_id != stored.service_id {
            return Err(CatalogError::invalid(
                "service",
                "the service of a pipeline cannot change; create a pipeline for the other service",
            ));
        }
        let taken = tx
            .prepare_cached("SELECT 1 FROM ingestion_pipelines WHERE name = ?1 AND id <> ?2")?
            .query_row([&input.name, id], |_| Ok(()))
            .optional()?
            .is_some();
        if taken {
            return Err(CatalogError::conflict(PIPELINE, &input.name));
        }
        tx.prepare_cached(
            "UPDATE ingestion_pipelines SET name = ?2, description = ?3, source_config = ?4,
                                            schedule = ?5, enabled = ?6, updated_at = ?7
             WHERE id = ?1",
        )?
        .execute(params![
            id,
            input.name,
            input.description,
            source,
            schedule,
            input.enabled,
            now_millis()
        ])?;
        let pipeline = pipeline_by(&tx, "id", id)?;
        tx.commit()?;
        Ok(pipeline)
    }

    fn pipeline(&self, id: &str) -> Result<IngestionPipeline> {
        pipeline_by(&self.conn(), "id", id)
    }

    fn pipeline_by_name(&self, name: &str) -> Result<IngestionPipeline> {
        pipeline_by(&self.conn(), "name", name)
    }

    fn pipelines(&self, service_id: Option<&str>) -> Result<Vec<IngestionPipeline>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!(
            "{PIPELINE_SELECT} WHERE ?1 IS NULL OR p.service_id = ?1 ORDER BY p.name"
        ))?;
        let rows = statement
            .query_map([service_id], read_pipeline_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(PipelineRow::into_pipeline).collect()
    }

    fn delete_pipeline(&self, id: &str) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pipeline = pipeline_by(&tx, "id", id)?;
        if let Some(run_id) = active_run_id(&tx, id)? {
            return Err(CatalogError::PipelineBusy {
                pipeline: pipeline.name,
                run_id,
            });
        }
        let runs = tx
            .prepare_cached("DELETE FROM ingestion_runs WHERE pipeline_id = ?1")?
            .execute([id])?;
        tx.prepare_cached("DELETE FROM ingestion_pipelines WHERE id = ?1")?
            .execute([id])?;
        tx.commit()?;
        Ok(runs)
    }

    fn create_run(&self, run: &NewRun) -> Result<PipelineRun> {
        if run.id.is_empty() {
            return Err(CatalogError::invalid(RUN, "the run id is empty"));
        }
        if !matches!(
            run.status,
            RunStatus::Queued | RunStatus::Running | RunStatus::Skipped
        ) {
            return Err(CatalogError::invalid(
                RUN,
                format!(
                    "a new run is queued, running or skipped, not {}",
                    run.status.as_str()
                ),
            ));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pipeline = pipeline_by(&tx, "id", &run.pipeline_id)?;
        if run.status.is_active() {
            if let Some(run_id) = active_run_id(&tx, &pipeline.id)? {
                return Err(CatalogError::PipelineBusy {
                    pipeline: pipeline.name,
                    run_id,
                });
            }
        }
        let exists = tx
            .prepare_cached("SELECT 1 FROM ingestion_runs WHERE id = ?1")?
            .query_row([&run.id], |_| Ok(()))
            .optional()?
            .is_some();
        if exists {
            return Err(CatalogError::conflict(RUN, &run.id));
        }
        let now = now_millis();
        let finished_at = (run.status == RunStatus::Skipped).then_some(now);
        tx.prepare_cached(
            "INSERT INTO ingestion_runs (id, service, started_at, finished_at, status, report,
                                         pipeline_id, run_trigger)
             VALUES (?1, ?2, ?3, ?4, ?5, '{}', ?6, ?7)",
        )?
        .execute(params![
            run.id,
            pipeline.service_name,
            now,
            finished_at,
            run.status.as_str(),
            pipeline.id,
            run.trigger.as_str()
        ])?;
        let stored = run_by_id(&tx, &run.id)?;
        tx.commit()?;
        Ok(stored)
    }

    fn start_run(&self, id: &str) -> Result<PipelineRun> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let run = run_by_id(&tx, id)?;
        match run.run.status {
            RunStatus::Running => return Ok(run),
            RunStatus::Queued => {}
            other => {
                return Err(CatalogError::invalid(
                    RUN,
                    format!("run {id} is {}, not queued", other.as_str()),
                ))
            }
        }
        tx.prepare_cached(
            "UPDATE ingestion_runs SET status = 'running', started_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, now_millis()])?;
        let run = run_by_id(&tx, id)?;
        tx.commit()?;
        Ok(run)
    }

    fn finish_run(
        &self,
        id: &str,
        status: RunStatus,
        report: Option<&Value>,
    ) -> Result<PipelineRun> {
        if status.is_active() {
            return Err(CatalogError::invalid(
                RUN,
                format!("a run cannot finish as {}", status.as_str()),
            ));
        }
        let report = report
            .map(|r| to_json(&format!("run {id}"), r))
            .transpose()?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx
            .prepare_cached(
                "UPDATE ingestion_runs SET status = ?2, finished_at = ?3,
                                           report = coalesce(?4, report)
                 WHERE id = ?1",
            )?
            .execute(params![id, status.as_str(), now_millis(), report])?;
        if changed == 0 {
            return Err(CatalogError::not_found(RUN, id));
        }
        let run = run_by_id(&tx, id)?;
        tx.commit()?;
        Ok(run)
    }

    fn record_run_progress(&self, id: &str, progress: RunProgress, lines: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx
            .prepare_cached(
                "UPDATE ingestion_runs SET models_done = ?2, models_total = ?3 WHERE id = ?1",
            )?
            .execute(params![
                id,
                to_i64(progress.models_done),
                progress.models_total.map(to_i64)
            ])?;
        if changed == 0 {
            return Err(CatalogError::not_found(RUN, id));
        }
        if !lines.is_empty() {
            let last: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(max(seq), 0) FROM run_log_lines WHERE run_id = ?1",
                )?
                .query_row([id], |row| row.get(0))?;
            // Only the newest lines can survive the trim; their numbers still count every line.
            let skip = lines.len().saturating_sub(RUN_LOG_LINES);
            let mut insert = tx.prepare_cached(
                "INSERT INTO run_log_lines (run_id, seq, line) VALUES (?1, ?2, ?3)",
            )?;
            let mut seq = last;
            for (index, line) in lines.iter().enumerate() {
                seq += 1;
                if index >= skip {
                    insert.execute(params![id, seq, cut_line(line)])?;
                }
            }
            let keep = i64::try_from(RUN_LOG_LINES).unwrap_or(i64::MAX);
            tx.prepare_cached("DELETE FROM run_log_lines WHERE run_id = ?1 AND seq <= ?2")?
                .execute(params![id, seq - keep])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn pipeline_run(&self, id: &str) -> Result<PipelineRun> {
        let conn = self.conn();
        let mut run = run_by_id(&conn, id)?;
        run.log_lines = log_lines(&conn, id, 0)?
            .into_iter()
            .map(|l| l.line)
            .collect();
        Ok(run)
    }

    fn pipeline_runs(&self, pipeline_id: &str, limit: usize) -> Result<Vec<PipelineRun>> {
        let conn = self.conn();
        pipeline_by(&conn, "id", pipeline_id)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut statement = conn.prepare_cached(&format!(
            "{RUN_SELECT} WHERE pipeline_id = ?1 ORDER BY rowid DESC LIMIT ?2"
        ))?;
        let rows = statement
            .query_map(params![pipeline_id, limit], read_run_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(RunRow::into_run).collect()
    }

    fn active_run(&self, pipeline_id: &str) -> Result<Option<PipelineRun>> {
        let conn = self.conn();
        active_run_id(&conn, pipeline_id)?
            .map(|id| run_by_id(&conn, &id))
            .transpose()
    }

    fn run_log(&self, id: &str, after_seq: u64) -> Result<Vec<RunLogLine>> {
        let conn = self.conn();
        run_by_id(&conn, id)?;
        log_lines(&conn, id, after_seq)
    }

    fn mark_running_as_interrupted(&self) -> Result<Vec<String>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids: Vec<String> = tx
            .prepare_cached(
                "SELECT id FROM ingestion_runs
                 WHERE status IN ('queued', 'running') AND run_trigger <> 'cli' ORDER BY id",
            )?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE ingestion_runs SET status = 'interrupted', finished_at = ?2 WHERE id = ?1",
            )?;
            let now = now_millis();
            for id in &ids {
                update.execute(params![id, now])?;
            }
        }
        tx.commit()?;
        if !ids.is_empty() {
            tracing::warn!(
                runs = ids.len(),
                "marked runs left unfinished as interrupted"
            );
        }
        Ok(ids)
    }

    fn create_gateway_model(&self, input: &GatewayModelInput) -> Result<GatewayModelEntry> {
        let spec = check_gateway_spec(input)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken = tx
            .prepare_cached("SELECT 1 FROM gateway_models WHERE name = ?1")?
            .query_row([&input.name], |_| Ok(()))
            .optional()?
            .is_some();
        if taken {
            return Err(CatalogError::conflict(GATEWAY_MODEL, &input.name));
        }
        let (service_id, aws_config) = gateway_credentials(self, &tx, &input.credentials, None)?;
        let now = now_millis();
        tx.prepare_cached(
            "INSERT INTO gateway_models (name, spec, updated_at, service_id, aws_config, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?3)",
        )?
        .execute(params![
            input.name,
            to_json(&format!("gateway model {}", input.name), &spec)?,
            now,
            service_id,
            aws_config
        ])?;
        let entry = gateway_row(&tx, &input.name)?.entry()?;
        tx.commit()?;
        Ok(entry)
    }

    fn update_gateway_model(
        &self,
        name: &str,
        input: &GatewayModelInput,
    ) -> Result<GatewayModelEntry> {
        if !input.name.is_empty() && input.name != name {
            return Err(CatalogError::invalid(
                "name",
                format!("the gateway model name cannot change from {name:?}; create a new model"),
            ));
        }
        let input = GatewayModelInput {
            name: name.to_owned(),
            ..input.clone()
        };
        let spec = check_gateway_spec(&input)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = gateway_row(&tx, name)?;
        let previous = row.stored_aws_config()?;
        let (service_id, aws_config) =
            gateway_credentials(self, &tx, &input.credentials, previous.as_ref())?;
        tx.prepare_cached(
            "UPDATE gateway_models SET spec = ?2, updated_at = ?3, service_id = ?4,
                                       aws_config = ?5,
                                       created_at = coalesce(created_at, updated_at)
             WHERE name = ?1",
        )?
        .execute(params![
            name,
            to_json(&row.what(), &spec)?,
            now_millis(),
            service_id,
            aws_config
        ])?;
        let entry = gateway_row(&tx, name)?.entry()?;
        tx.commit()?;
        Ok(entry)
    }

    fn gateway_model(&self, name: &str) -> Result<GatewayModelEntry> {
        gateway_row(&self.conn(), name)?.entry()
    }

    fn gateway_models(&self) -> Result<Vec<GatewayModelEntry>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!("{GATEWAY_SELECT} ORDER BY name"))?;
        let rows = statement
            .query_map([], read_gateway_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.iter().map(GatewayRow::entry).collect()
    }

    fn gateway_model_with_secrets(&self, name: &str) -> Result<GatewayModelWithSecrets> {
        let conn = self.conn();
        let row = gateway_row(&conn, name)?;
        gateway_with_secrets(self, &conn, &row)
    }

    fn gateway_models_with_secrets(&self) -> Result<Vec<GatewayModelWithSecrets>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!("{GATEWAY_SELECT} ORDER BY name"))?;
        let rows = statement
            .query_map([], read_gateway_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.iter()
            .map(|row| gateway_with_secrets(self, &conn, row))
            .collect()
    }

    fn delete_gateway_model_entry(&self, name: &str) -> Result<()> {
        let changed = self
            .conn()
            .prepare_cached("DELETE FROM gateway_models WHERE name = ?1")?
            .execute([name])?;
        if changed == 0 {
            return Err(CatalogError::not_found(GATEWAY_MODEL, name));
        }
        Ok(())
    }

    fn create_api_key(&self, input: &ApiKeyInput) -> Result<CreatedApiKey> {
        let allowed = check_api_key_settings(input)?;
        let key = generate_api_key();
        let key_hash = hash_api_key(key.expose());
        let prefix: String = key.expose().chars().take(API_KEY_DISPLAY_CHARS).collect();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if api_key_by(&tx, "name", &input.name)?.is_some() {
            return Err(CatalogError::conflict(API_KEY, &input.name));
        }
        let id = new_id();
        tx.prepare_cached(
            "INSERT INTO api_keys (id, name, prefix, key_hash, expires_at, allowed_models,
                                   created_at, requests_per_minute, tokens_per_minute)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            id,
            input.name,
            prefix,
            key_hash,
            input.expires_at,
            allowed,
            now_millis(),
            input.requests_per_minute.map(to_i64),
            input.tokens_per_minute.map(to_i64),
        ])?;
        let entry =
            api_key_by(&tx, "id", &id)?.ok_or_else(|| CatalogError::not_found(API_KEY, &id))?;
        tx.commit()?;
        Ok(CreatedApiKey { entry, key })
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyEntry>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!("{API_KEY_SELECT} ORDER BY name"))?;
        let rows = statement
            .query_map([], read_api_key_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(api_key_entry).collect()
    }

    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyEntry>> {
        api_key_by(&self.conn(), "key_hash", key_hash)
    }

    fn use_api_key(&self, key_hash: &str, now_ms: i64) -> Result<Option<ApiKeyEntry>> {
        let conn = self.conn();
        let Some(mut entry) = api_key_by(&conn, "key_hash", key_hash)? else {
            return Ok(None);
        };
        if entry.is_expired(now_ms) {
            return Ok(None);
        }
        let changed = conn
            .prepare_cached(
                "UPDATE api_keys SET last_used_at = ?2
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
            )?
            .execute(params![
                entry.id,
                now_ms,
                now_ms.saturating_sub(LAST_USED_RESOLUTION_MS)
            ])?;
        if changed > 0 {
            entry.last_used_at = Some(now_ms);
        }
        Ok(Some(entry))
    }

    fn update_api_key(&self, id: &str, input: &ApiKeyInput) -> Result<ApiKeyEntry> {
        let allowed = check_api_key_settings(input)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored =
            api_key_by(&tx, "id", id)?.ok_or_else(|| CatalogError::not_found(API_KEY, id))?;
        if stored.name != input.name {
            return Err(CatalogError::invalid(
                "name",
                "a key's name cannot change (its usage is recorded under it)",
            ));
        }
        tx.prepare_cached(
            "UPDATE api_keys SET expires_at = ?2, allowed_models = ?3,
                                 requests_per_minute = ?4, tokens_per_minute = ?5
             WHERE id = ?1",
        )?
        .execute(params![
            id,
            input.expires_at,
            allowed,
            input.requests_per_minute.map(to_i64),
            input.tokens_per_minute.map(to_i64),
        ])?;
        let entry =
            api_key_by(&tx, "id", id)?.ok_or_else(|| CatalogError::not_found(API_KEY, id))?;
        tx.commit()?;
        Ok(entry)
    }

    fn add_usage(&self, records: &[UsageRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut totals = tx.prepare_cached(
                "INSERT INTO gateway_usage (day, key_name, model, requests, prompt_tokens,
                                            completion_tokens, latency_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (day, key_name, model) DO UPDATE SET
                    requests = requests + excluded.requests,
                    prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                    completion_tokens = completion_tokens + excluded.completion_tokens,
                    latency_ms = latency_ms + excluded.latency_ms",
            )?;
            let mut errors = tx.prepare_cached(
                "INSERT INTO gateway_usage_errors (day, key_name, model, class, count)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (day, key_name, model, class) DO UPDATE SET
                    count = count + excluded.count",
            )?;
            for r in records {
                totals.execute(params![
                    r.day,
                    r.key,
                    r.model,
                    to_i64(r.requests),
                    to_i64(r.prompt_tokens),
                    to_i64(r.completion_tokens),
                    to_i64(r.latency_ms),
                ])?;
                for (class, n) in &r.errors {
                    errors.execute(params![r.day, r.key, r.model, class, to_i64(*n)])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageRecord>> {
        const FILTER: &str = "(?1 IS NULL OR key_name = ?1) AND (?2 IS NULL OR model = ?2)
             AND (?3 IS NULL OR day >= ?3) AND (?4 IS NULL OR day <= ?4)";
        let conn = self.conn();
        let args = params![query.key, query.model, query.from, query.to];
        let mut records: Vec<UsageRecord> = conn
            .prepare_cached(&format!(
                "SELECT day, key_name, model, requests, prompt_tokens, completion_tokens,
                        latency_ms
                 FROM gateway_usage WHERE {FILTER} ORDER BY day, key_name, model"
            ))?
            .query_map(args, read_usage_row)?
            .collect::<rusqlite::Result<_>>()?;
        let mut statement = conn.prepare_cached(&format!(
            "SELECT day, key_name, model, class, count FROM gateway_usage_errors WHERE {FILTER}"
        ))?;
        let errors = statement.query_map(args, |row| {
            Ok((
                (
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ),
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?.max(0) as u64,
            ))
        })?;
        for error in errors {
            let ((day, key, model), class, n) = error?;
            // Both tables are written in one transaction, so a row of errors has its totals.
            let at = records
                .binary_search_by(|r| {
                    (r.day.as_str(), r.key.as_str(), r.model.as_str()).cmp(&(
                        day.as_str(),
                        key.as_str(),
                        model.as_str(),
                    ))
                })
                .ok();
            if let Some(at) = at {
                records[at].errors.insert(class, n);
            }
        }
        Ok(records)
    }

    fn delete_api_key(&self, id: &str) -> Result<()> {
        let changed = self
            .conn()
            .prepare_cached("DELETE FROM api_keys WHERE id = ?1")?
            .execute([id])?;
        if changed == 0 {
            return Err(CatalogError::not_found(API_KEY, id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_log_lines_are_cut_on_a_char_boundary() {
        let line = "é".repeat(RUN_LOG_LINE_CHARS + 5);
        assert_eq!(cut_line(&line).chars().count(), RUN_LOG_LINE_CHARS);
        assert_eq!(cut_line("short"), "short");
    }
}
