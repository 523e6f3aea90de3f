//! Models that scale to zero: requests held while an inference component has no copies.
//!
//! An inference component scaled to zero refuses invocations until SageMaker has started a
//! copy, which takes minutes (the refused invocation itself is what makes SageMaker's scaling
//! alarm start one). A model with `coldStartWaitSeconds` holds its requests that long instead
//! of answering 503 at once. One probe per model ([`ColdStarts::waiter`]) asks the control
//! plane how many copies run (DescribeInferenceComponent, every `poll`); every request of the
//! model waits on that one probe, and a request that arrives while the probe runs does not
//! invoke at all. When a copy runs, all of them go; when their wait is over first, each gets
//! the 503 with `Retry-After`. So a cold model costs one refused invocation per burst and one
//! describe call per poll, however many requests wait: no herd of retries.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::GatewayError;
use crate::gateway::{Gateway, Model};
use crate::invoker::RETRY_AFTER_NO_CAPACITY;

/// How often a probe asks for the copy count by default.
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);
/// The most turns a held request takes (probes that gave up and were started again); each
/// turn also ends at the request's deadline.
const MAX_TURNS: usize = 64;

/// What a probe has found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Waiting,
    /// A copy runs: invoke.
    Ready,
    /// The probe stopped (its time was up, or nobody waited any more).
    GaveUp,
}

/// The running probes, by model name. The map holds each probe's sender, so a probe sees when
/// the last request waiting on it went away.
#[derive(Debug, Default)]
pub struct ColdStarts {
    probes: Mutex<HashMap<String, Arc<watch::Sender<Probe>>>>,
}

impl ColdStarts {
    /// Whether a probe waits for a copy of `model` (the model is known to be cold).
    fn is_cold(&self, model: &str) -> bool {
        let probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        probes
            .get(model)
            .is_some_and(|tx| *tx.borrow() == Probe::Waiting)
    }

    /// A receiver of the probe of `model`, started if none runs. The probe lives at most
    /// `model`'s `coldStartWaitSeconds` (no request waits longer) and stops early when no
    /// request waits any more.
    fn waiter(&self, gw: &Arc<Gateway>, model: &Arc<Model>) -> watch::Receiver<Probe> {
        let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = probes
            .get(&model.name)
            .filter(|tx| *tx.borrow() == Probe::Waiting)
        {
            return tx.subscribe();
        }
        let tx = Arc::new(watch::Sender::new(Probe::Waiting));
        let rx = tx.subscribe();
        probes.insert(model.name.clone(), tx.clone());
        tokio::spawn(probe(gw.clone(), model.clone(), tx));
        rx
    }

    /// Forgets the probe of `model` once it has ended.
    fn remove(&self, model: &str) {
        let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        if probes
            .get(model)
            .is_some_and(|tx| *tx.borrow() != Probe::Waiting)
        {
            probes.remove(model);
        }
    }

    /// How many requests wait on the probe of `model`.
    pub fn waiting(&self, model: &str) -> usize {
        let probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        probes.get(model).map_or(0, |tx| tx.receiver_count())
    }

    /// How many probes run (for tests and metrics).
    pub fn running(&self) -> usize {
        let probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        probes
            .values()
            .filter(|tx| *tx.borrow() == Probe::Waiting)
            .count()
    }
}

/// Asks for the copy count every poll until a copy runs, the model's wait is over, or nobody
/// waits.
async fn probe(gw: Arc<Gateway>, model: Arc<Model>, tx: Arc<watch::Sender<Probe>>) {
    let end = Instant::now() + model.cold_start_wait;
    let poll = gw.cold_start_poll;
    tracing::info!(model = %model.name, "inference component has no copies; waiting for one");
    let mut outcome = Probe::GaveUp;
    // Bounded by time (the model's wait) and so by count (wait / poll turns).
    while Instant::now() < end {
        tokio::select! {
            _ = tokio::time::sleep_until((Instant::now() + poll).min(end)) => {}
            _ = tx.closed() => break,
        }
        let copies = gw.invoker.copies(&model.target).await;
        tracing::debug!(model = %model.name, ?copies, "cold-start probe");
        if copies.is_some_and(|c| c > 0) {
            tracing::info!(model = %model.name, "a copy runs; held requests go");
            outcome = Probe::Ready;
            break;
        }
    }
    // `send_replace`: the state is kept even when nobody listens any more.
    tx.send_replace(outcome);
    gw.cold_starts.remove(&model.name);
}

/// The 503 of a model whose wait is over (or who has none).
fn no_capacity(model: &Model, waited: bool) -> GatewayError {
    GatewayError::NoCapacity {
        model: model.name.clone(),
        component: model.target.inference_component.clone().unwrap_or_default(),
        waited,
        retry_after: RETRY_AFTER_NO_CAPACITY,
    }
}

/// Waits on `rx` until the probe ends or `deadline`; whether a copy runs.
async fn wait_ready(mut rx: watch::Receiver<Probe>, deadline: Instant) -> Option<bool> {
    let result = tokio::time::timeout_at(deadline, rx.wait_for(|p| *p != Probe::Waiting)).await;
    match result {
        Ok(Ok(p)) => Some(*p == Probe::Ready),
        // The probe's sender went away without a word: as if it gave up.
        Ok(Err(_)) => Some(false),
        Err(_) => None,
    }
}

impl Gateway {
    /// Runs `call` (one invocation of `model`), holding it while the model's inference
    /// component has no copies, up to the model's `coldStartWaitSeconds` from `started`.
    pub(crate) async fn invoke_warm<T, F, Fut>(
        self: &Arc<Self>,
        model: &Arc<Model>,
        started: Instant,
        call: F,
    ) -> Result<T, GatewayError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        if model.cold_start_wait.is_zero() {
            return call().await;
        }
        let deadline = started + model.cold_start_wait;
        // A probe already waits for this model: join it rather than invoke.
        let mut known_cold = self.cold_starts.is_cold(&model.name);
        for _ in 0..MAX_TURNS {
            if !known_cold {
                match call().await {
                    Err(GatewayError::NoCapacity { .. }) => {}
                    other => return other,
                }
            }
            let rx = self.cold_starts.waiter(self, model);
            match wait_ready(rx, deadline).await {
                None => return Err(no_capacity(model, true)),
                Some(true) => return call().await,
                // The probe ended without a copy while this request may still wait: try
                // again (and start a new probe if the model is still cold).
                Some(false) => known_cold = false,
            }
            if Instant::now() >= deadline {
                return Err(no_capacity(model, true));
            }
        }
        Err(no_capacity(model, true))
    }
}
