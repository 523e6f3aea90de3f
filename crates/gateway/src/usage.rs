//! Usage per API key and model, and the per-key limits (requests and tokens per minute).
//!
//! Every `POST /v1/...` request that passed the API-key check gets a [`UsageTicket`] naming its
//! key (by name, never the key): the handler tells it the model once the model is resolved and
//! the tokens once they are known, the error class comes from the answer, and when the last
//! clone of the ticket goes (the answer sent, or the stream ended or dropped) it is added to
//! [`Usage`]: requests, errors by class, prompt and completion tokens and latency per (key,
//! model), served as Prometheus metrics with `key` and `model` labels, and kept as daily deltas
//! that the embedding server drains ([`Usage::take_pending`]) into its catalog in the
//! background. Nothing here writes to a database: the request path only takes a short lock.
//!
//! [`Usage`] lives in the [`crate::GatewayHandle`], not in a [`crate::Gateway`], so a gateway
//! swap after a model change loses no count and no limit window.
//!
//! # Limits
//! A key's limits are checked when its request arrives, against the last 60 seconds (kept per
//! second, so the window slides by the second):
//! - `requestsPerMinute`: the request is admitted while the key started fewer requests than
//!   the limit in the window; an admitted request counts at once, whatever its outcome.
//! - `tokensPerMinute`: the request is admitted while the key's tokens (prompt plus
//!   completion) recorded in the window are under the limit. A request's tokens are known only
//!   when its answer ends, so they are recorded then: one request may take the key past the
//!   limit, and the requests after it wait until enough of those tokens leave the window.
//!
//! A refusal is 429 `rate_limited` (requests) or `tokens_limited` (tokens) with `Retry-After`:
//! the seconds until enough of the window has passed for the key to be under its limit again.
//! Refused requests count as errors of the key, not as requests against its limit.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::GatewayError;
use crate::metrics::{label, Histogram};

/// What the limits of one key are; `None` for no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
}

/// The key name of requests made without a key (the gateway has no keys configured).
pub const ANONYMOUS: &str = "anonymous";
/// The key name of requests made from a signed-in admin session (the web UI's playground).
pub const ADMIN_SESSION: &str = "admin-session";

/// The window of the per-key limits.
const WINDOW_SECS: u64 = 60;

/// Counts since the process started, per (key, model).
#[derive(Debug, Default)]
struct Counters {
    requests: u64,
    errors: BTreeMap<&'static str, u64>,
    prompt_tokens: u64,
    completion_tokens: u64,
    latency: Histogram,
}

/// One day's usage of a key and model not yet written to the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageDelta {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub key: String,
    pub model: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency_ms: u64,
    pub errors: BTreeMap<String, u64>,
}

/// One second of a key's window.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    second: u64,
    requests: u64,
    tokens: u64,
}

/// A key's last 60 seconds, one slot per second.
#[derive(Debug, Clone)]
struct Window {
    slots: [Slot; WINDOW_SECS as usize],
}

impl Default for Window {
    fn default() -> Self {
        Self {
            slots: [Slot {
                // A second no window holds: every slot starts empty.
                second: u64::MAX,
                ..Slot::default()
            }; WINDOW_SECS as usize],
        }
    }
}

impl Window {
    fn live(slot: &Slot, now: u64) -> bool {
        slot.second <= now && slot.second + WINDOW_SECS > now
    }

    fn slot(&mut self, now: u64) -> &mut Slot {
        let slot = &mut self.slots[(now % WINDOW_SECS) as usize];
        if slot.second != now {
            *slot = Slot {
                second: now,
                ..Slot::default()
            };
        }
        slot
    }

    fn total(&self, now: u64, of: fn(&Slot) -> u64) -> u64 {
        self.slots
            .iter()
            .filter(|s| Self::live(s, now))
            .map(of)
            .sum()
    }

