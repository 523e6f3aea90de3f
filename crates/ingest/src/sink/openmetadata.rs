//! The `metadata-rest` sink: writes the run into an OpenMetadata server over its REST API,
//! speaking what the OpenMetadata 2.0.x ingestion client speaks (recorded in
//! `crates/ingest/tests/contracts/openmetadata/`):
//!
//! 1. `GET /api/v1/system/version` (checks the server answers and the token is accepted);
//! 2. `GET /api/v1/services/mlmodelServices/name/<service>`, and on 404
//!    `PUT /api/v1/services/mlmodelServices` (the connection is sent **without** the secret key
//!    and session token: OpenMetadata does not need them to show the service, and secrets never
//!    leave sagebridge);
//!    Then, on an incremental run (not `--full`), `GET /api/v1/mlmodels?service=..` page
//!    by page: the service's live models and their `sourceHash`, which proves a model
//!    unchanged (then it is neither described nor written; see [`crate::fingerprint`]);
//! 3. `PUT /api/v1/classifications` and `PUT /api/v1/tags` for every tag key and value the
//!    batch uses (the 2.0.7 client sends no tags at all; a real server rejects a tag label whose
//!    tag does not exist);
//! 4. `PUT /api/v1/mlmodels/bulk?async=false&overrideMetadata=..` with up to 100
//!    `CreateMlModel` rows; per-row failures (`failedRequest`) become failed models;
//! 5. with `markDeletedMlModels` and a complete listing, `DELETE /api/v1/mlmodels/deleteStale`
//!    with the FQNs seen, falling back (on 404, older servers) to listing the service's models
//!    and deleting the unseen ones one by one (soft delete).
//!
//! Every request carries `Authorization: Bearer <jwtToken>`; the token is never logged or put
//! in an error. `https://` uses the system's CA roots, plus `sslConfig.caCertificate` (a PEM
//! file) when set; `verifySSL: ignore` turns certificate checks off (with a warning).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request, StatusCode};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sagebridge_aws::{AwsConfig, Secret};
use sagebridge_catalog::{IngestionRun, KnownModel, MlModel, ModelWrite, WriteOutcome};
use serde_json::{json, Value};

use super::{Incremental, Rejected, Sink, SinkContext, SinkError, Written};
use crate::config::{OpenMetadataServerConfig, VerifySsl};
use crate::facts::ModelFacts;
use crate::mapping::{quote_name, to_create_ml_model, ServiceRef};

/// The `awsCredentials` fields sent with the service (secrets left out on purpose).
const OM_AWS_FIELDS: [&str; 8] = [
    "awsAccessKeyId",
    "awsRegion",
    "endPointURL",
    "profileName",
    "assumeRoleArn",
    "assumeRoleSessionName",
    "assumeRoleSourceIdentity",
    "enabled",
];

/// The longest one request to OpenMetadata may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts of an idempotent call (GET, PUT, DELETE) that meets 429, 502-504 or a transport
/// error.
const ATTEMPTS: u32 = 4;
/// Statuses worth another attempt: too many requests, a gateway in front that failed.
const RETRIABLE: [u16; 4] = [429, 502, 503, 504];
/// The first wait between attempts (doubled each time) when the server names none.
const RETRY_BASE: Duration = Duration::from_millis(500);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Whether `base` names a loopback host (`localhost`, `127.x`, `[::1]`).
fn is_loopback_url(base: &str) -> bool {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Rows per bulk request (as the OpenMetadata client sends).
pub const BULK_ROWS: usize = 100;

/// Models per page when listing the service's models.
pub const LIST_PAGE: usize = 100;
/// The most pages one listing reads (a million models): a server whose cursor never ends
/// does not hold the run forever.
const MAX_LIST_PAGES: usize = 10_000;

/// A failure talking to OpenMetadata, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OmError {
    #[error("workflowConfig.openMetadataServerConfig is required for the metadata-rest sink")]
    NotConfigured,
    #[error("OpenMetadata hostPort `{0}` must start with http:// or https://")]
    BadAddress(String),
    #[error("TLS setup for OpenMetadata: {0}")]
    Tls(String),
    #[error("cannot reach OpenMetadata at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("OpenMetadata rejected the token ({status}) for {what}: check workflowConfig.openMetadataServerConfig.securityConfig.jwtToken")]
    Unauthorized { status: u16, what: String },
    #[error("OpenMetadata answered {status} to {what}: {message}")]
    Status {
        status: u16,
        what: String,
        message: String,
    },
}

