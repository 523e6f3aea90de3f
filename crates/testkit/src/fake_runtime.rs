//! A fake SageMaker runtime: `POST /endpoints/{name}/invocations` and
//! `/endpoints/{name}/invocations-response-stream`, with real AWS event-stream framing.
//!
//! moto answers InvokeEndpoint with canned bodies but has no InvokeEndpointWithResponseStream
//! and no faults, so the gateway's tests and benchmark use this instead. Point the SDK at it
//! with `endPointURL: <FakeRuntime::endpoint()>`. Each endpoint is given a behaviour: the
//! container family it imitates (one per gateway format), the tokens it answers, how its
//! stream is cut into `PayloadPart`s (one event per part, every N bytes, random cuts, several
//! events per part), latency, and faults (throttling, ModelError, not ready, access denied,
//! errors in the middle of a stream). Chat endpoints check what a real container checks:
//! vision endpoints decode every image data URL (and text-only `OpenAiChat` refuses images, as
//! vLLM does), `OpenAiChat` answers tool calls as vLLM streams them and can send
//! `reasoning_content` as a reasoning parser does, and inference components can be scaled to
//! zero (SageMaker's no-capacity `ValidationError`, `CurrentCopyCount: 0`). It records every
//! invocation with its SageMaker headers and counts streams that were completed and streams the
//! client abandoned.
//!
//! It also answers the one control-plane call the gateway makes, `DescribeEndpoint` (awsJson1.1
//! on `POST /`), with each endpoint's configured status, so that `test-connection` can be
//! tested against endpoints that are `Creating` or `Failed`, which moto cannot produce (its
//! endpoints are always `InService`). `endPointURL` applies to the control-plane and the
//! runtime client alike, so one fake serves both.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// The account the fake pretends to be.
pub const FAKE_ACCOUNT: &str = "123456789012";
/// How many invocations are kept for [`FakeRuntime::invocations`] (the oldest are dropped).
const RECORD_LIMIT: usize = 1000;
/// TEI's default maximum client batch size, which the TEI fakes enforce too.
pub const TEI_MAX_BATCH: usize = 32;

/// The container family an endpoint imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// vLLM / TGI Messages API: OpenAI request, OpenAI JSON, OpenAI SSE stream.
    OpenAiChat,
    /// TGI: `{"inputs","parameters"}` -> `[{"generated_text","details"}]`, `data:{"token"}` SSE.
    TgiChat,
    /// DJL LMI: `{"inputs","parameters"}` -> `{"generated_text"}`, JSON-lines `{"token"}`.
    LmiChat,
    /// TEI: `{"inputs":[..]}` -> `[[..]]` (at most 32 inputs, as TEI's default).
    TeiEmbed,
    /// JumpStart: `{"text_inputs":[..]}` -> `{"embedding":[[..]]}`.
    JumpStartEmbed,
    /// Dify's shape: `{"inputs":[..]}` -> `{"embeddings":[[..]]}`.
    DifyEmbed,
    /// OpenAI embeddings: `{"input":[..]}` -> `{"data":[{"embedding"}]}`.
    OpenAiEmbed,
    /// TEI rerank: `{"query","texts"}` -> `[{"index","score"}]`, best first.
    TeiRerank,
    /// Dify's shape: `{"inputs":[q,..],"docs":[..]}` -> `{"scores":[..]}`, document order.
    DifyRerank,
    /// Hugging Face speech recognition, raw audio: the audio bytes with an `audio/*` content
    /// type -> `{"text"}`, the text being [`fake_transcript`] of the WAV's duration.
    HfTranscribe,
    /// SageMaker JumpStart Whisper: WAV bytes with content type `audio/wav` (any other name is
    /// a 400 "unsupported content type", as the real container answers) -> `{"text": [..]}`.
    JumpStartTranscribe,
    /// OpenAI-compatible text to speech: `{"input","response_format",..}` -> a WAV tone
    /// ([`wav_tone`]) of 0.1 s per word, `audio/wav`; any format but `wav` is a 400 ModelError.
    OpenAiSpeech,
}

/// What [`Behaviour::HfTranscribe`] hears in any audio.
pub const FAKE_TRANSCRIPT: &str = "the quick brown fox";
/// SageMaker's InvokeEndpoint payload limit, which the fake enforces.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// The fake transcript of audio lasting `seconds`: the fixed text and the duration.
pub fn fake_transcript(seconds: f64) -> String {
    format!("{FAKE_TRANSCRIPT} ({seconds:.2} s)")
}

/// A 440 Hz tone as a 16-bit mono PCM WAV file.
pub fn wav_tone(seconds: f64, sample_rate: u32) -> Vec<u8> {
    let n = (seconds.max(0.0) * f64::from(sample_rate)).round() as usize;
    let data_len = n * 2;
    let mut w = Vec::with_capacity(44 + data_len);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&sample_rate.to_le_bytes());
    w.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data_len as u32).to_le_bytes());
    for i in 0..n {
        let t = i as f64 / f64::from(sample_rate);
        let v = (t * 440.0 * std::f64::consts::TAU).sin() * 8000.0;
        w.extend_from_slice(&(v as i16).to_le_bytes());
    }
    w
}

/// The duration in seconds of a PCM WAV file, from its `fmt ` and `data` chunk headers.
pub fn wav_duration(b: &[u8]) -> Option<f64> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return None;
    }
    let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let mut pos = 12;
    let mut byte_rate = None;
    for _ in 0..64 {
        let id = b.get(pos..pos + 4)?;
        let size = u32_at(pos + 4)? as usize;
        if id == b"fmt " {
            byte_rate = u32_at(pos + 16);
        } else if id == b"data" {
            let rate = byte_rate.filter(|r| *r > 0)?;
            return Some(size.min(b.len() - pos - 8) as f64 / f64::from(rate));
        }
        pos += 8 + size + (size & 1);
    }
    None
}

