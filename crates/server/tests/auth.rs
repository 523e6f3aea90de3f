//! The admin check, browser sessions with CSRF tokens and the host guard of `sagebridge serve`,
//! over real HTTP on 127.0.0.1:0: `app()` with an empty SQLite catalog, configured from YAML the
//! way `serve` is. Each test runs on a current-thread runtime with a log capture, so the server's
//! log lines are checked for the admin token too.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Extension, Router};
use sagebridge_catalog::{SecretKey, SqliteCatalog};
use sagebridge_gateway::{config, Gateway, GatewayConfig};
use sagebridge_server::auth::{self, AdminCredential};
use sagebridge_server::{AdminAuth, ServeOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The sentinel admin token: it must never come back in a response or a log line.
const ADMIN: &str = "admin-sentinel-token-9d41c7e0";
const GW_KEY: &str = "gateway-key-5b2e81aa";

/// Log lines of the server, captured from `tracing` (every level).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the logs of this thread (the test's current-thread runtime, where the server runs).
fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

struct Server {
    base: String,
    addr: SocketAddr,
    auth: Arc<AdminAuth>,
    http: reqwest::Client,
    /// Every response body and header seen, for the sentinel scan.
    seen: Mutex<String>,
    _dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

/// A response: status, headers, body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The `Set-Cookie` header.
    fn cookie(&self) -> String {
        self.headers[reqwest::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// `name=value` of the `Set-Cookie` header, ready for a `Cookie` header.
    fn cookie_pair(&self) -> String {
        self.cookie().split(';').next().unwrap().to_owned()
    }

    /// Asserts an OpenMetadata-shaped refusal with `status` whose message contains `text`.
    fn refused(&self, status: u16, text: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let v = self.json();
        assert_eq!(v["code"], status, "{v}");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains(text), "{message:?} lacks {text:?}");
    }
}

fn gateway_config(server_section: &str) -> GatewayConfig {
    let yaml = format!(
        "server:\n  apiKeys: [\"{GW_KEY}\"]\n{server_section}awsConfig:\n  awsRegion: us-east-1\n"
    );
    let env = |k: &str| (k == "ADMIN_TOKEN").then(|| ADMIN.to_owned());
    config::load_str("sagebridge.yaml", &yaml, &env).unwrap_or_else(|e| panic!("{e}"))
}

/// The app on 127.0.0.1:0 with `server_section` (indented lines of `server:` besides `apiKeys`).
async fn start(server_section: &str, ttl: Option<Duration>) -> Server {
    start_with(server_section, ttl, |app, _, _| app).await
}

async fn start_with(
    server_section: &str,
    ttl: Option<Duration>,
    extra: impl FnOnce(Router, Arc<AdminAuth>, Arc<Gateway>) -> Router,
) -> Server {
    let cfg = gateway_config(server_section);
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(
        SqliteCatalog::open_with_key(dir.path().join("catalog.db"), SecretKey::generate()).unwrap(),
    );
    let control = sagebridge_server::ControlPlane::new(
        catalog,
        cfg.clone(),
        sagebridge_server::control::system_clock(),
    )
    .unwrap();
    let gateway = control.gateway().current();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut auth = AdminAuth::from_config(&cfg.server, &addr).unwrap();
    if let Some(ttl) = ttl {
        auth = auth.with_session_ttl(ttl);
    }
    let auth = Arc::new(auth);
    let app = extra(
        sagebridge_server::app(control, auth.clone()),
        auth.clone(),
        gateway,
    );
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        base: format!("http://{addr}"),
        addr,
        auth,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        seen: Mutex::new(String::new()),
        _dir: dir,
        _task: task,
    }
}

const WITH_ADMIN: &str = "  adminTokens: [\"${ADMIN_TOKEN}\"]\n";

impl Server {
    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.text().await.unwrap();
        let mut seen = self.seen.lock().unwrap();
        for (k, v) in &headers {
            seen.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
        }
        seen.push_str(&body);
        seen.push('\n');
        Answer {
            status,
            headers,
            body,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, auth: Auth<'_>) -> Answer {
        self.send(auth.apply(self.http.get(self.url(path)))).await
    }

    async fn sign_in(&self, token: &str) -> Answer {
        self.send(
            self.http
                .post(self.url(auth::SESSION_PATH))
                .json(&json!({"token": token})),
        )
        .await
    }

    /// Signs in with the admin token: (cookie pair, CSRF token).
    async fn session(&self) -> (String, String) {
        let a = self.sign_in(ADMIN).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let csrf = a.json()["csrfToken"].as_str().unwrap().to_owned();
        (a.cookie_pair(), csrf)
    }

    fn seen(&self) -> String {
        self.seen.lock().unwrap().clone()
    }
}

/// The credential a request carries.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
    CookieCsrf(&'a str, &'a str),
}

