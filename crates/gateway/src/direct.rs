//! InvokeEndpoint without the SDK's orchestrator: the gateway's hot path.
//!
//! A profile of a proxied request (`perf record` on `serve` under `hey -c 16`, README
//! "Performance") showed the SDK's per-call orchestration (runtime plugins merged into a config
//! bag per call, interceptors, type-erased identity and endpoint resolution) costing more CPU
//! than the HTTP exchange itself. This path builds the same request the SDK builds for
//! `InvokeEndpoint` (REST-JSON: `POST /endpoints/{EndpointName}/invocations` with the
//! `X-Amzn-SageMaker-*` headers), signs it with the official [`aws_sigv4`] signer, takes its
//! credentials from the SDK's credential provider of the slot's `SdkConfig` (static keys,
//! profile, AssumeRole, the default chain: the same providers as every SDK client), cached
//! until shortly before they expire, and sends it on a keep-alive connection of its own pool
//! ([`Pool`], over hyper's HTTP/1.1 connection API) and the same rustls stack. Retries, backoff, the connect timeout and the attempt timeout follow the slot's
//! `SdkConfig` (the SDK's standard mode: throttling and transient failures, full jitter).
//!
//! Failures are returned as the SDK's own [`SdkError<InvokeEndpointError>`] (a `ModelError`
//! with its original status and message, or the service's error code and message), built from
//! the REST-JSON error answer exactly as the SDK reads it, so the one mapping of
//! [`crate::invoker`] applies to both paths. Streams (InvokeEndpointWithResponseStream) stay
//! on the SDK: an event stream's framing and decoding are the SDK's.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_sagemakerruntime::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::types::error::ModelError;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_types::SdkConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue};
use hyper::Uri;
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::RwLock;

/// The SigV4 signing name of the SageMaker runtime.
const SIGNING_NAME: &str = "sagemaker";
/// Credentials are fetched again this long before they expire (the SDK's lazy cache default).
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(10);
/// What the SDK sends as its user agent, so logs on the AWS side tell the caller.
const USER_AGENT: &str = concat!("sagebridge/", env!("CARGO_PKG_VERSION"), " (direct invoke)");

/// InvokeEndpoint's optional headers (lowercase, as `HeaderName::from_static` wants them).
const CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";
const TARGET_MODEL: &str = "x-amzn-sagemaker-target-model";
const TARGET_VARIANT: &str = "x-amzn-sagemaker-target-variant";
const INFERENCE_COMPONENT: &str = "x-amzn-sagemaker-inference-component";

/// The error of one direct invocation: the SDK's type, so one mapping serves both paths.
pub type InvokeFailure = SdkError<InvokeEndpointError, HttpResponse>;

/// What one InvokeEndpoint sends besides its body.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub endpoint_name: &'a str,
    pub content_type: &'a str,
    pub accept: &'a str,
    pub inference_component: Option<&'a str>,
    pub target_variant: Option<&'a str>,
    pub target_model: Option<&'a str>,
    pub custom_attributes: Option<&'a str>,
}

/// The container's answer.
#[derive(Debug)]
pub struct Answer {
    pub body: Bytes,
    pub content_type: Option<String>,
}

/// A signed, pooled InvokeEndpoint client for one AWS configuration.
pub struct DirectInvoke {
    http: Pool,
    /// `scheme://host[:port]` of the runtime, without a trailing slash.
    base: String,
    region: String,
    credentials: CredentialsCache,
    time: SharedTimeSource,
    retry: RetryConfig,
    attempt_timeout: Option<Duration>,
}

