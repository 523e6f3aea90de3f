//! The HTTP API: OpenAI-compatible routes, API-key auth and `/metrics`.
//!
//! Each handler looks its model up by kind ([`Gateway::chat_model`], ...), so it holds the
//! kind's adapter without checking it. Streams are passed through as they arrive
//! ([`crate::stream`]): each `PayloadPart` is decoded and the chunks it completes are written at
//! once; nothing is buffered beyond an incomplete line. When the client goes away, axum drops
//! the response body, which drops the SageMaker event receiver and with it the upstream
//! connection.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::adapter::audio::{Transcript, TranscriptionAsk};
use crate::adapter::embed::{base64_f32, batches, estimate_tokens, shorten};
use crate::adapter::{now_secs, response_id, Adapter, ResponseCtx};
use crate::api::{ChatRequest, EmbeddingsRequest, RerankRequest};
use crate::audio::{self, Segment, SpeechRequest, TranscriptFormat, TranscriptionRequest, Wav};
use crate::config::SAGEMAKER_MAX_PAYLOAD;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::handle::{GatewayHandle, KeyGrant, PreAuthorized};
use crate::metrics::Route;
use crate::stream::chat_stream;
use crate::usage::{ErrorClass, UsageTicket, ADMIN_SESSION, ANONYMOUS};

/// Room left in each embedding invocation for SageMaker's own framing.
const PAYLOAD_MARGIN: usize = 16 * 1024;

/// The OpenAI-compatible API (`/v1/...`, behind API-key auth) and `GET /metrics`.
pub fn router(state: Arc<GatewayHandle>) -> Router {
    api_router(state.clone()).merge(
        Router::new()
            .route("/metrics", get(metrics))
            .with_state(state),
    )
}

/// Only the `/v1/...` routes, for servers that serve `/metrics` themselves (with
/// [`Gateway::metrics_text`]).
pub fn api_router(state: Arc<GatewayHandle>) -> Router {
    let max_request_bytes = state.current().max_request_bytes;
    Router::new()
        .route("/v1/rerank", post(rerank))
        .route("/v1/audio/transcriptions", post(transcriptions))
        .route("/v1/audio/translations", post(translations))
        .route("/v1/audio/speech", post(speech))
        .route("/v1/models", get(list_models))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth))
        // The hot routes call [`admit`] themselves, the same check without a boxed middleware
        // per request, and read their body with [`read_body`] (the same limit).
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .layer(DefaultBodyLimit::max(max_request_bytes))
        .with_state(state)
}

