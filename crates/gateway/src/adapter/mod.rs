//! Payload adapters: one per container family, turning OpenAI requests into the container's
//! request body and its answers back into OpenAI responses.
//!
//! Small traits, one per model kind ([`ChatAdapter`], [`EmbeddingAdapter`],
//! [`RerankAdapter`], and in [`audio`] the transcription and speech adapters); [`build`] picks the implementation from the model's `format`. The
//! [`Adapter`] it returns is taken apart once, when the gateway is built, into typed handles
//! (`ChatModel`, ...), so request handlers never ask which kind an adapter is.

pub mod audio;
pub mod chat;
pub mod embed;
pub mod rerank;
pub mod template;

use sagebridge_aws::clock::since_epoch;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::api::{ChatRequest, Usage};
use crate::config::{Format, ModelConfig, ModelKind};
use crate::error::GatewayError;
use crate::stream::StreamDecoder;

/// The model's configured defaults, which apply when a request does not set them.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub context_length: Option<u32>,
}

/// A whole chat answer: the OpenAI `chat.completion` object and the token counts, if known.
#[derive(Debug, Clone)]
pub struct Completion {
    pub body: AnswerBody,
    pub usage: Option<Usage>,
}

/// A chat answer's JSON: built as a tree, or (the fast path of `openai` containers whose answer
/// needs no change below the top level) the answer serialized once, its `choices` and `usage`
/// copied byte for byte from the container's.
#[derive(Debug, Clone)]
pub enum AnswerBody {
    Json(Value),
    Serialized(Vec<u8>),
}

impl AnswerBody {
    /// The answer as a JSON tree (for token estimates and tests; the response never needs it).
    pub fn to_value(&self) -> Value {
        match self {
            AnswerBody::Json(v) => v.clone(),
            AnswerBody::Serialized(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
        }
    }

    pub fn into_response(self) -> axum::response::Response {
        use axum::response::IntoResponse;
        match self {
            AnswerBody::Json(v) => axum::Json(v).into_response(),
            AnswerBody::Serialized(b) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                )],
                b,
            )
                .into_response(),
        }
    }
}

/// What the gateway needs to answer in the client's terms.
#[derive(Debug, Clone)]
pub struct ResponseCtx<'a> {
    /// The model name the client asked for.
    pub model: &'a str,
    pub id: &'a str,
    pub created: u64,
    /// The chat request answered, whose prompt the gateway estimates for an answer that counts
    /// generated tokens but not the prompt's ([`crate::api::Usage::or_prompt_estimate`]).
    pub request: Option<&'a crate::api::ChatRequest>,
}

impl ResponseCtx<'_> {
    /// The gateway's estimate of the prompt's tokens (0 without a request), computed only
    /// when an answer lacks the count.
    pub fn prompt_estimate(&self) -> u64 {
        self.request
            .map_or(0, crate::api::ChatRequest::prompt_estimate)
    }
}

/// A chat container family.
pub trait ChatAdapter: Send + Sync + std::fmt::Debug {
    fn format(&self) -> Format;
    /// The InvokeEndpoint body for `req`.
    fn encode(
        &self,
        req: &ChatRequest,
        defaults: &Defaults,
        stream: bool,
    ) -> Result<Vec<u8>, GatewayError>;
    /// The OpenAI answer for the container's whole response.
    fn decode(&self, body: &[u8], ctx: &ResponseCtx<'_>) -> Result<Completion, GatewayError>;
    /// The decoder of the container's streamed answer.
    fn stream_decoder(&self) -> StreamDecoder {
        StreamDecoder::new(self.format())
    }
}

/// An embedding container family.
pub trait EmbeddingAdapter: Send + Sync + std::fmt::Debug {
    fn encode(&self, inputs: &[String], model: &str) -> Vec<u8>;
    /// One vector per input, in input order.
    fn decode(&self, body: &[u8], expected: usize) -> Result<Vec<Vec<f32>>, GatewayError>;
    /// [`decode`](Self::decode), plus the prompt tokens the container counted, if it reports
    /// them.
    fn decode_with_usage(
        &self,
        body: &[u8],
        expected: usize,
    ) -> Result<(Vec<Vec<f32>>, Option<u64>), GatewayError> {
        Ok((self.decode(body, expected)?, None))
    }
}

/// A rerank container family.
pub trait RerankAdapter: Send + Sync + std::fmt::Debug {
    fn encode(&self, query: &str, documents: &[String]) -> Vec<u8>;
    /// `(document index, score)` for each document, in any order.
    fn decode(&self, body: &[u8], documents: usize) -> Result<Vec<(usize, f64)>, GatewayError>;
}

/// The adapter of one configured model, whatever its kind.
#[derive(Debug, Clone)]
pub enum Adapter {
    Chat(Arc<dyn ChatAdapter>),
    Embedding(Arc<dyn EmbeddingAdapter>),
    Rerank(Arc<dyn RerankAdapter>),
    Transcription(Arc<dyn audio::TranscriptionAdapter>),
    Speech(Arc<dyn audio::SpeechAdapter>),
}

/// The adapter for a (validated) model config.
pub fn build(m: &ModelConfig) -> Result<Adapter, String> {
    let format = m.format();
    Ok(match (m.kind, format) {
        (ModelKind::Chat, Format::Openai) => Adapter::Chat(Arc::new(chat::OpenAiChat)),
        (ModelKind::Chat, Format::Tgi | Format::Lmi) => {
            let name = m
                .chat_template
                .as_deref()
                .unwrap_or(template::DEFAULT_TEMPLATE);
            let template =
                template::ChatTemplate::new(name).map_err(|e| format!("chatTemplate: {e}"))?;
            Adapter::Chat(Arc::new(chat::PromptChat { format, template }))
        }
        (ModelKind::Embedding, f) if ModelKind::Embedding.formats().contains(&f) => {
            Adapter::Embedding(Arc::new(embed::Embed { format: f }))
        }
        (ModelKind::Rerank, f) if ModelKind::Rerank.formats().contains(&f) => {
            Adapter::Rerank(Arc::new(rerank::Rerank { format: f }))
        }
        (ModelKind::Transcription, Format::Huggingface) => {
            Adapter::Transcription(Arc::new(audio::HuggingFaceTranscription))
        }
        (ModelKind::Transcription, Format::Jumpstart) => {
            Adapter::Transcription(Arc::new(audio::JumpStartTranscription))
        }
        (ModelKind::Speech, Format::Openai) => Adapter::Speech(Arc::new(audio::OpenAiSpeech {
            formats: m.speech_formats(),
        })),
        (kind, f) => {
            return Err(format!(
                "format `{}` cannot serve a {} model",
                f.as_str(),
                kind.as_str()
            ))
        }
    })
}

/// The `id` of one answer to a client (`chatcmpl-…`, `rerank-…`): unique within this process
/// and unlikely to repeat across restarts. Not a catalog id.
pub fn response_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = since_epoch().as_nanos() as u64;
    format!("{prefix}-{nanos:x}{n:04x}")
}

/// Seconds since the Unix epoch: the `created` of answers.
pub fn now_secs() -> u64 {
    since_epoch().as_secs()
}

/// The container answered something we cannot read.
pub(crate) fn bad_upstream(what: &str, body: &[u8]) -> GatewayError {
    let mut sample = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    if body.len() > 200 {
        sample.push('…');
    }
    GatewayError::Upstream {
        message: format!(
            "the container's answer is not {what}: {sample}; check the model's `format`"
        ),
        code: "bad_upstream_response",
    }
}
