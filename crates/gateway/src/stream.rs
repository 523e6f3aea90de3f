//! Decoding a container's streamed output from SageMaker `PayloadPart`s.
//!
//! SageMaker cuts the container's byte stream into `PayloadPart`s wherever it likes: one SSE
//! event or JSON line may be split across parts (even inside a UTF-8 character), and one part
//! may hold several events. So bytes are first reassembled into lines ([`LineSplitter`]), and
//! only complete lines are parsed ([`parse_line`]) into [`StreamEvent`]s. The result does not
//! depend on how the bytes were cut; a property test checks exactly that.

use serde_json::Value;

use crate::api::Usage;
use crate::config::Format;

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
}

/// Reassembles lines from arbitrarily cut byte chunks. Lines end with `\n` (a `\r` before it
/// is dropped); the last line may end without one and is returned by [`LineSplitter::finish`].
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

fn line_str(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes)
}

impl LineSplitter {
    /// Feeds one chunk; calls `f` with each line it completes.
    pub fn push(&mut self, mut chunk: &[u8], mut f: impl FnMut(&str)) {
        while let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                f(&line_str(&chunk[..i]));
            } else {
                self.partial.extend_from_slice(&chunk[..i]);
                f(&line_str(&self.partial));
                self.partial.clear();
            }
            chunk = &chunk[i + 1..];
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

    /// How many bytes wait for the rest of their line.
    pub fn pending(&self) -> usize {
        self.partial.len()
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
        let reason = details
            .and_then(|d| d.get("finish_reason"))
            .and_then(Value::as_str)
            .map(finish_reason)
            .unwrap_or("stop");
        let usage = details
            .and_then(|d| d.get("generated_tokens"))
            .and_then(Value::as_u64)
            .map(|n| Usage {
                prompt_tokens: details
                    .and_then(|d| d.get("prompt_tokens").or_else(|| d.get("input_tokens")))
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                completion_tokens: n,
            });
        out.push(StreamEvent::Finish {
            reason: reason.to_owned(),
            usage,
        });
    }
}

/// Bytes in, events out, for one stream of one format.
#[derive(Debug)]
pub struct StreamDecoder {
    format: Format,
    lines: LineSplitter,
}

impl StreamDecoder {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            lines: LineSplitter::default(),
        }
    }

    /// Decodes one `PayloadPart`'s bytes, appending the events it completes to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) {
        let format = self.format;
        self.lines.push(bytes, |line| parse_line(format, line, out));
    }

    /// The stream ended: decodes a last line that had no newline.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        let format = self.format;
        self.lines.finish(|line| parse_line(format, line, out));
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
