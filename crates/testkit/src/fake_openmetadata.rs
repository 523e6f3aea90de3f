//! A fake OpenMetadata server (the part of its REST API the `metadata-rest` sink uses), for
//! integration tests: no real OpenMetadata server can run here (it needs Java, MySQL or
//! PostgreSQL and Elasticsearch). It answers as described in
//! `crates/ingest/tests/contracts/openmetadata/README.md` ("How the stand-in server answered"), keeps the
//! entities in memory and records every request (method, path with query, body, whether the
//! bearer token matched) so tests can compare them with the recorded 2.0.7 client and validate
//! the bodies against OpenMetadata's JSON Schemas.
//!
//! Like a real server, and unlike the stand-in, it rejects (per row, in `failedRequest`) a
//! model whose tag labels name a tag that was never created.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The CA that signed the HTTPS fake's certificate (for `sslConfig.caCertificate`).
pub const TEST_CA_PEM: &str = include_str!("../fixtures/tls/ca.pem");
const TEST_CERT_PEM: &str = include_str!("../fixtures/tls/cert.pem");
const TEST_KEY_PEM: &str = include_str!("../fixtures/tls/key.pem");

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct OmRequest {
    pub method: String,
    /// Path and query, e.g. `/api/v1/mlmodels/bulk?async=false&overrideMetadata=false`.
    pub path: String,
    pub body: Option<Value>,
    /// The `Authorization` header was `Bearer <the configured token>`.
    pub authorized: bool,
}

#[derive(Default)]
struct Store {
    services: BTreeMap<String, Value>,
    models: BTreeMap<String, Value>,
    classifications: BTreeMap<String, Value>,
    tags: BTreeMap<String, Value>,
    requests: Vec<OmRequest>,
    next_id: u64,
    /// Answer `deleteStale` with 404 (servers before it existed), forcing the list+delete path.
    no_delete_stale: bool,
    /// Model names a bulk write refuses (in `failedRequest`), whatever the row says.
    refused: HashSet<String>,
    /// Requests whose path starts with this answer this status (with `Retry-After: 0`), this
    /// many more times (a proxy or an overloaded server in front).
    failing: Option<(String, StatusCode, u64)>,
}

impl Store {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012}", self.next_id)
    }
}

struct Shared {
    token: String,
    store: Mutex<Store>,
}

/// A running fake OpenMetadata; the server task is aborted on drop.
pub struct FakeOpenMetadata {
    url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeOpenMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOpenMetadata")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeOpenMetadata {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOpenMetadata {
    /// Serves on `127.0.0.1:<free port>`, accepting `Authorization: Bearer <token>` only.
    pub async fn start(token: &str) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            store: Mutex::new(Store::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind 127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "fake openmetadata stopped");
            }
        });
        Ok(Self { url, shared, task })
    }

    /// The same over HTTPS on `127.0.0.1:<free port>`, with the test certificate for
    /// `127.0.0.1` / `localhost` signed by [`TEST_CA_PEM`].
    pub async fn start_tls(token: &str) -> anyhow::Result<Self> {
        use hyper_util::rt::TokioIo;
        use hyper_util::service::TowerToHyperService;
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};

        let shared = Arc::new(Shared {
            token: token.to_owned(),
            store: Mutex::new(Store::default()),
        });
        let certs = CertificateDer::pem_slice_iter(TEST_CERT_PEM.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("test certificate")?;
        let key = PrivateKeyDer::from_pem_slice(TEST_KEY_PEM.as_bytes()).context("test key")?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind 127.0.0.1:0")?;
        let url = format!("https://{}", listener.local_addr()?);
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends its handshake: nothing to do.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Self { url, shared, task })
    }

    /// `http://127.0.0.1:PORT` (what goes into `hostPort`, with `/api` appended).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<OmRequest> {
        self.store().requests.clone()
    }

    /// Forgets the recorded requests (not the entities).
    pub fn clear_requests(&self) {
        self.store().requests.clear();
    }

    /// The stored model with this fully qualified name.
    pub fn model(&self, fqn: &str) -> Option<Value> {
        self.store().models.get(fqn).cloned()
    }

    /// Every stored model (also soft-deleted ones), by FQN.
    pub fn models(&self) -> BTreeMap<String, Value> {
        self.store().models.clone()
    }

    /// The stored service with this name.
    pub fn service(&self, name: &str) -> Option<Value> {
        self.store().services.get(name).cloned()
    }

    /// Fully qualified names of the tags created (`classification.tag`).
    pub fn tags(&self) -> Vec<String> {
        self.store().tags.keys().cloned().collect()
    }

    /// Make every bulk write refuse the rows of these models (per row, in `failedRequest`, as
    /// a real server refuses a row it cannot store), the other rows being written.
    pub fn refuse_models<I, S>(&self, names: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.store()
            .refused
            .extend(names.into_iter().map(Into::into));
    }

    /// Make the next `times` requests whose path (after `/api/v1/`) starts with `prefix`
    /// answer `status` with `Retry-After: 0`, as an overloaded server or a proxy in front does
    /// (`u64::MAX` for always).
    pub fn fail_requests(&self, prefix: &str, status: u16, times: u64) {
        self.store().failing = Some((
            prefix.to_owned(),
            StatusCode::from_u16(status).expect("status"),
            times,
        ));
    }

    /// Make `DELETE /mlmodels/deleteStale` answer 404, as servers without it do.
    pub fn disable_delete_stale(&self) {
        self.store().no_delete_stale = true;
    }
}

