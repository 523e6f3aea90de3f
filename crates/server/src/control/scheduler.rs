//! Fires each enabled pipeline with a schedule at its cron times (croner, UTC).
//!
//! One task for every pipeline: it reads the scheduled pipelines, sleeps until the earliest
//! next fire time and starts the pipelines due then. A pipeline that is still running at its
//! fire time gets a `skipped` run instead (runs of one pipeline never overlap). A change made
//! through the admin API wakes the task to read the pipelines again; a fire time is never
//! fired twice (each pipeline's last fire time is kept). It stops on `serve`'s shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use sagebridge_catalog::{ControlStore, RunTrigger};
use sagebridge_ingest::schedule::{rfc3339, Cron};
use sagebridge_ingest::shutdown::Shutdown;

use super::ControlPlane;

/// Reads the wall clock in epoch seconds: the system clock in `serve`, a paused tokio clock in
/// tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(sagebridge_aws::clock::now_secs)
}

/// A scheduled pipeline.
struct Scheduled {
    id: String,
    name: String,
    cron: Cron,
}

async fn scheduled(cp: &ControlPlane) -> Vec<Scheduled> {
    let catalog = cp.catalog();
    let listed = tokio::task::spawn_blocking(move || catalog.pipelines(None)).await;
    let pipelines = match listed {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "scheduler: cannot read the pipelines");
            return Vec::new();
        }
        Err(e) => {
            tracing::error!(error = %e, "scheduler: the catalog task failed");
            return Vec::new();
        }
    };
    pipelines
        .into_iter()
        .filter(|p| p.enabled)
        .filter_map(|p| {
            let text = p.schedule.as_deref()?;
            match Cron::parse(text) {
                Ok(cron) => Some(Scheduled {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    cron,
                }),
                Err(e) => {
                    tracing::warn!(pipeline = %p.name, error = %e, "scheduler: the pipeline's schedule is not valid; it is not run");
                    None
                }
            }
        })
        .collect()
}

/// The scheduler loop (see the module docs).
pub(crate) async fn run(cp: Arc<ControlPlane>, mut shutdown: Shutdown) {
    let mut last_fire: HashMap<String, i64> = HashMap::new();
    while !shutdown.is_shutdown() {
        let pipelines = scheduled(&cp).await;
        let now = cp.now_secs();
        let due: Vec<(&Scheduled, i64)> = pipelines
            .iter()
            .filter_map(|p| {
                let from = last_fire.get(&p.id).copied().unwrap_or(now).max(now);
                p.cron.next_after(from).map(|t| (p, t))
            })
            .collect();
        let earliest = due.iter().map(|(_, t)| *t).min();
        let wait = earliest.map(|t| Duration::from_secs(u64::try_from(t - now).unwrap_or(0)));
        if let Some(t) = earliest {
            tracing::debug!(next = %rfc3339(t), pipelines = pipelines.len(), "scheduler: next fire time");
        }
        tokio::select! {
            () = sleep_or_forever(wait) => {}
            () = cp.schedules_changed.notified() => continue,
            () = shutdown.recv() => return,
        }
        let now = cp.now_secs();
        for (p, t) in due.iter().filter(|(_, t)| *t <= now) {
            last_fire.insert(p.id.clone(), *t);
            fire(&cp, p, *t).await;
        }
    }
}

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Starts `p`, or records a skipped run when it is still running.
async fn fire(cp: &Arc<ControlPlane>, p: &Scheduled, at: i64) {
    match cp.trigger(&p.id, RunTrigger::Schedule).await {
        Ok(run) => {
            tracing::info!(pipeline = %p.name, run = %run.run.id, fire_time = %rfc3339(at), "scheduled run started")
        }
        Err(e) if e.status == StatusCode::CONFLICT => {
            tracing::warn!(pipeline = %p.name, fire_time = %rfc3339(at), "the previous run is still going: this fire time is skipped");
            if let Err(e) = cp.record_skipped(&p.id).await {
                tracing::error!(pipeline = %p.name, error = %e.message, "could not record a skipped run");
            }
        }
        Err(e) => {
            tracing::error!(pipeline = %p.name, error = %e.message, "a scheduled run could not start")
        }
    }
}
