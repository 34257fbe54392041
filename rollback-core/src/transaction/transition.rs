//! A step's state as its transitions leave it: the one rule a live run follows after it
//! records a transition and [`resume()`](super::resume()) follows when it reads the same record back.
//!
//! The transition type is [`journal::Entry`](crate::journal::Entry): the engine records one
//! with [`Ctx::record`](super::context::Ctx::record) (journal, then event, then this state),
//! and a resume replays the journal's entries through [`StepState::apply`] and
//! [`StepState::plan`]. [`Phase`] is internal (it tells an intent from an apply from a
//! stable target, which resume needs); [`StepState::status`] is the one map from it to the
//! public [`StepStatus`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{StepReport, StepStatus};
use crate::error::ErrorRecord;
use crate::journal::Entry;
use crate::revision::Change;
use crate::target::TargetId;
use crate::verify::Verdict;

/// Where a step is in its lifecycle: the last of its transitions that moved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Phase {
    /// Planned (or not yet planned); nothing recorded for it since.
    #[default]
    Pending,
    /// Already at the revision (`planned`'s `skipped`).
    Skipped,
    /// `intent`: about to apply.
    Intent,
    /// `applied`.
    Applied,
    /// `stable`.
    Stable,
    /// `step_verified`.
    Verified,
    /// `step_failed`.
    Failed,
    /// `compensated`.
    Compensated,
    /// `compensation_failed`.
    CompensationFailed,
    /// `reverted`.
    Reverted,
}

impl Phase {
    /// Put back, or given up on putting back: compensation leaves it alone.
    pub(crate) fn is_back(self) -> bool {
        matches!(
            self,
            Phase::Compensated | Phase::CompensationFailed | Phase::Reverted
        )
    }
}

/// What one step's transitions so far say about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StepState {
    /// The planned change (`planned`); a skipped step's is a no-op.
    pub change: Option<Change>,
    /// The last phase recorded.
    pub phase: Phase,
    /// Whether the target may have been changed by the step (from its `intent` on, unless
    /// its `step_failed` says the backend refused before changing anything).
    pub maybe_applied: bool,
    /// The step's error (`step_failed`, else the first `compensation_failed`).
    pub error: Option<ErrorRecord>,
    /// The verdicts of its checks (`checked` records of the step).
    pub verdicts: Vec<Verdict>,
    /// When its `intent` was journaled ([`Change::since`] of its apply).
    pub intent_at: Option<DateTime<Utc>>,
    /// When its last `compensate_intent` or `revert_intent` was journaled ([`Change::since`]
    /// of the change putting it back).
    pub back_at: Option<DateTime<Utc>>,
}

impl StepState {
    /// Every step's plan from a `planned` record: its change, and whether it is skipped.
    /// `None` when the plan does not have one change per step.
    pub(crate) fn plan<'a>(
        steps: impl ExactSizeIterator<Item = &'a mut StepState>,
        changes: &[Change],
        skipped: &[usize],
    ) -> Option<()> {
        if steps.len() != changes.len() {
            return None;
        }
        for (i, (s, c)) in steps.zip(changes).enumerate() {
            s.change = Some(c.clone());
            if skipped.contains(&i) {
                s.phase = Phase::Skipped;
            }
        }
        Some(())
    }

    /// Notes when a record about this step was written: the times its changes are passed
    /// as [`Change::since`].
    pub(crate) fn stamp(&mut self, entry: &Entry, at: DateTime<Utc>) {
        match entry {
            Entry::Intent { .. } => self.intent_at = Some(at),
            Entry::CompensateIntent { .. } | Entry::RevertIntent { .. } => {
                self.back_at = Some(at);
            }
            _ => {}
        }
    }

    /// Moves the state through one record about this step; records about something else
    /// (the transaction, another step's plan) leave it as it is.
    pub(crate) fn apply(&mut self, entry: &Entry) {
        match entry {
            Entry::Intent { .. } => {
                self.phase = Phase::Intent;
                self.maybe_applied = true;
            }
            Entry::Applied { .. } => self.phase = Phase::Applied,
            Entry::Stable { .. } => self.phase = Phase::Stable,
            Entry::Checked {
                step: Some(_),
                check,
                passed,
                attempts,
                evidence,
            } => self.verdicts.push(Verdict {
                name: check.clone(),
                passed: *passed,
                attempts: *attempts,
                evidence: evidence.clone(),
            }),
            Entry::StepVerified { .. } => self.phase = Phase::Verified,
            Entry::StepFailed {
                maybe_applied,
                error,
                ..
            } => {
                self.phase = Phase::Failed;
                self.maybe_applied = *maybe_applied;
                self.error = Some(error.clone());
            }
            Entry::Compensated { .. } => self.phase = Phase::Compensated,
            Entry::Reverted { .. } => self.phase = Phase::Reverted,
            Entry::CompensationFailed { error, .. } => {
                self.phase = Phase::CompensationFailed;
                self.error.get_or_insert_with(|| error.clone());
            }
            _ => {}
        }
    }

    /// The public status: where the step ended (or, mid-run, stands).
    pub(crate) fn status(&self, dry_run: bool) -> StepStatus {
        match self.phase {
            Phase::Pending if dry_run => StepStatus::Planned,
            Phase::Pending => StepStatus::NotStarted,
            Phase::Skipped => StepStatus::Skipped,
            Phase::Intent | Phase::Applied | Phase::Stable => StepStatus::Applied,
            Phase::Verified => StepStatus::Succeeded,
            Phase::Failed => StepStatus::Failed,
            Phase::Compensated => StepStatus::Compensated,
            Phase::Reverted => StepStatus::Reverted,
            Phase::CompensationFailed => StepStatus::CompensationFailed,
        }
    }

    /// The step's part of a [`super::Report`].
    pub(crate) fn report(
        &self,
        (step, stage, target): (usize, usize, &TargetId),
        dry_run: bool,
        duration: Duration,
    ) -> StepReport {
        StepReport {
            step,
            stage,
            target: target.clone(),
            from: self.change.as_ref().map(|c| c.from.clone()),
            to: self.change.as_ref().map(|c| c.to.clone()),
            diff: self
                .change
                .as_ref()
                .map(|c| c.diff.clone())
                .unwrap_or_default(),
            origin: self.change.as_ref().and_then(|c| c.origin.clone()),
            status: self.status(dry_run),
            error: self.error.clone(),
            verdicts: self.verdicts.clone(),
            duration,
        }
    }
}
