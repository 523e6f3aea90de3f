//! The control plane `serve` runs beside its routes: ingestion runs started from the admin API
//! or a schedule, the gateway's models from the catalog (applied without a restart), and the
//! gateway API keys stored in the catalog.
//!
//! # Layout
//! - [`ControlPlane`]: the shared state; [`ControlPlane::start`] marks runs a crash left
//!   `running` as interrupted and starts the scheduler, [`ControlPlane::shutdown`] tells running
//!   ingestions to stop at their next batch boundary and waits for them to record it.
//! - `runs`: one ingestion run of a pipeline, from the stored service and pipeline to the
//!   recorded report, with live progress and log lines.
//! - `scheduler`: fires each scheduled pipeline at its cron times (UTC); a fire time that comes
//!   while the pipeline still runs is recorded as `skipped`.
//! - `models`: the gateway rebuilt from `sagebridge.yaml` plus the catalog's models.
//! - `keys`: the catalog's API keys, cached in memory and compared by SHA-256 digest.
//! - usage: [`ControlPlane::flush_usage`] adds the gateway's usage per key and model to the
//!   catalog's daily aggregates, every few seconds in the background and at shutdown (never on
//!   a request's path).

mod keys;
mod models;
mod runs;
mod scheduler;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sagebridge_catalog::{ControlStore, SqliteCatalog, UsageRecord};
use sagebridge_gateway::{Gateway, GatewayConfig, GatewayHandle};
use sagebridge_ingest::shutdown::{self, Shutdown, ShutdownTrigger};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinSet;

pub use keys::CatalogKeys;
pub use models::{parse_model_spec, ModelSpecError};
pub use scheduler::{system_clock, Clock};

/// How long [`ControlPlane::shutdown`] waits for running ingestions to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How often the gateway's usage is written to the catalog (and once more at shutdown).
const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Shared by the admin routes, the scheduler and `serve`.
pub struct ControlPlane {
    pub(crate) catalog: Arc<SqliteCatalog>,
    pub(crate) gateway: Arc<GatewayHandle>,
    /// `sagebridge.yaml` as loaded: its models are read-only, its `awsConfig` the default.
    pub(crate) base: GatewayConfig,
    keys: Arc<CatalogKeys>,
    /// Tells running ingestions to stop at their next batch boundary.
    stop_runs: ShutdownTrigger,
    /// Running ingestion tasks.
    tasks: Mutex<JoinSet<()>>,
    /// Pinged when a pipeline's schedule may have changed.
    pub(crate) schedules_changed: Notify,
    /// The last check of each gateway model (by name), as answered by the check route.
    pub(crate) last_checks: Mutex<HashMap<String, Value>>,
    clock: Clock,
    /// Held while usage is written, so a reader that flushes first sees every earlier batch.
    usage_flush: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("catalog", &self.catalog.path())
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Builds the gateway from `base` and the catalog's models, with the catalog's API keys.
    /// A catalog model that no longer builds (its service was changed, say) is left out with a
    /// warning rather than stopping `serve`.
    pub fn new(
        catalog: Arc<SqliteCatalog>,
        base: GatewayConfig,
        clock: Clock,
    ) -> anyhow::Result<Arc<Self>> {
        let keys = Arc::new(CatalogKeys::load(&catalog)?);
        let gateway = models::build_gateway(&catalog, &base)?;
        let handle = GatewayHandle::new(Arc::new(gateway))
            .with_key_store(Arc::clone(&keys) as Arc<dyn sagebridge_gateway::KeyStore>);
        let (stop_runs, _) = shutdown::channel();
        Ok(Arc::new(Self {
            catalog,
            gateway: Arc::new(handle),
            base,
            keys,
            stop_runs,
            tasks: Mutex::new(JoinSet::new()),
            schedules_changed: Notify::new(),
            last_checks: Mutex::new(HashMap::new()),
            clock,
            usage_flush: tokio::sync::Mutex::new(()),
        }))
    }

    /// The gateway the routes serve.
    pub fn gateway(&self) -> Arc<GatewayHandle> {
        Arc::clone(&self.gateway)
    }

    /// The catalog.
    pub fn catalog(&self) -> Arc<SqliteCatalog> {
        Arc::clone(&self.catalog)
    }

    /// Endpoint names the models of `sagebridge.yaml` serve.
    pub(crate) fn file_endpoints(&self) -> BTreeSet<String> {
        self.base
            .models
            .iter()
            .map(|m| m.endpoint_name.clone())
            .collect()
    }

