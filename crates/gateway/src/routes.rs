//! The HTTP API: OpenAI-compatible routes, API-key auth and `/metrics`.
//!
//! Streams are passed through as they arrive: each `PayloadPart` is decoded and the chunks it
//! completes are written at once; nothing is buffered beyond an incomplete line. When the
//! client goes away, axum drops the response body, which drops the SageMaker event receiver
//! and with it the upstream connection.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_sagemakerruntime::types::ResponseStream;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::adapter::embed::{base64_f32, batches, estimate_tokens, shorten};
use crate::adapter::{new_id, now_secs, Adapter, ResponseCtx};
use crate::api::{ChatRequest, EmbeddingsRequest, RerankRequest, Usage};
use crate::config::{Format, ModelKind, SAGEMAKER_MAX_PAYLOAD};
use crate::error::GatewayError;
use crate::gateway::{Gateway, Model};
use crate::invoker::Events;
use crate::metrics::Route;
use crate::stream::{LineSplitter, StreamEvent};

/// Room left in each embedding invocation for SageMaker's own framing.
const PAYLOAD_MARGIN: usize = 16 * 1024;

/// The OpenAI-compatible API (`/v1/...`, behind API-key auth) and `GET /metrics`.
pub fn router(state: Arc<Gateway>) -> Router {
    api_router(state.clone()).merge(
        Router::new()
            .route("/metrics", get(metrics))
            .with_state(state),
    )
}

/// Only the `/v1/...` routes, for servers that serve `/metrics` themselves (with
/// [`Gateway::metrics_text`]).
pub fn api_router(state: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/rerank", post(rerank))
        .route("/v1/models", get(list_models))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(DefaultBodyLimit::max(state.max_request_bytes))
        .with_state(state)
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        gw.metrics_text(),
    )
        .into_response()
}

/// The key from `Authorization: Bearer <key>`, or from `api-key` / `x-api-key` (Azure-style
/// clients).
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        return Some(
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .unwrap_or(v)
                .trim(),
        );
    }
    headers
        .get("x-api-key")
        .or_else(|| headers.get("api-key"))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

async fn auth(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    if !gw.auth_required() || presented_key(req.headers()).is_some_and(|k| gw.key_matches(k)) {
        return next.run(req).await;
    }
    gw.metrics.error(None, "invalid_api_key");
    tracing::warn!(path = %req.uri().path(), "request without a valid API key");
    GatewayError::Unauthorized.into_response()
}

fn body_bytes(body: Result<Bytes, BytesRejection>, gw: &Gateway) -> Result<Bytes, GatewayError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            GatewayError::PayloadTooLarge {
                limit: gw.max_request_bytes,
            }
        } else {
            GatewayError::BadRequest {
                message: format!("cannot read the request body: {r}"),
                param: None,
            }
        }
    })
}

/// Counts and logs a failure, then answers it.
fn fail(gw: &Gateway, model: Option<&str>, route: &'static str, e: GatewayError) -> Response {
    gw.metrics.error(model, e.code());
    if e.status().is_server_error() {
        tracing::warn!(route, model = model.unwrap_or(""), code = e.code(), error = %e, "request failed");
    } else {
        tracing::debug!(route, model = model.unwrap_or(""), code = e.code(), error = %e, "request refused");
    }
    e.into_response()
}

async fn chat(State(gw): State<Arc<Gateway>>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let mut model_name = None;
    match chat_inner(&gw, body, started, &mut model_name).await {
        Ok(r) => r,
        Err(e) => fail(&gw, model_name.as_deref(), "chat", e),
    }
}

