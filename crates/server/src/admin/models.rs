//! `/api/v1/gateway/models`: the models the gateway serves, and `.../{name}/check`.
//!
//! The models of `sagebridge.yaml` are listed read-only (`source: "file"`); models added here
//! are stored in the catalog (`source: "catalog"`) and served on `/v1` as soon as the answer is
//! sent: the gateway is rebuilt and swapped in. A body is a `models:` entry of
//! `sagebridge.yaml`, checked by that file's own validation, plus where its credentials come
//! from: `service` (a service id or name: its connection), or its own `awsConfig`, or neither
//! (the file's top-level `awsConfig`, or the default chain). Secrets are stored encrypted and
//! never answered; an update that leaves one out keeps it.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use sagebridge_catalog::{
    ClearAwsConfig, ControlStore, GatewayCredentials, GatewayModelEntry, GatewayModelInput,
    SqliteCatalog, REDACTED, SECRET_FIELDS,
};
use sagebridge_gateway::{GatewayConfig, ModelConfig};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::openapi;
use super::validate::check_aws_config;
use super::{AdminError, AdminState};
use crate::control::parse_model_spec;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckParams {
    /// Also send one tiny request to the endpoint.
    #[serde(default)]
    invoke: bool,
}

/// The listing fields of a parsed model.
fn model_fields(m: &ModelConfig, region: Option<&str>) -> Value {
    let mut out = json!({
        "name": m.name,
        "kind": m.kind.as_str(),
        "format": m.format().as_str(),
        "endpointName": m.endpoint_name,
    });
    for (key, value) in [
        ("inferenceComponent", &m.inference_component),
        ("targetVariant", &m.target_variant),
        ("targetModel", &m.target_model),
    ] {
        if let Some(v) = value {
            out[key] = json!(v);
        }
    }
    if let Some(r) = region {
        out["region"] = json!(r);
    }
    out
}

fn file_model_json(m: &ModelConfig, base: &GatewayConfig) -> Value {
    let region = base.effective_aws(m).map(|a| a.region().to_owned());
    let mut out = model_fields(m, region.as_deref());
    out["source"] = json!("file");
    out["readOnly"] = json!(true);
    for (key, value) in [
        ("maxTokens", m.max_tokens.map(|v| json!(v))),
        ("temperature", m.temperature.map(|v| json!(v))),
        ("contextLength", m.context_length.map(|v| json!(v))),
    ] {
        if let Some(v) = value {
            out[key] = v;
        }
    }
    out
}

