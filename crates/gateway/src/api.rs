//! The OpenAI (and Cohere/Jina rerank) request shapes, parsed with errors that name the field.
//!
//! Requests are first parsed as JSON values and checked field by field, so that a client sees
//! `messages[2].role: expected a string` rather than serde's `invalid type at line 1 column 93`.
//! The raw value is kept: the `openai` format forwards it (tools, tool_choice, response_format
//! and whatever else the container understands) unchanged apart from the model defaults.

use crate::adapter::embed::estimate_tokens;
use serde_json::{Map, Value};

use crate::error::GatewayError;

/// One chat message, reduced to what prompt-only containers need.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub role: String,
    /// The text of `content`: a string, or the `text` parts of a list joined together.
    pub content: String,
    /// The `data:` URLs of the message's `image_url` parts, in order.
    pub images: Vec<String>,
    /// When the message has images: its parts in order with each image written as TGI's
    /// multimodal containers read it, the Markdown image `![](data:...)`.
    pub content_with_images: Option<String>,
}

/// What [`content_text`] read from one message's `content`.
#[derive(Debug, Default)]
struct Content {
    text: String,
    images: Vec<String>,
    with_images: String,
}

/// A parsed `POST /v1/chat/completions` body.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub n: Option<u32>,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    /// The whole body as sent, for formats that take the OpenAI request itself.
    pub raw: Map<String, Value>,
}

/// A parsed `POST /v1/embeddings` body.
#[derive(Debug, Clone)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub input: Vec<String>,
    pub base64: bool,
    pub dimensions: Option<u32>,
}

/// A parsed `POST /v1/rerank` body (Cohere and Jina shape).
#[derive(Debug, Clone)]
pub struct RerankRequest {
    pub model: String,
    pub query: String,
    pub documents: Vec<String>,
    pub top_n: Option<usize>,
    pub return_documents: bool,
}

/// The answer to token-array embedding inputs. The gateway cannot turn token ids back into
/// text (the tokenizer is the client's guess, tiktoken's, not the model's), and LangChain sends
/// them by default, so the message says how to make it send text.
pub const TOKEN_ARRAYS: &str = "token arrays are not supported: send `input` as text (a string \
    or a list of strings). LangChain's OpenAIEmbeddings sends token arrays by default: create \
    it with `check_embedding_ctx_length=False`";

/// Parses a request body into a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(GatewayError::BadRequest {
            message: "the request body must be a JSON object".into(),
            param: None,
        }),
        Err(e) => Err(GatewayError::BadRequest {
            message: format!("the request body is not valid JSON: {e}"),
            param: None,
        }),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn wrong(field: &str, expected: &str, got: &Value) -> GatewayError {
    GatewayError::bad_request(
        field,
        format!("`{field}` must be {expected}, not {}", type_name(got)),
    )
}

/// The value of `field` unless it is absent or null.
fn opt<'a>(m: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    m.get(field).filter(|v| !v.is_null())
}

pub fn required_str(m: &Map<String, Value>, field: &str) -> Result<String, GatewayError> {
    match opt(m, field) {
        None => Err(GatewayError::bad_request(
            field,
            format!("`{field}` is required"),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(wrong(field, "a string", v)),
    }
}

fn opt_bool(m: &Map<String, Value>, field: &str) -> Result<Option<bool>, GatewayError> {
    match opt(m, field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(wrong(field, "true or false", v)),
    }
}

fn opt_f64(
    m: &Map<String, Value>,
    field: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, GatewayError> {
    match opt(m, field) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if !(min..=max).contains(&x) {
                return Err(GatewayError::bad_request(
                    field,
                    format!("`{field}` must be between {min} and {max}"),
                ));
            }
            Ok(Some(x))
        }
        Some(v) => Err(wrong(field, "a number", v)),
    }
}

fn opt_uint(m: &Map<String, Value>, field: &str, min: u64) -> Result<Option<u64>, GatewayError> {
    match opt(m, field) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(x) if x >= min => Ok(Some(x)),
            _ => Err(GatewayError::bad_request(
                field,
                format!("`{field}` must be an integer of at least {min}"),
            )),
        },
        Some(v) => Err(wrong(field, "an integer", v)),
    }
}