impl std::fmt::Debug for DirectInvoke {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectInvoke")
            .field("base", &self.base)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl DirectInvoke {
    /// A client for the runtime of `sdk`, at `endpoint_override` when set (the same URL the
    /// SDK client of the slot uses), else where the SDK's endpoint rules put it.
    pub async fn new(sdk: &SdkConfig, endpoint_override: Option<&str>) -> Result<Self, String> {
        let region = sdk
            .region()
            .map(|r| r.as_ref().to_owned())
            .ok_or_else(|| "no AWS region is configured".to_owned())?;
        let base = match endpoint_override.or(sdk.endpoint_url()) {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let params = Params::builder()
                    .region(region.clone())
                    .use_fips(sdk.use_fips().unwrap_or(false))
                    .use_dual_stack(sdk.use_dual_stack().unwrap_or(false))
                    .build()
                    .map_err(|e| format!("cannot resolve the SageMaker runtime endpoint: {e}"))?;
                let endpoint = DefaultResolver::new()
                    .resolve_endpoint(&params)
                    .await
                    .map_err(|e| format!("cannot resolve the SageMaker runtime endpoint: {e}"))?;
                endpoint.url().trim_end_matches('/').to_owned()
            }
        };
        let provider = sdk
            .credentials_provider()
            .ok_or_else(|| "no AWS credentials provider is configured".to_owned())?;
        let time = sdk
            .time_source()
            .unwrap_or_else(|| SharedTimeSource::new(SystemTimeSource::new()));
        let timeouts = sdk.timeout_config();
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_nodelay(true);
        connector.set_connect_timeout(timeouts.and_then(|t| t.connect_timeout()));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Pool::new(https, &base)?;
        Ok(Self {
            http,
            base,
            region,
            credentials: CredentialsCache::new(provider, time.clone()),
            time,
            retry: sdk
                .retry_config()
                .cloned()
                .unwrap_or_else(RetryConfig::standard),
            attempt_timeout: timeouts.and_then(|t| t.operation_attempt_timeout()),
        })
    }