/// How a stream is cut into `PayloadPart`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// One SSE event or JSON line per part.
    PerEvent,
    /// Every `n` bytes (`Bytes(1)`: one byte per part, splitting UTF-8 characters too).
    Bytes(usize),
    /// Cuts at pseudo-random places, parts of 1 to `max` bytes, reproducible from `seed`.
    Random { seed: u64, max: usize },
    /// `n` events per part.
    Coalesce(usize),
}

/// A failure to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 400 `ThrottlingException`.
    Throttle,
    /// 424 `ModelError` with the container's status and message.
    ModelError { status: u16, message: String },
    /// 429 `ModelNotReadyException`.
    NotReady,
    /// 503 `ServiceUnavailable`.
    ServiceUnavailable,
    /// 403 `AccessDeniedException` naming `principal`.
    AccessDenied { principal: String },
    /// A `ModelStreamError` exception event after `after` events of the stream.
    ModelStreamError {
        after: usize,
        code: String,
        message: String,
    },
    /// An `InternalStreamFailure` exception event after `after` events.
    InternalStreamFailure { after: usize },
    /// 400 `ValidationError` with this message (a request SageMaker refuses).
    Validation { message: String },
}

/// What one endpoint does.
#[derive(Debug, Clone)]
pub struct EndpointBehaviour {
    pub behaviour: Behaviour,
    /// The answer of chat endpoints, token by token.
    pub tokens: Vec<String>,
    pub split: Split,
    /// Wait before answering (before the response headers).
    pub latency: Duration,
    /// Wait between two parts of a stream.
    pub part_delay: Duration,
    /// Wait after the stream's headers, before its first part (a long prefill).
    pub first_part_delay: Duration,
    pub fault: Option<Fault>,
    /// Length of the fake embedding vectors.
    pub dimensions: usize,
    /// Whether embedding vectors are scaled to unit length (TEI's `normalize: true` default);
    /// off by default so tests can compare with [`fake_embedding`] exactly.
    pub normalize: bool,
    /// What `DescribeEndpoint` reports as `EndpointStatus` (`InService` by default; also
    /// `Creating`, `Updating`, `Failed`, ...). Invocations are served whatever it says.
    pub status: String,
    /// The inference components the endpoint hosts; when set, an invocation naming another
    /// one is refused with a `ValidationError`, and `DescribeInferenceComponent` knows these.
    pub components: Option<Vec<String>>,
    /// Whether the model reads images (a vision-language model). `OpenAiChat` refuses
    /// `image_url` parts without it, as vLLM does for a text-only model; with it, both chat
    /// families decode every image's base64 and refuse a broken one.
    pub vision: bool,
    /// Reasoning sent before the answer in a field of its own (`reasoning_content`), as vLLM
    /// and SGLang do when they run with a reasoning parser (`OpenAiChat` only).
    pub reasoning: Vec<String>,
    /// The arguments of the tool call an `OpenAiChat` endpoint makes when the request has
    /// `tools` (and `tool_choice` is not `none`), streamed in pieces of this many bytes.
    pub tool_arguments: String,
    /// Copies of each of [`components`](Self::components) running. With 0 (scaled to zero)
    /// invocations naming a component are refused as SageMaker refuses them, and
    /// `DescribeInferenceComponent` reports `CurrentCopyCount: 0`.
    pub copies: u32,
}

/// The arguments of the fake's tool calls unless set otherwise.
pub const FAKE_TOOL_ARGUMENTS: &str = r#"{"city": "Paris", "unit": "celsius"}"#;
/// The `id` of the fake's tool calls.
pub const FAKE_TOOL_CALL_ID: &str = "call_fake_0";

