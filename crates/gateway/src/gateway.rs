//! The running gateway: the model registry built from the config, the invoker, the API keys
//! and the metrics. One `Arc<Gateway>` is the state of the axum router.
//!
//! The registry keeps each kind of model in a map of its own, as a handle that carries the
//! kind's adapter ([`ChatModel`], [`EmbeddingModel`], [`RerankModel`]): a chat request looks a
//! chat model up and gets a chat adapter, so no handler checks an adapter's kind at run time.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use sagebridge_aws::{ClientOptions, Secret};

use crate::adapter::audio::{SpeechAdapter, TranscriptionAdapter};
use crate::adapter::{self, Adapter, ChatAdapter, Defaults, EmbeddingAdapter, RerankAdapter};
use crate::config::{Format, GatewayConfig, ModelKind, DEFAULT_MAX_BATCH_SIZE};
use crate::error::GatewayError;
use crate::invoker::{InvokeTarget, Invoker};
use crate::limits::Limits;
use crate::metrics::{Metrics, ModelMetrics};

/// How the gateway behaves apart from its config file.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Retry policy and timeouts of the SageMaker runtime clients. The default retries
    /// throttled and transient failures (3 attempts in all).
    pub client: ClientOptions,
    /// How many embedding batches of one request are in flight at once.
    pub batch_concurrency: usize,
    /// How often the cold-start probe of a model scaled to zero asks for its copy count.
    pub cold_start_poll: Duration,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            client: ClientOptions::default(),
            batch_concurrency: 4,
            cold_start_poll: crate::coldstart::DEFAULT_POLL,
        }
    }
}

/// Building the gateway failed (the config passed validation, so this is rare).
#[derive(Debug, thiserror::Error)]
#[error("model `{model}`: {message}")]
pub struct BuildError {
    pub model: String,
    pub message: String,
}

/// One servable model, whatever its kind.
#[derive(Debug)]
pub struct Model {
    pub name: String,
    pub kind: ModelKind,
    pub format: Format,
    pub owned_by: String,
    /// The endpoint requests for this model are sent to.
    pub target: InvokeTarget,
    pub adapter: Adapter,
    pub defaults: Defaults,
    pub max_batch_size: usize,
    /// Whether the model takes images (`vision: true`).
    pub vision: bool,
    /// How long a request is held while the model's inference component has no copies
    /// (`coldStartWaitSeconds`; zero: answer 503 at once).
    pub cold_start_wait: Duration,
    /// Position in the config, which is also the model's slot in [`Metrics`].
    pub index: usize,
}

/// A model of the kind whose adapter is `A`: what a lookup by kind returns. It derefs to the
/// [`Model`]; [`adapter`](Self::adapter) is the kind's own adapter.
#[derive(Debug)]
pub struct KindModel<A: ?Sized> {
    model: Arc<Model>,
    adapter: Arc<A>,
}

/// A chat model: `POST /v1/chat/completions`.
pub type ChatModel = KindModel<dyn ChatAdapter>;
/// An embedding model: `POST /v1/embeddings`.
pub type EmbeddingModel = KindModel<dyn EmbeddingAdapter>;
/// A rerank model: `POST /v1/rerank`.
pub type RerankModel = KindModel<dyn RerankAdapter>;
/// A speech-recognition model: `POST /v1/audio/transcriptions` and `/v1/audio/translations`.
pub type TranscriptionModel = KindModel<dyn TranscriptionAdapter>;
/// A speech-synthesis model: `POST /v1/audio/speech`.
pub type SpeechModel = KindModel<dyn SpeechAdapter>;

impl<A: ?Sized> KindModel<A> {
    fn new(model: &Arc<Model>, adapter: Arc<A>) -> Self {
        Self {
            model: model.clone(),
            adapter,
        }
    }

    pub fn adapter(&self) -> &A {
        &self.adapter
    }

    /// The model itself, shared.
    pub fn shared(&self) -> &Arc<Model> {
        &self.model
    }
}

impl<A: ?Sized> Clone for KindModel<A> {
    fn clone(&self) -> Self {
        Self {
            model: self.model.clone(),
            adapter: self.adapter.clone(),
        }
    }
}

impl<A: ?Sized> Deref for KindModel<A> {
    type Target = Model;

    fn deref(&self) -> &Model {
        &self.model
    }
}

/// The route that serves models of `kind`, for wrong-kind errors.
fn route_of(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Chat => "POST /v1/chat/completions",
        ModelKind::Embedding => "POST /v1/embeddings",
        ModelKind::Rerank => "POST /v1/rerank",
        ModelKind::Transcription => "POST /v1/audio/transcriptions (or /v1/audio/translations)",
        ModelKind::Speech => "POST /v1/audio/speech",
    }
}

