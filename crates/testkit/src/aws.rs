//! Official AWS SDK clients pointed at a test peer (moto or [`crate::fake_sagemaker`]).
//!
//! Everything here is synchronous to build: static credentials, a fixed region and an
//! `endpoint_url`, so no credential chain or IMDS lookups slow tests down.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

/// moto's default account (requests without `x-moto-account-id` land here).
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
/// Region used by tests unless they say otherwise.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The dummy access key id moto accepts before IAM enforcement is on.
pub const TEST_ACCESS_KEY_ID: &str = "testing";
/// The dummy secret access key moto accepts before IAM enforcement is on.
pub const TEST_SECRET_ACCESS_KEY: &str = "testing";
/// The header that makes moto serve a request from another account's state.
pub const MOTO_ACCOUNT_HEADER: &str = "x-moto-account-id";

/// How test clients are built; `Default` is moto's dummy keys in `us-east-1` with standard
/// retries (3 attempts).
#[derive(Debug, Clone)]
pub struct TestClientOptions {
    /// Region of the client (and of the ARNs the peer hands out).
    pub region: String,
    /// Access key id; an IAM user's key once moto enforces IAM.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Optional session token (temporary credentials).
    pub session_token: Option<String>,
    /// When set, every request carries `x-moto-account-id: <account>`, so moto serves it from
    /// that account's state.
    pub account: Option<String>,
    /// Attempts per call including the first; 1 disables retries (tests that expect failures
    /// should disable them: the SDK backs off on 500s and throttling).
    pub max_attempts: u32,
    /// Per-attempt timeout, so a hung peer fails a test instead of hanging it.
    pub attempt_timeout: Duration,
}

impl Default for TestClientOptions {
    fn default() -> Self {
        Self {
            region: DEFAULT_REGION.to_owned(),
            access_key_id: TEST_ACCESS_KEY_ID.to_owned(),
            secret_access_key: TEST_SECRET_ACCESS_KEY.to_owned(),
            session_token: None,
            account: None,
            max_attempts: 3,
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

impl TestClientOptions {
    /// Default options in another moto account.
    pub fn in_account(account: &str) -> Self {
        Self {
            account: Some(account.to_owned()),
            ..Self::default()
        }
    }

    /// The same options without retries.
    pub fn without_retries(mut self) -> Self {
        self.max_attempts = 1;
        self
    }
}

/// Shared SDK config for `endpoint` in `region`: static credentials `testing`/`testing`,
/// latest behavior version, standard retries.
pub fn test_sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    sdk_config_with(
        endpoint,
        &TestClientOptions {
            region: region.to_owned(),
            ..TestClientOptions::default()
        },
    )
}

/// Shared SDK config from explicit options. (The `account` option is applied by the client
/// builders below, since an `SdkConfig` carries no interceptors.)
pub fn sdk_config_with(endpoint: &str, options: &TestClientOptions) -> SdkConfig {
    let credentials = Credentials::new(
        options.access_key_id.clone(),
        options.secret_access_key.clone(),
        options.session_token.clone(),
        None,
        "sagebridge-testkit",
    );
    let retry = if options.max_attempts <= 1 {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard()
            .with_max_attempts(options.max_attempts)
            .with_initial_backoff(Duration::from_millis(20))
            .with_max_backoff(Duration::from_millis(500))
    };
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(options.region.clone()))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint)
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(options.attempt_timeout)
                .build(),
        )
        .build()
}

/// SageMaker control-plane client for `endpoint` in `us-east-1`; with `account`, every request
/// carries `x-moto-account-id`.
pub fn sagemaker_client(endpoint: &str, account: Option<&str>) -> aws_sdk_sagemaker::Client {
    let options = TestClientOptions {
        account: account.map(str::to_owned),
        ..TestClientOptions::default()
    };
    sagemaker_client_with(endpoint, &options)
}

/// SageMaker control-plane client from explicit options.
pub fn sagemaker_client_with(
    endpoint: &str,
    options: &TestClientOptions,
) -> aws_sdk_sagemaker::Client {
    let mut config = aws_sdk_sagemaker::config::Builder::from(&sdk_config_with(endpoint, options));
    if let Some(account) = &options.account {
        config = config.interceptor(MotoAccount::new(account));
    }
    aws_sdk_sagemaker::Client::from_conf(config.build())
}

/// STS client for `endpoint` in `us-east-1`; with `account`, every request carries
/// `x-moto-account-id`.
pub fn sts_client(endpoint: &str, account: Option<&str>) -> aws_sdk_sts::Client {
    let options = TestClientOptions {
        account: account.map(str::to_owned),
        ..TestClientOptions::default()
    };
    sts_client_with(endpoint, &options)
}

/// STS client from explicit options.
pub fn sts_client_with(endpoint: &str, options: &TestClientOptions) -> aws_sdk_sts::Client {
    let mut config = aws_sdk_sts::config::Builder::from(&sdk_config_with(endpoint, options));
    if let Some(account) = &options.account {
        config = config.interceptor(MotoAccount::new(account));
    }
    aws_sdk_sts::Client::from_conf(config.build())
}

/// Interceptor that adds `x-moto-account-id: <account>` to every request of the client it is
/// registered on (`config::Builder::interceptor`), so one client talks to one moto account.
#[derive(Debug, Clone)]
pub struct MotoAccount {
    account: String,
}

impl MotoAccount {
    /// An interceptor for `account` (12 digits).
    pub fn new(account: &str) -> Self {
        Self {
            account: account.to_owned(),
        }
    }
}

impl Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "MotoAccount"
    }

    // Before signing, so the header is part of what moto sees on every attempt; moto does not
    // verify signatures against it.
    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert(MOTO_ACCOUNT_HEADER, self.account.clone());
        Ok(())
    }
}