/// Checks an `image_url` part's URL: only inline `data:image/...;base64,` URLs are taken, so the
/// gateway never fetches anything on a client's behalf (no server-side request forgery, no
/// waiting on third-party hosts).
fn check_image_url(url: &str, field: &str) -> Result<(), GatewayError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(GatewayError::bad_request(
            field,
            format!(
                "`{field}` must be a `data:` URL (data:image/png;base64,...): the gateway does not \
                 fetch remote images; download the image and send it inline"
            ),
        ));
    };
    let bad = || {
        GatewayError::bad_request(
            field,
            format!("`{field}` is not a base64 image data URL (data:image/<type>;base64,<data>)"),
        )
    };
    let (meta, data) = rest.split_once(',').ok_or_else(bad)?;
    let media_type = meta.strip_suffix(";base64").ok_or_else(bad)?;
    if !media_type.starts_with("image/") || media_type.len() <= "image/".len() {
        return Err(bad());
    }
    if !is_base64(data) {
        return Err(bad());
    }
    Ok(())
}

/// Whether `s` is non-empty standard base64 with padding.
fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let body = s.trim_end_matches('=');
    b.len() - body.len() <= 2
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// The `content` of message `message` (its index, named in errors). Field names are only
/// formatted on the way to an error: this runs for every message of every chat request.
fn content_text(v: &Value, message: usize) -> Result<Content, GatewayError> {
    let field = || format!("messages[{message}].content");
    match v {
        Value::Null => Ok(Content::default()),
        // No images: `with_images` is never read (see `Message::content_with_images`).
        Value::String(s) => Ok(Content {
            text: s.clone(),
            images: Vec::new(),
            with_images: String::new(),
        }),
        Value::Array(parts) => {
            let mut out = Content::default();
            for (i, part) in parts.iter().enumerate() {
                let f = || format!("{}[{i}]", field());
                match part {
                    Value::String(s) => {
                        out.text.push_str(s);
                        out.with_images.push_str(s);
                    }
                    Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                        Some("text") | None => match o.get("text") {
                            Some(Value::String(s)) => {
                                out.text.push_str(s);
                                out.with_images.push_str(s);
                            }
                            Some(v) => return Err(wrong(&format!("{}.text", f()), "a string", v)),
                            None => return Err(GatewayError::bad_request(&format!("{}.text", f()), format!("`{}.text` is required", f()))),
                        },
                        Some("image_url") => {
                            // OpenAI's shape is `{"url", "detail"}`; a bare string is also seen.
                            let (url, uf) = match o.get("image_url") {
                                Some(Value::String(u)) => (u, format!("{}.image_url", f())),
                                Some(Value::Object(io)) => match io.get("url") {
                                    Some(Value::String(u)) => (u, format!("{}.image_url.url", f())),
                                    Some(v) => return Err(wrong(&format!("{}.image_url.url", f()), "a string", v)),
                                    None => return Err(GatewayError::bad_request(&format!("{}.image_url.url", f()), format!("`{}.image_url.url` is required", f()))),
                                },
                                Some(v) => return Err(wrong(&format!("{}.image_url", f()), "an object with a `url`", v)),
                                None => return Err(GatewayError::bad_request(&format!("{}.image_url", f()), format!("`{}.image_url` is required", f()))),
                            };
                            check_image_url(url, &uf)?;
                            out.with_images.push_str(&format!("![]({url})"));
                            out.images.push(url.clone());
                        }
                        Some(other) => {
                            return Err(GatewayError::bad_request(
                                &format!("{}.type", f()),
                                format!("content parts of type `{other}` are not supported by this model; send text (or `image_url` to a vision model)"),
                            ))
                        }
                    },
                    v => return Err(wrong(&f(), "a string or a content part object", v)),
                }
            }
            Ok(out)
        }
        v => Err(wrong(&field(), "a string or a list of content parts", v)),
    }
}

