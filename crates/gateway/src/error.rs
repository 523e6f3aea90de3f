//! The gateway's errors and their OpenAI-shaped HTTP responses.
//!
//! Every failure a client can see is a [`GatewayError`]. Its `IntoResponse` writes
//! `{"error":{"message","type","param","code"}}` with the status OpenAI clients expect, and never
//! anything internal: no AWS secret, no API key, no Rust error chain beyond the cause's text
//! (which is scrubbed of configured secrets where it came from a peer).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A failure answered to the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// Bad JSON, a missing or ill-typed field: 400, naming the field in `param`.
    #[error("{message}")]
    BadRequest {
        message: String,
        param: Option<String>,
    },

    #[error("the model `{0}` does not exist; GET /v1/models lists the models this gateway serves")]
    ModelNotFound(String),

    #[error("the model `{model}` is a {kind} model; use {route} for it")]
    WrongKind {
        model: String,
        kind: &'static str,
        route: &'static str,
    },

    #[error("missing or invalid API key; send it as `Authorization: Bearer <key>`")]
    Unauthorized,

    /// The API key is limited to other models: 403.
    #[error("this API key may not call model `{0}`; ask for a key that allows it")]
    ModelNotAllowed(String),

    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },

    /// An audio file above SageMaker's payload limit that the gateway cannot split: 413.
    #[error("the audio file is {bytes} bytes, above SageMaker's limit of {limit} bytes for one invocation; the gateway splits only WAV (PCM) files by time, so send a WAV file or a shorter recording")]
    AudioTooLarge { bytes: usize, limit: usize },

    /// AWS refused the invocation (IAM): 403.
    #[error("{message}")]
    AccessDenied { message: String },

    #[error("endpoint `{endpoint}` not found in {region}; is it in another region or account? check endpointName, awsRegion and awsConfig of model `{model}`")]
    EndpointNotFound {
        model: String,
        endpoint: String,
        region: String,
    },

    /// The endpoint exists but has no inference component of that name: 404.
    #[error("inference component `{component}` not found on endpoint `{endpoint}`; check inferenceComponent of model `{model}` (ListInferenceComponents shows the endpoint's components)")]
    InferenceComponentNotFound {
        model: String,
        component: String,
        endpoint: String,
    },

    /// Throttled by SageMaker: 429 with `Retry-After`.
    #[error("{message}")]
    Throttled { message: String, retry_after: u64 },

    /// The API key's own limit (`requestsPerMinute`, `tokensPerMinute`): 429 with
    /// `Retry-After`; `code` is `rate_limited` or `tokens_limited`.
    #[error("{message}")]
    RateLimited {
        message: String,
        code: &'static str,
        retry_after: u64,
    },

    /// The container answered with an error: 502 with its status and message, or, when the
    /// container refused the request itself (a 4xx, see [`GatewayError::rejected_by_container`]),
    /// that status with OpenAI's `invalid_request_error`.
    #[error("{}", model_error_text(*original_status, message))]
    ModelError {
        original_status: Option<i32>,
        message: String,
    },

    /// Another upstream failure (credentials, network, SageMaker internal error): 502.
    #[error("{message}")]
    Upstream { message: String, code: &'static str },

    /// The model's inference component has no copies (scaled to zero): 503 with
    /// `Retry-After`, at once or after `coldStartWaitSeconds`.
    #[error("model `{model}` is scaled to zero: its inference component `{component}` has no copies running{}; SageMaker starts one when it is invoked, which takes minutes; retry later{}", if *waited { " after waiting for one" } else { "" }, if *waited { "" } else { " (or set coldStartWaitSeconds on the model to have the gateway hold requests until a copy runs)" })]
    NoCapacity {
        model: String,
        component: String,
        waited: bool,
        retry_after: u64,
    },

    #[error("SageMaker is unavailable right now: {message}")]
    Unavailable { message: String, retry_after: u64 },

    #[error("the endpoint did not answer within {seconds} s")]
    Timeout { seconds: u64 },

    /// Too many requests in flight (server.maxConcurrentRequests, per model or in all): 503
    /// with `Retry-After`.
    #[error("{message}")]
    Overloaded { message: String, retry_after: u64 },

    /// The client did not send its body in time: 408.
    #[error(
        "the request body was not received within {seconds} s (server.bodyReadTimeoutSeconds)"
    )]
    RequestTimeout { seconds: f64 },

    /// A stream ran longer than server.maxStreamSeconds (sent as the stream's last chunk).
    #[error("the answer was cut after {seconds} s, the longest a stream may last (server.maxStreamSeconds)")]
    StreamTooLong { seconds: f64 },

    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    pub fn bad_request(param: &str, message: impl Into<String>) -> Self {
        GatewayError::BadRequest {
            message: message.into(),
            param: Some(param.to_owned()),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest { .. } | GatewayError::WrongKind { .. } => {
                StatusCode::BAD_REQUEST
            }
            GatewayError::ModelNotFound(_)
            | GatewayError::EndpointNotFound { .. }
            | GatewayError::InferenceComponentNotFound { .. } => StatusCode::NOT_FOUND,
            GatewayError::Unauthorized => StatusCode::UNAUTHORIZED,
            GatewayError::ModelNotAllowed(_) => StatusCode::FORBIDDEN,
            GatewayError::PayloadTooLarge { .. } | GatewayError::AudioTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            GatewayError::AccessDenied { .. } => StatusCode::FORBIDDEN,
            GatewayError::Throttled { .. } | GatewayError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            GatewayError::ModelError { .. } => self
                .rejected_by_container()
                .unwrap_or(StatusCode::BAD_GATEWAY),
            GatewayError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::Unavailable { .. }
            | GatewayError::Overloaded { .. }
            | GatewayError::NoCapacity { .. } => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Timeout { .. } | GatewayError::StreamTooLong { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            GatewayError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `error.type`.
    pub fn error_type(&self) -> &'static str {
        if self.rejected_by_container().is_some() {
            return "invalid_request_error";
        }
        match self {
            GatewayError::BadRequest { .. }
            | GatewayError::WrongKind { .. }
            | GatewayError::ModelNotFound(_)
            | GatewayError::PayloadTooLarge { .. }
            | GatewayError::AudioTooLarge { .. } => "invalid_request_error",
            GatewayError::Unauthorized => "authentication_error",
            GatewayError::AccessDenied { .. } | GatewayError::ModelNotAllowed(_) => {
                "permission_error"
            }
            GatewayError::EndpointNotFound { .. }
            | GatewayError::InferenceComponentNotFound { .. } => "not_found_error",
            GatewayError::Throttled { .. } | GatewayError::RateLimited { .. } => "rate_limit_error",
            GatewayError::Timeout { .. }
            | GatewayError::StreamTooLong { .. }
            | GatewayError::RequestTimeout { .. } => "timeout_error",
            GatewayError::ModelError { .. }
            | GatewayError::Upstream { .. }
            | GatewayError::Unavailable { .. }
            | GatewayError::Overloaded { .. }
            | GatewayError::NoCapacity { .. }
            | GatewayError::Internal(_) => "api_error",
        }
    }

    /// A stable machine-readable cause: OpenAI's `error.code`, and the `class` label of the
    /// error metric.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::BadRequest { .. } => "invalid_request",
            GatewayError::ModelNotFound(_) => "model_not_found",
            GatewayError::WrongKind { .. } => "wrong_model_kind",
            GatewayError::Unauthorized => "invalid_api_key",
            GatewayError::ModelNotAllowed(_) => "model_not_allowed",
            GatewayError::PayloadTooLarge { .. } => "payload_too_large",
            GatewayError::AudioTooLarge { .. } => "audio_too_large",
            GatewayError::AccessDenied { .. } => "access_denied",
            GatewayError::EndpointNotFound { .. } => "endpoint_not_found",
            GatewayError::InferenceComponentNotFound { .. } => "inference_component_not_found",
            GatewayError::Throttled { .. } => "throttled",
            GatewayError::RateLimited { code, .. } => code,
            GatewayError::ModelError { .. } if self.rejected_by_container().is_some() => {
                "model_rejected_request"
            }
            GatewayError::ModelError { .. } => "model_error",
            GatewayError::Upstream { code, .. } => code,
            GatewayError::Unavailable { .. } => "service_unavailable",
            GatewayError::NoCapacity { .. } => "scaled_to_zero",
            GatewayError::Timeout { .. } => "timeout",
            GatewayError::Overloaded { .. } => "overloaded",
            GatewayError::RequestTimeout { .. } => "request_timeout",
            GatewayError::StreamTooLong { .. } => "stream_too_long",
            GatewayError::Internal(_) => "internal_error",
        }
    }

    /// The status of a request the model container refused as invalid: its own 4xx (an input
    /// too long, an unknown `tool_choice` function, a field it does not take), passed on as is
    /// so that clients see a request error they must fix, not a 502 they retry. 401, 403 and
    /// 407 (which a client would read as about its own key), 408 and 429 (which pass) stay
    /// 502 `model_error`.
    pub fn rejected_by_container(&self) -> Option<StatusCode> {
        match self {
            GatewayError::ModelError {
                original_status: Some(s),
                ..
            } if container_refused(*s) => u16::try_from(*s)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok()),
            _ => None,
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            GatewayError::BadRequest { param, .. } => param.as_deref(),
            GatewayError::ModelNotFound(_) | GatewayError::WrongKind { .. } => Some("model"),
            _ => None,
        }
    }

    /// The error object OpenAI clients parse, also sent as the last chunk of a failed stream.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.to_string(),
                "type": self.error_type(),
                "param": self.param(),
                "code": self.code(),
            }
        })
    }
}

