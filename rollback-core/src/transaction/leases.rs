//! Locking: every target's lease taken (many at a time), kept alive while the run goes on,
//! given back at the end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::context::{Ctx, StepRun, LOG_TARGET};
use crate::error::Result;
use crate::journal::Entry;
use crate::lock::{Holder, Lease, LockManager};
use crate::target::TargetId;

/// Takes a lease on every step's target and records `locked`; on an error, gives back
/// those taken.
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
    )
    .await?;
    Ok(Arc::new(Mutex::new(leases)))
}

/// How many lease calls (acquire, renew, release) are in flight at once: a lock store is
/// not the backend, and a thousand targets should not take a thousand round trips in turn.
const LEASE_CALLS: usize = 32;

/// Takes a lease on every target of `ids` (sorted), [`LEASE_CALLS`] at a time; on an
/// error, gives back those taken. Taking a lease never waits for its holder (a held one is
/// refused at once), so two runs over the same targets cannot deadlock; when both race
/// for them at the same instant, both may be refused, each naming the other.
pub(crate) async fn acquire_all(
    locks: &dyn LockManager,
    ids: &[TargetId],
    holder: &Holder,
    ttl: Duration,
) -> Result<Vec<Lease>> {
    // The futures are made before they are streamed so the run future stays `Send`
    // (closures over borrowed items in stream combinators are not, for now).
    let mut calls = Vec::with_capacity(ids.len());
    for id in ids {
        calls.push(locks.acquire(id, holder, ttl));
    }
    let results: Vec<Result<Lease>> = stream::iter(calls).buffered(LEASE_CALLS).collect().await;
    let mut leases = Vec::with_capacity(results.len());
    let mut first_err = None;
    for r in results {
        match r {
            Ok(l) => leases.push(l),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => {
            release_all(locks, &leases).await;
            Err(e)
        }
        None => Ok(leases),
    }
}

/// Gives every lease back, [`LEASE_CALLS`] at a time; the targets, or `None` if one could
/// not be given back.
pub(crate) async fn release_all(
    locks: &dyn LockManager,
    leases: &[Lease],
) -> Option<Vec<TargetId>> {
    let mut calls = Vec::with_capacity(leases.len());
    for lease in leases {
        calls.push(release_one(locks, lease));
    }
    let results: Vec<bool> = stream::iter(calls)
        .buffer_unordered(LEASE_CALLS)
        .collect()
        .await;
    results
        .into_iter()
        .all(|ok| ok)
        .then(|| leases.iter().map(|l| l.target.clone()).collect())
}

async fn release_one(locks: &dyn LockManager, lease: &Lease) -> bool {
    match locks.release(lease).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(target: LOG_TARGET, error = %e, target_id = %lease.target, "could not release a lease; it will expire by itself");
            false
        }
    }
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
            let renewed: Vec<Lease> = stream::iter(current.into_iter().map(|l| {
                let (locks, tx) = (&locks, &tx);
                async move {
                    match locks.renew(&l, ttl).await {
                        Ok(n) => n,
                        Err(e) => {
                            tracing::error!(target: LOG_TARGET, transaction = %tx, error = %e, "lease lost");
                            l
                        }
                    }
                }
            }))
            .buffered(LEASE_CALLS)
            .collect()
            .await;
            if let Ok(mut g) = leases.lock() {
                *g = renewed;
            }
        }
    }))
}