impl EndpointBehaviour {
    pub fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            tokens: ["Hello", ",", " world", "!"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            split: Split::PerEvent,
            latency: Duration::ZERO,
            part_delay: Duration::ZERO,
            first_part_delay: Duration::ZERO,
            fault: None,
            dimensions: 8,
            normalize: false,
            status: "InService".to_owned(),
            components: None,
            vision: false,
            reasoning: Vec::new(),
            tool_arguments: FAKE_TOOL_ARGUMENTS.to_owned(),
            copies: 1,
        }
    }

    /// The running copies of the endpoint's inference components ([`copies`](Self::copies)).
    pub fn copies(mut self, copies: u32) -> Self {
        self.copies = copies;
        self
    }

    /// A vision-language model ([`vision`](Self::vision)).
    pub fn vision(mut self) -> Self {
        self.vision = true;
        self
    }

    /// Reasoning tokens sent as `reasoning_content` before the answer.
    pub fn reasoning<S: AsRef<str>>(mut self, tokens: &[S]) -> Self {
        self.reasoning = tokens.iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    pub fn components(mut self, names: &[&str]) -> Self {
        self.components = Some(names.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    pub fn tokens<S: AsRef<str>>(mut self, tokens: &[S]) -> Self {
        self.tokens = tokens.iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    pub fn split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    pub fn part_delay(mut self, delay: Duration) -> Self {
        self.part_delay = delay;
        self
    }

    pub fn first_part_delay(mut self, delay: Duration) -> Self {
        self.first_part_delay = delay;
        self
    }

    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    pub fn dimensions(mut self, dimensions: usize) -> Self {
        self.dimensions = dimensions;
        self
    }

    /// Embedding vectors of unit length ([`fake_embedding_normalized`]).
    pub fn normalized(mut self) -> Self {
        self.normalize = true;
        self
    }

    /// The `EndpointStatus` DescribeEndpoint reports.
    pub fn status(mut self, status: &str) -> Self {
        self.status = status.to_owned();
        self
    }
}

/// One invocation as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedInvocation {
    pub endpoint: String,
    pub stream: bool,
    /// Request headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl RecordedInvocation {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Default)]
struct Shared {
    endpoints: Mutex<HashMap<String, EndpointBehaviour>>,
    invocations: Mutex<VecDeque<RecordedInvocation>>,
    record: std::sync::atomic::AtomicBool,
    streams_started: AtomicUsize,
    streams_completed: AtomicUsize,
    streams_abandoned: AtomicUsize,
    describe_component_calls: AtomicUsize,
}

/// A running fake runtime on `127.0.0.1`; the server task stops when this is dropped.
#[derive(Debug)]
pub struct FakeRuntime {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRuntime {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeRuntime {
    /// Starts the fake on `127.0.0.1:0`.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?).await
    }

    /// Starts the fake on `addr` (loopback addresses only).
    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<Self> {
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "the fake runtime listens on loopback only"
        );
        let shared = Arc::new(Shared::default());
        shared.record.store(true, Ordering::Relaxed);
        let app = router(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake runtime stopped");
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT`, for `endPointURL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Defines (or redefines) endpoint `name`.
    pub fn set(&self, name: &str, behaviour: EndpointBehaviour) {
        self.shared
            .endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), behaviour);
    }

    /// Whether invocations are recorded (on by default; benchmarks turn it off).
    pub fn set_recording(&self, on: bool) {
        self.shared.record.store(on, Ordering::Relaxed);
    }

    /// The last invocations received (at most 1000), oldest first.
    pub fn invocations(&self) -> Vec<RecordedInvocation> {
        self.shared
            .invocations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn streams_started(&self) -> usize {
        self.shared.streams_started.load(Ordering::Relaxed)
    }

    /// Streams whose every part was sent.
    pub fn streams_completed(&self) -> usize {
        self.shared.streams_completed.load(Ordering::Relaxed)
    }

    /// How many `DescribeInferenceComponent` calls were answered.
    pub fn describe_component_calls(&self) -> usize {
        self.shared.describe_component_calls.load(Ordering::Relaxed)
    }

    /// Streams dropped before their end (the client, i.e. the gateway, went away).
    pub fn streams_abandoned(&self) -> usize {
        self.shared.streams_abandoned.load(Ordering::Relaxed)
    }
}

/// The axum app of the fake, for callers that serve it themselves.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", post(control_plane))
        .route("/endpoints/{name}/invocations", post(invoke))
        .route(
            "/endpoints/{name}/invocations-response-stream",
            post(invoke_stream),
        )
        // Above SageMaker's own limit, so the fake can answer as SageMaker does.
        .layer(DefaultBodyLimit::max(2 * MAX_PAYLOAD))
        .with_state(shared)
}

/// An awsJson1.1 error, as the SageMaker control plane sends them.
fn control_error(code: &str, message: &str) -> Response {
    let mut r = (
        StatusCode::BAD_REQUEST,
        json!({"__type": code, "message": message}).to_string(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert("x-amzn-errortype", code.parse().expect("static header"));
    h.insert(
        "content-type",
        "application/x-amz-json-1.1".parse().expect("static header"),
    );
    r
}

/// `POST /` with `X-Amz-Target: SageMaker.<Operation>`: `DescribeEndpoint` and
/// `DescribeInferenceComponent` are served.
async fn control_plane(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target == "SageMaker.DescribeInferenceComponent" {
        shared
            .describe_component_calls
            .fetch_add(1, Ordering::Relaxed);
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let name = v
            .get("InferenceComponentName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let host = shared
            .endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(_, b)| {
                b.components
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|c| c == name))
            })
            .map(|(e, b)| (e.clone(), b.copies));
        let Some((endpoint, copies)) = host else {
            return control_error(
                "ValidationException",
                &format!("Could not find inference component \"{name}\"."),
            );
        };
        let out = json!({
            "InferenceComponentName": name,
            "InferenceComponentArn": format!("arn:aws:sagemaker:us-east-1:{FAKE_ACCOUNT}:inference-component/{name}"),
            "EndpointName": endpoint,
            "EndpointArn": format!("arn:aws:sagemaker:us-east-1:{FAKE_ACCOUNT}:endpoint/{endpoint}"),
            "InferenceComponentStatus": "InService",
            "RuntimeConfig": {"DesiredCopyCount": copies, "CurrentCopyCount": copies},
            "CreationTime": 1_700_000_000,
            "LastModifiedTime": 1_700_000_000,
        });
        let mut r = (StatusCode::OK, out.to_string()).into_response();
        r.headers_mut().insert(
            "content-type",
            "application/x-amz-json-1.1".parse().expect("static header"),
        );
        return r;
    }
    if target != "SageMaker.DescribeEndpoint" {
        return control_error(
            "UnknownOperationException",
            &format!("the fake runtime serves only SageMaker.DescribeEndpoint and DescribeInferenceComponent, not `{target}`"),
        );
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(name) = v.get("EndpointName").and_then(Value::as_str) else {
        return control_error("ValidationException", "EndpointName is required");
    };
    let arn = format!("arn:aws:sagemaker:us-east-1:{FAKE_ACCOUNT}:endpoint/{name}");
    let found = shared
        .endpoints
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .cloned();
    let Some(b) = found else {
        // What SageMaker itself answers for an endpoint that does not exist.
        return control_error(
            "ValidationException",
            &format!("Could not find endpoint \"{arn}\"."),
        );
    };
    if let Some(Fault::AccessDenied { principal }) = &b.fault {
        return control_error(
            "AccessDeniedException",
            &format!("User: {principal} is not authorized to perform: sagemaker:DescribeEndpoint on resource: {arn} because no identity-based policy allows the sagemaker:DescribeEndpoint action"),
        );
    }
    let mut out = json!({
        "EndpointName": name,
        "EndpointArn": arn,
        "EndpointConfigName": format!("{name}-config"),
        "EndpointStatus": b.status,
        "CreationTime": 1_700_000_000,
        "LastModifiedTime": 1_700_000_000,
    });
    if b.status == "Failed" {
        out["FailureReason"] = json!("The primary container for production variant AllTraffic did not pass the ping health check.");
    }
    let mut r = (StatusCode::OK, out.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.1".parse().expect("static header"),
    );
    r
}

/// The vector the fake returns for `text`: deterministic, so tests can compare.
pub fn fake_embedding(text: &str, dimensions: usize) -> Vec<f32> {
    (0..dimensions)
        .map(|j| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ j as u64;
            for b in text.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            (h % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// [`fake_embedding`] scaled to unit L2 norm, as a normalising container sends it.
pub fn fake_embedding_normalized(text: &str, dimensions: usize) -> Vec<f32> {
    let v = fake_embedding(text, dimensions);
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 {
        return v;
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

/// The token count an `OpenAiEmbed` endpoint reports for `text`: its words.
pub fn fake_token_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The score the fake gives `doc` for `query`: shared words over the document's length.
pub fn fake_score(query: &str, doc: &str) -> f64 {
    let q: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let words: Vec<String> = doc.split_whitespace().map(str::to_lowercase).collect();
    let shared = words.iter().filter(|w| q.contains(w)).count();
    shared as f64 / (1.0 + words.len() as f64)
}

fn error(status: u16, code: &str, body: Value) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        body.to_string(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert("x-amzn-errortype", code.parse().expect("static header"));
    h.insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    r
}

fn model_error(status: u16, message: &str) -> Response {
    error(
        424,
        "ModelError",
        json!({
            "message": format!("Received client error ({status}) from primary with message \"{message}\". See https://us-east-1.console.aws.amazon.com/cloudwatch/home for more information."),
            "OriginalStatusCode": status,
            "OriginalMessage": message,
            "LogStreamArn": format!("arn:aws:logs:us-east-1:{FAKE_ACCOUNT}:log-group:/aws/sagemaker/Endpoints/fake"),
        }),
    )
}

/// The HTTP-level fault, if the endpoint has one.
fn fault_response(fault: &Fault, name: &str) -> Option<Response> {
    Some(match fault {
        Fault::Throttle => error(
            400,
            "ThrottlingException",
            json!({"message": "Rate exceeded"}),
        ),
        Fault::ModelError { status, message } => model_error(*status, message),
        Fault::NotReady => error(
            429,
            "ModelNotReadyException",
            json!({"message": format!("Model for endpoint {name} is not ready yet")}),
        ),
        Fault::ServiceUnavailable => error(
            503,
            "ServiceUnavailable",
            json!({"message": "Service is temporarily unavailable"}),
        ),
        Fault::AccessDenied { principal } => error(
            403,
            "AccessDeniedException",
            json!({"message": format!(
                "User: {principal} is not authorized to perform: sagemaker:InvokeEndpoint on resource: arn:aws:sagemaker:us-east-1:{FAKE_ACCOUNT}:endpoint/{name} because no identity-based policy allows the sagemaker:InvokeEndpoint action"
            )}),
        ),
        Fault::Validation { message } => error(400, "ValidationError", json!({"message": message})),
        Fault::ModelStreamError { .. } | Fault::InternalStreamFailure { .. } => return None,
    })
}

/// Looks the endpoint up, records the call and applies latency and HTTP faults.
#[allow(clippy::result_large_err)]
async fn prepare(
    shared: &Shared,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
    stream: bool,
) -> Result<EndpointBehaviour, Response> {
    if shared.record.load(Ordering::Relaxed) {
        let rec = RecordedInvocation {
            endpoint: name.to_owned(),
            stream,
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        };
        let mut inv = shared.invocations.lock().unwrap_or_else(|e| e.into_inner());
        if inv.len() >= RECORD_LIMIT {
            inv.pop_front();
        }
        inv.push_back(rec);
    }
    let found = shared
        .endpoints
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .cloned();
    let Some(b) = found else {
        return Err(error(
            400,
            "ValidationError",
            json!({"message": format!("Endpoint {name} of account {FAKE_ACCOUNT} not found.")}),
        ));
    };
    if !b.latency.is_zero() {
        tokio::time::sleep(b.latency).await;
    }
    if let Some(r) = b.fault.as_ref().and_then(|f| fault_response(f, name)) {
        return Err(r);
    }
    if let Some(components) = &b.components {
        let asked = headers
            .get("x-amzn-sagemaker-inference-component")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !components.iter().any(|c| c == asked) {
            // Worded like the endpoint case on purpose: only the control plane tells them apart.
            return Err(error(
                400,
                "ValidationError",
                json!({"message": format!("Inference Component {asked} for Endpoint {name} of account {FAKE_ACCOUNT} not found.")}),
            ));
        }
        if b.copies == 0 {
            // What SageMaker answers while an inference component is scaled to zero (AWS's
            // announcement of scale to zero for inference components, December 2024:
            // "An error occurred (ValidationError) when calling the InvokeEndpoint operation:
            // Inference Component has no capacity to process this request. ...").
            return Err(error(
                400,
                "ValidationError",
                json!({"message": "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress (if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API."}),
            ));
        }
    }
    Ok(b)
}

/// What a chat request asked for: the token budget and whether usage was requested.
struct ChatAsk {
    max_tokens: Option<usize>,
    include_usage: bool,
    prompt_words: usize,
    /// The function to call, when the request offers tools and the answer is a tool call.
    tool_call: Option<String>,
}

/// Standard base64 (with padding) decoded, or `None` when it is not base64.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.is_empty() || !s.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, quad) in s.chunks(4).enumerate() {
        let last = i + 1 == s.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// Decodes an image data URL as a vision container does: `data:image/<type>;base64,<data>`.
fn decode_image_url(url: &str) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| format!("the fake fetches no remote images: {url:.40}"))?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or("invalid data URL: no comma".to_owned())?;
    let media = meta
        .strip_suffix(";base64")
        .ok_or("only base64 data URLs are supported".to_owned())?;
    if !media.starts_with("image/") {
        return Err(format!("unsupported media type {media}"));
    }
    base64_decode(data).ok_or_else(|| "Failed to load image: invalid base64 data".to_owned())
}

/// Checks the OpenAI request's messages, tools and `tool_choice` as vLLM does, and decides
/// whether the answer is a tool call.
#[allow(clippy::result_large_err)]
fn openai_ask(b: &EndpointBehaviour, v: &Value) -> Result<ChatAsk, Response> {
    let Some(messages) = v.get("messages").and_then(Value::as_array) else {
        return Err(model_error(400, "messages: field required"));
    };
    let mut prompt_words = 0;
    let mut call_ids: Vec<&str> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m.get("content") {
            Some(Value::String(c)) => prompt_words += c.split_whitespace().count(),
            Some(Value::Array(parts)) => {
                for part in parts {
                    match part.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            prompt_words += part
                                .get("text")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .split_whitespace()
                                .count()
                        }
                        Some("image_url") => {
                            if !b.vision {
                                return Err(model_error(400, "This model does not support image inputs (it is not a multimodal model)"));
                            }
                            let url = part
                                .pointer("/image_url/url")
                                .and_then(Value::as_str)
                                .unwrap_or_default();
                            if let Err(e) = decode_image_url(url) {
                                return Err(model_error(400, &e));
                            }
                        }
                        other => {
                            return Err(model_error(
                                400,
                                &format!("messages[{i}]: unsupported content part type {other:?}"),
                            ))
                        }
                    }
                }
            }
            _ => {}
        }
        if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
            call_ids.extend(
                calls
                    .iter()
                    .filter_map(|c| c.get("id").and_then(Value::as_str)),
            );
        }
        if m.get("role").and_then(Value::as_str) == Some("tool") {
            let id = m
                .get("tool_call_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !call_ids.contains(&id) {
                return Err(model_error(400, &format!("messages[{i}]: a `tool` message must answer a tool call of an earlier assistant message; unknown tool_call_id {id:?}")));
            }
        }
    }
    let mut names = Vec::new();
    match v.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tools)) => {
            for (i, t) in tools.iter().enumerate() {
                let name = t.pointer("/function/name").and_then(Value::as_str);
                match (t.get("type").and_then(Value::as_str), name) {
                    (Some("function"), Some(n)) => names.push(n.to_owned()),
                    _ => {
                        return Err(model_error(
                            400,
                            &format!("tools[{i}]: expected {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}"),
                        ))
                    }
                }
            }
        }
        Some(_) => return Err(model_error(400, "tools: expected a list")),
    }
    let after_tool = messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("tool");
    let tool_call = match v.get("tool_choice") {
        None | Some(Value::Null) => names.first().cloned(),
        Some(Value::String(c)) if c == "auto" || c == "required" => {
            if names.is_empty() {
                return Err(model_error(400, "tool_choice requires `tools`"));
            }
            names.first().cloned()
        }
        Some(Value::String(c)) if c == "none" => None,
        Some(choice) => {
            let Some(name) = choice.pointer("/function/name").and_then(Value::as_str) else {
                return Err(model_error(
                    400,
                    "tool_choice: expected auto, none, required or a named function",
                ));
            };
            if !names.iter().any(|n| n == name) {
                return Err(model_error(
                    400,
                    &format!("tool_choice names function {name:?}, which is not in `tools`"),
                ));
            }
            Some(name.to_owned())
        }
    }
    .filter(|_| !after_tool);
    Ok(ChatAsk {
        max_tokens: v
            .get("max_tokens")
            .or_else(|| v.get("max_completion_tokens"))
            .and_then(Value::as_u64)
            .map(|n| n as usize),
        include_usage: v
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        prompt_words,
        tool_call,
    })
}

