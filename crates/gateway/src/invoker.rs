//! Calling SageMaker: InvokeEndpoint and InvokeEndpointWithResponseStream.
//!
//! One runtime client per distinct AWS configuration (credentials, role, region, endpoint
//! URL), built on first use and shared by every model that uses it, so credentials are
//! resolved and refreshed once per set. Failures are mapped to [`GatewayError`]s: SageMaker's
//! own runtime errors (ModelError with the container's status, ModelNotReady, ...) first, then
//! the classification of `sagebridge_aws` (access denied, not found, throttled, ...).

use std::time::Duration;

use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError;
use aws_sdk_sagemakerruntime::primitives::event_stream::EventReceiver;
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_sdk_sagemakerruntime::types::error::{ModelError, ResponseStreamError};
use aws_sdk_sagemakerruntime::types::ResponseStream;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::event_stream::RawMessage;
use bytes::Bytes;
use sagebridge_aws::secret::scrub;
use sagebridge_aws::{classify, AwsConfig, AwsError, ClientOptions};
use tokio::sync::OnceCell;

use crate::error::GatewayError;

/// The IAM action of both invocations.
pub const INVOKE_ACTION: &str = "sagemaker:InvokeEndpoint";
/// What `Retry-After` says when SageMaker throttles.
const RETRY_AFTER_THROTTLED: u64 = 1;
/// What `Retry-After` says while an endpoint or component is still loading.
const RETRY_AFTER_NOT_READY: u64 = 10;

/// The events of a streamed invocation.
pub type Events = EventReceiver<ResponseStream, ResponseStreamError>;

/// Where and how one model is invoked.
#[derive(Debug, Clone)]
pub struct Target {
    /// The gateway's name of the model, for messages.
    pub model: String,
    pub endpoint_name: String,
    pub inference_component: Option<String>,
    pub target_variant: Option<String>,
    pub target_model: Option<String>,
    pub custom_attributes: Option<String>,
    /// The region the endpoint is looked for in, for "not found" hints.
    pub region: String,
    /// Index of the client slot (one per distinct AWS configuration).
    pub slot: usize,
}

#[derive(Debug)]
struct Slot {
    config: AwsConfig,
    client: OnceCell<aws_sdk_sagemakerruntime::Client>,
}

/// The runtime clients and the calls made with them.
#[derive(Debug)]
pub struct Invoker {
    slots: Vec<Slot>,
    options: ClientOptions,
    timeout: Duration,
}

impl Invoker {
    pub fn new(options: ClientOptions, timeout: Duration) -> Self {
        Self {
            slots: Vec::new(),
            options,
            timeout,
        }
    }

    /// The slot for `config`, shared with every earlier identical config.
    pub fn slot_for(&mut self, config: &AwsConfig) -> usize {
        if let Some(i) = self.slots.iter().position(|s| &s.config == config) {
            return i;
        }
        self.slots.push(Slot {
            config: config.clone(),
            client: OnceCell::new(),
        });
        self.slots.len() - 1
    }

    /// How many distinct runtime clients there are (built or not yet).
    pub fn client_count(&self) -> usize {
        self.slots.len()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn client(&self, t: &Target) -> Result<&aws_sdk_sagemakerruntime::Client, GatewayError> {
        let slot = &self.slots[t.slot];
        slot.client
            .get_or_try_init(|| async {
                let sdk = sagebridge_aws::sdk_config(&slot.config, &self.options)
                    .await
                    .map_err(|e| from_aws(e, t, &slot.config))?;
                Ok(aws_sdk_sagemakerruntime::Client::new(&sdk))
            })
            .await
    }

    /// InvokeEndpoint: the container's whole answer.
    pub async fn invoke(&self, t: &Target, body: Vec<u8>) -> Result<Bytes, GatewayError> {
        let client = self.client(t).await?;
        let call = client
            .invoke_endpoint()
            .endpoint_name(&t.endpoint_name)
            .content_type("application/json")
            .accept("application/json")
            .set_inference_component_name(t.inference_component.clone())
            .set_target_variant(t.target_variant.clone())
            .set_target_model(t.target_model.clone())
            .set_custom_attributes(t.custom_attributes.clone())
            .body(Blob::new(body))
            .send();
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(GatewayError::Timeout {
                seconds: self.timeout.as_secs(),
            }),
            Ok(Ok(out)) => Ok(out
                .body
                .map(|b| Bytes::from(b.into_inner()))
                .unwrap_or_default()),
            Ok(Err(e)) => Err(self.map_invoke(&e, t)),
        }
    }

