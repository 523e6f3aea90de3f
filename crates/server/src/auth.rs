//! Who may talk to `sagebridge serve`: admin credentials, browser sessions with CSRF tokens, and
//! the DNS-rebinding guard.
//!
//! `serve` holds the catalog and (soon) the admin API that changes services, pipelines, gateway
//! models and keys, so it is secure by default:
//! - Every request must name a loopback host (`localhost`, `127.0.0.1`, `[::1]`) or one of
//!   `server.publicHosts` in `Host`; anything else is refused with 421 before routing. A web
//!   page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) sends its own name, so
//!   it cannot reach a local `serve`.
//! - Every route needs an admin credential except `/healthz`, the gateway's `/v1/*` (which keeps
//!   its API keys), the web UI's static shell (`/`, `/ui/*`) and the sign-in route
//!   `/api/v1/session`; `/metrics` too unless `server.metricsPublic`. Unknown paths are
//!   protected as well (default deny), so routes added later are covered without a list.
//! - API clients send `Authorization: Bearer <admin token>`. The web UI posts the token once to
//!   `POST /api/v1/session` and gets an HttpOnly, SameSite=Strict session cookie plus a CSRF
//!   token that it must send as `X-CSRF-Token` on every POST, PUT, PATCH and DELETE.
//! - Without `server.adminTokens`, a random token is made at start (256 bits from the OS) and
//!   `serve` prints a sign-in URL carrying it in the fragment, which browsers never send to a
//!   server or a log; such a server may only listen on loopback.
//!
//! Tokens and session ids are kept and compared as SHA-256 digests in constant time; neither is
//! ever logged or sent back. Refusals answer OpenMetadata's error shape `{"code", "message"}`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sagebridge_gateway::config::ServerConfig;
use sagebridge_gateway::gateway::constant_time_eq;
use sagebridge_gateway::{GatewayHandle, PreAuthorized};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sagebridge_session";
/// The header that carries the CSRF token of a cookie session.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a browser session lasts by default.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most; the one closest to expiry makes room for a new one.
const MAX_SESSIONS: usize = 1024;
/// Random bytes in a generated token, a session id and a CSRF token (256 bits).
const TOKEN_BYTES: usize = 32;
/// The longest `Host` value quoted back in a refusal or a log line.
const MAX_HOST_SHOWN: usize = 80;

/// Why the admin credentials cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No admin token is configured and `serve` would listen beyond loopback.
    #[error("{0}")]
    NotLoopback(String),
    /// The OS random source failed.
    #[error("cannot read random bytes from the operating system: {0}")]
    Random(String),
}

type Digest32 = [u8; 32];

fn digest(text: &str) -> Digest32 {
    Sha256::digest(text.as_bytes()).into()
}

/// 256 random bits from the OS, hex-encoded (URL- and header-safe).
fn random_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// One browser session, found by the digest of its id.
struct Session {
    csrf: String,
    expires: Instant,
}

/// The admin credentials and request-safety settings of one `serve`.
pub struct AdminAuth {
    /// SHA-256 of every admin token (configured or generated).
    tokens: Vec<Digest32>,
    /// The token made at start when none is configured, for the sign-in URL only.
    generated: Option<String>,
    /// Lowercase host names accepted besides the loopback names.
    public_hosts: Vec<String>,
    metrics_public: bool,
    session_ttl: Duration,
    sessions: Mutex<HashMap<Digest32, Session>>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("tokens", &self.tokens.len())
            .field("generated", &self.generated.is_some())
            .field("public_hosts", &self.public_hosts)
            .field("metrics_public", &self.metrics_public)
            .field("session_ttl", &self.session_ttl)
            .finish_non_exhaustive()
    }
}