/// Whether a container's status says it refused the request itself (see
/// [`GatewayError::rejected_by_container`]).
fn container_refused(status: i32) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 403 | 407 | 408 | 429)
}

/// The text of a [`GatewayError::ModelError`].
fn model_error_text(original_status: Option<i32>, message: &str) -> String {
    match original_status {
        Some(s) if container_refused(s) => {
            format!("the model container rejected the request with status {s}: {message}")
        }
        Some(s) => format!("the model container failed with status {s}: {message}"),
        None => format!("the model container failed: {message}"),
    }
}

/// What a client may read of an error about AWS: ARNs, account ids and endpoint URLs (which
/// name principals, accounts and internal hosts) replaced by `<arn>`, `<account>` and
/// `<endpoint>`. The full text goes to the log under the request id.
pub fn scrub_for_clients(text: &str) -> String {
    fn delimiter(c: char) -> bool {
        c.is_whitespace() || matches!(c, '`' | '"' | '\'' | ')' | '(' | ',' | ';' | '<' | '>')
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let arn = rest.find("arn:aws").map(|i| (i, "<arn>"));
        let url = ["https://", "http://"]
            .iter()
            .filter_map(|s| rest.find(s))
            .min()
            .map(|i| (i, "<endpoint>"));
        let next = [arn, url].into_iter().flatten().min_by_key(|(i, _)| *i);
        let Some((at, mark)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at]);
        out.push_str(mark);
        let tail = &rest[at..];
        let end = tail.find(delimiter).unwrap_or(tail.len());
        // A sentence's final period stays outside the replaced part.
        let end = if tail[..end].ends_with('.') {
            end - 1
        } else {
            end
        };
        rest = &tail[end..];
    }
    // Twelve-digit runs are account ids.
    let mut scrubbed = String::with_capacity(out.len());
    let chars: Vec<char> = out.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 12 {
                scrubbed.push_str("<account>");
            } else {
                scrubbed.extend(&chars[start..i]);
            }
        } else {
            scrubbed.push(chars[i]);
            i += 1;
        }
    }
    scrubbed
}

