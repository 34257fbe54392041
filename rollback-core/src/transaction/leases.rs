//! Locking: every target's lease taken in a fixed order, kept alive while the run goes on,
//! given back at the end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::context::{Ctx, StepRun, LOG_TARGET};
use crate::error::Result;
use crate::journal::Entry;
use crate::lock::{Holder, Lease, LockManager};
use crate::target::TargetId;

/// Takes a lease on every step's target, in a fixed order so two transactions cannot
/// deadlock, and records `locked`; on an error, gives back those taken.
pub(crate) async fn lock_all(
    ctx: &Ctx,
    locks: &dyn LockManager,
    steps: &[StepRun],
    holder: &Holder,
    ttl: Duration,
) -> Result<Arc<Mutex<Vec<Lease>>>> {
    let mut ids: Vec<TargetId> = steps.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    let leases = acquire_all(locks, &ids, holder, ttl).await?;
    let n = ids.len();
    ctx.record(
        None,
        Entry::Locked { targets: ids },
        format!("{n} target(s) locked by {holder}"),
    )?;
    Ok(Arc::new(Mutex::new(leases)))
}

/// Takes a lease on every target of `ids` (sorted); on an error, gives back those taken.
pub(crate) async fn acquire_all(
    locks: &dyn LockManager,
    ids: &[TargetId],
    holder: &Holder,
    ttl: Duration,
) -> Result<Vec<Lease>> {
    let mut leases = Vec::new();
    for id in ids {
        match locks.acquire(id, holder, ttl).await {
            Ok(l) => leases.push(l),
            Err(e) => {
                release_all(locks, &leases).await;
                return Err(e);
            }
        }
    }
    Ok(leases)
}

/// Gives every lease back; the targets, or `None` if one could not be given back.
pub(crate) async fn release_all(
    locks: &dyn LockManager,
    leases: &[Lease],
) -> Option<Vec<TargetId>> {
    let mut all = true;
    for lease in leases {
        if let Err(e) = locks.release(lease).await {
            tracing::warn!(target: LOG_TARGET, error = %e, target_id = %lease.target, "could not release a lease; it will expire by itself");
            all = false;
        }
    }
    all.then(|| leases.iter().map(|l| l.target.clone()).collect())
}

/// A background task stopped when this is dropped.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps the leases alive while the run goes on: renews every third of the TTL, until the
/// returned guard is dropped (when the run ends, or when its future is dropped: Ctrl-C, a
/// cancelled task, a timeout; the leases then lapse after their TTL instead of living on).
pub(crate) fn spawn_renewal(
    ctx: &Ctx,
    locks: Arc<dyn LockManager>,
    leases: Arc<Mutex<Vec<Lease>>>,
    ttl: Duration,
) -> AbortOnDrop {
    let tx = ctx.id.clone();
    AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(ttl / 3).await;
            let current = leases.lock().map(|l| l.clone()).unwrap_or_default();
            let mut renewed = Vec::with_capacity(current.len());
            for l in current {
                match locks.renew(&l, ttl).await {
                    Ok(n) => renewed.push(n),
                    Err(e) => {
                        tracing::error!(target: LOG_TARGET, transaction = %tx, error = %e, "lease lost");
                        renewed.push(l);
                    }
                }
            }
            if let Ok(mut g) = leases.lock() {
                *g = renewed;
            }
        }
    }))
}