async fn metrics(State(h): State<Arc<GatewayHandle>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        h.metrics_text(),
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

/// Checks the API key and puts its [`KeyGrant`] into the request. A `POST` also gets a
/// [`UsageTicket`] of the key (counted when the answer ends) and passes the key's limits
/// ([`crate::usage`]) or is answered 429. For a key limited to some models, the body is read
/// here (within the size limit) to refuse a call for another model before any handler runs.
async fn auth(State(h): State<Arc<GatewayHandle>>, req: Request, next: Next) -> Response {
    match admit(&h, req).await {
        Err(refused) => refused,
        Ok(Admitted {
            mut req,
            grant,
            ticket,
        }) => {
            req.extensions_mut().insert(grant);
            match ticket {
                None => next.run(req).await,
                Some(ticket) => {
                    req.extensions_mut().insert(ticket.clone());
                    counted(&ticket, next.run(req).await)
                }
            }
        }
    }
}

/// A request its API key lets through.
struct Admitted {
    req: Request,
    grant: KeyGrant,
    /// A `POST`'s usage: [`counted`] tells it how the answer ended.
    ticket: Option<UsageTicket>,
}

/// The check of [`auth`], for the middleware and for the hot routes that call it themselves:
/// `Err` is the refusal to answer (already counted in the key's usage).
async fn admit(h: &GatewayHandle, req: Request) -> Result<Admitted, Response> {
    let grant = if req.extensions().get::<PreAuthorized>().is_some() {
        KeyGrant::unrestricted(ADMIN_SESSION)
    } else if !h.auth_required() {
        KeyGrant::unrestricted(ANONYMOUS)
    } else if let Some(grant) = presented_key(req.headers()).and_then(|k| h.authorize(k)) {
        grant
    } else {
        h.current().metrics.error(None, "invalid_api_key");
        tracing::warn!(path = %req.uri().path(), "request without a valid API key");
        return Err(GatewayError::Unauthorized.into_response());
    };
    if req.method() != axum::http::Method::POST {
        return Ok(Admitted {
            req,
            grant,
            ticket: None,
        });
    }
    let ticket = h.usage().ticket(&grant.name);
    let req = match grant.allowed_models {
        Some(_) => match check_model_allowed(&h.current(), &grant, &ticket, req).await {
            Ok(req) => req,
            Err(r) => return Err(counted(&ticket, r)),
        },
        None => req,
    };
    if let Err(e) = h.usage().admit(&grant.name, grant.limits) {
        tracing::info!(key = %grant.name, code = e.code(), "API key over its limit");
        return Err(counted(&ticket, fail(&h.current(), None, "auth", e)));
    }
    Ok(Admitted {
        req,
        grant,
        ticket: Some(ticket),
    })
}

/// Tells `ticket` the error class of `response`, if it failed.
fn counted(ticket: &UsageTicket, response: Response) -> Response {
    if let Some(ErrorClass(class)) = response.extensions().get::<ErrorClass>() {
        ticket.set_error(class);
    }
    response
}

/// Reads the body of `req` to see its `model`, and answers 403 when `grant` does not allow it;
/// else hands the request on with the body put back.
async fn check_model_allowed(
    gw: &Gateway,
    grant: &KeyGrant,
    ticket: &UsageTicket,
    req: Request,
) -> Result<Request, Response> {
    #[derive(serde::Deserialize)]
    struct ModelField {
        model: Option<String>,
    }
    let (parts, body) = req.into_parts();
    let bytes = read_body(gw, body)
        .await
        .map_err(|e| fail(gw, None, "auth", e))?;
    // A body without a readable `model` goes on: its handler answers the parse error.
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let model = match content_type.filter(|c| audio::boundary(c).is_some()) {
        Some(c) => audio::multipart_model(c, &bytes),
        None => serde_json::from_slice::<ModelField>(&bytes)
            .ok()
            .and_then(|m| m.model),
    };
    if let Some(model) = model {
        // Only configured names become labels: a client cannot grow the metrics at will.
        if gw.models().iter().any(|m| m.name == model) {
            ticket.set_model(&model);
        }
        if !grant.allows(&model) {
            tracing::warn!(model = %model, "API key not allowed to call this model");
            return Err(fail(
                gw,
                Some(&model),
                "auth",
                GatewayError::ModelNotAllowed(model.clone()),
            ));
        }
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Whether reading a body failed because the server's body-read deadline passed (the server
/// ends a late body with an `io::ErrorKind::TimedOut` error).
fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    // Bounded: error chains are a few links long; 16 is far beyond any of axum's.
    for _ in 0..16 {
        let Some(x) = cur else { return false };
        if x.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cur = x.source();
    }
    false
}

/// The whole body of a request, up to the gateway's `maxRequestBytes` (the limit
/// `DefaultBodyLimit` sets for the extractors of the other routes).
async fn read_body(gw: &Gateway, body: Body) -> Result<Bytes, GatewayError> {
    axum::body::to_bytes(body, gw.max_request_bytes)
        .await
        .map_err(|e| {
            if is_body_timeout(&e) {
                GatewayError::RequestTimeout {
                    seconds: gw.limits.body_read_timeout.as_secs_f64(),
                }
            } else if is_over_limit(&e) {
                GatewayError::PayloadTooLarge {
                    limit: gw.max_request_bytes,
                }
            } else {
                GatewayError::BadRequest {
                    message: format!("cannot read the request body: {e}"),
                    param: None,
                }
            }
        })
}

/// Whether reading a body failed because it passed the size limit.
fn is_over_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    // Bounded as in `is_body_timeout`.
    for _ in 0..16 {
        let Some(x) = cur else { return false };
        if x.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = x.source();
    }
    false
}

fn body_bytes(body: Result<Bytes, BytesRejection>, gw: &Gateway) -> Result<Bytes, GatewayError> {
    body.map_err(|r| {
        if is_body_timeout(&r) {
            GatewayError::RequestTimeout {
                seconds: gw.limits.body_read_timeout.as_secs_f64(),
            }
        } else if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
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

/// Counts and logs a failure, then answers it (with its class in the answer's extensions, for
/// the request's [`UsageTicket`]).
fn fail(gw: &Gateway, model: Option<&str>, route: &'static str, e: GatewayError) -> Response {
    let class = e.code();
    gw.metrics.error(model, class);
    let request_id = response_id("req");
    if e.from_upstream() {
        tracing::warn!(route, model = model.unwrap_or(""), code = e.code(), request_id = %request_id, error = %e, "request failed");
    } else {
        tracing::debug!(route, model = model.unwrap_or(""), code = e.code(), error = %e, "request refused");
    }
    // Clients get the class and what to do; ARNs, accounts and endpoints stay in the log.
    let mut response = e.client_response(&request_id);
    response.extensions_mut().insert(ErrorClass(class));
    response
}

/// The request's ticket, told the model the request resolved to.
fn ticket_of(ticket: Option<Extension<UsageTicket>>) -> Option<UsageTicket> {
    ticket.map(|Extension(t)| t)
}

fn set_model(ticket: &Option<UsageTicket>, model: &Option<String>) {
    if let (Some(t), Some(m)) = (ticket, model) {
        t.set_model(m);
    }
}

async fn chat(State(h): State<Arc<GatewayHandle>>, req: Request) -> Response {
    let Admitted { req, ticket, .. } = match admit(&h, req).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let gw = h.current();
    let started = Instant::now();
    let mut model_name = None;
    let body = read_body(&gw, req.into_body()).await;
    let result = chat_inner(&h, &gw, body, started, &mut model_name, ticket.as_ref()).await;
    set_model(&ticket, &model_name);
    let response = match result {
        Ok(r) => r,
        Err(e) => fail(&gw, model_name.as_deref(), "chat", e),
    };
    match &ticket {
        Some(t) => counted(t, response),
        None => response,
    }
}

/// `POST /v1/chat/completions`. The key's usage takes the container's token counts; without
/// them, estimates ([`estimate_tokens`]) of the messages' text and of the answer's text (for a
/// stream, one token per content chunk).
async fn chat_inner(
    h: &GatewayHandle,
    gw: &Arc<Gateway>,
    body: Result<Bytes, GatewayError>,
    started: Instant,
    model_name: &mut Option<String>,
    ticket: Option<&UsageTicket>,
) -> Result<Response, GatewayError> {
    let body = body?;
    let req = ChatRequest::parse(&body)?;
    let model = gw.chat_model(&req.model)?.clone();
    *model_name = Some(model.name.clone());
    if req.has_images() && !model.vision {
        return Err(GatewayError::bad_request(
            "messages",
            format!(
                "model `{}` does not take images (its config has no `vision: true`); send text only",
                model.name
            ),
        ));
    }
    let permit = h.limiter().try_acquire(&model.name)?;
    let adapter = model.adapter();
    let mm = gw.model_metrics(&model);
    let payload = adapter.encode(&req, &model.defaults, req.stream)?;
    if req.stream {
        mm.request(Route::ChatStream);
        let events = gw
            .invoke_warm(model.shared(), warm_since(started), || {
                gw.invoker.invoke_stream(&model.target, payload.clone())
            })
            .await?;
        mm.upstream_latency.observe(started.elapsed());
        return Ok(sse_response(chat_stream(
            gw.clone(),
            model,
            events,
            crate::stream::StreamOptions {
                include_usage: req.include_usage,
                choices: req.n.unwrap_or(1) as usize,
                started,
                permit: Some(permit),
                ticket: ticket.cloned(),
                prompt_estimate: req.prompt_estimate(),
            },
        )));
    }
    mm.request(Route::Chat);
    // Shared, not copied, by each attempt of a cold-start wait.
    let payload = Bytes::from(payload);
    let answer = gw
        .invoke_warm(model.shared(), warm_since(started), || {
            gw.invoker.invoke(&model.target, payload.clone())
        })
        .await?;
    mm.upstream_latency.observe(started.elapsed());
    let id = response_id("chatcmpl");
    let completion = adapter.decode(
        &answer,
        &ResponseCtx {
            model: &model.name,
            id: &id,
            created: now_secs(),
            request: Some(&req),
        },
    )?;
    if let Some(u) = completion.usage {
        mm.tokens(u.prompt_tokens, u.completion_tokens);
    }
    if let Some(t) = ticket {
        match completion.usage {
            Some(u) => t.add_tokens(u.prompt_tokens, u.completion_tokens),
            None => t.add_tokens(
                req.prompt_estimate(),
                answer_estimate(&completion.body.to_value()),
            ),
        }
    }
    tracing::debug!(model = %model.name, ms = started.elapsed().as_millis() as u64, "chat completion");
    Ok(completion.body.into_response())
}

/// An estimate of the tokens of a chat answer's text, when the container gives no count.
fn answer_estimate(body: &Value) -> u64 {
    body.get("choices")
        .and_then(Value::as_array)
        .map(|choices| {
            choices
                .iter()
                .filter_map(|c| c.pointer("/message/content").and_then(Value::as_str))
                .map(estimate_tokens)
                .sum()
        })
        .unwrap_or(0)
}

/// The start of a request's cold-start wait ([`Gateway::invoke_warm`]).
fn warm_since(started: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(started)
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

async fn embeddings(State(h): State<Arc<GatewayHandle>>, req: Request) -> Response {
    let Admitted { req, ticket, .. } = match admit(&h, req).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let gw = h.current();
    let started = Instant::now();
    let mut model_name = None;
    let body = read_body(&gw, req.into_body()).await;
    let result = embeddings_inner(&h, &gw, body, started, &mut model_name).await;
    set_model(&ticket, &model_name);
    let result = result.map(|(response, tokens)| {
        if let Some(t) = &ticket {
            t.add_tokens(tokens, 0);
        }
        response
    });
    let response = match result {
        Ok(r) => r,
        Err(e) => fail(&gw, model_name.as_deref(), "embeddings", e),
    };
    match &ticket {
        Some(t) => counted(t, response),
        None => response,
    }
}

/// `POST /v1/embeddings`, answered with the request's prompt tokens (for the key's usage).
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
    h: &GatewayHandle,
    gw: &Arc<Gateway>,
    body: Result<Bytes, GatewayError>,
    started: Instant,
    model_name: &mut Option<String>,
) -> Result<(Response, u64), GatewayError> {
    let body = body?;
    let req = EmbeddingsRequest::parse(&body)?;
    drop(body);
    check_embedding_limits(&req, gw)?;
    let model = gw.embedding_model(&req.model)?;
    *model_name = Some(model.name.clone());
    let _permit = h.limiter().try_acquire(&model.name)?;
    let adapter = model.adapter();
    let mm = gw.model_metrics(model);
    mm.request(Route::Embeddings);
    let ranges = batches(
        adapter,
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
                let answer = gw
                    .invoke_warm(model.shared(), warm_since(started), || {
                        gw.invoker.invoke(&model.target, payload.clone())
                    })
                    .await?;
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
    let data: Vec<EmbeddingItem<'_>> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| EmbeddingItem {
            object: "embedding",
            index,
            embedding: if req.base64 {
                EmbeddingValue::Base64(base64_f32(v))
            } else {
                EmbeddingValue::Floats(v)
            },
        })
        .collect();
    tracing::debug!(model = %model.name, inputs = data.len(), ms = started.elapsed().as_millis() as u64, "embeddings");
    // Serialized straight from the vectors: no JSON value per float.
    let response = Json(EmbeddingList {
        object: "list",
        data,
        model: &model.name,
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    })
    .into_response();
    Ok((response, prompt_tokens))
}

/// Refuses an embeddings request with more inputs, or more text, than `server:` allows.
fn check_embedding_limits(req: &EmbeddingsRequest, gw: &Gateway) -> Result<(), GatewayError> {
    let l = &gw.limits;
    if req.input.len() > l.max_embedding_inputs {
        return Err(GatewayError::bad_request(
            "input",
            format!(
                "`input` has {} items; at most {} are accepted in one request (server.maxEmbeddingInputs); split it into several requests",
                req.input.len(),
                l.max_embedding_inputs
            ),
        ));
    }
    let total: usize = req.input.iter().map(String::len).sum();
    if total > l.max_embedding_input_bytes {
        return Err(GatewayError::bad_request(
            "input",
            format!(
                "`input` holds {total} bytes of text; at most {} are accepted in one request (server.maxEmbeddingInputBytes); split it into several requests",
                l.max_embedding_input_bytes
            ),
        ));
    }
    Ok(())
}

/// The body of an embeddings answer (OpenAI's shape).
#[derive(serde::Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingItem<'a>>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(serde::Serialize)]
struct EmbeddingItem<'a> {
    object: &'static str,
    index: usize,
    embedding: EmbeddingValue<'a>,
}

/// The floats as a JSON list, or their little-endian bytes in base64.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum EmbeddingValue<'a> {
    Floats(&'a [f32]),
    Base64(String),
}

#[derive(serde::Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

async fn rerank(
    State(h): State<Arc<GatewayHandle>>,
    ticket: Option<Extension<UsageTicket>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let gw = h.current();
    let mut model_name = None;
    let ticket = ticket_of(ticket);
    let result = rerank_inner(&h, &gw, body, &mut model_name, ticket.as_ref()).await;
    set_model(&ticket, &model_name);
    match result {
        Ok(r) => r,
        Err(e) => fail(&gw, model_name.as_deref(), "rerank", e),
    }
}

/// `POST /v1/rerank`. Rerank containers count no tokens: the key's usage gets an estimate
/// ([`estimate_tokens`]) of the query and the documents as prompt tokens.
async fn rerank_inner(
    h: &GatewayHandle,
    gw: &Arc<Gateway>,
    body: Result<Bytes, BytesRejection>,
    model_name: &mut Option<String>,
    ticket: Option<&UsageTicket>,
) -> Result<Response, GatewayError> {
    let body = body_bytes(body, gw)?;
    let req = RerankRequest::parse(&body)?;
    let model = gw.rerank_model(&req.model)?;
    *model_name = Some(model.name.clone());
    if let Some(t) = ticket {
        let docs: u64 = req.documents.iter().map(|d| estimate_tokens(d)).sum();
        t.add_tokens(estimate_tokens(&req.query) + docs, 0);
    }
    let _permit = h.limiter().try_acquire(&model.name)?;
    let adapter = model.adapter();
    let mm = gw.model_metrics(model);
    mm.request(Route::Rerank);
    let mut scores = if req.documents.is_empty() {
        Vec::new()
    } else {
        let t0 = Instant::now();
        let payload = adapter.encode(&req.query, &req.documents);
        let answer = gw
            .invoke_warm(model.shared(), warm_since(t0), || {
                gw.invoker.invoke(&model.target, payload.clone())
            })
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
        "id": response_id("rerank"),
        "object": "rerank",
        "model": model.name,
        "results": results,
        "usage": {"total_tokens": 0},
    }))
    .into_response())
}

