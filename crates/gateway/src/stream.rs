//! Streamed chat answers: from SageMaker `PayloadPart`s to OpenAI `chat.completion.chunk`s.
//!
//! SageMaker cuts the container's byte stream into `PayloadPart`s wherever it likes: one SSE
//! event or JSON line may be split across parts (even inside a UTF-8 character), and one part
//! may hold several events. So bytes are first reassembled into lines ([`LineSplitter`]), and
//! only complete lines are parsed ([`parse_line`]) into [`StreamEvent`]s; [`StreamDecoder`]
//! does both. The result does not depend on how the bytes were cut; a property test checks
//! exactly that.
//!
//! [`ChatChunks`] turns those events into the SSE frames the client reads (serialized from
//! the structs of the OpenAI chunk, never spliced by hand), with no I/O, so it is tested on
//! its own; [`ChatStream`] drives it from SageMaker's event receiver and keeps the metrics.
//! A TGI/LMI generation's end is read by [`GenerationEnd`], the same for streamed and
//! buffered answers, so both report the same usage.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_sagemakerruntime::types::ResponseStream;
use axum::body::Body;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::adapter::{now_secs, response_id};
use crate::api::Usage;
use crate::config::Format;
use crate::error::GatewayError;
use crate::gateway::{ChatModel, Gateway};
use crate::invoker::Events;
use crate::limits::Permit;
use crate::reasoning::{Parts, ThinkSplitter};
use crate::usage::UsageTicket;

/// One thing the container said in its stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// An OpenAI `chat.completion.chunk` as JSON text (format `openai`), forwarded unchanged.
    Chunk(String),
    /// Generated text (formats `tgi` and `lmi`).
    Text(String),
    /// The generation ended (formats `tgi` and `lmi`).
    Finish {
        reason: String,
        usage: Option<Usage>,
    },
    /// The container reported an error inside the stream.
    Error(String),
    /// The container's `data: [DONE]`.
    Done,
    /// The container sent more than `limit` bytes without a newline; nothing more is read.
    LineTooLong { limit: usize },
}

/// Reassembles lines from arbitrarily cut byte chunks. Lines end with `\n` (a `\r` before it
/// is dropped); the last line may end without one and is returned by [`LineSplitter::finish`].
///
/// A partial line is held only up to `max` bytes: a container that sends more without a
/// newline makes the splitter stop ([`LineSplitter::overflowed`]) instead of growing without
/// bound.
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max: usize,
    overflowed: bool,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::with_max(crate::config::DEFAULT_MAX_STREAM_LINE_BYTES)
    }
}

fn line_str(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes)
}

impl LineSplitter {
    /// A splitter that holds at most `max` bytes of a partial line.
    pub fn with_max(max: usize) -> Self {
        Self {
            partial: Vec::new(),
            max: max.max(1),
            overflowed: false,
        }
    }

    /// Whether a partial line grew past the limit; the splitter then ignores all input.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The limit on a partial line.
    pub fn max(&self) -> usize {
        self.max
    }

    fn overflow(&mut self) {
        self.overflowed = true;
        self.partial = Vec::new();
    }

    /// Feeds one chunk; calls `f` with each line it completes.
    pub fn push(&mut self, mut chunk: &[u8], mut f: impl FnMut(&str)) {
        if self.overflowed {
            return;
        }
        while let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                f(&line_str(&chunk[..i]));
            } else {
                if self.partial.len() + i > self.max {
                    self.overflow();
                    return;
                }
                self.partial.extend_from_slice(&chunk[..i]);
                f(&line_str(&self.partial));
                self.partial.clear();
            }
            chunk = &chunk[i + 1..];
        }
        if self.partial.len() + chunk.len() > self.max {
            self.overflow();
            return;
        }
        self.partial.extend_from_slice(chunk);
    }

    /// Ends the input; calls `f` with a last line that had no newline.
    pub fn finish(&mut self, mut f: impl FnMut(&str)) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            f(&line_str(&rest));
        }
    }
}

/// Maps TGI/LMI finish reasons to OpenAI's.
pub fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "length" | "max_tokens" => "length",
        _ => "stop",
    }
}

fn error_message(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    if e.is_null() {
        return None;
    }
    Some(match e {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| e.to_string()),
        other => other.to_string(),
    })
}

/// Parses one complete line of a `format` stream, appending what it says to `out`.
pub fn parse_line(format: Format, line: &str, out: &mut Vec<StreamEvent>) {
    let line = line.trim_end();
    if line.is_empty() || line.starts_with(':') {
        return;
    }
    // SSE `data:` with or without the space; JSON-lines streams have no prefix at all.
    let data = match line.strip_prefix("data:") {
        Some(rest) => rest.strip_prefix(' ').unwrap_or(rest),
        None if line.starts_with('{') || line.starts_with('[') => line,
        // Other SSE fields (`event:`, `id:`, `retry:`) carry nothing we use.
        None => return,
    };
    if data == "[DONE]" {
        out.push(StreamEvent::Done);
        return;
    }
    if data.is_empty() {
        return;
    }
    match format {
        Format::Openai => {
            // Only errors are parsed here: chunks are forwarded as the container wrote them.
            if data.contains("\"error\"") && !data.contains("\"choices\"") {
                if let Some(msg) = serde_json::from_str::<Value>(data)
                    .ok()
                    .as_ref()
                    .and_then(error_message)
                {
                    out.push(StreamEvent::Error(msg));
                    return;
                }
            }
            out.push(StreamEvent::Chunk(data.to_owned()));
        }
        _ => parse_generation(data, out),
    }
}