    /// Seconds until the total of `of` in the window is under `limit` (at least 1).
    fn retry_after(&self, now: u64, limit: u64, of: fn(&Slot) -> u64) -> u64 {
        let mut live: Vec<&Slot> = self.slots.iter().filter(|s| Self::live(s, now)).collect();
        live.sort_by_key(|s| s.second);
        let mut total: u64 = live.iter().map(|s| of(s)).sum();
        for s in live {
            total = total.saturating_sub(of(s));
            if total < limit {
                return (s.second + WINDOW_SECS - now).max(1);
            }
        }
        WINDOW_SECS
    }
}

/// Values by API key name, then model: nested so that a request's names look their entry up as
/// `&str` (a map keyed by a pair of `String`s can only be asked with owned copies, two
/// allocations per request). Iterates in the order of the pair.
type ByKeyModel<V> = BTreeMap<String, BTreeMap<String, V>>;

/// The entry of `key` and `model`, made (with `V::default()`) when missing.
fn slot<'m, V: Default>(map: &'m mut ByKeyModel<V>, key: &str, model: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), BTreeMap::new());
    }
    let models = map.get_mut(key).expect("inserted above");
    if !models.contains_key(model) {
        models.insert(model.to_owned(), V::default());
    }
    models.get_mut(model).expect("inserted above")
}

#[derive(Debug, Default)]
struct State {
    counters: ByKeyModel<Counters>,
    /// By day (`YYYY-MM-DD`), then key and model.
    pending: BTreeMap<String, ByKeyModel<UsageDelta>>,
    windows: HashMap<String, Window>,
}

impl State {
    /// The pending delta of `day`, `key` and `model`, made when missing.
    fn pending(&mut self, day: &str, key: &str, model: &str) -> &mut UsageDelta {
        if !self.pending.contains_key(day) {
            self.pending.insert(day.to_owned(), BTreeMap::new());
        }
        let d = slot(
            self.pending.get_mut(day).expect("inserted above"),
            key,
            model,
        );
        if d.day.is_empty() {
            d.day = day.to_owned();
            d.key = key.to_owned();
            d.model = model.to_owned();
        }
        d
    }
}

/// The entries of `map` with their key and model, in order.
fn by_key_model<V>(map: &ByKeyModel<V>) -> impl Iterator<Item = (&String, &String, &V)> {
    map.iter()
        .flat_map(|(key, models)| models.iter().map(move |(model, v)| (key, model, v)))
}

/// Usage per key and model, and the keys' limit windows. See the module docs.
#[derive(Debug)]
pub struct Usage {
    state: Mutex<State>,
    origin: Instant,
}

impl Default for Usage {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            origin: Instant::now(),
        }
    }
}

impl Usage {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn second(&self) -> u64 {
        self.origin.elapsed().as_secs()
    }

    /// Admits a request of `key` under `limits` now, counting it against its
    /// requests-per-minute; else the 429 to answer.
    pub fn admit(&self, key: &str, limits: KeyLimits) -> Result<(), GatewayError> {
        self.admit_at(key, limits, self.second())
    }

    fn admit_at(&self, key: &str, limits: KeyLimits, now: u64) -> Result<(), GatewayError> {
        if limits == KeyLimits::default() {
            return Ok(());
        }
        let mut state = self.lock();
        let window = state.windows.entry(key.to_owned()).or_default();
        if let Some(limit) = limits.requests_per_minute {
            if window.total(now, |s| s.requests) >= limit {
                return Err(GatewayError::RateLimited {
                    message: format!(
                        "API key `{key}` may start {limit} requests per minute (requestsPerMinute); retry after the time in Retry-After"
                    ),
                    code: "rate_limited",
                    retry_after: window.retry_after(now, limit, |s| s.requests),
                });
            }
        }
        if let Some(limit) = limits.tokens_per_minute {
            if window.total(now, |s| s.tokens) >= limit {
                return Err(GatewayError::RateLimited {
                    message: format!(
                        "API key `{key}` has used its {limit} tokens per minute (tokensPerMinute); retry after the time in Retry-After"
                    ),
                    code: "tokens_limited",
                    retry_after: window.retry_after(now, limit, |s| s.tokens),
                });
            }
        }
        window.slot(now).requests += 1;
        Ok(())
    }