// A ready response is the natural early exit of a handler helper; it is not hot code.
#[allow(clippy::result_large_err)]
fn chat_ask(b: &EndpointBehaviour, v: &Value) -> Result<ChatAsk, Response> {
    if b.behaviour == Behaviour::OpenAiChat {
        return openai_ask(b, v);
    }
    let Some(inputs) = v.get("inputs").and_then(Value::as_str) else {
        return Err(model_error(
            422,
            "Failed to deserialize the JSON body into the target type: inputs: invalid type",
        ));
    };
    if b.vision && b.behaviour == Behaviour::TgiChat {
        // TGI's vision-language models read Markdown images, `![](url)`, in the prompt.
        let mut rest = inputs;
        for _ in 0..1000 {
            let Some(i) = rest.find("![](") else { break };
            let after = &rest[i + 4..];
            let Some(end) = after.find(')') else { break };
            if let Err(e) = decode_image_url(&after[..end]) {
                return Err(model_error(422, &format!("Input validation error: {e}")));
            }
            rest = &after[end + 1..];
        }
    }
    Ok(ChatAsk {
        max_tokens: v
            .pointer("/parameters/max_new_tokens")
            .and_then(Value::as_u64)
            .map(|n| n as usize),
        include_usage: false,
        prompt_words: inputs.split_whitespace().count(),
        tool_call: None,
    })
}