/// A TGI (`data:{"token":{..},"generated_text":..,"details":..}`) or LMI (`{"token":{"text"}}`,
/// `{"outputs":[..]}`) stream line.
fn parse_generation(data: &str, out: &mut Vec<StreamEvent>) {
    let v: Value = match serde_json::from_str(data) {
        Ok(v) => v,
        Err(e) => {
            out.push(StreamEvent::Error(format!(
                "the container sent a line that is not JSON ({e})"
            )));
            return;
        }
    };
    if let Some(msg) = error_message(&v) {
        out.push(StreamEvent::Error(msg));
        return;
    }
    let details = v.get("details").filter(|d| !d.is_null());
    let final_line = details.is_some() || v.get("generated_text").is_some_and(|g| !g.is_null());
    if let Some(token) = v.get("token").filter(|t| !t.is_null()) {
        // TGI marks the end-of-sequence token as special: its text is not shown.
        let special = token
            .get("special")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let text = token
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !special && !text.is_empty() {
            out.push(StreamEvent::Text(text.to_owned()));
        }
    } else if let Some(outputs) = v.get("outputs").and_then(Value::as_array) {
        let text: String = outputs.iter().filter_map(Value::as_str).collect();
        if !text.is_empty() {
            out.push(StreamEvent::Text(text));
        }
    }
    if final_line {
        let end = GenerationEnd::from_details(details);
        out.push(StreamEvent::Finish {
            reason: end.reason.to_owned(),
            usage: end.usage,
        });
    }
}

/// How a TGI or LMI generation ended, from its `details` (the last stream event's, or the
/// buffered answer's): one reading for both, so a streamed and a buffered answer of the same
/// generation report the same finish reason and token counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationEnd {
    /// OpenAI's `finish_reason`.
    pub reason: &'static str,
    /// Known when the container counted the generated tokens.
    pub usage: Option<Usage>,
}

impl GenerationEnd {
    /// Reads `details` (absent or null: a plain stop with no counts). Prompt tokens are the
    /// first count the container gives: `prompt_tokens`, `input_tokens`, `input_length` (TGI's
    /// stream details), or the length of `prefill` (TGI's `decoder_input_details`); else 0.
    pub fn from_details(details: Option<&Value>) -> Self {
        let details = details.filter(|d| !d.is_null());
        let field = |name: &str| details.and_then(|d| d.get(name));
        let reason = field("finish_reason")
            .and_then(Value::as_str)
            .map(finish_reason)
            .unwrap_or("stop");
        let usage = field("generated_tokens")
            .and_then(Value::as_u64)
            .map(|completion_tokens| {
                let prompt_tokens = ["prompt_tokens", "input_tokens", "input_length"]
                    .into_iter()
                    .find_map(|name| field(name).and_then(Value::as_u64))
                    .or_else(|| {
                        field("prefill")
                            .and_then(Value::as_array)
                            .map(|a| a.len() as u64)
                    })
                    .unwrap_or(0);
                Usage {
                    prompt_tokens,
                    completion_tokens,
                }
            });
        Self { reason, usage }
    }
}

/// Bytes in, events out, for one stream of one format.
#[derive(Debug)]
pub struct StreamDecoder {
    format: Format,
    lines: LineSplitter,
    overflow_reported: bool,
}

impl StreamDecoder {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            lines: LineSplitter::default(),
            overflow_reported: false,
        }
    }

    /// Holds at most `max` bytes of a partial line (see [`LineSplitter`]).
    pub fn with_max_line(mut self, max: usize) -> Self {
        self.lines = LineSplitter::with_max(max);
        self
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Decodes one `PayloadPart`'s bytes, appending the events it completes to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) {
        let format = self.format;
        self.lines.push(bytes, |line| parse_line(format, line, out));
        if self.lines.overflowed() && !self.overflow_reported {
            self.overflow_reported = true;
            out.push(StreamEvent::LineTooLong {
                limit: self.lines.max(),
            });
        }
    }

    /// The stream ended: decodes a last line that had no newline.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        let format = self.format;
        self.lines.finish(|line| parse_line(format, line, out));
    }
}

/// An OpenAI `chat.completion.chunk`.
#[derive(Debug, Serialize)]
struct ChunkBody<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Debug, Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    /// Always `null`: prompt-only containers do not stream log-probabilities.
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Debug, Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    /// A `<think>` section's text ([`crate::reasoning`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
}

/// The most choices (`n`) whose `<think>` sections are followed in a stream.
const MAX_CHOICES: usize = 128;

