//! `sagebridge serve`: one axum app for the model gateway, the catalog's read API and the web UI.
//!
//! # Layout
//! - [`app`]: builds the router: the gateway's `/v1/*` and `/metrics` (from
//!   `sagebridge-gateway`), `GET /healthz`, the catalog API, the sign-in route and the web UI,
//!   all behind [`auth`]'s host guard and admin check.
//! - [`auth`]: admin tokens (configured or generated at start), browser sessions with CSRF
//!   tokens under `/api/v1/session`, the DNS-rebinding guard.
//! - `catalog_api`: `GET /api/catalog/models[/{name}[/versions]]`, `/api/catalog/services` and
//!   `/api/catalog/runs`, a read-only JSON view of the embedded catalog with OpenAI-style errors.
//! - `ui`: the read-only web UI at `/` (assets under `/ui/`), plain HTML, JS and CSS from
//!   `assets/`, embedded with `include_str!`.
//! - [`serve`]: binds the listener and runs until the process's one [`Shutdown`] signal fires
//!   (the binary wires Ctrl-C / SIGTERM to it), draining in-flight requests.
//!
//! Editing services and ingestion workflows from the UI, and the ingestion scheduler of the
//! product plan, are not built yet.

pub mod admin;
pub mod auth;
mod catalog_api;
pub mod discover;
mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use sagebridge_catalog::{Catalog, SqliteCatalog};
use sagebridge_gateway::{Gateway, GatewayConfig};
use sagebridge_ingest::shutdown::Shutdown;

pub use auth::AdminAuth;

/// The whole app. `catalog` is the embedded catalog file to expose read-only, if any; `auth`
/// guards every route (see [`auth`]).
pub fn app(
    gateway: Arc<Gateway>,
    catalog: Option<Arc<dyn Catalog>>,
    auth: Arc<AdminAuth>,
) -> Router {
    let routes = sagebridge_gateway::router(gateway.clone())
        .merge(catalog_api::router(catalog))
        .merge(ui::router())
        .merge(auth::session_router(auth.clone()))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        );
    auth::protect(routes, auth, gateway)
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
    let auth = Arc::new(AdminAuth::from_config(&cfg.server, &addr)?);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    announce(&bound, &auth);
    tracing::info!(addr = %bound, models = cfg.models.len(), "serving");
    axum::serve(listener, app(gateway, catalog, auth))
        .with_graceful_shutdown(async move {
            shutdown.recv().await;
            tracing::info!("shutting down");
        })
        .await?;
    Ok(())
}

/// Prints the bound address and, with a generated admin token, the sign-in URL, in one write
/// (a reader that stops after the first line must not make a later write fail).
fn announce(bound: &SocketAddr, auth: &AdminAuth) {
    use std::io::Write;
    let mut text = format!("sagebridge listening on http://{bound}\n");
    if let Some(url) = auth.sign_in_url(bound) {
        text.push_str(&format!("sign in: {url}\n"));
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    if auth.is_generated() {
        tracing::info!("no server.adminTokens: generated an admin token for this run (see the sign-in URL on stdout)");
    }
}
