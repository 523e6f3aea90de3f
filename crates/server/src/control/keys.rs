//! The catalog's gateway API keys, as the gateway checks them on every `/v1` request.
//!
//! The keys are read into memory (digest -> entry) at start and after each change made through
//! the admin API, so a request costs one SHA-256 and one map lookup, no database read. A
//! presented key is looked up by its digest: nothing depends on how much of a stored key it
//! shares. Use is recorded in the catalog in the background, at most once a minute per key (the
//! store's own rule).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sagebridge_catalog::{hash_api_key, ApiKeyEntry, ControlStore, SqliteCatalog};
use sagebridge_gateway::{KeyGrant, KeyLimits, KeyStore};

/// The catalog's keys by digest.
pub struct CatalogKeys {
    by_hash: RwLock<HashMap<String, ApiKeyEntry>>,
    catalog: Arc<SqliteCatalog>,
}

impl CatalogKeys {
    /// Reads every key of `catalog`.
    pub fn load(catalog: &Arc<SqliteCatalog>) -> anyhow::Result<Self> {
        let keys = Self {
            by_hash: RwLock::new(HashMap::new()),
            catalog: Arc::clone(catalog),
        };
        keys.reload(catalog)?;
        Ok(keys)
    }

    /// Reads the keys again (after a create or a delete).
    pub fn reload(&self, catalog: &SqliteCatalog) -> anyhow::Result<()> {
        let fresh: HashMap<String, ApiKeyEntry> = catalog
            .api_keys()?
            .into_iter()
            .map(|k| (k.key_hash.clone(), k))
            .collect();
        *self.by_hash.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

impl KeyStore for CatalogKeys {
    fn has_keys(&self) -> bool {
        !self
            .by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    fn check(&self, presented: &str) -> Option<KeyGrant> {
        let digest = hash_api_key(presented);
        let entry = self
            .by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            .cloned()?;
        let now = sagebridge_aws::clock::now_millis();
        if entry.is_expired(now) {
            return None;
        }
        let catalog = Arc::clone(&self.catalog);
        // Recording the use is bookkeeping: it must not hold the request up, and its failure
        // only loses a `lastUsedAt`.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn_blocking(move || {
                if let Err(e) = catalog.use_api_key(&digest, now) {
                    tracing::debug!(error = %e, "could not record an API key's use");
                }
            });
        }
        Some(KeyGrant {
            name: entry.name,
            allowed_models: entry.allowed_models,
            limits: KeyLimits {
                requests_per_minute: entry.requests_per_minute,
                tokens_per_minute: entry.tokens_per_minute,
            },
        })
    }
}
