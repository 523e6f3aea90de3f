//! Calling SageMaker: InvokeEndpoint and InvokeEndpointWithResponseStream.
//!
//! One runtime client per distinct AWS configuration (credentials, role, region, endpoint
//! URL), built on first use and shared by every model that uses it, so credentials are
//! resolved and refreshed once per set. Both invocations go through one path ([`Invoker::send`]):
//! the same timeout and the same mapping of failures to [`GatewayError`]s: SageMaker's own
//! runtime errors (ModelError with the container's status, ModelNotReady, ...) first, then the
//! classification of `sagebridge_aws` (access denied, not found, throttled, ...).

use std::error::Error as StdError;
use std::future::Future;
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

use crate::direct::{Call, DirectInvoke};
use crate::error::GatewayError;

/// The IAM action of both invocations.
pub const INVOKE_ACTION: &str = "sagemaker:InvokeEndpoint";
/// What `Retry-After` says when SageMaker throttles.
const RETRY_AFTER_THROTTLED: u64 = 1;
/// What `Retry-After` says while an endpoint or component is still loading.
const RETRY_AFTER_NOT_READY: u64 = 10;
/// What `Retry-After` says while an inference component has no copies: SageMaker takes
/// minutes to start one.
pub const RETRY_AFTER_NO_CAPACITY: u64 = 60;

/// The events of a streamed invocation.
pub type Events = EventReceiver<ResponseStream, ResponseStreamError>;

/// Where and how one model is invoked: the SageMaker endpoint (and component, variant or
/// model behind it) a request goes to. Not to be confused with an ingestion sink.
#[derive(Debug, Clone)]
pub struct InvokeTarget {
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

/// The operation errors of both invocations: the same runtime errors, in two SDK types.
trait InvokeError: ProvideErrorMetadata + StdError + 'static {
    /// The container's own failure, with its status and message.
    fn model_error(&self) -> Option<&ModelError>;
}

impl InvokeError for InvokeEndpointError {
    fn model_error(&self) -> Option<&ModelError> {
        match self {
            InvokeEndpointError::ModelError(m) => Some(m),
            _ => None,
        }
    }
}

impl InvokeError for InvokeEndpointWithResponseStreamError {
    fn model_error(&self) -> Option<&ModelError> {
        match self {
            InvokeEndpointWithResponseStreamError::ModelError(m) => Some(m),
            _ => None,
        }
    }
}

/// Sets what both invocations send the same way: endpoint, component, variant, custom
/// attributes, content types and body. (The two SDK builders are distinct types with the
/// same setters; only InvokeEndpoint has `TargetModel`.)
macro_rules! addressed {
    ($builder:expr, $t:expr, $body:expr) => {
        addressed!($builder, $t, $body, "application/json", "application/json")
    };
    ($builder:expr, $t:expr, $body:expr, $content_type:expr, $accept:expr) => {
        $builder
            .endpoint_name(&$t.endpoint_name)
            .content_type($content_type)
            .accept($accept)
            .set_inference_component_name($t.inference_component.clone())
            .set_target_variant($t.target_variant.clone())
            .set_custom_attributes($t.custom_attributes.clone())
            .body(Blob::new($body))
    };
}

#[derive(Debug)]
struct Slot {
    config: AwsConfig,
    client: OnceCell<SlotClients>,
}

/// The runtime client (streams), the direct InvokeEndpoint client (buffered calls, see
/// [`crate::direct`]), and the control-plane client that tells which resource a refused
/// invocation addressed does not exist.
#[derive(Debug)]
struct SlotClients {
    runtime: aws_sdk_sagemakerruntime::Client,
    direct: DirectInvoke,
    sagemaker: aws_sdk_sagemaker::Client,
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

    async fn clients(&self, t: &InvokeTarget) -> Result<&SlotClients, GatewayError> {
        let slot = &self.slots[t.slot];
        if let Some(built) = slot.client.get() {
            return Ok(built);
        }
        // Built once per slot, behind a pointer: loading an `SdkConfig` is a future of
        // kilobytes that every request's future would otherwise carry (and copy) for nothing.
        Box::pin(slot.client.get_or_try_init(|| async {
            let sdk = sagebridge_aws::sdk_config(&slot.config, &self.options)
                .await
                .map_err(|e| from_aws(e, t, &slot.config))?;
            let endpoint = sagebridge_aws::clients::runtime_endpoint(&slot.config);
            let direct = DirectInvoke::new(&sdk, endpoint.as_deref())
                .await
                .map_err(|message| GatewayError::Upstream {
                    message: scrub(&message, &slot.config.secrets()),
                    code: "aws_config",
                })?;
            Ok(SlotClients {
                runtime: sagebridge_aws::clients::runtime_client(&sdk, &slot.config),
                direct,
                sagemaker: aws_sdk_sagemaker::Client::new(&sdk),
            })
        }))
        .await
    }