    /// InvokeEndpoint, retried as the SDK's standard mode retries it.
    pub async fn invoke(&self, call: Call<'_>, body: Bytes) -> Result<Answer, InvokeFailure> {
        let attempts = self.retry.max_attempts().max(1);
        let mut attempt = 1;
        loop {
            let result = match self.attempt_timeout {
                Some(limit) => {
                    match tokio::time::timeout(limit, self.attempt(&call, &body)).await {
                        Ok(r) => r,
                        Err(_) => Err(SdkError::timeout_error(format!(
                            "the attempt took longer than {limit:?}"
                        ))),
                    }
                }
                None => self.attempt(&call, &body).await,
            };
            match result {
                Err(e) if attempt < attempts && retryable(&e) => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The standard mode's wait before attempt `attempt + 1`: full jitter on an exponential
    /// backoff, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.retry.initial_backoff().as_secs_f64() * 2f64.powi(attempt as i32 - 1);
        let capped = base.min(self.retry.max_backoff().as_secs_f64());
        Duration::from_secs_f64(capped * fastrand::f64())
    }

    async fn attempt(&self, call: &Call<'_>, body: &Bytes) -> Result<Answer, InvokeFailure> {
        let request = self.signed_request(call, body).await?;
        let (response, connection) = self.http.send(request).await?;
        let (parts, incoming) = response.into_parts();
        let body = incoming
            .collect()
            .await
            .map_err(|e| {
                SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::other(
                    format!("the answer broke off: {e}"),
                ))))
            })?
            .to_bytes();
        // Read to its end, the answer leaves the connection free for the next request.
        self.http.put(connection);
        if parts.status.is_success() {
            let content_type = parts
                .headers
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            return Ok(Answer { body, content_type });
        }
        let error_type = parts
            .headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Err(service_error(parts.status, error_type.as_deref(), body))
    }

    async fn signed_request(
        &self,
        call: &Call<'_>,
        body: &Bytes,
    ) -> Result<Request<Full<Bytes>>, InvokeFailure> {
        let credentials = self.credentials.get().await?;
        let operation = format!(
            "/endpoints/{}/invocations",
            path_segment(call.endpoint_name)
        );
        // `base` ends with the runtime URL's path, if it has one.
        let uri = format!("{}{operation}", self.base);
        let path = format!("{}{operation}", self.http.path_prefix);
        // The connection is the runtime's: the request line carries the path (origin form),
        // `Host` the authority; the signer signs the whole URL.
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(hyper::header::HOST, self.http.host.clone())
            .header(hyper::header::CONTENT_TYPE, call.content_type)
            .header(hyper::header::ACCEPT, call.accept)
            .header(
                hyper::header::USER_AGENT,
                HeaderValue::from_static(USER_AGENT),
            );
        for (name, value) in [
            (CUSTOM_ATTRIBUTES, call.custom_attributes),
            (TARGET_MODEL, call.target_model),
            (TARGET_VARIANT, call.target_variant),
            (INFERENCE_COMPONENT, call.inference_component),
        ] {
            if let Some(value) = value {
                builder = builder.header(HeaderName::from_static(name), value);
            }
        }
        let mut request = builder
            .body(Full::new(body.clone()))
            .map_err(|e| SdkError::construction_failure(format!("invalid request: {e}")))?;
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_NAME)
            .time(self.time.now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| SdkError::construction_failure(format!("cannot sign: {e}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            uri.as_str(),
            request
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
            SignableBody::Bytes(body),
        )
        .map_err(|e| SdkError::construction_failure(format!("cannot sign: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| SdkError::construction_failure(format!("cannot sign: {e}")))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

/// The TLS client config of the SDK's default HTTPS client: rustls on aws-lc-rs with the
/// platform's roots.
fn tls_config() -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A certificate the platform store holds but rustls cannot read is skipped, as the
        // SDK's client skips it.
        let _ = roots.add(cert);
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Percent-encodes an endpoint name as one path segment (names are `[a-zA-Z0-9-]` by
/// SageMaker's rules; anything else is encoded, never interpreted as a path).
fn path_segment(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.into()
}

/// How long a connection may wait in the pool: one idle longer is closed, not used (the
/// timeout hyper_util's pooled client had here).
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Idle connections kept at most; more are closed as their requests end.
const POOL_MAX_IDLE: usize = 512;

/// Keep-alive HTTP/1.1 connections to the runtime, one request at a time each, over hyper's
/// connection API. It replaced hyper_util's pooled client, whose per-request bookkeeping (a
/// SipHash-keyed map of pools, a connect future built and dropped on every checkout, the
/// origin-form rewrite and `Host`) cost as many instructions as the HTTP exchange: this path
/// talks to one authority, so its pool is a stack.
struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// `scheme://authority` of the runtime, what the connector dials.
    target: Uri,
    /// The `Host` of every request (the target's authority).
    host: HeaderValue,
    /// The path of the runtime URL, without a trailing slash (usually empty): operation paths
    /// go under it, as the SDK puts them under an endpoint URL's path.
    path_prefix: String,
    /// Newest last; a connection is taken from the end, and expires from the front.
    idle: std::sync::Mutex<Vec<(SendRequest<Full<Bytes>>, std::time::Instant)>>,
}

impl Pool {
    fn new(connector: HttpsConnector<HttpConnector>, base: &str) -> Result<Self, String> {
        let target: Uri = base
            .parse()
            .map_err(|e| format!("invalid SageMaker runtime URL `{base}`: {e}"))?;
        let authority = target
            .authority()
            .ok_or_else(|| format!("the SageMaker runtime URL `{base}` has no host"))?;
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|e| format!("invalid SageMaker runtime host `{authority}`: {e}"))?;
        let path_prefix = target.path().trim_end_matches('/').to_owned();
        Ok(Self {
            connector,
            target,
            host,
            path_prefix,
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn idle(
        &self,
    ) -> std::sync::MutexGuard<'_, Vec<(SendRequest<Full<Bytes>>, std::time::Instant)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `req` on an idle connection, or a new one. A request an idle connection did not
    /// take (the runtime closed it while it waited) goes to the next one: it was never sent.
    /// Returns the connection with the answer, for [`Pool::put`] once the answer is read.
    async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<
        (
            hyper::Response<hyper::body::Incoming>,
            SendRequest<Full<Bytes>>,
        ),
        InvokeFailure,
    > {
        loop {
            let taken = self.idle().pop();
            let Some((mut sender, since)) = taken else {
                break;
            };
            if since.elapsed() > POOL_IDLE || sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(send_failure(e.into_error())),
                },
            }
        }
        // Boxed: a new connection (TCP, TLS, the handshake) is the rare path, and its future
        // would otherwise make every request's future larger (`request_futures_stay_small`).
        Box::pin(async move {
            let mut sender = self.connect().await?;
            let response = sender.send_request(req).await.map_err(send_failure)?;
            Ok((response, sender))
        })
        .await
    }

    /// Puts a connection whose answer was read back for the next request.
    fn put(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let now = std::time::Instant::now();
        let mut idle = self.idle();
        let expired = idle
            .iter()
            .take_while(|(_, since)| now.duration_since(*since) > POOL_IDLE)
            .count();
        idle.drain(..expired);
        if idle.len() < POOL_MAX_IDLE {
            idle.push((sender, now));
        }
    }

    /// A new connection (TCP, TLS for `https`), its I/O driven by a task of its own that ends
    /// when the connection closes or its sender is dropped.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, InvokeFailure> {
        use tower::ServiceExt;
        let io = self
            .connector
            .clone()
            .oneshot(self.target.clone())
            .await
            .map_err(|e| SdkError::dispatch_failure(ConnectorError::io(e)))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| SdkError::dispatch_failure(ConnectorError::io(Box::new(e))))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "SageMaker runtime connection closed with an error");
            }
        });
        Ok(sender)
    }
}

