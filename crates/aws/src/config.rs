//! `AwsConfig`: OpenMetadata's `awsCredentials` object, key for key, plus our additions.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::yaml::{Problems, Validate};

/// The session name OpenMetadata uses when none is given.
pub const DEFAULT_SESSION_NAME: &str = "OpenMetadataSession";

/// AWS access as configured in a workflow or gateway YAML file. The YAML keys are exactly those
/// of OpenMetadata's `awsCredentials` schema, so an OpenMetadata workflow file loads unchanged.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_secret_access_key: Option<Secret>,
    /// The only required field. Optional here so that a missing region is reported by the
    /// validation pass together with every other problem, not as the first serde error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_session_token: Option<Secret>,
    /// Overrides the SageMaker, SageMaker runtime and STS endpoints (moto, VPC endpoints).
    #[serde(
        default,
        rename = "endPointURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub end_point_url: Option<String>,
    /// Ours: the SageMaker runtime endpoint (InvokeEndpoint), when it differs from
    /// `endPointURL` (a runtime VPC endpoint); else `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`, else
    /// `endPointURL`.
    #[serde(
        default,
        rename = "runtimeEndPointURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_end_point_url: Option<String>,
    /// Ours: the STS endpoint (GetCallerIdentity, AssumeRole), e.g. a regional STS VPC
    /// endpoint; else `AWS_ENDPOINT_URL_STS`, else `endPointURL`.
    #[serde(
        default,
        rename = "stsEndPointURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub sts_end_point_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_arn: Option<String>,
    #[serde(default = "default_session_name")]
    pub assume_role_session_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_source_identity: Option<String>,
    /// Not in OpenMetadata's schema: the external ID a third-party role's trust policy asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_external_id: Option<String>,
    /// Ours: the lifetime of assumed-role credentials in seconds (STS's `DurationSeconds`;
    /// AWS accepts 900 up to the role's maximum session, 43200 at most; STS's default is one
    /// hour). The SDK's identity cache assumes the role again shortly before they expire.
    #[serde(
        default,
        rename = "assumeRoleDurationSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub assume_role_duration_seconds: Option<i32>,
    /// OpenMetadata 2.0 clients send `enabled: false`; accepted and kept, it changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

fn default_session_name() -> String {
    DEFAULT_SESSION_NAME.to_owned()
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// Whether `s` looks like an AWS region name (`us-east-1`, `us-gov-west-1`, `cn-north-1`).
pub fn is_region(s: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"^[a-z]{2}(-(gov|iso|isob|isof|isoe))?-[a-z]+-\d{1,2}$").is_match(s)
}

/// Why `arn` is not a well-formed IAM role ARN, if it is not.
pub fn role_arn_problem(arn: &str) -> Option<String> {
    static R: OnceLock<Regex> = OnceLock::new();
    if arn.len() <= 2048
        && re(
            &R,
            r"^arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$",
        )
        .is_match(arn)
    {
        return None;
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let reason = if parts.len() < 6 || parts[0] != "arn" {
        "an ARN has the form arn:<partition>:iam::<12-digit account id>:role/<role name>".to_owned()
    } else if !matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov") {
        format!(
            "unknown partition `{}` (aws, aws-cn or aws-us-gov)",
            parts[1]
        )
    } else if parts[2] != "iam" {
        format!("service is `{}`, a role ARN's is `iam`", parts[2])
    } else if !parts[3].is_empty() {
        "IAM ARNs have no region: the fourth field must be empty".to_owned()
    } else if parts[4].len() != 12 || !parts[4].bytes().all(|b| b.is_ascii_digit()) {
        format!("account id `{}` is not 12 digits", parts[4])
    } else if !parts[5].starts_with("role/") {
        format!(
            "resource `{}` is not a role (expected role/<name>)",
            parts[5]
        )
    } else {
        "the role name has characters IAM does not allow".to_owned()
    };
    Some(reason)
}

impl AwsConfig {
    /// The configured region, after validation guaranteed it is there.
    pub fn region(&self) -> &str {
        self.aws_region.as_deref().unwrap_or_default()
    }

    /// How credentials will be found, in words, for logs and `test-connection` (no secrets).
    pub fn credential_source(&self) -> String {
        let base = if self.aws_access_key_id.is_some() {
            if self.aws_session_token.is_some() {
                "static access key with session token".to_owned()
            } else {
                "static access key".to_owned()
            }
        } else if let Some(p) = &self.profile_name {
            format!("profile `{p}`")
        } else {
            "default credential chain".to_owned()
        };
        match &self.assume_role_arn {
            Some(arn) => format!("{base}, then AssumeRole {arn}"),
            None => base,
        }
    }

    /// The secrets in this config, for scrubbing peer messages.
    pub fn secrets(&self) -> Vec<&Secret> {
        self.aws_secret_access_key
            .iter()
            .chain(self.aws_session_token.iter())
            .collect()
    }
}