    async fn client(
        &self,
        t: &InvokeTarget,
    ) -> Result<&aws_sdk_sagemakerruntime::Client, GatewayError> {
        Ok(&self.clients(t).await?.runtime)
    }

    /// InvokeEndpoint: the container's whole answer.
    pub async fn invoke(
        &self,
        t: &InvokeTarget,
        body: impl Into<Bytes>,
    ) -> Result<Bytes, GatewayError> {
        let direct = &self.clients(t).await?.direct;
        let call = direct.invoke(
            direct_call(t, "application/json", "application/json"),
            body.into(),
        );
        Ok(self.send(t, call).await?.body)
    }

    /// InvokeEndpoint with the body's own content types (audio): the container's answer and
    /// the content type it declared.
    pub async fn invoke_as(
        &self,
        t: &InvokeTarget,
        call: crate::adapter::audio::Invocation,
    ) -> Result<(Bytes, Option<String>), GatewayError> {
        let direct = &self.clients(t).await?.direct;
        let send = direct.invoke(
            direct_call(t, &call.content_type, &call.accept),
            Bytes::from(call.body),
        );
        let out = self.send(t, send).await?;
        Ok((out.body, out.content_type))
    }

    /// InvokeEndpointWithResponseStream: the event receiver once SageMaker has accepted the
    /// call (errors before the first event are returned here, as proper HTTP statuses).
    pub async fn invoke_stream(
        &self,
        t: &InvokeTarget,
        body: Vec<u8>,
    ) -> Result<Events, GatewayError> {
        let client = self.client(t).await?;
        // The SDK's orchestration is a large future: boxed, callers' futures stay small.
        let call =
            Box::pin(addressed!(client.invoke_endpoint_with_response_stream(), t, body).send());
        Ok(self.send(t, call).await?.body)
    }

    /// Awaits one invocation within the timeout and maps its failure.
    async fn send<T, E: InvokeError>(
        &self,
        t: &InvokeTarget,
        call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, GatewayError> {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(self.timed_out()),
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => match validation_message(&e) {
                // Rare, and its SDK calls make a large future: boxed.
                Some(message) => Err(Box::pin(self.refused(t, message)).await),
                None => Err(self.map_error(&e, t)),
            },
        }
    }

    /// A `ValidationError` of the runtime: SageMaker says so for a missing endpoint, a
    /// missing inference component and a malformed request alike, so the control plane is
    /// asked which (by the error code of DescribeEndpoint, then DescribeInferenceComponent),
    /// never the words of the message.
    async fn refused(&self, t: &InvokeTarget, message: String) -> GatewayError {
        let config = &self.slots[t.slot].config;
        let message = scrub(&message, &config.secrets());
        let missing = |r: Result<(), AwsError>| matches!(r, Err(AwsError::NotFound { .. }));
        if let Ok(c) = self.clients(t).await {
            let endpoint = tokio::time::timeout(
                self.timeout,
                c.sagemaker
                    .describe_endpoint()
                    .endpoint_name(&t.endpoint_name)
                    .send(),
            )
            .await;
            if let Ok(r) = endpoint {
                if missing(
                    r.map(drop)
                        .map_err(|e| classify("sagemaker:DescribeEndpoint", &e)),
                ) {
                    return GatewayError::EndpointNotFound {
                        model: t.model.clone(),
                        endpoint: t.endpoint_name.clone(),
                        region: t.region.clone(),
                    };
                }
            }
            if let Some(ic) = &t.inference_component {
                let component = tokio::time::timeout(
                    self.timeout,
                    c.sagemaker
                        .describe_inference_component()
                        .inference_component_name(ic)
                        .send(),
                )
                .await;
                if let Ok(r) = component {
                    let r = r.map_err(|e| classify("sagemaker:DescribeInferenceComponent", &e));
                    // A component without copies (scaled to zero) refuses invocations with a
                    // ValidationError too; its runtime config tells, not the message.
                    if let Ok(out) = &r {
                        if current_copies(out) == Some(0) {
                            return GatewayError::NoCapacity {
                                model: t.model.clone(),
                                component: ic.clone(),
                                waited: false,
                                retry_after: RETRY_AFTER_NO_CAPACITY,
                            };
                        }
                    }
                    if missing(r.map(drop)) {
                        return GatewayError::InferenceComponentNotFound {
                            model: t.model.clone(),
                            component: ic.clone(),
                            endpoint: t.endpoint_name.clone(),
                        };
                    }
                }
            }
        }
        GatewayError::Upstream {
            message: format!(
                "SageMaker refused the invocation of endpoint `{}` (model `{}`): {message}",
                t.endpoint_name, t.model
            ),
            code: "sagemaker_validation_error",
        }
    }