fn send_failure(e: hyper::Error) -> InvokeFailure {
    SdkError::dispatch_failure(ConnectorError::other(Box::new(e), None))
}

/// The SDK's reading of a REST-JSON error answer: the code from `X-Amzn-ErrorType` (before any
/// `:`), else the body's `__type` or `code` (after any `#`); the message from `message` or
/// `Message`; a `ModelError` with its own fields.
fn service_error(status: StatusCode, error_type: Option<&str>, body: Bytes) -> InvokeFailure {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let code = error_type
        .map(|t| t.split(':').next().unwrap_or(t).trim().to_owned())
        .or_else(|| text("__type").or_else(|| text("code")))
        .map(|c| c.rsplit('#').next().unwrap_or(&c).to_owned());
    let message = text("message").or_else(|| text("Message"));
    let mut meta = ErrorMetadata::builder();
    if let Some(c) = &code {
        meta = meta.code(c);
    }
    if let Some(m) = &message {
        meta = meta.message(m);
    }
    let meta = meta.build();
    let err = if code.as_deref() == Some("ModelError") {
        InvokeEndpointError::ModelError(
            ModelError::builder()
                .set_message(message)
                .set_original_status_code(
                    json.get("OriginalStatusCode")
                        .and_then(|v| v.as_i64())
                        .and_then(|v| i32::try_from(v).ok()),
                )
                .set_original_message(text("OriginalMessage"))
                .set_log_stream_arn(text("LogStreamArn"))
                .meta(meta)
                .build(),
        )
    } else {
        InvokeEndpointError::generic(meta)
    };
    let raw = HttpResponse::new(
        status.as_u16().try_into().expect("a valid status"),
        SdkBody::from(body),
    );
    SdkError::service_error(err, raw)
}

/// What the SDK's standard retry mode retries: throttling, transient statuses and codes, and
/// failures to get an answer at all (connection, timeout). A container's `ModelError` never.
fn retryable(e: &InvokeFailure) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(ctx) => {
            use aws_smithy_types::error::metadata::ProvideErrorMetadata;
            let code = ctx.err().code().unwrap_or_default();
            const THROTTLING: &[&str] = &[
                "Throttling",
                "ThrottlingException",
                "ThrottledException",
                "RequestThrottledException",
                "TooManyRequestsException",
                "ProvisionedThroughputExceededException",
                "TransactionInProgressException",
                "RequestLimitExceeded",
                "BandwidthLimitExceeded",
                "LimitExceededException",
                "RequestThrottled",
                "SlowDown",
                "PriorRequestNotComplete",
                "EC2ThrottledException",
            ];
            const TRANSIENT: &[&str] = &["RequestTimeout", "RequestTimeoutException"];
            if code == "ModelError" {
                return false;
            }
            THROTTLING.contains(&code)
                || TRANSIENT.contains(&code)
                || matches!(ctx.raw().status().as_u16(), 500 | 502 | 503 | 504)
        }
        _ => false,
    }
}