impl Auth<'_> {
    fn apply(self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Cookie(c) => req.header("cookie", c),
            Auth::CookieCsrf(c, csrf) => req.header("cookie", c).header("x-csrf-token", csrf),
        }
    }
}

/// A raw HTTP/1.1 request with the given `Host` line (or none): (status, body).
async fn raw(addr: SocketAddr, path: &str, host: Option<&str>) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (version, host) = match host {
        Some(h) => ("HTTP/1.1", format!("Host: {h}\r\n")),
        None => ("HTTP/1.0", String::new()),
    };
    let request = format!("GET {path} {version}\r\n{host}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

#[tokio::test]
async fn protected_routes_need_an_admin_credential() {
    let (logs, _guard) = capture_logs();
    let s = start(WITH_ADMIN, None).await;
    for path in [
        "/api/v1/mlmodels",
        "/api/v1/services/mlmodelServices",
        "/api/v1/services/ingestionPipelines",
        "/metrics",
        "/api/v1/not-built-yet",
    ] {
        let a = s.get(path, Auth::None).await;
        a.refused(401, "sign in first");
        assert_eq!(
            a.headers["www-authenticate"], "Bearer realm=\"sagebridge\"",
            "{path}"
        );
        s.get(path, Auth::Bearer(GW_KEY))
            .await
            .refused(403, "a gateway API key cannot be used on admin routes");
        s.get(path, Auth::Bearer("not-the-admin-token-at-all"))
            .await
            .refused(401, "the admin token is not valid");
        // The gateway's other key headers are recognised as well.
        let a = s
            .send(s.http.get(s.url(path)).header("x-api-key", GW_KEY))
            .await;
        a.refused(403, "gateway API key");
        let ok = s.get(path, Auth::Bearer(ADMIN)).await;
        let expected = if path == "/api/v1/not-built-yet" {
            404
        } else {
            200
        };
        assert_eq!(ok.status, expected, "{path}: {}", ok.body);
    }
    let a = s.get("/api/v1/mlmodels", Auth::Bearer(ADMIN)).await;
    assert_eq!(a.json()["data"], json!([]));
    let metrics = s.get("/metrics", Auth::Bearer(ADMIN)).await;
    assert!(metrics.body.contains("# TYPE"), "{}", metrics.body);
    // A Bearer request needs no CSRF token: POST reaches the router (405: no POST route there).
    let a = s
        .send(s.http.post(s.url("/api/v1/mlmodels")).bearer_auth(ADMIN))
        .await;
    assert_eq!(a.status, 405, "{}", a.body);

    // Public: health, the UI shell, and the gateway, which keeps its own API keys.
    for path in ["/healthz", "/", "/ui/app.js", "/ui/app.css"] {
        assert_eq!(s.get(path, Auth::None).await.status, 200, "{path}");
    }
    let a = s.get("/v1/models", Auth::None).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["error"]["code"], "invalid_api_key");
    assert_eq!(s.get("/v1/models", Auth::Bearer(GW_KEY)).await.status, 200);
    // The admin token is not a gateway key.
    assert_eq!(s.get("/v1/models", Auth::Bearer(ADMIN)).await.status, 401);

    assert!(!s.seen().contains(ADMIN), "{}", s.seen());
    assert!(!logs.text().contains(ADMIN), "{}", logs.text());
    assert!(
        logs.text().contains("admin request refused"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_token_to_change_state() {
    let (logs, _guard) = capture_logs();
    // A route that changes state, behind the same guard, to show what passes it and how.
    let s = start_with(WITH_ADMIN, None, |app, auth, gateway| {
        auth::protect(
            echo_routes(),
            auth,
            sagebridge_gateway::GatewayHandle::shared(gateway),
        )
        .merge(app)
    })
    .await;

    s.sign_in("wrong-token-0123456789")
        .await
        .refused(401, "the admin token is not valid");
    let a = s
        .send(s.http.post(s.url(auth::SESSION_PATH)).body("token=x"))
        .await;
    a.refused(400, "{\"token\"");
    let a = s
        .send(
            s.http
                .post(s.url(auth::SESSION_PATH))
                .json(&json!({"token": ADMIN, "extra": 1})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    let a = s.get(auth::SESSION_PATH, Auth::None).await;
    assert_eq!(a.json(), json!({"signedIn": false}));

    let a = s.sign_in(ADMIN).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["signedIn"], true);
    assert_eq!(v["expiresIn"], 12 * 3600);
    let csrf = v["csrfToken"].as_str().unwrap().to_owned();
    assert_eq!(csrf.len(), 64);
    let set_cookie = a.cookie();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(part), "{part} not in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    assert_eq!(a.headers["cache-control"], "no-store");
    let cookie = a.cookie_pair();
    let id = cookie.strip_prefix("sagebridge_session=").unwrap();
    assert_eq!(id.len(), 64);
    assert_ne!(id, csrf);

    // Behind TLS (as a proxy says), the cookie is Secure.
    let tls = s
        .send(
            s.http
                .post(s.url(auth::SESSION_PATH))
                .header("x-forwarded-proto", "https")
                .json(&json!({"token": ADMIN})),
        )
        .await;
    assert!(tls.cookie().contains("; Secure"), "{}", tls.cookie());

    // The session reads protected routes, and says who it is.
    let a = s.get("/api/v1/mlmodels", Auth::Cookie(&cookie)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = s.get(auth::SESSION_PATH, Auth::Cookie(&cookie)).await;
    let v = a.json();
    assert_eq!(v["signedIn"], true);
    assert_eq!(v["credential"], "session");
    assert_eq!(v["csrfToken"], csrf.as_str());
    let a = s.get(auth::SESSION_PATH, Auth::Bearer(ADMIN)).await;
    assert_eq!(a.json(), json!({"signedIn": true, "credential": "bearer"}));

    // State-changing requests need the CSRF token of this very session.
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
    ] {
        let url = s.url("/test/echo");
        s.send(
            s.http
                .request(method.clone(), &url)
                .header("cookie", &cookie),
        )
        .await
        .refused(403, "X-CSRF-Token");
        s.send(
            s.http
                .request(method.clone(), &url)
                .header("cookie", &cookie)
                .header("x-csrf-token", "0".repeat(64)),
        )
        .await
        .refused(403, "X-CSRF-Token");
        let a = s
            .send(Auth::CookieCsrf(&cookie, &csrf).apply(s.http.request(method.clone(), &url)))
            .await;
        assert_eq!(a.status, 200, "{method}: {}", a.body);
        assert_eq!(a.body, "session");
    }
    // The CSRF token of another session does not fit this one.
    let (other_cookie, other_csrf) = s.session().await;
    assert_ne!(other_cookie, cookie);
    s.send(Auth::CookieCsrf(&cookie, &other_csrf).apply(s.http.post(s.url("/test/echo"))))
        .await
        .refused(403, "X-CSRF-Token");
    // Bearer requests need none.
    let a = s
        .send(s.http.post(s.url("/test/echo")).bearer_auth(ADMIN))
        .await;
    assert_eq!((a.status, a.body.as_str()), (200, "bearer"));
    // A made-up session id is no session.
    let fake = format!("sagebridge_session={}", "a".repeat(64));
    s.get("/api/v1/mlmodels", Auth::Cookie(&fake))
        .await
        .refused(401, "the session has expired or was signed out");

    // Signing out needs the CSRF token too, then the session is gone.
    s.send(
        s.http
            .delete(s.url(auth::SESSION_PATH))
            .header("cookie", &cookie),
    )
    .await
    .refused(403, "X-CSRF-Token");
    assert_eq!(
        s.get("/api/v1/mlmodels", Auth::Cookie(&cookie))
            .await
            .status,
        200
    );
    let a = s
        .send(Auth::CookieCsrf(&cookie, &csrf).apply(s.http.delete(s.url(auth::SESSION_PATH))))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json(), json!({"signedIn": false}));
    assert!(a.cookie().contains("Max-Age=0"), "{}", a.cookie());
    s.get("/api/v1/mlmodels", Auth::Cookie(&cookie))
        .await
        .refused(401, "the session has expired or was signed out");
    let a = s.get(auth::SESSION_PATH, Auth::Cookie(&cookie)).await;
    assert_eq!(a.json(), json!({"signedIn": false}));
    // The other session is untouched.
    assert_eq!(
        s.get("/api/v1/mlmodels", Auth::Cookie(&other_cookie))
            .await
            .status,
        200
    );

    assert!(!s.seen().contains(ADMIN), "{}", s.seen());
    let log = logs.text();
    assert!(!log.contains(ADMIN), "{log}");
    assert!(!log.contains(&csrf) && !log.contains(id), "{log}");
    assert!(log.contains("sign-in with a wrong admin token"), "{log}");
}

/// `POST|PUT|PATCH|DELETE /test/echo`, to be guarded like the app: answers how the caller
/// proved itself.
fn echo_routes() -> Router {
    Router::new().route("/test/echo", post(echo).put(echo).patch(echo).delete(echo))
}

async fn echo(Extension(credential): Extension<AdminCredential>) -> &'static str {
    match credential {
        AdminCredential::Bearer => "bearer",
        AdminCredential::Session => "session",
    }
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    // Sessions that last no time at all: expired as soon as they are made, without a sleep.
    let s = start(WITH_ADMIN, Some(Duration::ZERO)).await;
    let a = s.sign_in(ADMIN).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.cookie().contains("Max-Age=0"), "{}", a.cookie());
    let cookie = a.cookie_pair();
    s.get("/api/v1/mlmodels", Auth::Cookie(&cookie))
        .await
        .refused(401, "the session has expired");
    let a = s.get(auth::SESSION_PATH, Auth::Cookie(&cookie)).await;
    assert_eq!(a.json(), json!({"signedIn": false}));
    // Bearer tokens do not expire.
    assert_eq!(
        s.get("/api/v1/mlmodels", Auth::Bearer(ADMIN)).await.status,
        200
    );
}

#[tokio::test]
async fn the_host_guard_refuses_other_names_on_every_route() {
    let (logs, _guard) = capture_logs();
    let s = start(
        &format!("{WITH_ADMIN}  publicHosts: [sagebridge.example.com]\n"),
        None,
    )
    .await;
    let port = s.addr.port();
    for path in [
        "/",
        "/ui/app.js",
        "/healthz",
        "/v1/models",
        "/api/v1/session",
        "/metrics",
    ] {
        for host in [
            "evil.example.com".to_owned(),
            format!("evil.example.com:{port}"),
            format!("sagebridge.example.com.evil.com:{port}"),
            format!("localhost.evil.com:{port}"),
            format!("0.0.0.0:{port}"),
            "bad:host:name".to_owned(),
        ] {
            let (status, body) = raw(s.addr, path, Some(&host)).await;
            assert_eq!(status, 421, "{path} {host}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["code"], 421);
            let message = v["message"].as_str().unwrap();
            assert!(
                message.contains("is not served here") && message.contains("server.publicHosts"),
                "{message}"
            );
        }
        // No Host at all (HTTP/1.0) is refused too.
        assert_eq!(raw(s.addr, path, None).await.0, 421, "{path}");
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "LOCALHOST".to_owned(),
        format!("[::1]:{port}"),
        "sagebridge.example.com".to_owned(),
        format!("SageBridge.Example.com.:{port}"),
    ] {
        let (status, body) = raw(s.addr, "/healthz", Some(&host)).await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"status":"ok"}"#),
            "{host}"
        );
        assert_eq!(raw(s.addr, "/", Some(&host)).await.0, 200, "{host}");
    }
    // The guard runs before the admin check: a good token from a bad host is still refused.
    let a = s
        .send(
            s.http
                .get(s.url("/api/v1/mlmodels"))
                .header("host", "evil.example.com")
                .bearer_auth(ADMIN),
        )
        .await;
    a.refused(421, "evil.example.com");
    assert!(
        logs.text().contains("host that is not allowed"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn metrics_are_public_only_when_configured() {
    let private = start(WITH_ADMIN, None).await;
    private
        .get("/metrics", Auth::None)
        .await
        .refused(401, "sign in first");
    let a = private.get("/metrics", Auth::Bearer(ADMIN)).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("sagebridge_"), "{}", a.body);

    let public = start(&format!("{WITH_ADMIN}  metricsPublic: true\n"), None).await;
    let a = public.get("/metrics", Auth::None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("sagebridge_"), "{}", a.body);
    // Only /metrics: the catalog stays protected.
    assert_eq!(public.get("/api/v1/mlmodels", Auth::None).await.status, 401);
}

#[tokio::test]
async fn without_admin_tokens_serve_stays_on_loopback() {
    // In the file: a config error at server.listen, with its position.
    let yaml = "server:\n  listen: 0.0.0.0:8080\nawsConfig: {awsRegion: us-east-1}\n";
    let e = config::load_str("sagebridge.yaml", yaml, &|_: &str| None).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("sagebridge.yaml:2:")
            && text.contains("server.listen")
            && text.contains("set server.adminTokens to listen on 0.0.0.0"),
        "{text}"
    );
    // From `--listen`: `serve` refuses before it binds anything.
    let cfg = gateway_config("");
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let opts = ServeOptions {
            listen: Some(listen.to_owned()),
            ..ServeOptions::default()
        };
        let e =
            sagebridge_server::serve(&cfg, &opts, sagebridge_ingest::shutdown::Shutdown::never())
                .await
                .unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("is not a loopback address")
                && text.contains("set server.adminTokens to listen on"),
            "{text}"
        );
    }
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
    assert!(AdminAuth::from_config(&cfg.server, &any).is_err());
    // With admin tokens, any address is accepted (nothing is bound here).
    let with_tokens = gateway_config(WITH_ADMIN);
    let a = AdminAuth::from_config(&with_tokens.server, &any).unwrap();
    assert!(!a.is_generated());
    assert_eq!(a.sign_in_url(&any), None);
    assert!(!format!("{a:?}").contains(ADMIN));
}

