//! The end of a run: its outcome, the `end` record and the [`Report`].

use super::context::{ms, Ctx, StepRun};
use super::transition::Phase;
use super::{ActionReport, FailurePolicy, Outcome, Report};
use crate::error::ErrorRecord;
use crate::journal::Entry;
use crate::known_good::KnownGood;
use crate::notify::{Notice, NoticeKind, NoticeTarget};
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

/// After a successful run: every step moved and verified (temporary ones were put back)
/// has its revision recorded as known good, with the checks that passed; a run without a
/// single check verified nothing but stability, and records nothing. A record that cannot
/// be written needs a person (the run itself succeeded).
async fn record_known_good(ctx: &Ctx, steps: &[StepRun], checks: &[Verdict]) {
    let txn: Vec<String> = checks
        .iter()
        .filter(|v| v.passed)
        .map(|v| v.name.clone())
        .collect();
    for s in steps
        .iter()
        .filter(|s| s.state.phase == Phase::Verified && !s.temporary)
    {
        let Some(change) = &s.state.change else {
            continue;
        };
        let mut passed: Vec<String> = s
            .state
            .verdicts
            .iter()
            .filter(|v| v.passed)
            .map(|v| v.name.clone())
            .collect();
        passed.extend(txn.iter().cloned());
        if passed.is_empty() {
            continue;
        }
        let good = KnownGood {
            target: s.id.clone(),
            revision: change.to.id.clone(),
            verified_at: chrono::Utc::now(),
            transaction: ctx.id.clone(),
            name: ctx.name.clone(),
            checks: passed,
        };
        if let Err(e) = ctx.known_good.record(&good).await {
            ctx.attention(
                Some(&s.id),
                format!(
                    "is healthy at {}, but that could not be recorded as known good in {}: {e}",
                    good.revision,
                    ctx.known_good.describe()
                ),
            );
        }
    }
}

/// Records the `end` transition and builds the report.
pub(crate) async fn finish(
    ctx: &Ctx,
    steps: &mut [StepRun],
    failure: Option<ErrorRecord>,
    checks: Vec<Verdict>,
    (actions, on_success): (Vec<ActionReport>, Vec<ActionReport>),
    dry_run: bool,
) -> Report {
    let outcome = outcome(ctx.policy, steps, failure.as_ref(), dry_run);
    if outcome == Outcome::Succeeded {
        record_known_good(ctx, steps, &checks).await;
    }
    let duration = ctx.start.elapsed();
    let report = |needs_attention| Report {
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
        checks: checks.clone(),
        actions: actions.clone(),
        on_success: on_success.clone(),
        needs_attention,
        error: failure.clone(),
        journal_path: ctx.journal.path().to_path_buf(),
        started_at: ctx.started_at,
        duration,
    };
    if !dry_run {
        notify_ended(ctx, &report(ctx.attention_so_far())).await;
    }
    let needs_attention = ctx.attention_so_far();
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
    report(needs_attention)
}

/// A run stopped on request ([`super::Interrupt`]): the `interrupted` record (no `end`: a
/// resume goes on from here) and a report saying what is left.
pub(crate) async fn stopped(
    ctx: &Ctx,
    steps: &mut [StepRun],
    failure: Option<ErrorRecord>,
) -> Report {
    let changed = steps
        .iter()
        .filter(|s| s.state.maybe_applied && !s.state.phase.is_back())
        .count();
    let unfinished = steps
        .iter()
        .filter(|s| {
            !matches!(
                s.state.phase,
                Phase::Verified | Phase::Skipped | Phase::Reverted | Phase::Compensated
            )
        })
        .count();
    ctx.attention(
        None,
        format!(
            "the run was stopped on request with {unfinished} step(s) unfinished and {changed} target(s) changed; nothing was put back. Resume it to finish (or to put back what it changed) from its journal {}",
            ctx.journal.path().display()
        ),
    );
    let duration = ctx.start.elapsed();
    let report = |needs_attention| Report {
        transaction: ctx.id.clone(),
        name: ctx.name.clone(),
        reason: ctx.reason.clone(),
        outcome: Outcome::Interrupted,
        steps: steps
            .iter()
            .map(|s| s.state.report((s.index, s.stage, &s.id), false, s.duration))
            .collect(),
        checks: Vec::new(),
        actions: Vec::new(),
        on_success: Vec::new(),
        needs_attention,
        error: failure.clone(),
        journal_path: ctx.journal.path().to_path_buf(),
        started_at: ctx.started_at,
        duration,
    };
    notify_ended(ctx, &report(ctx.attention_so_far())).await;
    let needs_attention = ctx.attention_so_far();
    ctx.note(
        None,
        Entry::Interrupted {
            duration_ms: ms(duration),
        },
        format!("stopped on request after {duration:.1?}: {unfinished} step(s) unfinished"),
    )
    .await;
    report(needs_attention)
}

/// Tells every notifier the run started: the targets it is about to change.
pub(crate) async fn notify_started(ctx: &Ctx, steps: &[StepRun]) {
    if ctx.notifiers.is_empty() {
        return;
    }
    let notice = Notice {
        event: NoticeKind::Started,
        transaction: ctx.id.clone(),
        name: ctx.name.clone(),
        reason: ctx.reason.clone(),
        targets: steps
            .iter()
            .filter(|s| s.state.phase != Phase::Skipped)
            .map(|s| NoticeTarget {
                target: s.id.to_string(),
                from: s.state.change.as_ref().map(|c| c.from.id.clone()),
                to: s.state.change.as_ref().map(|c| c.to.id.clone()),
            })
            .collect(),
        outcome: None,
        time_to_recover_ms: None,
        needs_attention: Vec::new(),
    };
    send(ctx, &notice).await;
}

/// Tells every notifier how the run ended.
async fn notify_ended(ctx: &Ctx, report: &Report) {
    if !ctx.notifiers.is_empty() {
        send(ctx, &Notice::ended(report)).await;
    }
}

/// Sends `notice` to every notifier, each journaled as an action; a failure needs a person
/// (the team was not told) and changes nothing else.
async fn send(ctx: &Ctx, notice: &Notice) {
    let when = match notice.event {
        NoticeKind::Started => "start",
        NoticeKind::Ended => "end",
    };
    for n in &ctx.notifiers {
        let name = format!("notify {} ({when})", n.name());
        let (ok, message) = match n.notify(notice).await {
            Ok(()) => (true, "sent".to_string()),
            Err(e) => (false, e.to_string()),
        };
        ctx.note_action(&name, ok, &message).await;
        if !ok {
            ctx.attention(
                None,
                format!("{name} failed, so the team was not told: {message}"),
            );
        }
    }
}