impl Validate for AwsConfig {
    fn validate(&self, p: &mut Problems) {
        static SESSION: OnceLock<Regex> = OnceLock::new();
        static EXTERNAL: OnceLock<Regex> = OnceLock::new();
        match self.aws_region.as_deref() {
            None | Some("") => p.add("awsRegion", "awsRegion is required (for example us-east-1)"),
            Some(r) if !is_region(r) => p.add(
                "awsRegion",
                format!("`{r}` is not an AWS region name (for example us-east-1)"),
            ),
            _ => {}
        }
        let has_key = self
            .aws_access_key_id
            .as_deref()
            .is_some_and(|s| !s.is_empty());
        let has_secret = self
            .aws_secret_access_key
            .as_ref()
            .is_some_and(|s| !s.is_empty());
        if has_key && !has_secret {
            p.add(
                "awsSecretAccessKey",
                "awsAccessKeyId is set but awsSecretAccessKey is not",
            );
        }
        if has_secret && !has_key {
            p.add(
                "awsAccessKeyId",
                "awsSecretAccessKey is set but awsAccessKeyId is not",
            );
        }
        if self.aws_session_token.is_some() && !has_key {
            p.add(
                "awsSessionToken",
                "a session token needs awsAccessKeyId and awsSecretAccessKey",
            );
        }
        for (field, url) in [
            ("endPointURL", &self.end_point_url),
            ("runtimeEndPointURL", &self.runtime_end_point_url),
            ("stsEndPointURL", &self.sts_end_point_url),
        ] {
            let Some(url) = url else { continue };
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.split("://").nth(1).is_some_and(|h| !h.is_empty());
            if !ok {
                p.add(field, format!("`{url}` is not an http:// or https:// URL"));
            }
        }
        if let Some(arn) = &self.assume_role_arn {
            if let Some(reason) = role_arn_problem(arn) {
                p.add("assumeRoleArn", format!("invalid ARN `{arn}`: {reason}"));
            }
        }
        if !re(&SESSION, r"^[A-Za-z0-9_+=,.@-]{2,64}$").is_match(&self.assume_role_session_name) {
            p.add(
                "assumeRoleSessionName",
                "must be 2 to 64 characters of letters, digits and +=,.@_-",
            );
        }
        if let Some(si) = &self.assume_role_source_identity {
            if !re(&SESSION, r"^[A-Za-z0-9_+=,.@-]{2,64}$").is_match(si) {
                p.add(
                    "assumeRoleSourceIdentity",
                    "must be 2 to 64 characters of letters, digits and +=,.@_-",
                );
            }
        }
        if let Some(x) = &self.assume_role_external_id {
            if !re(&EXTERNAL, r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$").is_match(x) {
                p.add(
                    "assumeRoleExternalId",
                    "must be 2 to 1224 characters of letters, digits and +=,.@:/_-",
                );
            }
        }
        if let Some(d) = self.assume_role_duration_seconds {
            // Below 900 only emulators (moto) accept it; AWS's STS answers a ValidationError,
            // which test-connection and the run report name.
            if !(1..=43_200).contains(&d) {
                p.add(
                    "assumeRoleDurationSeconds",
                    "must be between 1 and 43200 seconds (AWS requires at least 900)",
                );
            }
        }
        let role_only = self.assume_role_source_identity.is_some()
            || self.assume_role_external_id.is_some()
            || self.assume_role_duration_seconds.is_some();
        if role_only && self.assume_role_arn.is_none() {
            p.add(
                "assumeRoleArn",
                "assumeRoleSourceIdentity/assumeRoleExternalId/assumeRoleDurationSeconds need assumeRoleArn",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for r in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-5",
        ] {
            assert!(is_region(r), "{r}");
        }
        for r in ["us-east", "US-EAST-1", "useast1", "us_east_1", ""] {
            assert!(!is_region(r), "{r}");
        }
    }

    #[test]
    fn arns() {
        assert_eq!(
            role_arn_problem("arn:aws:iam::123456789012:role/Reader"),
            None
        );
        assert_eq!(
            role_arn_problem("arn:aws-us-gov:iam::123456789012:role/path/Reader"),
            None
        );
        let check = |arn: &str, want: &str| {
            let got = role_arn_problem(arn).expect(arn);
            assert!(got.contains(want), "{arn}: {got}");
        };
        check("arn:aws:iam::1234:role/x", "not 12 digits");
        check("arn:aws:s3:::bucket", "service is `s3`");
        check("arn:aws:iam::123456789012:user/x", "not a role");
        check("arn:aws:iam:us-east-1:123456789012:role/x", "no region");
        check("role/x", "has the form");
        check("arn:azure:iam::123456789012:role/x", "partition");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = AwsConfig {
            aws_access_key_id: Some("AKIAEXAMPLE".into()),
            aws_secret_access_key: Some(Secret::new("very-secret-key")),
            aws_session_token: Some(Secret::new("very-secret-token")),
            ..Default::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("very-secret"), "{d}");
        let j = serde_json::to_string(&c).unwrap();
        assert!(!j.contains("very-secret"), "{j}");
    }
}
