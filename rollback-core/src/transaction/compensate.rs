//! After a failure: compensate (put every applied target back, newest stage first) or halt
//! (leave them for a person), then run the on-failure actions.

use tokio::time::Instant;
use tracing::Instrument;

use super::actions::run_actions;
use super::context::{ms, Ctx, StepRun, LOG_TARGET};
use super::drive::put_back;
use super::transition::Phase;
use super::{ActionReport, ActionWhen, FailurePolicy};
use crate::error::{ErrorKind, ErrorRecord, Result};
use crate::journal::Entry;
use crate::target::ApplyOutcome;

/// What follows a failure, by the policy; then the on-failure actions, as reported.
pub(crate) async fn after_failure(
    ctx: &Ctx,
    steps: &mut [StepRun],
    err: &ErrorRecord,
) -> Vec<ActionReport> {
    match ctx.policy {
        FailurePolicy::Compensate => compensate(ctx, steps).await,
        FailurePolicy::Halt => halt(ctx, steps),
    }
    tracing::warn!(target: LOG_TARGET, transaction = %ctx.id, error = %err, "transaction failed");
    // A stop request during them leaves the rest to a resume (the journal has them).
    run_actions(ctx, ActionWhen::OnFailure, &ctx.on_failure)
        .await
        .unwrap_or_default()
}

/// Every target the policy leaves changed needs a person.
fn halt(ctx: &Ctx, steps: &[StepRun]) {
    for s in steps
        .iter()
        .filter(|s| s.state.maybe_applied && !s.state.phase.is_back())
    {
        if let Some(c) = &s.state.change {
            ctx.attention(
                Some(&s.id),
                format!(
                    "left at {} (was {}) because the policy is Halt; check it and roll it back or forward by hand",
                    c.to.id, c.from.id
                ),
            );
        }
    }
}

/// Puts every step that may have changed its target back to the captured revision, newest
/// stage first, one at a time, waiting for each.
async fn compensate(ctx: &Ctx, steps: &mut [StepRun]) {
    let mut order: Vec<&mut StepRun> = steps
        .iter_mut()
        .filter(|s| {
            s.state.maybe_applied && !s.state.phase.is_back() && s.state.phase != Phase::Skipped
        })
        .collect();
    order.sort_by_key(|s| std::cmp::Reverse((s.stage, s.index)));
    for s in order {
        compensate_one(ctx, s).await;
    }
}

async fn compensate_one(ctx: &Ctx, s: &mut StepRun) {
    let Some(change) = s.state.change.clone() else {
        return;
    };
    let back = change.reverse();
    let span = tracing::info_span!(target: LOG_TARGET, "compensate", transaction = %ctx.id, step = s.index, target = %s.id, to = %back.to.id);
    let t0 = Instant::now();
    let intent = Entry::CompensateIntent {
        step: s.index,
        target: s.id.clone(),
        from: back.from.id.clone(),
        to: back.to.id.clone(),
    };
    let msg = format!("putting back {} -> {}", back.from.id, back.to.id);
    let result: Result<ApplyOutcome> = async {
        ctx.record(Some(&mut *s), intent, msg).await?;
        put_back(ctx, s, &back).await
    }
    .instrument(span)
    .await;
    s.duration += t0.elapsed();
    match result {
        Ok(outcome) => {
            let done = Entry::Compensated {
                step: s.index,
                target: s.id.clone(),
                outcome,
                duration_ms: ms(t0.elapsed()),
            };
            ctx.note(Some(&mut *s), done, format!("back at {}", back.to.id))
                .await;
            if let Some(note) = s.target.compensation_note(&change) {
                ctx.attention(Some(&s.id), note);
            }
        }
        Err(e) => {
            let failed = Entry::CompensationFailed {
                step: s.index,
                target: s.id.clone(),
                error: e.record(),
            };
            ctx.note(Some(&mut *s), failed, format!("compensation: {e}"))
                .await;
            let message = if e.kind() == ErrorKind::LeaseLost {
                format!(
                    "left at {} (was {}): the run lost its lease ({e}), so it did not put it back; someone else may be changing it, check it before acting",
                    back.from.id, back.to.id
                )
            } else {
                format!(
                    "could not be put back to {} (it was moved to {}): {e}; restore it by hand",
                    back.to.id, back.from.id
                )
            };
            ctx.attention(Some(&s.id), message);
        }
    }
}
