//! `sagebridge.yaml`: the gateway's configuration.
//!
//! Loaded with the strict loader of `sagebridge_aws::yaml` (every unknown key reported with its
//! line and column, `${ENV}` interpolation), then validated as a whole: names unique, each
//! model's `format` fits its `kind`, chat templates compile, every model has AWS settings.

use std::collections::HashSet;
use std::path::Path;

use sagebridge_aws::yaml::{self, ConfigErrors, Problems, Validate};
use sagebridge_aws::{AwsConfig, Secret, DEFAULT_SESSION_NAME};
use serde::{Deserialize, Serialize};

/// The address the gateway listens on when `server.listen` is not set.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// SageMaker's InvokeEndpoint payload limit; embedding batches stay under it.
pub const SAGEMAKER_MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// The largest request body the gateway accepts by default (answered with 413 above it): room
/// for 2,048 embedding inputs of about 500 tokens, or a long chat context.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// How long one invocation may take by default before the gateway answers 504.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 120;
/// How many texts go into one embedding invocation by default (TEI's own default limit).
pub const DEFAULT_MAX_BATCH_SIZE: usize = 32;

/// How long a client may take to send a request's head (request line and headers), counted
/// from its first byte.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECONDS: f64 = 10.0;
/// How long a client may take to send a request's body, counted from its head.
pub const DEFAULT_BODY_READ_TIMEOUT_SECONDS: f64 = 30.0;
/// How long a connection may wait for its next request before it is closed.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: f64 = 60.0;
/// Open connections at most; further ones wait in the kernel's accept queue.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Invocations (`/v1` chat, embeddings, rerank) in flight at once, streams included.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;
/// Invocations of one model in flight at once.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS_PER_MODEL: usize = 512;
/// The longest a streamed answer may last.
pub const DEFAULT_MAX_STREAM_SECONDS: f64 = 900.0;
/// How long a write to a client may stay blocked (a client that stopped reading).
pub const DEFAULT_WRITE_IDLE_TIMEOUT_SECONDS: f64 = 30.0;
/// How long `serve` lets requests in flight finish after the shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE_SECONDS: f64 = 30.0;
/// The interval of the SSE comment (`: keep-alive`) sent while a container is silent.
pub const DEFAULT_HEARTBEAT_SECONDS: f64 = 15.0;
/// How often `serve` tries again to open a catalog it could not open.
pub const DEFAULT_CATALOG_RETRY_SECONDS: f64 = 5.0;
/// The longest partial line of a container's stream held while waiting for its newline.
pub const DEFAULT_MAX_STREAM_LINE_BYTES: usize = 1024 * 1024;
/// OpenAI's limit on the number of inputs of one embeddings request.
pub const DEFAULT_MAX_EMBEDDING_INPUTS: usize = 2048;
/// The total size of the texts of one embeddings request.
pub const DEFAULT_MAX_EMBEDDING_INPUT_BYTES: usize = 2 * 1024 * 1024;
/// SageMaker's limit on `CustomAttributes`.
pub const MAX_CUSTOM_ATTRIBUTES_BYTES: usize = 1024;
/// The longest a request may be held for a model scaled to zero (SageMaker takes minutes to
/// start a copy; clients rarely wait longer than this).
pub const MAX_COLD_START_WAIT_SECONDS: f64 = 900.0;
/// The largest number of seconds a duration key accepts (one day).
const MAX_SECONDS: f64 = 86_400.0;

/// The whole `sagebridge.yaml` file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default)]
    pub server: ServerConfig,
    /// AWS access for every model that has no `awsConfig` of its own.
    #[serde(default)]
    pub aws_config: Option<AwsConfig>,
    #[serde(default)]
    pub models: Vec<ModelConfig>,
}

/// The `server:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Accepted bearer tokens. Empty means no authentication (a warning is logged).
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    /// Requests with a larger body are answered with 413.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Upper bound for one invocation (and for the gap between two stream chunks).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Admin credentials of `serve` (catalog and admin API, `/metrics`, the web UI's data).
    /// Empty means `serve` makes a random one at start and listens on loopback only.
    #[serde(default)]
    pub admin_tokens: Vec<Secret>,
    /// Host names accepted in the `Host` header besides the loopback names (`localhost`,
    /// `127.0.0.1`, `[::1]`); every other host is refused (DNS-rebinding guard).
    #[serde(default)]
    pub public_hosts: Vec<String>,
    /// Serve `/metrics` without the admin credential.
    #[serde(default)]
    pub metrics_public: bool,
    /// Seconds a client may take to send a request head once its first byte arrived.
    #[serde(default = "d_header_read")]
    pub header_read_timeout_seconds: f64,
    /// Seconds a client may take to send a request body (answered 408 beyond).
    #[serde(default = "d_body_read")]
    pub body_read_timeout_seconds: f64,
    /// Seconds a keep-alive connection may wait for its next request.
    #[serde(default = "d_idle")]
    pub idle_timeout_seconds: f64,
    /// Open connections at most.
    #[serde(default = "d_max_connections")]
    pub max_connections: usize,
    /// Invocations in flight at once; beyond it `/v1` answers 503 with `Retry-After`.
    #[serde(default = "d_max_concurrent")]
    pub max_concurrent_requests: usize,
    /// Invocations of one model in flight at once; beyond it 503 with `Retry-After`.
    #[serde(default = "d_max_concurrent_per_model")]
    pub max_concurrent_requests_per_model: usize,
    /// The longest a streamed answer may last; it then ends with an error chunk.
    #[serde(default = "d_max_stream")]
    pub max_stream_seconds: f64,
    /// Seconds a write to a client may stay blocked before the connection is closed.
    #[serde(default = "d_write_idle")]
    pub write_idle_timeout_seconds: f64,
    /// Seconds requests in flight get to finish after the shutdown signal.
    #[serde(default = "d_shutdown_grace")]
    pub shutdown_grace_seconds: f64,
    /// Interval of the SSE `: keep-alive` comment while a container is silent.
    #[serde(default = "d_heartbeat")]
    pub heartbeat_seconds: f64,
    /// The longest line of a container's stream held while waiting for its newline.
    /// How often `serve` tries again to open a catalog that was missing its folder, newer,
    /// corrupt or waiting for a migration (the admin API answers 503 meanwhile).
    #[serde(default = "d_catalog_retry")]
    pub catalog_retry_seconds: f64,
    #[serde(default = "d_max_stream_line")]
    pub max_stream_line_bytes: usize,
    /// Inputs of one embeddings request at most.
    #[serde(default = "d_max_embedding_inputs")]
    pub max_embedding_inputs: usize,
    /// Total bytes of the texts of one embeddings request at most.
    #[serde(default = "d_max_embedding_input_bytes")]
    pub max_embedding_input_bytes: usize,
}