/// The credentials of one provider, fetched once and again shortly before they expire; one
/// fetch at a time (the requests that find them stale wait for it together).
struct CredentialsCache {
    provider: SharedCredentialsProvider,
    time: SharedTimeSource,
    current: RwLock<Option<(Credentials, SystemTime)>>,
}

impl CredentialsCache {
    fn new(provider: SharedCredentialsProvider, time: SharedTimeSource) -> Self {
        Self {
            provider,
            time,
            current: RwLock::new(None),
        }
    }

    /// Whether credentials fetched at `fetched` are still good at `now`: until
    /// [`REFRESH_BEFORE_EXPIRY`] before their expiry, or half their lifetime for credentials
    /// that live shorter than twice that.
    fn fresh(c: &Credentials, fetched: SystemTime, now: SystemTime) -> bool {
        let Some(expiry) = c.expiry() else {
            return true;
        };
        let lifetime = expiry.duration_since(fetched).unwrap_or_default();
        let margin = REFRESH_BEFORE_EXPIRY.min(lifetime / 2);
        now + margin < expiry
    }

    async fn get(&self) -> Result<Credentials, InvokeFailure> {
        let now = self.time.now();
        if let Some((c, fetched)) = &*self.current.read().await {
            if Self::fresh(c, *fetched, now) {
                return Ok(c.clone());
            }
        }
        let mut current = self.current.write().await;
        let now = self.time.now();
        if let Some((c, fetched)) = &*current {
            if Self::fresh(c, *fetched, now) {
                return Ok(c.clone());
            }
        }
        let fresh = self.provider.provide_credentials().await.map_err(|e| {
            SdkError::construction_failure(Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })?;
        *current = Some((fresh.clone(), now));
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An HTTP/1.1 server on 127.0.0.1 that answers every request `{}` and, when
    /// `close_after_answer`, closes the connection after each answer without saying so (as a
    /// runtime's idle timeout does). Returns its URL and its count of accepted connections.
    async fn answering_server(close_after_answer: bool) -> (String, Arc<Served>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(Served::default());
        let count = Arc::clone(&served);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                count
                    .accepted
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let lines = Arc::clone(&count);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // One request: its head, then `content-length` bytes of body.
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let line = head.lines().next().unwrap_or_default().to_owned();
                        lines.request_lines.lock().unwrap().push(line);
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < end + 4 + length {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.drain(..end + 4 + length);
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                      content-length: 2\r\n\r\n{}";
                        if socket.write_all(answer.as_bytes()).await.is_err() || close_after_answer
                        {
                            return;
                        }
                    }
                });
            }
        });
        (url, served)
    }

    /// What [`answering_server`] saw.
    #[derive(Default)]
    struct Served {
        accepted: std::sync::atomic::AtomicUsize,
        /// Lowercased.
        request_lines: std::sync::Mutex<Vec<String>>,
    }

    async fn client(url: &str) -> DirectInvoke {
        let sdk = SdkConfig::builder()
            .region(aws_types::region::Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            )))
            .build();
        DirectInvoke::new(&sdk, Some(url)).await.unwrap()
    }

    fn call() -> Call<'static> {
        Call {
            endpoint_name: "ep",
            content_type: "application/json",
            accept: "application/json",
            inference_component: None,
            target_variant: None,
            target_model: None,
            custom_attributes: None,
        }
    }

    /// Five invocations one after another, each answered `{}`; returns the connections the
    /// server accepted.
    async fn five_in_a_row(close_after_answer: bool) -> usize {
        let (url, served) = answering_server(close_after_answer).await;
        let direct = client(&url).await;
        for _ in 0..5 {
            let answer = direct
                .invoke(call(), Bytes::from_static(b"{}"))
                .await
                .unwrap();
            assert_eq!(&answer.body[..], b"{}");
        }
        served.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn the_runtime_urls_path_prefixes_the_operation() {
        let (url, served) = answering_server(false).await;
        let direct = client(&format!("{url}/behind/a/proxy/")).await;
        direct
            .invoke(call(), Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(
            served.request_lines.lock().unwrap().as_slice(),
            ["post /behind/a/proxy/endpoints/ep/invocations http/1.1"]
        );
    }

    #[tokio::test]
    async fn one_connection_serves_requests_one_after_another() {
        assert_eq!(five_in_a_row(false).await, 1);
    }

    #[tokio::test]
    async fn connections_the_runtime_closed_are_replaced() {
        // Each answer ended its connection: every request after the first dialled anew.
        assert!(five_in_a_row(true).await >= 5);
    }

    #[test]
    fn a_model_error_keeps_the_containers_status_and_message() {
        let body = Bytes::from_static(
            br#"{"ErrorCode":"CLIENT_ERROR_FROM_MODEL","LogStreamArn":"arn:aws:logs:x","Message":"Received client error (400) from primary","OriginalMessage":"bad input","OriginalStatusCode":400}"#,
        );
        let e = service_error(
            StatusCode::FAILED_DEPENDENCY,
            Some("ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/"),
            body,
        );
        let SdkError::ServiceError(ctx) = &e else {
            panic!("a service error: {e:?}")
        };
        let InvokeEndpointError::ModelError(m) = ctx.err() else {
            panic!("a ModelError: {:?}", ctx.err())
        };
        assert_eq!(m.original_status_code(), Some(400));
        assert_eq!(m.original_message(), Some("bad input"));
        assert_eq!(m.log_stream_arn(), Some("arn:aws:logs:x"));
        assert_eq!(
            m.message(),
            Some("Received client error (400) from primary")
        );
        assert!(!retryable(&e));
    }

    #[test]
    fn codes_come_from_the_header_or_the_body() {
        use aws_smithy_types::error::metadata::ProvideErrorMetadata;
        let from_body = service_error(
            StatusCode::BAD_REQUEST,
            None,
            Bytes::from_static(br#"{"__type":"com.amazon.coral#ValidationError","message":"Endpoint x not found."}"#),
        );
        let SdkError::ServiceError(ctx) = &from_body else {
            panic!()
        };
        assert_eq!(ctx.err().code(), Some("ValidationError"));
        assert_eq!(ctx.err().message(), Some("Endpoint x not found."));
        assert!(!retryable(&from_body));

        let throttled = service_error(
            StatusCode::BAD_REQUEST,
            Some("ThrottlingException:http://internal.amazon.com/"),
            Bytes::from_static(br#"{"message":"Rate exceeded"}"#),
        );
        let SdkError::ServiceError(ctx) = &throttled else {
            panic!()
        };
        assert_eq!(ctx.err().code(), Some("ThrottlingException"));
        assert!(retryable(&throttled));

        let unavailable = service_error(StatusCode::SERVICE_UNAVAILABLE, None, Bytes::new());
        assert!(retryable(&unavailable));
    }

    #[test]
    fn endpoint_names_are_one_path_segment() {
        assert_eq!(path_segment("my-endpoint-1"), "my-endpoint-1");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn short_lived_credentials_are_refreshed_at_half_their_life() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = Credentials::new(
            "AKID",
            "secret",
            None,
            Some(t0 + Duration::from_secs(900)),
            "t",
        );
        assert!(CredentialsCache::fresh(
            &c,
            t0,
            t0 + Duration::from_secs(889)
        ));
        assert!(!CredentialsCache::fresh(
            &c,
            t0,
            t0 + Duration::from_secs(891)
        ));
        let short = Credentials::new(
            "AKID",
            "secret",
            None,
            Some(t0 + Duration::from_secs(8)),
            "t",
        );
        assert!(CredentialsCache::fresh(
            &short,
            t0,
            t0 + Duration::from_secs(3)
        ));
        assert!(!CredentialsCache::fresh(
            &short,
            t0,
            t0 + Duration::from_secs(5)
        ));
        let forever = Credentials::new("AKID", "secret", None, None, "t");
        assert!(CredentialsCache::fresh(
            &forever,
            t0,
            t0 + Duration::from_secs(1 << 30)
        ));
    }
}
