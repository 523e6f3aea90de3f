//! Rerank adapters: `tei` (`{"query","texts"}` -> `[{"index","score"}]`) and `dify`
//! (`{"inputs":[query, ..],"docs":[..]}` -> `{"scores":[..]}`).

use serde_json::{json, Value};

use super::{bad_upstream, RerankAdapter};
use crate::config::Format;
use crate::error::GatewayError;

#[derive(Debug)]
pub struct Rerank {
    pub format: Format,
}

impl RerankAdapter for Rerank {
    fn encode(&self, query: &str, documents: &[String]) -> Vec<u8> {
        let body = match self.format {
            // Dify's provider sends the query once per document, paired with `docs`.
            Format::Dify => json!({ "inputs": vec![query; documents.len()], "docs": documents }),
            _ => json!({ "query": query, "texts": documents, "raw_scores": false }),
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn decode(&self, body: &[u8], documents: usize) -> Result<Vec<(usize, f64)>, GatewayError> {
        let what = if self.format == Format::Dify {
            "JSON with `scores`"
        } else {
            "a JSON list of {index, score}"
        };
        let v: Value = serde_json::from_slice(body).map_err(|_| bad_upstream(what, body))?;
        let scores: Option<Vec<(usize, f64)>> = match self.format {
            Format::Dify => v.get("scores").and_then(Value::as_array).and_then(|a| {
                a.iter()
                    .enumerate()
                    .map(|(i, s)| Some((i, s.as_f64()?)))
                    .collect()
            }),
            _ => v.as_array().and_then(|a| {
                a.iter()
                    .map(|r| {
                        Some((
                            r.get("index")?.as_u64()? as usize,
                            r.get("score")?.as_f64()?,
                        ))
                    })
                    .collect()
            }),
        };
        let scores = scores.ok_or_else(|| bad_upstream(what, body))?;
        if scores.len() != documents || scores.iter().any(|(i, _)| *i >= documents) {
            return Err(GatewayError::Upstream {
                message: format!(
                    "the container returned {} scores for {documents} documents",
                    scores.len()
                ),
                code: "bad_upstream_response",
            });
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let docs = vec!["a".to_owned(), "b".to_owned()];
        let tei = Rerank {
            format: Format::Tei,
        };
        assert_eq!(
            serde_json::from_slice::<Value>(&tei.encode("q", &docs)).unwrap(),
            json!({"query":"q","texts":["a","b"],"raw_scores":false})
        );
        assert_eq!(
            tei.decode(br#"[{"index":1,"score":0.9},{"index":0,"score":0.1}]"#, 2)
                .unwrap(),
            vec![(1, 0.9), (0, 0.1)]
        );
        assert!(tei
            .decode(br#"[{"index":5,"score":0.9},{"index":0,"score":0.1}]"#, 2)
            .is_err());
        let dify = Rerank {
            format: Format::Dify,
        };
        assert_eq!(
            serde_json::from_slice::<Value>(&dify.encode("q", &docs)).unwrap(),
            json!({"inputs":["q","q"],"docs":["a","b"]})
        );
        assert_eq!(
            dify.decode(br#"{"scores":[0.2,0.7]}"#, 2).unwrap(),
            vec![(0, 0.2), (1, 0.7)]
        );
        assert!(dify.decode(br#"{"score":[]}"#, 2).is_err());
    }
}
