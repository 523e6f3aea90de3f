//! `sagebridge serve`: one axum app for the model gateway, the catalog's read API and the web UI.
//!
//! # Layout
//! - [`app`]: builds the router: the gateway's `/v1/*` and `/metrics` (from
//!   `sagebridge-gateway`), `GET /healthz`, the catalog API and the web UI.
//! - `catalog_api`: `GET /api/catalog/models[/{name}[/versions]]`, `/api/catalog/services` and
//!   `/api/catalog/runs`, a read-only JSON view of the embedded catalog with OpenAI-style errors.
//! - `ui`: the read-only web UI at `/` (assets under `/ui/`), plain HTML, JS and CSS from
//!   `assets/`, embedded with `include_str!`.
//! - [`serve`]: binds the listener and runs until the process's one [`Shutdown`] signal fires
//!   (the binary wires Ctrl-C / SIGTERM to it), draining in-flight requests.
//!
//! Editing services and ingestion workflows from the UI, and the ingestion scheduler of the
//! product plan, are not built yet.

mod catalog_api;
mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use sagebridge_catalog::{Catalog, SqliteCatalog};
use sagebridge_gateway::{Gateway, GatewayConfig};
use sagebridge_ingest::shutdown::Shutdown;

/// The whole app. `catalog` is the embedded catalog file to expose read-only, if any.
pub fn app(gateway: Arc<Gateway>, catalog: Option<Arc<dyn Catalog>>) -> Router {
    sagebridge_gateway::router(gateway)
        .merge(catalog_api::router(catalog))
        .merge(ui::router())
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

/// Binds and serves until `shutdown` fires, then drains the requests in flight. Prints the bound
/// address on stdout (useful with port 0).
pub async fn serve(
    cfg: &GatewayConfig,
    opts: &ServeOptions,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
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
        .with_graceful_shutdown(async move {
            shutdown.recv().await;
            tracing::info!("shutting down");
        })
        .await?;
    Ok(())
}
