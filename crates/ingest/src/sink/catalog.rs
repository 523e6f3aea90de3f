//! The `catalog` sink: the embedded catalog (SQLite by default, any [`Catalog`]).
//!
//! The catalog's API is blocking (one SQLite connection behind a mutex); every call goes
//! through `spawn_blocking` here so the run's async tasks never block on disk.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt as _;
use sagebridge_catalog::{
    Catalog, IngestionRun, KnownModel, ListQuery, MlModelService, ModelWrite, SqliteCatalog,
};

use super::{Sink, SinkContext, SinkError, Written};
use crate::config::CatalogSinkConfig;
use crate::facts::ModelFacts;
use crate::mapping::ServiceRef;

/// Writes a run into a catalog.
pub struct CatalogSink {
    catalog: Arc<dyn Catalog>,
    /// Where the catalog is, for the health check's sentence.
    location: String,
    service: MlModelService,
}

impl std::fmt::Debug for CatalogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogSink")
            .field("location", &self.location)
            .field("service", &self.service.name)
            .finish_non_exhaustive()
    }
}

impl CatalogSink {
    /// Opens (creating if needed) the SQLite catalog of `config.path`, or `ctx.catalog_path`.
    pub async fn open(cfg: &CatalogSinkConfig, ctx: &SinkContext) -> Result<Self, SinkError> {
        let path = ctx.catalog_path.clone().unwrap_or_else(|| cfg.path());
        let location = path.display().to_string();
        let catalog = tokio::task::spawn_blocking(move || SqliteCatalog::open(path)).await??;
        Ok(Self::with_location(Arc::new(catalog), location, ctx))
    }

    /// A sink writing into a catalog already open.
    pub fn new(catalog: Arc<dyn Catalog>, ctx: &SinkContext) -> Self {
        Self::with_location(catalog, "the given catalog".into(), ctx)
    }

    fn with_location(catalog: Arc<dyn Catalog>, location: String, ctx: &SinkContext) -> Self {
        let connection = serde_json::json!({"config": {
            "type": "SageMaker",
            // Secrets serialize as a redaction marker: nothing secret reaches the catalog.
            "awsConfig": ctx.aws,
        }});
        Self {
            catalog,
            location,
            service: MlModelService {
                name: ctx.service.clone(),
                connection: Some(connection),
                ..Default::default()
            },
        }
    }

    /// Runs one blocking catalog call off the async threads.
    async fn blocking<T, F>(&self, f: F) -> Result<T, SinkError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Catalog) -> Result<T, sagebridge_catalog::CatalogError> + Send + 'static,
    {
        let catalog = self.catalog.clone();
        Ok(tokio::task::spawn_blocking(move || f(catalog.as_ref())).await??)
    }
}

/// A run lock not touched for this long belongs to a run that died (a run touches it at every
/// batch, at least every few seconds); migrations use the same window.
const LOCK_STALE_AFTER_MS: i64 = sagebridge_catalog::INGESTION_LOCK_STALE_AFTER_MS;

/// This host's name (Linux), to tell locks of this host's processes from others'.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// Who holds a run lock: `pid N on HOST`.
fn lock_holder() -> String {
    let pid = std::process::id();
    match host_name() {
        Some(host) => format!("pid {pid} on {host}"),
        None => format!("pid {pid}"),
    }
}

/// Whether the holder of a lock is a process of this host that no longer exists (killed with
/// `kill -9`, or the machine's `serve` restarted): its lock need not wait to go stale. Anything
/// this cannot decide (another host, no `/proc`) counts as alive.
pub(crate) fn holder_gone(holder: &str) -> bool {
    let Some(rest) = holder.strip_prefix("pid ") else {
        return false;
    };
    let Some((pid, host)) = rest.split_once(" on ") else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if host_name().as_deref() != Some(host) || !std::path::Path::new("/proc/self").exists() {
        return false;
    }
    pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

use sagebridge_aws::clock::now_millis;

impl Sink for CatalogSink {
    fn healthcheck(&self) -> BoxFuture<'_, Result<String, SinkError>> {
        async move {
            let query = ListQuery {
                service: Some(self.service.name.clone()),
                ..Default::default()
            };
            let n = self.blocking(move |c| c.count_models(&query)).await?;
            Ok(format!(
                "catalog at {}; service {} has {n} model(s)",
                self.location, self.service.name
            ))
        }
        .boxed()
    }

    fn open_service(&self) -> BoxFuture<'_, Result<ServiceRef, SinkError>> {
        async move {
            let service = self.service.clone();
            let stored = self.blocking(move |c| c.upsert_service(&service)).await?;
            Ok(ServiceRef {
                id: stored.id,
                name: stored.name,
            })
        }
        .boxed()
    }

    fn known_models(&self) -> BoxFuture<'_, Result<HashMap<String, KnownModel>, SinkError>> {
        let service = self.service.name.clone();
        async move { self.blocking(move |c| c.known_models(&service)).await }.boxed()
    }

    fn stored_facts(&self, name: String) -> BoxFuture<'_, Option<ModelFacts>> {
        let service = self.service.name.clone();
        async move {
            let text = self
                .blocking(move |c| c.stored_facts(&service, &name))
                .await
                .ok()??;
            serde_json::from_str(&text).ok()
        }
        .boxed()
    }

    fn keeps_facts(&self) -> bool {
        true
    }

    fn write(&self, batch: Vec<ModelWrite>) -> BoxFuture<'_, Result<Written, SinkError>> {
        async move {
            let outcome = self.blocking(move |c| c.write_models(&batch)).await?;
            Ok(Written {
                outcome,
                rejected: Vec::new(),
                incomplete: false,
            })
        }
        .boxed()
    }

    fn mark_deleted(&self, seen: HashSet<String>) -> BoxFuture<'_, Result<usize, SinkError>> {
        let service = self.service.name.clone();
        async move {
            let deleted = self
                .blocking(move |c| c.mark_deleted(&service, &seen))
                .await?;
            Ok(deleted.len())
        }
        .boxed()
    }

    fn record_run(&self, run: IngestionRun) -> BoxFuture<'_, Result<(), SinkError>> {
        async move { self.blocking(move |c| c.record_run(&run)).await }.boxed()
    }

    fn lock(&self, run_id: String) -> BoxFuture<'_, Result<(), SinkError>> {
        let service = self.service.name.clone();
        let holder = lock_holder();
        async move {
            self.blocking(move |c| {
                c.lock_service(
                    &service,
                    &run_id,
                    &holder,
                    now_millis(),
                    LOCK_STALE_AFTER_MS,
                    &holder_gone,
                )
            })
            .await
        }
        .boxed()
    }

    fn touch_lock(&self, run_id: String) -> BoxFuture<'_, Result<(), SinkError>> {
        let service = self.service.name.clone();
        async move {
            self.blocking(move |c| c.touch_service_lock(&service, &run_id, now_millis()))
                .await
        }
        .boxed()
    }

    fn unlock(&self, run_id: String) -> BoxFuture<'_, Result<(), SinkError>> {
        let service = self.service.name.clone();
        async move {
            self.blocking(move |c| c.unlock_service(&service, &run_id))
                .await
        }
        .boxed()
    }
}
