//! Chat adapters: `openai` (the request passed through) and the prompt-only families `tgi` and
//! `lmi` (messages rendered with a chat template, `{"inputs","parameters","stream"}`).

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::template::ChatTemplate;
use super::{bad_upstream, AnswerBody, ChatAdapter, Completion, Defaults, ResponseCtx};
use crate::api::{ChatRequest, Usage};
use crate::config::Format;
use crate::error::GatewayError;
use crate::reasoning::split_whole;
use crate::stream::GenerationEnd;

/// How many tokens prompt-only containers generate when neither the request nor the model
/// config says (TGI's own default is only 20).
pub const DEFAULT_MAX_NEW_TOKENS: u32 = 1024;

fn check_context(max_tokens: Option<u32>, defaults: &Defaults) -> Result<(), GatewayError> {
    if let (Some(m), Some(ctx)) = (max_tokens, defaults.context_length) {
        if m > ctx {
            return Err(GatewayError::bad_request(
                "max_tokens",
                format!("`max_tokens` ({m}) is larger than the model's context length ({ctx})"),
            ));
        }
    }
    Ok(())
}

/// vLLM, TGI's Messages API, LMI with messages, SGLang: the OpenAI request is the body.
#[derive(Debug)]
pub struct OpenAiChat;

impl ChatAdapter for OpenAiChat {
    fn format(&self) -> Format {
        Format::Openai
    }

    fn encode(
        &self,
        req: &ChatRequest,
        defaults: &Defaults,
        stream: bool,
    ) -> Result<Vec<u8>, GatewayError> {
        check_context(req.max_tokens, defaults)?;
        // The request as sent with a few keys set or removed, serialized from the parsed body
        // without copying it.
        let mut set: Vec<(&'static str, Value)> = Vec::with_capacity(3);
        if req.max_tokens.is_none() {
            if let Some(m) = defaults.max_tokens {
                set.push(("max_tokens", m.into()));
            }
        }
        if req.temperature.is_none() {
            if let Some(t) = defaults.temperature {
                set.push(("temperature", f64::from(t).into()));
            }
        }
        set.push(("stream", stream.into()));
        let remove: &[&str] = if stream { &[] } else { &["stream_options"] };
        serde_json::to_vec(&Overridden {
            raw: &req.raw,
            set: &set,
            remove,
        })
        .map_err(|e| GatewayError::Internal(e.to_string()))
    }

    fn decode(&self, body: &[u8], ctx: &ResponseCtx<'_>) -> Result<Completion, GatewayError> {
        match passthrough(body, ctx) {
            Some(fast) => Ok(fast),
            None => decode_tree(body, ctx),
        }
    }
}

/// An `openai` answer decoded as a JSON tree: what [`passthrough`] cannot take, and the wording
/// of every error.
fn decode_tree(body: &[u8], ctx: &ResponseCtx<'_>) -> Result<Completion, GatewayError> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|_| bad_upstream("an OpenAI chat completion", body))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(bad_upstream("an OpenAI chat completion", body));
    };
    if !obj.get("choices").is_some_and(Value::is_array) {
        return Err(bad_upstream("an OpenAI chat completion", body));
    }
    obj.insert("model".into(), ctx.model.into());
    if let Some(choices) = obj.get_mut("choices").and_then(Value::as_array_mut) {
        for choice in choices {
            if let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) {
                surface_reasoning(message);
            }
        }
    }
    obj.entry("object")
        .or_insert_with(|| "chat.completion".into());
    obj.entry("id").or_insert_with(|| ctx.id.into());
    obj.entry("created").or_insert_with(|| ctx.created.into());
    let usage = Usage::from_openai(&v);
    Ok(Completion {
        body: AnswerBody::Json(v),
        usage,
    })
}

/// A JSON object whose keys `set` replace (or add) and `remove` drop, serialized straight from
/// the parsed request.
struct Overridden<'a> {
    raw: &'a Map<String, Value>,
    set: &'a [(&'static str, Value)],
    remove: &'a [&'a str],
}

