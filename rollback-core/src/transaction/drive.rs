//! Driving the steps, stage by stage: intent, apply, wait until stable, verify; then the
//! temporary steps put back and the transaction's own checks. A run and a resume both
//! drive from wherever each step's state says it is.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tokio::time::Instant;
use tracing::Instrument;

use super::actions::run_actions;
use super::compensate::after_failure;
use super::context::{ms, Ctx, StepRun, LOG_TARGET};
use super::report::{finish, stopped};
use super::transition::Phase;
use super::{ActionWhen, Report};
use crate::error::{Error, ErrorKind, ErrorRecord, Result};
use crate::events::EventKind;
use crate::journal::Entry;
use crate::revision::Change;
use crate::target::{ApplyOutcome, Progress};
use crate::verify::{Check, Verdict};

/// Applies, waits for and verifies every pending step, stage by stage; then the
/// transaction's checks; on failure compensates or halts and runs the on-failure actions;
/// then the report.
pub(crate) async fn drive(
    ctx: &Ctx,
    steps: &mut [StepRun],
    prior_failure: Option<ErrorRecord>,
) -> Report {
    crate::wait::with_limit(ctx.calls.clone(), drive_limited(ctx, steps, prior_failure)).await
}

async fn drive_limited(
    ctx: &Ctx,
    steps: &mut [StepRun],
    prior_failure: Option<ErrorRecord>,
) -> Report {
    let mut failure = prior_failure;
    let mut verdicts = Vec::new();
    if failure.is_none() {
        failure = run_stages(ctx, steps).await;
    }
    // Asked to stop: nothing more starts, nothing is put back on the request alone (a
    // failure seen meanwhile is journaled, and a resume compensates it).
    if ctx.interrupt.is_interrupted() {
        return stopped(ctx, steps, failure).await;
    }
    // A lease lost while the steps waited or verified fails the run: someone else may be
    // changing its targets, so its verdicts say nothing.
    failure = failure.or_else(|| ctx.fence.lost().map(|e| e.record()));
    if failure.is_none() {
        failure = revert_temporaries(ctx, steps).await;
    }
    if ctx.interrupt.is_interrupted() {
        return stopped(ctx, steps, failure).await;
    }
    if failure.is_none() {
        failure = run_transaction_checks(ctx, &mut verdicts).await;
    }
    if failure.is_none() && ctx.interrupt.is_interrupted() {
        return stopped(ctx, steps, None).await;
    }
    let (actions, on_success) = match &failure {
        Some(err) => (after_failure(ctx, steps, err).await, Vec::new()),
        // Succeeded: the on-success actions; a stop request during them ends the run
        // interrupted (a resume runs those without a journaled outcome).
        None => match run_actions(ctx, ActionWhen::OnSuccess, &ctx.on_success).await {
            Some(done) => (Vec::new(), done),
            None => return stopped(ctx, steps, None).await,
        },
    };
    finish(ctx, steps, failure, verdicts, (actions, on_success), false).await
}

/// Every stage in turn, all its steps at once, their calls at most `concurrency` at a time
/// (an apply holds a place; a step waiting for its target to converge holds none, and
/// takes one per look): a thousand targets converging together take as long as the
/// slowest, not a thousand over `concurrency` times it. The first failure stops the
/// stages (steps that have not applied yet are left alone).
async fn run_stages(ctx: &Ctx, steps: &mut [StepRun]) -> Option<ErrorRecord> {
    let stop = AtomicBool::new(false);
    let last_stage = steps.iter().map(|s| s.stage).max().unwrap_or(0);
    for stage in 0..=last_stage {
        if ctx.interrupt.is_interrupted() {
            return None;
        }
        let runs: futures::stream::FuturesUnordered<_> = steps
            .iter_mut()
            .filter(|s| s.stage == stage)
            .map(|s| run_step(ctx, s, &stop))
            .collect();
        runs.collect::<Vec<()>>().await;
        if let Some(s) = steps.iter().find(|s| s.state.phase == Phase::Failed) {
            return s.state.error.clone();
        }
    }
    None
}