#[tokio::test]
async fn a_generated_token_signs_in_through_the_printed_url() {
    let (logs, _guard) = capture_logs();
    let s = start("", None).await;
    assert!(s.auth.is_generated());
    let url = s.auth.sign_in_url(&s.addr).unwrap();
    let prefix = format!("http://{}/#token=", s.addr);
    let token = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    assert_eq!(token.len(), 64, "256 bits, hex");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    // Another start makes another token.
    let again = AdminAuth::from_config(&gateway_config("").server, &s.addr).unwrap();
    assert_ne!(again.sign_in_url(&s.addr).unwrap(), url);

    s.get("/api/v1/mlmodels", Auth::None)
        .await
        .refused(401, "sign in first");
    assert_eq!(
        s.get("/api/v1/mlmodels", Auth::Bearer(token)).await.status,
        200
    );
    let a = s.sign_in(token).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let cookie = a.cookie_pair();
    assert_eq!(
        s.get("/api/v1/services/mlmodelServices", Auth::Cookie(&cookie))
            .await
            .status,
        200
    );
    // The configured sentinel is not a token of this server.
    s.get("/api/v1/mlmodels", Auth::Bearer(ADMIN))
        .await
        .refused(401, "not valid");
    assert!(!s.seen().contains(token));
    assert!(!logs.text().contains(token), "{}", logs.text());
}