    /// Adds one finished request.
    fn record(&self, key: &str, r: &TicketState, latency: Duration) {
        // The day's name is made once a day per thread, not once per request.
        thread_local! {
            static TODAY: std::cell::RefCell<(i64, String)> =
                const { std::cell::RefCell::new((-1, String::new())) };
        }
        let now_ms = sagebridge_aws::clock::now_millis();
        let day_number = now_ms.max(0) / 86_400_000;
        TODAY.with_borrow_mut(|(number, day)| {
            if *number != day_number {
                *day = sagebridge_aws::clock::utc_day(now_ms);
                *number = day_number;
            }
            self.record_at(key, r, latency, day, self.second());
        });
    }

    fn record_at(&self, key: &str, r: &TicketState, latency: Duration, day: &str, now: u64) {
        let model = r.model.as_deref().unwrap_or_default();
        let tokens = r.prompt_tokens + r.completion_tokens;
        let mut state = self.lock();
        if tokens > 0 {
            if let Some(w) = state.windows.get_mut(key) {
                w.slot(now).tokens += tokens;
            }
        }
        let c = slot(&mut state.counters, key, model);
        c.requests += 1;
        c.prompt_tokens += r.prompt_tokens;
        c.completion_tokens += r.completion_tokens;
        c.latency.observe(latency);
        if let Some(class) = r.error {
            *c.errors.entry(class).or_insert(0) += 1;
        }
        let d = state.pending(day, key, model);
        d.requests += 1;
        d.prompt_tokens += r.prompt_tokens;
        d.completion_tokens += r.completion_tokens;
        d.latency_ms += u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        if let Some(class) = r.error {
            if let Some(n) = d.errors.get_mut(class) {
                *n += 1;
            } else {
                d.errors.insert(class.to_owned(), 1);
            }
        }
    }

    /// Takes the usage recorded since the last call (for the catalog).
    pub fn take_pending(&self) -> Vec<UsageDelta> {
        std::mem::take(&mut self.lock().pending)
            .into_values()
            .flat_map(BTreeMap::into_values)
            .flat_map(BTreeMap::into_values)
            .collect()
    }

    /// Puts back usage that could not be written, to be taken again with the next batch.
    pub fn restore_pending(&self, deltas: Vec<UsageDelta>) {
        let mut state = self.lock();
        for d in deltas {
            let slot = state.pending(&d.day, &d.key, &d.model);
            slot.requests += d.requests;
            slot.prompt_tokens += d.prompt_tokens;
            slot.completion_tokens += d.completion_tokens;
            slot.latency_ms += d.latency_ms;
            for (class, n) in d.errors {
                *slot.errors.entry(class).or_insert(0) += n;
            }
        }
    }

    /// A ticket for one request of `key`.
    pub fn ticket(self: &Arc<Self>, key: &str) -> UsageTicket {
        UsageTicket(Arc::new(TicketInner {
            usage: Arc::clone(self),
            key: key.to_owned(),
            started: Instant::now(),
            state: Mutex::default(),
        }))
    }