/// The relationship fields `GET /api/v1/mlmodels` accepts in `fields` (those the `mlmodel.json`
/// schema has; the server answers 400 to any other name).
const MLMODEL_FIELDS: [&str; 11] = [
    "owners",
    "dashboard",
    "followers",
    "tags",
    "usageSummary",
    "extension",
    "domains",
    "dataProducts",
    "votes",
    "lifeCycle",
    "certification",
];

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn not_found(kind: &str, fqn: &str) -> Response {
    reply(
        StatusCode::NOT_FOUND,
        json!({"code": 404, "message": format!("{kind} instance for {fqn} not found")}),
    )
}

/// OpenMetadata's FQN quoting, for the fake's own keys (same rule as the real server).
fn quote(name: &str) -> String {
    if name.contains('.') {
        format!("\"{name}\"")
    } else {
        name.to_owned()
    }
}

fn bump(version: f64) -> f64 {
    ((version * 10.0).round() + 1.0) / 10.0
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.strip_prefix("Bearer ") == Some(shared.token.as_str()));
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"code": 400, "message": format!("Unable to process JSON: {e}")}),
                )
            }
        }
    };
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut store = shared.store.lock().unwrap_or_else(|e| e.into_inner());
    store.requests.push(OmRequest {
        method: method.to_string(),
        path: path_and_query,
        body: body.clone(),
        authorized,
    });
    if !authorized {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"code": 401, "message": "Not Authorized! Token not present"}),
        );
    }
    let path = uri.path().strip_prefix("/api/v1/").unwrap_or("");
    let query: BTreeMap<String, String> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let body = body.unwrap_or(Value::Null);
    let store = &mut *store;
    if let Some((prefix, status, times)) = store.failing.as_mut() {
        if *times > 0 && path.starts_with(prefix.as_str()) {
            if *times != u64::MAX {
                *times -= 1;
            }
            let status = *status;
            return (
                status,
                [("retry-after", "0")],
                axum::Json(json!({"code": status.as_u16(), "message": "try again later"})),
            )
                .into_response();
        }
    }
    match (method.as_str(), path) {
        ("GET", "system/version") => reply(
            StatusCode::OK,
            json!({"version": "2.0.7", "revision": "fake", "timestamp": 0}),
        ),
        // What OpenMetadata's own ingestion client reads before it tests the connection.
        ("GET", p) if p.starts_with("services/testConnectionDefinitions/name/") => {
            let fqn = percent_decode(&p["services/testConnectionDefinitions/name/".len()..]);
            if fqn != "SageMaker.testConnectionDefinition" {
                return not_found("testConnectionDefinition", &fqn);
            }
            reply(
                StatusCode::OK,
                json!({
                    "id": "7c6f1f4e-5d0a-4c59-9f57-3a0b7d4b2c11",
                    "name": "SageMaker",
                    "fullyQualifiedName": "SageMaker.testConnectionDefinition",
                    "displayName": "SageMaker Test Connection",
                    "steps": [{
                        "name": "GetModels",
                        "description": "List all the models available to the user.",
                        "errorMessage": "Failed to fetch models, please validate the credentials",
                        "shortCircuit": true,
                        "mandatory": true
                    }]
                }),
            )
        }
        ("GET", p) if p.starts_with("services/mlmodelServices/name/") => {
            let name = percent_decode(&p["services/mlmodelServices/name/".len()..]);
            match store.services.get(&name) {
                Some(s) => reply(StatusCode::OK, s.clone()),
                None => not_found("mlmodelService", &name),
            }
        }
        ("PUT", "services/mlmodelServices") => {
            let Some(name) = body["name"].as_str().map(str::to_owned) else {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"code": 400, "message": "[name must not be null]"}),
                );
            };
            let (status, entity) = match store.services.get(&name) {
                Some(old) => {
                    let mut e = body.clone();
                    e["id"] = old["id"].clone();
                    e["fullyQualifiedName"] = json!(quote(&name));
                    let v = old["version"].as_f64().unwrap_or(0.1);
                    e["version"] = json!(if old_matches(old, &body) { v } else { bump(v) });
                    e["deleted"] = json!(false);
                    (StatusCode::OK, e)
                }
                None => {
                    let mut e = body.clone();
                    e["id"] = json!(store.id());
                    e["fullyQualifiedName"] = json!(quote(&name));
                    e["version"] = json!(0.1);
                    e["deleted"] = json!(false);
                    (StatusCode::CREATED, e)
                }
            };
            store.services.insert(name, entity.clone());
            reply(status, entity)
        }
        ("PUT", "classifications") => {
            let name = body["name"].as_str().unwrap_or_default();
            let id = store.id();
            // Kept by fully qualified name, as the server resolves references by FQN.
            put_named(
                &mut store.classifications,
                quote(name),
                quote(name),
                id,
                &body,
            )
        }
        ("PUT", "tags") => {
            // `classification` is a fully qualified name, resolved as the real server does: a
            // bare `cost.center` is the two-part name `cost` / `center` and is not found; the
            // classification named `cost.center` is `"cost.center"`.
            let classification = body["classification"].as_str().unwrap_or_default();
            if !store.classifications.contains_key(classification) {
                return not_found("classification", classification);
            }
            let name = body["name"].as_str().unwrap_or_default();
            let fqn = format!("{classification}.{}", quote(name));
            let id = store.id();
            put_named(&mut store.tags, fqn.clone(), fqn, id, &body)
        }
        ("PUT", "mlmodels/bulk") => {
            let Some(rows) = body.as_array() else {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"code": 400, "message": "expected an array"}),
                );
            };
            let mut ok = Vec::new();
            let mut failed = Vec::new();
            for row in rows {
                match put_model(store, row) {
                    Ok((fqn, status)) => ok.push(json!({"request": fqn, "status": status})),
                    Err(message) => failed.push(json!({
                        "request": row["name"], "message": message, "status": 400
                    })),
                }
            }
            let status = if failed.is_empty() {
                "success"
            } else if ok.is_empty() {
                "failure"
            } else {
                "partialSuccess"
            };
            reply(
                StatusCode::OK,
                json!({
                    "status": status,
                    "numberOfRowsProcessed": rows.len(),
                    "numberOfRowsPassed": ok.len(),
                    "numberOfRowsFailed": failed.len(),
                    "successRequest": ok,
                    "failedRequest": failed,
                }),
            )
        }
        ("DELETE", "mlmodels/deleteStale") => {
            if store.no_delete_stale {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"code": 404, "message": "HTTP 404 Not Found"}),
                );
            }
            let scope = body["scopeFqn"].as_str().unwrap_or_default().to_owned();
            let seen: HashSet<&str> = body["seenFqns"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let prefix = format!("{scope}.");
            let mut deleted = Vec::new();
            for (fqn, model) in store.models.iter_mut() {
                if fqn.starts_with(&prefix)
                    && !seen.contains(fqn.as_str())
                    && model["deleted"] != json!(true)
                {
                    model["deleted"] = json!(true);
                    let v = model["version"].as_f64().unwrap_or(0.1);
                    model["version"] = json!(bump(v));
                    deleted.push(json!({"request": fqn, "status": 200}));
                }
            }
            reply(
                StatusCode::OK,
                json!({
                    "status": "success",
                    "numberOfRowsProcessed": deleted.len(),
                    "numberOfRowsPassed": deleted.len(),
                    "numberOfRowsFailed": 0,
                    "successRequest": deleted,
                    "failedRequest": [],
                }),
            )
        }
        ("GET", "mlmodels") => {
            let service = query.get("service").map(|s| percent_decode(s));
            // As the server validates them: `limit` within 0..=1000000, and only the
            // relationship fields an MlModel has in `fields`. Plain attributes (`sourceHash`
            // among them) are in every answer, as stored.
            let limit: usize = match query.get("limit").map(|l| l.parse::<usize>()) {
                None => 10,
                Some(Ok(l)) if l <= 1_000_000 => l,
                Some(_) => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        json!({"code": 400, "message": "query param limit must be less than or equal to 1000000"}),
                    )
                }
            };
            if let Some(fields) = query.get("fields") {
                let fields = percent_decode(fields);
                if let Some(bad) = fields
                    .split(',')
                    .map(str::trim)
                    .find(|f| !MLMODEL_FIELDS.contains(f))
                {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        json!({"code": 400, "message": format!("Invalid field name {bad}")}),
                    );
                }
            }
            let after = query.get("after").map(|a| percent_decode(a));
            let include_deleted = query.get("include").map(String::as_str) == Some("all");
            let matching: Vec<(&String, &Value)> = store
                .models
                .iter()
                .filter(|(_, m)| {
                    service
                        .as_deref()
                        .is_none_or(|s| m["service"]["name"] == json!(s))
                })
                .filter(|(_, m)| include_deleted || m["deleted"] != json!(true))
                .collect();
            let start = after
                .as_deref()
                .map(|a| {
                    matching
                        .iter()
                        .position(|(f, _)| f.as_str() > a)
                        .unwrap_or(matching.len())
                })
                .unwrap_or(0);
            let page: Vec<Value> = matching
                .iter()
                .skip(start)
                .take(limit)
                .map(|(_, m)| (*m).clone())
                .collect();
            let next = (start + page.len() < matching.len())
                .then(|| matching[start + page.len() - 1].0.clone());
            let mut paging = json!({"total": matching.len()});
            if let Some(n) = next {
                paging["after"] = json!(n);
            }
            reply(StatusCode::OK, json!({"data": page, "paging": paging}))
        }
        ("GET", p) if p.starts_with("mlmodels/name/") => {
            let fqn = percent_decode(&p["mlmodels/name/".len()..]);
            match store.models.get(&fqn) {
                Some(m) => reply(StatusCode::OK, m.clone()),
                None => not_found("mlmodel", &fqn),
            }
        }
        ("DELETE", p) if p.starts_with("mlmodels/") => {
            let id = &p["mlmodels/".len()..];
            let Some(model) = store
                .models
                .values_mut()
                .find(|m| m["id"].as_str() == Some(id))
            else {
                return not_found("mlmodel", id);
            };
            model["deleted"] = json!(true);
            let v = model["version"].as_f64().unwrap_or(0.1);
            model["version"] = json!(bump(v));
            reply(StatusCode::OK, model.clone())
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"code": 404, "message": "HTTP 404 Not Found"}),
        ),
    }
}

