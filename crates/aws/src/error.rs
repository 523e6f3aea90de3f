//! Classification of AWS failures into causes a user can act on.
//!
//! The SDK reports errors per operation with an optional error code. We need the *cause*:
//! which permission is missing, whether the credentials are wrong or expired, whether the
//! resource is simply not there. Some peers (moto's IAM enforcement, some proxies) answer a
//! JSON-protocol service with an XML body, so the SDK sees no code; we then also read the raw
//! HTTP status and body.

use std::error::Error as StdError;
use std::sync::OnceLock;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use regex::Regex;

use crate::check::ErrorKind;

/// What went wrong, classified. Every message says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    #[error("access denied: {} is not allowed to call {action}; add {action} to its IAM policy", principal.as_deref().unwrap_or("the caller"))]
    AccessDenied {
        action: String,
        principal: Option<String>,
        message: String,
    },

    #[error("invalid ARN `{arn}`: {reason}")]
    InvalidArn { arn: String, reason: String },

    #[error("region mismatch: {message}; set awsRegion to the region the resource lives in")]
    RegionMismatch { message: String },

    #[error("{kind} `{name}` not found; check the name and awsRegion")]
    NotFound { kind: String, name: String },

    #[error("throttled by AWS on {action} and retries ran out; lower the concurrency or ask AWS for a higher limit")]
    Throttled { action: String },

    #[error("the AWS credentials have expired ({message}); renew awsSessionToken, or use assumeRoleArn or a profile so sagebridge refreshes them")]
    ExpiredCredentials { message: String },

    #[error("AWS rejected the credentials: {message}; check awsAccessKeyId/awsSecretAccessKey, the profile or the default credential chain")]
    InvalidCredentials { message: String },

    #[error("cannot reach AWS: {message}; check endPointURL, the network and any proxy")]
    Unreachable { message: String },

    #[error("{action} failed: {}", other_cause(code.as_deref(), *status, message))]
    Other {
        action: String,
        code: Option<String>,
        status: Option<u16>,
        message: String,
    },
}

/// `code: message`, or what is known when AWS (or an emulator) sent an empty error body.
fn other_cause(code: Option<&str>, status: Option<u16>, message: &str) -> String {
    let code = code.map(|c| format!("{c}: ")).unwrap_or_default();
    match (message.trim().is_empty(), status) {
        (false, _) => format!("{code}{message}"),
        (true, Some(s)) => format!("{code}HTTP {s} with no error message"),
        (true, None) => format!("{code}no error message"),
    }
}

impl AwsError {
    /// The cause, as health checks and run reports name it (`AccessDenied`, `NotFound`, ...).
    pub fn kind(&self) -> ErrorKind {
        match self {
            AwsError::AccessDenied { action, .. } => ErrorKind::AccessDenied {
                action: action.clone(),
            },
            AwsError::InvalidArn { .. } => ErrorKind::InvalidArn,
            AwsError::RegionMismatch { .. } => ErrorKind::RegionMismatch,
            AwsError::NotFound { .. } => ErrorKind::NotFound,
            AwsError::Throttled { .. } => ErrorKind::Throttled,
            AwsError::ExpiredCredentials { .. } => ErrorKind::ExpiredCredentials,
            AwsError::InvalidCredentials { .. } => ErrorKind::InvalidCredentials,
            AwsError::Unreachable { .. } => ErrorKind::Unreachable,
            AwsError::Other { .. } => ErrorKind::Other,
        }
    }
}

/// Classifies a failed SDK call. `action` is the IAM action of the call, e.g.
/// `sagemaker:ListTags`.
pub fn classify<E>(action: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    if let Some(found) = find_in_chain(err) {
        return found;
    }
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let raw = ctx.raw();
            classify_parts(
                action,
                Some(raw.status().as_u16()),
                e.code(),
                e.message(),
                raw.body().bytes().unwrap_or_default(),
            )
        }
        SdkError::ResponseError(ctx) => {
            let raw = ctx.raw();
            classify_parts(
                action,
                Some(raw.status().as_u16()),
                None,
                None,
                raw.body().bytes().unwrap_or_default(),
            )
        }
        SdkError::TimeoutError(_) => AwsError::Unreachable {
            message: format!("{action} timed out"),
        },
        SdkError::DispatchFailure(d) => {
            let text = chain_text(err);
            if d.is_timeout() || d.is_io() {
                AwsError::Unreachable { message: text }
            } else {
                credentials_or_unreachable(text)
            }
        }
        SdkError::ConstructionFailure(_) => credentials_or_unreachable(chain_text(err)),
        _ => AwsError::Other {
            action: action.to_owned(),
            code: None,
            status: None,
            message: chain_text(err),
        },
    }
}