fn str_list(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

async fn invoke(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b = match prepare(&shared, &name, &headers, &body, false).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.len() > MAX_PAYLOAD {
        return error(
            413,
            "ValidationError",
            json!({"message": format!("Request payload of {} bytes exceeds the limit of {MAX_PAYLOAD} bytes", body.len())}),
        );
    }
    if b.behaviour == Behaviour::JumpStartTranscribe {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type != "audio/wav" {
            return model_error(
                400,
                &json!({"error": format!("unsupported content type {content_type}")}).to_string(),
            );
        }
        let Some(seconds) = wav_duration(&body) else {
            return model_error(
                400,
                "the audio could not be decoded (the fake reads WAV only)",
            );
        };
        return json_response(&json!({"text": [format!(" {}", fake_transcript(seconds))]}));
    }
    if b.behaviour == Behaviour::HfTranscribe {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("audio/") {
            return model_error(415, &format!("Content type {content_type:?} not supported"));
        }
        let Some(seconds) = wav_duration(&body) else {
            return model_error(
                400,
                "ffmpeg was not able to decode the audio (the fake reads WAV only)",
            );
        };
        return json_response(&json!({"text": fake_transcript(seconds)}));
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return model_error(400, "the body is not JSON");
    };
    let out = match b.behaviour {
        Behaviour::HfTranscribe | Behaviour::JumpStartTranscribe => {
            return model_error(500, "unreachable: raw audio handled above")
        }
        Behaviour::OpenAiSpeech => {
            let Some(input) = v.get("input").and_then(Value::as_str) else {
                return model_error(422, "missing field `input`");
            };
            let format = v
                .get("response_format")
                .and_then(Value::as_str)
                .unwrap_or("mp3");
            if format != "wav" {
                return model_error(400, &format!("response_format {format} is not supported"));
            }
            let words = input.split_whitespace().count().clamp(1, 100);
            let mut r = (StatusCode::OK, wav_tone(0.1 * words as f64, 16_000)).into_response();
            r.headers_mut()
                .insert("content-type", "audio/wav".parse().expect("static header"));
            return r;
        }
        Behaviour::OpenAiChat | Behaviour::TgiChat | Behaviour::LmiChat => {
            let ask = match chat_ask(&b, &v) {
                Ok(a) => a,
                Err(r) => return r,
            };
            let n = ask.max_tokens.unwrap_or(usize::MAX).min(b.tokens.len());
            let text: String = b.tokens[..n].concat();
            let reason = if n < b.tokens.len() { "length" } else { "stop" };
            match b.behaviour {
                Behaviour::OpenAiChat if ask.tool_call.is_some() => json!({
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "/opt/ml/model",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                        {"id": FAKE_TOOL_CALL_ID, "type": "function", "function": {"name": ask.tool_call, "arguments": b.tool_arguments}}]},
                        "finish_reason": "tool_calls"}],
                    "usage": {"prompt_tokens": ask.prompt_words, "completion_tokens": 1, "total_tokens": ask.prompt_words + 1},
                }),
                Behaviour::OpenAiChat if !b.reasoning.is_empty() => json!({
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "/opt/ml/model",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "reasoning_content": b.reasoning.concat()}, "finish_reason": reason}],
                    "usage": {"prompt_tokens": ask.prompt_words, "completion_tokens": n + b.reasoning.len(), "total_tokens": ask.prompt_words + n + b.reasoning.len()},
                }),
                Behaviour::OpenAiChat => json!({
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "/opt/ml/model",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason}],
                    "usage": {"prompt_tokens": ask.prompt_words, "completion_tokens": n, "total_tokens": ask.prompt_words + n},
                }),
                Behaviour::TgiChat => json!([{
                    "generated_text": text,
                    "details": {"finish_reason": if reason == "length" { "length" } else { "eos_token" }, "generated_tokens": n, "seed": null},
                }]),
                _ => {
                    json!({"generated_text": text, "details": {"finish_reason": reason, "generated_tokens": n}})
                }
            }
        }
        Behaviour::TeiEmbed
        | Behaviour::JumpStartEmbed
        | Behaviour::DifyEmbed
        | Behaviour::OpenAiEmbed => {
            let key = match b.behaviour {
                Behaviour::JumpStartEmbed => "text_inputs",
                Behaviour::OpenAiEmbed => "input",
                _ => "inputs",
            };
            let Some(inputs) = str_list(v.get(key)) else {
                return model_error(422, &format!("Failed to deserialize the JSON body into the target type: missing field `{key}`"));
            };
            if b.behaviour == Behaviour::TeiEmbed && inputs.len() > TEI_MAX_BATCH {
                return model_error(
                    413,
                    &format!(
                        "batch size {} > maximum allowed batch size {TEI_MAX_BATCH}",
                        inputs.len()
                    ),
                );
            }
            let vectors: Vec<Vec<f32>> = inputs
                .iter()
                .map(|t| {
                    if b.normalize {
                        fake_embedding_normalized(t, b.dimensions)
                    } else {
                        fake_embedding(t, b.dimensions)
                    }
                })
                .collect();
            match b.behaviour {
                Behaviour::JumpStartEmbed => json!({"embedding": vectors}),
                Behaviour::DifyEmbed => json!({"embeddings": vectors}),
                Behaviour::OpenAiEmbed => {
                    // vLLM and TEI count tokens; the fake counts words.
                    let tokens: usize = inputs.iter().map(|t| fake_token_count(t)).sum();
                    json!({
                        "object": "list",
                        "data": vectors.iter().enumerate().map(|(i, e)| json!({"object": "embedding", "index": i, "embedding": e})).collect::<Vec<_>>(),
                        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                    })
                }
                _ => json!(vectors),
            }
        }
        Behaviour::TeiRerank => {
            let (Some(query), Some(texts)) = (
                v.get("query").and_then(Value::as_str),
                str_list(v.get("texts")),
            ) else {
                return model_error(422, "Failed to deserialize the JSON body into the target type: missing field `query` or `texts`");
            };
            let mut scored: Vec<(usize, f64)> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| (i, fake_score(query, t)))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            json!(scored
                .iter()
                .map(|(i, s)| json!({"index": i, "score": s}))
                .collect::<Vec<_>>())
        }
        Behaviour::DifyRerank => {
            let (Some(queries), Some(docs)) = (str_list(v.get("inputs")), str_list(v.get("docs")))
            else {
                return model_error(400, "expected `inputs` and `docs`");
            };
            let q = queries.first().cloned().unwrap_or_default();
            json!({"scores": docs.iter().map(|d| fake_score(&q, d)).collect::<Vec<_>>()})
        }
    };
    json_response(&out)
}