impl GatewayError {
    /// Whether the answer carries text from AWS or the container: a refusal by AWS (403), an
    /// upstream failure (5xx), a request the container refused. Those are logged with a
    /// request id, and the client gets the text scrubbed ([`GatewayError::client_response`]).
    pub fn from_upstream(&self) -> bool {
        let status = self.status();
        status == StatusCode::FORBIDDEN
            || status.is_server_error()
            || self.rejected_by_container().is_some()
    }

    /// The answer a client gets for this error under `request_id`: for an error with
    /// upstream text ([`GatewayError::from_upstream`]) the message is scrubbed
    /// ([`scrub_for_clients`]) and the request id added, so an operator finds the full detail
    /// in the log.
    pub fn client_response(self, request_id: &str) -> Response {
        if !self.from_upstream() {
            return self.into_response();
        }
        let mut body = self.body();
        if let Some(message) = body["error"]["message"].as_str() {
            let message = format!(
                "{} (request id {request_id}: the full detail is in the gateway's log)",
                scrub_for_clients(message)
            );
            body["error"]["message"] = json!(message);
        }
        body["error"]["request_id"] = json!(request_id);
        let mut response = self.into_response();
        *response.body_mut() = axum::body::Body::from(body.to_string());
        response.headers_mut().insert(
            "x-request-id",
            HeaderValue::from_str(request_id).unwrap_or(HeaderValue::from_static("unknown")),
        );
        response
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        let retry_after = match &self {
            GatewayError::Throttled { retry_after, .. }
            | GatewayError::RateLimited { retry_after, .. }
            | GatewayError::Unavailable { retry_after, .. }
            | GatewayError::Overloaded { retry_after, .. }
            | GatewayError::NoCapacity { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_read_no_arn_account_or_endpoint() {
        let text =
            "sagemaker:InvokeEndpoint denied for arn:aws:sts::123456789012:assumed-role/r/s \
                    on `arn:aws:sagemaker:us-east-1:123456789012:endpoint/x` via \
                    https://vpce-0abc.runtime.sagemaker.us-east-1.vpce.amazonaws.com/endpoints. \
                    Account 210987654321; retry 3 times.";
        let s = scrub_for_clients(text);
        for leak in [
            "123456789012",
            "210987654321",
            "assumed-role",
            "vpce-0abc",
            "arn:aws",
        ] {
            assert!(!s.contains(leak), "{leak} in {s}");
        }
        assert!(
            s.contains("sagemaker:InvokeEndpoint denied for <arn>"),
            "{s}"
        );
        assert!(
            s.contains("`<arn>`") && s.contains("<endpoint>.") && s.contains("retry 3 times"),
            "{s}"
        );

        let response = GatewayError::AccessDenied {
            message: text.to_owned(),
        }
        .client_response("req-1");
        assert_eq!(response.status(), 403);
        assert_eq!(response.headers()["x-request-id"], "req-1");
        // A client error keeps its words: the caller's own input is no secret.
        let response = GatewayError::ModelNotFound("m".into()).client_response("req-2");
        assert!(response.headers().get("x-request-id").is_none());
    }

    #[test]
    fn shapes_and_statuses() {
        let cases: Vec<(GatewayError, u16, &str)> = vec![
            (
                GatewayError::bad_request("messages", "`messages` is required"),
                400,
                "invalid_request",
            ),
            (
                GatewayError::ModelNotFound("x".into()),
                404,
                "model_not_found",
            ),
            (GatewayError::Unauthorized, 401, "invalid_api_key"),
            (
                GatewayError::ModelNotAllowed("m".into()),
                403,
                "model_not_allowed",
            ),
            (
                GatewayError::PayloadTooLarge { limit: 10 },
                413,
                "payload_too_large",
            ),
            (
                GatewayError::Throttled {
                    message: "slow down".into(),
                    retry_after: 1,
                },
                429,
                "throttled",
            ),
            (
                GatewayError::ModelError {
                    original_status: Some(500),
                    message: "boom".into(),
                },
                502,
                "model_error",
            ),
            (
                GatewayError::ModelError {
                    original_status: Some(422),
                    message: "Input validation error: inputs too long".into(),
                },
                422,
                "model_rejected_request",
            ),
            (
                GatewayError::ModelError {
                    original_status: Some(403),
                    message: "forbidden".into(),
                },
                502,
                "model_error",
            ),
            (
                GatewayError::ModelError {
                    original_status: None,
                    message: "stream broke".into(),
                },
                502,
                "model_error",
            ),
            (GatewayError::Timeout { seconds: 3 }, 504, "timeout"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.body()["error"]["code"], code);
            assert!(e.body()["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
        let e = GatewayError::EndpointNotFound {
            model: "m".into(),
            endpoint: "ep".into(),
            region: "us-east-1".into(),
        };
        assert!(e
            .to_string()
            .starts_with("endpoint `ep` not found in us-east-1; is it in another region"));
        let e = GatewayError::ModelError {
            original_status: Some(400),
            message: "bad input".into(),
        };
        assert_eq!(
            e.to_string(),
            "the model container rejected the request with status 400: bad input"
        );
        let e = GatewayError::ModelError {
            original_status: Some(503),
            message: "warming up".into(),
        };
        assert_eq!(
            e.to_string(),
            "the model container failed with status 503: warming up"
        );
    }

    #[test]
    fn retry_after_header() {
        let r = GatewayError::Throttled {
            message: "x".into(),
            retry_after: 2,
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }
}