/// The gateway's state.
#[derive(Debug)]
pub struct Gateway {
    /// Every model by name, for wrong-kind errors.
    models: HashMap<String, Arc<Model>>,
    chat: HashMap<String, ChatModel>,
    embedding: HashMap<String, EmbeddingModel>,
    rerank: HashMap<String, RerankModel>,
    transcription: HashMap<String, TranscriptionModel>,
    speech: HashMap<String, SpeechModel>,
    order: Vec<Arc<Model>>,
    api_keys: Vec<Secret>,
    pub(crate) invoker: Invoker,
    pub(crate) metrics: Metrics,
    pub(crate) max_request_bytes: usize,
    pub(crate) batch_concurrency: usize,
    pub(crate) limits: Limits,
    /// The probes of models scaled to zero.
    pub(crate) cold_starts: crate::coldstart::ColdStarts,
    pub(crate) cold_start_poll: Duration,
}

impl Gateway {
    /// Builds the gateway from a validated config with default options. No AWS call is made
    /// here: runtime clients are built on first use.
    pub fn new(cfg: &GatewayConfig) -> Result<Self, BuildError> {
        Self::with_options(cfg, GatewayOptions::default())
    }

    pub fn with_options(cfg: &GatewayConfig, options: GatewayOptions) -> Result<Self, BuildError> {
        let timeout = Duration::from_secs(cfg.server.timeout_seconds.max(1));
        let mut invoker = Invoker::new(options.client, timeout);
        let mut models = HashMap::new();
        let (mut chat, mut embedding, mut rerank) =
            (HashMap::new(), HashMap::new(), HashMap::new());
        let (mut transcription, mut speech) = (HashMap::new(), HashMap::new());
        let mut order = Vec::new();
        for (index, m) in cfg.models.iter().enumerate() {
            let err = |message: String| BuildError {
                model: m.name.clone(),
                message,
            };
            let aws = cfg.effective_aws(m).ok_or_else(|| {
                err("no AWS settings: set awsConfig at the top level or on this model".into())
            })?;
            let slot = invoker.slot_for(&aws);
            let adapter = adapter::build(m).map_err(err)?;
            let model = Arc::new(Model {
                name: m.name.clone(),
                kind: m.kind,
                format: m.format(),
                owned_by: m.owned_by.clone().unwrap_or_else(|| "sagemaker".to_owned()),
                target: InvokeTarget {
                    model: m.name.clone(),
                    endpoint_name: m.endpoint_name.clone(),
                    inference_component: m.inference_component.clone(),
                    target_variant: m.target_variant.clone(),
                    target_model: m.target_model.clone(),
                    custom_attributes: m.custom_attributes.clone(),
                    region: aws.region().to_owned(),
                    slot,
                },
                adapter: adapter.clone(),
                defaults: Defaults {
                    max_tokens: m.max_tokens,
                    temperature: m.temperature,
                    context_length: m.context_length,
                },
                max_batch_size: m.max_batch_size.unwrap_or(DEFAULT_MAX_BATCH_SIZE).max(1),
                vision: m.vision,
                cold_start_wait: if m.cold_start_wait_seconds > 0.0 {
                    crate::config::seconds(m.cold_start_wait_seconds)
                } else {
                    Duration::ZERO
                },
                index,
            });
            if models.insert(m.name.clone(), model.clone()).is_some() {
                return Err(err("the name is used twice".into()));
            }
            let name = m.name.clone();
            match adapter {
                Adapter::Chat(a) => {
                    chat.insert(name, KindModel::new(&model, a));
                }
                Adapter::Embedding(a) => {
                    embedding.insert(name, KindModel::new(&model, a));
                }
                Adapter::Rerank(a) => {
                    rerank.insert(name, KindModel::new(&model, a));
                }
                Adapter::Transcription(a) => {
                    transcription.insert(name, KindModel::new(&model, a));
                }
                Adapter::Speech(a) => {
                    speech.insert(name, KindModel::new(&model, a));
                }
            }
            order.push(model);
        }
        let names: Vec<String> = cfg.models.iter().map(|m| m.name.clone()).collect();
        if cfg.server.api_keys.is_empty() {
            tracing::warn!(
                "server.apiKeys is empty: the gateway accepts requests without an API key"
            );
        }
        tracing::info!(
            models = order.len(),
            runtime_clients = invoker.client_count(),
            "gateway ready"
        );
        Ok(Self {
            models,
            chat,
            embedding,
            rerank,
            transcription,
            speech,
            order,
            api_keys: cfg.server.api_keys.clone(),
            invoker,
            metrics: Metrics::new(&names),
            max_request_bytes: cfg.server.max_request_bytes,
            batch_concurrency: options.batch_concurrency.max(1),
            limits: Limits::from_config(&cfg.server),
            cold_starts: crate::coldstart::ColdStarts::default(),
            cold_start_poll: options.cold_start_poll,
        })
    }

