//! `sagebridge serve`: one axum app for the model gateway and the catalog's read API.
//!
//! # Layout
//! - [`app`]: builds the router: the gateway's `/v1/*` and `/metrics` (from
//!   `sagebridge-gateway`), `GET /healthz`, and `GET /api/catalog/models[/{name}]`, a read-only
//!   JSON view of the embedded catalog.
//! - [`serve`]: binds the listener and runs until Ctrl-C / SIGTERM, draining in-flight requests.
//!
//! The web UI and the ingestion scheduler of the product plan are not built yet.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sagebridge_catalog::{Catalog, ListQuery, SqliteCatalog};
use sagebridge_gateway::{Gateway, GatewayConfig};
use serde::Deserialize;

/// Shared state of the catalog routes.
#[derive(Clone)]
struct CatalogState {
    catalog: Option<Arc<dyn Catalog>>,
}

#[derive(Deserialize)]
struct ListParams {
    service: Option<String>,
    #[serde(default)]
    deleted: bool,
}

fn catalog_error(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "catalog request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({"error": {"message": "catalog error", "type": "server_error"}})),
    )
        .into_response()
}

async fn list_models(State(s): State<CatalogState>, Query(p): Query<ListParams>) -> Response {
    let Some(cat) = s.catalog else {
        return (StatusCode::NOT_FOUND, "no catalog configured").into_response();
    };
    let q = ListQuery {
        service: p.service,
        include_deleted: p.deleted,
        ..Default::default()
    };
    match tokio::task::spawn_blocking(move || cat.list_models(&q)).await {
        Ok(Ok(models)) => Json(models).into_response(),
        Ok(Err(e)) => catalog_error(e),
        Err(e) => catalog_error(e),
    }
}

async fn show_model(State(s): State<CatalogState>, Path(name): Path<String>) -> Response {
    let Some(cat) = s.catalog else {
        return (StatusCode::NOT_FOUND, "no catalog configured").into_response();
    };
    match tokio::task::spawn_blocking(move || cat.get_model(None, &name)).await {
        Ok(Ok(Some(m))) => Json(m).into_response(),
        Ok(Ok(None)) => StatusCode::NOT_FOUND.into_response(),
        Ok(Err(e)) => catalog_error(e),
        Err(e) => catalog_error(e),
    }
}

/// The whole app. `catalog` is the embedded catalog file to expose read-only, if any.
pub fn app(gateway: Arc<Gateway>, catalog: Option<Arc<dyn Catalog>>) -> Router {
    let catalog_routes = Router::new()
        .route("/api/catalog/models", get(list_models))
        .route("/api/catalog/models/{name}", get(show_model))
        .with_state(CatalogState { catalog });
    sagebridge_gateway::router(gateway)
        .merge(catalog_routes)
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
}

/// Options of `serve` beside the gateway config.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Overrides `server.listen`.
    pub listen: Option<String>,
    /// Embedded catalog to expose; not opened when the file does not exist.
    pub catalog_path: Option<PathBuf>,
}

/// Binds and serves until a shutdown signal. Prints the bound address on stdout (useful with
/// port 0).
pub async fn serve(cfg: &GatewayConfig, opts: &ServeOptions) -> anyhow::Result<()> {
    let gateway = Arc::new(Gateway::new(cfg)?);
    let catalog: Option<Arc<dyn Catalog>> = match &opts.catalog_path {
        Some(p) if p.exists() => Some(Arc::new(SqliteCatalog::open(p)?)),
        _ => None,
    };
    let listen = opts
        .listen
        .clone()
        .unwrap_or_else(|| cfg.server.listen.clone());
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid listen address `{listen}`: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    println!("sagebridge listening on http://{bound}");
    tracing::info!(addr = %bound, models = cfg.models.len(), "serving");
    axum::serve(listener, app(gateway, catalog))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
