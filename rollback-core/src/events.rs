//! Progress events: every transition of a transaction, for progress bars, logs and
//! notifications.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::target::TargetId;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The transaction started (preflight begins).
    Started,
    /// Preflight finished; the plan is known.
    Planned,
    /// All targets are locked.
    Locked,
    /// A step started.
    StepStarted,
    /// A step's target already was at the revision (nothing sent).
    Skipped,
    /// A step's target was moved to the revision.
    Applied,
    /// A backend call is being retried after a retryable error.
    Retrying,
    /// Waiting for the target to converge; the message says how far.
    Waiting,
    /// The target is stable at the revision.
    Stable,
    /// A check passed (a step's when the event has a step).
    CheckPassed,
    /// A step is done: applied, stable and its checks passed.
    Verified,
    /// A check attempt failed (more attempts may follow).
    CheckFailed,
    /// A step or the transaction failed.
    Failed,
    /// A target is being put back to its captured revision.
    Compensating,
    /// A target is back at its captured revision.
    Compensated,
    /// A temporary step's target is being put back after the stages were done.
    Reverting,
    /// A temporary step's target is back at its captured revision.
    Reverted,
    /// An on-failure or on-success action started (it may take a while: a cache
    /// invalidation is waited for).
    ActionStarted,
    /// An on-failure or on-success action ran, or a notification was sent.
    Action,
    /// The run stopped on request ([`crate::Interrupt`]) before it finished; its journal
    /// holds where.
    Interrupted,
    /// The transaction finished; the message is the outcome.
    Finished,
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The transaction id.
    pub transaction: String,
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// The step index (in the order steps were added), if about a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The target, if about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetId>,
    /// A person-readable message.
    pub message: String,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(t) => write!(f, "[{}] {t}: {}", self.kind, self.message),
            None => write!(f, "[{}] {}", self.kind, self.message),
        }
    }
}

/// A receiver of events.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Sends events to every sink and to `tracing`.
#[derive(Clone, Default)]
pub(crate) struct Emitter {
    pub(crate) transaction: String,
    pub(crate) sinks: Vec<EventSink>,
}

impl Emitter {
    pub(crate) fn emit(
        &self,
        kind: EventKind,
        step: Option<usize>,
        target: Option<&TargetId>,
        message: impl Into<String>,
    ) {
        let event = Event {
            transaction: self.transaction.clone(),
            at: Utc::now(),
            kind,
            step,
            target: target.cloned(),
            message: message.into(),
        };
        match kind {
            EventKind::Failed | EventKind::CheckFailed => {
                tracing::warn!(transaction = %event.transaction, kind = %kind, target = ?event.target.as_ref().map(|t| t.to_string()), "{}", event.message)
            }
            _ => {
                tracing::info!(transaction = %event.transaction, kind = %kind, target = ?event.target.as_ref().map(|t| t.to_string()), "{}", event.message)
            }
        }
        for sink in &self.sinks {
            sink(&event);
        }
    }
}