impl serde::Serialize for Overridden<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.raw {
            let k = k.as_str();
            if !self.remove.contains(&k) && !self.set.iter().any(|(s, _)| *s == k) {
                m.serialize_entry(k, v)?;
            }
        }
        for (k, v) in self.set {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The fast path of an `openai` answer: when nothing below the top level needs a change (no
/// reasoning to surface), the answer is checked and re-serialized with its `choices`, `usage`
/// and every other value copied as raw JSON, in the container's order, setting only `model`
/// (and `object`, `id`, `created` when the container leaves them out). `None` sends the answer
/// down the tree path, which also words the errors.
fn passthrough(body: &[u8], ctx: &ResponseCtx<'_>) -> Option<Completion> {
    // `reasoning` (vLLM's field, and `reasoning_content`) and `<think>` are what
    // `surface_reasoning` looks for; either one anywhere takes the tree path.
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // Built once: a finder's setup costs more than the search of a short answer.
    static REASONING: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"reasoning"));
    static THINK: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"think>"));
    if REASONING.find(body).is_some() || THINK.find(body).is_some() {
        return None;
    }
    let TopLevel(top) = serde_json::from_slice(body).ok()?;
    let get = |key: &str| top.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    if !get("choices")?.get().starts_with('[') {
        return None;
    }
    let usage = match get("usage") {
        None => None,
        Some(raw) if raw.get() == "null" => None,
        // Counts that are not whole numbers (or a `usage` that is not an object) take the tree
        // path, which reads them as 0 (or no usage).
        Some(raw) => {
            let c: UsageCounts = serde_json::from_str(raw.get()).ok()?;
            Some(Usage {
                prompt_tokens: c.prompt_tokens.unwrap_or(0),
                completion_tokens: c.completion_tokens.unwrap_or(0),
            })
        }
    };
    let mut out = Vec::with_capacity(body.len() + ctx.model.len() + 64);
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, key: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *out, key).expect("a string serializes");
        out.push(b':');
    };
    let mut has = [false; 4];
    for (k, v) in &top {
        key(&mut out, k);
        match &**k {
            "model" => {
                has[0] = true;
                serde_json::to_writer(&mut out, ctx.model).expect("a string serializes");
                continue;
            }
            "object" => has[1] = true,
            "id" => has[2] = true,
            "created" => has[3] = true,
            _ => {}
        }
        out.extend_from_slice(v.get().as_bytes());
    }
    if !has[0] {
        key(&mut out, "model");
        serde_json::to_writer(&mut out, ctx.model).expect("a string serializes");
    }
    if !has[1] {
        key(&mut out, "object");
        out.extend_from_slice(b"\"chat.completion\"");
    }
    if !has[2] {
        key(&mut out, "id");
        serde_json::to_writer(&mut out, ctx.id).expect("a string serializes");
    }
    if !has[3] {
        key(&mut out, "created");
        serde_json::to_writer(&mut out, &ctx.created).expect("a number serializes");
    }
    out.push(b'}');
    Some(Completion {
        body: AnswerBody::Serialized(out),
        usage,
    })
}