    /// InvokeEndpointWithResponseStream: the event receiver once SageMaker has accepted the
    /// call (errors before the first event are returned here, as proper HTTP statuses).
    pub async fn invoke_stream(&self, t: &Target, body: Vec<u8>) -> Result<Events, GatewayError> {
        let client = self.client(t).await?;
        let call = client
            .invoke_endpoint_with_response_stream()
            .endpoint_name(&t.endpoint_name)
            .content_type("application/json")
            .accept("application/json")
            .set_inference_component_name(t.inference_component.clone())
            .set_target_variant(t.target_variant.clone())
            .set_custom_attributes(t.custom_attributes.clone())
            .body(Blob::new(body))
            .send();
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(GatewayError::Timeout {
                seconds: self.timeout.as_secs(),
            }),
            Ok(Ok(out)) => Ok(out.body),
            Ok(Err(e)) => Err(self.map_stream_start(&e, t)),
        }
    }

    fn map_invoke(
        &self,
        err: &SdkError<InvokeEndpointError, HttpResponse>,
        t: &Target,
    ) -> GatewayError {
        let config = &self.slots[t.slot].config;
        if let SdkError::ServiceError(ctx) = err {
            let model_error = match ctx.err() {
                InvokeEndpointError::ModelError(m) => Some(m),
                _ => None,
            };
            if let Some(e) = runtime_error(
                ctx.err().code(),
                ctx.err().message(),
                model_error,
                t,
                config,
            ) {
                return e;
            }
        }
        if let SdkError::TimeoutError(_) = err {
            return GatewayError::Timeout {
                seconds: self.timeout.as_secs(),
            };
        }
        from_aws(classify(INVOKE_ACTION, err), t, config)
    }

    fn map_stream_start(
        &self,
        err: &SdkError<InvokeEndpointWithResponseStreamError, HttpResponse>,
        t: &Target,
    ) -> GatewayError {
        let config = &self.slots[t.slot].config;
        if let SdkError::ServiceError(ctx) = err {
            let model_error = match ctx.err() {
                InvokeEndpointWithResponseStreamError::ModelError(m) => Some(m),
                _ => None,
            };
            if let Some(e) = runtime_error(
                ctx.err().code(),
                ctx.err().message(),
                model_error,
                t,
                config,
            ) {
                return e;
            }
        }
        if let SdkError::TimeoutError(_) = err {
            return GatewayError::Timeout {
                seconds: self.timeout.as_secs(),
            };
        }
        from_aws(classify(INVOKE_ACTION, err), t, config)
    }

    /// Maps an error received in the middle of a stream.
    pub fn map_stream_event_error(
        &self,
        err: &SdkError<ResponseStreamError, RawMessage>,
        t: &Target,
    ) -> GatewayError {
        let config = &self.slots[t.slot].config;
        let secrets = config.secrets();
        match err {
            SdkError::ServiceError(ctx) => {
                let e = ctx.err();
                let message = scrub(e.message().unwrap_or("no message"), &secrets);
                match e {
                    ResponseStreamError::ModelStreamError(m) => GatewayError::ModelError {
                        original_status: None,
                        message: format!(
                            "the model's stream broke ({}): {message}",
                            m.error_code().unwrap_or("ModelStreamError")
                        ),
                    },
                    ResponseStreamError::InternalStreamFailure(_) => GatewayError::Upstream {
                        message: format!("SageMaker's stream failed: {message}; try again"),
                        code: "internal_stream_failure",
                    },
                    _ => GatewayError::Upstream {
                        message: format!(
                            "the stream failed: {}: {message}",
                            e.code().unwrap_or("unknown error")
                        ),
                        code: "stream_error",
                    },
                }
            }
            other => GatewayError::Upstream {
                message: scrub(
                    &format!(
                        "the stream from SageMaker broke: {}",
                        sagebridge_aws::error::chain_text(other)
                    ),
                    &secrets,
                ),
                code: "stream_error",
            },
        }
    }
}