async fn transcriptions(
    State(h): State<Arc<GatewayHandle>>,
    ticket: Option<Extension<UsageTicket>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    transcribe(h, ticket_of(ticket), headers, body, "transcribe").await
}

async fn translations(
    State(h): State<Arc<GatewayHandle>>,
    ticket: Option<Extension<UsageTicket>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    transcribe(h, ticket_of(ticket), headers, body, "translate").await
}

/// The audio routes count requests and latency for the key; no tokens.
async fn transcribe(
    h: Arc<GatewayHandle>,
    ticket: Option<UsageTicket>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    task: &'static str,
) -> Response {
    let gw = h.current();
    let mut model_name = None;
    let route = if task == "translate" {
        "translations"
    } else {
        "transcriptions"
    };
    let result = transcribe_inner(&h, &gw, &headers, body, task, &mut model_name).await;
    set_model(&ticket, &model_name);
    match result {
        Ok(r) => r,
        Err(e) => fail(&gw, model_name.as_deref(), route, e),
    }
}

/// `POST /v1/audio/transcriptions` and `/v1/audio/translations`.
///
/// A file above SageMaker's payload limit is cut when it is a PCM WAV file: into windows of
/// whole seconds that fit ([`audio::split_wav`]), transcribed in order (at most
/// `batch_concurrency` at once) and joined with spaces; any other file that large is a 413
/// naming the limit. `srt` and `vtt` have one cue per timed segment the container gave, else
/// one per window (one for the whole file when it was not cut).
async fn transcribe_inner(
    h: &GatewayHandle,
    gw: &Arc<Gateway>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    task: &'static str,
    model_name: &mut Option<String>,
) -> Result<Response, GatewayError> {
    let body = body_bytes(body, gw)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let req = TranscriptionRequest::parse(content_type, &body)?;
    let model = gw.transcription_model(&req.model)?;
    *model_name = Some(model.name.clone());
    let _permit = h.limiter().try_acquire(&model.name)?;
    let adapter = model.adapter();
    let mm = gw.model_metrics(model);
    mm.request(if task == "translate" {
        Route::Translation
    } else {
        Route::Transcription
    });
    let limit = SAGEMAKER_MAX_PAYLOAD - PAYLOAD_MARGIN;
    let wav = Wav::parse(req.file);
    let duration = wav.map(|w| w.duration());
    let windows = if req.file.len() <= limit {
        vec![audio::Window {
            audio: req.file.to_vec(),
            start: 0.0,
            end: duration.unwrap_or(0.0),
        }]
    } else {
        wav.and_then(|w| audio::split_wav(req.file, &w, limit))
            .ok_or(GatewayError::AudioTooLarge {
                bytes: req.file.len(),
                limit: SAGEMAKER_MAX_PAYLOAD,
            })?
    };
    // The translation form has no `language`: the answer is English.
    let language = if task == "translate" {
        None
    } else {
        req.language.as_deref()
    };
    let ask = TranscriptionAsk {
        task,
        language,
        prompt: req.prompt.as_deref(),
        temperature: req.temperature,
    };
    let content_type = if windows.len() > 1 {
        "audio/wav"
    } else {
        req.content_type.as_str()
    };
    let pieces: Vec<(Transcript, f64, f64)> = futures::stream::iter(windows)
        .map(|w| {
            let call = adapter.encode(&w.audio, content_type, &ask);
            async move {
                let t0 = Instant::now();
                let (answer, _) = gw
                    .invoke_warm(model.shared(), warm_since(t0), || {
                        gw.invoker.invoke_as(&model.target, call.clone())
                    })
                    .await?;
                mm.upstream_latency.observe(t0.elapsed());
                Ok::<_, GatewayError>((adapter.decode(&answer)?, w.start, w.end))
            }
        })
        .buffered(gw.batch_concurrency)
        .try_collect()
        .await?;
    let text = if pieces.len() == 1 {
        pieces[0].0.text.clone()
    } else {
        pieces
            .iter()
            .map(|(t, _, _)| t.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let detected = pieces.iter().find_map(|(t, _, _)| t.language.clone());
    let segments: Vec<Segment> = pieces
        .iter()
        .flat_map(|(t, start, end)| {
            if t.segments.is_empty() {
                vec![Segment {
                    start: *start,
                    end: *end,
                    text: t.text.clone(),
                }]
            } else {
                t.segments
                    .iter()
                    .map(|s| Segment {
                        start: s.start + start,
                        end: s.end + start,
                        text: s.text.clone(),
                    })
                    .collect()
            }
        })
        .collect();
    let duration = duration.unwrap_or_else(|| segments.last().map_or(0.0, |s| s.end));
    let text_response = |body: String, mime: &'static str| {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(mime))],
            body,
        )
            .into_response()
    };
    Ok(match req.response_format {
        TranscriptFormat::Json => Json(json!({"text": text})).into_response(),
        TranscriptFormat::Text => text_response(text, "text/plain; charset=utf-8"),
        TranscriptFormat::Srt => text_response(audio::srt(&segments), "text/plain; charset=utf-8"),
        TranscriptFormat::Vtt => text_response(audio::vtt(&segments), "text/vtt; charset=utf-8"),
        TranscriptFormat::VerboseJson => {
            let language = if task == "translate" {
                Some("english")
            } else {
                language.or(detected.as_deref())
            };
            Json(audio::verbose_json(
                if task == "translate" {
                    "translate"
                } else {
                    "transcribe"
                },
                language,
                duration,
                &text,
                &segments,
            ))
            .into_response()
        }
    })
}

