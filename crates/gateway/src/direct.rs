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
//! until shortly before they expire, and sends it on a pooled hyper client over the same rustls
//! stack. Retries, backoff, the connect timeout and the attempt timeout follow the slot's
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
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
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
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
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
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
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
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| SdkError::dispatch_failure(connector_error(e)))?;
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
        let uri = format!(
            "{}/endpoints/{}/invocations",
            self.base,
            path_segment(call.endpoint_name)
        );
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(&uri)
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

fn connector_error(e: hyper_util::client::legacy::Error) -> ConnectorError {
    if e.is_connect() {
        ConnectorError::io(Box::new(e))
    } else {
        ConnectorError::other(Box::new(e), None)
    }
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
