//! One shutdown signal for everything a process runs: the server, the `--schedule` loop and the
//! ingestion runs in flight (the mini-redis `Shutdown` pattern).
//!
//! A [`ShutdownTrigger`] is held by whoever decides to stop (the binary, on Ctrl-C or SIGTERM; a
//! test). Every task holds a cloned [`Shutdown`] and either awaits [`Shutdown::recv`] in a
//! `select!` or polls [`Shutdown::is_shutdown`] at a safe point (a run checks it at each batch
//! boundary, so the catalog is left consistent).

use tokio::sync::watch;

/// The receiving side: cheap to clone, one per task.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The sending side: [`ShutdownTrigger::trigger`] tells every [`Shutdown`] to stop. Dropping the
/// trigger without calling it does not stop anything (a `Shutdown::never()` is one whose trigger
/// is gone).
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// A new trigger and its first receiver.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Tells every receiver to stop. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Another receiver of this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    /// A signal that never fires (one-off runs, tests).
    pub fn never() -> Self {
        channel().1
    }

    /// Whether the trigger has fired.
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the trigger fires; never resolves when the trigger was dropped unfired.
    pub async fn recv(&mut self) {
        if self.rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM: what the binary wires to [`ShutdownTrigger::trigger`].
pub async fn os_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_receiver_sees_the_trigger() {
        let (trigger, mut a) = channel();
        let mut b = trigger.subscribe();
        let c = a.clone();
        assert!(!a.is_shutdown());
        trigger.trigger();
        a.recv().await;
        b.recv().await;
        assert!(c.is_shutdown());
    }

    #[tokio::test(start_paused = true)]
    async fn never_does_not_fire() {
        let mut s = Shutdown::never();
        let fired = tokio::time::timeout(std::time::Duration::from_secs(3600), s.recv()).await;
        assert!(fired.is_err());
        assert!(!s.is_shutdown());
    }
}
