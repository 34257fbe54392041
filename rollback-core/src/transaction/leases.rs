//! Locking: every target's lease taken (many at a time), kept alive while the run goes on,
//! checked before every change the run makes (the [`Fence`]), given back at the end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;

use futures::stream::{self, StreamExt};

use super::context::{Ctx, StepRun, LOG_TARGET};
use crate::error::{Error, Result};
use crate::journal::Entry;
use crate::lock::{Holder, Lease, LockManager};
use crate::target::TargetId;
use crate::wait::RetryPolicy;

/// Takes a lease on every step's target, arms the fence with them and records `locked`;
/// on an error, gives back those taken.
pub(crate) async fn lock_all(
    ctx: &Ctx,
    locks: &Arc<dyn LockManager>,
    steps: &[StepRun],
    holder: &Holder,
    ttl: Duration,
) -> Result<()> {
    let mut ids: Vec<TargetId> = steps.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    let leases = acquire_all(locks.as_ref(), &ids, holder, ttl).await?;
    ctx.fence.arm(locks.clone(), leases, ttl);
    let n = ids.len();
    ctx.record(
        None,
        Entry::Locked { targets: ids },
        format!("{n} target(s) locked by {holder}"),
    )
    .await?;
    Ok(())
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
        calls.push(retried(|| locks.acquire(id, holder, ttl)));
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

/// A lock store's call, tried again with backoff while it is throttled or failing
/// transiently ([`RetryPolicy::default`]: five attempts in a few seconds).
async fn retried<T, F, Fut>(op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    RetryPolicy::default()
        .run(op, |n, e, d| {
            tracing::warn!(target: LOG_TARGET, error = %e, attempt = n + 1, "lock store call failed; trying again in {d:.1?}")
        })
        .await
}

async fn release_one(locks: &dyn LockManager, lease: &Lease) -> bool {
    match retried(|| locks.release(lease)).await {
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

/// The run's leases and whether it still holds them. Every change the run makes to a
/// target (apply, compensation, revert) first asks [`Fence::check`], which renews that
/// target's lease in the store: a lease taken over, given back or lapsed stops the run
/// before the change, and the first loss is kept so that nothing else is changed after it
/// ([`Fence::lost`]). Unarmed (a dry run, before locking) it lets everything through.
#[derive(Default)]
pub(crate) struct Fence {
    state: Mutex<FenceState>,
}

#[derive(Default)]
struct FenceState {
    locks: Option<Arc<dyn LockManager>>,
    ttl: Duration,
    leases: BTreeMap<TargetId, Lease>,
    lost: Option<(TargetId, String)>,
}

/// A lease is trusted until this much of its TTL before it lapses, for the clocks of the
/// machines sharing the store.
fn margin(ttl: Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl / 10).unwrap_or_default()
}

impl Fence {
    fn state(&self) -> std::sync::MutexGuard<'_, FenceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `leases`, renewed through `locks` for `ttl`.
    pub(crate) fn arm(&self, locks: Arc<dyn LockManager>, leases: Vec<Lease>, ttl: Duration) {
        let mut st = self.state();
        st.locks = Some(locks);
        st.ttl = ttl;
        st.leases = leases.into_iter().map(|l| (l.target.clone(), l)).collect();
    }

    /// The leases held now.
    pub(crate) fn leases(&self) -> Vec<Lease> {
        self.state().leases.values().cloned().collect()
    }

    /// The first lease the run lost, as the error a change it stopped gets.
    pub(crate) fn lost(&self) -> Option<Error> {
        self.state()
            .lost
            .as_ref()
            .map(|(t, why)| Error::lease_lost(t.to_string(), why.clone()))
    }

    /// Keeps the first loss, logs it, and returns the error for a change to `target`.
    fn trip(&self, target: &TargetId, lost_on: &TargetId, why: String) -> Error {
        let mut st = self.state();
        if st.lost.is_none() {
            tracing::error!(target: LOG_TARGET, target_id = %lost_on, reason = %why, "lease lost: the run makes no further change");
            st.lost = Some((lost_on.clone(), why));
        }
        drop(st);
        self.refusal(target)
            .unwrap_or_else(|| Error::lease_lost(target.to_string(), "lost"))
    }

    fn refusal(&self, target: &TargetId) -> Option<Error> {
        let st = self.state();
        let (t, why) = st.lost.as_ref()?;
        Some(if t == target {
            Error::lease_lost(t.to_string(), why.clone())
        } else {
            Error::lease_lost(
                target.to_string(),
                format!("the run lost its lease on {t}: {why}"),
            )
        })
    }

    /// Whether the run may change `target` now: it has lost no lease, and its lease on
    /// `target` is still its own in the store (renewed by this call). A store that cannot
    /// be asked is trusted until the lease is about to lapse.
    pub(crate) async fn check(&self, target: &TargetId) -> Result<()> {
        if let Some(e) = self.refusal(target) {
            return Err(e);
        }
        let (locks, lease, ttl) = {
            let st = self.state();
            let Some(locks) = st.locks.clone() else {
                return Ok(());
            };
            let Some(lease) = st.leases.get(target).cloned() else {
                drop(st);
                return Err(self.trip(target, target, "the run holds no lease on it".into()));
            };
            (locks, lease, st.ttl)
        };
        let result = locks.renew(&lease, ttl).await;
        self.renewed(lease, result)
            .map_err(|(on, why)| self.trip(target, &on, why))
    }

    /// Takes in the result of renewing `lease`: the renewed lease kept, or the reason it is
    /// lost (the store said so, or it could not be asked until the lease lapsed). A store
    /// that could not be asked, before then, is only logged.
    fn renewed(
        &self,
        lease: Lease,
        result: Result<Lease>,
    ) -> std::result::Result<(), (TargetId, String)> {
        let ttl = self.state().ttl;
        match result {
            Ok(new) => {
                self.state().leases.insert(new.target.clone(), new);
                Ok(())
            }
            Err(Error::Locked { holder, .. }) => {
                Err((lease.target, format!("taken over by {holder}")))
            }
            Err(e @ Error::LeaseLost { .. }) => Err((lease.target, e.to_string())),
            Err(e) if lease.expires_at - margin(ttl) <= Utc::now() => Err((
                lease.target,
                format!(
                    "not renewed before it lapsed at {}: the lock store said: {e}",
                    lease
                        .expires_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            )),
            Err(e) => {
                tracing::warn!(target: LOG_TARGET, target_id = %lease.target, error = %e, expires_at = %lease.expires_at, "could not renew a lease; trying again");
                Ok(())
            }
        }
    }
}

/// Keeps the leases alive while the run goes on: renews every third of the TTL (every
/// tenth while the store fails), until the returned guard is dropped (when the run ends,
/// or when its future is dropped: Ctrl-C, a cancelled task, a timeout; the leases then
/// lapse after their TTL instead of living on). A lease the store says is lost, or that
/// could not be renewed before it lapsed, trips the fence ([`Fence::lost`]).
pub(crate) fn spawn_renewal(fence: Arc<Fence>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let Some((locks, ttl)) = ({
            let st = fence.state();
            st.locks.clone().map(|l| (l, st.ttl))
        }) else {
            return;
        };
        let mut pause = ttl / 3;
        loop {
            tokio::time::sleep(pause).await;
            let results: Vec<(Lease, Result<Lease>)> =
                stream::iter(fence.leases().into_iter().map(|l| {
                    let locks = &locks;
                    async move {
                        let r = locks.renew(&l, ttl).await;
                        (l, r)
                    }
                }))
                .buffer_unordered(LEASE_CALLS)
                .collect()
                .await;
            let mut failed = false;
            for (lease, result) in results {
                failed |= result.is_err();
                if let Err((on, why)) = fence.renewed(lease, result) {
                    fence.trip(&on, &on, why);
                }
            }
            pause = if failed { ttl / 10 } else { ttl / 3 };
        }
    }))
}