/// One row OpenMetadata refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    pub model: String,
    pub message: String,
}

/// What one bulk write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkOutcome {
    pub created: usize,
    pub updated: usize,
    pub failed: Vec<RowFailure>,
    /// A whole bulk request failed (its rows are in `failed`).
    pub incomplete: bool,
}

/// A client of one OpenMetadata server.
#[derive(Debug, Clone)]
pub struct OpenMetadata {
    http: HttpClient,
    /// `http(s)://host:port/api`
    base: String,
    token: Option<Secret>,
    known_tags: std::sync::Arc<std::sync::Mutex<HashSet<(String, String)>>>,
    /// `storeServiceConnection`: false creates the service without its connection.
    store_connection: bool,
    /// Waits between attempts of an idempotent call (tests shorten them).
    retry_base: Duration,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The TLS client configuration: the system's roots, plus the CA of `sslConfig.caCertificate`
/// (a PEM file, as in OpenMetadata), or no verification at all with `verifySSL: ignore`.
fn tls_config(cfg: &OpenMetadataServerConfig) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if cfg.verify_ssl == VerifySsl::Ignore {
        tracing::warn!("verifySSL: ignore: the OpenMetadata server's certificate is not checked");
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = cfg
        .ssl_config
        .as_ref()
        .and_then(|s| s.ca_certificate.as_deref())
    {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("sslConfig.caCertificate {path}: {e}"))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| format!("sslConfig.caCertificate {path}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("sslConfig.caCertificate {path}: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "sslConfig.caCertificate {path}: no certificate in the file"
            ));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `verifySSL: ignore`: accepts any certificate (signatures are still checked).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl OpenMetadata {
    pub fn new(cfg: Option<&OpenMetadataServerConfig>) -> Result<Self, OmError> {
        let cfg = cfg.ok_or(OmError::NotConfigured)?;
        let base = cfg.host_port.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(OmError::BadAddress(base));
        }
        // OpenMetadata's own convention: hostPort ends with /api.
        let base = if base.ends_with("/api") {
            base
        } else {
            format!("{base}/api")
        };
        let tls = tls_config(cfg).map_err(OmError::Tls)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let http = Client::builder(TokioExecutor::new()).build(connector);
        let token = cfg.security_config.as_ref().map(|s| s.jwt_token.clone());
        if token.is_some() && base.starts_with("http://") && !is_loopback_url(&base) {
            tracing::warn!(
                host = %base,
                "the OpenMetadata JWT is sent over plain http:// to a host that is not loopback; use https://"
            );
        }
        Ok(Self {
            http,
            base,
            token,
            known_tags: Default::default(),
            store_connection: cfg.store_service_connection.unwrap_or(true),
            retry_base: RETRY_BASE,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), OmError> {
        self.call_with(method, path, body, ATTEMPTS).await
    }

    /// [`OpenMetadata::call`] with at most `attempts` attempts (1 for a health check, which
    /// must answer at once).
    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        attempts: u32,
    ) -> Result<(StatusCode, Value), OmError> {
        let url = format!("{}/v1/{path}", self.base);
        let what = format!(
            "{method} /api/v1/{}",
            path.split('?').next().unwrap_or(path)
        );
        let payload = body.map(|b| Bytes::from(serde_json::to_vec(b).unwrap_or_default()));
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE);
        let mut attempt = 1;
        let (status, bytes) = loop {
            let outcome = self.exchange(&method, &url, payload.clone()).await;
            let retry_after = match &outcome {
                Ok((status, after, _)) if RETRIABLE.contains(&status.as_u16()) => Some(*after),
                // A certificate the client refuses will not change by waiting.
                Err(OmError::Unreachable { reason, .. }) if !reason.contains("certificate") => {
                    Some(None)
                }
                _ => None,
            };
            match (retry_after, idempotent && attempt < attempts) {
                (Some(after), true) => {
                    let wait = after
                        .unwrap_or(self.retry_base * 2u32.pow(attempt - 1))
                        .min(MAX_RETRY_AFTER);
                    tracing::debug!(what = %what, attempt, wait_ms = wait.as_millis() as u64, "OpenMetadata call retried");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => {
                    let (status, _, bytes) = outcome?;
                    break (status, bytes);
                }
            }
        };
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(OmError::Unauthorized {
                status: status.as_u16(),
                what,
            });
        }
        Ok((status, value))
    }