async fn speech(
    State(h): State<Arc<GatewayHandle>>,
    ticket: Option<Extension<UsageTicket>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let gw = h.current();
    let mut model_name = None;
    let ticket = ticket_of(ticket);
    let result = speech_inner(&h, &gw, body, &mut model_name).await;
    set_model(&ticket, &model_name);
    match result {
        Ok(r) => r,
        Err(e) => fail(&gw, model_name.as_deref(), "speech", e),
    }
}

/// `POST /v1/audio/speech`: the container's audio as it answered it, in one of the formats
/// the model lists (`responseFormats`); any other `response_format` is a 400 naming them (the
/// gateway does not transcode).
async fn speech_inner(
    h: &GatewayHandle,
    gw: &Arc<Gateway>,
    body: Result<Bytes, BytesRejection>,
    model_name: &mut Option<String>,
) -> Result<Response, GatewayError> {
    let body = body_bytes(body, gw)?;
    let req = SpeechRequest::parse(&body)?;
    let model = gw.speech_model(&req.model)?;
    *model_name = Some(model.name.clone());
    let adapter = model.adapter();
    let formats = adapter.formats();
    let format = match &req.response_format {
        None => formats.first().cloned().unwrap_or_else(|| "wav".to_owned()),
        Some(f) if formats.contains(f) => f.clone(),
        Some(f) => {
            return Err(GatewayError::bad_request(
                "response_format",
                format!(
                    "model `{}` cannot produce `{f}` audio; it produces: {} (the gateway does not transcode)",
                    model.name,
                    formats.join(", ")
                ),
            ))
        }
    };
    let _permit = h.limiter().try_acquire(&model.name)?;
    let mm = gw.model_metrics(model);
    mm.request(Route::Speech);
    let t0 = Instant::now();
    let call = adapter.encode(&req, &model.name, &format);
    let (audio, declared) = gw
        .invoke_warm(model.shared(), warm_since(t0), || {
            gw.invoker.invoke_as(&model.target, call.clone())
        })
        .await?;
    mm.upstream_latency.observe(t0.elapsed());
    let declared = declared.filter(|c| !c.is_empty());
    if declared
        .as_deref()
        .is_some_and(|c| c.starts_with("application/json") || c.starts_with("text/"))
    {
        return Err(crate::adapter::bad_upstream("audio", &audio));
    }
    let content_type = declared.unwrap_or_else(|| audio::speech_mime(&format).to_owned());
    let mut r = Response::new(Body::from(audio));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    Ok(r)
}

