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

use super::openapi;
use super::validate::{check_choice, check_schedule, check_source_config, parse_body};
use super::{AdminError, AdminState};

/// The environment variables the exported workflow reads its secrets from.
const SECRET_PLACEHOLDERS: [(&str, &str); 2] = [
    ("awsSecretAccessKey", "${AWS_SECRET_ACCESS_KEY}"),
    ("awsSessionToken", "${AWS_SESSION_TOKEN}"),
];

/// OpenMetadata's CreateIngestionPipeline, for SageMaker metadata.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServiceRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SourceConfigBody {
    /// The workflow file's `sourceConfig.config` (`type: MlModelMetadata`, filter patterns,
    /// `markDeletedMlModels`, enrichment switches, concurrency).
    #[schema(value_type = Object)]
    config: Value,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AirflowConfig {
    #[serde(default)]
    schedule_interval: Option<String>,
    /// OpenMetadata's switch to pause a pipeline's schedule.
    #[serde(default)]
    pause_pipeline: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

/// The latest run of a pipeline, in short (`id`, `status`, `trigger`, `startedAt`,
/// `finishedAt`), for lists that show a "last run" column without a request per row.
pub(super) fn last_run(c: &SqliteCatalog, pipeline_id: &str) -> Result<Option<Value>, AdminError> {
    Ok(c.pipeline_runs(pipeline_id, 1)?.first().map(|r| {
        json!({"id": r.run.id, "status": r.run.status, "trigger": r.trigger,
               "startedAt": r.run.started_at, "finishedAt": r.run.finished_at})
    }))
}

/// A pipeline with its last run.
fn pipeline_with_last_run(c: &SqliteCatalog, p: &IngestionPipeline) -> Result<Value, AdminError> {
    let mut out = pipeline_json(p);
    if let Some(run) = last_run(c, &p.id)? {
        out["lastRun"] = run;
    }
    Ok(out)
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
    check_choice("pipelineType", req.pipeline_type.as_deref(), "metadata")?;
    check_choice(
        "service.type",
        req.service.kind.as_deref(),
        "mlmodelService",
    )?;
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

#[utoipa::path(
    get,
    path = "/api/v1/services/ingestionPipelines",
    tag = "pipelines",
    summary = "List pipelines",
    params(ListParams),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
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
            c.pipelines(service.as_deref())?
                .iter()
                .map(|p| pipeline_with_last_run(c, p))
                .collect::<Result<Vec<Value>, AdminError>>()
        })
        .await?;
    let total = pipelines.len();
    Ok(Json(json!({"data": pipelines, "paging": {"total": total}})))
}

#[utoipa::path(
    post,
    path = "/api/v1/services/ingestionPipelines",
    tag = "pipelines",
    summary = "Create a pipeline",
    request_body(content = CreatePipeline, content_type = "application/json"),
    responses((status = 201, description = "Created", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 409, description = "Conflict", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/services/ingestionPipelines/{id}",
    tag = "pipelines",
    summary = "A pipeline",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn get_by_id(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let pipeline = s
        .run(move |c| pipeline_with_last_run(c, &c.pipeline(&id)?))
        .await?;
    Ok(Json(pipeline))
}

#[utoipa::path(
    put,
    path = "/api/v1/services/ingestionPipelines/{id}",
    tag = "pipelines",
    summary = "Replace a pipeline",
    params(("id" = String, Path, description = "The id")),
    request_body(content = CreatePipeline, content_type = "application/json"),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
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

#[utoipa::path(
    delete,
    path = "/api/v1/services/ingestionPipelines/{id}",
    tag = "pipelines",
    summary = "Delete a pipeline and its runs",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 409, description = "Conflict", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/services/ingestionPipelines/{id}/workflow.yaml",
    tag = "pipelines",
    summary = "The workflow file that runs the pipeline with sagebridge ingest -c",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "application/yaml", body = String), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
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