    /// One request: the status, the `Retry-After` it named (seconds), the body.
    async fn exchange(
        &self,
        method: &Method,
        url: &str,
        payload: Option<Bytes>,
    ) -> Result<(StatusCode, Option<Duration>, Bytes), OmError> {
        let unreachable = |reason: String| OmError::Unreachable {
            url: self.base.clone(),
            reason,
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(header::ACCEPT, "application/json");
        if let Some(t) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", t.expose()));
        }
        if payload.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(payload.unwrap_or_default()))
            .map_err(|e| unreachable(format!("bad request URL: {e}")))?;
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| {
                // The full chain (e.g. "invalid peer certificate: UnknownIssuer").
                let mut reason = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    reason.push_str(": ");
                    reason.push_str(&s.to_string());
                    source = s.source();
                }
                unreachable(reason)
            })?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, OmError>((status, retry_after, bytes))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {REQUEST_TIMEOUT:?}")))?
    }

    fn fail(status: StatusCode, what: &str, body: &Value) -> OmError {
        OmError::Status {
            status: status.as_u16(),
            what: what.to_owned(),
            message: body["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| body.to_string()),
        }
    }

    /// The server's version (also proves the address and the token).
    pub async fn version(&self) -> Result<String, OmError> {
        self.version_with(ATTEMPTS).await
    }

    async fn version_with(&self, attempts: u32) -> Result<String, OmError> {
        let (status, body) = self
            .call_with(Method::GET, "system/version", None, attempts)
            .await?;
        if !status.is_success() {
            return Err(Self::fail(status, "GET /api/v1/system/version", &body));
        }
        Ok(body["version"].as_str().unwrap_or("unknown").to_owned())
    }

    /// For `test-connection`: the server answers, accepts the token for a read of the service
    /// (the version endpoint alone may be public), and says whether the service exists.
    pub async fn check(&self, service: &str) -> Result<String, OmError> {
        let version = self.version_with(1).await?;
        let path = format!("services/mlmodelServices/name/{}", encode(service));
        let (status, body) = self.call_with(Method::GET, &path, None, 1).await?;
        let found = match status {
            s if s.is_success() => "exists",
            StatusCode::NOT_FOUND => "will be created by the first run",
            s => return Err(Self::fail(s, "GET mlmodelServices", &body)),
        };
        Ok(format!(
            "OpenMetadata {version} at {}; service {service} {found}",
            self.base
        ))
    }

    /// Gets the service, creating it first if missing; returns its id.
    pub async fn ensure_service(&self, name: &str, aws: &AwsConfig) -> Result<String, OmError> {
        let path = format!("services/mlmodelServices/name/{}", encode(name));
        let (status, body) = self.call(Method::GET, &path, None).await?;
        if status.is_success() {
            return Ok(body["id"].as_str().unwrap_or_default().to_owned());
        }
        if status != StatusCode::NOT_FOUND {
            return Err(Self::fail(status, "GET mlmodelServices", &body));
        }
        // OpenMetadata's awsCredentials fields only (it rejects others, e.g. our
        // assumeRoleExternalId), and never the secret key or session token.
        let mut aws = serde_json::to_value(aws).unwrap_or(Value::Null);
        if let Some(map) = aws.as_object_mut() {
            map.retain(|k, v| OM_AWS_FIELDS.contains(&k.as_str()) && !v.is_null());
        }
        let mut create = json!({
            "name": name,
            "serviceType": "SageMaker",
            "connection": {"config": {
                "type": "SageMaker",
                "awsConfig": aws,
                "supportsMetadataExtraction": true,
            }},
        });
        if !self.store_connection {
            // `storeServiceConnection: false`: OpenMetadata keeps no connection at all.
            if let Some(map) = create.as_object_mut() {
                map.remove("connection");
            }
        }
        let (status, body) = self
            .call(Method::PUT, "services/mlmodelServices", Some(&create))
            .await?;
        if !status.is_success() {
            return Err(Self::fail(
                status,
                "PUT /api/v1/services/mlmodelServices",
                &body,
            ));
        }
        Ok(body["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Creates the classifications and tags the models' labels name (once per run each).
    async fn ensure_tags(&self, models: &[MlModel]) -> Result<(), OmError> {
        let wanted: BTreeSet<(String, String)> = models
            .iter()
            .flat_map(|m| m.tags.iter())
            .filter_map(|t| {
                let (class, tag) = split_tag_fqn(&t.tag_fqn)?;
                Some((class, tag))
            })
            .collect();
        let missing: Vec<(String, String)> = {
            let known = self.known_tags.lock().unwrap_or_else(|e| e.into_inner());
            wanted.into_iter().filter(|k| !known.contains(k)).collect()
        };
        let mut classes_done = HashSet::new();
        for (class, tag) in missing {
            if classes_done.insert(class.clone()) {
                let body = json!({
                    "name": class,
                    "description": format!("SageMaker tag key `{class}`, created by sagebridge"),
                });
                let (status, resp) = self
                    .call(Method::PUT, "classifications", Some(&body))
                    .await?;
                if !status.is_success() {
                    return Err(Self::fail(status, "PUT /api/v1/classifications", &resp));
                }
            }
            // CreateTag.classification is the classification's fully qualified name: a key
            // with a dot (`cost.center`) is `"cost.center"`, as OpenMetadata computes FQNs.
            let body = json!({
                "name": tag,
                "classification": quote_name(&class),
                "description": format!("SageMaker tag `{class}={tag}`, created by sagebridge"),
            });
            let (status, resp) = self.call(Method::PUT, "tags", Some(&body)).await?;
            if !status.is_success() {
                return Err(Self::fail(status, "PUT /api/v1/tags", &resp));
            }
            self.known_tags
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((class, tag));
        }
        Ok(())
    }

    /// Writes models (any number; sent [`BULK_ROWS`] at a time).
    pub async fn write(
        &self,
        models: &[MlModel],
        override_metadata: bool,
    ) -> Result<BulkOutcome, OmError> {
        self.ensure_tags(models).await?;
        let mut out = BulkOutcome::default();
        for chunk in models.chunks(BULK_ROWS) {
            let rows: Vec<Value> = chunk.iter().map(to_create_ml_model).collect();
            let path = format!("mlmodels/bulk?async=false&overrideMetadata={override_metadata}");
            // A bulk request that still fails after its retries costs its rows, not the run;
            // a refused token stays fatal (every later request would fail the same way).
            let answer = match self.call(Method::PUT, &path, Some(&json!(rows))).await {
                Ok((status, body)) if status.is_success() => Ok(body),
                Ok((status, body)) => Err(Self::fail(status, "PUT /api/v1/mlmodels/bulk", &body)),
                Err(e @ OmError::Unauthorized { .. }) => return Err(e),
                Err(e) => Err(e),
            };
            let body = match answer {
                Ok(body) => body,
                Err(e) => {
                    out.incomplete = true;
                    let message = format!("the bulk write failed after {ATTEMPTS} attempts: {e}");
                    out.failed.extend(chunk.iter().map(|m| RowFailure {
                        model: m.name.clone(),
                        message: message.clone(),
                    }));
                    continue;
                }
            };
            for ok in body["successRequest"].as_array().into_iter().flatten() {
                if ok["status"].as_u64() == Some(201) {
                    out.created += 1;
                } else {
                    out.updated += 1;
                }
            }
            for f in body["failedRequest"].as_array().into_iter().flatten() {
                let model = match &f["request"] {
                    Value::String(s) => s.clone(),
                    other => other["name"].as_str().unwrap_or_default().to_owned(),
                };
                out.failed.push(RowFailure {
                    model,
                    message: f["message"].as_str().unwrap_or("rejected").to_owned(),
                });
            }
        }
        Ok(out)
    }

    /// The service's live models and their `sourceHash`, by name, read page by page
    /// (`GET /api/v1/mlmodels?service=..&limit=..&after=..`). A failed page fails the whole
    /// listing: the caller then knows nothing (it must not take a partial list for the
    /// service's models).
    pub async fn existing_models(
        &self,
        service: &str,
    ) -> Result<HashMap<String, KnownModel>, OmError> {
        let mut out = HashMap::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut path = format!("mlmodels?service={}&limit={LIST_PAGE}", encode(service));
            if let Some(a) = &after {
                path.push_str(&format!("&after={}", encode(a)));
            }
            let (status, page) = self.call(Method::GET, &path, None).await?;
            if !status.is_success() {
                return Err(Self::fail(status, "GET /api/v1/mlmodels", &page));
            }
            let Some(data) = page["data"].as_array() else {
                return Err(OmError::Status {
                    status: status.as_u16(),
                    what: "GET /api/v1/mlmodels".into(),
                    message: "the answer has no `data` list".into(),
                });
            };
            for m in data {
                let (Some(name), false) = (m["name"].as_str(), m["deleted"] == json!(true)) else {
                    continue;
                };
                out.insert(
                    name.to_owned(),
                    KnownModel {
                        source_hash: m["sourceHash"].as_str().map(str::to_owned),
                        ..KnownModel::default()
                    },
                );
            }
            match page["paging"]["after"].as_str() {
                Some(a) if after.as_deref() != Some(a) => after = Some(a.to_owned()),
                _ => return Ok(out),
            }
        }
        Err(OmError::Status {
            status: 200,
            what: "GET /api/v1/mlmodels".into(),
            message: format!("still more pages after {MAX_LIST_PAGES} pages of {LIST_PAGE}"),
        })
    }

    /// Soft-deletes the service's models not in `seen` (names); returns how many.
    pub async fn mark_deleted(
        &self,
        service: &str,
        seen: &HashSet<String>,
    ) -> Result<usize, OmError> {
        let scope = quote_name(service);
        let mut seen_fqns: Vec<String> = seen
            .iter()
            .map(|n| format!("{scope}.{}", quote_name(n)))
            .collect();
        seen_fqns.sort();
        let body = json!({
            "scopeFqn": scope,
            "scopeEntityType": "service",
            "seenFqns": seen_fqns,
            "recursive": true,
        });
        let (status, resp) = self
            .call(Method::DELETE, "mlmodels/deleteStale", Some(&body))
            .await?;
        if status.is_success() {
            return Ok(resp["numberOfRowsPassed"].as_u64().unwrap_or(0) as usize);
        }
        if status != StatusCode::NOT_FOUND {
            return Err(Self::fail(
                status,
                "DELETE /api/v1/mlmodels/deleteStale",
                &resp,
            ));
        }
        // Older servers: list the service's live models and delete the unseen ones.
        let seen_fqns: HashSet<String> = seen_fqns.into_iter().collect();
        let mut stale = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("mlmodels?service={}&limit=100", encode(service));
            if let Some(a) = &after {
                path.push_str(&format!("&after={}", encode(a)));
            }
            let (status, page) = self.call(Method::GET, &path, None).await?;
            if !status.is_success() {
                return Err(Self::fail(status, "GET /api/v1/mlmodels", &page));
            }
            for m in page["data"].as_array().into_iter().flatten() {
                let fqn = m["fullyQualifiedName"].as_str().unwrap_or_default();
                if !seen_fqns.contains(fqn) && m["deleted"] != json!(true) {
                    if let Some(id) = m["id"].as_str() {
                        stale.push(id.to_owned());
                    }
                }
            }
            match page["paging"]["after"].as_str() {
                Some(a) if after.as_deref() != Some(a) => after = Some(a.to_owned()),
                _ => break,
            }
        }
        for id in &stale {
            let (status, resp) = self
                .call(Method::DELETE, &format!("mlmodels/{id}"), None)
                .await?;
            if !status.is_success() && status != StatusCode::NOT_FOUND {
                return Err(Self::fail(status, "DELETE /api/v1/mlmodels/{id}", &resp));
            }
        }
        Ok(stale.len())
    }
}

/// The `metadata-rest` sink: an [`OpenMetadata`] client and the run's service.
#[derive(Debug)]
pub struct MetadataRestSink {
    client: OpenMetadata,
    service: String,
    aws: AwsConfig,
    override_metadata: bool,
}

impl MetadataRestSink {
    /// A client of `ctx.open_metadata` (no request is sent yet).
    pub fn new(ctx: &SinkContext) -> Result<Self, OmError> {
        Ok(Self {
            client: OpenMetadata::new(ctx.open_metadata.as_ref())?,
            service: ctx.service.clone(),
            aws: ctx.aws.clone(),
            override_metadata: ctx.override_metadata,
        })
    }
}

impl Sink for MetadataRestSink {
    fn healthcheck(&self) -> BoxFuture<'_, Result<String, SinkError>> {
        async move { Ok(self.client.check(&self.service).await?) }.boxed()
    }

    /// The server's version first (proves the address and the token before anything is
    /// written), then the service, created if missing.
    fn open_service(&self) -> BoxFuture<'_, Result<ServiceRef, SinkError>> {
        async move {
            let version = self.client.version().await?;
            tracing::info!(%version, "writing to OpenMetadata");
            Ok(ServiceRef {
                id: self.client.ensure_service(&self.service, &self.aws).await?,
                name: self.service.clone(),
            })
        }
        .boxed()
    }

    /// The service's live models as OpenMetadata lists them: names and `sourceHash` only
    /// (no ARN, no creation time: those are not sent).
    fn known_models(&self) -> BoxFuture<'_, Result<HashMap<String, KnownModel>, SinkError>> {
        async move { Ok(self.client.existing_models(&self.service).await?) }.boxed()
    }

    fn stored_facts(&self, _name: String) -> BoxFuture<'_, Option<ModelFacts>> {
        async { None }.boxed()
    }

    fn keeps_facts(&self) -> bool {
        false
    }

    fn incremental(&self) -> Incremental {
        Incremental::SourceHash
    }

    fn write(&self, batch: Vec<ModelWrite>) -> BoxFuture<'_, Result<Written, SinkError>> {
        async move {
            let models: Vec<MlModel> = batch.into_iter().map(|w| w.model).collect();
            let bulk = self.client.write(&models, self.override_metadata).await?;
            Ok(Written {
                outcome: WriteOutcome {
                    created: bulk.created,
                    updated: bulk.updated,
                    ..WriteOutcome::default()
                },
                rejected: bulk
                    .failed
                    .into_iter()
                    .map(|f| Rejected {
                        model: f.model,
                        reason: format!("OpenMetadata rejected the model: {}", f.message),
                    })
                    .collect(),
                incomplete: bulk.incomplete,
            })
        }
        .boxed()
    }

    fn mark_deleted(&self, seen: HashSet<String>) -> BoxFuture<'_, Result<usize, SinkError>> {
        async move { Ok(self.client.mark_deleted(&self.service, &seen).await?) }.boxed()
    }

    /// OpenMetadata keeps its own ingestion pipeline history; the run is not sent there.
    fn record_run(&self, _run: IngestionRun) -> BoxFuture<'_, Result<(), SinkError>> {
        async { Ok(()) }.boxed()
    }
}

