//! Embedding adapters: `tei` (`{"inputs"}` -> `[[..]]`), `jumpstart` (`{"text_inputs"}` ->
//! `{"embedding"}`), `dify` (`{"inputs"}` -> `{"embeddings"}`) and `openai` (`{"input"}` ->
//! `{"data":[{"embedding"}]}`).
//!
//! Also the parts of `POST /v1/embeddings` that do not depend on the container: batching under
//! SageMaker's payload limit, `dimensions` ([`shorten`]), token counts when the container does
//! not report them ([`estimate_tokens`]) and `encoding_format: base64`.

use serde_json::{json, Value};

use super::{bad_upstream, EmbeddingAdapter};
use crate::config::Format;
use crate::error::GatewayError;

#[derive(Debug)]
pub struct Embed {
    pub format: Format,
}

fn vectors(v: &Value) -> Option<Vec<Vec<f32>>> {
    let rows = v.as_array()?;
    // A single vector (one input) comes back flat from some JumpStart models.
    if rows.first().is_some_and(Value::is_number) {
        return Some(vec![rows
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<Vec<_>>>()?]);
    }
    rows.iter()
        .map(|r| {
            r.as_array()?
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect::<Option<Vec<_>>>()
        })
        .collect()
}

impl Embed {
    fn what(&self) -> &'static str {
        match self.format {
            Format::Jumpstart => "JSON with `embedding`",
            Format::Dify => "JSON with `embeddings`",
            Format::Openai => "an OpenAI embeddings response",
            _ => "a JSON list of vectors",
        }
    }

    fn parse(&self, body: &[u8]) -> Result<Value, GatewayError> {
        serde_json::from_slice(body).map_err(|_| bad_upstream(self.what(), body))
    }

    fn vectors_of(
        &self,
        v: &Value,
        body: &[u8],
        expected: usize,
    ) -> Result<Vec<Vec<f32>>, GatewayError> {
        let what = self.what();
        let out = match self.format {
            Format::Jumpstart => v.get("embedding").and_then(vectors),
            Format::Dify => v.get("embeddings").and_then(vectors),
            Format::Openai => v.get("data").and_then(Value::as_array).and_then(|items| {
                let mut rows: Vec<(u64, Vec<f32>)> = items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| {
                        let idx = it.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
                        Some((idx, vectors(it.get("embedding")?)?.pop()?))
                    })
                    .collect::<Option<_>>()?;
                rows.sort_by_key(|(i, _)| *i);
                Some(rows.into_iter().map(|(_, r)| r).collect())
            }),
            _ => vectors(v),
        };
        let out = out.ok_or_else(|| bad_upstream(what, body))?;
        if out.len() != expected {
            return Err(GatewayError::Upstream {
                message: format!(
                    "the container returned {} vectors for {expected} inputs",
                    out.len()
                ),
                code: "bad_upstream_response",
            });
        }
        Ok(out)
    }
}