/// One SSE event carrying `data` as it is (a container's own OpenAI chunk).
fn sse_data(data: &str) -> Bytes {
    let mut b = Vec::with_capacity(data.len() + 8);
    b.extend_from_slice(b"data: ");
    b.extend_from_slice(data.as_bytes());
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

/// One SSE event carrying `value` as JSON.
pub fn sse_json(value: &impl Serialize) -> Bytes {
    let mut b = b"data: ".to_vec();
    if let Err(e) = serde_json::to_writer(&mut b, value) {
        // Only maps with non-string keys fail, and no chunk has one.
        tracing::error!(error = %e, "cannot serialize a stream chunk");
        b.extend_from_slice(b"{}");
    }
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

/// The end of every successful stream.
const SSE_DONE: &[u8] = b"data: [DONE]\n\n";
/// The SSE comment sent while the container is silent (clients ignore it; proxies and load
/// balancers see traffic).
pub const SSE_HEARTBEAT: &[u8] = b": keep-alive\n\n";

/// A container's stream turned into the SSE frames of an OpenAI streamed chat answer.
///
/// Format `openai` chunks are forwarded as the container wrote them (only their usage is
/// read); `tgi` and `lmi` text becomes chunks of our own, then a finish chunk, the usage chunk
/// when the client asked for it (`stream_options.include_usage`), and `[DONE]`.
#[derive(Debug)]
pub struct ChatChunks {
    decoder: StreamDecoder,
    events: Vec<StreamEvent>,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    role_sent: bool,
    finished: bool,
    usage: Option<Usage>,
    first_token_seen: bool,
    /// Events that carried generated text: the completion-token estimate when the container
    /// counts none (streaming containers send about one token per event).
    content_events: u64,
    /// One per choice: where the answer's `<think>` section ends.
    think: Vec<ThinkSplitter>,
    /// How many choices the client asked for (`n`).
    choices: usize,
    /// The prompt's tokens as the gateway estimates them ([`ChatChunks::with_prompt_estimate`]).
    prompt_estimate: u64,
}

impl ChatChunks {
    /// The chunks of one answer of `model` (the name the client asked for).
    pub fn new(decoder: StreamDecoder, model: &str, include_usage: bool) -> Self {
        Self {
            decoder,
            events: Vec::new(),
            id: response_id("chatcmpl"),
            created: now_secs(),
            model: model.to_owned(),
            include_usage,
            role_sent: false,
            finished: false,
            usage: None,
            first_token_seen: false,
            content_events: 0,
            think: Vec::new(),
            choices: 1,
            prompt_estimate: 0,
        }
    }

    /// The gateway's estimate of the prompt's tokens, for a container that counts only the
    /// generated ones ([`Usage::or_prompt_estimate`]).
    pub fn with_prompt_estimate(mut self, estimate: u64) -> Self {
        self.prompt_estimate = estimate;
        self
    }

    /// The number of choices the client asked for (`n`, default 1): until each has shown
    /// whether it opens with `<think>`, the container's chunks are read.
    pub fn with_choices(mut self, n: usize) -> Self {
        self.choices = n.clamp(1, MAX_CHOICES);
        self
    }

    fn splitter(&mut self, index: usize) -> &mut ThinkSplitter {
        if self.think.len() <= index {
            self.think.resize_with(index + 1, ThinkSplitter::new);
        }
        &mut self.think[index]
    }

    /// Whether every choice is past any `<think>` section, so chunks pass untouched.
    fn think_settled(&self) -> bool {
        self.think.len() >= self.choices && self.think.iter().all(ThinkSplitter::settled)
    }

    /// A container's own chunk with its reasoning where OpenAI clients read it: a `<think>`
    /// section moved from `delta.content` to `delta.reasoning_content`, vLLM's newer
    /// `reasoning` copied there. Chunks that need nothing are returned as they are.
    fn surface_reasoning(&mut self, json: String) -> String {
        let needs = json.contains("\"reasoning\"")
            || (json.contains("\"content\"") && !self.think_settled());
        if !needs {
            return json;
        }
        let Ok(mut v) = serde_json::from_str::<Value>(&json) else {
            return json;
        };
        let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) else {
            return json;
        };
        let mut changed = false;
        for choice in choices {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            if index >= MAX_CHOICES {
                continue;
            }
            let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) else {
                continue;
            };
            if delta.get("reasoning_content").is_some_and(|r| !r.is_null()) {
                continue;
            }
            if let Some(r) = delta.get("reasoning").filter(|r| r.is_string()).cloned() {
                delta.insert("reasoning_content".into(), r);
                changed = true;
                continue;
            }
            let splitter = self.splitter(index);
            let original = match delta.get("content") {
                Some(Value::String(c)) => Some(c.clone()),
                _ => None,
            };
            let mut parts = match &original {
                Some(c) => splitter.push(c),
                None => Parts::default(),
            };
            if finished {
                let rest = splitter.finish();
                parts.reasoning.push_str(&rest.reasoning);
                parts.content.push_str(&rest.content);
            }
            if original.as_deref().unwrap_or_default() == parts.content
                && parts.reasoning.is_empty()
            {
                continue;
            }
            changed = true;
            if original.is_some() || !parts.content.is_empty() {
                delta.insert("content".into(), parts.content.into());
            }
            if !parts.reasoning.is_empty() {
                delta.insert("reasoning_content".into(), parts.reasoning.into());
            }
        }
        if !changed {
            return json;
        }
        serde_json::to_string(&v).unwrap_or(json)
    }

    /// A chunk of our own for text of choice `index`, split into reasoning and content.
    fn text_chunk(&mut self, index: u32, parts: &Parts, out: &mut VecDeque<Bytes>) {
        if parts.is_empty() {
            return;
        }
        self.first_token_seen = true;
        let role = (!self.role_sent).then_some("assistant");
        self.role_sent = true;
        let delta = Delta {
            role,
            content: (!parts.content.is_empty()).then_some(parts.content.as_str()),
            reasoning_content: (!parts.reasoning.is_empty()).then_some(parts.reasoning.as_str()),
        };
        out.push_back(self.chunk_at(index, delta, None));
    }

    /// Decodes one `PayloadPart` and appends the frames it completes to `out`. An error the
    /// container reported in its stream ends the answer: it is returned, and the frames before
    /// it are in `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        self.decoder.feed(bytes, &mut self.events);
        self.emit(out)
    }

    /// The container's stream ended: appends the last frames and `[DONE]`.
    pub fn finish(&mut self, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        self.decoder.finish(&mut self.events);
        self.emit(out)?;
        // Text still held (a stream that ended inside a possible tag) goes out before the end.
        for index in 0..self.think.len() {
            let parts = self.think[index].finish();
            self.text_chunk(index as u32, &parts, out);
        }
        if self.decoder.format() != Format::Openai {
            if !self.finished {
                out.push_back(self.chunk(Delta::default(), Some("stop")));
            }
            if self.include_usage {
                out.push_back(sse_json(&ChunkBody {
                    choices: &[],
                    usage: Some(self.usage.unwrap_or_default()),
                    ..self.body()
                }));
            }
        }
        out.push_back(Bytes::from_static(SSE_DONE));
        Ok(())
    }

    /// The token counts, once the container reported them.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether any generated text has been sent.
    pub fn first_token_seen(&self) -> bool {
        self.first_token_seen
    }

    /// How many events carried generated text (an estimate of the completion tokens).
    pub fn content_events(&self) -> u64 {
        self.content_events
    }

    fn emit(&mut self, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        let mut events = std::mem::take(&mut self.events);
        let result = events.drain(..).try_for_each(|ev| self.event(ev, out));
        self.events = events;
        result
    }

    fn body(&self) -> ChunkBody<'_> {
        ChunkBody {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: &[],
            usage: None,
        }
    }

    fn chunk(&self, delta: Delta<'_>, finish_reason: Option<&str>) -> Bytes {
        self.chunk_at(0, delta, finish_reason)
    }

    fn chunk_at(&self, index: u32, delta: Delta<'_>, finish_reason: Option<&str>) -> Bytes {
        sse_json(&ChunkBody {
            choices: &[ChunkChoice {
                index,
                delta,
                logprobs: None,
                finish_reason,
            }],
            ..self.body()
        })
    }

    fn event(&mut self, ev: StreamEvent, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        match ev {
            StreamEvent::Chunk(json) => {
                if json.contains("\"content\"") {
                    self.first_token_seen = true;
                    self.content_events += 1;
                }
                if json.contains("\"usage\"") {
                    if let Some(u) = serde_json::from_str::<Value>(&json)
                        .ok()
                        .as_ref()
                        .and_then(Usage::from_openai)
                    {
                        self.usage = Some(u);
                    }
                }
                let json = self.surface_reasoning(json);
                out.push_back(sse_data(&json));
            }
            StreamEvent::Text(text) => {
                self.content_events += 1;
                let parts = self.splitter(0).push(&text);
                self.text_chunk(0, &parts, out);
            }
            StreamEvent::Finish { reason, usage } => {
                if !self.finished {
                    let parts = self.splitter(0).finish();
                    self.text_chunk(0, &parts, out);
                    self.finished = true;
                    self.usage = usage
                        .map(|u| u.or_prompt_estimate(|| self.prompt_estimate))
                        .or(self.usage);
                    out.push_back(self.chunk(Delta::default(), Some(reason.as_str())));
                }
            }
            StreamEvent::Error(message) => {
                return Err(GatewayError::ModelError {
                    original_status: None,
                    message,
                })
            }
            // Our own `[DONE]` is sent when SageMaker's stream ends.
            StreamEvent::Done => {}
            StreamEvent::LineTooLong { limit } => {
                return Err(GatewayError::Upstream {
                    message: format!(
                        "the model container sent more than {limit} bytes without a line end \
                         (server.maxStreamLineBytes); the stream was stopped"
                    ),
                    code: "stream_line_too_long",
                })
            }
        }
        Ok(())
    }
}