impl AdminAuth {
    /// From the `server:` section, for a server that will listen on `listen`: the configured
    /// admin tokens, or a generated one when there are none (then `listen` must be loopback).
    pub fn from_config(server: &ServerConfig, listen: &SocketAddr) -> Result<Self, AuthError> {
        if let Some(problem) = server.listen_problem(listen) {
            return Err(AuthError::NotLoopback(problem));
        }
        let (tokens, generated) = if server.admin_tokens.is_empty() {
            let token = random_token()?;
            (vec![digest(&token)], Some(token))
        } else {
            let tokens = server
                .admin_tokens
                .iter()
                .map(|t| digest(t.expose()))
                .collect();
            (tokens, None)
        };
        Ok(Self {
            tokens,
            generated,
            public_hosts: server
                .public_hosts
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            metrics_public: server.metrics_public,
            session_ttl: DEFAULT_SESSION_TTL,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// Sessions made from now on last `ttl` (12 hours by default; tests use zero).
    pub fn with_session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Whether the admin token was generated at start (no `server.adminTokens`).
    pub fn is_generated(&self) -> bool {
        self.generated.is_some()
    }

    /// The URL that signs the web UI in with the generated token, for a server bound to
    /// `bound`; `None` with configured tokens (those are never printed). The token sits in the
    /// fragment, which browsers never send to a server.
    pub fn sign_in_url(&self, bound: &SocketAddr) -> Option<String> {
        self.generated
            .as_ref()
            .map(|t| format!("http://{bound}/#token={t}"))
    }

    /// Whether `presented` is an admin token; every digest is compared in full.
    fn token_matches(&self, presented: &str) -> bool {
        let d = digest(presented);
        self.tokens
            .iter()
            .fold(false, |found, t| found | constant_time_eq(t, &d))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest32, Session>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session: (session id, CSRF token).
    fn open_session(&self) -> Result<(String, String), AuthError> {
        let id = random_token()?;
        let csrf = random_token()?;
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                sessions.remove(&k);
            }
        }
        sessions.insert(
            digest(&id),
            Session {
                csrf: csrf.clone(),
                expires: now + self.session_ttl,
            },
        );
        Ok((id, csrf))
    }

    /// The live session with id `id`: (CSRF token, time left). An expired one is dropped.
    fn session(&self, id: &str) -> Option<(String, Duration)> {
        let key = digest(id);
        let now = Instant::now();
        let mut sessions = self.lock();
        match sessions.get(&key) {
            Some(s) if s.expires > now => Some((s.csrf.clone(), s.expires - now)),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    fn close_session(&self, id: &str) -> bool {
        self.lock().remove(&digest(id)).is_some()
    }

    /// Whether `host` (the `Host` header without its port) may be served.
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        // Every request passes here: lower-case (a copy) only a name that needs it.
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(host.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(host)
        };
        is_loopback_name(&host) || self.public_hosts.iter().any(|h| h == host.as_ref())
    }
}

/// `localhost`, a loopback IPv4 literal (127.0.0.0/8) or `[::1]`.
fn is_loopback_name(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    }
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The host part of a `Host` value (`name`, `name:port`, `[v6]` or `[v6]:port`), or `None` when
/// it is malformed.
fn host_name(value: &str) -> Option<&str> {
    let value = value.trim();
    let (host, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        let rest = &value[end + 1..];
        let port = if rest.is_empty() {
            None
        } else {
            Some(rest.strip_prefix(':')?)
        };
        (&value[..=end], port)
    } else {
        match value.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (!host.is_empty() && port_ok).then_some(host)
}

/// A refusal in OpenMetadata's error shape.
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"code": status.as_u16(), "message": message.into()});
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"sagebridge\""),
        );
    }
    response
}

const NEED_SIGN_IN: &str = "sign in first: send `Authorization: Bearer <admin token>` (one of \
                            server.adminTokens, or the token `sagebridge serve` printed at start) \
                            or sign in with POST /api/v1/session";
const BAD_TOKEN: &str = "the admin token is not valid: use one of server.adminTokens, or the \
                         token `sagebridge serve` printed at start";
const SESSION_GONE: &str = "the session has expired or was signed out: sign in again";
const GATEWAY_KEY: &str = "a gateway API key cannot be used on admin routes: send an admin \
                           token (server.adminTokens) instead";
const BAD_CSRF: &str = "missing or wrong X-CSRF-Token header: send the csrfToken of the sign-in \
                        answer on every POST, PUT, PATCH and DELETE";

/// What a path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone (the host guard still applies).
    Public,
    /// An admin credential.
    Admin,
}

fn access(path: &str, metrics_public: bool) -> Access {
    let public = path == "/healthz"
        || path == "/v1"
        || path.starts_with("/v1/")
        || path == "/"
        || path.starts_with("/ui/")
        || path == SESSION_PATH
        || (path == "/metrics" && metrics_public);
    if public {
        Access::Public
    } else {
        Access::Admin
    }
}

/// How an admin request proved itself; put into the request's extensions for handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCredential {
    /// `Authorization: Bearer <admin token>`.
    Bearer,
    /// The session cookie of a signed-in browser.
    Session,
}

/// The credential text of `Authorization: Bearer <x>` (or the whole header without a scheme,
/// as the gateway reads it), or of `x-api-key` / `api-key`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or("").trim();
        let token = match v.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => v,
        };
        return Some(token);
    }
    headers
        .get("x-api-key")
        .or_else(|| headers.get("api-key"))
        .map(|v| v.to_str().unwrap_or("").trim())
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the `X-CSRF-Token` header equals `expected` (constant time).
fn csrf_ok(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| constant_time_eq(&digest(v.trim()), &digest(expected)))
}

