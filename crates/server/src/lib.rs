//! `sagebridge serve`: one axum app for the model gateway, the control plane's admin API and the web UI.
//!
//! # Layout
//! - [`app`]: builds the router: the gateway's `/v1/*` and `/metrics` (from
//!   `sagebridge-gateway`), `GET /healthz`, the admin API, the sign-in route and the web UI,
//!   all behind [`auth`]'s host guard and admin check.
//! - [`auth`]: admin tokens (configured or generated at start), browser sessions with CSRF
//!   tokens under `/api/v1/session`, the DNS-rebinding guard.
//! - [`admin`]: the admin API under `/api/v1` (services, test connection, pipelines and their
//!   runs, the catalog's models, gateway models and keys).
//! - [`control`]: what runs behind it: pipeline runs, the scheduler, the swappable gateway.
//! - `ui`: the web UI at `/` (assets under `/ui/`), plain HTML, JS and CSS from
//!   `assets/`, embedded with `include_str!`.
//! - [`serve`]: binds the listener and runs until the process's one [`Shutdown`] signal fires
//!   (the binary wires Ctrl-C / SIGTERM to it), draining in-flight requests within
//!   `server.shutdownGraceSeconds`.
//! - [`listen`]: the HTTP server under it (hyper with the timeouts and the connection cap of
//!   `server:`).

pub mod admin;
pub mod auth;
pub mod control;
pub mod discover;
pub mod listen;
mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use sagebridge_catalog::{KeySource, SecretKey, SqliteCatalog};
use sagebridge_gateway::GatewayConfig;
use sagebridge_ingest::shutdown::Shutdown;

pub use auth::AdminAuth;
pub use control::ControlPlane;

/// The whole app: the gateway of `control`, its admin API and the web UI; `auth` guards every
/// route (see [`auth`]).
pub fn app(control: Arc<ControlPlane>, auth: Arc<AdminAuth>) -> Router {
    let gateway = control.gateway();
    let routes = sagebridge_gateway::router(Arc::clone(&gateway))
        .merge(admin::router(control))
        .merge(ui::router())
        .merge(auth::session_router(auth.clone()))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        );
    auth::protect(routes, auth, gateway)
}

/// The catalog file `serve` uses when none is given.
pub const DEFAULT_CATALOG: &str = "sagebridge.db";

/// Options of `serve` beside the gateway config.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Overrides `server.listen`.
    pub listen: Option<String>,
    /// The embedded catalog (created when missing); [`DEFAULT_CATALOG`] when `None`.
    pub catalog_path: Option<PathBuf>,
}

/// Opens (or creates) the catalog with its secret key: `SAGEBRIDGE_SECRET_KEY`, or the key file
/// beside the catalog (created with mode 0600 on first start).
pub fn open_catalog(path: &std::path::Path) -> anyhow::Result<SqliteCatalog> {
    let (key, source) = SecretKey::for_catalog(path)?;
    match &source {
        KeySource::Env => tracing::info!("catalog secrets use the key in SAGEBRIDGE_SECRET_KEY"),
        KeySource::File { path, created } => tracing::info!(
            key_file = %path.display(),
            created,
            "catalog secrets use the key file beside the catalog"
        ),
    }
    Ok(SqliteCatalog::open_with_key(path, key)?)
}

/// Binds and serves until `shutdown` fires, then tells running ingestions to stop at their
/// next batch boundary, drains the requests in flight (within `server.shutdownGraceSeconds`)
/// and waits for the runs to record their end. Prints the bound address on stdout (useful
/// with port 0).
pub async fn serve(
    cfg: &GatewayConfig,
    opts: &ServeOptions,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let listen = opts
        .listen
        .clone()
        .unwrap_or_else(|| cfg.server.listen.clone());
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid listen address `{listen}`: {e}"))?;
    // Checked before binding: a non-loopback address needs admin tokens.
    AdminAuth::from_config(&cfg.server, &addr)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, cfg, opts, shutdown).await
}

/// [`serve`] on a listener bound by the caller (`opts.listen` is ignored).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    cfg: &GatewayConfig,
    opts: &ServeOptions,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let bound = listener.local_addr()?;
    let auth = Arc::new(AdminAuth::from_config(&cfg.server, &bound)?);
    let catalog_path = opts
        .catalog_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CATALOG));
    let catalog = Arc::new(open_catalog(&catalog_path).map_err(|e| {
        anyhow::anyhow!("cannot open the catalog {}: {e:#}", catalog_path.display())
    })?);
    let control = ControlPlane::new(catalog, cfg.clone(), control::system_clock())?;
    control.start(shutdown.clone())?;
    announce(&bound, &auth);
    tracing::info!(addr = %bound, models = control.gateway().current().models().len(), "serving");
    let stopping = Arc::clone(&control);
    let mut signal = shutdown;
    listen::run(
        listener,
        app(Arc::clone(&control), auth),
        listen::ServerLimits::from_config(&cfg.server),
        async move {
            signal.recv().await;
            tracing::info!("shutting down");
            // Runs stop first: the event streams that follow them end with them.
            stopping.stop_runs();
        },
    )
    .await;
    control.shutdown().await;
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
