//! Building AWS SDK clients from an [`AwsConfig`].

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_async::time::SharedTimeSource;

use crate::config::AwsConfig;
use crate::credentials::{AssumeRoleCredentials, AssumeRoleParams};
use crate::error::AwsError;

/// How clients behave, apart from what the user configures.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Retry policy.
    pub retry: RetryConfig,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Whole-operation timeout (all attempts).
    pub operation_timeout: Option<Duration>,
    /// Timeout of one attempt (a half-open socket ends here and the attempt is retried).
    pub attempt_timeout: Option<Duration>,
    /// A clock to use instead of the system clock (tests of credential refresh).
    pub time_source: Option<SharedTimeSource>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            retry: RetryConfig::standard().with_max_attempts(3),
            connect_timeout: Duration::from_secs(5),
            operation_timeout: None,
            attempt_timeout: None,
            time_source: None,
        }
    }
}

impl ClientOptions {
    /// No retries: for checks that must report the first failure as it is.
    pub fn no_retries() -> Self {
        Self {
            retry: RetryConfig::disabled(),
            ..Self::default()
        }
    }

    /// Standard retry (exponential backoff with jitter) with `max_attempts`, for bulk work
    /// against rate-limited APIs. Not the SDK's adaptive mode: its single client-wide rate
    /// slows every API when one is throttled; ingestion paces each API itself instead.
    pub fn bulk(max_attempts: u32) -> Self {
        Self {
            retry: RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(50)),
            ..Self::default()
        }
    }
}

/// The three SDK clients sagebridge uses, sharing one configuration (credentials, region,
/// endpoint override, retry policy, identity cache).
#[derive(Debug, Clone)]
pub struct Clients {
    pub sagemaker: aws_sdk_sagemaker::Client,
    pub runtime: aws_sdk_sagemakerruntime::Client,
    pub sts: aws_sdk_sts::Client,
    pub sdk_config: SdkConfig,
}

impl Clients {
    /// The clients of `config`, each at its own endpoint when the config names one
    /// (`runtimeEndPointURL`, `stsEndPointURL`), else `endPointURL`, else AWS.
    pub async fn new(config: &AwsConfig, options: &ClientOptions) -> Result<Self, AwsError> {
        let sdk_config = sdk_config(config, options).await?;
        Ok(Self {
            sagemaker: aws_sdk_sagemaker::Client::new(&sdk_config),
            runtime: runtime_client(&sdk_config, config),
            sts: sts_client(&sdk_config, config),
            sdk_config,
        })
    }

    pub fn from_sdk_config(sdk_config: SdkConfig) -> Self {
        Self {
            sagemaker: aws_sdk_sagemaker::Client::new(&sdk_config),
            runtime: aws_sdk_sagemakerruntime::Client::new(&sdk_config),
            sts: aws_sdk_sts::Client::new(&sdk_config),
            sdk_config,
        }
    }
}

/// The SageMaker runtime endpoint of `config`: `runtimeEndPointURL`, else the SDK's
/// `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`; `None` leaves the shared `endPointURL` (or AWS).
pub fn runtime_endpoint(config: &AwsConfig) -> Option<String> {
    config
        .runtime_end_point_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME").ok())
        .filter(|u| !u.trim().is_empty())
}

/// The STS endpoint of `config`: `stsEndPointURL`, else the SDK's `AWS_ENDPOINT_URL_STS`.
pub fn sts_endpoint(config: &AwsConfig) -> Option<String> {
    config
        .sts_end_point_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_STS").ok())
        .filter(|u| !u.trim().is_empty())
}

/// A SageMaker runtime client at the runtime endpoint of `config` (see [`runtime_endpoint`]).
pub fn runtime_client(sdk: &SdkConfig, config: &AwsConfig) -> aws_sdk_sagemakerruntime::Client {
    let mut builder = aws_sdk_sagemakerruntime::config::Builder::from(sdk);
    if let Some(url) = runtime_endpoint(config) {
        builder = builder.endpoint_url(url.trim_end_matches('/'));
    }
    aws_sdk_sagemakerruntime::Client::from_conf(builder.build())
}