async fn chat_inner(
    gw: &Arc<Gateway>,
    body: Result<Bytes, BytesRejection>,
    started: Instant,
    model_name: &mut Option<String>,
) -> Result<Response, GatewayError> {
    let body = body_bytes(body, gw)?;
    let req = ChatRequest::parse(&body)?;
    let model = gw.model(&req.model, ModelKind::Chat)?.clone();
    *model_name = Some(model.name.clone());
    let Adapter::Chat(adapter) = &model.adapter else {
        return Err(GatewayError::Internal(
            "chat model without a chat adapter".into(),
        ));
    };
    let mm = gw.model_metrics(&model);
    let payload = adapter.encode(&req, &model.defaults, req.stream)?;
    if req.stream {
        mm.request(Route::ChatStream);
        let events = gw.invoker.invoke_stream(&model.target, payload).await?;
        mm.upstream_latency.observe(started.elapsed());
        return Ok(sse_response(chat_stream(
            gw.clone(),
            model,
            events,
            req.include_usage,
            started,
        )));
    }
    mm.request(Route::Chat);
    let answer = gw.invoker.invoke(&model.target, payload).await?;
    mm.upstream_latency.observe(started.elapsed());
    let id = new_id("chatcmpl");
    let completion = adapter.decode(
        &answer,
        &ResponseCtx {
            model: &model.name,
            id: &id,
            created: now_secs(),
        },
    )?;
    if let Some(u) = completion.usage {
        mm.tokens(u.prompt_tokens, u.completion_tokens);
    }
    tracing::debug!(model = %model.name, ms = started.elapsed().as_millis() as u64, "chat completion");
    Ok(Json(completion.body).into_response())
}

fn sse_response(body: Body) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx would otherwise hold chunks back.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// The state of one streamed chat answer.
struct ChatStream {
    gw: Arc<Gateway>,
    model: Arc<Model>,
    events: Events,
    lines: LineSplitter,
    parsed: Vec<StreamEvent>,
    out: VecDeque<Bytes>,
    id: String,
    created: u64,
    /// The model name as a JSON string, ready to splice into chunks.
    model_json: String,
    include_usage: bool,
    role_sent: bool,
    finished: bool,
    usage: Option<Usage>,
    started: Instant,
    first_token_seen: bool,
    done: bool,
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        self.gw.model_metrics(&self.model).stream_closed();
        if !self.done {
            tracing::debug!(model = %self.model.name, "client went away; upstream stream dropped");
        }
    }
}

fn chat_stream(
    gw: Arc<Gateway>,
    model: Arc<Model>,
    events: Events,
    include_usage: bool,
    started: Instant,
) -> Body {
    gw.model_metrics(&model).stream_opened();
    let model_json = serde_json::to_string(&model.name).unwrap_or_else(|_| "\"\"".into());
    let state = ChatStream {
        gw,
        model,
        events,
        lines: LineSplitter::default(),
        parsed: Vec::new(),
        out: VecDeque::new(),
        id: new_id("chatcmpl"),
        created: now_secs(),
        model_json,
        include_usage,
        role_sent: false,
        finished: false,
        usage: None,
        started,
        first_token_seen: false,
        done: false,
    };
    Body::from_stream(futures::stream::unfold(state, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), s))
    }))
}