/// State of the guard layer.
#[derive(Clone)]
struct Guard {
    auth: Arc<AdminAuth>,
    /// To tell a gateway API key (403) from a wrong token (401).
    gateway: Arc<GatewayHandle>,
}

/// Wraps every route of `router` (including its fallback) in the host guard and the admin
/// check. Call it last, on the whole app.
///
/// A plain tower layer, not `axum::middleware::from_fn`: the check is synchronous, so a request
/// it lets through goes straight to the route's own future (no boxed future, no clone of the
/// inner service per request). This wraps every request, the gateway's hot path included.
pub fn protect(router: Router, auth: Arc<AdminAuth>, gateway: Arc<GatewayHandle>) -> Router {
    router.layer(GuardLayer(Guard { auth, gateway }))
}

#[derive(Clone)]
struct GuardLayer(Guard);

impl<S> tower::Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            inner,
            guard: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct GuardService<S> {
    inner: S,
    guard: Guard,
}

impl<S> tower::Service<Request> for GuardService<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        futures::future::Either<std::future::Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        match check(&self.guard, &mut req) {
            None => futures::future::Either::Right(self.inner.call(req)),
            Some(refused) => futures::future::Either::Left(std::future::ready(Ok(refused))),
        }
    }
}

/// The host guard and the admin check of one request: the refusal to answer, or `None` to let
/// it through (with its [`AdminCredential`], or [`PreAuthorized`] for a signed-in browser
/// calling the gateway, in its extensions).
fn check(g: &Guard, req: &mut Request) -> Option<Response> {
    let host_value = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    if !host_name(host_value).is_some_and(|h| g.auth.host_allowed(h)) {
        let shown: String = host_value.chars().take(MAX_HOST_SHOWN).collect();
        tracing::warn!(host = %shown, path = %req.uri().path(), "request for a host that is not allowed");
        return Some(refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "host `{shown}` is not served here: use 127.0.0.1 or localhost, or add the name \
                 to server.publicHosts"
            ),
        ));
    }
    if access(req.uri().path(), g.auth.metrics_public) == Access::Public {
        if req.uri().path().starts_with("/v1/") && session_may_call_gateway(g, req) {
            req.extensions_mut().insert(PreAuthorized);
        }
        return None;
    }
    match admin_credential(g, req.method(), req.headers()) {
        Ok(credential) => {
            req.extensions_mut().insert(credential);
            None
        }
        Err((status, message)) => {
            tracing::debug!(path = %req.uri().path(), status = status.as_u16(), "admin request refused");
            Some(refuse(status, message))
        }
    }
}

/// Whether a gateway request comes from a signed-in browser session (the playground): a live
/// session cookie, the CSRF header on a POST, and no API key of its own (a presented key is
/// checked by the gateway as usual).
fn session_may_call_gateway(g: &Guard, req: &Request) -> bool {
    let headers = req.headers();
    if bearer(headers).is_some() {
        return false;
    }
    let Some((csrf, _)) = cookie(headers, SESSION_COOKIE).and_then(|id| g.auth.session(id)) else {
        return false;
    };
    !is_state_changing(req.method()) || csrf_ok(headers, &csrf)
}

/// The admin credential of a request, or why it has none.
fn admin_credential(
    g: &Guard,
    method: &Method,
    headers: &HeaderMap,
) -> Result<AdminCredential, (StatusCode, &'static str)> {
    if let Some(token) = bearer(headers) {
        if g.auth.token_matches(token) {
            return Ok(AdminCredential::Bearer);
        }
        if g.gateway.auth_required() && g.gateway.authorize(token).is_some() {
            return Err((StatusCode::FORBIDDEN, GATEWAY_KEY));
        }
        return Err((StatusCode::UNAUTHORIZED, BAD_TOKEN));
    }
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Err((StatusCode::UNAUTHORIZED, NEED_SIGN_IN));
    };
    let Some((csrf, _)) = g.auth.session(id) else {
        return Err((StatusCode::UNAUTHORIZED, SESSION_GONE));
    };
    if is_state_changing(method) && !csrf_ok(headers, &csrf) {
        return Err((StatusCode::FORBIDDEN, BAD_CSRF));
    }
    Ok(AdminCredential::Session)
}

/// The sign-in route.
pub const SESSION_PATH: &str = "/api/v1/session";

/// `GET|POST|DELETE /api/v1/session`.
pub fn session_router(auth: Arc<AdminAuth>) -> Router {
    Router::new()
        .route(
            SESSION_PATH,
            get(session_status).post(sign_in).delete(sign_out),
        )
        .with_state(auth)
}

/// Whether the request came over TLS (directly or through a proxy that says so).
fn over_tls(req_headers: &HeaderMap, scheme_https: bool) -> bool {
    let forwarded_https = req_headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    scheme_https || forwarded_https
}

fn session_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("sagebridge_session=; Max-Age=0; Path=/"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
}