impl ChatRequest {
    /// An estimate of the tokens of the messages ([`estimate_tokens`]), for a container that
    /// gives no count.
    pub fn prompt_estimate(&self) -> u64 {
        self.messages
            .iter()
            .map(|m| estimate_tokens(&m.content))
            .sum()
    }

    /// Whether any message has an image; only models with `vision: true` take those.
    pub fn has_images(&self) -> bool {
        self.messages.iter().any(|m| !m.images.is_empty())
    }

    pub fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        let raw = parse_object(body)?;
        let model = required_str(&raw, "model")?;
        let messages = match opt(&raw, "messages") {
            None => {
                return Err(GatewayError::bad_request(
                    "messages",
                    "`messages` is required",
                ))
            }
            Some(Value::Array(a)) if a.is_empty() => {
                return Err(GatewayError::bad_request(
                    "messages",
                    "`messages` must not be empty",
                ))
            }
            Some(Value::Array(a)) => a,
            Some(v) => return Err(wrong("messages", "a list of messages", v)),
        };
        let mut parsed = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let f = || format!("messages[{i}]");
            let Value::Object(o) = m else {
                return Err(wrong(&f(), "an object", m));
            };
            let role = match o.get("role") {
                Some(Value::String(r)) => r.clone(),
                Some(v) => return Err(wrong(&format!("{}.role", f()), "a string", v)),
                None => {
                    return Err(GatewayError::bad_request(
                        &format!("{}.role", f()),
                        format!("`{}.role` is required", f()),
                    ))
                }
            };
            if !matches!(
                role.as_str(),
                "system" | "developer" | "user" | "assistant" | "tool" | "function"
            ) {
                return Err(GatewayError::bad_request(
                    &format!("{}.role", f()),
                    format!("`{}.role` must be one of system, developer, user, assistant, tool; got `{role}`", f()),
                ));
            }
            let content = content_text(o.get("content").unwrap_or(&Value::Null), i)?;
            parsed.push(Message {
                role,
                content: content.text,
                content_with_images: (!content.images.is_empty()).then_some(content.with_images),
                images: content.images,
            });
        }
        let stream = opt_bool(&raw, "stream")?.unwrap_or(false);
        let include_usage = match opt(&raw, "stream_options") {
            None => false,
            Some(Value::Object(o)) => match o.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(v) => return Err(wrong("stream_options.include_usage", "true or false", v)),
            },
            Some(v) => return Err(wrong("stream_options", "an object", v)),
        };
        let max_completion = opt_uint(&raw, "max_completion_tokens", 1)?;
        let max_tokens = opt_uint(&raw, "max_tokens", 1)?;
        let max_tokens = max_completion
            .or(max_tokens)
            .map(|x| x.min(u64::from(u32::MAX)) as u32);
        let stop = match opt(&raw, "stop") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, s) in a.iter().enumerate() {
                    match s {
                        Value::String(s) => out.push(s.clone()),
                        v => return Err(wrong(&format!("stop[{i}]"), "a string", v)),
                    }
                }
                out
            }
            Some(v) => return Err(wrong("stop", "a string or a list of strings", v)),
        };
        Ok(ChatRequest {
            model,
            messages: parsed,
            stream,
            include_usage,
            max_tokens,
            temperature: opt_f64(&raw, "temperature", 0.0, 2.0)?,
            top_p: opt_f64(&raw, "top_p", 0.0, 1.0)?,
            n: opt_uint(&raw, "n", 1)?.map(|n| n.min(128) as u32),
            stop,
            seed: opt_uint(&raw, "seed", 0)?,
            raw,
        })
    }
}