fn credentials_or_unreachable(text: String) -> AwsError {
    if text.contains("credentials") || text.contains("Credentials") {
        AwsError::InvalidCredentials {
            message: format!("no usable AWS credentials ({text})"),
        }
    } else {
        AwsError::Unreachable { message: text }
    }
}

/// An `AwsError` raised inside the SDK, e.g. by our AssumeRole credentials provider.
fn find_in_chain(err: &(dyn StdError + 'static)) -> Option<AwsError> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<AwsError>() {
            return Some(found.clone());
        }
        cur = e.source();
    }
    None
}

/// The error and all its sources, joined: the SDK's top-level messages alone say little.
pub fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// Classification from what was on the wire: the HTTP status, the error code and message the
/// SDK parsed (if any) and the raw body, which is read when the SDK found no code (an XML
/// answer to a JSON-protocol service).
pub fn classify_parts(
    action: &str,
    status: Option<u16>,
    code: Option<&str>,
    message: Option<&str>,
    body: &[u8],
) -> AwsError {
    static XML_CODE: OnceLock<Regex> = OnceLock::new();
    static XML_MSG: OnceLock<Regex> = OnceLock::new();
    static PERFORM: OnceLock<Regex> = OnceLock::new();
    static USER: OnceLock<Regex> = OnceLock::new();
    static QUOTED: OnceLock<Regex> = OnceLock::new();

    let body_text = String::from_utf8_lossy(body);
    let mut code = code.map(str::to_owned);
    let mut message = message.map(str::to_owned);
    if code.is_none() || message.is_none() {
        if let Some(c) = re(&XML_CODE, r"<Code>([^<]*)</Code>").captures(&body_text) {
            code.get_or_insert_with(|| c[1].to_owned());
        }
        if let Some(c) = re(&XML_MSG, r"<Message>([^<]*)</Message>").captures(&body_text) {
            message.get_or_insert_with(|| c[1].to_owned());
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(t) = v.get("__type").and_then(|t| t.as_str()) {
                code.get_or_insert_with(|| t.rsplit('#').next().unwrap_or(t).to_owned());
            }
            if let Some(m) = v
                .get("message")
                .or_else(|| v.get("Message"))
                .and_then(|m| m.as_str())
            {
                message.get_or_insert_with(|| m.to_owned());
            }
        }
    }
    let message = message.unwrap_or_default();
    let lower = message.to_ascii_lowercase();
    let principal = re(&USER, r"User: (arn:[^\s]+)")
        .captures(&message)
        .map(|c| c[1].to_owned());

    let code_str = code.as_deref().unwrap_or("");
    match code_str {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthorizationError"
        | "NotAuthorized" => {
            let action = re(&PERFORM, r"perform: ([A-Za-z0-9-]+:[A-Za-z0-9]+)")
                .captures(&message)
                .map(|c| c[1].to_owned())
                .unwrap_or_else(|| action.to_owned());
            return AwsError::AccessDenied {
                action,
                principal,
                message,
            };
        }
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown"
        | "RequestThrottled"
        | "ProvisionedThroughputExceededException" => {
            return AwsError::Throttled {
                action: action.to_owned(),
            };
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            return AwsError::ExpiredCredentials { message };
        }
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "InvalidAccessKeyId"
        | "AuthFailure" => {
            if lower.contains("scoped to") || lower.contains("region") {
                return AwsError::RegionMismatch { message };
            }
            return AwsError::InvalidCredentials {
                message: format!("{code_str}: {message}"),
            };
        }
        "ResourceNotFound" | "ResourceNotFoundException" | "NoSuchEntity" | "NotFoundException" => {
            return not_found(action, &message, &QUOTED);
        }
        _ => {}
    }
    // SageMaker answers a Describe* of a resource that does not exist with a validation error
    // (`ValidationException: Could not find model ...`): for those operations the code alone
    // says "not found"; the message only supplies the name. Elsewhere a validation error is
    // what it says, whatever words its message uses.
    if is_validation_code(code_str) && is_describe(action) {
        return not_found(action, &message, &QUOTED);
    }
    if (code_str.starts_with("Validation") || code_str.starts_with("InvalidParameter"))
        && lower.contains("arn")
        && (lower.contains("invalid") || lower.contains("malformed") || lower.contains("not valid"))
    {
        let arn = message
            .split_whitespace()
            .find(|w| w.starts_with("arn:"))
            .map(|w| {
                w.trim_matches(|c: char| c == '\'' || c == '"' || c == ',' || c == '.')
                    .to_owned()
            })
            .unwrap_or_default();
        return AwsError::InvalidArn {
            arn,
            reason: message,
        };
    }
    match status {
        Some(403) => AwsError::AccessDenied {
            action: action.to_owned(),
            principal,
            message,
        },
        Some(429) => AwsError::Throttled {
            action: action.to_owned(),
        },
        _ => AwsError::Other {
            action: action.to_owned(),
            code,
            status,
            message,
        },
    }
}