fn d_header_read() -> f64 {
    DEFAULT_HEADER_READ_TIMEOUT_SECONDS
}
fn d_body_read() -> f64 {
    DEFAULT_BODY_READ_TIMEOUT_SECONDS
}
fn d_idle() -> f64 {
    DEFAULT_IDLE_TIMEOUT_SECONDS
}
fn d_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}
fn d_max_concurrent() -> usize {
    DEFAULT_MAX_CONCURRENT_REQUESTS
}
fn d_max_concurrent_per_model() -> usize {
    DEFAULT_MAX_CONCURRENT_REQUESTS_PER_MODEL
}
fn d_max_stream() -> f64 {
    DEFAULT_MAX_STREAM_SECONDS
}
fn d_write_idle() -> f64 {
    DEFAULT_WRITE_IDLE_TIMEOUT_SECONDS
}
fn d_shutdown_grace() -> f64 {
    DEFAULT_SHUTDOWN_GRACE_SECONDS
}
fn d_heartbeat() -> f64 {
    DEFAULT_HEARTBEAT_SECONDS
}
fn d_catalog_retry() -> f64 {
    DEFAULT_CATALOG_RETRY_SECONDS
}
fn d_max_stream_line() -> usize {
    DEFAULT_MAX_STREAM_LINE_BYTES
}
fn d_max_embedding_inputs() -> usize {
    DEFAULT_MAX_EMBEDDING_INPUTS
}
fn d_max_embedding_input_bytes() -> usize {
    DEFAULT_MAX_EMBEDDING_INPUT_BYTES
}

/// A validated number of seconds as a `Duration` (out-of-range values, which validation
/// refuses, are clamped rather than panicking).
pub fn seconds(s: f64) -> std::time::Duration {
    if s.is_finite() && s > 0.0 {
        std::time::Duration::from_secs_f64(s.min(MAX_SECONDS))
    } else {
        std::time::Duration::from_millis(1)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            api_keys: Vec::new(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            admin_tokens: Vec::new(),
            public_hosts: Vec::new(),
            metrics_public: false,
            header_read_timeout_seconds: DEFAULT_HEADER_READ_TIMEOUT_SECONDS,
            body_read_timeout_seconds: DEFAULT_BODY_READ_TIMEOUT_SECONDS,
            idle_timeout_seconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_concurrent_requests_per_model: DEFAULT_MAX_CONCURRENT_REQUESTS_PER_MODEL,
            max_stream_seconds: DEFAULT_MAX_STREAM_SECONDS,
            write_idle_timeout_seconds: DEFAULT_WRITE_IDLE_TIMEOUT_SECONDS,
            shutdown_grace_seconds: DEFAULT_SHUTDOWN_GRACE_SECONDS,
            heartbeat_seconds: DEFAULT_HEARTBEAT_SECONDS,
            catalog_retry_seconds: DEFAULT_CATALOG_RETRY_SECONDS,
            max_stream_line_bytes: DEFAULT_MAX_STREAM_LINE_BYTES,
            max_embedding_inputs: DEFAULT_MAX_EMBEDDING_INPUTS,
            max_embedding_input_bytes: DEFAULT_MAX_EMBEDDING_INPUT_BYTES,
        }
    }
}

/// The shortest admin token accepted in `server.adminTokens`.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

impl ServerConfig {
    /// Why `serve` must not listen on `addr` with this config: a non-loopback address needs
    /// admin tokens (the generated one is only for a local user).
    pub fn listen_problem(&self, addr: &std::net::SocketAddr) -> Option<String> {
        if addr.ip().is_loopback() || !self.admin_tokens.is_empty() {
            return None;
        }
        Some(format!(
            "`{addr}` is not a loopback address and server.adminTokens is empty: set \
             server.adminTokens to listen on {ip}, or listen on 127.0.0.1",
            ip = addr.ip()
        ))
    }
}

/// Whether `s` is a host name (or an IP literal, IPv6 in brackets) without scheme, port or path.
fn is_host_name(s: &str) -> bool {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_owned()
}

fn default_max_request_bytes() -> usize {
    DEFAULT_MAX_REQUEST_BYTES
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

/// What a model is used for, which decides the API route that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Chat,
    Embedding,
    Rerank,
    /// Speech to text: `POST /v1/audio/transcriptions` and `/v1/audio/translations`.
    Transcription,
    /// Text to speech: `POST /v1/audio/speech`.
    Speech,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Chat => "chat",
            ModelKind::Embedding => "embedding",
            ModelKind::Rerank => "rerank",
            ModelKind::Transcription => "transcription",
            ModelKind::Speech => "speech",
        }
    }

    /// The format assumed when `format` is not set.
    pub fn default_format(self) -> Format {
        match self {
            ModelKind::Chat => Format::Openai,
            ModelKind::Embedding | ModelKind::Rerank => Format::Tei,
            ModelKind::Transcription => Format::Huggingface,
            ModelKind::Speech => Format::Openai,
        }
    }

    /// The formats a model of this kind may use.
    pub fn formats(self) -> &'static [Format] {
        match self {
            ModelKind::Chat => &[Format::Openai, Format::Tgi, Format::Lmi],
            ModelKind::Embedding => &[Format::Tei, Format::Jumpstart, Format::Dify, Format::Openai],
            ModelKind::Rerank => &[Format::Tei, Format::Dify],
            ModelKind::Transcription => &[Format::Huggingface, Format::Jumpstart],
            ModelKind::Speech => &[Format::Openai],
        }
    }
}