/// `key.value` (each part possibly quoted) -> (key, value).
fn split_tag_fqn(fqn: &str) -> Option<(String, String)> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = fqn.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    match parts.as_slice() {
        [class, tag] if !class.is_empty() && !tag.is_empty() => Some((class.clone(), tag.clone())),
        _ => None,
    }
}

/// Percent-encodes a path or query component.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised_for_the_plain_http_warning() {
        for base in [
            "http://localhost:8585/api",
            "http://127.0.0.1:8585/api",
            "http://[::1]:8585/api",
            "http://127.0.0.2/api",
        ] {
            assert!(is_loopback_url(base), "{base}");
        }
        for base in [
            "http://openmetadata.internal:8585/api",
            "http://10.0.0.5:8585/api",
            "http://localhost.evil.com/api",
        ] {
            assert!(!is_loopback_url(base), "{base}");
        }
    }

    #[test]
    fn tag_fqns_split_with_quotes() {
        assert_eq!(
            split_tag_fqn("team.growth"),
            Some(("team".into(), "growth".into()))
        );
        assert_eq!(
            split_tag_fqn("\"ml.owner\".\"a.b\""),
            Some(("ml.owner".into(), "a.b".into()))
        );
        assert_eq!(split_tag_fqn("justone"), None);
    }

    #[test]
    fn addresses() {
        let cfg = |host: &str| OpenMetadataServerConfig {
            host_port: host.into(),
            auth_provider: Default::default(),
            security_config: None,
            store_service_connection: None,
            verify_ssl: VerifySsl::default(),
            ssl_config: None,
        };
        assert!(matches!(
            OpenMetadata::new(Some(&cfg("om.example.com:8585/api"))),
            Err(OmError::BadAddress(_))
        ));
        let om = OpenMetadata::new(Some(&cfg("https://om.example.com/api"))).expect("https");
        assert_eq!(om.base, "https://om.example.com/api");
        let om = OpenMetadata::new(Some(&cfg("http://localhost:8585"))).expect("http");
        assert_eq!(om.base, "http://localhost:8585/api");
        let om = OpenMetadata::new(Some(&cfg("http://localhost:8585/api/"))).expect("http");
        assert_eq!(om.base, "http://localhost:8585/api");
        assert!(matches!(
            OpenMetadata::new(None),
            Err(OmError::NotConfigured)
        ));
        assert_eq!(encode("a b\"c"), "a%20b%22c");
    }
}
