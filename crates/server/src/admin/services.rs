//! `/api/v1/services/mlmodelServices`: SageMaker connections, as OpenMetadata's
//! CreateMlModelService and MlModelService.
//!
//! A delete follows OpenMetadata's `recursive=true`: without it, a service with pipelines,
//! gateway models or models answers 409 naming them; with it, they are deleted with the
//! service. Deletes are always hard (the records are gone); `hardDelete` is accepted for
//! OpenMetadata clients and changes nothing.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use sagebridge_catalog::{
    CatalogError, ClearAwsConfig, ControlStore, ServiceEntry, ServiceInput, SqliteCatalog, REDACTED,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::openapi;
use super::validate::{check_aws_config, check_choice, parse_body};
use super::{AdminError, AdminState};

/// OpenMetadata's CreateMlModelService, for SageMaker.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateService {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    service_type: Option<String>,
    connection: Connection,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Connection {
    pub(super) config: ConnectionConfig,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ConnectionConfig {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[schema(value_type = openapi::AwsConfig)]
    pub(super) aws_config: Value,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DeleteParams {
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    hard_delete: bool,
}

/// A service as OpenMetadata shows an MlModelService, with `secrets` saying which are stored.
pub(super) fn service_json(s: &ServiceEntry) -> Value {
    let mut out = json!({
        "id": s.id,
        "name": s.name,
        "fullyQualifiedName": s.name,
        "serviceType": s.service_type,
        "connection": {"config": {"type": "SageMaker", "awsConfig": s.aws_config}},
        "secrets": s.secrets,
        "managed": s.managed,
        "version": s.version,
        "createdAt": s.created_at,
        "updatedAt": s.updated_at,
        "href": format!("/api/v1/services/mlmodelServices/{}", s.id),
    });
    if let Some(d) = &s.description {
        out["description"] = json!(d);
    }
    out
}

/// Checks a body and turns it into the store's input. `previous` is the stored service on an
/// update: secrets it holds count as set when the body leaves them out.
fn input_from(body: &[u8], previous: Option<&ServiceEntry>) -> Result<ServiceInput, AdminError> {
    let req: CreateService = parse_body(body)?;
    if req.name.trim().is_empty() {
        return Err(AdminError::bad_request("name: must not be empty"));
    }
    check_choice("serviceType", req.service_type.as_deref(), "SageMaker")?;
    check_choice(
        "connection.config.type",
        req.connection.config.kind.as_deref(),
        "SageMaker",
    )?;
    let aws = req.connection.config.aws_config;
    let mut checked = aws.clone();
    if let (Some(prev), Value::Object(map)) = (previous, &mut checked) {
        for (field, set) in [
            ("awsSecretAccessKey", prev.secrets.aws_secret_access_key),
            ("awsSessionToken", prev.secrets.aws_session_token),
        ] {
            let kept = match map.get(field) {
                None => true,
                Some(Value::String(s)) => s == REDACTED,
                Some(_) => false,
            };
            if set && kept {
                map.insert(field.to_owned(), json!("stored"));
            }
        }
    }
    check_aws_config(&checked)?;
    Ok(ServiceInput {
        name: req.name,
        description: req.description,
        aws_config: ClearAwsConfig::new(aws),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/services/mlmodelServices",
    tag = "services",
    summary = "List the services",
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
/// The services, each with `pipelines` (how many) and `lastRun` (the latest run of any of its
/// pipelines), so a list needs no request per row.
pub(super) async fn list(State(s): State<AdminState>) -> Result<Json<Value>, AdminError> {
    let data = s
        .run(|c| {
            let mut data = Vec::new();
            for service in c.services()? {
                let mut out = service_json(&service);
                let pipelines = c.pipelines(Some(&service.id))?;
                let mut last: Option<Value> = None;
                for p in &pipelines {
                    if let Some(run) = super::pipelines::last_run(c, &p.id)? {
                        if last
                            .as_ref()
                            .is_none_or(|l| run["startedAt"].as_i64() > l["startedAt"].as_i64())
                        {
                            last = Some(run);
                        }
                    }
                }
                out["pipelines"] = json!(pipelines.len());
                if let Some(run) = last {
                    out["lastRun"] = run;
                }
                data.push(out);
            }
            Ok(data)
        })
        .await?;
    let total = data.len();
    Ok(Json(json!({"data": data, "paging": {"total": total}})))
}

#[utoipa::path(
    post,
    path = "/api/v1/services/mlmodelServices",
    tag = "services",
    summary = "Create a service",
    request_body(content = CreateService, content_type = "application/json"),
    responses((status = 201, description = "Created", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 409, description = "Conflict", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn create(
    State(s): State<AdminState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let input = input_from(&body, None)?;
    let entry = s.run(move |c| Ok(c.create_service(&input)?)).await?;
    tracing::info!(service = %entry.name, id = %entry.id, "service created");
    Ok((StatusCode::CREATED, Json(service_json(&entry))))
}

#[utoipa::path(
    get,
    path = "/api/v1/services/mlmodelServices/{id}",
    tag = "services",
    summary = "A service by id",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn get_by_id(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let entry = s.run(move |c| Ok(c.service(&id)?)).await?;
    Ok(Json(service_json(&entry)))
}

#[utoipa::path(
    get,
    path = "/api/v1/services/mlmodelServices/name/{name}",
    tag = "services",
    summary = "A service by name",
    params(("name" = String, Path, description = "The name")),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn get_by_name(
    State(s): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let entry = s.run(move |c| Ok(c.service_by_name(&name)?)).await?;
    Ok(Json(service_json(&entry)))
}

#[utoipa::path(
    put,
    path = "/api/v1/services/mlmodelServices/{id}",
    tag = "services",
    summary = "Replace a service (secrets left out are kept)",
    params(("id" = String, Path, description = "The id")),
    request_body(content = CreateService, content_type = "application/json"),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn update(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let entry = s
        .run(move |c| {
            let previous = c.service(&id)?;
            let input = input_from(&body, Some(&previous))?;
            Ok(c.update_service(&id, &input)?)
        })
        .await?;
    // Gateway models may use this service's credentials.
    s.reload_gateway().await?;
    tracing::info!(service = %entry.name, id = %entry.id, "service updated");
    Ok(Json(service_json(&entry)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/services/mlmodelServices/{id}",
    tag = "services",
    summary = "Delete a service (recursive=true also deletes its pipelines, gateway models and models)",
    params(("id" = String, Path, description = "The id"), DeleteParams),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 409, description = "Conflict", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn delete(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    params: Result<Query<DeleteParams>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(params) = params?;
    let _ = params.hard_delete;
    let recursive = params.recursive;
    let (entry, deletion) = s
        .run(move |c| {
            let entry = c.service(&id)?;
            match c.delete_service(&id, recursive) {
                Ok(deletion) => Ok((entry, deletion)),
                Err(e @ CatalogError::HasDependents { .. }) => {
                    Err(AdminError::conflict(name_dependents(c, &entry, &e)))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    s.control.schedules_changed.notify_one();
    if !deletion.gateway_models.is_empty() {
        s.reload_gateway().await?;
    }
    tracing::info!(service = %entry.name, id = %entry.id, recursive, "service deleted");
    let mut out = service_json(&entry);
    out["deleted"] = json!(deletion);
    Ok(Json(out))
}

/// The store's dependents message, with the pipelines and gateway models named.
fn name_dependents(c: &SqliteCatalog, entry: &ServiceEntry, e: &CatalogError) -> String {
    let pipelines: Vec<String> = c
        .pipelines(Some(&entry.id))
        .map(|p| p.into_iter().map(|p| p.name).collect())
        .unwrap_or_default();
    let gateway: Vec<String> = c
        .gateway_models()
        .map(|m| {
            m.into_iter()
                .filter(|m| m.service_id.as_deref() == Some(entry.id.as_str()))
                .map(|m| m.name)
                .collect()
        })
        .unwrap_or_default();
    let mut message = format!("{e} (add ?recursive=true to delete them with the service)");
    if !pipelines.is_empty() {
        message.push_str(&format!("; pipelines: {}", pipelines.join(", ")));
    }
    if !gateway.is_empty() {
        message.push_str(&format!("; gateway models: {}", gateway.join(", ")));
    }
    message
}
