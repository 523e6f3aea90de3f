//! `/api/v1/gateway/keys`: API keys for the gateway's `/v1` routes, stored in the catalog as
//! SHA-256 digests. The key itself is in the create answer only. Keys of `server.apiKeys` keep
//! working beside these and are not listed (they live in the file). A key's expiry, allowed
//! models and limits (`requestsPerMinute`, `tokensPerMinute`; see `sagebridge_gateway::usage`)
//! are set at creation and replaced with `PUT`; its name stays (usage is counted under it).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sagebridge_catalog::{ApiKeyEntry, ApiKeyInput, ControlStore};
use serde::Deserialize;
use serde_json::{json, Value};

use super::openapi;
use super::validate::parse_body;
use super::{AdminError, AdminState};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateKey {
    name: String,
    /// Epoch milliseconds.
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    allowed_models: Option<Vec<String>>,
    /// Requests the key may start in any minute; left out for no limit.
    #[serde(default)]
    requests_per_minute: Option<u64>,
    /// Tokens (prompt and completion) the key may use in any minute; left out for no limit.
    #[serde(default)]
    tokens_per_minute: Option<u64>,
}

/// What `PUT` replaces: left out is none (no expiry, every model, no limit).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateKey {
    /// The key's name, if sent, must be its current name: it cannot change.
    #[serde(default)]
    name: Option<String>,
    /// Epoch milliseconds.
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    allowed_models: Option<Vec<String>>,
    #[serde(default)]
    requests_per_minute: Option<u64>,
    #[serde(default)]
    tokens_per_minute: Option<u64>,
}

/// Checks an expiry and allowed models against the clock and the gateway's models.
fn check_settings(
    s: &AdminState,
    expires_at: Option<i64>,
    allowed_models: Option<&Vec<String>>,
) -> Result<(), AdminError> {
    let now = sagebridge_aws::clock::now_millis();
    if let Some(at) = expires_at.filter(|at| *at <= now) {
        return Err(AdminError::bad_request(format!(
            "expiresAt: {at} is in the past (epoch milliseconds)"
        )));
    }
    if let Some(models) = allowed_models {
        let current = s.control.gateway().current();
        if let Some(unknown) = models
            .iter()
            .find(|m| !current.models().iter().any(|x| &x.name == *m))
        {
            return Err(AdminError::bad_request(format!(
                "allowedModels: `{unknown}` is not a gateway model"
            )));
        }
    }
    Ok(())
}

fn key_json(k: &ApiKeyEntry) -> Value {
    let mut v = serde_json::to_value(k).unwrap_or_else(|_| json!({}));
    v["expired"] = json!(k.is_expired(sagebridge_aws::clock::now_millis()));
    v
}

#[utoipa::path(
    get,
    path = "/api/v1/gateway/keys",
    tag = "gateway",
    summary = "Gateway API keys (never the keys themselves)",
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn list(State(s): State<AdminState>) -> Result<Json<Value>, AdminError> {
    let keys = s.run(|c| Ok(c.api_keys()?)).await?;
    let data: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(Json(json!({"data": data, "paging": {"total": keys.len()}})))
}

#[utoipa::path(
    post,
    path = "/api/v1/gateway/keys",
    tag = "gateway",
    summary = "Create an API key; the key is in this answer only",
    request_body(content = CreateKey, content_type = "application/json"),
    responses((status = 201, description = "Created", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn create(
    State(s): State<AdminState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let req: CreateKey = parse_body(&body)?;
    if req.name.trim().is_empty() {
        return Err(AdminError::bad_request("name: must not be empty"));
    }
    check_settings(&s, req.expires_at, req.allowed_models.as_ref())?;
    let input = ApiKeyInput {
        name: req.name,
        expires_at: req.expires_at,
        allowed_models: req.allowed_models,
        requests_per_minute: req.requests_per_minute,
        tokens_per_minute: req.tokens_per_minute,
    };
    let created = s.run(move |c| Ok(c.create_api_key(&input)?)).await?;
    reload(&s).await?;
    tracing::info!(key = %created.entry.name, id = %created.entry.id, "gateway API key created");
    let mut v = key_json(&created.entry);
    v["key"] = json!(created.key.expose());
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    put,
    path = "/api/v1/gateway/keys/{id}",
    tag = "gateway",
    summary = "Replace an API key's expiry, allowed models and limits (the key and its name stay)",
    params(("id" = String, Path, description = "The id")),
    request_body(content = UpdateKey, content_type = "application/json"),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 400, description = "Bad input; the message names the field", body = openapi::ApiError), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn update(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    let req: UpdateKey = parse_body(&body)?;
    check_settings(&s, req.expires_at, req.allowed_models.as_ref())?;
    let entry = s
        .run(move |c| {
            let stored = c
                .api_keys()?
                .into_iter()
                .find(|k| k.id == id)
                .ok_or_else(|| {
                    AdminError::not_found(format!("gateway API key `{id}` not found"))
                })?;
            let input = ApiKeyInput {
                name: req.name.unwrap_or(stored.name),
                expires_at: req.expires_at,
                allowed_models: req.allowed_models,
                requests_per_minute: req.requests_per_minute,
                tokens_per_minute: req.tokens_per_minute,
            };
            Ok(c.update_api_key(&id, &input)?)
        })
        .await?;
    reload(&s).await?;
    tracing::info!(key = %entry.name, id = %entry.id, "gateway API key updated");
    Ok(Json(key_json(&entry)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/gateway/keys/{id}",
    tag = "gateway",
    summary = "Revoke an API key",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = serde_json::Value), (status = 404, description = "Not found", body = openapi::ApiError), (status = 401, description = "No admin credential", body = openapi::ApiError), (status = 403, description = "A gateway API key, or a missing CSRF token", body = openapi::ApiError))
)]
pub(super) async fn delete(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let entry = s
        .run(move |c| {
            let entry = c
                .api_keys()?
                .into_iter()
                .find(|k| k.id == id)
                .ok_or_else(|| {
                    AdminError::not_found(format!("gateway API key `{id}` not found"))
                })?;
            c.delete_api_key(&id)?;
            Ok(entry)
        })
        .await?;
    reload(&s).await?;
    tracing::info!(key = %entry.name, id = %entry.id, "gateway API key revoked");
    Ok(Json(key_json(&entry)))
}

async fn reload(s: &AdminState) -> Result<(), AdminError> {
    let control = std::sync::Arc::clone(&s.control);
    tokio::task::spawn_blocking(move || control.reload_keys())
        .await
        .map_err(|e| AdminError::internal(format!("key reload task failed: {e}")))?
        .map_err(|e| AdminError::internal(format!("cannot reload the API keys: {e:#}")))
}