/// The transaction's own checks, in order, until one fails (recorded as `checks_failed`).
async fn run_transaction_checks(ctx: &Ctx, verdicts: &mut Vec<Verdict>) -> Option<ErrorRecord> {
    for check in &ctx.checks {
        let v = tokio::select! {
            v = run_check(ctx, None, check) => v,
            () = ctx.interrupt.interrupted() => return None,
        };
        verdicts.push(v.clone());
        if !v.passed {
            let e = v.into_result("transaction").err().map(|e| e.record());
            if let Some(rec) = &e {
                let message = rec.message.clone();
                ctx.note(None, Entry::ChecksFailed { error: rec.clone() }, message)
                    .await;
            }
            return e;
        }
    }
    None
}

async fn run_step(ctx: &Ctx, s: &mut StepRun, stop: &AtomicBool) {
    if matches!(
        s.state.phase,
        Phase::Skipped
            | Phase::Verified
            | Phase::Failed
            | Phase::Compensated
            | Phase::CompensationFailed
    ) {
        return;
    }
    let Some(change) = s.state.change.clone() else {
        return;
    };
    // A step yet to apply waits for a place among the calls in flight, and holds it through
    // its intent and apply; one already applied (a resume) waits without one.
    let place = if matches!(s.state.phase, Phase::Pending | Phase::Intent) {
        ctx.calls.clone().acquire_owned().await.ok()
    } else {
        None
    };
    if stop.load(Ordering::SeqCst) && s.state.phase == Phase::Pending {
        return;
    }
    // Asked to stop: a step yet to apply is left alone (one in flight finishes its apply).
    if ctx.interrupt.is_interrupted() && matches!(s.state.phase, Phase::Pending | Phase::Intent) {
        return;
    }
    let span = tracing::info_span!(target: LOG_TARGET, "step", transaction = %ctx.id, step = s.index, target = %s.id, from = %change.from.id, to = %change.to.id);
    let started = Instant::now();
    async {
        ctx.emit(
            EventKind::StepStarted,
            Some(s.index),
            Some(&s.id),
            format!("{} -> {}", change.from.id, change.to.id),
        );
        if let Err((e, maybe_applied)) = advance(ctx, s, &change, place).await {
            fail(ctx, s, stop, e, maybe_applied).await;
        }
    }
    .instrument(span)
    .await;
    s.duration += started.elapsed();
}