/// One streamed chat answer in flight: SageMaker's events in, [`ChatChunks`] out, metrics
/// kept. When the client goes away, axum drops the body and with it this stream and the
/// upstream connection.
struct ChatStream {
    gw: Arc<Gateway>,
    model: ChatModel,
    events: Events,
    chunks: ChatChunks,
    out: VecDeque<Bytes>,
    started: Instant,
    /// The end of server.maxStreamSeconds.
    deadline: tokio::time::Instant,
    /// When the last upstream event came (for the per-event timeout).
    last_event: tokio::time::Instant,
    /// When the client was last sent anything (for the heartbeat).
    last_sent: tokio::time::Instant,
    first_token_observed: bool,
    done: bool,
    /// This stream's place in the concurrency limits, held to its end.
    _permit: Option<Permit>,
    /// The request's usage, counted when the stream ends (dropped with it).
    ticket: Option<UsageTicket>,
    prompt_estimate: u64,
}

/// How a streamed chat answer is served and counted.
pub(crate) struct StreamOptions {
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// `n`.
    pub choices: usize,
    pub started: Instant,
    pub permit: Option<Permit>,
    pub ticket: Option<UsageTicket>,
    /// The prompt's tokens by [`crate::adapter::embed::estimate_tokens`], for a container
    /// that counts none.
    pub prompt_estimate: u64,
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        if let Some(t) = &self.ticket {
            // The container's counts, else the estimates: also for a stream cut short.
            match self.chunks.usage() {
                Some(u) => t.add_tokens(u.prompt_tokens, u.completion_tokens),
                None => t.add_tokens(self.prompt_estimate, self.chunks.content_events()),
            }
        }
        self.gw.model_metrics(&self.model).stream_closed();
        if !self.done {
            tracing::debug!(model = %self.model.name, "client went away; upstream stream dropped");
        }
    }
}