/// A catalog model: its stored entry (spec fields at the top level) with where its
/// credentials come from and its region.
fn catalog_model_json(
    e: &GatewayModelEntry,
    service: Option<(&str, &Value)>,
    base: &GatewayConfig,
) -> Value {
    let mut out = match &e.spec {
        Value::Object(map) => Value::Object(map.clone()),
        _ => json!({}),
    };
    out["name"] = json!(e.name);
    let kind = out.get("kind").cloned().unwrap_or(Value::Null);
    if out.get("format").is_none() {
        // The gateway's own default for the kind, so every kind (audio included) is covered.
        let default = serde_json::from_value::<sagebridge_gateway::ModelKind>(kind.clone())
            .ok()
            .map(|k| k.default_format().as_str());
        if let Some(f) = default {
            out["format"] = json!(f);
        }
    }
    let region = e
        .aws_config
        .as_ref()
        .and_then(|a| a.get("awsRegion"))
        .or_else(|| service.and_then(|(_, aws)| aws.get("awsRegion")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| base.aws_config.as_ref().map(|a| a.region().to_owned()));
    if let Some(r) = region {
        out["region"] = json!(r);
    }
    if let (Some(id), Some((name, _))) = (&e.service_id, service) {
        out["service"] = json!({"id": id, "name": name});
    }
    if let Some(aws) = &e.aws_config {
        out["awsConfig"] = aws.clone();
        out["secrets"] = json!(e.secrets);
    }
    out["credentials"] = json!(match (&e.service_id, &e.aws_config) {
        (Some(_), _) => "service",
        (None, Some(_)) => "own",
        (None, None) => "gateway",
    });
    out["source"] = json!("catalog");
    out["readOnly"] = json!(false);
    out["createdAt"] = json!(e.created_at);
    out["updatedAt"] = json!(e.updated_at);
    out
}

/// The JSON of a catalog entry, reading its service's name and region.
fn entry_json(c: &SqliteCatalog, e: &GatewayModelEntry, base: &GatewayConfig) -> Value {
    let service = e.service_id.as_ref().and_then(|id| c.service(id).ok());
    catalog_model_json(
        e,
        service.as_ref().map(|s| (s.name.as_str(), &s.aws_config)),
        base,
    )
}

fn with_last_check(s: &AdminState, mut v: Value) -> Value {
    if let Some(name) = v.get("name").and_then(Value::as_str) {
        let checks = s
            .control
            .last_checks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(check) = checks.get(name) {
            v["lastCheck"] = check.clone();
        }
    }
    v
}

#[utoipa::path(
    get,
    path = "/api/v1/gateway/models",
    tag = "gateway",
    summary = "Gateway models (file and catalog)",
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn list(State(s): State<AdminState>) -> Result<Json<Value>, AdminError> {
    let base = s.control.base.clone();
    let mut data: Vec<Value> = base
        .models
        .iter()
        .map(|m| file_model_json(m, &base))
        .collect();
    let stored = s
        .run(move |c| {
            Ok(c.gateway_models()?
                .iter()
                .map(|e| entry_json(c, e, &base))
                .collect::<Vec<_>>())
        })
        .await?;
    data.extend(stored);
    let data: Vec<Value> = data.into_iter().map(|v| with_last_check(&s, v)).collect();
    let total = data.len();
    Ok(Json(json!({"data": data, "paging": {"total": total}})))
}

#[utoipa::path(
    get,
    path = "/api/v1/gateway/models/{name}",
    tag = "gateway",
    summary = "A gateway model",
    params(("name" = String, Path, description = "The model name")),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn get(
    State(s): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let base = s.control.base.clone();
    if let Some(m) = base.models.iter().find(|m| m.name == name) {
        return Ok(Json(with_last_check(&s, file_model_json(m, &base))));
    }
    let v = s
        .run(move |c| {
            let e = c.gateway_model(&name)?;
            Ok(entry_json(c, &e, &base))
        })
        .await?;
    Ok(Json(with_last_check(&s, v)))
}

/// A request body split into the store's input, checked. `previous` is the stored model on an
/// update (its secrets count as set when the body leaves them out).
fn input_from(
    c: &SqliteCatalog,
    body: &[u8],
    base: &GatewayConfig,
    previous: Option<&GatewayModelEntry>,
) -> Result<GatewayModelInput, AdminError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AdminError::bad_request(format!("invalid request body: {e}")))?;
    let Value::Object(mut spec) = value else {
        return Err(AdminError::bad_request("the body must be a JSON object"));
    };
    let service = spec.remove("service");
    let aws = spec.remove("awsConfig");
    let name = match spec.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
        Some(Value::String(_)) | None => match previous {
            Some(p) => p.name.clone(),
            None => return Err(AdminError::bad_request("name: must not be empty")),
        },
        Some(_) => return Err(AdminError::bad_request("name: must be a string")),
    };
    spec.insert("name".into(), json!(name));
    let (credentials, check_aws) = match (service, aws) {
        (Some(_), Some(_)) => {
            return Err(AdminError::bad_request(
                "awsConfig: give either `service` (use its connection) or `awsConfig`, not both",
            ))
        }
        (Some(Value::String(key)), None) => {
            let entry = c
                .service(&key)
                .or_else(|_| c.service_by_name(&key))
                .map_err(|_| {
                    AdminError::bad_request(format!("service: no service with id or name `{key}`"))
                })?;
            let region = entry.aws_config.get("awsRegion").cloned();
            (
                GatewayCredentials::Service(entry.id),
                region.map(|r| json!({"awsRegion": r})),
            )
        }
        (Some(_), None) => {
            return Err(AdminError::bad_request(
                "service: must be a service id or name",
            ))
        }
        (None, Some(aws)) => {
            let mut checked = aws.clone();
            if let (Some(prev), Value::Object(map)) = (previous, &mut checked) {
                for (field, set) in SECRET_FIELDS.iter().zip([
                    prev.secrets.aws_secret_access_key,
                    prev.secrets.aws_session_token,
                ]) {
                    let kept = match map.get(*field) {
                        None => true,
                        Some(Value::String(s)) => s == REDACTED,
                        Some(_) => false,
                    };
                    if set && kept {
                        map.insert((*field).to_owned(), json!("stored"));
                    }
                }
            }
            check_aws_config(&checked).map_err(|e| AdminError {
                message: e
                    .message
                    .replacen("connection.config.awsConfig", "awsConfig", 1),
                ..e
            })?;
            (
                GatewayCredentials::Own(ClearAwsConfig::new(aws)),
                Some(checked),
            )
        }
        (None, None) => (GatewayCredentials::Inherit, None),
    };
    let mut entry = Map::clone(&spec);
    if let Some(aws) = check_aws {
        entry.insert("awsConfig".into(), aws);
    }
    let secrets: Vec<String> = SECRET_FIELDS
        .iter()
        .filter_map(|f| entry.get("awsConfig").and_then(|a| a.get(*f)))
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    parse_model_spec(&Value::Object(entry), base).map_err(|e| {
        let text = e.to_string();
        AdminError::bad_request(
            secrets
                .iter()
                .fold(text, |t, s| t.replace(s.as_str(), REDACTED)),
        )
    })?;
    Ok(GatewayModelInput {
        name,
        spec: Value::Object(spec),
        credentials,
    })
}