/// Takes a step from where it is to verified, recording each transition; on an error,
/// whether the target may have been changed by the step.
async fn advance<P>(
    ctx: &Ctx,
    s: &mut StepRun,
    change: &Change,
    place: Option<P>,
) -> Result<(), (Error, bool)> {
    let keep = |s: &StepRun| {
        let maybe_applied = s.state.maybe_applied;
        move |e| (e, maybe_applied)
    };
    // No change without the target's lease (renewed here, so that a lease taken over since
    // the last renewal is seen).
    if matches!(s.state.phase, Phase::Pending | Phase::Intent) {
        ctx.fence.check(&s.id).await.map_err(keep(s))?;
    }
    if s.state.phase == Phase::Pending {
        let intent = Entry::Intent {
            step: s.index,
            target: s.id.clone(),
            from: change.from.id.clone(),
            to: change.to.id.clone(),
        };
        let k = keep(s);
        ctx.record(Some(s), intent, "").await.map_err(k)?;
    }
    if s.state.phase == Phase::Intent {
        let t0 = Instant::now();
        let target = s.target.clone();
        let change = &Change {
            since: s.state.intent_at,
            ..change.clone()
        };
        let outcome = ctx
            .retry(Some(s.index), &s.id, || target.apply(change))
            .await
            // These errors mean the backend refused before changing anything.
            .map_err(|e| {
                let refused = matches!(
                    e.kind(),
                    ErrorKind::Conflict
                        | ErrorKind::NotFound
                        | ErrorKind::InvalidInput
                        | ErrorKind::Locked
                        | ErrorKind::LeaseLost
                        | ErrorKind::Throttled
                );
                (e, !refused)
            })?;
        let msg = match outcome {
            ApplyOutcome::Applied => format!("moved to {}", change.to.id),
            ApplyOutcome::AlreadyCurrent => format!("already at {}; nothing sent", change.to.id),
        };
        let applied = Entry::Applied {
            step: s.index,
            target: s.id.clone(),
            outcome,
            duration_ms: ms(t0.elapsed()),
        };
        let k = keep(s);
        ctx.record(Some(s), applied, msg).await.map_err(k)?;
    }
    drop(place);
    if s.state.phase == Phase::Applied {
        ctx.emit(
            EventKind::Waiting,
            Some(s.index),
            Some(&s.id),
            format!(
                "waiting up to {:?} for {} to be stable",
                s.timeout, change.to.id
            ),
        );
        let progress = waiting_progress(ctx, s);
        let t0 = Instant::now();
        // Waiting is no call to finish: a stop request ends it (the step stays applied).
        tokio::select! {
            r = s.target.wait_stable(&change.to, s.timeout, &progress) => r.map_err(keep(s))?,
            () = ctx.interrupt.interrupted() => return Ok(()),
        }
        let stable = Entry::Stable {
            step: s.index,
            target: s.id.clone(),
            duration_ms: ms(t0.elapsed()),
        };
        let msg = format!("stable at {} after {:.1?}", change.to.id, t0.elapsed());
        let k = keep(s);
        ctx.record(Some(s), stable, msg).await.map_err(k)?;
    }
    if s.state.phase == Phase::Stable {
        for check in s.checks.clone() {
            let v = tokio::select! {
                v = run_check(ctx, Some(&mut *s), &check) => v,
                () = ctx.interrupt.interrupted() => return Ok(()),
            };
            v.into_result(&s.id.to_string()).map_err(keep(s))?;
        }
        let verified = Entry::StepVerified {
            step: s.index,
            target: s.id.clone(),
        };
        let k = keep(s);
        ctx.record(Some(s), verified, format!("verified at {}", change.to.id))
            .await
            .map_err(k)?;
    }
    Ok(())
}

/// Records a step's failure and stops the stages.
async fn fail(ctx: &Ctx, s: &mut StepRun, stop: &AtomicBool, e: Error, maybe_applied: bool) {
    stop.store(true, Ordering::SeqCst);
    let rec = e.record();
    let message = rec.message.clone();
    let failed = Entry::StepFailed {
        step: s.index,
        target: s.id.clone(),
        maybe_applied,
        error: rec,
    };
    ctx.note(Some(s), failed, message).await;
}

/// Runs one check (a step's when `s` is given, else the transaction's) and records its
/// `checked` transition (a step's verdict joins its state).
async fn run_check(ctx: &Ctx, s: Option<&mut StepRun>, check: &Check) -> Verdict {
    let name = check.verifier.name();
    let (step, target) = s.as_ref().map(|s| (s.index, s.id.clone())).unzip();
    let span =
        tracing::info_span!(target: LOG_TARGET, "verify", transaction = %ctx.id, check = %name);
    let v = check
        .policy
        .run(&*check.verifier, |n, o| {
            if !o.passed {
                ctx.emit(
                    EventKind::CheckFailed,
                    step,
                    target.as_ref(),
                    format!("{name} attempt {n}: {}", o.evidence),
                );
            }
        })
        .instrument(span)
        .await;
    let message = format!("{} passed: {}", v.name, v.evidence);
    let checked = Entry::Checked {
        step,
        check: v.name.clone(),
        passed: v.passed,
        attempts: v.attempts,
        evidence: v.evidence.clone(),
    };
    ctx.note(s, checked, message).await;
    v
}