    /// Whether `name` is a model of `sagebridge.yaml` (read-only).
    pub(crate) fn is_file_model(&self, name: &str) -> bool {
        self.base.models.iter().any(|m| m.name == name)
    }

    /// Marks the runs a crash left queued or running as interrupted, then starts the scheduler
    /// until `shutdown` fires.
    pub fn start(self: &Arc<Self>, shutdown: Shutdown) -> anyhow::Result<()> {
        let interrupted = self.catalog.mark_running_as_interrupted()?;
        if !interrupted.is_empty() {
            tracing::warn!(
                runs = interrupted.len(),
                "runs left running by the last process were marked interrupted"
            );
        }
        let me = Arc::clone(self);
        let signal = shutdown.clone();
        tokio::spawn(async move { scheduler::run(me, signal).await });
        let me = Arc::clone(self);
        tokio::spawn(async move { me.flush_usage_until(shutdown).await });
        Ok(())
    }

    /// Writes the gateway's usage to the catalog every [`USAGE_FLUSH_EVERY`] until `shutdown`
    /// fires ([`ControlPlane::shutdown`] writes the rest).
    async fn flush_usage_until(&self, mut shutdown: Shutdown) {
        // Bounded by the shutdown signal; each turn waits USAGE_FLUSH_EVERY.
        loop {
            tokio::select! {
                _ = tokio::time::sleep(USAGE_FLUSH_EVERY) => {}
                _ = shutdown.recv() => return,
            }
            if let Err(e) = self.flush_usage().await {
                tracing::warn!(error = %format!("{e:#}"), "could not write the gateway's usage to the catalog; it is kept and retried");
            }
        }
    }

    /// Adds the usage the gateway counted since the last write to the catalog's daily
    /// aggregates, in one transaction; on failure it is kept for the next write.
    pub async fn flush_usage(&self) -> anyhow::Result<()> {
        let _held = self.usage_flush.lock().await;
        let usage = Arc::clone(self.gateway.usage());
        let deltas = usage.take_pending();
        if deltas.is_empty() {
            return Ok(());
        }
        let records: Vec<UsageRecord> = deltas
            .iter()
            .map(|d| UsageRecord {
                day: d.day.clone(),
                key: d.key.clone(),
                model: d.model.clone(),
                requests: d.requests,
                prompt_tokens: d.prompt_tokens,
                completion_tokens: d.completion_tokens,
                latency_ms: d.latency_ms,
                errors: d.errors.clone(),
            })
            .collect();
        let catalog = Arc::clone(&self.catalog);
        let written = tokio::task::spawn_blocking(move || catalog.add_usage(&records)).await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                usage.restore_pending(deltas);
                Err(e.into())
            }
            Err(e) => {
                usage.restore_pending(deltas);
                Err(anyhow::anyhow!("the usage write task failed: {e}"))
            }
        }
    }

    /// Tells running ingestions to stop at their next batch boundary (without waiting).
    pub fn stop_runs(&self) {
        self.stop_runs.trigger();
    }

    /// Tells running ingestions to stop at their next batch boundary and waits (at most 30 s)
    /// until they have recorded it.
    pub async fn shutdown(&self) {
        self.stop_runs.trigger();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("ingestion runs did not stop within 30 s; they stay marked running and are marked interrupted at the next start");
        }
        if let Err(e) = self.flush_usage().await {
            tracing::warn!(error = %format!("{e:#}"), "the gateway's last usage could not be written to the catalog");
        }
    }

    /// Rebuilds the gateway from `sagebridge.yaml` and the catalog and swaps it in.
    pub(crate) fn reload_gateway(&self) -> anyhow::Result<()> {
        let gateway = models::build_gateway(&self.catalog, &self.base)?;
        self.gateway.replace(Arc::new(gateway));
        Ok(())
    }

    /// Reloads the API keys after a change.
    pub(crate) fn reload_keys(&self) -> anyhow::Result<()> {
        self.keys.reload(&self.catalog)
    }

    /// Epoch seconds now (the scheduler's clock).
    pub(crate) fn now_secs(&self) -> i64 {
        (self.clock)()
    }

    fn spawn_run(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Reap finished runs so the set does not grow with every run.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    fn run_shutdown(&self) -> Shutdown {
        self.stop_runs.subscribe()
    }
}

/// Builds a gateway from a config, with the process's default client options.
pub(crate) fn gateway_from(cfg: &GatewayConfig) -> anyhow::Result<Gateway> {
    Gateway::new(cfg).map_err(|e| anyhow::anyhow!("{e}"))
}