    /// The per-key metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let state = self.lock();
        let labels =
            |key: &str, model: &str| format!("key=\"{}\",model=\"{}\"", label(key), label(model));
        out.push_str("# HELP sagebridge_gateway_key_requests_total Requests per API key (by name) and model.\n");
        out.push_str("# TYPE sagebridge_gateway_key_requests_total counter\n");
        for (key, model, c) in by_key_model(&state.counters) {
            let _ = writeln!(
                out,
                "sagebridge_gateway_key_requests_total{{{}}} {}",
                labels(key, model),
                c.requests
            );
        }
        out.push_str("# HELP sagebridge_gateway_key_errors_total Failed requests per API key, model and error class.\n");
        out.push_str("# TYPE sagebridge_gateway_key_errors_total counter\n");
        for (key, model, c) in by_key_model(&state.counters) {
            for (class, n) in &c.errors {
                let _ = writeln!(
                    out,
                    "sagebridge_gateway_key_errors_total{{{},class=\"{class}\"}} {n}",
                    labels(key, model)
                );
            }
        }
        out.push_str("# HELP sagebridge_gateway_key_tokens_total Tokens per API key and model (the container's counts, else the gateway's estimate).\n");
        out.push_str("# TYPE sagebridge_gateway_key_tokens_total counter\n");
        for (key, model, c) in by_key_model(&state.counters) {
            let l = labels(key, model);
            let _ = writeln!(
                out,
                "sagebridge_gateway_key_tokens_total{{{l},type=\"prompt\"}} {}",
                c.prompt_tokens
            );
            let _ = writeln!(
                out,
                "sagebridge_gateway_key_tokens_total{{{l},type=\"completion\"}} {}",
                c.completion_tokens
            );
        }
        out.push_str("# HELP sagebridge_gateway_key_request_duration_seconds Time from a request to the end of its answer, per API key and model.\n");
        out.push_str("# TYPE sagebridge_gateway_key_request_duration_seconds histogram\n");
        for (key, model, c) in by_key_model(&state.counters) {
            c.latency.render(
                out,
                "sagebridge_gateway_key_request_duration_seconds",
                &labels(key, model),
            );
        }
    }
}

/// What a request reported to its ticket.
#[derive(Debug, Default)]
struct TicketState {
    model: Option<String>,
    error: Option<&'static str>,
    prompt_tokens: u64,
    completion_tokens: u64,
}

#[derive(Debug)]
struct TicketInner {
    usage: Arc<Usage>,
    key: String,
    started: Instant,
    state: Mutex<TicketState>,
}

impl Drop for TicketInner {
    fn drop(&mut self) {
        let state = std::mem::take(self.state.get_mut().unwrap_or_else(|e| e.into_inner()));
        self.usage.record(&self.key, &state, self.started.elapsed());
    }
}

/// One request's usage, added to [`Usage`] when its last clone is dropped (the answer, or its
/// stream, has ended). Travels in the request's extensions.
#[derive(Debug, Clone)]
pub struct UsageTicket(Arc<TicketInner>);