/// SageMaker runtime's own errors, which `classify` does not know.
fn runtime_error(
    code: Option<&str>,
    message: Option<&str>,
    model_error: Option<&ModelError>,
    t: &Target,
    config: &AwsConfig,
) -> Option<GatewayError> {
    let secrets = config.secrets();
    let message = scrub(message.unwrap_or_default(), &secrets);
    match code? {
        "ModelError" => {
            let (status, original) = match model_error {
                Some(m) => (
                    m.original_status_code(),
                    m.original_message().map(|s| scrub(s, &secrets)),
                ),
                None => (None, None),
            };
            Some(GatewayError::ModelError {
                original_status: status,
                message: original.unwrap_or(message),
            })
        }
        "ModelNotReadyException" => Some(GatewayError::Throttled {
            message: format!(
                "endpoint `{}` of model `{}` is not ready yet ({message}); retry in a few seconds",
                t.endpoint_name, t.model
            ),
            retry_after: RETRY_AFTER_NOT_READY,
        }),
        "ServiceUnavailable" => Some(GatewayError::Unavailable {
            message,
            retry_after: RETRY_AFTER_THROTTLED,
        }),
        "InternalFailure" | "InternalDependencyException" => Some(GatewayError::Upstream {
            message: format!("SageMaker failed internally: {message}; try again"),
            code: "sagemaker_internal_error",
        }),
        "ValidationError" => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("endpoint")
                && (lower.contains("not found") || lower.contains("could not find"))
            {
                return Some(GatewayError::EndpointNotFound {
                    model: t.model.clone(),
                    endpoint: t.endpoint_name.clone(),
                    region: t.region.clone(),
                });
            }
            None
        }
        _ => None,
    }
}

/// Maps a classified AWS failure.
pub fn from_aws(e: AwsError, t: &Target, config: &AwsConfig) -> GatewayError {
    let secrets = config.secrets();
    let text = scrub(&e.to_string(), &secrets);
    match e {
        AwsError::AccessDenied { .. } => GatewayError::AccessDenied { message: text },
        AwsError::NotFound { .. } => GatewayError::EndpointNotFound {
            model: t.model.clone(),
            endpoint: t.endpoint_name.clone(),
            region: t.region.clone(),
        },
        AwsError::Throttled { .. } => GatewayError::Throttled {
            message: text,
            retry_after: RETRY_AFTER_THROTTLED,
        },
        AwsError::ExpiredCredentials { .. } | AwsError::InvalidCredentials { .. } => {
            GatewayError::Upstream {
                message: text,
                code: "aws_credentials",
            }
        }
        AwsError::RegionMismatch { .. } => GatewayError::Upstream {
            message: text,
            code: "aws_region_mismatch",
        },
        AwsError::InvalidArn { .. } => GatewayError::Upstream {
            message: text,
            code: "aws_invalid_arn",
        },
        AwsError::Unreachable { .. } => GatewayError::Upstream {
            message: text,
            code: "upstream_unreachable",
        },
        AwsError::Other {
            status: Some(400), ..
        } => GatewayError::Upstream {
            message: text,
            code: "sagemaker_validation_error",
        },
        AwsError::Other { .. } => GatewayError::Upstream {
            message: text,
            code: "upstream_error",
        },
    }
}