/// The models the caller's key may call.
async fn list_models(
    State(h): State<Arc<GatewayHandle>>,
    grant: Option<axum::Extension<KeyGrant>>,
) -> Response {
    let gw = h.current();
    let data: Vec<Value> = gw
        .models()
        .iter()
        .filter(|m| grant.as_ref().is_none_or(|g| g.allows(&m.name)))
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
            // What a speech model's container produces (`responseFormats`): the only
            // `response_format` values it takes (the playground offers those).
            if let Adapter::Speech(a) = &m.adapter {
                v["response_formats"] = a.formats().into();
            }
            v
        })
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request's future is moved (copied) as it is polled through axum and hyper: rare
    /// paths with large futures (loading an `SdkConfig`, the SDK's orchestration, the
    /// control-plane calls that explain a refusal) are boxed so the hot path does not carry
    /// them. They made the chat handler's future 20 KiB; now it is about 4 KiB.
    #[tokio::test]
    async fn request_futures_stay_small() {
        let yaml = "awsConfig:\n  awsRegion: us-east-1\n  awsAccessKeyId: a\n  \
                    awsSecretAccessKey: b\n  endPointURL: http://127.0.0.1:9\nmodels:\n  \
                    - {name: c, kind: chat, endpointName: e, format: openai}\n";
        let cfg = crate::config::load_str("x.yaml", yaml, &|_: &str| None).unwrap();
        let gw = Arc::new(Gateway::new(&cfg).unwrap());
        let h = Arc::new(GatewayHandle::new(gw.clone()));
        let limit = 8 * 1024;
        let chat = chat(State(h), Request::new(Body::empty()));
        eprintln!("chat future: {} bytes", size_of_val(&chat));
        assert!(size_of_val(&chat) < limit, "chat: {}", size_of_val(&chat));
        let model = gw.chat_model("c").unwrap().clone();
        let invoke = gw.invoker.invoke(&model.target, Bytes::new());
        assert!(
            size_of_val(&invoke) < limit,
            "invoke: {}",
            size_of_val(&invoke)
        );
        drop(invoke);
        let stream = gw.invoker.invoke_stream(&model.target, Vec::new());
        assert!(
            size_of_val(&stream) < limit,
            "stream: {}",
            size_of_val(&stream)
        );
    }
}
