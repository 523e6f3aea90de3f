//! The catalog's read-only JSON API under `/api/catalog`, for the web UI and for scripts.
//!
//! Every route answers JSON. Errors use the OpenAI error shape the gateway uses
//! (`{"error": {"message", "type", "param", "code"}}`) so one client-side helper shows them all:
//! 503 `catalog_unavailable` when `serve` runs without a catalog file, 404 `model_not_found`, 409
//! `ambiguous_model_name` for a bare name found in several services, and 500 `catalog_error`
//! (details only in the log).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sagebridge_aws::secret::redact_secret_keys;
use sagebridge_catalog::{Catalog, CatalogError, ListQuery, MlModelService};
use serde::Deserialize;
use serde_json::json;

/// Runs listed when the request gives no `limit`.
const DEFAULT_RUNS: usize = 20;
/// The most runs one request may list.
const MAX_RUNS: usize = 500;

/// Shared state of the catalog routes.
#[derive(Clone)]
struct CatalogState {
    catalog: Option<Arc<dyn Catalog>>,
}

/// Why a catalog request failed.
enum ApiError {
    /// `serve` was started without an existing catalog file.
    NoCatalog,
    ModelNotFound(String),
    /// A bare model name matched models of several services.
    Ambiguous(String),
    /// Anything else; the cause is logged, never sent.
    Internal(String),
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::AmbiguousName { .. } => Self::Ambiguous(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, code, message) = match self {
            Self::NoCatalog => (
                StatusCode::SERVICE_UNAVAILABLE,
                "catalog_unavailable",
                "catalog_unavailable",
                "no catalog is open: run `sagebridge ingest` to create one, then start \
                 `sagebridge serve --catalog <file>` with that file"
                    .to_owned(),
            ),
            Self::ModelNotFound(name) => (
                StatusCode::NOT_FOUND,
                "not_found_error",
                "model_not_found",
                format!("model `{name}` is not in the catalog; list models at /api/catalog/models"),
            ),
            Self::Ambiguous(message) => (
                StatusCode::CONFLICT,
                "invalid_request_error",
                "ambiguous_model_name",
                message,
            ),
            Self::Internal(cause) => {
                tracing::warn!(error = %cause, "catalog request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "catalog_error",
                    "catalog error; see the server log".to_owned(),
                )
            }
        };
        let body =
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
        (status, Json(body)).into_response()
    }
}

/// Runs a blocking catalog call off the async runtime; no catalog is [`ApiError::NoCatalog`].
async fn with_catalog<T, F>(state: CatalogState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Catalog) -> Result<T, ApiError> + Send + 'static,
{
    let cat = state.catalog.ok_or(ApiError::NoCatalog)?;
    tokio::task::spawn_blocking(move || f(cat.as_ref()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}

#[derive(Deserialize)]
struct ModelParams {
    service: Option<String>,
    #[serde(default)]
    deleted: bool,
    /// Only names containing this text (ASCII case ignored).
    q: Option<String>,
}

/// An empty query parameter (`?service=`) means "not given".
fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

async fn list_models(State(s): State<CatalogState>, Query(p): Query<ModelParams>) -> Response {
    let q = ListQuery {
        service: non_empty(p.service),
        include_deleted: p.deleted,
        name_contains: non_empty(p.q),
        ..Default::default()
    };
    with_catalog(s, move |cat| Ok(cat.list_models(&q)?))
        .await
        .map(Json)
        .into_response()
}

async fn show_model(State(s): State<CatalogState>, Path(name): Path<String>) -> Response {
    with_catalog(s, move |cat| {
        cat.get_model(None, &name)?
            .ok_or(ApiError::ModelNotFound(name))
    })
    .await
    .map(Json)
    .into_response()
}

/// Every version of a model, newest first. `name` is looked up like `show_model` does, so a bare
/// name works when it is unique.
async fn model_versions(State(s): State<CatalogState>, Path(name): Path<String>) -> Response {
    with_catalog(s, move |cat| {
        let model = cat
            .get_model(None, &name)?
            .ok_or(ApiError::ModelNotFound(name))?;
        Ok(cat.model_versions(&model.fully_qualified_name)?)
    })
    .await
    .map(Json)
    .into_response()
}

async fn list_services(State(s): State<CatalogState>) -> Response {
    with_catalog(s, |cat| {
        let mut services: Vec<MlModelService> = cat.list_services()?;
        for service in &mut services {
            if let Some(c) = service.connection.as_mut() {
                redact_secret_keys(c);
            }
        }
        Ok(services)
    })
    .await
    .map(Json)
    .into_response()
}

#[derive(Deserialize)]
struct RunParams {
    service: Option<String>,
    limit: Option<usize>,
}

async fn list_runs(State(s): State<CatalogState>, Query(p): Query<RunParams>) -> Response {
    let service = non_empty(p.service);
    let limit = p.limit.unwrap_or(DEFAULT_RUNS).clamp(1, MAX_RUNS);
    with_catalog(s, move |cat| Ok(cat.list_runs(service.as_deref(), limit)?))
        .await
        .map(Json)
        .into_response()
}

/// `/api/catalog/...`: models (list, one, versions), services and ingestion runs.
pub(crate) fn router(catalog: Option<Arc<dyn Catalog>>) -> Router {
    Router::new()
        .route("/api/catalog/models", get(list_models))
        .route("/api/catalog/models/{name}", get(show_model))
        .route("/api/catalog/models/{name}/versions", get(model_versions))
        .route("/api/catalog/services", get(list_services))
        .route("/api/catalog/runs", get(list_runs))
        .with_state(CatalogState { catalog })
}