fn json_response(out: &Value) -> Response {
    let mut r = (StatusCode::OK, out.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    h.insert(
        "x-amzn-invoked-production-variant",
        "AllTraffic".parse().expect("static header"),
    );
    r
}

/// The container's stream for `tokens`, one entry per SSE event or JSON line.
fn stream_events(
    eb: &EndpointBehaviour,
    tokens: &[String],
    ask: &ChatAsk,
    truncated: bool,
) -> Vec<Vec<u8>> {
    let b = eb.behaviour;
    let n = tokens.len();
    let mut events = Vec::with_capacity(n + 3);
    let openai_chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "/opt/ml/model",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n").into_bytes()
    };
    match b {
        Behaviour::OpenAiChat if ask.tool_call.is_some() => {
            // As vLLM streams a tool call: the role, then the call's id and name with empty
            // arguments, then the arguments in pieces, all under tool-call index 0.
            events.push(openai_chunk(
                json!({"role": "assistant", "content": null}),
                Value::Null,
            ));
            events.push(openai_chunk(
                json!({"tool_calls": [{"index": 0, "id": FAKE_TOOL_CALL_ID, "type": "function",
                                        "function": {"name": ask.tool_call, "arguments": ""}}]}),
                Value::Null,
            ));
            let args = eb.tool_arguments.as_bytes();
            for piece in args.chunks(5) {
                let piece = String::from_utf8_lossy(piece);
                events.push(openai_chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    Value::Null,
                ));
            }
            events.push(openai_chunk(json!({}), json!("tool_calls")));
            if ask.include_usage {
                let c = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "/opt/ml/model", "choices": [],
                               "usage": {"prompt_tokens": ask.prompt_words, "completion_tokens": 1, "total_tokens": ask.prompt_words + 1}});
                events.push(format!("data: {c}\n\n").into_bytes());
            }
            events.push(b"data: [DONE]\n\n".to_vec());
        }
        Behaviour::OpenAiChat => {
            for (i, r) in eb.reasoning.iter().enumerate() {
                let delta = if i == 0 {
                    json!({"role": "assistant", "reasoning_content": r})
                } else {
                    json!({"reasoning_content": r})
                };
                events.push(openai_chunk(delta, Value::Null));
            }
            for (i, t) in tokens.iter().enumerate() {
                let delta = if i == 0 && eb.reasoning.is_empty() {
                    json!({"role": "assistant", "content": t})
                } else {
                    json!({"content": t})
                };
                events.push(openai_chunk(delta, Value::Null));
            }
            let n = n + eb.reasoning.len();
            let reason = if truncated { "length" } else { "stop" };
            let c = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "/opt/ml/model",
                           "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]});
            events.push(format!("data: {c}\n\n").into_bytes());
            if ask.include_usage {
                let c = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "/opt/ml/model", "choices": [],
                               "usage": {"prompt_tokens": ask.prompt_words, "completion_tokens": n, "total_tokens": ask.prompt_words + n}});
                events.push(format!("data: {c}\n\n").into_bytes());
            }
            events.push(b"data: [DONE]\n\n".to_vec());
        }
        Behaviour::TgiChat => {
            for (i, t) in tokens.iter().enumerate() {
                let e = json!({"index": i, "token": {"id": i, "text": t, "logprob": -0.5, "special": false}, "generated_text": null, "details": null});
                events.push(format!("data:{e}\n\n").into_bytes());
            }
            let reason = if truncated { "length" } else { "eos_token" };
            let e = json!({"index": n, "token": {"id": 2, "text": "</s>", "logprob": -0.1, "special": true},
                           "generated_text": tokens.concat(), "details": {"finish_reason": reason, "generated_tokens": n + 1, "seed": null}});
            events.push(format!("data:{e}\n\n").into_bytes());
        }
        _ => {
            for (i, t) in tokens.iter().enumerate() {
                let last = i + 1 == n;
                let mut e = json!({"token": {"id": [i], "text": t, "log_prob": -0.5}, "generated_text": null, "details": null});
                if last {
                    e["generated_text"] = json!(tokens.concat());
                    e["details"] = json!({"finish_reason": if truncated { "length" } else { "eos_token" }, "generated_tokens": n});
                }
                events.push(format!("{e}\n").into_bytes());
            }
        }
    }
    events
}