/// The request and response shapes of the serving container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// vLLM, TGI's Messages API, LMI with messages, SGLang: the OpenAI request and SSE stream.
    Openai,
    /// Text Generation Inference (`inputs`/`parameters`) and Text Embeddings Inference.
    Tgi,
    /// DJL Large Model Inference with `inputs` and JSON-lines streams.
    Lmi,
    /// Text Embeddings Inference (embeddings and rerank).
    Tei,
    /// SageMaker JumpStart embedding models (`text_inputs` -> `embedding`).
    Jumpstart,
    /// The shapes Dify's SageMaker provider sends (`inputs` -> `embeddings`, `docs` -> `scores`).
    Dify,
    /// The Hugging Face inference toolkit's raw-audio contract for speech recognition: the
    /// audio bytes as the body, with their audio content type -> `{"text"}`.
    Huggingface,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Openai => "openai",
            Format::Tgi => "tgi",
            Format::Lmi => "lmi",
            Format::Tei => "tei",
            Format::Jumpstart => "jumpstart",
            Format::Dify => "dify",
            Format::Huggingface => "huggingface",
        }
    }

    /// Whether the container takes a rendered prompt rather than chat messages.
    pub fn needs_prompt(self) -> bool {
        matches!(self, Format::Tgi | Format::Lmi)
    }
}

/// One entry of `models:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients put in `model`.
    pub name: String,
    pub kind: ModelKind,
    pub endpoint_name: String,
    /// For endpoints that host several inference components.
    #[serde(default)]
    pub inference_component: Option<String>,
    #[serde(default)]
    pub target_variant: Option<String>,
    /// For multi-model endpoints: the model artifact to invoke.
    #[serde(default)]
    pub target_model: Option<String>,
    #[serde(default)]
    pub custom_attributes: Option<String>,
    /// Defaults to `openai` for chat and `tei` for embedding and rerank.
    #[serde(default)]
    pub format: Option<Format>,
    /// Laid over the top-level `awsConfig` ([`merge_aws`]): its credential source (keys or
    /// profile) replaces the top-level one as a whole, the other keys override one by one, so
    /// a model in another account needs only `assumeRoleArn` (and `assumeRoleExternalId`,
    /// `awsRegion`) here.
    #[serde(default)]
    pub aws_config: Option<AwsConfig>,
    /// Used when a request sets no `max_tokens`.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Used when a request sets no `temperature`.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Shown in `/v1/models`; requests asking for more tokens than this are refused.
    #[serde(default)]
    pub context_length: Option<u32>,
    /// For `tgi` and `lmi` chat models: a built-in template name (`llama-3`, `mistral`,
    /// `chatml`) or a Jinja template as in a tokenizer's `chat_template`. Default `chatml`.
    #[serde(default)]
    pub chat_template: Option<String>,
    /// Texts per embedding invocation (default 32).
    #[serde(default)]
    pub max_batch_size: Option<usize>,
    /// Shown as `owned_by` in `/v1/models` (default `sagemaker`).
    #[serde(default)]
    pub owned_by: Option<String>,
    /// For speech models: the audio formats the container produces (`response_format` values,
    /// the first is the default). Default `["wav"]`; the gateway never transcodes.
    #[serde(default)]
    pub response_formats: Option<Vec<String>>,
    /// For chat models with format `openai` or `tgi`: the container reads images
    /// (`image_url` parts with `data:` URLs). Requests with images to other models are a 400.
    #[serde(default)]
    pub vision: bool,
    /// For models on an inference component that scales to zero: how long a request waits
    /// for a copy to start (0, the default: answer 503 with `Retry-After` at once).
    #[serde(default)]
    pub cold_start_wait_seconds: f64,
}

/// The `response_format` values of OpenAI's `POST /v1/audio/speech`.
pub const SPEECH_FORMATS: &[&str] = &["mp3", "opus", "aac", "flac", "wav", "pcm"];
/// What a speech model produces when `responseFormats` is not set.
pub const DEFAULT_SPEECH_FORMAT: &str = "wav";

impl ModelConfig {
    pub fn format(&self) -> Format {
        self.format.unwrap_or_else(|| self.kind.default_format())
    }

    /// The audio formats of a speech model (`responseFormats`, default `["wav"]`).
    pub fn speech_formats(&self) -> Vec<String> {
        match &self.response_formats {
            Some(f) if !f.is_empty() => f.clone(),
            _ => vec![DEFAULT_SPEECH_FORMAT.to_owned()],
        }
    }
}

impl GatewayConfig {
    /// The AWS settings of model `m`: its own `awsConfig` merged over the top-level one.
    pub fn effective_aws(&self, m: &ModelConfig) -> Option<AwsConfig> {
        match (&self.aws_config, &m.aws_config) {
            (None, None) => None,
            (Some(base), None) => Some(base.clone()),
            (None, Some(own)) => Some(own.clone()),
            (Some(base), Some(own)) => Some(merge_aws(base, own)),
        }
    }
}