/// `POST /api/v1/session` with `{"token": "<admin token>"}`: a session cookie and the CSRF
/// token the UI sends back on state-changing requests.
async fn sign_in(State(auth): State<Arc<AdminAuth>>, req: Request) -> Response {
    let tls = req.uri().scheme_str() == Some("https");
    let headers = req.headers().clone();
    let body: Bytes = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "the request body cannot be read"),
    };
    let Ok(SignIn { token }) = serde_json::from_slice::<SignIn>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the body must be the JSON object {\"token\": \"<admin token>\"}",
        );
    };
    if !auth.token_matches(token.trim()) {
        tracing::warn!("sign-in with a wrong admin token");
        return refuse(StatusCode::UNAUTHORIZED, BAD_TOKEN);
    }
    let (id, csrf) = match auth.open_session() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot open a session");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot open a session; see the server log",
            );
        }
    };
    tracing::info!("web session signed in");
    let ttl = auth.session_ttl.as_secs();
    let mut response = Json(json!({
        "signedIn": true,
        "csrfToken": csrf,
        "expiresIn": ttl,
    }))
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&id, ttl, over_tls(&headers, tls)),
    );
    no_store(response)
}

/// The sign-in answers carry a CSRF token: never cached.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/v1/session`: whether this request is signed in, and how (with the session's CSRF
/// token, so a reloaded page can go on).
async fn session_status(State(auth): State<Arc<AdminAuth>>, headers: HeaderMap) -> Response {
    if let Some(token) = bearer(&headers) {
        let signed_in = auth.token_matches(token);
        let body = if signed_in {
            json!({"signedIn": true, "credential": "bearer"})
        } else {
            json!({"signedIn": false})
        };
        return no_store(Json(body).into_response());
    }
    let body = match cookie(&headers, SESSION_COOKIE).and_then(|id| auth.session(id)) {
        Some((csrf, left)) => json!({
            "signedIn": true,
            "credential": "session",
            "csrfToken": csrf,
            "expiresIn": left.as_secs(),
        }),
        None => json!({"signedIn": false}),
    };
    no_store(Json(body).into_response())
}

/// `DELETE /api/v1/session`: signs the browser out (with its CSRF token) and clears the cookie.
async fn sign_out(State(auth): State<Arc<AdminAuth>>, req: Request) -> Response {
    let tls = req.uri().scheme_str() == Some("https");
    let headers = req.headers();
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        if let Some((csrf, _)) = auth.session(id) {
            if !csrf_ok(headers, &csrf) {
                return refuse(StatusCode::FORBIDDEN, BAD_CSRF);
            }
            auth.close_session(id);
            tracing::info!("web session signed out");
        }
    }
    let mut response = Json(json!({"signedIn": false})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, over_tls(headers, tls)),
    );
    no_store(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values_are_split_from_their_port() {
        assert_eq!(host_name("localhost:8080"), Some("localhost"));
        assert_eq!(host_name("127.0.0.1"), Some("127.0.0.1"));
        assert_eq!(host_name("[::1]:9"), Some("[::1]"));
        assert_eq!(host_name("[::1]"), Some("[::1]"));
        assert_eq!(host_name("a.example.com:"), None);
        assert_eq!(host_name("a:b:c"), None);
        assert_eq!(host_name("[::1]x"), None);
        assert_eq!(host_name(""), None);
    }

    #[test]
    fn loopback_names() {
        for ok in ["localhost", "127.0.0.1", "127.1.2.3", "[::1]"] {
            assert!(is_loopback_name(ok), "{ok}");
        }
        for bad in [
            "localhost.evil.com",
            "0.0.0.0",
            "[::]",
            "10.0.0.1",
            "::1",
            "evil.example.com",
        ] {
            assert!(!is_loopback_name(bad), "{bad}");
        }
    }

    #[test]
    fn paths_are_protected_by_default() {
        for p in [
            "/healthz",
            "/v1/models",
            "/v1/chat/completions",
            "/",
            "/ui/app.js",
            SESSION_PATH,
        ] {
            assert_eq!(access(p, false), Access::Public, "{p}");
        }
        for p in [
            "/metrics",
            "/api/catalog/models",
            "/api/v1/services",
            "/v1x",
            "/healthz/x",
            "/nope",
        ] {
            assert_eq!(access(p, false), Access::Admin, "{p}");
        }
        assert_eq!(access("/metrics", true), Access::Public);
    }

    #[test]
    fn cookies_and_bearers_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sagebridge_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  tok "),
        );
        assert_eq!(bearer(&h), Some("tok"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic xyz"));
        assert_eq!(bearer(&h), Some("Basic xyz"));
    }

    #[test]
    fn generated_tokens_are_random_and_url_safe() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
