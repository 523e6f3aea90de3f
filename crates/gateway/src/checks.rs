//! `sagebridge test-connection` for gateway models: the calls `serve` makes, one model at a time.
//!
//! Per model: DescribeEndpoint (the endpoint exists in the configured region and account, the
//! credentials may see it, it is `InService`), then, with `invoke`, one tiny invocation through
//! the model's own adapter, which also proves the configured `format` matches the container.
//! Each cause is reported distinctly (`errorKind`): AccessDenied, InvalidArn, RegionMismatch,
//! NotFound, NotInService, InvalidCredentials, ModelError, FormatMismatch, ... Steps are
//! `sagebridge_aws::Step`s, the type ingestion's `test-connection` reports too.

use std::time::Instant;

use sagebridge_aws::{classify, AwsConfig, AwsError, ClientOptions, Clients, ErrorKind, Step};

use crate::adapter::{now_secs, Adapter, ResponseCtx};
use crate::api::ChatRequest;
use crate::config::{GatewayConfig, ModelConfig};
use crate::error::GatewayError;
use crate::gateway::{Gateway, GatewayOptions};
use crate::invoker::INVOKE_ACTION;

/// The cause of a failed invocation, in the vocabulary of `AwsError::kind`.
pub fn error_kind(e: &GatewayError) -> ErrorKind {
    match e {
        GatewayError::AccessDenied { .. } => ErrorKind::AccessDenied {
            action: INVOKE_ACTION.to_owned(),
        },
        GatewayError::EndpointNotFound { .. } | GatewayError::InferenceComponentNotFound { .. } => {
            ErrorKind::NotFound
        }
        GatewayError::Throttled { .. } => ErrorKind::Throttled,
        GatewayError::ModelError { .. } => ErrorKind::ModelError,
        GatewayError::Timeout { .. } => ErrorKind::Timeout,
        GatewayError::Unavailable { .. } => ErrorKind::Unavailable,
        GatewayError::Upstream { code, .. } => match *code {
            "aws_credentials" => ErrorKind::InvalidCredentials,
            "aws_region_mismatch" => ErrorKind::RegionMismatch,
            "aws_invalid_arn" => ErrorKind::InvalidArn,
            "upstream_unreachable" => ErrorKind::Unreachable,
            "bad_upstream_response" => ErrorKind::FormatMismatch,
            _ => ErrorKind::Other,
        },
        _ => ErrorKind::Other,
    }
}

/// Checks every model of `cfg` (or only the one named `only`); with `invoke`, also sends one
/// tiny request to each. Never fails as a whole: every problem is a failed step.
pub async fn check_models(cfg: &GatewayConfig, only: Option<&str>, invoke: bool) -> Vec<Step> {
    check_models_with(cfg, only, invoke, &ClientOptions::no_retries()).await
}

/// [`check_models`] with explicit client options.
pub async fn check_models_with(
    cfg: &GatewayConfig,
    only: Option<&str>,
    invoke: bool,
    options: &ClientOptions,
) -> Vec<Step> {
    let mut out = Vec::new();
    let models: Vec<&ModelConfig> = cfg
        .models
        .iter()
        .filter(|m| only.is_none_or(|n| m.name == n))
        .collect();
    if let (Some(name), true) = (only, models.is_empty()) {
        let names: Vec<&str> = cfg.models.iter().map(|m| m.name.as_str()).collect();
        out.push(Step::failed(
            format!("model {name}"),
            true,
            Instant::now(),
            ErrorKind::NotFound,
            format!(
                "no model named `{name}` in the config; configured: {}",
                names.join(", ")
            ),
        ));
        return out;
    }
    let mut clients: Vec<(AwsConfig, Result<Clients, AwsError>)> = Vec::new();
    for m in models {
        let started = Instant::now();
        let step = format!("model {}: DescribeEndpoint {}", m.name, m.endpoint_name);
        let Some(aws) = cfg.effective_aws(m) else {
            out.push(Step::failed(
                step,
                true,
                started,
                ErrorKind::Config,
                "no awsConfig for this model",
            ));
            continue;
        };
        let idx = match clients.iter().position(|(c, _)| c == &aws) {
            Some(i) => i,
            None => {
                let built = Clients::new(&aws, options).await;
                clients.push((aws.clone(), built));
                clients.len() - 1
            }
        };
        let described = match &clients[idx].1 {
            Err(e) => Err(e.clone()),
            Ok(c) => c
                .sagemaker
                .describe_endpoint()
                .endpoint_name(&m.endpoint_name)
                .send()
                .await
                .map_err(|e| classify("sagemaker:DescribeEndpoint", &e)),
        };
        let secrets = aws.secrets();
        let scrub = |s: String| sagebridge_aws::secret::scrub(&s, &secrets);
        let result = match described {
            Err(AwsError::NotFound { .. }) => Step::failed(
                step,
                true,
                started,
                ErrorKind::NotFound,
                format!(
                    "endpoint `{}` not found in {}; is it in another region or account? check endpointName, awsRegion and assumeRoleArn",
                    m.endpoint_name,
                    aws.region()
                ),
            ),
            Err(e) => Step::failed(step, true, started, e.kind(), scrub(e.to_string())),
            Ok(d) => {
                let status = d.endpoint_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
                let detail = format!("status {status}, {}", aws.credential_source());
                if status == "InService" {
                    Step::ok(step, true, started).with_detail(detail)
                } else {
                    let reason = d.failure_reason().map(|f| format!(": {f}")).unwrap_or_default();
                    Step::failed(
                        step,
                        true,
                        started,
                        ErrorKind::NotInService,
                        format!("endpoint `{}` is {status}{reason}; invocations work only once it is InService", m.endpoint_name),
                    )
                    .with_detail(detail)
                }
            }
        };
        let described_ok = result.passed();
        out.push(result);
        if invoke && described_ok {
            out.push(invoke_once(cfg, m, options).await);
        }
    }
    out
}