impl EmbeddingsRequest {
    pub fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        let raw = parse_object(body)?;
        let model = required_str(&raw, "model")?;
        let input = match opt(&raw, "input") {
            None => return Err(GatewayError::bad_request("input", "`input` is required")),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) if a.is_empty() => {
                return Err(GatewayError::bad_request(
                    "input",
                    "`input` must not be empty",
                ))
            }
            Some(Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, s) in a.iter().enumerate() {
                    match s {
                        Value::String(s) => out.push(s.clone()),
                        Value::Number(_) | Value::Array(_) => {
                            return Err(GatewayError::bad_request("input", TOKEN_ARRAYS))
                        }
                        v => return Err(wrong(&format!("input[{i}]"), "a string", v)),
                    }
                }
                out
            }
            Some(v) => return Err(wrong("input", "a string or a list of strings", v)),
        };
        let base64 = match opt(&raw, "encoding_format") {
            None => false,
            Some(Value::String(s)) if s == "float" => false,
            Some(Value::String(s)) if s == "base64" => true,
            Some(_) => {
                return Err(GatewayError::bad_request(
                    "encoding_format",
                    "`encoding_format` must be `float` or `base64`",
                ))
            }
        };
        let dimensions =
            opt_uint(&raw, "dimensions", 1)?.map(|d| d.min(u64::from(u32::MAX)) as u32);
        Ok(EmbeddingsRequest {
            model,
            input,
            base64,
            dimensions,
        })
    }
}

impl RerankRequest {
    pub fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        let raw = parse_object(body)?;
        let model = required_str(&raw, "model")?;
        let query = required_str(&raw, "query")?;
        let documents = match opt(&raw, "documents") {
            None => {
                return Err(GatewayError::bad_request(
                    "documents",
                    "`documents` is required",
                ))
            }
            Some(Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, d) in a.iter().enumerate() {
                    match d {
                        Value::String(s) => out.push(s.clone()),
                        Value::Object(o) => match o.get("text") {
                            Some(Value::String(s)) => out.push(s.clone()),
                            _ => {
                                return Err(GatewayError::bad_request(
                                    &format!("documents[{i}].text"),
                                    format!("`documents[{i}]` must be a string or an object with a `text` string"),
                                ))
                            }
                        },
                        v => return Err(wrong(&format!("documents[{i}]"), "a string", v)),
                    }
                }
                out
            }
            Some(v) => return Err(wrong("documents", "a list of strings", v)),
        };
        let top_n = opt_uint(&raw, "top_n", 1)?.map(|n| n as usize);
        let return_documents = opt_bool(&raw, "return_documents")?.unwrap_or(false);
        Ok(RerankRequest {
            model,
            query,
            documents,
            top_n,
            return_documents,
        })
    }
}

/// Token counts when the container reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    /// The `usage` of an OpenAI answer or chunk (`v.usage`), if it has one. Missing counts are 0.
    pub fn from_openai(v: &Value) -> Option<Self> {
        Self::from_object(v.get("usage")?)
    }

    /// The counts of an OpenAI `usage` object; `None` for anything but an object.
    pub fn from_object(u: &Value) -> Option<Self> {
        let u = Some(u).filter(|u| u.is_object())?;
        let count = |field: &str| u.get(field).and_then(Value::as_u64).unwrap_or(0);
        Some(Usage {
            prompt_tokens: count("prompt_tokens"),
            completion_tokens: count("completion_tokens"),
        })
    }

    pub fn to_json(self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// These counts with `estimate` as the prompt's when the container counted none (a TGI
    /// answer without `decoder_input_details`): a chat prompt is never 0 tokens, and clients
    /// that show or bill `usage` are better served by the documented estimate than by 0.
    pub fn or_prompt_estimate(self, estimate: impl FnOnce() -> u64) -> Self {
        if self.prompt_tokens == 0 {
            Usage {
                prompt_tokens: estimate(),
                ..self
            }
        } else {
            self
        }
    }
}

