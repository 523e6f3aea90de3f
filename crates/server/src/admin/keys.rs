//! `/api/v1/gateway/keys`: API keys for the gateway's `/v1` routes, stored in the catalog as
//! SHA-256 digests. The key itself is in the create answer only. Keys of `server.apiKeys` keep
//! working beside these and are not listed (they live in the file).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sagebridge_catalog::{ApiKeyEntry, ApiKeyInput, ControlStore};
use serde::Deserialize;
use serde_json::{json, Value};

use super::validate::parse_body;
use super::{AdminError, AdminState};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateKey {
    name: String,
    /// Epoch milliseconds.
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    allowed_models: Option<Vec<String>>,
}

fn key_json(k: &ApiKeyEntry) -> Value {
    let mut v = serde_json::to_value(k).unwrap_or_else(|_| json!({}));
    v["expired"] = json!(k.is_expired(sagebridge_aws::clock::now_millis()));
    v
}

pub(super) async fn list(State(s): State<AdminState>) -> Result<Json<Value>, AdminError> {
    let keys = s.run(|c| Ok(c.api_keys()?)).await?;
    let data: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(Json(json!({"data": data, "paging": {"total": keys.len()}})))
}

pub(super) async fn create(
    State(s): State<AdminState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let req: CreateKey = parse_body(&body)?;
    if req.name.trim().is_empty() {
        return Err(AdminError::bad_request("name: must not be empty"));
    }
    let now = sagebridge_aws::clock::now_millis();
    if let Some(at) = req.expires_at.filter(|at| *at <= now) {
        return Err(AdminError::bad_request(format!(
            "expiresAt: {at} is in the past (epoch milliseconds)"
        )));
    }
    let gateway = s.control.gateway();
    if let Some(models) = &req.allowed_models {
        let current = gateway.current();
        if let Some(unknown) = models
            .iter()
            .find(|m| !current.models().iter().any(|x| &x.name == *m))
        {
            return Err(AdminError::bad_request(format!(
                "allowedModels: `{unknown}` is not a gateway model"
            )));
        }
    }
    let input = ApiKeyInput {
        name: req.name,
        expires_at: req.expires_at,
        allowed_models: req.allowed_models,
    };
    let created = s.run(move |c| Ok(c.create_api_key(&input)?)).await?;
    reload(&s).await?;
    tracing::info!(key = %created.entry.name, id = %created.entry.id, "gateway API key created");
    let mut v = key_json(&created.entry);
    v["key"] = json!(created.key.expose());
    Ok((StatusCode::CREATED, Json(v)))
}

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
