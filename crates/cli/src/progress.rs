//! Ingestion progress: a bar on a terminal, a log line every few seconds otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sagebridge_ingest::runner::{Progress, ProgressHook};

/// How often the plain (non-terminal) output says where the run is.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The hook to pass to the run, and the bar to clear once it is over (on a terminal).
pub(crate) fn hook() -> (ProgressHook, Option<ProgressBar>) {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} models ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message("listing");
        bar.enable_steady_tick(Duration::from_millis(120));
        let b = bar.clone();
        let hook = ProgressHook(Arc::new(move |p| match p {
            Progress::Listed(n) => {
                b.set_length(n as u64);
                b.set_message("reading");
            }
            Progress::ModelDone => b.inc(1),
        }));
        return (hook, Some(bar));
    }
    let total = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let last = Mutex::new(Instant::now());
    let hook = ProgressHook(Arc::new(move |p| match p {
        Progress::Listed(n) => {
            total.store(n, Ordering::Relaxed);
            tracing::info!("listed: {n} models to read");
        }
        Progress::ModelDone => {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= LOG_EVERY {
                *last = Instant::now();
                tracing::info!("read {n}/{} models", total.load(Ordering::Relaxed));
            }
        }
    }));
    (hook, None)
}
