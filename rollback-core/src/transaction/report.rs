//! The end of a run: its outcome, the `end` record and the [`Report`].

use super::context::{ms, Ctx, StepRun};
use super::transition::Phase;
use super::{ActionReport, FailurePolicy, Outcome, Report};
use crate::error::ErrorRecord;
use crate::journal::Entry;
use crate::verify::Verdict;

/// How a run ended: planned (a dry run), succeeded, compensated (the policy put every
/// changed target back), or failed.
fn outcome(
    policy: FailurePolicy,
    steps: &[StepRun],
    failure: Option<&ErrorRecord>,
    dry_run: bool,
) -> Outcome {
    if dry_run {
        Outcome::Planned
    } else if failure.is_none() {
        Outcome::Succeeded
    } else if policy == FailurePolicy::Compensate
        && !steps.iter().any(|s| {
            s.state.maybe_applied && !matches!(s.state.phase, Phase::Compensated | Phase::Reverted)
        })
    {
        Outcome::Compensated
    } else {
        Outcome::Failed
    }
}

/// Records the `end` transition and builds the report.
pub(crate) async fn finish(
    ctx: &Ctx,
    steps: &mut [StepRun],
    failure: Option<ErrorRecord>,
    checks: Vec<Verdict>,
    actions: Vec<ActionReport>,
    dry_run: bool,
) -> Report {
    let outcome = outcome(ctx.policy, steps, failure.as_ref(), dry_run);
    let needs_attention = match ctx.attention.lock() {
        Ok(v) => v.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let duration = ctx.start.elapsed();
    ctx.note(
        None,
        Entry::End {
            outcome,
            error: failure.clone(),
            needs_attention: needs_attention.clone(),
            duration_ms: ms(duration),
        },
        format!("{outcome} in {duration:.1?}"),
    )
    .await;
    Report {
        transaction: ctx.id.clone(),
        name: ctx.name.clone(),
        reason: ctx.reason.clone(),
        outcome,
        steps: steps
            .iter()
            .map(|s| {
                s.state
                    .report((s.index, s.stage, &s.id), dry_run, s.duration)
            })
            .collect(),
        checks,
        actions,
        needs_attention,
        error: failure,
        journal_path: ctx.journal.path().to_path_buf(),
        started_at: ctx.started_at,
        duration,
    }
}