    /// The configured models, in config order.
    pub fn models(&self) -> &[Arc<Model>] {
        &self.order
    }

    /// The chat model `name`.
    pub fn chat_model(&self, name: &str) -> Result<&ChatModel, GatewayError> {
        self.lookup(&self.chat, name)
    }

    /// The embedding model `name`.
    pub fn embedding_model(&self, name: &str) -> Result<&EmbeddingModel, GatewayError> {
        self.lookup(&self.embedding, name)
    }

    /// The rerank model `name`.
    pub fn rerank_model(&self, name: &str) -> Result<&RerankModel, GatewayError> {
        self.lookup(&self.rerank, name)
    }

    /// The speech-recognition model `name`.
    pub fn transcription_model(&self, name: &str) -> Result<&TranscriptionModel, GatewayError> {
        self.lookup(&self.transcription, name)
    }

    /// The speech-synthesis model `name`.
    pub fn speech_model(&self, name: &str) -> Result<&SpeechModel, GatewayError> {
        self.lookup(&self.speech, name)
    }

    /// `name` in the map of one kind; a model of another kind is `WrongKind` (naming the route
    /// that serves it), no model at all is `ModelNotFound`.
    fn lookup<'a, M>(
        &self,
        kind: &'a HashMap<String, M>,
        name: &str,
    ) -> Result<&'a M, GatewayError> {
        if let Some(m) = kind.get(name) {
            return Ok(m);
        }
        match self.models.get(name) {
            Some(other) => Err(GatewayError::WrongKind {
                model: name.to_owned(),
                kind: other.kind.as_str(),
                route: route_of(other.kind),
            }),
            None => {
                self.metrics.unknown_model();
                Err(GatewayError::ModelNotFound(name.to_owned()))
            }
        }
    }

    pub(crate) fn model_metrics(&self, m: &Model) -> &ModelMetrics {
        self.metrics.model(m.index)
    }

    /// Whether API keys are required.
    pub fn auth_required(&self) -> bool {
        !self.api_keys.is_empty()
    }

    /// Whether `presented` is one of the API keys, compared in constant time (every key is
    /// compared in full, whatever matched).
    pub fn key_matches(&self, presented: &str) -> bool {
        self.key_index(presented).is_some()
    }

    /// The place of `presented` in `server.apiKeys`, compared in constant time (every key is
    /// compared in full, whatever matched).
    pub fn key_index(&self, presented: &str) -> Option<usize> {
        self.api_keys
            .iter()
            .enumerate()
            .fold(None, |found, (i, k)| {
                let same = constant_time_eq(k.expose().as_bytes(), presented.as_bytes());
                found.or(same.then_some(i))
            })
    }

    /// The Prometheus text of `GET /metrics`.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// The per-request limits of `server:`.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How many cold-start probes run (models scaled to zero with requests waiting).
    pub fn cold_start_probes(&self) -> usize {
        self.cold_starts.running()
    }

    /// How many requests of `model` wait for a copy of its inference component.
    pub fn cold_start_waiting(&self, model: &str) -> usize {
        self.cold_starts.waiting(model)
    }

    /// The gateway's metrics, for tests and embedding servers.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"secret-key", b"secret-key"));
        assert!(!constant_time_eq(b"secret-key", b"secret-kez"));
        assert!(!constant_time_eq(b"secret-key", b"secret-key2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn clients_shared_per_credential_set() {
        let env = |_: &str| None;
        let cfg = crate::config::load_str(
            "t.yaml",
            "awsConfig: {awsRegion: us-east-1}\nmodels:\n  - {name: a, kind: chat, endpointName: a}\n  - {name: b, kind: embedding, endpointName: b}\n  - {name: c, kind: rerank, endpointName: c, awsConfig: {awsRegion: eu-west-1}}\n",
            &env,
        )
        .unwrap();
        let gw = Gateway::new(&cfg).unwrap();
        assert_eq!(gw.invoker.client_count(), 2);
        assert_eq!(gw.models().len(), 3);
        assert_eq!(gw.chat_model("a").unwrap().name, "a");
        assert_eq!(gw.embedding_model("b").unwrap().name, "b");
        assert_eq!(gw.rerank_model("c").unwrap().name, "c");
        assert_eq!(
            gw.embedding_model("a").unwrap_err(),
            GatewayError::WrongKind {
                model: "a".into(),
                kind: "chat",
                route: "POST /v1/chat/completions",
            }
        );
        assert_eq!(
            gw.chat_model("c").unwrap_err(),
            GatewayError::WrongKind {
                model: "c".into(),
                kind: "rerank",
                route: "POST /v1/rerank",
            }
        );
        assert_eq!(
            gw.chat_model("zzz").unwrap_err(),
            GatewayError::ModelNotFound("zzz".into())
        );
        assert_eq!(gw.models()[2].target.region, "eu-west-1");
    }
}