/// Cuts the events into parts as `split` says.
pub fn split_parts(events: &[Vec<u8>], split: &Split) -> Vec<Vec<u8>> {
    match split {
        Split::PerEvent => events.to_vec(),
        Split::Coalesce(k) => events.chunks((*k).max(1)).map(|c| c.concat()).collect(),
        Split::Bytes(n) => events
            .concat()
            .chunks((*n).max(1))
            .map(<[u8]>::to_vec)
            .collect(),
        Split::Random { seed, max } => {
            let all = events.concat();
            let mut state = seed | 1;
            let mut out = Vec::new();
            let mut i = 0;
            while i < all.len() {
                // xorshift64: reproducible without a dependency.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let len = 1 + (state as usize) % (*max).max(1);
                let end = (i + len).min(all.len());
                out.push(all[i..end].to_vec());
                i = end;
            }
            out
        }
    }
}

fn frame(message: &Message) -> Bytes {
    let mut buf = Vec::with_capacity(message.payload().len() + 128);
    write_message_to(message, &mut buf).expect("an event-stream frame is always writable");
    Bytes::from(buf)
}

/// A `PayloadPart` event frame.
pub fn payload_part(bytes: &[u8]) -> Bytes {
    frame(
        &Message::new(Bytes::copy_from_slice(bytes))
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String("PayloadPart".into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/octet-stream".into()),
            )),
    )
}