/// OpenAI's `usage` object: the two counts and their sum.
impl serde::Serialize for Usage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut u = s.serialize_struct("Usage", 3)?;
        u.serialize_field("prompt_tokens", &self.prompt_tokens)?;
        u.serialize_field("completion_tokens", &self.completion_tokens)?;
        u.serialize_field(
            "total_tokens",
            &(self.prompt_tokens + self.completion_tokens),
        )?;
        u.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat_err(body: &str) -> (String, Option<String>) {
        match ChatRequest::parse(body.as_bytes()).unwrap_err() {
            GatewayError::BadRequest { message, param } => (message, param),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn chat_errors_name_the_field() {
        let check = |body: &str, param: &str, text: &str| {
            let (m, p) = chat_err(body);
            assert_eq!(p.as_deref(), Some(param), "{body}: {m}");
            assert!(m.contains(text), "{body}: {m}");
        };
        check(r#"{"messages":[]}"#, "model", "`model` is required");
        check(r#"{"model":"m"}"#, "messages", "`messages` is required");
        check(
            r#"{"model":"m","messages":[]}"#,
            "messages",
            "must not be empty",
        );
        check(
            r#"{"model":"m","messages":[{"role":1}]}"#,
            "messages[0].role",
            "must be a string, not a number",
        );
        check(
            r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
            "messages[0].role",
            "got `robot`",
        );
        check(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
            "temperature",
            "must be a number",
        );
        check(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":5}"#,
            "temperature",
            "between 0 and 2",
        );
        check(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
            "max_tokens",
            "at least 1",
        );
        check(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":[1]}"#,
            "stop[0]",
            "must be a string",
        );
        assert!(chat_err("{nope").0.contains("not valid JSON"));
    }

    #[test]
    fn chat_parses() {
        let r = ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],
                "stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":9,"max_tokens":3,"stop":"END","tools":[]}"#,
        )
        .unwrap();
        assert_eq!(r.messages[1].content, "hi there");
        assert!(r.stream && r.include_usage);
        assert_eq!(r.max_tokens, Some(9));
        assert_eq!(r.stop, vec!["END"]);
        assert!(r.raw.contains_key("tools"));
    }

    #[test]
    fn images_are_data_urls_only() {
        let png = "data:image/png;base64,iVBORw0KGgo=";
        let body = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this? "},
            {"type": "image_url", "image_url": {"url": png, "detail": "low"}},
            {"type": "text", "text": " Be brief."}]}]});
        let r = ChatRequest::parse(body.to_string().as_bytes()).unwrap();
        assert!(r.has_images());
        assert_eq!(r.messages[0].images, vec![png]);
        assert_eq!(r.messages[0].content, "What is this?  Be brief.");
        assert_eq!(
            r.messages[0].content_with_images.as_deref(),
            Some(format!("What is this? ![]({png}) Be brief.").as_str())
        );
        let err = |url: &str| {
            let body = json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}}]}]});
            match ChatRequest::parse(body.to_string().as_bytes()).unwrap_err() {
                GatewayError::BadRequest { message, param } => (message, param.unwrap()),
                e => panic!("{e:?}"),
            }
        };
        let (m, p) = err("https://example.com/cat.png");
        assert_eq!(p, "messages[0].content[0].image_url.url");
        assert!(m.contains("does not fetch remote images"), "{m}");
        for bad in [
            "data:text/plain;base64,aGk=",
            "data:image/png,raw",
            "data:image/png;base64,not base64!",
            "data:image/png;base64,",
        ] {
            assert!(err(bad).0.contains("not a base64 image data URL"), "{bad}");
        }
        let r = ChatRequest::parse(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
            .unwrap();
        assert!(!r.has_images());
    }

    #[test]
    fn embeddings_and_rerank() {
        let r =
            EmbeddingsRequest::parse(br#"{"model":"e","input":"one","encoding_format":"base64"}"#)
                .unwrap();
        assert_eq!(r.input, vec!["one"]);
        assert!(r.base64);
        let e = EmbeddingsRequest::parse(br#"{"model":"e","input":[[1,2]]}"#).unwrap_err();
        assert!(e.to_string().contains("token arrays"));
        let e = EmbeddingsRequest::parse(br#"{"model":"e","input":"x","encoding_format":"int8"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("`encoding_format` must be"));
        let r = RerankRequest::parse(br#"{"model":"r","query":"q","documents":["a",{"text":"b"}],"top_n":1,"return_documents":true}"#).unwrap();
        assert_eq!(r.documents, vec!["a", "b"]);
        assert_eq!(r.top_n, Some(1));
        let e = RerankRequest::parse(br#"{"model":"r","query":"q","documents":[{"t":1}]}"#)
            .unwrap_err();
        assert!(
            matches!(e, GatewayError::BadRequest { param: Some(ref p), .. } if p == "documents[0].text")
        );
    }
}
