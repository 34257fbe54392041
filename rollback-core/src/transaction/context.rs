//! What a run carries from phase to phase ([`Ctx`], [`StepRun`]), and the one place a
//! transition is recorded: [`Ctx::record`] (or [`Ctx::note`] for a best-effort one).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::leases::{release_all, Fence};
use super::transition::StepState;
use super::{AfterAction, Attention, FailurePolicy};
use crate::error::{Error, Result};
use crate::events::{Emitter, EventKind};
use crate::journal::{Entry, JournalWriter};
use crate::target::{RollbackTarget, TargetId};
use crate::verify::Check;
use crate::wait::{CompensationRetry, RetryPolicy};

/// One step being driven.
#[derive(Debug)]
pub(crate) struct StepRun {
    pub index: usize,
    pub stage: usize,
    pub target: Arc<dyn RollbackTarget>,
    pub id: TargetId,
    pub checks: Vec<Check>,
    pub timeout: Duration,
    pub temporary: bool,
    /// What its transitions say; changed only by [`Ctx::record`] and [`Ctx::note`].
    pub state: StepState,
    pub duration: Duration,
}

/// Everything the phases need besides the steps.
pub(crate) struct Ctx {
    pub id: String,
    pub name: String,
    pub reason: Option<String>,
    pub policy: FailurePolicy,
    pub concurrency: usize,
    /// The bound on calls in flight: `concurrency` places, taken by each apply and each
    /// look of a wait ([`crate::wait::limited`]), not held while a target converges.
    pub calls: Arc<tokio::sync::Semaphore>,
    pub retry: RetryPolicy,
    pub compensation_retry: CompensationRetry,
    pub journal: JournalWriter,
    pub emitter: Emitter,
    pub checks: Vec<Check>,
    pub on_failure: Vec<Arc<dyn AfterAction>>,
    /// Run after a success.
    pub on_success: Vec<Arc<dyn AfterAction>>,
    pub attention: Mutex<Vec<Attention>>,
    /// The leases, checked before every change ([`Fence::check`]).
    pub fence: Arc<Fence>,
    /// Where a successful run records what it verified.
    pub known_good: Arc<dyn crate::known_good::KnownGoodStore>,
    pub started_at: DateTime<Utc>,
    pub start: Instant,
    /// Asked to stop: no step, revert or check starts after it.
    pub interrupt: super::Interrupt,
    /// Told when the run starts and ends.
    pub notifiers: Vec<Arc<dyn crate::notify::Notifier>>,
}

/// The `tracing` target of every engine module's logs and spans: the engine was one module
/// before it was split by phase, and log filters and Python's logger names
/// (`rollback.core.transaction.engine`) name it.
pub(crate) const LOG_TARGET: &str = "rollback_core::transaction::engine";

pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

impl Ctx {
    /// Records one transition: the journal line first (written and synced, so that no one
    /// hears of a transition a crash would lose), then its event
    /// ([`Entry::event_kind`], about `step` if given), then `step`'s state
    /// ([`StepState::apply`], as a resume replays it). If the line cannot be written,
    /// nothing else happens and the error is returned.
    pub(crate) async fn record(
        &self,
        step: Option<&mut StepRun>,
        entry: Entry,
        message: impl Into<String>,
    ) -> Result<()> {
        let record = self.journal.append(entry).await?;
        self.announce(step, &record.entry, record.at, message.into());
        Ok(())
    }

    /// [`record`](Self::record) for a transition the run goes on after whether or not its
    /// line could be written (failures, verdicts, actions, the end): the event and the
    /// state follow anyway, and a journal error is only logged.
    pub(crate) async fn note(
        &self,
        step: Option<&mut StepRun>,
        entry: Entry,
        message: impl Into<String>,
    ) {
        if let Err(e) = self.journal.append(entry.clone()).await {
            tracing::error!(target: LOG_TARGET, transaction = %self.id, error = %e, record = %entry.name(), "could not write a journal record");
        }
        self.announce(step, &entry, chrono::Utc::now(), message.into());
    }

    /// Journals what an action did or whether a notification went out (an `action`
    /// record, and its event).
    pub(crate) async fn note_action(&self, name: &str, ok: bool, message: &str) {
        let entry = Entry::Action {
            name: name.to_string(),
            ok,
            message: message.to_string(),
        };
        self.note(None, entry, format!("{name}: {message}")).await;
    }

    fn announce(
        &self,
        step: Option<&mut StepRun>,
        entry: &Entry,
        at: chrono::DateTime<chrono::Utc>,
        message: String,
    ) {
        match step {
            Some(s) => {
                if let Some(kind) = entry.event_kind() {
                    self.emit(kind, Some(s.index), Some(&s.id), message);
                }
                s.state.apply(entry);
                s.state.stamp(entry, at);
            }
            None => {
                if let Some(kind) = entry.event_kind() {
                    self.emit(kind, None, None, message);
                }
            }
        }
    }

    /// A progress event, not a transition (a step started, a wait's progress, a retry, a
    /// failed check attempt, a preflight error): nothing is journaled, no state changes.
    pub(crate) fn emit(
        &self,
        kind: EventKind,
        step: Option<usize>,
        target: Option<&TargetId>,
        msg: impl Into<String>,
    ) {
        self.emitter.emit(kind, step, target, msg)
    }

    /// What needs a person so far.
    pub(crate) fn attention_so_far(&self) -> Vec<super::Attention> {
        match self.attention.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(crate) fn attention(&self, target: Option<&TargetId>, message: impl Into<String>) {
        let a = Attention {
            target: target.cloned(),
            message: message.into(),
        };
        tracing::warn!(target: LOG_TARGET, transaction = %self.id, "needs attention: {a}");
        match self.attention.lock() {
            Ok(mut v) => v.push(a),
            Err(p) => p.into_inner().push(a),
        }
    }

    pub(crate) async fn retry<T, F, Fut>(
        &self,
        step: Option<usize>,
        target: &TargetId,
        op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.retry
            .run(op, |n, e, d| self.retrying(step, target, n, e, d))
            .await
    }

    pub(crate) fn retrying(
        &self,
        step: Option<usize>,
        target: &TargetId,
        n: u32,
        e: &Error,
        d: Duration,
    ) {
        self.emit(
            EventKind::Retrying,
            step,
            Some(target),
            format!("attempt {} in {d:.1?} after: {e}", n + 1),
        )
    }

    /// Gives the leases back, then journals `released` (unless one could not be given
    /// back: then a resume tries again, and the rest lapse after their TTL).
    pub(crate) async fn release(&self, locks: &dyn crate::lock::LockManager) {
        if let Some(targets) = release_all(locks, &self.fence.leases()).await {
            self.note(None, Entry::Released { targets }, "").await;
        }
    }
}
