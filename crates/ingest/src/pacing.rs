//! Per-API pacing: learn each SageMaker API's rate limit from its throttling answers and send
//! no faster than that.
//!
//! AWS limits each control-plane API separately (DescribeModel, ListTags, DescribeTrainingJob
//! ... each have their own TPS). The SDK's adaptive retry mode keeps *one* client-side rate for
//! the whole client, so a throttled DescribeModel also slows ListTags, and it recovers slowly:
//! measured against the fake at 100 TPS per API it ran at half the achievable rate. Here each
//! API has its own limiter:
//!
//! - until the API is first throttled, calls are not paced at all (no cost at full speed);
//! - on a throttle, the rate drops to 90% of the rate of calls that API *answered* over the
//!   last second (the server's limit, observed), ignoring further throttles for a moment
//!   (calls already in flight were sent at the old rate);
//! - without throttles the rate grows by 2% per second, so a limit that was raised is found.
//!
//! The SDK's standard retry (with backoff) still retries the calls that were throttled.
//!
//! Optional enrichment calls (endpoints, feature groups, training jobs) are retried by
//! [`OptionalRetry`] instead: as patiently as the SDK when throttled (a limit is not a fault),
//! but only a few times within a short budget when the API keeps failing (a 500 from an
//! emulator or a broken service), so one unusable optional API costs a run about two seconds,
//! not the minute of backoff the bulk policy would spend before any model is read.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How far back answered calls count towards the observed rate.
const WINDOW: Duration = Duration::from_secs(1);
/// After a decrease, throttles of calls sent before it are not news.
const QUIET: Duration = Duration::from_millis(300);
/// Fraction of the observed answer rate to send at after a throttle.
const BACK_OFF: f64 = 0.9;
/// Growth per second without throttles.
const GROWTH: f64 = 0.02;
/// Never pace slower than this.
const MIN_RATE: f64 = 1.0;

/// The limiters of every API seen so far.
#[derive(Debug, Default)]
pub struct Pacer {
    apis: Mutex<HashMap<String, Arc<Mutex<Limiter>>>>,
}

#[derive(Debug)]
struct Limiter {
    /// Calls per second, once the API has been throttled.
    rate: Option<f64>,
    /// When the next paced call may go.
    next: Instant,
    /// When `rate` last changed.
    changed: Instant,
    /// When this API answered, over the last [`WINDOW`].
    answered: VecDeque<Instant>,
    /// First call seen (the window is shorter than [`WINDOW`] before then + WINDOW).
    first: Instant,
}

impl Limiter {
    fn new(now: Instant) -> Self {
        Self {
            rate: None,
            next: now,
            changed: now,
            answered: VecDeque::new(),
            first: now,
        }
    }

    fn trim(&mut self, now: Instant) {
        while self
            .answered
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            self.answered.pop_front();
        }
    }

    /// Calls answered per second, recently.
    fn observed(&mut self, now: Instant) -> f64 {
        self.trim(now);
        let span = now
            .duration_since(self.first)
            .clamp(Duration::from_millis(100), WINDOW);
        self.answered.len() as f64 / span.as_secs_f64()
    }

    /// Reserves the next slot; returns how long to wait for it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        // Additive growth while not throttled.
        let grown = rate * (1.0 + GROWTH * now.duration_since(self.changed).as_secs_f64());
        let grown = grown.min(rate * 2.0);
        if grown > rate * 1.01 {
            self.rate = Some(grown);
            self.changed = now;
        }
        let rate = self.rate.unwrap_or(grown);
        let slot = self.next.max(now);
        self.next = slot + Duration::from_secs_f64(1.0 / rate);
        slot - now
    }

    fn on_answer(&mut self, now: Instant, throttled: bool) {
        if !throttled {
            self.answered.push_back(now);
            if self.answered.len() > 100_000 {
                self.trim(now);
            }
            return;
        }
        if self.rate.is_some() && now.duration_since(self.changed) < QUIET {
            return;
        }
        let observed = self.observed(now);
        let target = (observed * BACK_OFF).max(MIN_RATE);
        let rate = match self.rate {
            Some(r) => target.min(r * BACK_OFF).max(MIN_RATE),
            None => target,
        };
        tracing::debug!(rate, observed, "throttled: pacing this API");
        self.rate = Some(rate);
        self.changed = now;
    }
}