/// `over`'s keys where set, else `base`'s.
pub fn merge_aws(base: &AwsConfig, over: &AwsConfig) -> AwsConfig {
    fn pick<T: Clone>(o: &Option<T>, b: &Option<T>) -> Option<T> {
        o.clone().or_else(|| b.clone())
    }
    // The credential source (static keys with their token, or a profile) is one thing: a model
    // that names its own replaces the top-level one as a whole, never mixing a key of one with
    // the secret or profile of the other. Role fields layer on top of whichever source applies.
    let source = if over.aws_access_key_id.is_some() || over.profile_name.is_some() {
        over
    } else {
        base
    };
    let (key, secret, token, profile) = (
        source.aws_access_key_id.clone(),
        source.aws_secret_access_key.clone(),
        source.aws_session_token.clone(),
        source.profile_name.clone(),
    );
    AwsConfig {
        aws_access_key_id: key,
        aws_secret_access_key: secret,
        aws_session_token: token,
        aws_region: pick(&over.aws_region, &base.aws_region),
        end_point_url: pick(&over.end_point_url, &base.end_point_url),
        runtime_end_point_url: pick(&over.runtime_end_point_url, &base.runtime_end_point_url),
        sts_end_point_url: pick(&over.sts_end_point_url, &base.sts_end_point_url),
        profile_name: profile,
        assume_role_arn: pick(&over.assume_role_arn, &base.assume_role_arn),
        assume_role_session_name: if !over.assume_role_session_name.is_empty()
            && over.assume_role_session_name != DEFAULT_SESSION_NAME
        {
            over.assume_role_session_name.clone()
        } else {
            base.assume_role_session_name.clone()
        },
        assume_role_source_identity: pick(
            &over.assume_role_source_identity,
            &base.assume_role_source_identity,
        ),
        assume_role_external_id: pick(&over.assume_role_external_id, &base.assume_role_external_id),
        assume_role_duration_seconds: pick(
            &over.assume_role_duration_seconds,
            &base.assume_role_duration_seconds,
        ),
        enabled: pick(&over.enabled, &base.enabled),
    }
}

/// Loads and validates `sagebridge.yaml`.
pub fn load_file(path: &Path) -> Result<GatewayConfig, ConfigErrors> {
    yaml::load_file(path)
}