impl UsageTicket {
    fn with(&self, f: impl FnOnce(&mut TicketState)) {
        f(&mut self.0.state.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The key's name.
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// The model the request was served by (set once it is resolved; unknown names stay out
    /// of the labels).
    pub fn set_model(&self, model: &str) {
        self.with(|s| s.model = Some(model.to_owned()));
    }

    /// The class of the error that ended the request (the first one counts).
    pub fn set_error(&self, class: &'static str) {
        self.with(|s| {
            s.error.get_or_insert(class);
        });
    }

    /// Adds the request's tokens.
    pub fn add_tokens(&self, prompt: u64, completion: u64) {
        self.with(|s| {
            s.prompt_tokens += prompt;
            s.completion_tokens += completion;
        });
    }
}

/// Put into a failed answer's extensions by the routes, so that the ticket learns the class.
#[derive(Debug, Clone, Copy)]
pub struct ErrorClass(pub &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u64>, tpm: Option<u64>) -> KeyLimits {
        KeyLimits {
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
        }
    }

    fn finished(
        model: &str,
        prompt: u64,
        completion: u64,
        error: Option<&'static str>,
    ) -> TicketState {
        TicketState {
            model: Some(model.to_owned()),
            error,
            prompt_tokens: prompt,
            completion_tokens: completion,
        }
    }

    fn retry_after(e: GatewayError) -> (&'static str, u64) {
        match e {
            GatewayError::RateLimited {
                code, retry_after, ..
            } => (code, retry_after),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_per_minute_slide_by_the_second() {
        let u = Usage::default();
        let l = limits(Some(3), None);
        u.admit_at("k", l, 100).unwrap();
        u.admit_at("k", l, 110).unwrap();
        u.admit_at("k", l, 110).unwrap();
        // The first request leaves the window at 160.
        assert_eq!(
            retry_after(u.admit_at("k", l, 120).unwrap_err()),
            ("rate_limited", 40)
        );
        assert_eq!(retry_after(u.admit_at("k", l, 159).unwrap_err()).1, 1);
        u.admit_at("k", l, 160).unwrap();
        // Now 110, 110 and 160: one of the two of 110 leaving (at 170) makes room.
        assert_eq!(retry_after(u.admit_at("k", l, 161).unwrap_err()).1, 9);
        // Other keys and keys without limits are not affected.
        u.admit_at("other", l, 161).unwrap();
        for _ in 0..10 {
            u.admit_at("k", KeyLimits::default(), 161).unwrap();
        }
    }

    #[test]
    fn tokens_per_minute_count_once_the_answer_is_known() {
        let u = Usage::default();
        let l = limits(None, Some(100));
        u.admit_at("k", l, 0).unwrap();
        u.admit_at("k", l, 0).unwrap();
        u.record_at(
            "k",
            &finished("m", 30, 50, None),
            Duration::from_millis(5),
            "2030-01-01",
            1,
        );
        // 80 of 100 spent: still admitted; the second answer takes the key past its limit.
        u.admit_at("k", l, 2).unwrap();
        u.record_at(
            "k",
            &finished("m", 10, 20, None),
            Duration::from_millis(5),
            "2030-01-01",
            5,
        );
        assert_eq!(
            retry_after(u.admit_at("k", l, 6).unwrap_err()),
            ("tokens_limited", 55)
        );
        // At 61 the 80 tokens of second 1 have left; 30 remain.
        u.admit_at("k", l, 61).unwrap();
    }

    #[test]
    fn finished_requests_are_counted_per_key_model_and_day_until_taken() {
        let u = Usage::default();
        let d = Duration::from_millis(20);
        u.record_at("a", &finished("chat", 3, 4, None), d, "2030-01-01", 0);
        u.record_at(
            "a",
            &finished("chat", 1, 0, Some("timeout")),
            d,
            "2030-01-01",
            0,
        );
        u.record_at("b", &finished("embed", 9, 0, None), d, "2030-01-02", 0);
        let mut text = String::new();
        u.render(&mut text);
        for line in [
            "sagebridge_gateway_key_requests_total{key=\"a\",model=\"chat\"} 2",
            "sagebridge_gateway_key_errors_total{key=\"a\",model=\"chat\",class=\"timeout\"} 1",
            "sagebridge_gateway_key_tokens_total{key=\"a\",model=\"chat\",type=\"prompt\"} 4",
            "sagebridge_gateway_key_tokens_total{key=\"b\",model=\"embed\",type=\"prompt\"} 9",
            "sagebridge_gateway_key_request_duration_seconds_count{key=\"a\",model=\"chat\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        let pending = u.take_pending();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].key, "a");
        assert_eq!(pending[0].requests, 2);
        assert_eq!(pending[0].latency_ms, 40);
        assert_eq!(pending[0].errors.get("timeout"), Some(&1));
        assert!(u.take_pending().is_empty(), "taken once");
        u.restore_pending(pending.clone());
        u.restore_pending(vec![pending[0].clone()]);
        let again = u.take_pending();
        assert_eq!(again[0].requests, 4);
        assert_eq!(again[1], pending[1]);
        // The Prometheus counts are not drained.
        let mut text = String::new();
        u.render(&mut text);
        assert!(text.contains("sagebridge_gateway_key_requests_total{key=\"a\",model=\"chat\"} 2"));
    }

    #[test]
    fn a_ticket_is_counted_when_its_last_clone_goes() {
        let u = Arc::new(Usage::default());
        let t = u.ticket("k");
        let held = t.clone();
        t.set_model("chat");
        t.add_tokens(2, 3);
        drop(t);
        assert!(u.take_pending().is_empty(), "a stream still holds it");
        held.set_error("timeout");
        held.set_error("later_error");
        drop(held);
        let pending = u.take_pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (pending[0].prompt_tokens, pending[0].completion_tokens),
            (2, 3)
        );
        assert_eq!(pending[0].errors.keys().collect::<Vec<_>>(), ["timeout"]);
    }
}