/// An exception frame (`ModelStreamError`, `InternalStreamFailure`).
pub fn exception(kind: &str, payload: &Value) -> Bytes {
    frame(
        &Message::new(Bytes::from(payload.to_string()))
            .add_header(Header::new(
                ":exception-type",
                HeaderValue::String(kind.to_owned().into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("exception".into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            )),
    )
}

/// Counts a stream as completed when all its frames went out, or as abandoned when dropped
/// before.
struct StreamGuard {
    shared: Arc<Shared>,
    completed: bool,
}

impl StreamGuard {
    fn complete(mut self) {
        self.completed = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.completed {
            &self.shared.streams_completed
        } else {
            &self.shared.streams_abandoned
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

async fn invoke_stream(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b = match prepare(&shared, &name, &headers, &body, true).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !matches!(
        b.behaviour,
        Behaviour::OpenAiChat | Behaviour::TgiChat | Behaviour::LmiChat
    ) {
        return error(
            400,
            "ValidationError",
            json!({"message": "This endpoint does not support response streaming"}),
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return model_error(400, "the body is not JSON");
    };
    let ask = match chat_ask(&b, &v) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let n = ask.max_tokens.unwrap_or(usize::MAX).min(b.tokens.len());
    let mut events = stream_events(&b, &b.tokens[..n], &ask, n < b.tokens.len());
    let mut tail = None;
    match &b.fault {
        Some(Fault::ModelStreamError {
            after,
            code,
            message,
        }) => {
            events.truncate(*after);
            tail = Some(exception(
                "ModelStreamError",
                &json!({"Message": message, "ErrorCode": code}),
            ));
        }
        Some(Fault::InternalStreamFailure { after }) => {
            events.truncate(*after);
            tail = Some(exception(
                "InternalStreamFailure",
                &json!({"Message": "Internal stream failure"}),
            ));
        }
        _ => {}
    }
    let mut frames: VecDeque<Bytes> = split_parts(&events, &b.split)
        .iter()
        .map(|p| payload_part(p))
        .collect();
    frames.extend(tail);
    shared.streams_started.fetch_add(1, Ordering::Relaxed);
    let guard = StreamGuard {
        shared: shared.clone(),
        completed: false,
    };
    let delay = b.part_delay;
    let first_delay = b.first_part_delay;
    let stream = futures::stream::unfold(
        (frames, guard, true),
        move |(mut frames, guard, first)| async move {
            let Some(f) = frames.pop_front() else {
                guard.complete();
                return None;
            };
            if !first && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if first && !first_delay.is_zero() {
                tokio::time::sleep(first_delay).await;
            }
            Some((Ok::<_, std::convert::Infallible>(f), (frames, guard, false)))
        },
    );
    let content_type = if b.behaviour == Behaviour::LmiChat {
        "application/jsonlines"
    } else {
        "text/event-stream"
    };
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        "content-type",
        "application/vnd.amazon.eventstream"
            .parse()
            .expect("static header"),
    );
    h.insert(
        "x-amzn-sagemaker-content-type",
        content_type.parse().expect("static header"),
    );
    h.insert(
        "x-amzn-invoked-production-variant",
        "AllTraffic".parse().expect("static header"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_the_bytes() {
        let events: Vec<Vec<u8>> = vec![
            b"data: a\n\n".to_vec(),
            b"data: bb\n\n".to_vec(),
            b"data: ccc\n\n".to_vec(),
        ];
        let all = events.concat();
        for split in [
            Split::PerEvent,
            Split::Bytes(1),
            Split::Bytes(4),
            Split::Coalesce(2),
            Split::Random { seed: 7, max: 5 },
        ] {
            let parts = split_parts(&events, &split);
            assert_eq!(parts.concat(), all, "{split:?}");
            assert!(parts.iter().all(|p| !p.is_empty()), "{split:?}");
        }
        assert_eq!(split_parts(&events, &Split::Bytes(1)).len(), all.len());
        assert_eq!(split_parts(&events, &Split::Coalesce(2)).len(), 2);
    }

    #[test]
    fn frames_decode() {
        let f = payload_part(b"hello");
        let m = aws_smithy_eventstream::frame::read_message_from(f.clone()).unwrap();
        assert_eq!(m.payload().as_ref(), b"hello");
        assert!(m
            .headers()
            .iter()
            .any(|h| h.name().as_str() == ":event-type"));
    }

    #[test]
    fn wav_tone_duration_is_read_back() {
        let w = wav_tone(2.5, 16_000);
        assert_eq!(w.len(), 44 + 80_000);
        assert_eq!(wav_duration(&w), Some(2.5));
        assert_eq!(wav_duration(b"not a wav file at all"), None);
        assert_eq!(fake_transcript(2.5), "the quick brown fox (2.50 s)");
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        for bad in ["", "aGk", "a=Gk", "aG!k", "====", "YQ==YQ=="] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
        assert!(decode_image_url("data:image/png;base64,aGk=").is_ok());
        assert!(decode_image_url("data:image/png;base64,aGk").is_err());
        assert!(decode_image_url("https://example.com/x.png").is_err());
    }

    #[test]
    fn embeddings_and_scores_are_deterministic() {
        assert_eq!(fake_embedding("abc", 4), fake_embedding("abc", 4));
        assert_ne!(fake_embedding("abc", 4), fake_embedding("abd", 4));
        assert!(fake_score("red apple", "a red apple") > fake_score("red apple", "a green pear"));
    }
}
