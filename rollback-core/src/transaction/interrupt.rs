//! Stopping a run on request (Ctrl-C) without making anything worse.

use std::sync::Arc;

use tokio::sync::watch;

/// Asks a running transaction to stop: what a command line does on the first Ctrl-C.
///
/// Once [`interrupt`](Self::interrupt)ed, the run starts no step, revert or check; a call
/// in flight (an apply, a put-back already under way) finishes and is journaled; waits for
/// convergence and check attempts stop. Nothing is put back on a request alone (putting
/// back may mean re-deploying the bad release): the run gives its leases back, journals
/// `interrupted` and returns a report with [`Outcome::Interrupted`](crate::Outcome). The
/// journal then holds where it stopped: [`resume_with`](crate::resume_with) finishes it,
/// or puts back what it changed with [`ResumeOptions::put_back`](crate::ResumeOptions).
///
/// A failure already under compensation is not interrupted: compensation is the call a
/// run must finish. Dropping the run's future (a second Ctrl-C) stops it at once; its
/// journal still says how far it got.
///
/// Clones share one request: give a clone to the builder
/// ([`TransactionBuilder::interrupt`](crate::TransactionBuilder::interrupt)) and keep one to
/// call from a signal handler.
#[derive(Debug, Clone)]
pub struct Interrupt {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Interrupt {
    /// A request not yet made.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the request (again is a no-op).
    pub fn interrupt(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the request was made.
    pub fn is_interrupted(&self) -> bool {
        *self.tx.borrow()
    }

    /// Returns once the request is made (at once if it was).
    pub async fn interrupted(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = rx.wait_for(|asked| *asked).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_made_before_or_while_waiting_is_seen_by_every_clone() {
        let i = Interrupt::new();
        let j = i.clone();
        assert!(!j.is_interrupted());
        let waiter = tokio::spawn(async move { j.interrupted().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        i.interrupt();
        waiter.await.unwrap();
        assert!(i.is_interrupted());
        // Already made: returns at once.
        i.clone().interrupted().await;
    }
}