fn read_only(name: &str) -> AdminError {
    AdminError::conflict(format!(
        "gateway model `{name}` is defined in sagebridge.yaml and is read-only here; change it in \
         the file (and restart), or add a model with another name"
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/gateway/models",
    tag = "gateway",
    summary = "Add a gateway model (served at once)",
    request_body(content = super::openapi::GatewayModel, content_type = "application/json"),
    responses((status = 201, description = "Created", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 409, description = "Conflict", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn create(
    State(s): State<AdminState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let base = s.control.base.clone();
    let control = std::sync::Arc::clone(&s.control);
    let v = s
        .run(move |c| {
            let input = input_from(c, &body, &base, None)?;
            if control.is_file_model(&input.name) {
                return Err(AdminError::conflict(format!(
                    "gateway model `{}` already exists in sagebridge.yaml; choose another name",
                    input.name
                )));
            }
            let e = c.create_gateway_model(&input)?;
            Ok(entry_json(c, &e, &base))
        })
        .await?;
    s.reload_gateway().await?;
    tracing::info!(model = %v["name"], "gateway model added");
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    put,
    path = "/api/v1/gateway/models/{name}",
    tag = "gateway",
    summary = "Replace a catalog gateway model",
    params(("name" = String, Path, description = "The model name")),
    request_body(content = super::openapi::GatewayModel, content_type = "application/json"),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 404, description = "Not found", body = openapi::ApiError), (status = 409, description = "Conflict", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn update(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    if s.control.is_file_model(&name) {
        return Err(read_only(&name));
    }
    let base = s.control.base.clone();
    let v = s
        .run(move |c| {
            let previous = c.gateway_model(&name)?;
            let input = input_from(c, &body, &base, Some(&previous))?;
            let e = c.update_gateway_model(&name, &input)?;
            Ok(entry_json(c, &e, &base))
        })
        .await?;
    s.reload_gateway().await?;
    tracing::info!(model = %v["name"], "gateway model updated");
    Ok(Json(v))
}

#[utoipa::path(
    delete,
    path = "/api/v1/gateway/models/{name}",
    tag = "gateway",
    summary = "Delete a catalog gateway model",
    params(("name" = String, Path, description = "The model name")),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 409, description = "Conflict", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn delete(
    State(s): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AdminError> {
    if s.control.is_file_model(&name) {
        return Err(read_only(&name));
    }
    let base = s.control.base.clone();
    let key = name.clone();
    let v = s
        .run(move |c| {
            let e = c.gateway_model(&key)?;
            let v = entry_json(c, &e, &base);
            c.delete_gateway_model_entry(&key)?;
            Ok(v)
        })
        .await?;
    s.reload_gateway().await?;
    s.control
        .last_checks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&name);
    tracing::info!(model = %name, "gateway model deleted");
    Ok(Json(v))
}

/// `POST .../{name}/check[?invoke=true]`: DescribeEndpoint (and one tiny invocation), each a
/// step with its classified error, as `sagebridge test-connection` on a gateway file.
#[utoipa::path(
    post,
    path = "/api/v1/gateway/models/{name}/check",
    tag = "gateway",
    summary = "DescribeEndpoint (and one tiny invocation with invoke=true)",
    params(("name" = String, Path, description = "The model name"), CheckParams),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 409, description = "Conflict", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn check(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    params: Result<Query<CheckParams>, QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(p) = params?;
    let base = s.control.base.clone();
    let mut cfg = base.clone();
    if let Some(m) = base.models.iter().find(|m| m.name == name) {
        cfg.models = vec![m.clone()];
    } else {
        let key = name.clone();
        let stored = s
            .run(move |c| Ok(c.gateway_model_with_secrets(&key)?.expose_model_config()))
            .await?;
        let model = parse_model_spec(&stored, &base).map_err(|e| {
            AdminError::conflict(format!(
                "gateway model `{name}` is no longer valid ({}); edit it",
                e.field
            ))
        })?;
        cfg.models = vec![model];
    }
    let steps = sagebridge_gateway::check_models(&cfg, Some(&name), p.invoke).await;
    let passed = steps.iter().all(|r| r.passed() || !r.mandatory);
    let result = json!({
        "passed": passed,
        "steps": steps,
        "checkedAt": sagebridge_aws::clock::now_millis(),
    });
    s.control
        .last_checks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name, result.clone());
    Ok(Json(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_models_get_their_kinds_default_format() {
        for (kind, format) in [
            ("chat", "openai"),
            ("embedding", "tei"),
            ("rerank", "tei"),
            ("transcription", "huggingface"),
            ("speech", "openai"),
        ] {
            let e = GatewayModelEntry {
                name: "m".into(),
                spec: json!({"kind": kind, "endpointName": "ep"}),
                service_id: None,
                aws_config: None,
                secrets: Default::default(),
                created_at: 0,
                updated_at: 0,
            };
            let v = catalog_model_json(&e, None, &GatewayConfig::default());
            assert_eq!(v["format"], format, "{kind}");
        }
    }
}