/// The SSE body of a streamed chat answer from `events`.
pub(crate) fn chat_stream(
    gw: Arc<Gateway>,
    model: ChatModel,
    events: Events,
    options: StreamOptions,
) -> Body {
    let StreamOptions {
        include_usage,
        choices,
        started,
        permit,
        ticket,
        prompt_estimate,
    } = options;
    gw.model_metrics(&model).stream_opened();
    let decoder = model
        .adapter()
        .stream_decoder()
        .with_max_line(gw.limits.max_stream_line_bytes);
    let chunks = ChatChunks::new(decoder, &model.name, include_usage)
        .with_choices(choices)
        .with_prompt_estimate(prompt_estimate);
    let now = tokio::time::Instant::now();
    let deadline = tokio::time::Instant::from_std(started) + gw.limits.max_stream;
    let state = ChatStream {
        gw,
        model,
        events,
        chunks,
        out: VecDeque::new(),
        started,
        deadline,
        last_event: now,
        last_sent: now,
        first_token_observed: false,
        done: false,
        _permit: permit,
        ticket,
        prompt_estimate,
    };
    Body::from_stream(futures::stream::unfold(state, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), s))
    }))
}

impl ChatStream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let chunk = self.next_frame().await;
        if chunk.is_some() {
            self.last_sent = tokio::time::Instant::now();
        }
        chunk
    }

    /// The next frame for the client: a chunk, an SSE comment while the container is silent
    /// (every server.heartbeatSeconds), or the error that ends the stream.
    async fn next_frame(&mut self) -> Option<Bytes> {
        // Bounded: every turn either yields, ends, or consumes one upstream event, and each
        // upstream wait is bounded by the timeout, the heartbeat and the stream's deadline.
        loop {
            if let Some(b) = self.out.pop_front() {
                return Some(b);
            }
            if self.done {
                return None;
            }
            let timeout = self.gw.invoker.timeout();
            let heartbeat = self.gw.limits.heartbeat;
            let silent_until = self.last_event + timeout;
            let wake = self
                .deadline
                .min(silent_until)
                .min(self.last_sent + heartbeat);
            match tokio::time::timeout_at(wake, self.events.recv()).await {
                Err(_) => {
                    let now = tokio::time::Instant::now();
                    if now >= self.deadline {
                        self.fail(GatewayError::StreamTooLong {
                            seconds: self.gw.limits.max_stream.as_secs_f64(),
                        });
                    } else if now >= silent_until {
                        self.fail(GatewayError::Timeout {
                            seconds: timeout.as_secs(),
                        });
                    } else {
                        return Some(Bytes::from_static(SSE_HEARTBEAT));
                    }
                }
                Ok(Ok(Some(ResponseStream::PayloadPart(part)))) => {
                    self.last_event = tokio::time::Instant::now();
                    if let Some(bytes) = part.bytes() {
                        let fed = self.chunks.feed(bytes.as_ref(), &mut self.out);
                        self.observe_first_token();
                        if let Err(e) = fed {
                            self.fail(e);
                        }
                    }
                }
                Ok(Ok(Some(_))) => self.last_event = tokio::time::Instant::now(),
                Ok(Ok(None)) => match self.chunks.finish(&mut self.out) {
                    Ok(()) => {
                        if let Some(u) = self.chunks.usage() {
                            self.gw
                                .model_metrics(&self.model)
                                .tokens(u.prompt_tokens, u.completion_tokens);
                        }
                        self.done = true;
                    }
                    Err(e) => self.fail(e),
                },
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

    fn observe_first_token(&mut self) {
        if !self.first_token_observed && self.chunks.first_token_seen() {
            self.first_token_observed = true;
            self.gw
                .model_metrics(&self.model)
                .time_to_first_token
                .observe(self.started.elapsed());
        }
    }

    /// Ends the stream with an OpenAI error object, so clients see the failure rather than a
    /// silently shortened answer.
    fn fail(&mut self, e: GatewayError) {
        tracing::warn!(model = %self.model.name, code = e.code(), error = %e, "stream failed");
        self.gw.metrics.error(Some(&self.model.name), e.code());
        if let Some(t) = &self.ticket {
            t.set_error(e.code());
        }
        self.out.push_back(sse_json(&e.body()));
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(format: Format, parts: &[&[u8]]) -> Vec<StreamEvent> {
        let mut d = StreamDecoder::new(format);
        let mut out = Vec::new();
        for p in parts {
            d.feed(p, &mut out);
        }
        d.finish(&mut out);
        out
    }

    fn texts(events: &[StreamEvent]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn tgi_events_split_and_joined() {
        let stream = b"data:{\"token\":{\"id\":1,\"text\":\"Hel\",\"special\":false},\"generated_text\":null,\"details\":null}\n\ndata: {\"token\":{\"id\":2,\"text\":\"lo\",\"special\":false},\"generated_text\":null,\"details\":null}\n\ndata:{\"token\":{\"id\":3,\"text\":\"</s>\",\"special\":true},\"generated_text\":\"Hello\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":3}}\n\n";
        let whole = decode(Format::Tgi, &[stream]);
        assert_eq!(
            whole,
            vec![
                StreamEvent::Text("Hel".into()),
                StreamEvent::Text("lo".into()),
                StreamEvent::Finish {
                    reason: "stop".into(),
                    usage: Some(Usage {
                        prompt_tokens: 0,
                        completion_tokens: 3
                    })
                },
            ]
        );
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode(Format::Tgi, &bytes), whole);
    }

    #[test]
    fn openai_chunks_done_and_errors() {
        let s = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n: keep-alive\n\nevent: x\ndata:{\"choices\":[]}\n\ndata: {\"error\":{\"message\":\"CUDA out of memory\"}}\n\ndata: [DONE]";
        assert_eq!(
            decode(Format::Openai, &[s]),
            vec![
                StreamEvent::Chunk("{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}".into()),
                StreamEvent::Chunk("{\"choices\":[]}".into()),
                StreamEvent::Error("CUDA out of memory".into()),
                StreamEvent::Done,
            ]
        );
    }

    #[test]
    fn lmi_json_lines_and_utf8_split() {
        let s = "{\"token\":{\"id\":[5],\"text\":\"Grüß\",\"log_prob\":-0.1}}\n{\"token\":{\"text\":\" 🌍\"},\"generated_text\":\"Grüß 🌍\",\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":2}}\n".as_bytes();
        let cut = s.iter().position(|&b| b == 0xc3).unwrap() + 1;
        let events = decode(Format::Lmi, &[&s[..cut], &s[cut..]]);
        assert_eq!(texts(&events), "Grüß 🌍");
        assert!(
            matches!(events.last(), Some(StreamEvent::Finish { reason, .. }) if reason == "length")
        );
        assert_eq!(
            decode(Format::Lmi, &[b"{\"outputs\":[\"abc\"]}"]),
            vec![StreamEvent::Text("abc".into())]
        );
        assert!(
            matches!(&decode(Format::Tgi, &[b"data:{\"error\":\"Request failed during generation\",\"error_type\":\"generation\"}\n"])[0], StreamEvent::Error(m) if m.contains("during generation"))
        );
    }

    /// A valid stream of `format` for `tokens`, with the variations containers produce.
    fn encode(format: Format, tokens: &[String], space: bool, crlf: bool) -> Vec<u8> {
        let nl = if crlf { "\r\n" } else { "\n" };
        let prefix = if space { "data: " } else { "data:" };
        let mut out = String::new();
        for (i, t) in tokens.iter().enumerate() {
            let last = i + 1 == tokens.len();
            match format {
                Format::Openai => {
                    let chunk = serde_json::json!({"choices":[{"index":0,"delta":{"content":t}}]});
                    out.push_str(&format!("{prefix}{chunk}{nl}{nl}"));
                    if last {
                        out.push_str(&format!("{prefix}[DONE]{nl}{nl}"));
                    }
                }
                Format::Tgi => {
                    let details = if last {
                        serde_json::json!({"finish_reason":"length","generated_tokens":tokens.len()})
                    } else {
                        Value::Null
                    };
                    let ev = serde_json::json!({"token":{"id":i,"text":t,"special":false},"generated_text":null,"details":details});
                    out.push_str(&format!("{prefix}{ev}{nl}{nl}"));
                }
                _ => {
                    let ev = serde_json::json!({"token":{"id":[i],"text":t}});
                    out.push_str(&format!("{ev}{nl}"));
                }
            }
        }
        out.into_bytes()
    }

    fn prompt_chat(format: Format) -> crate::adapter::chat::PromptChat {
        crate::adapter::chat::PromptChat {
            format,
            template: crate::adapter::template::ChatTemplate::new("chatml").unwrap(),
        }
    }

    /// The JSON of each SSE frame, and whether the last frame was `[DONE]`.
    fn frames(out: &VecDeque<Bytes>) -> (Vec<Value>, bool) {
        let mut done = false;
        let mut values = Vec::new();
        for b in out {
            let text = std::str::from_utf8(b).unwrap();
            let data = text
                .strip_prefix("data: ")
                .and_then(|t| t.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("not one SSE data frame: {text:?}"));
            assert!(!done, "a frame after [DONE]: {text:?}");
            if data == "[DONE]" {
                done = true;
            } else {
                values.push(serde_json::from_str(data).unwrap());
            }
        }
        (values, done)
    }

    fn stream_chunks(
        adapter: &dyn ChatAdapter,
        include_usage: bool,
        parts: &[&[u8]],
    ) -> (ChatChunks, Result<(), GatewayError>, VecDeque<Bytes>) {
        stream_chunks_estimating(adapter, include_usage, parts, 0)
    }

    /// [`stream_chunks`] for a request whose prompt the gateway estimates at `estimate` tokens.
    fn stream_chunks_estimating(
        adapter: &dyn ChatAdapter,
        include_usage: bool,
        parts: &[&[u8]],
        estimate: u64,
    ) -> (ChatChunks, Result<(), GatewayError>, VecDeque<Bytes>) {
        let mut chunks = ChatChunks::new(adapter.stream_decoder(), "m", include_usage)
            .with_prompt_estimate(estimate);
        let mut out = VecDeque::new();
        for p in parts {
            let result = chunks.feed(p, &mut out);
            if result.is_err() {
                return (chunks, result, out);
            }
        }
        let result = chunks.finish(&mut out);
        (chunks, result, out)
    }

    use crate::adapter::{ChatAdapter, ResponseCtx};
    use serde_json::json;

    #[test]
    fn streamed_and_buffered_tgi_answers_report_the_same_usage() {
        let tgi = prompt_chat(Format::Tgi);
        // 34 ASCII characters: the gateway estimates 9 tokens, which stand in only for a
        // prompt the container did not count.
        let request = crate::api::ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"user","content":"Say hello to the gateway, please!!"}]}"#,
        )
        .unwrap();
        assert_eq!(request.prompt_estimate(), 9);
        let ctx = ResponseCtx {
            model: "m",
            id: "chatcmpl-1",
            created: 7,
            request: Some(&request),
        };
        let prefill =
            json!([{"id": 1, "text": "<s>"}, {"id": 2, "text": "Hi"}, {"id": 3, "text": "!"}]);
        let cases = [
            (
                json!({"finish_reason": "length", "generated_tokens": 2, "seed": null}),
                9,
                "length",
            ),
            (
                json!({"finish_reason": "eos_token", "generated_tokens": 2, "prefill": prefill}),
                3,
                "stop",
            ),
            (
                json!({"finish_reason": "length", "generated_tokens": 2, "input_length": 5}),
                5,
                "length",
            ),
            (
                json!({"finish_reason": "stop_sequence", "generated_tokens": 2, "prompt_tokens": 4}),
                4,
                "stop",
            ),
        ];
        for (details, prompt_tokens, reason) in cases {
            let buffered = tgi
                .decode(
                    json!([{"generated_text": "Hello", "details": details}])
                        .to_string()
                        .as_bytes(),
                    &ctx,
                )
                .unwrap();
            let stream = format!(
                "data:{}\n\ndata:{}\n\n",
                json!({"token": {"id": 1, "text": "Hel", "special": false}, "generated_text": null, "details": null}),
                json!({"token": {"id": 2, "text": "lo", "special": false}, "generated_text": "Hello", "details": details}),
            );
            let (chunks, result, out) =
                stream_chunks_estimating(&tgi, true, &[stream.as_bytes()], 9);
            result.unwrap();
            let (values, done) = frames(&out);
            assert!(done, "{details}");
            let text: String = values
                .iter()
                .filter_map(|v| v["choices"][0]["delta"]["content"].as_str())
                .collect();
            assert_eq!(
                text,
                buffered.body.to_value()["choices"][0]["message"]["content"]
            );
            let want = Usage {
                prompt_tokens,
                completion_tokens: 2,
            };
            assert_eq!(buffered.usage, Some(want), "{details}");
            assert_eq!(chunks.usage(), Some(want), "{details}");
            let usage_frames: Vec<&Value> =
                values.iter().filter(|v| v.get("usage").is_some()).collect();
            assert_eq!(usage_frames.len(), 1, "{values:?}");
            assert_eq!(
                usage_frames[0]["usage"],
                buffered.body.to_value()["usage"],
                "{details}"
            );
            assert_eq!(usage_frames[0]["usage"]["total_tokens"], prompt_tokens + 2);
            let finish: Vec<&Value> = values
                .iter()
                .map(|v| &v["choices"][0]["finish_reason"])
                .filter(|f| !f.is_null())
                .collect();
            assert_eq!(finish, vec![&json!(reason)], "{details}");
            assert_eq!(
                buffered.body.to_value()["choices"][0]["finish_reason"],
                reason
            );
        }
    }

    #[test]
    fn chunks_have_the_openai_shape() {
        let lmi = prompt_chat(Format::Lmi);
        let (chunks, result, out) = stream_chunks(
            &lmi,
            true,
            &[b"{\"token\":{\"text\":\"Hi\"}}\n{\"token\":{\"text\":\" you\"}}\n"],
        );
        result.unwrap();
        let (values, done) = frames(&out);
        assert!(done);
        let id = values[0]["id"].as_str().unwrap();
        assert!(id.starts_with("chatcmpl-"), "{id}");
        let created = values[0]["created"].as_u64().unwrap();
        let chunk = |choices: Value| json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": "m", "choices": choices});
        let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        let mut usage_chunk = chunk(json!([]));
        usage_chunk["usage"] =
            json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0});
        assert_eq!(
            values,
            vec![
                chunk(choice(
                    json!({"role": "assistant", "content": "Hi"}),
                    Value::Null
                )),
                chunk(choice(json!({"content": " you"}), Value::Null)),
                chunk(choice(json!({}), json!("stop"))),
                usage_chunk,
            ]
        );
        assert!(chunks.first_token_seen());
        assert_eq!(chunks.usage(), None);
    }

    #[test]
    fn openai_chunks_forwarded_and_errors_end_the_stream() {
        let openai = crate::adapter::chat::OpenAiChat;
        let first = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"a"}}]}"#;
        let usage = r#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
        let stream = format!("data: {first}\n\ndata: {usage}\n\ndata: [DONE]\n\n");
        let (chunks, result, out) = stream_chunks(&openai, false, &[stream.as_bytes()]);
        result.unwrap();
        let sent: Vec<&[u8]> = out.iter().map(|b| b.as_ref()).collect();
        let want = [
            format!("data: {first}\n\n"),
            format!("data: {usage}\n\n"),
            "data: [DONE]\n\n".to_owned(),
        ];
        assert_eq!(sent, want.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
        assert_eq!(
            chunks.usage(),
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 1
            })
        );

        let tgi = prompt_chat(Format::Tgi);
        let (_, result, out) = stream_chunks(
            &tgi,
            true,
            &[b"data:{\"token\":{\"text\":\"x\",\"special\":false}}\n\ndata:{\"error\":\"out of memory\"}\n\ndata:{\"token\":{\"text\":\"y\"}}\n\n"],
        );
        assert_eq!(
            result.unwrap_err(),
            GatewayError::ModelError {
                original_status: None,
                message: "out of memory".into()
            }
        );
        let (values, done) = frames(&out);
        assert!(!done);
        assert_eq!(values.len(), 1, "{values:?}");
        assert_eq!(values[0]["choices"][0]["delta"]["content"], "x");
    }

    /// The reasoning and content of a streamed answer's frames.
    fn streamed_reasoning(values: &[Value]) -> (String, String) {
        let field = |name: &str| -> String {
            values
                .iter()
                .filter_map(|v| v["choices"][0]["delta"][name].as_str())
                .collect()
        };
        (field("reasoning_content"), field("content"))
    }

    #[test]
    fn think_sections_become_reasoning_content_streamed_as_buffered() {
        let tgi = prompt_chat(Format::Tgi);
        let tokens = ["<th", "ink>", "2+2", " is", " 4</thi", "nk>", "Four", "."];
        let events: String = tokens
            .iter()
            .map(|t| {
                format!(
                    "data:{}\n\n",
                    json!({"token": {"text": t, "special": false}})
                )
            })
            .collect();
        let (_, result, out) = stream_chunks(&tgi, false, &[events.as_bytes()]);
        result.unwrap();
        let (values, done) = frames(&out);
        assert!(done);
        assert_eq!(
            streamed_reasoning(&values),
            ("2+2 is 4".to_owned(), "Four.".to_owned())
        );
        assert_eq!(values[0]["choices"][0]["delta"]["role"], "assistant");
        let ctx = ResponseCtx {
            model: "m",
            id: "chatcmpl-1",
            created: 7,
            request: None,
        };
        let buffered = tgi
            .decode(
                json!([{"generated_text": tokens.concat()}])
                    .to_string()
                    .as_bytes(),
                &ctx,
            )
            .unwrap();
        assert_eq!(
            buffered.body.to_value()["choices"][0]["message"]["reasoning_content"],
            "2+2 is 4"
        );
        assert_eq!(
            buffered.body.to_value()["choices"][0]["message"]["content"],
            "Four."
        );

        // Format openai: the container's chunks are rewritten only while a tag may come.
        let openai = crate::adapter::chat::OpenAiChat;
        let chunk = |content: &str, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": "c", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
            )
        };
        let stream: String = ["<think>hm", "m</th", "ink>Yes", " indeed"]
            .iter()
            .map(|t| chunk(t, Value::Null))
            .chain([chunk("", json!("stop")), "data: [DONE]\n\n".to_owned()])
            .collect();
        let (_, result, out) = stream_chunks(&openai, false, &[stream.as_bytes()]);
        result.unwrap();
        let (values, _) = frames(&out);
        assert_eq!(
            streamed_reasoning(&values),
            ("hmm".to_owned(), "Yes indeed".to_owned())
        );
        let last_text = std::str::from_utf8(&out[3]).unwrap();
        assert_eq!(
            last_text,
            chunk(" indeed", Value::Null),
            "settled chunks pass as sent"
        );
        let buffered = openai
            .decode(
                json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "<think>hmm</think>Yes indeed"}}]}).to_string().as_bytes(),
                &ctx,
            )
            .unwrap();
        assert_eq!(
            buffered.body.to_value()["choices"][0]["message"]["reasoning_content"],
            "hmm"
        );
        assert_eq!(
            buffered.body.to_value()["choices"][0]["message"]["content"],
            "Yes indeed"
        );

        // vLLM's newer `reasoning` field is copied to `reasoning_content`.
        let stream = format!(
            "data: {}\n\ndata: [DONE]\n\n",
            json!({"choices": [{"index": 0, "delta": {"reasoning": "thinking"}}]})
        );
        let (_, result, out) = stream_chunks(&openai, false, &[stream.as_bytes()]);
        result.unwrap();
        let (values, _) = frames(&out);
        assert_eq!(
            values[0]["choices"][0]["delta"]["reasoning_content"],
            "thinking"
        );
    }

    fn format_strategy() -> impl Strategy<Value = Format> {
        prop_oneof![Just(Format::Openai), Just(Format::Tgi), Just(Format::Lmi)]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// Any split of a valid byte stream yields the same events, and the tokens that went in.
        #[test]
        fn any_split_yields_the_same_tokens(
            format in format_strategy(),
            tokens in proptest::collection::vec("[a-zA-Z0-9 ,.!?\"\\\\\\n{}:é日本🌍]{1,8}", 1..12),
            space in any::<bool>(),
            crlf in any::<bool>(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let bytes = encode(format, &tokens, space, crlf);
            let whole = decode(format, &[&bytes]);
            let mut positions: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            positions.sort_unstable();
            let mut parts: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            for p in positions {
                parts.push(&bytes[start..p]);
                start = p;
            }
            parts.push(&bytes[start..]);
            prop_assert_eq!(&decode(format, &parts), &whole);

            let got: Vec<String> = whole.iter().filter_map(|e| match e {
                StreamEvent::Text(t) => Some(t.clone()),
                StreamEvent::Chunk(c) => serde_json::from_str::<Value>(c).ok()
                    .and_then(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned)),
                _ => None,
            }).collect();
            prop_assert_eq!(got, tokens);
        }
    }
}
