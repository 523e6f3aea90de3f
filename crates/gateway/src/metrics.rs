//! Prometheus metrics, written by hand in the text exposition format.
//!
//! Counters and histograms are atomics allocated per configured model at startup, so the hot
//! path takes no lock; only error counts, keyed by (model, class), sit behind a mutex, and
//! only on the error path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// A latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Writes the histogram `name` with `labels` (`a="x",b="y"`, already escaped).
    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// The routes counted per model.
#[derive(Debug, Clone, Copy)]
pub enum Route {
    Chat = 0,
    ChatStream = 1,
    Embeddings = 2,
    Rerank = 3,
    Transcription = 4,
    Translation = 5,
    Speech = 6,
}

const ROUTES: [&str; 7] = [
    "chat",
    "chat_stream",
    "embeddings",
    "rerank",
    "transcription",
    "translation",
    "speech",
];

/// One model's numbers.
#[derive(Debug, Default)]
pub struct ModelMetrics {
    requests: [AtomicU64; 7],
    pub upstream_latency: Histogram,
    pub time_to_first_token: Histogram,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    open_streams: AtomicI64,
}

impl ModelMetrics {
    pub fn request(&self, route: Route) {
        self.requests[route as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn tokens(&self, prompt: u64, completion: u64) {
        self.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(completion, Ordering::Relaxed);
    }

    pub fn stream_opened(&self) {
        self.open_streams.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_closed(&self) {
        self.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every metric of one gateway. The counts are shared (`Arc`) so that a gateway rebuilt after
/// a model change takes over those of the one it replaces ([`Metrics::carry_over`]).
#[derive(Debug, Default)]
pub struct Metrics {
    names: Vec<String>,
    models: Vec<Arc<ModelMetrics>>,
    /// Requests naming no configured model, or no model at all.
    unknown_model_requests: Arc<AtomicU64>,
    errors: Arc<Mutex<BTreeMap<(String, &'static str), u64>>>,
}

/// `s` escaped for a label value.
pub(crate) fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn new(model_names: &[String]) -> Self {
        Self {
            names: model_names.iter().map(|n| label(n)).collect(),
            models: model_names
                .iter()
                .map(|_| Arc::new(ModelMetrics::default()))
                .collect(),
            ..Self::default()
        }
    }

    /// Takes over the counts of `old`: models of the same name keep their numbers, and so do
    /// the error and unknown-model counts (a model removed takes its numbers with it).
    pub fn carry_over(&mut self, old: &Metrics) {
        for (name, slot) in self.names.iter().zip(self.models.iter_mut()) {
            if let Some(i) = old.names.iter().position(|n| n == name) {
                *slot = Arc::clone(&old.models[i]);
            }
        }
        self.unknown_model_requests = Arc::clone(&old.unknown_model_requests);
        self.errors = Arc::clone(&old.errors);
    }

    pub fn model(&self, index: usize) -> &ModelMetrics {
        &self.models[index]
    }

    pub fn unknown_model(&self) {
        self.unknown_model_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one failed request; `class` is the error's code.
    pub fn error(&self, model: Option<&str>, class: &'static str) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        *errors
            .entry((model.unwrap_or("").to_owned(), class))
            .or_insert(0) += 1;
    }

    /// How many errors of `class` were counted (for tests and checks).
    pub fn errors_of(&self, class: &str) -> u64 {
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors
            .iter()
            .filter(|((_, c), _)| *c == class)
            .map(|(_, n)| n)
            .sum()
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096 + self.names.len() * 4096);
        out.push_str("# HELP sagebridge_gateway_requests_total Requests per model and route.\n");
        out.push_str("# TYPE sagebridge_gateway_requests_total counter\n");
        for (name, m) in self.names.iter().zip(&self.models) {
            for (i, route) in ROUTES.iter().enumerate() {
                let n = m.requests[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "sagebridge_gateway_requests_total{{model=\"{name}\",route=\"{route}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "sagebridge_gateway_requests_total{{model=\"\",route=\"unknown_model\"}} {}",
            self.unknown_model_requests.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP sagebridge_gateway_errors_total Failed requests per model and error class.\n",
        );
        out.push_str("# TYPE sagebridge_gateway_errors_total counter\n");
        {
            let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
            for ((model, class), n) in errors.iter() {
                let _ = writeln!(
                    out,
                    "sagebridge_gateway_errors_total{{model=\"{}\",class=\"{class}\"}} {n}",
                    label(model)
                );
            }
        }
        out.push_str("# HELP sagebridge_gateway_upstream_latency_seconds Time SageMaker took to answer (to the first event for streams).\n");
        out.push_str("# TYPE sagebridge_gateway_upstream_latency_seconds histogram\n");
        for (name, m) in self.names.iter().zip(&self.models) {
            m.upstream_latency.render(
                &mut out,
                "sagebridge_gateway_upstream_latency_seconds",
                &format!("model=\"{name}\""),
            );
        }
        out.push_str("# HELP sagebridge_gateway_time_to_first_token_seconds Time from request to the first streamed token.\n");
        out.push_str("# TYPE sagebridge_gateway_time_to_first_token_seconds histogram\n");
        for (name, m) in self.names.iter().zip(&self.models) {
            m.time_to_first_token.render(
                &mut out,
                "sagebridge_gateway_time_to_first_token_seconds",
                &format!("model=\"{name}\""),
            );
        }
        out.push_str("# HELP sagebridge_gateway_tokens_total Tokens reported by the containers.\n");
        out.push_str("# TYPE sagebridge_gateway_tokens_total counter\n");
        for (name, m) in self.names.iter().zip(&self.models) {
            let p = m.prompt_tokens.load(Ordering::Relaxed);
            let c = m.completion_tokens.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "sagebridge_gateway_tokens_total{{model=\"{name}\",type=\"prompt\"}} {p}"
            );
            let _ = writeln!(
                out,
                "sagebridge_gateway_tokens_total{{model=\"{name}\",type=\"completion\"}} {c}"
            );
        }
        out.push_str("# HELP sagebridge_gateway_open_streams Streams being served now.\n");
        out.push_str("# TYPE sagebridge_gateway_open_streams gauge\n");
        for (name, m) in self.names.iter().zip(&self.models) {
            let _ = writeln!(
                out,
                "sagebridge_gateway_open_streams{{model=\"{name}\"}} {}",
                m.open_streams.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new(&["a\"b".to_owned()]);
        m.model(0).request(Route::Chat);
        m.model(0)
            .upstream_latency
            .observe(Duration::from_millis(3));
        m.model(0).tokens(5, 7);
        m.error(Some("a\"b"), "throttled");
        m.error(None, "model_not_found");
        let text = m.render();
        for line in [
            "sagebridge_gateway_requests_total{model=\"a\\\"b\",route=\"chat\"} 1",
            "sagebridge_gateway_upstream_latency_seconds_bucket{model=\"a\\\"b\",le=\"0.0025\"} 0",
            "sagebridge_gateway_upstream_latency_seconds_bucket{model=\"a\\\"b\",le=\"0.005\"} 1",
            "sagebridge_gateway_upstream_latency_seconds_count{model=\"a\\\"b\"} 1",
            "sagebridge_gateway_errors_total{model=\"a\\\"b\",class=\"throttled\"} 1",
            "sagebridge_gateway_errors_total{model=\"\",class=\"model_not_found\"} 1",
            "sagebridge_gateway_tokens_total{model=\"a\\\"b\",type=\"completion\"} 7",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert_eq!(m.errors_of("throttled"), 1);
    }

    #[test]
    fn a_rebuilt_gateway_keeps_the_counts_of_the_models_it_still_has() {
        let old = Metrics::new(&["a".to_owned(), "gone".to_owned()]);
        old.model(0).request(Route::Chat);
        old.model(1).request(Route::Chat);
        old.error(Some("a"), "timeout");
        let mut new = Metrics::new(&["new".to_owned(), "a".to_owned()]);
        new.carry_over(&old);
        new.model(1).request(Route::Chat);
        let text = new.render();
        for line in [
            "sagebridge_gateway_requests_total{model=\"a\",route=\"chat\"} 2",
            "sagebridge_gateway_requests_total{model=\"new\",route=\"chat\"} 0",
            "sagebridge_gateway_errors_total{model=\"a\",class=\"timeout\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert!(!text.contains("gone"));
    }
}