    /// How many copies of the target's inference component run now (DescribeInferenceComponent),
    /// `None` when it cannot be told (no component, an error, no runtime config): the cold-start
    /// probe's one question.
    pub async fn copies(&self, t: &InvokeTarget) -> Option<i32> {
        let ic = t.inference_component.as_ref()?;
        let c = self.clients(t).await.ok()?;
        let out = tokio::time::timeout(
            self.timeout,
            c.sagemaker
                .describe_inference_component()
                .inference_component_name(ic)
                .send(),
        )
        .await
        .ok()?
        .ok()?;
        current_copies(&out)
    }

    fn timed_out(&self) -> GatewayError {
        GatewayError::Timeout {
            seconds: self.timeout.as_secs(),
        }
    }

    /// The one mapping of a failed invocation, streamed or not.
    fn map_error<E: InvokeError>(
        &self,
        err: &SdkError<E, HttpResponse>,
        t: &InvokeTarget,
    ) -> GatewayError {
        let config = &self.slots[t.slot].config;
        match err {
            SdkError::ServiceError(ctx) => {
                if let Some(e) = runtime_error(ctx.err(), t, config) {
                    return e;
                }
            }
            SdkError::TimeoutError(_) => return self.timed_out(),
            _ => {}
        }
        from_aws(classify(INVOKE_ACTION, err), t, config)
    }

    /// Maps an error received in the middle of a stream.
    pub fn map_stream_event_error(
        &self,
        err: &SdkError<ResponseStreamError, RawMessage>,
        t: &InvokeTarget,
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

/// What InvokeEndpoint sends for `t` besides its body.
fn direct_call<'a>(t: &'a InvokeTarget, content_type: &'a str, accept: &'a str) -> Call<'a> {
    Call {
        endpoint_name: &t.endpoint_name,
        content_type,
        accept,
        inference_component: t.inference_component.as_deref(),
        target_variant: t.target_variant.as_deref(),
        target_model: t.target_model.as_deref(),
        custom_attributes: t.custom_attributes.as_deref(),
    }
}

/// The running copies in a DescribeInferenceComponent answer.
fn current_copies(
    out: &aws_sdk_sagemaker::operation::describe_inference_component::DescribeInferenceComponentOutput,
) -> Option<i32> {
    out.runtime_config()?.current_copy_count()
}

/// SageMaker runtime's own errors, which `classify` does not know.
fn runtime_error(
    err: &impl InvokeError,
    t: &InvokeTarget,
    config: &AwsConfig,
) -> Option<GatewayError> {
    let secrets = config.secrets();
    let message = scrub(err.message().unwrap_or_default(), &secrets);
    match err.code()? {
        "ModelError" => {
            let (status, original) = match err.model_error() {
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
        _ => None,
    }
}

/// The message of the runtime's `ValidationError`, if that is what `err` is.
fn validation_message<E: InvokeError>(err: &SdkError<E, HttpResponse>) -> Option<String> {
    match err {
        SdkError::ServiceError(ctx) if ctx.err().code() == Some("ValidationError") => {
            Some(ctx.err().message().unwrap_or("no message").to_owned())
        }
        _ => None,
    }
}

/// Maps a classified AWS failure.
pub fn from_aws(e: AwsError, t: &InvokeTarget, config: &AwsConfig) -> GatewayError {
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