impl ChatStream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        // Bounded: every turn either yields, ends, or consumes one upstream event, and each
        // upstream wait is bounded by the timeout.
        loop {
            if let Some(b) = self.out.pop_front() {
                return Some(b);
            }
            if self.done {
                return None;
            }
            let timeout = self.gw.invoker.timeout();
            match tokio::time::timeout(timeout, self.events.recv()).await {
                Err(_) => self.fail(GatewayError::Timeout {
                    seconds: timeout.as_secs(),
                }),
                Ok(Ok(Some(ResponseStream::PayloadPart(part)))) => {
                    if let Some(bytes) = part.bytes() {
                        self.feed(bytes.as_ref());
                    }
                }
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => self.finish(),
                Ok(Err(e)) => {
                    let err = self
                        .gw
                        .invoker
                        .map_stream_event_error(&e, &self.model.target);
                    self.fail(err);
                }
            }
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut parsed = std::mem::take(&mut self.parsed);
        let Adapter::Chat(adapter) = &self.model.adapter else {
            return;
        };
        self.lines
            .push(bytes, |line| adapter.parse_line(line, &mut parsed));
        for ev in parsed.drain(..) {
            self.event(ev);
            if self.done {
                break;
            }
        }
        self.parsed = parsed;
    }

    fn first_token(&mut self) {
        if !self.first_token_seen {
            self.first_token_seen = true;
            self.gw
                .model_metrics(&self.model)
                .time_to_first_token
                .observe(self.started.elapsed());
        }
    }

    fn chunk(&self, delta: &str, finish: Option<&str>) -> Bytes {
        let finish = finish
            .map(|f| format!("\"{f}\""))
            .unwrap_or_else(|| "null".into());
        Bytes::from(format!(
            "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n",
            self.id, self.created, self.model_json
        ))
    }

    fn event(&mut self, ev: StreamEvent) {
        match ev {
            StreamEvent::Chunk(json) => {
                if json.contains("\"content\"") {
                    self.first_token();
                }
                if json.contains("\"usage\"") {
                    if let Ok(v) = serde_json::from_str::<Value>(&json) {
                        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                            self.usage = Some(Usage {
                                prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
                                completion_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
                            });
                        }
                    }
                }
                let mut b = Vec::with_capacity(json.len() + 8);
                b.extend_from_slice(b"data: ");
                b.extend_from_slice(json.as_bytes());
                b.extend_from_slice(b"\n\n");
                self.out.push_back(Bytes::from(b));
            }
            StreamEvent::Text(text) => {
                self.first_token();
                let content = serde_json::to_string(&text).unwrap_or_default();
                let delta = if self.role_sent {
                    format!("{{\"content\":{content}}}")
                } else {
                    self.role_sent = true;
                    format!("{{\"role\":\"assistant\",\"content\":{content}}}")
                };
                let c = self.chunk(&delta, None);
                self.out.push_back(c);
            }
            StreamEvent::Finish { reason, usage } => {
                if !self.finished {
                    self.finished = true;
                    self.usage = usage.or(self.usage);
                    let c = self.chunk("{}", Some(&reason));
                    self.out.push_back(c);
                }
            }
            StreamEvent::Error(message) => self.fail(GatewayError::ModelError {
                original_status: None,
                message,
            }),
            // Our own `[DONE]` is sent when SageMaker's stream ends.
            StreamEvent::Done => {}
        }
    }

    fn finish(&mut self) {
        let mut parsed = std::mem::take(&mut self.parsed);
        if let Adapter::Chat(adapter) = &self.model.adapter {
            self.lines
                .finish(|line| adapter.parse_line(line, &mut parsed));
        }
        for ev in parsed.drain(..) {
            self.event(ev);
        }
        if self.done {
            return;
        }
        if self.model.format != Format::Openai {
            if !self.finished {
                let c = self.chunk("{}", Some("stop"));
                self.out.push_back(c);
            }
            if self.include_usage {
                let usage = self.usage.unwrap_or_default().to_json();
                self.out.push_back(Bytes::from(format!(
                    "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},\"choices\":[],\"usage\":{usage}}}\n\n",
                    self.id, self.created, self.model_json
                )));
            }
        }
        if let Some(u) = self.usage {
            self.gw
                .model_metrics(&self.model)
                .tokens(u.prompt_tokens, u.completion_tokens);
        }
        self.out.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
        self.done = true;
    }

    /// Ends the stream with an OpenAI error object, so clients see the failure rather than a
    /// silently shortened answer.
    fn fail(&mut self, e: GatewayError) {
        tracing::warn!(model = %self.model.name, code = e.code(), error = %e, "stream failed");
        self.gw.metrics.error(Some(&self.model.name), e.code());
        self.out
            .push_back(Bytes::from(format!("data: {}\n\n", e.body())));
        self.done = true;
    }
}

async fn embeddings(
    State(gw): State<Arc<Gateway>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let mut model_name = None;
    match embeddings_inner(&gw, body, started, &mut model_name).await {
        Ok(r) => r,
        Err(e) => fail(&gw, model_name.as_deref(), "embeddings", e),
    }
}