async fn invoke_once(cfg: &GatewayConfig, m: &ModelConfig, options: &ClientOptions) -> Step {
    let started = Instant::now();
    let step = format!(
        "model {}: InvokeEndpoint {} ({})",
        m.name,
        m.endpoint_name,
        m.format().as_str()
    );
    let one = GatewayConfig {
        server: cfg.server.clone(),
        aws_config: cfg.aws_config.clone(),
        models: vec![m.clone()],
    };
    let gw = match Gateway::with_options(
        &one,
        GatewayOptions {
            client: options.clone(),
            ..GatewayOptions::default()
        },
    ) {
        Ok(gw) => gw,
        Err(e) => return Step::failed(step, true, started, ErrorKind::Config, e.to_string()),
    };
    let model = &gw.models()[0];
    let result: Result<String, GatewayError> = async {
        match &model.adapter {
            Adapter::Chat(a) => {
                let req = ChatRequest::parse(
                    format!(r#"{{"model":{},"messages":[{{"role":"user","content":"ping"}}],"max_tokens":1}}"#, serde_json::to_string(&m.name).unwrap_or_default())
                        .as_bytes(),
                )?;
                let body = gw.invoker.invoke(&model.target, a.encode(&req, &model.defaults, false)?).await?;
                a.decode(&body, &ResponseCtx { model: &m.name, id: "check", created: now_secs(), request: None })?;
                Ok("the container answered a one-token chat request".to_owned())
            }
            Adapter::Embedding(a) => {
                let body = gw.invoker.invoke(&model.target, a.encode(&["ping".to_owned()], &m.name)).await?;
                let v = a.decode(&body, 1)?;
                Ok(format!("the container returned a vector of {} dimensions", v[0].len()))
            }
            Adapter::Rerank(a) => {
                let body = gw.invoker.invoke(&model.target, a.encode("ping", &["pong".to_owned()])).await?;
                a.decode(&body, 1)?;
                Ok("the container scored one document".to_owned())
            }
            Adapter::Transcription(a) => {
                // 0.1 s of silence, 16 kHz mono 16-bit.
                let mut audio = crate::audio::wav_header(1, 16_000, 16, 3_200);
                audio.resize(44 + 3_200, 0);
                let ask = crate::adapter::audio::TranscriptionAsk { task: "transcribe", ..Default::default() };
                let (body, _) = gw.invoker.invoke_as(&model.target, a.encode(&audio, "audio/wav", &ask)).await?;
                a.decode(&body)?;
                Ok("the container transcribed 0.1 s of silence".to_owned())
            }
            Adapter::Speech(a) => {
                let req = crate::audio::SpeechRequest { model: m.name.clone(), input: "ping".to_owned(), voice: None, response_format: None, speed: None };
                let format = a.formats().first().cloned().unwrap_or_else(|| "wav".to_owned());
                let (body, content_type) = gw.invoker.invoke_as(&model.target, a.encode(&req, &m.name, &format)).await?;
                Ok(format!("the container answered {} bytes of {}", body.len(), content_type.unwrap_or_else(|| format!("{format} audio"))))
            }
        }
    }
    .await;
    match result {
        Ok(detail) => Step::ok(step, true, started).with_detail(detail),
        Err(e) => Step::failed(step, true, started, error_kind(&e), e.to_string()),
    }
}