/// Puts every temporary step's target back to its captured revision once the stages are
/// done: the last stage's first, the steps of one stage at once (bounded), as they were
/// applied. A failure here fails the transaction (and compensation tries again).
async fn revert_temporaries(ctx: &Ctx, steps: &mut [StepRun]) -> Option<ErrorRecord> {
    let done = |s: &StepRun| s.temporary && s.state.phase == Phase::Verified;
    let mut stages: Vec<usize> = steps.iter().filter(|s| done(s)).map(|s| s.stage).collect();
    stages.sort_unstable_by(|a, b| b.cmp(a));
    stages.dedup();
    for stage in stages {
        let reverts: Vec<_> = steps
            .iter_mut()
            .filter(|s| done(s) && s.stage == stage)
            .map(|s| revert_one(ctx, s))
            .collect();
        stream::iter(reverts)
            .buffer_unordered(ctx.concurrency)
            .collect::<Vec<()>>()
            .await;
        if let Some(s) = steps
            .iter()
            .find(|s| s.temporary && s.stage == stage && s.state.phase == Phase::Failed)
        {
            return s.state.error.clone();
        }
    }
    None
}

async fn revert_one(ctx: &Ctx, s: &mut StepRun) {
    let Some(back) = s.state.change.as_ref().map(Change::reverse) else {
        return;
    };
    let span = tracing::info_span!(target: LOG_TARGET, "revert", transaction = %ctx.id, step = s.index, target = %s.id, to = %back.to.id);
    let t0 = Instant::now();
    let intent = Entry::RevertIntent {
        step: s.index,
        target: s.id.clone(),
        from: back.from.id.clone(),
        to: back.to.id.clone(),
    };
    let msg = format!(
        "temporary step done: putting back {} -> {}",
        back.from.id, back.to.id
    );
    let result: Result<()> = async {
        ctx.record(Some(&mut *s), intent, msg).await?;
        let outcome = put_back(ctx, s, &back).await?;
        let reverted = Entry::Reverted {
            step: s.index,
            target: s.id.clone(),
            outcome,
            duration_ms: ms(t0.elapsed()),
        };
        ctx.record(Some(&mut *s), reverted, format!("back at {}", back.to.id))
            .await
    }
    .instrument(span)
    .await;
    s.duration += t0.elapsed();
    if let Err(e) = result {
        let maybe_applied = s.state.maybe_applied;
        fail(ctx, s, &AtomicBool::new(false), e, maybe_applied).await;
    }
}

/// Applies `back` (the reverse of the step's change) and waits until the target is stable
/// at its captured revision: the shared part of compensating a step and reverting a
/// temporary one. Retryable errors of both are retried under the transaction's
/// [`CompensationRetry`](crate::wait::CompensationRetry), within one deadline; the wait
/// keeps the step's timeout in all.
pub(crate) async fn put_back(ctx: &Ctx, s: &StepRun, back: &Change) -> Result<ApplyOutcome> {
    let policy = ctx.compensation_retry;
    let until = Instant::now() + policy.deadline;
    let on_retry = |n, e: &Error, d| ctx.retrying(Some(s.index), &s.id, n, e, d);
    let target = s.target.clone();
    ctx.fence.check(&s.id).await?;
    let back = &Change {
        since: s.state.back_at,
        ..back.clone()
    };
    let apply = || async {
        let _place = ctx.calls.acquire().await;
        target.apply(back).await
    };
    let outcome = policy.run_until(until, apply, on_retry).await?;
    let progress = waiting_progress(ctx, s);
    let wait_until = Instant::now() + s.timeout;
    policy
        .run_until(
            until.min(wait_until),
            || {
                let left = wait_until.saturating_duration_since(Instant::now());
                s.target
                    .wait_stable(&back.to, left.max(Duration::from_millis(1)), &progress)
            },
            on_retry,
        )
        .await?;
    Ok(outcome)
}

/// Progress messages of a step's wait, as `waiting` events.
fn waiting_progress(ctx: &Ctx, s: &StepRun) -> Progress {
    let emitter = ctx.emitter.clone();
    let (index, id) = (s.index, s.id.clone());
    Progress::new(move |m| emitter.emit(EventKind::Waiting, Some(index), Some(&id), m))
}