/// The counts of an OpenAI `usage` object, read without building a tree.
#[derive(serde::Deserialize)]
struct UsageCounts {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

/// A JSON object's members as raw JSON, in order; a repeated key keeps its last value (as
/// `serde_json::Value` does), at its first place. Keys are borrowed from the body unless they
/// hold escapes.
struct TopLevel<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut members: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(8);
                while let Some((Key(k), v)) = m.next_entry::<Key<'de>, &'de RawValue>()? {
                    match members.iter_mut().find(|(seen, _)| *seen == k) {
                        Some(slot) => slot.1 = v,
                        None => members.push((k, v)),
                    }
                }
                Ok(TopLevel(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// An object key, borrowed when it has no escapes (serde's own `Cow<str>` always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// Puts a message's (or a delta's) reasoning where OpenAI clients read it, `reasoning_content`:
/// a `<think>` section that opens `content` is moved there, and the `reasoning` field of newer
/// vLLM versions is copied there. A container that already sends `reasoning_content` is left
/// alone.
pub(crate) fn surface_reasoning(message: &mut Map<String, Value>) {
    if message
        .get("reasoning_content")
        .is_some_and(|r| !r.is_null())
    {
        return;
    }
    if let Some(r) = message.get("reasoning").filter(|r| r.is_string()).cloned() {
        message.insert("reasoning_content".into(), r);
        return;
    }
    if let Some(Value::String(content)) = message.get("content") {
        if let (Some(reasoning), rest) = split_whole(content) {
            message.insert("content".into(), rest.into());
            message.insert("reasoning_content".into(), reasoning.into());
        }
    }
}

/// TGI (`[{"generated_text"}]`, `data:{"token"}` SSE) and LMI (`{"generated_text"}`, JSON-lines
/// `{"token":{"text"}}`): containers that take a prompt.
#[derive(Debug)]
pub struct PromptChat {
    pub format: Format,
    pub template: ChatTemplate,
}

impl ChatAdapter for PromptChat {
    fn format(&self) -> Format {
        self.format
    }

    fn encode(
        &self,
        req: &ChatRequest,
        defaults: &Defaults,
        stream: bool,
    ) -> Result<Vec<u8>, GatewayError> {
        if req.n.is_some_and(|n| n > 1) {
            return Err(GatewayError::bad_request(
                "n",
                format!(
                    "`n` > 1 is not supported by `{}` containers; send several requests",
                    self.format.as_str()
                ),
            ));
        }
        for key in ["tools", "functions"] {
            if req
                .raw
                .get(key)
                .is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()))
            {
                return Err(GatewayError::bad_request(
                    key,
                    format!(
                        "`{key}` need a container with the OpenAI Messages API (format `openai`)"
                    ),
                ));
            }
        }
        check_context(req.max_tokens, defaults)?;
        // TGI's vision-language models read images as Markdown images in the prompt (its
        // "Vision Language Model Inference" guide: `![](data:image/png;base64,...)`); LMI's
        // `inputs` has no such convention, so images go to it only through format `openai`.
        if req.has_images() && self.format != Format::Tgi {
            return Err(GatewayError::bad_request(
                "messages",
                format!(
                    "images need format `openai` or `tgi`; `{}` containers take text only",
                    self.format.as_str()
                ),
            ));
        }
        let prompt = self
            .template
            .render_with(&req.messages, true)
            .map_err(|e| {
                GatewayError::bad_request(
                    "messages",
                    format!("the chat template cannot render these messages: {e}"),
                )
            })?;
        let mut p = Map::new();
        let max = req
            .max_tokens
            .or(defaults.max_tokens)
            .unwrap_or(DEFAULT_MAX_NEW_TOKENS);
        p.insert("max_new_tokens".into(), max.into());
        let temperature = req.temperature.or(defaults.temperature.map(f64::from));
        match temperature {
            // Both containers refuse a temperature of 0: greedy decoding is `do_sample: false`.
            Some(t) if t <= 0.0 => {
                p.insert("do_sample".into(), false.into());
            }
            Some(t) => {
                p.insert("temperature".into(), t.into());
                p.insert("do_sample".into(), true.into());
            }
            None => {}
        }
        if let Some(top_p) = req.top_p.filter(|p| *p > 0.0 && *p < 1.0) {
            p.insert("top_p".into(), top_p.into());
        }
        if !req.stop.is_empty() {
            let key = if self.format == Format::Tgi {
                "stop"
            } else {
                "stop_sequences"
            };
            p.insert(key.into(), req.stop.clone().into());
        }
        if let Some(seed) = req.seed {
            p.insert("seed".into(), seed.into());
        }
        p.insert("details".into(), true.into());
        p.insert("return_full_text".into(), false.into());
        let body = json!({"inputs": prompt, "parameters": p, "stream": stream});
        serde_json::to_vec(&body).map_err(|e| GatewayError::Internal(e.to_string()))
    }

    fn decode(&self, body: &[u8], ctx: &ResponseCtx<'_>) -> Result<Completion, GatewayError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|_| bad_upstream("JSON with `generated_text`", body))?;
        // TGI answers a list with one object, LMI one object; some LMI versions a list too.
        let first = match &v {
            Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
            other => other.clone(),
        };
        if let Some(msg) = first.get("error").and_then(Value::as_str) {
            return Err(GatewayError::ModelError {
                original_status: None,
                message: msg.to_owned(),
            });
        }
        let Some(text) = first.get("generated_text").and_then(Value::as_str) else {
            return Err(bad_upstream("JSON with `generated_text`", body));
        };
        let GenerationEnd { reason, usage } = GenerationEnd::from_details(first.get("details"));
        let usage = usage.map(|u| u.or_prompt_estimate(|| ctx.prompt_estimate()));
        let (reasoning, text) = split_whole(text);
        let mut message = json!({"role": "assistant", "content": text});
        if let Some(r) = reasoning {
            message["reasoning_content"] = r.into();
        }
        let mut out = json!({
            "id": ctx.id,
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": reason,
            }],
        });
        if let Some(u) = usage {
            out["usage"] = u.to_json();
        }
        Ok(Completion {
            body: AnswerBody::Json(out),
            usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> ChatRequest {
        ChatRequest::parse(body.as_bytes()).unwrap()
    }

    fn ctx() -> ResponseCtx<'static> {
        ResponseCtx {
            model: "m",
            id: "chatcmpl-1",
            created: 7,
            request: None,
        }
    }

    #[test]
    fn openai_passes_through_with_defaults() {
        let r = req(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}],"stream_options":{"include_usage":true}}"#,
        );
        let d = Defaults {
            max_tokens: Some(64),
            temperature: Some(0.5),
            context_length: None,
        };
        let body: Value =
            serde_json::from_slice(&OpenAiChat.encode(&r, &d, false).unwrap()).unwrap();
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["stream"], false);
        assert!(body.get("stream_options").is_none());
        assert_eq!(body["tools"][0]["type"], "function");
        let c = OpenAiChat
            .decode(br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"x"}}],"model":"/opt/ml/model","usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#, &ctx())
            .unwrap();
        assert_eq!(c.body.to_value()["model"], "m");
        assert_eq!(c.body.to_value()["object"], "chat.completion");
        assert_eq!(
            c.usage,
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 1
            })
        );
        assert!(OpenAiChat.decode(b"[1]", &ctx()).is_err());
    }

    #[test]
    fn openai_answers_passed_through_equal_the_tree_path() {
        let answers: &[&[u8]] = &[
            br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"x"}}],"model":"/opt/ml/model","usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#,
            br#"{"id":"cmpl-9","object":"chat.completion","created":5,"model":"x","choices":[{"message":{"content":"a \"quoted\" \u00e9 text","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}}],"usage":null,"system_fingerprint":"fp"}"#,
            br#"{"choices":[],"model":"a","model":"b","usage":{"prompt_tokens":1},"k\u0065y":1.5e3}"#,
            br#"  {"choices":[{"message":{"content":"no usage"}}]}  "#,
        ];
        for a in answers {
            let fast = passthrough(a, &ctx()).expect("takes the fast path");
            assert!(matches!(fast.body, AnswerBody::Serialized(_)));
            let tree = decode_tree(a, &ctx()).unwrap();
            assert_eq!(
                fast.body.to_value(),
                tree.body.to_value(),
                "{}",
                String::from_utf8_lossy(a)
            );
            assert_eq!(fast.usage, tree.usage);
        }
        // What needs a change below the top level, or is no answer at all, takes the tree path.
        for a in [
            &br#"{"choices":[{"message":{"content":"<think>hm</think>Four."}}]}"#[..],
            br#"{"choices":[{"message":{"content":"4","reasoning":"2+2"}}]}"#,
            br#"{"choices":{}}"#,
            br#"{"object":"x"}"#,
            b"[1]",
            b"{\"choices\":[",
            // Counts the fast path does not read as numbers: the tree path reads them as 0.
            br#"{"choices":[],"usage":{"prompt_tokens":1.5}}"#,
            br#"{"choices":[],"usage":[]}"#,
        ] {
            assert!(
                passthrough(a, &ctx()).is_none(),
                "{}",
                String::from_utf8_lossy(a)
            );
        }
    }

    #[test]
    fn openai_answers_passed_through_keep_the_container_order() {
        let a = br#"{"z":1,"choices":[],"model":"x","model":"y","a\u0062":[1, 2],"usage":{"prompt_tokens":2,"completion_tokens":3}}"#;
        let fast = passthrough(a, &ctx()).expect("takes the fast path");
        let AnswerBody::Serialized(out) = &fast.body else {
            panic!("not serialized")
        };
        assert_eq!(
            std::str::from_utf8(out).unwrap(),
            r#"{"z":1,"choices":[],"model":"m","ab":[1, 2],"usage":{"prompt_tokens":2,"completion_tokens":3},"object":"chat.completion","id":"chatcmpl-1","created":7}"#
        );
        assert_eq!(
            fast.usage,
            Some(Usage {
                prompt_tokens: 2,
                completion_tokens: 3
            })
        );
    }

    #[test]
    fn tgi_and_lmi_encode() {
        let tgi = PromptChat {
            format: Format::Tgi,
            template: ChatTemplate::new("chatml").unwrap(),
        };
        let r = req(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0,"stop":["\n"],"top_p":1,"seed":3}"#,
        );
        let body: Value =
            serde_json::from_slice(&tgi.encode(&r, &Defaults::default(), true).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"inputs":"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n","stream":true,
                   "parameters":{"max_new_tokens":DEFAULT_MAX_NEW_TOKENS,"do_sample":false,"stop":["\n"],"seed":3,"details":true,"return_full_text":false}})
        );
        let lmi = PromptChat {
            format: Format::Lmi,
            template: ChatTemplate::new("chatml").unwrap(),
        };
        let r = req(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":5,"stop":"x"}"#,
        );
        let body: Value =
            serde_json::from_slice(&lmi.encode(&r, &Defaults::default(), false).unwrap()).unwrap();
        assert_eq!(body["parameters"]["stop_sequences"], json!(["x"]));
        assert_eq!(body["parameters"]["temperature"], 0.7);
        assert_eq!(body["parameters"]["max_new_tokens"], 5);
        let r = req(r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"n":2}"#);
        assert!(
            matches!(lmi.encode(&r, &Defaults::default(), false), Err(GatewayError::BadRequest { param: Some(p), .. }) if p == "n")
        );
        let r =
            req(r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":9000}"#);
        let d = Defaults {
            context_length: Some(4096),
            ..Defaults::default()
        };
        assert!(lmi
            .encode(&r, &d, false)
            .unwrap_err()
            .to_string()
            .contains("context length (4096)"));
    }

    #[test]
    fn tgi_and_lmi_decode() {
        let tgi = PromptChat {
            format: Format::Tgi,
            template: ChatTemplate::new("chatml").unwrap(),
        };
        let c = tgi
            .decode(br#"[{"generated_text":"Hello!","details":{"finish_reason":"length","generated_tokens":2}}]"#, &ctx())
            .unwrap();
        assert_eq!(
            c.body.to_value()["choices"][0]["message"]["content"],
            "Hello!"
        );
        assert_eq!(c.body.to_value()["choices"][0]["finish_reason"], "length");
        assert_eq!(c.body.to_value()["usage"]["completion_tokens"], 2);
        let c = tgi.decode(br#"{"generated_text":"Hi"}"#, &ctx()).unwrap();
        assert_eq!(c.body.to_value()["choices"][0]["finish_reason"], "stop");
        assert!(c.body.to_value().get("usage").is_none());
        let e = tgi.decode(b"<html>", &ctx()).unwrap_err();
        assert!(e.to_string().contains("check the model's `format`"), "{e}");
    }
}
