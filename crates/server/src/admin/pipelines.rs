//! `/api/v1/services/ingestionPipelines`: what to ingest from a service and when, as
//! OpenMetadata's CreateIngestionPipeline and IngestionPipeline, and the workflow file that runs
//! a pipeline with `sagebridge ingest -c`.
//!
//! `airflowConfig.scheduleInterval` keeps OpenMetadata's name although no Airflow is involved:
//! it is a cron expression (UTC) checked by the parser of `sagebridge ingest --schedule`; without
//! it the pipeline only runs on demand.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use sagebridge_catalog::{
    ControlStore, IngestionPipeline, PipelineInput, ServiceEntry, SqliteCatalog,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::validate::{check_schedule, check_source_config, parse_body};
use super::{AdminError, AdminState};

/// The environment variables the exported workflow reads its secrets from.
const SECRET_PLACEHOLDERS: [(&str, &str); 2] = [
    ("awsSecretAccessKey", "${AWS_SECRET_ACCESS_KEY}"),
    ("awsSessionToken", "${AWS_SESSION_TOKEN}"),
];

/// OpenMetadata's CreateIngestionPipeline, for SageMaker metadata.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreatePipeline {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    pipeline_type: Option<String>,
    service: ServiceRef,
    source_config: SourceConfigBody,
    #[serde(default)]
    airflow_config: Option<AirflowConfig>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// An entity reference to the service: by id (OpenMetadata's way) or by name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServiceRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SourceConfigBody {
    config: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AirflowConfig {
    #[serde(default)]
    schedule_interval: Option<String>,
    /// OpenMetadata's switch to pause a pipeline's schedule.
    #[serde(default)]
    pause_pipeline: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    /// A service id or name.
    #[serde(default)]
    service: Option<String>,
}

/// A pipeline as OpenMetadata shows an IngestionPipeline.
fn pipeline_json(p: &IngestionPipeline) -> Value {
    let mut airflow = Map::new();
    if let Some(schedule) = &p.schedule {
        airflow.insert("scheduleInterval".into(), json!(schedule));
    }
    airflow.insert("pausePipeline".into(), json!(!p.enabled));
    let mut out = json!({
        "id": p.id,
        "name": p.name,
        "fullyQualifiedName": format!("{}.{}", p.service_name, p.name),
        "pipelineType": "metadata",
        "service": {"id": p.service_id, "type": "mlmodelService", "name": p.service_name,
            "fullyQualifiedName": p.service_name},
        "sourceConfig": {"config": p.source_config},
        "airflowConfig": airflow,
        "enabled": p.enabled,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
        "href": format!("/api/v1/services/ingestionPipelines/{}", p.id),
    });
    if let Some(d) = &p.description {
        out["description"] = json!(d);
    }
    out
}

