//! AssumeRole credentials with SourceIdentity and ExternalId.
//!
//! aws-config's `AssumeRoleProvider` cannot send SourceIdentity, which OpenMetadata's
//! `assumeRoleSourceIdentity` needs. This provider calls STS AssumeRole itself; it does no
//! caching of its own: the SDK's identity cache (on every client by default) keeps the
//! temporary credentials and calls the provider again shortly before they expire.

use std::time::SystemTime;

use aws_credential_types::provider::{self, error::CredentialsError, future, ProvideCredentials};
use aws_credential_types::Credentials;

use crate::error::classify;

/// Parameters of the AssumeRole call.
#[derive(Debug, Clone)]
pub struct AssumeRoleParams {
    pub role_arn: String,
    pub session_name: String,
    pub source_identity: Option<String>,
    pub external_id: Option<String>,
    /// Seconds; STS defaults to one hour.
    pub duration_seconds: Option<i32>,
}

/// Credentials provider that assumes a role through `aws-sdk-sts` with the base credentials.
#[derive(Debug, Clone)]
pub struct AssumeRoleCredentials {
    sts: aws_sdk_sts::Client,
    params: AssumeRoleParams,
}

impl AssumeRoleCredentials {
    /// `sts` must be built from the *base* config (the credentials that may assume the role).
    pub fn new(sts: aws_sdk_sts::Client, params: AssumeRoleParams) -> Self {
        Self { sts, params }
    }

    async fn assume(&self) -> provider::Result {
        let p = &self.params;
        let out = self
            .sts
            .assume_role()
            .role_arn(&p.role_arn)
            .role_session_name(&p.session_name)
            .set_source_identity(p.source_identity.clone())
            .set_external_id(p.external_id.clone())
            .set_duration_seconds(p.duration_seconds)
            .send()
            .await
            .map_err(|e| CredentialsError::provider_error(classify("sts:AssumeRole", &e)))?;
        let c = out.credentials.ok_or_else(|| {
            CredentialsError::unhandled("STS AssumeRole answered without credentials")
        })?;
        let expiry = SystemTime::try_from(c.expiration).ok();
        tracing::debug!(role = %p.role_arn, session = %p.session_name, "assumed role");
        Ok(Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            expiry,
            "sagebridge-assume-role",
        ))
    }
}

impl ProvideCredentials for AssumeRoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.assume())
    }
}
