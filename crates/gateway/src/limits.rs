//! Limits that keep one client, one model or one huge request from taking the whole process:
//! the concurrency limiter of `/v1` (global and per model, answered 503 with `Retry-After`
//! when full) and the per-request limits read from `server:` ([`Limits`]).
//!
//! The [`Limiter`] lives in the [`crate::GatewayHandle`], not in a [`crate::Gateway`], so its
//! counts survive a gateway swap: requests in flight on the old gateway still hold their
//! permits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{seconds, ServerConfig};
use crate::error::GatewayError;

/// What `Retry-After` says when the gateway is full.
pub const RETRY_AFTER_OVERLOADED: u64 = 1;

/// The per-request limits of `server:`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub heartbeat: Duration,
    pub max_stream: Duration,
    pub max_stream_line_bytes: usize,
    pub max_embedding_inputs: usize,
    pub max_embedding_input_bytes: usize,
    pub max_concurrent_requests: usize,
    pub max_concurrent_requests_per_model: usize,
    /// server.bodyReadTimeoutSeconds, for the 408 message (the server enforces it).
    pub body_read_timeout: Duration,
}

impl Limits {
    pub fn from_config(s: &ServerConfig) -> Self {
        Self {
            heartbeat: seconds(s.heartbeat_seconds),
            max_stream: seconds(s.max_stream_seconds),
            max_stream_line_bytes: s.max_stream_line_bytes.max(1),
            max_embedding_inputs: s.max_embedding_inputs.max(1),
            max_embedding_input_bytes: s.max_embedding_input_bytes.max(1),
            max_concurrent_requests: s.max_concurrent_requests.max(1),
            max_concurrent_requests_per_model: s.max_concurrent_requests_per_model.max(1),
            body_read_timeout: seconds(s.body_read_timeout_seconds),
        }
    }
}

/// Counts invocations in flight, in all and per model.
#[derive(Debug)]
pub struct Limiter {
    global: Arc<Semaphore>,
    global_max: usize,
    per_model_max: usize,
    per_model: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// One invocation's place: held until its answer (or its stream) ends.
#[derive(Debug)]
pub struct Permit {
    _global: OwnedSemaphorePermit,
    _model: OwnedSemaphorePermit,
}

impl Limiter {
    pub fn new(global_max: usize, per_model_max: usize) -> Self {
        let global_max = global_max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            global: Arc::new(Semaphore::new(global_max)),
            global_max,
            per_model_max: per_model_max.clamp(1, Semaphore::MAX_PERMITS),
            per_model: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one invocation of `model`, or 503 `overloaded` without waiting.
    pub fn try_acquire(&self, model: &str) -> Result<Permit, GatewayError> {
        let model_sem = {
            let mut map = self.per_model.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                map.entry(model.to_owned())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.per_model_max))),
            )
        };
        let model_permit = model_sem.try_acquire_owned().map_err(|_| GatewayError::Overloaded {
            message: format!(
                "model `{model}` already has {} requests in flight (server.maxConcurrentRequestsPerModel); retry shortly",
                self.per_model_max
            ),
            retry_after: RETRY_AFTER_OVERLOADED,
        })?;
        let global_permit =
            Arc::clone(&self.global)
                .try_acquire_owned()
                .map_err(|_| GatewayError::Overloaded {
                    message: format!(
                        "the gateway already has {} requests in flight (server.maxConcurrentRequests); retry shortly",
                        self.global_max
                    ),
                    retry_after: RETRY_AFTER_OVERLOADED,
                })?;
        Ok(Permit {
            _global: global_permit,
            _model: model_permit,
        })
    }

    /// Invocations in flight now.
    pub fn in_flight(&self) -> usize {
        self.global_max - self.global.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_and_per_model_limits() {
        let l = Limiter::new(3, 2);
        let a1 = l.try_acquire("a").unwrap();
        let _a2 = l.try_acquire("a").unwrap();
        let e = l.try_acquire("a").unwrap_err();
        assert_eq!(e.code(), "overloaded");
        assert!(
            e.to_string().contains("maxConcurrentRequestsPerModel"),
            "{e}"
        );
        let _b1 = l.try_acquire("b").unwrap();
        let e = l.try_acquire("b").unwrap_err();
        assert!(
            e.to_string().contains("server.maxConcurrentRequests)"),
            "{e}"
        );
        assert_eq!(l.in_flight(), 3);
        drop(a1);
        assert_eq!(l.in_flight(), 2);
        let _b2 = l.try_acquire("b").unwrap();
    }
}
