//! The sagebridge model gateway: an OpenAI-compatible HTTP API over SageMaker endpoints.
//!
//! Dify (through its OpenAI-API-compatible provider), LangChain, the `openai` SDKs and curl
//! talk to SageMaker-hosted chat, embedding and rerank models through it. A request flows one
//! way: auth -> model lookup by `model` in the registry of the route's kind (a chat request
//! gets a `ChatModel`, whose adapter is a chat adapter) -> the adapter encodes the container's
//! request -> the invoker calls InvokeEndpoint (or InvokeEndpointWithResponseStream) with one
//! cached runtime client per credential set -> the adapter decodes the answer into OpenAI
//! JSON, or the stream decoder turns `PayloadPart`s into SSE chunks as they arrive.
//!
//! # Layout
//! - [`config`]: `sagebridge.yaml` types, strict loading and validation.
//! - [`api`]: OpenAI request parsing with errors that name the field.
//! - [`audio`]: the audio routes' requests (multipart form, speech JSON), WAV splitting by
//!   time and the transcript formats (`srt`, `vtt`, `verbose_json`).
//! - [`adapter`]: one adapter per container family (`openai`, `tgi`, `lmi`, `tei`,
//!   `jumpstart`, `dify`) and the chat templates (`adapter::template`).
//! - [`stream`]: the `PayloadPart` stream decoder, correct under any split, and the streamed
//!   chat answer built on it (OpenAI chunks serialized from structs).
//! - [`reasoning`]: `<think>` sections split off into `reasoning_content`, streamed and
//!   buffered alike.
//! - [`invoker`]: the SageMaker runtime calls, the client cache and AWS error mapping.
//! - [`gateway`]: [`Gateway`], the state built from the config (models by kind, keys,
//!   metrics).
//! - [`routes`]: the axum [`router`]: `/v1/chat/completions`, `/v1/embeddings`,
//!   `/v1/rerank`, `/v1/audio/{transcriptions,translations,speech}`, `/v1/models`,
//!   `/metrics`, API-key auth.
//! - [`error`]: [`GatewayError`] and its OpenAI-shaped responses.
//! - [`coldstart`]: requests held while a model's inference component has no copies, one
//!   probe per model.
//! - [`limits`]: the concurrency limiter of `/v1` and the per-request limits of `server:`.
//! - [`metrics`]: hand-written Prometheus counters and histograms.
//! - [`usage`]: usage per API key and model (metrics, daily deltas for the catalog) and the
//!   per-key limits (requests and tokens per minute).
//! - [`checks`]: [`check_models`], the gateway half of `sagebridge test-connection`.

pub mod adapter;
pub mod api;
pub mod audio;
pub mod checks;
pub mod coldstart;
pub mod config;
pub mod direct;
pub mod error;
pub mod gateway;
pub mod handle;
pub mod invoker;
pub mod limits;
pub mod metrics;
pub mod reasoning;
pub mod routes;
pub mod stream;
pub mod usage;

pub use checks::check_models;
pub use config::{load_file, GatewayConfig, ModelConfig, ModelKind};
pub use error::GatewayError;
pub use gateway::{
    ChatModel, EmbeddingModel, Gateway, GatewayOptions, RerankModel, SpeechModel,
    TranscriptionModel,
};
pub use handle::{GatewayHandle, KeyGrant, KeyStore, PreAuthorized};
pub use routes::{api_router, router};
pub use usage::{KeyLimits, Usage, UsageDelta};