impl EmbeddingAdapter for Embed {
    fn encode(&self, inputs: &[String], model: &str) -> Vec<u8> {
        let body = match self.format {
            Format::Jumpstart => json!({ "text_inputs": inputs }),
            Format::Openai => json!({ "input": inputs, "model": model }),
            _ => json!({ "inputs": inputs }),
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn decode(&self, body: &[u8], expected: usize) -> Result<Vec<Vec<f32>>, GatewayError> {
        self.vectors_of(&self.parse(body)?, body, expected)
    }

    /// OpenAI-format containers (vLLM, TEI's `/v1/embeddings` route) report
    /// `usage.prompt_tokens`; the other families report no token counts.
    fn decode_with_usage(
        &self,
        body: &[u8],
        expected: usize,
    ) -> Result<(Vec<Vec<f32>>, Option<u64>), GatewayError> {
        let v = self.parse(body)?;
        let vectors = self.vectors_of(&v, body, expected)?;
        let tokens = match self.format {
            Format::Openai => v.pointer("/usage/prompt_tokens").and_then(Value::as_u64),
            _ => None,
        };
        Ok((vectors, tokens))
    }
}

/// How far from 1 the L2 norm of a vector may be for it to count as normalised (containers send
/// `f32`s, so a unit vector is off by about 1e-7; 1e-3 leaves room for rounding in JSON).
const UNIT_NORM_TOLERANCE: f32 = 1e-3;

/// Applies `dimensions` to one vector: keeps its first `dims` values, as OpenAI does for its
/// Matryoshka-trained `text-embedding-3` models (and as Matryoshka models served by TEI or vLLM
/// expect). If the container's vector was normalised (L2 norm within [`UNIT_NORM_TOLERANCE`] of
/// 1, as TEI and most sentence-transformers models send them), the shortened vector is scaled
/// back to unit length, so cosine similarity and dot product stay interchangeable as clients
/// assume; a vector that was not normalised is only cut, since rescaling would change what the
/// model meant by its magnitude. `dims` must be at least 1 and at most `v.len()` (the caller
/// answers 400 otherwise); a larger value leaves the vector unchanged.
pub fn shorten(v: &mut Vec<f32>, dims: usize) {
    if dims >= v.len() {
        return;
    }
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let was_unit = (norm(v) as f32 - 1.0).abs() <= UNIT_NORM_TOLERANCE;
    v.truncate(dims);
    if was_unit {
        let n = norm(v);
        if n > 0.0 {
            for x in v.iter_mut() {
                *x = (f64::from(*x) / n) as f32;
            }
        }
    }
}

/// An estimate of the tokens in `text`, for `usage` when the container does not count them
/// (TEI's, JumpStart's and Dify's embedding routes do not).
///
/// It is an estimate, not a count: without the model's tokenizer the gateway cannot know. The
/// rule is OpenAI's own rule of thumb, about 4 characters per token for English and other
/// ASCII text, plus one token per non-ASCII character, since BPE and WordPiece vocabularies
/// split CJK, emoji and accented text into about a token per character or more. It errs high
/// rather than low for non-Latin scripts, is typically within ±30% for English prose, and is
/// at least 1 for any non-empty text, so billing and rate limits built on it are not fooled
/// into zero.
pub fn estimate_tokens(text: &str) -> u64 {
    let (ascii, other) = text.chars().fold((0u64, 0u64), |(a, o), c| {
        if c.is_ascii() {
            (a + 1, o)
        } else {
            (a, o + 1)
        }
    });
    let estimate = ascii.div_ceil(4) + other;
    if text.is_empty() {
        0
    } else {
        estimate.max(1)
    }
}

/// Splits `inputs` into batches of at most `max_items` whose encoded body stays under
/// `max_bytes` (an input that alone is too large goes into a batch of its own, and SageMaker
/// will refuse it with a clear error).
pub fn batches(
    adapter: &dyn EmbeddingAdapter,
    inputs: &[String],
    model: &str,
    max_items: usize,
    max_bytes: usize,
) -> Vec<std::ops::Range<usize>> {
    // Fixed overhead of the body plus per-item quoting, measured once on an empty batch.
    let overhead = adapter.encode(&[], model).len();
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = overhead;
    for (i, s) in inputs.iter().enumerate() {
        // JSON escaping can at worst grow a string six-fold (`\u00XX`); ordinary text barely grows.
        let item = json_len(s) + 1;
        let full = i - start >= max_items.max(1);
        if i > start && (full || size + item > max_bytes) {
            out.push(start..i);
            start = i;
            size = overhead;
        }
        size += item;
    }
    if start < inputs.len() {
        out.push(start..inputs.len());
    }
    out
}

fn json_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Little-endian `f32`s in base64, as OpenAI's `encoding_format: base64`.
pub fn base64_f32(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64(&bytes)
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let inputs = vec!["a".to_owned(), "b".to_owned()];
        let check = |format: Format, request: Value, response: &str| {
            let a = Embed { format };
            let body: Value = serde_json::from_slice(&a.encode(&inputs, "m")).unwrap();
            assert_eq!(body, request, "{format:?}");
            assert_eq!(
                a.decode(response.as_bytes(), 2).unwrap(),
                vec![vec![1.0, 2.0], vec![3.0, 4.0]],
                "{format:?}"
            );
        };
        check(Format::Tei, json!({"inputs":["a","b"]}), "[[1,2],[3,4]]");
        check(
            Format::Jumpstart,
            json!({"text_inputs":["a","b"]}),
            r#"{"embedding":[[1,2],[3,4]]}"#,
        );
        check(
            Format::Dify,
            json!({"inputs":["a","b"]}),
            r#"{"embeddings":[[1.0,2.0],[3.0,4.0]]}"#,
        );
        check(
            Format::Openai,
            json!({"input":["a","b"],"model":"m"}),
            r#"{"data":[{"index":1,"embedding":[3,4]},{"index":0,"embedding":[1,2]}]}"#,
        );
        let e = Embed {
            format: Format::Tei,
        }
        .decode(b"[[1]]", 2)
        .unwrap_err();
        assert!(e.to_string().contains("1 vectors for 2 inputs"));
        assert!(Embed {
            format: Format::Jumpstart
        }
        .decode(b"{}", 1)
        .is_err());
    }

    #[test]
    fn batching_respects_count_and_size() {
        let a = Embed {
            format: Format::Tei,
        };
        let inputs: Vec<String> = (0..10).map(|i| "x".repeat(100 + i)).collect();
        assert_eq!(
            batches(&a, &inputs, "m", 4, 1 << 20),
            vec![0..4, 4..8, 8..10]
        );
        let b = batches(&a, &inputs, "m", 100, 350);
        assert!(b.len() >= 4, "{b:?}");
        for r in &b {
            let size = a.encode(&inputs[r.clone()], "m").len();
            assert!(size <= 350 || r.len() == 1, "{r:?} is {size} bytes");
        }
        assert_eq!(b.iter().map(|r| r.len()).sum::<usize>(), 10);
        let odd = ["q\"\n\u{1}".repeat(30)];
        assert_eq!(
            json_len(&odd[0]),
            serde_json::to_string(&odd[0]).unwrap().len()
        );
    }

    #[test]
    fn shorten_cuts_and_renormalises_unit_vectors_only() {
        let mut raw = vec![3.0, 4.0, 12.0];
        shorten(&mut raw, 2);
        assert_eq!(raw, vec![3.0, 4.0]);
        let mut unit = vec![0.6, 0.0, 0.8];
        shorten(&mut unit, 2);
        assert_eq!(unit, vec![1.0, 0.0]);
        let mut unit = vec![0.48, 0.64, 0.6];
        shorten(&mut unit, 2);
        assert!(
            (unit[0] - 0.6).abs() < 1e-6 && (unit[1] - 0.8).abs() < 1e-6,
            "{unit:?}"
        );
        let mut same = vec![0.6, 0.8];
        shorten(&mut same, 2);
        assert_eq!(same, vec![0.6, 0.8]);
        let mut zero_prefix = vec![0.0, 1.0];
        shorten(&mut zero_prefix, 1);
        assert_eq!(zero_prefix, vec![0.0]);
    }

    #[test]
    fn token_estimates() {
        let check = |text: &str, want: u64| assert_eq!(estimate_tokens(text), want, "{text:?}");
        check("", 0);
        check("a", 1);
        check("abcd", 1);
        check("abcde", 2);
        check("The quick brown fox jumps over the lazy dog", 11);
        check("Grüß dich", 4);
        check("你好世界", 4);
    }

    #[test]
    fn usage_from_openai_containers_only() {
        let body = br#"{"data":[{"index":0,"embedding":[1,2]}],"usage":{"prompt_tokens":7,"total_tokens":7}}"#;
        let (v, tokens) = Embed {
            format: Format::Openai,
        }
        .decode_with_usage(body, 1)
        .unwrap();
        assert_eq!(v, vec![vec![1.0, 2.0]]);
        assert_eq!(tokens, Some(7));
        let (_, tokens) = Embed {
            format: Format::Tei,
        }
        .decode_with_usage(b"[[1,2]]", 1)
        .unwrap();
        assert_eq!(tokens, None);
    }

    #[test]
    fn base64_matches_reference() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
    }
}