fn is_validation_code(code: &str) -> bool {
    matches!(code, "ValidationException" | "ValidationError")
}

/// Whether `action` (`service:Operation`) reads one named resource.
fn is_describe(action: &str) -> bool {
    action
        .rsplit(':')
        .next()
        .is_some_and(|op| op.starts_with("Describe"))
}

fn not_found(action: &str, message: &str, quoted: &'static OnceLock<Regex>) -> AwsError {
    // `sagemaker:DescribeEndpoint` -> "endpoint"; `sagemaker:DescribeEndpointConfig` ->
    // "endpoint config".
    let op = action.rsplit(':').next().unwrap_or(action);
    let noun = op
        .trim_start_matches("Describe")
        .trim_start_matches("Invoke")
        .trim_start_matches("List");
    let mut kind = String::new();
    for (i, ch) in noun.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            kind.push(' ');
        }
        kind.push(ch.to_ascii_lowercase());
    }
    let kind = kind
        .trim_end_matches("with response stream")
        .trim()
        .to_owned();
    let name = re(quoted, r#"["'`]([^"'`]+)["'`]|(arn:[^\s,]+)"#)
        .captures(message)
        .and_then(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| message.to_owned());
    AwsError::NotFound {
        kind: if kind.is_empty() {
            "resource".into()
        } else {
            kind
        },
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        action: &str,
        status: u16,
        code: Option<&str>,
        message: Option<&str>,
        body: &str,
        expected: &str,
    ) {
        let e = classify_parts(action, Some(status), code, message, body.as_bytes());
        assert_eq!(e.to_string(), expected, "{e:?}");
    }

    #[test]
    fn moto_iam_denial_as_xml() {
        let e = classify_parts(
            "sagemaker:ListTags",
            Some(403),
            None,
            None,
            b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/limited is not authorized to perform: sagemaker:ListTags</Message></Error></ErrorResponse>",
        );
        assert_eq!(
            e.kind(),
            ErrorKind::AccessDenied {
                action: "sagemaker:ListTags".into()
            }
        );
        check(
            "sagemaker:ListTags",
            403,
            None,
            None,
            "<ErrorResponse><Error><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/limited is not authorized to perform: sagemaker:ListTags</Message></Error></ErrorResponse>",
            "access denied: arn:aws:iam::123456789012:user/limited is not allowed to call sagemaker:ListTags; add sagemaker:ListTags to its IAM policy",
        );
    }

    #[test]
    fn an_empty_error_body_still_says_something() {
        let e = AwsError::Other {
            action: "sagemaker:ListFeatureGroups".into(),
            code: None,
            status: Some(500),
            message: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "sagemaker:ListFeatureGroups failed: HTTP 500 with no error message"
        );
        let e = AwsError::Other {
            action: "sagemaker:X".into(),
            code: Some("Boom".into()),
            status: Some(400),
            message: "it broke".into(),
        };
        assert_eq!(e.to_string(), "sagemaker:X failed: Boom: it broke");
    }

    #[test]
    fn codes() {
        check("sagemaker:ListModels", 400, Some("ThrottlingException"), Some("Rate exceeded"), "",
            "throttled by AWS on sagemaker:ListModels and retries ran out; lower the concurrency or ask AWS for a higher limit");
        check("sagemaker:DescribeModel", 400, Some("ValidationException"), Some("Could not find model \"arn:aws:sagemaker:us-east-1:123456789012:model/x\"."), "",
            "model `arn:aws:sagemaker:us-east-1:123456789012:model/x` not found; check the name and awsRegion");
        check(
            "sagemaker:DescribeEndpoint",
            400,
            Some("ValidationException"),
            Some("Could not find endpoint 'chat'."),
            "",
            "endpoint `chat` not found; check the name and awsRegion",
        );
        check("sts:GetCallerIdentity", 403, Some("InvalidClientTokenId"), Some("The security token included in the request is invalid."), "",
            "AWS rejected the credentials: InvalidClientTokenId: The security token included in the request is invalid.; check awsAccessKeyId/awsSecretAccessKey, the profile or the default credential chain");
        check("sts:GetCallerIdentity", 403, Some("SignatureDoesNotMatch"), Some("Credential should be scoped to a valid region."), "",
            "region mismatch: Credential should be scoped to a valid region.; set awsRegion to the region the resource lives in");
        check(
            "sts:AssumeRole",
            400,
            Some("ValidationError"),
            Some("arn:aws:iam::12:role/x is invalid"),
            "",
            "invalid ARN `arn:aws:iam::12:role/x`: arn:aws:iam::12:role/x is invalid",
        );
        check("sts:GetCallerIdentity", 400, Some("ExpiredToken"), Some("The security token included in the request is expired"), "",
            "the AWS credentials have expired (The security token included in the request is expired); renew awsSessionToken, or use assumeRoleArn or a profile so sagebridge refreshes them");
        check(
            "sagemaker:ListModels",
            500,
            None,
            None,
            "{\"__type\":\"InternalFailure\",\"message\":\"boom\"}",
            "sagemaker:ListModels failed: InternalFailure: boom",
        );
        check("sagemaker:ListModels", 429, None, None, "", "throttled by AWS on sagemaker:ListModels and retries ran out; lower the concurrency or ask AWS for a higher limit");
    }

    #[test]
    fn not_found_is_decided_by_code_and_operation_not_by_words() {
        let kind = |action: &str, status: u16, code: Option<&str>, message: &str| {
            classify_parts(action, Some(status), code, Some(message), b"").kind()
        };
        // A not-found code, whatever the message says.
        assert_eq!(
            kind("sagemaker:ListTags", 400, Some("ResourceNotFound"), "gone"),
            ErrorKind::NotFound
        );
        // Words alone do not make a "not found".
        for (code, status) in [
            ("InternalFailure", 500),
            ("ModelError", 424),
            ("ServiceUnavailable", 503),
        ] {
            assert_ne!(
                kind(
                    "sagemaker:InvokeEndpoint",
                    status,
                    Some(code),
                    "file model.bin not found; does not exist"
                ),
                ErrorKind::NotFound,
                "{code}"
            );
        }
        // A validation error of an operation that is not a lookup stays one.
        assert_eq!(
            kind(
                "sagemaker:CreateModel",
                400,
                Some("ValidationException"),
                "Could not find role"
            ),
            ErrorKind::Other
        );
        // SageMaker's Describe* answer for a missing resource.
        assert_eq!(
            kind(
                "sagemaker:DescribeInferenceComponent",
                400,
                Some("ValidationException"),
                "Could not find inference component \"ic-9\"."
            ),
            ErrorKind::NotFound
        );
        let e = classify_parts(
            "sagemaker:DescribeInferenceComponent",
            Some(400),
            Some("ValidationException"),
            Some("Could not find inference component \"ic-9\"."),
            b"",
        );
        assert_eq!(
            e.to_string(),
            "inference component `ic-9` not found; check the name and awsRegion"
        );
    }
}