/// `POST /v1/embeddings`.
///
/// `dimensions` keeps the first N values of each vector and renormalises vectors the container
/// sent normalised (see [`shorten`]); 0, or more than the container's vectors have, is a 400
/// naming `dimensions`.
///
/// `usage.prompt_tokens` (and `total_tokens`, the same number for embeddings) is the
/// container's own count when every batch reported one (OpenAI-format containers do), and
/// otherwise an estimate from the text ([`estimate_tokens`]: about 4 ASCII characters per
/// token, one per other character), never a silent 0. Only exact counts go into the
/// `tokens_total` metric.
async fn embeddings_inner(
    gw: &Gateway,
    body: Result<Bytes, BytesRejection>,
    started: Instant,
    model_name: &mut Option<String>,
) -> Result<Response, GatewayError> {
    let body = body_bytes(body, gw)?;
    let req = EmbeddingsRequest::parse(&body)?;
    let model = gw.model(&req.model, ModelKind::Embedding)?;
    *model_name = Some(model.name.clone());
    let Adapter::Embedding(adapter) = &model.adapter else {
        return Err(GatewayError::Internal(
            "embedding model without an embedding adapter".into(),
        ));
    };
    let mm = gw.model_metrics(model);
    mm.request(Route::Embeddings);
    let ranges = batches(
        adapter.as_ref(),
        &req.input,
        &model.name,
        model.max_batch_size,
        SAGEMAKER_MAX_PAYLOAD - PAYLOAD_MARGIN,
    );
    let results: Vec<(Vec<Vec<f32>>, Option<u64>)> = futures::stream::iter(ranges)
        .map(|r| {
            let payload = adapter.encode(&req.input[r.clone()], &model.name);
            async move {
                let t0 = Instant::now();
                let answer = gw.invoker.invoke(&model.target, payload).await?;
                mm.upstream_latency.observe(t0.elapsed());
                adapter.decode_with_usage(&answer, r.len())
            }
        })
        .buffered(gw.batch_concurrency)
        .try_collect()
        .await?;
    let counted: Option<u64> = results.iter().map(|(_, t)| *t).sum();
    let prompt_tokens = match counted {
        Some(n) => {
            mm.tokens(n, 0);
            n
        }
        None => req.input.iter().map(|t| estimate_tokens(t)).sum(),
    };
    let mut vectors: Vec<Vec<f32>> = results.into_iter().flat_map(|(v, _)| v).collect();
    if let Some(dims) = req.dimensions {
        let dims = dims as usize;
        let available = vectors.iter().map(Vec::len).min().unwrap_or(0);
        if dims > available {
            return Err(GatewayError::bad_request(
                "dimensions",
                format!(
                    "`dimensions` is {dims} but model `{}` returns vectors of {available} dimensions; ask for {available} or fewer",
                    model.name
                ),
            ));
        }
        for v in &mut vectors {
            shorten(v, dims);
        }
    }
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if req.base64 {
                Value::String(base64_f32(&v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    tracing::debug!(model = %model.name, inputs = data.len(), ms = started.elapsed().as_millis() as u64, "embeddings");
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": model.name,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }))
    .into_response())
}

async fn rerank(State(gw): State<Arc<Gateway>>, body: Result<Bytes, BytesRejection>) -> Response {
    let mut model_name = None;
    match rerank_inner(&gw, body, &mut model_name).await {
        Ok(r) => r,
        Err(e) => fail(&gw, model_name.as_deref(), "rerank", e),
    }
}

async fn rerank_inner(
    gw: &Gateway,
    body: Result<Bytes, BytesRejection>,
    model_name: &mut Option<String>,
) -> Result<Response, GatewayError> {
    let body = body_bytes(body, gw)?;
    let req = RerankRequest::parse(&body)?;
    let model = gw.model(&req.model, ModelKind::Rerank)?;
    *model_name = Some(model.name.clone());
    let Adapter::Rerank(adapter) = &model.adapter else {
        return Err(GatewayError::Internal(
            "rerank model without a rerank adapter".into(),
        ));
    };
    let mm = gw.model_metrics(model);
    mm.request(Route::Rerank);
    let mut scores = if req.documents.is_empty() {
        Vec::new()
    } else {
        let t0 = Instant::now();
        let answer = gw
            .invoker
            .invoke(&model.target, adapter.encode(&req.query, &req.documents))
            .await?;
        mm.upstream_latency.observe(t0.elapsed());
        adapter.decode(&answer, req.documents.len())?
    };
    // Highest score first; equal scores keep document order.
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scores.truncate(req.top_n.unwrap_or(usize::MAX));
    let results: Vec<Value> = scores
        .into_iter()
        .map(|(index, score)| {
            let mut r = json!({"index": index, "relevance_score": score});
            if req.return_documents {
                r["document"] = json!({"text": req.documents[index]});
            }
            r
        })
        .collect();
    Ok(Json(json!({
        "id": new_id("rerank"),
        "object": "rerank",
        "model": model.name,
        "results": results,
        "usage": {"total_tokens": 0},
    }))
    .into_response())
}

async fn list_models(State(gw): State<Arc<Gateway>>) -> Response {
    let data: Vec<Value> = gw
        .models()
        .iter()
        .map(|m| {
            let mut v = json!({
                "id": m.name,
                "object": "model",
                "created": 0,
                "owned_by": m.owned_by,
                "kind": m.kind.as_str(),
                "format": m.format.as_str(),
            });
            if let Some(c) = m.defaults.context_length {
                v["context_length"] = c.into();
            }
            v
        })
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}