/// Creates (201) an entity under `key`, or answers the one already there (200).
fn put_named(
    map: &mut BTreeMap<String, Value>,
    key: String,
    fqn: String,
    id: String,
    body: &Value,
) -> Response {
    if let Some(existing) = map.get(&key) {
        return reply(StatusCode::OK, existing.clone());
    }
    let mut e = body.clone();
    e["id"] = json!(id);
    e["fullyQualifiedName"] = json!(fqn);
    map.insert(key, e.clone());
    reply(StatusCode::CREATED, e)
}

/// Whether a PUT changes nothing (same fields as stored, ignoring server-side ones).
fn old_matches(old: &Value, new: &Value) -> bool {
    let Some(fields) = new.as_object() else {
        return false;
    };
    fields.iter().all(|(k, v)| &old[k] == v)
}

/// Creates or updates one model from a CreateMlModel row: `(fqn, 201 | 200)`.
fn put_model(store: &mut Store, row: &Value) -> Result<(String, u16), String> {
    let name = row["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or("name must not be empty")?;
    if store.refused.contains(name) {
        return Err(format!("mlmodel {name} refused by the test"));
    }
    let service_name = row["service"].as_str().ok_or("service must not be null")?;
    let service = store
        .services
        .get(service_name)
        .ok_or_else(|| format!("mlmodelService instance for {service_name} not found"))?
        .clone();
    for label in row["tags"].as_array().into_iter().flatten() {
        let fqn = label["tagFQN"].as_str().unwrap_or_default();
        if !store.tags.contains_key(fqn) {
            return Err(format!("tag instance for {fqn} not found"));
        }
    }
    let fqn = format!("{}.{}", quote(service_name), quote(name));
    let mut entity = row.clone();
    entity["fullyQualifiedName"] = json!(fqn);
    entity["service"] = json!({
        "id": service["id"], "type": "mlmodelService",
        "name": service_name, "fullyQualifiedName": service["fullyQualifiedName"],
    });
    entity["serviceType"] = json!("SageMaker");
    entity["deleted"] = json!(false);
    match store.models.get(&fqn) {
        Some(old) => {
            entity["id"] = old["id"].clone();
            let v = old["version"].as_f64().unwrap_or(0.1);
            let same = old["sourceHash"] == row["sourceHash"] && old["deleted"] != json!(true);
            entity["version"] = json!(if same { v } else { bump(v) });
            store.models.insert(fqn.clone(), entity);
            Ok((fqn, 200))
        }
        None => {
            entity["id"] = json!(store.id());
            entity["version"] = json!(0.1);
            store.models.insert(fqn.clone(), entity);
            Ok((fqn, 201))
        }
    }
}

/// Decodes `%XX` escapes (FQNs in paths may be quoted: `%22a.b%22`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
