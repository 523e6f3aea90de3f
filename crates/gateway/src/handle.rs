//! The gateway a server holds: swappable at run time, with API keys beyond `sagebridge.yaml`.
//!
//! `serve` adds and removes models from its admin API while requests are in flight, so the
//! routes do not hold a [`Gateway`] but a [`GatewayHandle`]: each request takes the current
//! gateway once (an `Arc` clone under a read lock held for nanoseconds) and keeps it to the end,
//! streams included; [`GatewayHandle::replace`] swaps in a gateway built from the new model list
//! and affects the next request only.
//!
//! API keys come from `server.apiKeys` (compared in constant time) and, when the server has a
//! key store ([`KeyStore`], the catalog's keys compared by hash), from there. A key from the
//! store may be limited to some models: the grant ([`KeyGrant`]) travels with the request, and
//! a call for another model is refused with 403 before any invocation.

use std::sync::{Arc, RwLock};

use crate::gateway::Gateway;
use crate::limits::Limiter;
use crate::usage::{KeyLimits, Usage};

/// What a presented API key allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyGrant {
    /// The key's name, under which its usage is counted (never the key itself).
    pub name: String,
    /// The models the key may call; `None` for every model.
    pub allowed_models: Option<Vec<String>>,
    /// Its requests and tokens per minute.
    pub limits: KeyLimits,
}

impl KeyGrant {
    /// A grant for every model without limits, counted under `name` (keys of
    /// `server.apiKeys`, admin sessions, callers of a gateway without keys).
    pub fn unrestricted(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Whether the key may call `model`.
    pub fn allows(&self, model: &str) -> bool {
        self.allowed_models
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == model))
    }
}

/// API keys kept outside `sagebridge.yaml`.
pub trait KeyStore: Send + Sync + 'static {
    /// Whether the store holds any key (then every request needs one).
    fn has_keys(&self) -> bool;
    /// The grant of `presented` when it is a live key of the store.
    fn check(&self, presented: &str) -> Option<KeyGrant>;
}

/// Put into a request's extensions by the embedding server when it has already authorized the
/// caller (a signed-in admin session using the playground): no API key is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreAuthorized;

/// The current gateway and the extra key store.
pub struct GatewayHandle {
    current: RwLock<Arc<Gateway>>,
    keys: Option<Arc<dyn KeyStore>>,
    /// Invocations in flight, kept across swaps (sized by the first gateway's `server:`).
    limiter: Limiter,
    /// Usage per key and model and the keys' limit windows, kept across swaps.
    usage: Arc<Usage>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("models", &self.current().models().len())
            .field("key_store", &self.keys.is_some())
            .finish()
    }
}

impl GatewayHandle {
    /// A handle on `gateway` with the keys of its config only.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        let l = gateway.limits();
        let limiter = Limiter::new(
            l.max_concurrent_requests,
            l.max_concurrent_requests_per_model,
        );
        Self {
            current: RwLock::new(gateway),
            keys: None,
            limiter,
            usage: Arc::default(),
        }
    }

    /// Usage per key and model (for `/metrics` and the catalog's daily aggregates).
    pub fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    /// `/metrics`: the current gateway's metrics, then the per-key usage.
    pub fn metrics_text(&self) -> String {
        let mut text = self.current().metrics_text();
        self.usage.render(&mut text);
        text
    }

    /// The concurrency limiter of `/v1`.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// A shared handle on `gateway`, for routers.
    pub fn shared(gateway: Arc<Gateway>) -> Arc<Self> {
        Arc::new(Self::new(gateway))
    }

    /// Adds a key store checked after `server.apiKeys`.
    pub fn with_key_store(mut self, keys: Arc<dyn KeyStore>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The gateway requests use now.
    pub fn current(&self) -> Arc<Gateway> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Swaps in `gateway` for the next requests; requests in flight finish on the old one. A
    /// gateway not shared yet takes over the metrics of the old one (same model names), so a
    /// model change does not reset `/metrics`.
    pub fn replace(&self, mut gateway: Arc<Gateway>) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if let Some(fresh) = Arc::get_mut(&mut gateway) {
            fresh.metrics.carry_over(&current.metrics);
        }
        *current = gateway;
    }

    /// Whether requests need an API key: the config has keys or the store does.
    pub fn auth_required(&self) -> bool {
        self.current().auth_required() || self.keys.as_ref().is_some_and(|k| k.has_keys())
    }

    /// The grant of `presented`: a key of the config (every model, named `file-key-N` after
    /// its place in `server.apiKeys`), else one of the store.
    pub fn authorize(&self, presented: &str) -> Option<KeyGrant> {
        if let Some(i) = self.current().key_index(presented) {
            return Some(KeyGrant::unrestricted(format!("file-key-{}", i + 1)));
        }
        self.keys.as_ref().and_then(|k| k.check(presented))
    }
}