/// Loads and validates a config held in memory (`name` is shown in errors).
pub fn load_str(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GatewayConfig, ConfigErrors> {
    yaml::load(&yaml::ConfigText { name, text, env })
}

fn is_endpoint_name(s: &str) -> bool {
    // SageMaker: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Validate for GatewayConfig {
    fn validate(&self, p: &mut Problems) {
        p.at("server", |p| {
            match self.server.listen.parse::<std::net::SocketAddr>() {
                Err(_) => p.add(
                    "listen",
                    format!(
                        "`{}` is not an address with a port (for example 127.0.0.1:8080)",
                        self.server.listen
                    ),
                ),
                Ok(addr) => {
                    if let Some(problem) = self.server.listen_problem(&addr) {
                        p.add("listen", problem);
                    }
                }
            }
            for (i, t) in self.server.admin_tokens.iter().enumerate() {
                if t.expose().chars().count() < MIN_ADMIN_TOKEN_CHARS {
                    p.add(
                        &format!("adminTokens[{i}]"),
                        format!(
                            "admin tokens must be at least {MIN_ADMIN_TOKEN_CHARS} characters \
                             long; make one with `openssl rand -hex 32`"
                        ),
                    );
                } else if t.expose().chars().any(char::is_whitespace) {
                    p.add(
                        &format!("adminTokens[{i}]"),
                        "admin tokens must not contain spaces",
                    );
                } else if self.server.api_keys.contains(t) {
                    p.add(
                        &format!("adminTokens[{i}]"),
                        "an admin token must differ from every API key in server.apiKeys",
                    );
                }
            }
            for (i, h) in self.server.public_hosts.iter().enumerate() {
                if !is_host_name(h) {
                    p.add(
                        &format!("publicHosts[{i}]"),
                        format!(
                            "`{h}` is not a host name: give the name alone, without scheme, \
                             port or path (for example sagebridge.example.com)"
                        ),
                    );
                }
            }
            for (i, k) in self.server.api_keys.iter().enumerate() {
                if k.expose().len() < 8 {
                    p.add(
                        &format!("apiKeys[{i}]"),
                        "API keys must be at least 8 characters long",
                    );
                }
            }
            if self.server.timeout_seconds == 0 {
                p.add("timeoutSeconds", "must be at least 1");
            }
            if self.server.max_request_bytes < 1024 {
                p.add("maxRequestBytes", "must be at least 1024");
            }
            let s = &self.server;
            for (key, v) in [
                ("headerReadTimeoutSeconds", s.header_read_timeout_seconds),
                ("bodyReadTimeoutSeconds", s.body_read_timeout_seconds),
                ("idleTimeoutSeconds", s.idle_timeout_seconds),
                ("maxStreamSeconds", s.max_stream_seconds),
                ("writeIdleTimeoutSeconds", s.write_idle_timeout_seconds),
                ("shutdownGraceSeconds", s.shutdown_grace_seconds),
                ("heartbeatSeconds", s.heartbeat_seconds),
                ("catalogRetrySeconds", s.catalog_retry_seconds),
            ] {
                if !(v.is_finite() && (0.01..=MAX_SECONDS).contains(&v)) {
                    p.add(
                        key,
                        format!("must be between 0.01 and {MAX_SECONDS} seconds"),
                    );
                }
            }
            for (key, v, min) in [
                ("maxConnections", s.max_connections, 1),
                ("maxConcurrentRequests", s.max_concurrent_requests, 1),
                (
                    "maxConcurrentRequestsPerModel",
                    s.max_concurrent_requests_per_model,
                    1,
                ),
                ("maxStreamLineBytes", s.max_stream_line_bytes, 1024),
                ("maxEmbeddingInputs", s.max_embedding_inputs, 1),
                ("maxEmbeddingInputBytes", s.max_embedding_input_bytes, 1),
            ] {
                if v < min {
                    p.add(key, format!("must be at least {min}"));
                }
            }
        });
        if let Some(aws) = &self.aws_config {
            p.at("awsConfig", |p| aws.validate(p));
        }
        let mut seen = HashSet::new();
        for (i, m) in self.models.iter().enumerate() {
            p.at(&format!("models[{i}]"), |p| {
                if m.name.trim().is_empty() || m.name.chars().any(char::is_whitespace) {
                    p.add("name", "a model name must be non-empty and contain no spaces");
                } else if !seen.insert(m.name.as_str()) {
                    p.add("name", format!("model name `{}` is used twice; names must be unique", m.name));
                }
                if !is_endpoint_name(&m.endpoint_name) {
                    p.add(
                        "endpointName",
                        format!(
                            "`{}` is not a SageMaker endpoint name (1 to 63 letters, digits and hyphens)",
                            m.endpoint_name
                        ),
                    );
                }
                let format = m.format();
                if !m.kind.formats().contains(&format) {
                    let valid: Vec<&str> = m.kind.formats().iter().map(|f| f.as_str()).collect();
                    p.add(
                        "format",
                        format!(
                            "format `{}` cannot serve a {} model; use one of: {}",
                            format.as_str(),
                            m.kind.as_str(),
                            valid.join(", ")
                        ),
                    );
                }
                if let Some(t) = &m.chat_template {
                    if m.kind != ModelKind::Chat || !format.needs_prompt() {
                        p.add("chatTemplate", "chatTemplate applies only to chat models with format tgi or lmi");
                    } else if let Err(e) = crate::adapter::template::ChatTemplate::new(t) {
                        p.add("chatTemplate", format!("the template does not compile: {e}"));
                    }
                }
                if let Some(t) = m.temperature {
                    if !(0.0..=2.0).contains(&t) {
                        p.add("temperature", "must be between 0 and 2");
                    }
                }
                if m.max_tokens == Some(0) {
                    p.add("maxTokens", "must be at least 1");
                }
                if let Some(a) = &m.custom_attributes {
                    if a.len() > MAX_CUSTOM_ATTRIBUTES_BYTES {
                        p.add(
                            "customAttributes",
                            format!(
                                "is {} bytes long; SageMaker accepts at most {MAX_CUSTOM_ATTRIBUTES_BYTES}",
                                a.len()
                            ),
                        );
                    } else if let Some(c) = a.chars().find(|c| !(' '..='~').contains(c)) {
                        p.add(
                            "customAttributes",
                            format!(
                                "must be printable ASCII (SageMaker's X-Amzn-SageMaker-Custom-Attributes header); found {}",
                                c.escape_default()
                            ),
                        );
                    }
                }
                if m.target_model.is_some() && m.kind == ModelKind::Chat {
                    p.add(
                        "targetModel",
                        "targetModel cannot be used with a chat model: chat answers may be \
                         streamed, and InvokeEndpointWithResponseStream has no TargetModel; serve \
                         the multi-model endpoint's model as an embedding or rerank model, or \
                         deploy it on an endpoint of its own",
                    );
                }
                if m.max_batch_size == Some(0) {
                    p.add("maxBatchSize", "must be at least 1");
                }
                if let Some(formats) = &m.response_formats {
                    if m.kind != ModelKind::Speech {
                        p.add("responseFormats", "responseFormats applies only to speech models");
                    } else if formats.is_empty() {
                        p.add(
                            "responseFormats",
                            "must list at least one audio format (or be left out for [wav])",
                        );
                    }
                    for (j, f) in formats.iter().enumerate() {
                        if !SPEECH_FORMATS.contains(&f.as_str()) {
                            p.add(
                                &format!("responseFormats[{j}]"),
                                format!(
                                    "`{f}` is not an audio format of POST /v1/audio/speech; use one of: {}",
                                    SPEECH_FORMATS.join(", ")
                                ),
                            );
                        }
                    }
                }
                if m.vision
                    && (m.kind != ModelKind::Chat || !matches!(format, Format::Openai | Format::Tgi))
                {
                    p.add(
                        "vision",
                        "vision applies only to chat models with format openai or tgi (lmi \
                         containers take text only)",
                    );
                }
                let wait = m.cold_start_wait_seconds;
                if !(wait.is_finite() && (0.0..=MAX_COLD_START_WAIT_SECONDS).contains(&wait)) {
                    p.add(
                        "coldStartWaitSeconds",
                        format!("must be between 0 and {MAX_COLD_START_WAIT_SECONDS} seconds"),
                    );
                } else if wait > 0.0 && m.inference_component.is_none() {
                    p.add(
                        "coldStartWaitSeconds",
                        "coldStartWaitSeconds applies only to models with an inferenceComponent \
                         (only inference components scale to zero)",
                    );
                }
                if m.max_batch_size.is_some() && m.kind != ModelKind::Embedding {
                    p.add("maxBatchSize", "maxBatchSize applies only to embedding models");
                }
                match (&self.aws_config, &m.aws_config) {
                    (None, None) => p.add(
                        "awsConfig",
                        "no AWS settings: set awsConfig at the top level or on this model",
                    ),
                    (Some(_), Some(_)) | (None, Some(_)) => {
                        if let Some(eff) = self.effective_aws(m) {
                            p.at("awsConfig", |p| eff.validate(p));
                        }
                    }
                    (Some(_), None) => {}
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<GatewayConfig, ConfigErrors> {
        let env = |k: &str| match k {
            "GW_KEY" => Some("key-from-env-123".to_owned()),
            _ => None,
        };
        load_str("sagebridge.yaml", text, &env)
    }

    fn messages(e: &ConfigErrors) -> Vec<String> {
        e.0.iter().map(|e| e.to_string()).collect()
    }

    const GOOD: &str = r#"
server:
  apiKeys: ["${GW_KEY}"]
awsConfig:
  awsRegion: us-east-1
models:
  - name: llama
    kind: chat
    endpointName: llama-3-8b
    format: tgi
    chatTemplate: llama-3
    maxTokens: 256
  - name: embed
    kind: embedding
    endpointName: bge
    format: jumpstart
  - name: rerank
    kind: rerank
    endpointName: bge-rerank
    inferenceComponent: ic-1
    awsConfig:
      awsRegion: eu-west-1
      profileName: other-account
      assumeRoleSessionName: gateway
"#;

    #[test]
    fn good_config_loads_with_defaults() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.server.listen, DEFAULT_LISTEN);
        assert_eq!(c.server.api_keys[0].expose(), "key-from-env-123");
        assert_eq!(c.models.len(), 3);
        assert_eq!(c.models[0].format(), Format::Tgi);
        assert_eq!(c.models[2].format(), Format::Tei);
        let eff = c.effective_aws(&c.models[2]).unwrap();
        assert_eq!(eff.aws_region.as_deref(), Some("eu-west-1"));
        assert_eq!(eff.assume_role_session_name, "gateway");
        assert_eq!(eff.profile_name.as_deref(), Some("other-account"));
        assert_eq!(c.effective_aws(&c.models[0]).unwrap().region(), "us-east-1");
    }

    #[test]
    fn all_problems_reported_with_paths() {
        let text = r#"
server:
  listen: nowhere
models:
  - name: a
    kind: chat
    endpointName: ok
    format: tei
  - name: a
    kind: rerank
    endpointName: "bad name"
    format: jumpstart
    chatTemplate: "{{ broken"
  - name: b
    kind: embedding
    endpointName: e
    temperature: 3
    awsConfig: {awsRegion: us-east-1}
"#;
        let e = load(text).unwrap_err();
        let m = messages(&e);
        let has = |path: &str, text: &str| {
            assert!(
                m.iter().any(|x| x.contains(path) && x.contains(text)),
                "{path} / {text} not in {m:#?}"
            );
        };
        has("server.listen", "not an address");
        has(
            "models[0].format",
            "format `tei` cannot serve a chat model; use one of: openai, tgi, lmi",
        );
        has("models[1].name", "used twice");
        has("models[1].endpointName", "not a SageMaker endpoint name");
        has("models[1].format", "cannot serve a rerank model");
        has("models[1].chatTemplate", "applies only to chat models");
        has("models[0].awsConfig", "no AWS settings");
        has("models[2].temperature", "between 0 and 2");
        assert!(
            !m.iter().any(|x| x.contains("models[2].awsConfig")),
            "{m:#?}"
        );
    }

    #[test]
    fn unknown_keys_and_enum_values() {
        let e = load("awsConfig: {awsRegion: us-east-1}\nmodels:\n  - name: a\n    kind: chatbot\n    endpointName: x\n    endpoint: y\n").unwrap_err();
        let m = messages(&e).join("\n");
        assert!(
            m.contains("unknown value `chatbot`; expected one of: chat, embedding, rerank"),
            "{m}"
        );
        let e = load("awsConfig: {awsRegion: us-east-1}\nmodels:\n  - name: a\n    kind: chat\n    endpointName: x\n    endpoint: y\n").unwrap_err();
        let m = messages(&e).join("\n");
        assert!(
            m.contains("sagebridge.yaml:6:5: models[0].endpoint: unknown key `endpoint`"),
            "{m}"
        );
    }

    #[test]
    fn bad_template_reported() {
        let e = load("awsConfig: {awsRegion: us-east-1}\nmodels:\n  - {name: a, kind: chat, endpointName: x, format: tgi, chatTemplate: '{% for %}'}\n").unwrap_err();
        assert!(
            messages(&e)[0].contains("the template does not compile"),
            "{:?}",
            messages(&e)
        );
    }

    #[test]
    fn example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sagebridge.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let env = |_: &str| None;
        let c = load_str("examples/sagebridge.yaml", &text, &env).unwrap();
        assert!(c.models.len() >= 6);
    }

    #[test]
    fn server_auth_settings_load_and_validate() {
        let env = |k: &str| match k {
            "ADMIN" => Some("admin-token-from-env-0123".to_owned()),
            _ => None,
        };
        let text = "server:\n  listen: 0.0.0.0:8080\n  adminTokens: [\"${ADMIN}\"]\n  \
                    publicHosts: [sagebridge.example.com, \"[::1]\"]\n  metricsPublic: true\n";
        let c = load_str("sagebridge.yaml", text, &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.server.admin_tokens[0].expose(),
            "admin-token-from-env-0123"
        );
        assert_eq!(c.server.public_hosts, ["sagebridge.example.com", "[::1]"]);
        assert!(c.server.metrics_public);
        // The secret never prints.
        assert!(!format!("{c:?}").contains("admin-token-from-env"));

        let d = load("server: {}\n").unwrap();
        assert!(d.server.admin_tokens.is_empty() && d.server.public_hosts.is_empty());
        assert!(!d.server.metrics_public);
    }

    #[test]
    fn non_loopback_listen_needs_admin_tokens() {
        let e = load("server:\n  listen: 0.0.0.0:8080\n").unwrap_err();
        let m = messages(&e).join("\n");
        assert!(
            m.contains("server.listen")
                && m.contains("set server.adminTokens to listen on 0.0.0.0"),
            "{m}"
        );
        for ok in ["127.0.0.1:0", "[::1]:8080", "127.0.0.2:9000"] {
            load(&format!("server:\n  listen: \"{ok}\"\n")).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn bad_admin_tokens_and_public_hosts_are_reported() {
        let text = "server:\n  apiKeys: [shared-key-0123456789]\n  adminTokens: [short, \
                    shared-key-0123456789, \"with space 0123456789\"]\n  \
                    publicHosts: [\"https://x.example.com\", \"x.example.com:8080\", ok.example.com, \"\"]\n  \
                    metricPublic: true\n";
        let e = load(text).unwrap_err();
        let m = messages(&e);
        let has = |path: &str, text: &str| {
            assert!(
                m.iter().any(|x| x.contains(path) && x.contains(text)),
                "{path} / {text} not in {m:#?}"
            );
        };
        // An unknown key is reported with its position, as everywhere.
        has("sagebridge.yaml:5:3", "unknown key `metricPublic`");
        let e = load(&text.replace("  metricPublic: true\n", "")).unwrap_err();
        let m = messages(&e);
        let has = |path: &str, text: &str| {
            assert!(
                m.iter().any(|x| x.contains(path) && x.contains(text)),
                "{path} / {text} not in {m:#?}"
            );
        };
        has("server.adminTokens[0]", "at least 16 characters");
        has("server.adminTokens[1]", "must differ from every API key");
        has("server.adminTokens[2]", "must not contain spaces");
        has(
            "server.publicHosts[0]",
            "`https://x.example.com` is not a host name",
        );
        has("server.publicHosts[1]", "without scheme, port or path");
        has("server.publicHosts[3]", "is not a host name");
        assert!(!m.iter().any(|x| x.contains("publicHosts[2]")), "{m:#?}");
        assert!(!m.join("\n").contains("shared-key-0123456789"), "{m:#?}");
    }

    #[test]
    fn server_limits_have_safe_defaults_and_are_validated() {
        let d = load("server: {}\n").unwrap().server;
        assert_eq!(d.max_request_bytes, 4 * 1024 * 1024);
        assert_eq!(d.max_embedding_inputs, 2048);
        assert_eq!(d.heartbeat_seconds, 15.0);
        assert!(d.max_connections >= 1 && d.max_concurrent_requests >= 1);
        let c = load(
            "server:\n  headerReadTimeoutSeconds: 0.2\n  maxConnections: 3\n  heartbeatSeconds: 1\n  maxConcurrentRequestsPerModel: 2\n",
        )
        .unwrap();
        assert_eq!(c.server.header_read_timeout_seconds, 0.2);
        assert_eq!(
            seconds(c.server.header_read_timeout_seconds).as_millis(),
            200
        );
        assert_eq!(c.server.max_connections, 3);
        let text = "server:\n  headerReadTimeoutSeconds: 0\n  maxStreamSeconds: -1\n  \
                    writeIdleTimeoutSeconds: 1000000\n  maxConnections: 0\n  \
                    maxStreamLineBytes: 10\n  maxEmbeddingInputs: 0\n";
        let m = messages(&load(text).unwrap_err());
        for (path, line) in [
            ("server.headerReadTimeoutSeconds", 2),
            ("server.maxStreamSeconds", 3),
            ("server.writeIdleTimeoutSeconds", 4),
            ("server.maxConnections", 5),
            ("server.maxStreamLineBytes", 6),
            ("server.maxEmbeddingInputs", 7),
        ] {
            let at = format!("sagebridge.yaml:{line}:");
            assert!(
                m.iter().any(|x| x.contains(path) && x.contains(&at)),
                "{path} at {at} not in {m:#?}"
            );
        }
    }

    #[test]
    fn custom_attributes_and_target_model_are_checked_at_load() {
        let base = "awsConfig: {awsRegion: us-east-1}\nmodels:\n";
        let ok = format!(
            "{base}  - {{name: e, kind: embedding, endpointName: x, targetModel: m.tar.gz, customAttributes: \"trace=1; a=b\"}}\n"
        );
        load(&ok).unwrap_or_else(|e| panic!("{e}"));
        let long = "a".repeat(1025);
        let text = format!(
            "{base}  - name: c\n    kind: chat\n    endpointName: x\n    targetModel: model-a.tar.gz\n  \
             - name: e\n    kind: embedding\n    endpointName: y\n    customAttributes: \"tab\\there\"\n  \
             - name: r\n    kind: rerank\n    endpointName: z\n    customAttributes: {long}\n"
        );
        let m = messages(&load(&text).unwrap_err());
        let has = |path: &str, pos: &str, text: &str| {
            assert!(
                m.iter()
                    .any(|x| x.contains(path) && x.contains(pos) && x.contains(text)),
                "{path} {pos} {text} not in {m:#?}"
            );
        };
        has(
            "models[0].targetModel",
            "sagebridge.yaml:6:",
            "InvokeEndpointWithResponseStream has no TargetModel",
        );
        has(
            "models[1].customAttributes",
            "sagebridge.yaml:10:",
            "printable ASCII",
        );
        has(
            "models[2].customAttributes",
            "sagebridge.yaml:14:",
            "at most 1024",
        );
        assert_eq!(m.len(), 3, "{m:#?}");
    }

    #[test]
    fn vision_only_on_openai_and_tgi_chat_models() {
        let base = "awsConfig: {awsRegion: us-east-1}\nmodels:\n";
        let ok = format!(
            "{base}  - {{name: a, kind: chat, endpointName: x, vision: true}}\n  - {{name: b, kind: chat, endpointName: y, format: tgi, vision: true}}\n  - {{name: c, kind: chat, endpointName: z}}\n"
        );
        let c = load(&ok).unwrap();
        assert_eq!(
            c.models.iter().map(|m| m.vision).collect::<Vec<_>>(),
            [true, true, false]
        );
        let bad = format!(
            "{base}  - {{name: a, kind: chat, endpointName: x, format: lmi, vision: true}}\n  - {{name: b, kind: embedding, endpointName: y, vision: true}}\n  - {{name: c, kind: chat, endpointName: z, vision: yes-please}}\n"
        );
        let m = messages(&load(&bad).unwrap_err()).join("\n");
        assert!(m.contains("models[0].vision"), "{m}");
        assert!(m.contains("models[1].vision"), "{m}");
        assert!(
            m.contains("vision applies only to chat models with format openai or tgi"),
            "{m}"
        );
        assert!(m.contains(":5:"), "line of the ill-typed value: {m}");
    }

    #[test]
    fn cold_start_wait_needs_an_inference_component_and_a_sane_value() {
        let base = "awsConfig: {awsRegion: us-east-1}\nmodels:\n";
        let ok = format!(
            "{base}  - {{name: a, kind: chat, endpointName: x, inferenceComponent: ic, coldStartWaitSeconds: 120}}\n  - {{name: b, kind: chat, endpointName: y}}\n"
        );
        let c = load(&ok).unwrap();
        assert_eq!(c.models[0].cold_start_wait_seconds, 120.0);
        assert_eq!(c.models[1].cold_start_wait_seconds, 0.0);
        let bad = format!(
            "{base}  - {{name: a, kind: chat, endpointName: x, coldStartWaitSeconds: 5}}\n  - {{name: b, kind: chat, endpointName: y, inferenceComponent: ic, coldStartWaitSeconds: -1}}\n  - {{name: c, kind: chat, endpointName: z, inferenceComponent: ic, coldStartWaitSeconds: 100000}}\n"
        );
        let m = messages(&load(&bad).unwrap_err()).join("\n");
        assert!(
            m.contains("models[0].coldStartWaitSeconds")
                && m.contains("only inference components scale to zero"),
            "{m}"
        );
        assert!(
            m.contains("models[1].coldStartWaitSeconds: must be between 0 and 900"),
            "{m}"
        );
        assert!(
            m.contains("models[2].coldStartWaitSeconds: must be between 0 and 900"),
            "{m}"
        );
    }

    #[test]
    fn audio_kinds_formats_and_response_formats() {
        let base = "awsConfig: {awsRegion: us-east-1}\nmodels:\n";
        let ok = format!(
            "{base}  - {{name: w, kind: transcription, endpointName: asr}}\n  \
             - {{name: t, kind: speech, endpointName: tts, responseFormats: [mp3, wav]}}\n  \
             - {{name: t2, kind: speech, endpointName: tts}}\n"
        );
        let c = load(&ok).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.models[0].format(), Format::Huggingface);
        assert_eq!(c.models[1].format(), Format::Openai);
        assert_eq!(c.models[1].speech_formats(), ["mp3", "wav"]);
        assert_eq!(c.models[2].speech_formats(), ["wav"]);
        let text = format!(
            "{base}  - name: w\n    kind: transcription\n    endpointName: asr\n    format: tei\n  \
             - name: t\n    kind: speech\n    endpointName: tts\n    responseFormats: [wav, ogg]\n  \
             - name: e\n    kind: embedding\n    endpointName: e\n    responseFormats: [wav]\n  \
             - name: s\n    kind: speech\n    endpointName: s\n    format: huggingface\n"
        );
        let m = messages(&load(&text).unwrap_err());
        let has = |pos: &str, text: &str| {
            assert!(
                m.iter().any(|x| x.contains(pos) && x.contains(text)),
                "{pos} {text} not in {m:#?}"
            );
        };
        has(
            "sagebridge.yaml:6:13: models[0].format",
            "format `tei` cannot serve a transcription model; use one of: huggingface, jumpstart",
        );
        has(
            "sagebridge.yaml:10:",
            "models[1].responseFormats[1]: `ogg` is not an audio format",
        );
        has(
            "sagebridge.yaml:14:",
            "responseFormats applies only to speech models",
        );
        has(
            "models[3].format",
            "format `huggingface` cannot serve a speech model; use one of: openai",
        );
        assert_eq!(m.len(), 4, "{m:#?}");
    }

    #[test]
    fn a_models_credential_source_replaces_the_top_level_one_and_roles_layer_on_top() {
        let base = AwsConfig {
            aws_access_key_id: Some("AKIABASE".into()),
            aws_secret_access_key: Some(Secret::new("base-secret")),
            aws_region: Some("us-east-1".into()),
            ..Default::default()
        };
        let over = AwsConfig {
            profile_name: Some("other".into()),
            ..Default::default()
        };
        // A model with its own profile uses that profile, not the top-level keys.
        let m = merge_aws(&base, &over);
        assert_eq!(m.aws_access_key_id, None);
        assert!(m.aws_secret_access_key.is_none());
        assert_eq!(m.profile_name.as_deref(), Some("other"));
        assert_eq!(m.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(m.assume_role_session_name, "");

        // Its own keys replace the top-level profile and keys, token included.
        let base = AwsConfig {
            profile_name: Some("shared".into()),
            aws_session_token: Some(Secret::new("base-token")),
            ..base
        };
        let over = AwsConfig {
            aws_access_key_id: Some("AKIAOWN".into()),
            aws_secret_access_key: Some(Secret::new("own-secret")),
            ..Default::default()
        };
        let m = merge_aws(&base, &over);
        assert_eq!(m.aws_access_key_id.as_deref(), Some("AKIAOWN"));
        assert_eq!(
            m.aws_secret_access_key.as_ref().map(Secret::expose),
            Some("own-secret")
        );
        assert!(
            m.aws_session_token.is_none(),
            "the top-level token belongs to other keys"
        );
        assert_eq!(m.profile_name, None);

        // Role fields alone layer on the top-level source.
        let over = AwsConfig {
            assume_role_arn: Some("arn:aws:iam::210987654321:role/other-account".into()),
            assume_role_external_id: Some("ext-42".into()),
            ..Default::default()
        };
        let m = merge_aws(&base, &over);
        assert_eq!(m.profile_name.as_deref(), Some("shared"));
        assert_eq!(m.aws_access_key_id.as_deref(), Some("AKIABASE"));
        assert_eq!(m.assume_role_external_id.as_deref(), Some("ext-42"));
        assert!(m.assume_role_arn.is_some());
    }
}