impl Pacer {
    fn limiter(&self, api: &str) -> Arc<Mutex<Limiter>> {
        let mut apis = self.apis.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = apis.get(api) {
            return l.clone();
        }
        let l = Arc::new(Mutex::new(Limiter::new(Instant::now())));
        apis.insert(api.to_owned(), l.clone());
        l
    }

    /// Waits until a call to `api` may be sent.
    pub async fn ready(&self, api: &str) {
        let wait = {
            let l = self.limiter(api);
            let mut l = l.lock().unwrap_or_else(|e| e.into_inner());
            l.reserve(Instant::now())
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Records one answer (attempt) of `api`.
    pub fn answered(&self, api: &str, throttled: bool) {
        let l = self.limiter(api);
        let mut l = l.lock().unwrap_or_else(|e| e.into_inner());
        l.on_answer(Instant::now(), throttled);
    }
}

/// How one failed attempt of an optional call was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Throttled: the API is fine, we are too fast.
    Throttled,
    /// A server error (5xx), a timeout or a dropped connection: may pass, may persist.
    Transient,
    /// Anything else (denied, not found, invalid): trying again gives the same answer.
    Permanent,
}

/// The retry policy of optional enrichment calls (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalRetry {
    /// Attempts in all while the API throttles (the bulk policy's count).
    pub throttled_attempts: u32,
    /// Attempts in all while the API fails with transient errors.
    pub transient_attempts: u32,
    /// No retry of a transient failure starts later than this after the first attempt.
    pub transient_budget: Duration,
    /// Backoff before the first retry; doubled for each further one, with full jitter.
    pub initial_backoff: Duration,
    /// Longest backoff between two attempts.
    pub max_backoff: Duration,
}