/// An STS client at the STS endpoint of `config` (see [`sts_endpoint`]).
pub fn sts_client(sdk: &SdkConfig, config: &AwsConfig) -> aws_sdk_sts::Client {
    let mut builder = aws_sdk_sts::config::Builder::from(sdk);
    if let Some(url) = sts_endpoint(config) {
        builder = builder.endpoint_url(url.trim_end_matches('/'));
    }
    aws_sdk_sts::Client::from_conf(builder.build())
}

/// Whether `url` names a loopback host (`localhost`, `127.x`, `[::1]`).
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The endpoints of `config` that would carry signed requests over plain `http://` to a host
/// that is not loopback (a signature is not a secret, but the request and answer are readable
/// on the way).
pub fn plain_http_endpoints(config: &AwsConfig) -> Vec<String> {
    [
        config.end_point_url.clone(),
        runtime_endpoint(config),
        sts_endpoint(config),
    ]
    .into_iter()
    .flatten()
    .filter(|u| u.starts_with("http://") && !is_loopback(u))
    .collect()
}

/// Resolves credentials the way the user asked: static keys (with optional session token),
/// else a named profile, else the default chain; then AssumeRole on top when `assumeRoleArn`
/// is set. `endPointURL` applies to every client built from the result; AssumeRole goes to
/// `stsEndPointURL` when set, and [`runtime_client`] / [`sts_client`] build clients at their own
/// endpoints.
///
/// The config must have passed validation (region present).
pub async fn sdk_config(
    config: &AwsConfig,
    options: &ClientOptions,
) -> Result<SdkConfig, AwsError> {
    let region = config.aws_region.clone().ok_or_else(|| AwsError::Other {
        action: "configure".into(),
        code: None,
        status: None,
        message: "awsRegion is required".into(),
    })?;
    let mut timeouts = TimeoutConfig::builder().connect_timeout(options.connect_timeout);
    if let Some(t) = options.operation_timeout {
        timeouts = timeouts.operation_timeout(t);
    }
    if let Some(t) = options.attempt_timeout {
        timeouts = timeouts.operation_attempt_timeout(t);
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .retry_config(options.retry.clone())
        .timeout_config(timeouts.build());
    if let Some(url) = &config.end_point_url {
        loader = loader.endpoint_url(url.trim_end_matches('/'));
    }
    if let Some(ts) = &options.time_source {
        loader = loader.time_source(ts.clone());
    }
    match (&config.aws_access_key_id, &config.aws_secret_access_key) {
        (Some(key), Some(secret)) => {
            let creds = Credentials::new(
                key,
                secret.expose(),
                config
                    .aws_session_token
                    .as_ref()
                    .map(|t| t.expose().to_owned()),
                None,
                "sagebridge-static",
            );
            loader = loader.credentials_provider(creds);
        }
        _ => {
            if let Some(profile) = &config.profile_name {
                loader = loader.profile_name(profile);
            }
        }
    }
    for url in plain_http_endpoints(config) {
        tracing::warn!(endpoint = %url, "AWS requests go over plain http:// to a host that is not loopback; use https://");
    }
    let base = loader.load().await;
    let Some(role_arn) = &config.assume_role_arn else {
        return Ok(base);
    };
    let provider = AssumeRoleCredentials::new(
        sts_client(&base, config),
        AssumeRoleParams {
            role_arn: role_arn.clone(),
            session_name: config.assume_role_session_name.clone(),
            source_identity: config.assume_role_source_identity.clone(),
            external_id: config.assume_role_external_id.clone(),
            duration_seconds: config.assume_role_duration_seconds,
        },
    );
    Ok(base
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build())
}