/// A service by id, or else by name.
fn resolve_service(c: &SqliteCatalog, key: &str) -> Result<ServiceEntry, AdminError> {
    match c.service(key) {
        Ok(s) => Ok(s),
        Err(sagebridge_catalog::CatalogError::NotFound { .. }) => {
            c.service_by_name(key).map_err(|e| match e {
                sagebridge_catalog::CatalogError::NotFound { .. } => AdminError::not_found(
                    format!("service `{key}` not found (neither an id nor a name)"),
                ),
                other => other.into(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks a body and turns it into the store's input (resolving the service reference).
fn input_from(c: &SqliteCatalog, body: &[u8]) -> Result<PipelineInput, AdminError> {
    let req: CreatePipeline = parse_body(body)?;
    if req.name.trim().is_empty() {
        return Err(AdminError::bad_request("name: must not be empty"));
    }
    if let Some(t) = req.pipeline_type.as_deref().filter(|t| *t != "metadata") {
        return Err(AdminError::bad_request(format!(
            "pipelineType: `{t}` is not supported; use `metadata`"
        )));
    }
    if let Some(t) = req
        .service
        .kind
        .as_deref()
        .filter(|t| *t != "mlmodelService")
    {
        return Err(AdminError::bad_request(format!(
            "service.type: `{t}` is not supported; use `mlmodelService`"
        )));
    }
    check_source_config(&req.source_config.config)?;
    let (schedule, paused) = match req.airflow_config {
        Some(a) => (
            a.schedule_interval.filter(|s| !s.trim().is_empty()),
            a.pause_pipeline.unwrap_or(false),
        ),
        None => (None, false),
    };
    if let Some(expr) = &schedule {
        check_schedule(expr)?;
    }
    let service = match (&req.service.id, &req.service.name) {
        (Some(id), _) => c.service(id).map_err(|e| match e {
            sagebridge_catalog::CatalogError::NotFound { .. } => {
                AdminError::not_found(format!("service.id: service `{id}` not found"))
            }
            other => other.into(),
        })?,
        (None, Some(name)) => c.service_by_name(name).map_err(|e| match e {
            sagebridge_catalog::CatalogError::NotFound { .. } => {
                AdminError::not_found(format!("service.name: service `{name}` not found"))
            }
            other => other.into(),
        })?,
        (None, None) => {
            return Err(AdminError::bad_request(
                "service: give the service's id (or name)",
            ))
        }
    };
    Ok(PipelineInput {
        name: req.name,
        service_id: service.id,
        description: req.description,
        source_config: req.source_config.config,
        schedule,
        enabled: req.enabled.unwrap_or(true) && !paused,
    })
}

pub(super) async fn list(
    State(s): State<AdminState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(params) = params?;
    let pipelines = s
        .run(move |c| {
            let service = match params.service.as_deref().filter(|k| !k.is_empty()) {
                Some(key) => Some(resolve_service(c, key)?.id),
                None => None,
            };
            Ok(c.pipelines(service.as_deref())?)
        })
        .await?;
    let data: Vec<Value> = pipelines.iter().map(pipeline_json).collect();
    Ok(Json(
        json!({"data": data, "paging": {"total": pipelines.len()}}),
    ))
}

pub(super) async fn create(
    State(s): State<AdminState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let pipeline = s
        .run(move |c| {
            let input = input_from(c, &body)?;
            Ok(c.create_pipeline(&input)?)
        })
        .await?;
    s.control.schedules_changed.notify_one();
    tracing::info!(pipeline = %pipeline.name, id = %pipeline.id, "ingestion pipeline created");
    Ok((StatusCode::CREATED, Json(pipeline_json(&pipeline))))
}

pub(super) async fn get_by_id(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let pipeline = s.run(move |c| Ok(c.pipeline(&id)?)).await?;
    Ok(Json(pipeline_json(&pipeline)))
}

pub(super) async fn update(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let pipeline = s
        .run(move |c| {
            c.pipeline(&id)?;
            let input = input_from(c, &body)?;
            Ok(c.update_pipeline(&id, &input)?)
        })
        .await?;
    s.control.schedules_changed.notify_one();
    tracing::info!(pipeline = %pipeline.name, id = %pipeline.id, "ingestion pipeline updated");
    Ok(Json(pipeline_json(&pipeline)))
}

pub(super) async fn delete(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let (pipeline, runs) = s
        .run(move |c| {
            let pipeline = c.pipeline(&id)?;
            let runs = c.delete_pipeline(&id)?;
            Ok((pipeline, runs))
        })
        .await?;
    s.control.schedules_changed.notify_one();
    tracing::info!(pipeline = %pipeline.name, id = %pipeline.id, runs, "ingestion pipeline deleted");
    let mut out = pipeline_json(&pipeline);
    out["deleted"] = json!({"runs": runs});
    Ok(Json(out))
}

/// `GET .../{id}/workflow.yaml`: the workflow file of a pipeline, for `sagebridge ingest -c`.
/// Stored secrets become `${AWS_SECRET_ACCESS_KEY}` / `${AWS_SESSION_TOKEN}` placeholders.
pub(super) async fn workflow_yaml(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    let (pipeline, service, catalog_path) = s
        .run(move |c| {
            let pipeline = c.pipeline(&id)?;
            let service = c.service(&pipeline.service_id)?;
            Ok((pipeline, service, c.path().map(|p| p.to_path_buf())))
        })
        .await?;
    let doc = workflow_document(
        &pipeline,
        &service.name,
        with_placeholders(&service),
        catalog_path.as_deref(),
    );
    let text = serde_saphyr::to_string(&doc)
        .map_err(|e| AdminError::internal(format!("cannot write the workflow as YAML: {e}")))?;
    let disposition = format!(
        "attachment; filename=\"{}.yaml\"",
        pipeline.name.replace(['"', '\\', '/'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/yaml".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    ))
}

/// The workflow document of a pipeline of service `service_name` whose `awsConfig` is `aws`,
/// writing to the catalog at `catalog_path`. For the export `aws` holds placeholders; for a run
/// it holds the secrets in clear (never sent or logged).
pub(crate) fn workflow_document(
    pipeline: &IngestionPipeline,
    service_name: &str,
    aws: Value,
    catalog_path: Option<&std::path::Path>,
) -> Value {
    let mut sink = json!({"type": "catalog"});
    if let Some(path) = catalog_path {
        sink["config"] = json!({"path": path.display().to_string()});
    }
    json!({
        "source": {
            "type": "sagemaker",
            "serviceName": service_name,
            "serviceConnection": {"config": {"type": "SageMaker", "awsConfig": aws}},
            "sourceConfig": {"config": pipeline.source_config},
        },
        "sink": sink,
    })
}

/// The service's `awsConfig` with `${ENV}` placeholders for the secrets it stores.
fn with_placeholders(service: &ServiceEntry) -> Value {
    let mut aws = service.aws_config.clone();
    if let Value::Object(map) = &mut aws {
        for ((field, placeholder), set) in SECRET_PLACEHOLDERS.iter().zip([
            service.secrets.aws_secret_access_key,
            service.secrets.aws_session_token,
        ]) {
            if set {
                map.insert((*field).to_owned(), json!(placeholder));
            }
        }
    }
    aws
}