impl Default for OptionalRetry {
    fn default() -> Self {
        Self {
            throttled_attempts: 10,
            transient_attempts: 3,
            transient_budget: Duration::from_secs(2),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl OptionalRetry {
    /// After `attempts` attempts, the first sent `elapsed` ago and the last answered as
    /// `failure`: how long to wait before the next attempt, or `None` to give up. `jitter` is
    /// in `[0, 1]` (full jitter: the backoff is `jitter` times the exponential step).
    pub fn next_delay(
        &self,
        attempts: u32,
        elapsed: Duration,
        failure: Failure,
        jitter: f64,
    ) -> Option<Duration> {
        let step = self
            .initial_backoff
            .saturating_mul(1 << attempts.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let delay = step.mul_f64(jitter.clamp(0.0, 1.0));
        match failure {
            Failure::Permanent => None,
            Failure::Throttled => (attempts < self.throttled_attempts).then_some(delay),
            Failure::Transient => (attempts < self.transient_attempts
                && elapsed + delay < self.transient_budget)
                .then_some(delay),
        }
    }
}

/// A pseudo-random number in `[0, 1)` for backoff jitter (std's per-map random keys; no
/// dependency for something that only has to differ between callers).
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether an HTTP answer is a throttling error (status 429, or an AWS throttling error code
/// in the `x-amzn-ErrorType` header or the JSON/XML body).
pub fn is_throttling(status: u16, error_type_header: Option<&str>, body: Option<&[u8]>) -> bool {
    const CODES: [&str; 8] = [
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceeded",
        "SlowDown",
    ];
    if status == 429 {
        return true;
    }
    if status < 400 {
        return false;
    }
    if let Some(h) = error_type_header {
        let code = h.split(':').next().unwrap_or_default();
        return CODES.iter().any(|c| code.ends_with(c));
    }
    body.is_some_and(|b| {
        let text = String::from_utf8_lossy(&b[..b.len().min(512)]);
        CODES.iter().any(|c| text.contains(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaced_until_throttled_then_near_the_observed_rate() {
        let t0 = Instant::now();
        let mut l = Limiter::new(t0);
        assert_eq!(l.reserve(t0), Duration::ZERO);
        // 100 answers over the first second, then a throttle.
        for i in 0..100 {
            l.on_answer(t0 + Duration::from_millis(i * 10), false);
        }
        let t1 = t0 + Duration::from_secs(1);
        l.on_answer(t1, true);
        let rate = l.rate.expect("paced");
        assert!((85.0..=95.0).contains(&rate), "{rate}");
        // Slots are 1/rate apart.
        assert_eq!(l.reserve(t1), Duration::ZERO);
        let wait = l.reserve(t1);
        assert!(
            (wait.as_secs_f64() - 1.0 / rate).abs() < 1e-3,
            "{wait:?} {rate}"
        );
        // A throttle right after is ignored (sent at the old rate)...
        l.on_answer(t1 + Duration::from_millis(10), true);
        assert_eq!(l.rate, Some(rate));
        // ...one later lowers the rate again.
        l.on_answer(t1 + Duration::from_millis(500), true);
        assert!(l.rate.expect("paced") < rate);
    }

    #[test]
    fn grows_without_throttles() {
        let t0 = Instant::now();
        let mut l = Limiter::new(t0);
        l.on_answer(t0 + Duration::from_millis(200), true);
        assert_eq!(l.rate, Some(MIN_RATE));
        let before = l.rate.unwrap_or_default();
        l.reserve(t0 + Duration::from_secs(10));
        assert!(l.rate.unwrap_or_default() > before * 1.1, "{:?}", l.rate);
    }

    #[test]
    fn optional_calls_give_up_fast_on_transient_errors_and_wait_out_throttling() {
        let policy = OptionalRetry::default();
        let ms = Duration::from_millis;
        // Transient: three attempts at most, backoff doubling from 100 ms.
        assert_eq!(
            policy.next_delay(1, ms(5), Failure::Transient, 1.0),
            Some(ms(100))
        );
        assert_eq!(
            policy.next_delay(2, ms(120), Failure::Transient, 1.0),
            Some(ms(200))
        );
        assert_eq!(policy.next_delay(3, ms(400), Failure::Transient, 0.0), None);
        // ...and none that would start after the budget.
        assert_eq!(
            policy.next_delay(1, ms(1_950), Failure::Transient, 1.0),
            None
        );
        assert_eq!(
            policy.next_delay(1, ms(1_950), Failure::Transient, 0.2),
            Some(ms(20))
        );
        // The worst case of the whole policy stays within the budget: every retry starts
        // before it, and there are at most two.
        let mut elapsed = Duration::ZERO;
        let mut attempts = 1;
        while let Some(d) = policy.next_delay(attempts, elapsed, Failure::Transient, 1.0) {
            elapsed += d;
            attempts += 1;
        }
        assert_eq!(attempts, 3);
        assert!(elapsed < policy.transient_budget, "{elapsed:?}");
        // Throttled: ten attempts, whatever the time spent, backoff capped at 20 s.
        assert_eq!(
            policy.next_delay(9, Duration::from_secs(60), Failure::Throttled, 1.0),
            Some(ms(25_600).min(Duration::from_secs(20)))
        );
        assert_eq!(
            policy.next_delay(10, Duration::from_secs(60), Failure::Throttled, 1.0),
            None
        );
        // Permanent: never.
        assert_eq!(policy.next_delay(1, ms(0), Failure::Permanent, 1.0), None);
    }

    #[test]
    fn jitter_is_a_fraction() {
        let values: Vec<f64> = (0..100).map(|_| jitter()).collect();
        assert!(values.iter().all(|j| (0.0..1.0).contains(j)), "{values:?}");
        let first = values[0];
        assert!(values.iter().any(|j| *j != first), "{values:?}");
    }

    #[test]
    fn throttling_answers() {
        assert!(is_throttling(429, None, None));
        assert!(is_throttling(
            400,
            None,
            Some(br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#)
        ));
        assert!(is_throttling(
            400,
            Some("ThrottlingException:http://internal.amazon.com/"),
            None
        ));
        assert!(!is_throttling(
            400,
            None,
            Some(br#"{"__type":"ValidationException"}"#)
        ));
        assert!(!is_throttling(200, None, Some(b"ThrottlingException")));
    }
}
