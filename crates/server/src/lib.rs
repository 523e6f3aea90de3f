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

use axum::response::IntoResponse as _;
use axum::routing::get;
use axum::{Json, Router};
use sagebridge_catalog::{KeySource, SecretKey, SqliteCatalog};
use sagebridge_gateway::{GatewayConfig, GatewayHandle};
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
///
/// A catalog that cannot be opened (see [`open_catalog_for_serve`]) does not stop the server:
/// it serves the file's models and answers the admin API with 503 `catalog_unavailable` until
/// a later attempt (every `server.catalogRetrySeconds`) opens it.
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
    let routes = Arc::new(std::sync::RwLock::new(Router::new()));
    let control: Arc<std::sync::Mutex<Option<Arc<ControlPlane>>>> = Default::default();
    let set_routes = {
        let routes = Arc::clone(&routes);
        move |app: Router| *routes.write().unwrap_or_else(|e| e.into_inner()) = app
    };
    let mut retry = None;
    match open_catalog_for_serve(&catalog_path) {
        Ok(catalog) => {
            let started = start_control(catalog, cfg, &shutdown)?;
            set_routes(app(Arc::clone(&started), Arc::clone(&auth)));
            tracing::info!(addr = %bound, models = started.gateway().current().models().len(), "serving");
            *control.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        }
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::error!(catalog = %catalog_path.display(), error = %reason, "the catalog is unavailable: serving the gateway file's models, the admin API answers 503 until it opens");
            let gateway = Arc::new(GatewayHandle::new(Arc::new(control::gateway_from(cfg)?)));
            set_routes(degraded_app(
                Arc::clone(&gateway),
                Arc::clone(&auth),
                reason,
            ));
            retry = Some(tokio::spawn(retry_catalog(
                catalog_path.clone(),
                cfg.clone(),
                shutdown.clone(),
                gateway,
                Arc::clone(&auth),
                set_routes.clone(),
                Arc::clone(&control),
            )));
        }
    }
    announce(&bound, &auth);
    // Only a server waiting for its catalog swaps its app later; the others keep the per-request
    // dispatch off the hot path.
    let served = if retry.is_some() {
        dispatch(routes)
    } else {
        routes.read().unwrap_or_else(|e| e.into_inner()).clone()
    };
    let stopping = Arc::clone(&control);
    let mut signal = shutdown;
    listen::run(
        listener,
        served,
        listen::ServerLimits::from_config(&cfg.server),
        async move {
            signal.recv().await;
            tracing::info!("shutting down");
            // Runs stop first: the event streams that follow them end with them.
            if let Some(c) = stopping.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                c.stop_runs();
            }
        },
    )
    .await;
    if let Some(task) = retry {
        task.abort();
    }
    let started = control.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(c) = started {
        c.shutdown().await;
    }
    Ok(())
}

/// Opens the catalog for `serve`: as [`open_catalog`], except that a catalog whose folder does
/// not exist is an error rather than created (a typo or an unmounted volume must not start an
/// empty catalog that ingestion never writes to). A missing file in an existing folder is
/// created: `serve` is where services are added.
pub fn open_catalog_for_serve(path: &std::path::Path) -> anyhow::Result<SqliteCatalog> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            anyhow::bail!(
                "the catalog's folder {} does not exist; create it or pass another --catalog",
                parent.display()
            );
        }
    }
    open_catalog(path)
        .map_err(|e| anyhow::anyhow!("cannot open the catalog {}: {e:#}", path.display()))
}

fn start_control(
    catalog: SqliteCatalog,
    cfg: &GatewayConfig,
    shutdown: &Shutdown,
) -> anyhow::Result<Arc<ControlPlane>> {
    let control = ControlPlane::new(Arc::new(catalog), cfg.clone(), control::system_clock())?;
    control.start(shutdown.clone())?;
    Ok(control)
}

/// Tries to open the catalog every `server.catalogRetrySeconds` until it opens (then the full
/// app replaces the degraded one) or the server stops.
async fn retry_catalog(
    path: PathBuf,
    cfg: GatewayConfig,
    mut shutdown: Shutdown,
    gateway: Arc<GatewayHandle>,
    auth: Arc<AdminAuth>,
    set_routes: impl Fn(Router),
    control: Arc<std::sync::Mutex<Option<Arc<ControlPlane>>>>,
) {
    let every = sagebridge_gateway::config::seconds(cfg.server.catalog_retry_seconds);
    let mut last = String::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.recv() => return,
        }
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || open_catalog_for_serve(&path)).await
        };
        let catalog = match opened {
            Ok(Ok(catalog)) => catalog,
            Ok(Err(e)) => {
                let reason = format!("{e:#}");
                if reason != last {
                    tracing::warn!(error = %reason, "the catalog is still unavailable");
                    set_routes(degraded_app(
                        Arc::clone(&gateway),
                        Arc::clone(&auth),
                        reason.clone(),
                    ));
                    last = reason;
                }
                continue;
            }
            Err(join) => {
                tracing::error!(error = %join, "opening the catalog panicked");
                continue;
            }
        };
        match start_control(catalog, &cfg, &shutdown) {
            Ok(started) => {
                tracing::info!(catalog = %path.display(), models = started.gateway().current().models().len(), "the catalog is open: the admin API is available");
                set_routes(app(Arc::clone(&started), Arc::clone(&auth)));
                *control.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
                return;
            }
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::warn!(error = %reason, "the catalog opened but the control plane did not start");
                set_routes(degraded_app(
                    Arc::clone(&gateway),
                    Arc::clone(&auth),
                    reason.clone(),
                ));
                last = reason;
            }
        }
    }
}

/// The app while the catalog is unavailable: the gateway file's models under `/v1`, the UI,
/// sign-in, `/healthz` saying `degraded`, and 503 `catalog_unavailable` for the admin API.
fn degraded_app(gateway: Arc<GatewayHandle>, auth: Arc<AdminAuth>, reason: String) -> Router {
    let reason = Arc::new(reason);
    let health = Arc::clone(&reason);
    let unavailable = move || {
        let reason = Arc::clone(&reason);
        async move {
            let mut response = Json(serde_json::json!({
                "code": 503,
                "errorType": "catalog_unavailable",
                "message": format!("the catalog is unavailable: {reason}"),
            }))
            .into_response();
            *response.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
            response
        }
    };
    let routes = sagebridge_gateway::router(Arc::clone(&gateway))
        .merge(ui::router())
        .merge(auth::session_router(auth.clone()))
        .route("/api/v1/{*rest}", axum::routing::any(unavailable.clone()))
        .route("/api/v1", axum::routing::any(unavailable))
        .route(
            "/healthz",
            get(move || {
                let reason = Arc::clone(&health);
                async move {
                    Json(serde_json::json!({
                        "status": "degraded",
                        "catalog": {"status": "unavailable", "reason": *reason},
                    }))
                }
            }),
        );
    auth::protect(routes, auth, gateway)
}

/// A router that hands each request to the current app (the degraded one is replaced once the
/// catalog opens).
fn dispatch(routes: Arc<std::sync::RwLock<Router>>) -> Router {
    use tower::ServiceExt as _;
    Router::new().fallback_service(tower::service_fn(move |req: axum::extract::Request| {
        let current = routes.read().unwrap_or_else(|e| e.into_inner()).clone();
        current.oneshot(req)
    }))
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
