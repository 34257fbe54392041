//! The lifecycle itself. `run` does preflight and locking, then hands the steps to `drive`,
//! which [`super::resume`] also uses to finish a crashed run from its journal.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tokio::time::Instant;
use tracing::Instrument;

use super::{
    Action, ActionReport, Attention, FailurePolicy, Outcome, Report, StepReport, StepStatus,
    Transaction, TransactionBuilder,
};
use crate::error::{Error, ErrorKind, ErrorRecord, Result};
use crate::events::{Emitter, EventKind};
use crate::journal::{self, Entry, JournalWriter, StepSpec};
use crate::lock::{Holder, Lease, LockManager};
use crate::revision::Change;
use crate::target::{ApplyOutcome, Progress, RollbackTarget, TargetId};
use crate::verify::{refused, Check, Verdict};
use crate::wait::{CompensationRetry, RetryPolicy};

pub(crate) fn build(b: TransactionBuilder) -> Result<Transaction> {
    let what = format!("transaction {:?}", b.name);
    if b.name.trim().is_empty() {
        return Err(Error::invalid(
            "transaction",
            "a transaction needs a name (what is being rolled back)",
        ));
    }
    if b.concurrency == 0 {
        return Err(Error::invalid(what, "concurrency must be at least 1"));
    }
    if b.lease_ttl < Duration::from_secs(1) {
        return Err(Error::invalid(what, "lease_ttl must be at least 1 second"));
    }
    let steps: Vec<_> = b.stages.iter().flatten().collect();
    if steps.is_empty() {
        return Err(Error::invalid(
            what,
            "has no steps; add at least one with .step(Step::new(target, selector))",
        ));
    }
    let mut seen = HashSet::new();
    for s in &steps {
        let id = s.target.id();
        if !seen.insert(id.clone()) {
            return Err(Error::invalid(
                id.to_string(),
                "appears in two steps; a transaction moves each target once",
            ));
        }
        if s.timeout.is_zero() {
            return Err(Error::invalid(
                id.to_string(),
                "the step's stability timeout is zero; give it time to converge",
            ));
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    // Chosen once, so that a dry run names the file the run will write.
    let journal = b.journal.clone().unwrap_or_else(|| {
        journal::default_dir().join(format!(
            "{}-{}.jsonl",
            Utc::now().format("%Y%m%dT%H%M%SZ"),
            &id[..8]
        ))
    });
    Ok(Transaction { id, journal, b })
}

/// Where a step is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Pending,
    Skipped,
    Intent,
    Applied,
    Stable,
    Verified,
    Failed,
    Compensated,
    CompensationFailed,
    Reverted,
}

/// One step being driven.
#[derive(Debug)]
pub(crate) struct StepRun {
    pub index: usize,
    pub stage: usize,
    pub target: Arc<dyn RollbackTarget>,
    pub id: TargetId,
    pub change: Option<Change>,
    pub checks: Vec<Check>,
    pub timeout: Duration,
    pub temporary: bool,
    pub phase: Phase,
    pub maybe_applied: bool,
    pub error: Option<ErrorRecord>,
    pub verdicts: Vec<Verdict>,
    pub duration: Duration,
}

/// Everything `drive` needs besides the steps.
pub(crate) struct Ctx {
    pub id: String,
    pub name: String,
    pub reason: Option<String>,
    pub policy: FailurePolicy,
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub compensation_retry: CompensationRetry,
    pub journal: JournalWriter,
    pub emitter: Emitter,
    pub checks: Vec<Check>,
    pub on_failure: Vec<Arc<dyn Action>>,
    pub attention: Mutex<Vec<Attention>>,
    pub started_at: DateTime<Utc>,
    pub start: Instant,
}

impl Ctx {
    fn log(&self, entry: Entry) -> Result<()> {
        self.journal.append(entry).map(|_| ())
    }

    fn attention(&self, target: Option<&TargetId>, message: impl Into<String>) {
        let a = Attention {
            target: target.cloned(),
            message: message.into(),
        };
        tracing::warn!(transaction = %self.id, "needs attention: {a}");
        match self.attention.lock() {
            Ok(mut v) => v.push(a),
            Err(p) => p.into_inner().push(a),
        }
    }

    fn emit(
        &self,
        kind: EventKind,
        step: Option<usize>,
        target: Option<&TargetId>,
        msg: impl Into<String>,
    ) {
        self.emitter.emit(kind, step, target, msg)
    }

    async fn retry<T, F, Fut>(&self, step: Option<usize>, target: &TargetId, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.retry
            .run(op, |n, e, d| self.retrying(step, target, n, e, d))
            .await
    }

    fn retrying(&self, step: Option<usize>, target: &TargetId, n: u32, e: &Error, d: Duration) {
        self.emit(
            EventKind::Retrying,
            step,
            Some(target),
            format!("attempt {} in {d:.1?} after: {e}", n + 1),
        )
    }

    /// Gives the leases back, then journals `released` (unless one could not be given
    /// back: then a resume tries again, and the rest lapse after their TTL).
    pub(crate) async fn release(&self, locks: &dyn LockManager, leases: &Mutex<Vec<Lease>>) {
        let held = leases.lock().map(|l| l.clone()).unwrap_or_default();
        if let Some(targets) = release_all(locks, &held).await {
            let _ = self.log(Entry::Released { targets });
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

pub(crate) async fn run(t: &Transaction, dry_run: bool) -> Result<Report> {
    let b = &t.b;
    let what = format!("transaction {:?}", b.name);
    // Before anything else, dry run or not: a device or named pipe must not be read, and
    // checks, policies and actions are input too, refused before any target is read.
    journal::check_path(&t.journal)?;
    validate_checks(b)?;
    if !dry_run && b.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::invalid(
            what,
            "a reason is required for a real run (why are you rolling back?); set it with .reason(\"...\")",
        ));
    }
    let path = t.journal.clone();
    // A dry run reports it too: the run it previews would be refused.
    if path.exists()
        && std::fs::metadata(&path)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    {
        return Err(Error::invalid(
            what,
            format!(
                "journal {} already holds a run; give a new path, or resume that run with rollback_core::resume",
                path.display()
            ),
        ));
    }
    // A dry run changes nothing, not even the journal: the real run may use the same path.
    let journal = if dry_run {
        JournalWriter::disabled(&path, &t.id)
    } else {
        JournalWriter::open(&path, &t.id)?
    };
    let holder = Holder {
        name: b
            .holder
            .clone()
            .unwrap_or_else(|| Holder::current(&t.id).name),
        transaction: t.id.clone(),
        journal: None,
    }
    .with_journal(&path);
    let steps_in: Vec<(usize, &super::Step)> = b
        .stages
        .iter()
        .enumerate()
        .flat_map(|(stage, steps)| steps.iter().map(move |s| (stage, s)))
        .collect();
    let specs: Vec<StepSpec> = steps_in
        .iter()
        .enumerate()
        .map(|(i, (stage, s))| StepSpec {
            step: i,
            stage: *stage,
            target: s.target.id(),
            spec: s.target.spec(),
            selector: s.selector.clone(),
            allow_current: s.allow_current,
            temporary: s.temporary,
            checks: s.checks.iter().map(Check::spec).collect(),
            timeout_ms: ms(s.timeout),
        })
        .collect();
    let ctx = Ctx {
        id: t.id.clone(),
        name: b.name.clone(),
        reason: b.reason.clone(),
        policy: b.policy,
        concurrency: b.concurrency,
        retry: b.retry,
        compensation_retry: b.compensation_retry,
        journal,
        emitter: Emitter {
            transaction: t.id.clone(),
            sinks: b.sinks.clone(),
        },
        checks: b.checks.clone(),
        on_failure: b.on_failure.clone(),
        attention: Mutex::new(Vec::new()),
        started_at: Utc::now(),
        start: Instant::now(),
    };
    ctx.log(Entry::Begin {
        name: b.name.clone(),
        reason: b.reason.clone(),
        holder: holder.clone(),
        policy: b.policy,
        dry_run,
        concurrency: b.concurrency,
        steps: specs,
        checks: b.checks.iter().map(Check::spec).collect(),
        on_failure: b.on_failure.iter().map(|a| a.name()).collect(),
        locks: b.locks.spec(),
    })?;
    ctx.emit(
        EventKind::Started,
        None,
        None,
        format!(
            "{} ({} step(s)){}",
            b.name,
            steps_in.len(),
            if dry_run { ", dry run" } else { "" }
        ),
    );

    // 1. Preflight: read only.
    // The futures are made before they are streamed so the run future stays `Send`
    // (closures over borrowed items in stream combinators are not, for now).
    let checks: Vec<_> = steps_in
        .iter()
        .enumerate()
        .map(|(i, (_, s))| preflight(&ctx, i, s))
        .collect();
    let results: Vec<Result<(Change, bool)>> =
        stream::iter(checks).buffered(b.concurrency).collect().await;
    let mut steps = Vec::with_capacity(results.len());
    let mut first_err = None;
    for (i, ((stage, s), r)) in steps_in.iter().zip(results).enumerate() {
        match r {
            Ok((change, skipped)) => steps.push(StepRun {
                index: i,
                stage: *stage,
                target: s.target.clone(),
                id: s.target.id(),
                change: Some(change),
                checks: s.checks.clone(),
                timeout: s.timeout,
                temporary: s.temporary,
                phase: if skipped {
                    Phase::Skipped
                } else {
                    Phase::Pending
                },
                maybe_applied: false,
                error: None,
                verdicts: Vec::new(),
                duration: Duration::ZERO,
            }),
            Err(e) => {
                ctx.emit(
                    EventKind::Failed,
                    Some(i),
                    Some(&s.target.id()),
                    format!("preflight: {e}"),
                );
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        abort(&ctx, &e);
        return Err(e);
    }
    let changes: Vec<Change> = steps.iter().filter_map(|s| s.change.clone()).collect();
    let skipped: Vec<usize> = steps
        .iter()
        .filter(|s| s.phase == Phase::Skipped)
        .map(|s| s.index)
        .collect();
    ctx.log(Entry::Planned { changes, skipped })?;
    for s in &steps {
        if let Some(c) = &s.change {
            let msg = if s.phase == Phase::Skipped {
                format!("already at {}; skipped", c.to.id)
            } else {
                format!("{} -> {}", c.from.id, c.to.id)
            };
            ctx.emit(EventKind::Planned, Some(s.index), Some(&s.id), msg);
        }
    }
    if dry_run {
        return Ok(finish(&ctx, &mut steps, None, Vec::new(), Vec::new(), true));
    }

    // 2. Lock every target, in a fixed order so two transactions cannot deadlock.
    let leases = match lock_all(&ctx, b.locks.as_ref(), &steps, &holder, b.lease_ttl).await {
        Ok(l) => l,
        Err(e) => {
            abort(&ctx, &e);
            return Err(e);
        }
    };
    // Stops renewing when the run ends, or when its future is dropped (Ctrl-C, a cancelled
    // task, a timeout): the leases then lapse after their TTL instead of living on.
    let renewer = spawn_renewal(&ctx, b.locks.clone(), leases.clone(), b.lease_ttl);

    // 3-5. Apply, wait, verify; compensate or halt; report.
    let report = drive(&ctx, &mut steps, None).await;

    drop(renewer);
    ctx.release(b.locks.as_ref(), &leases).await;
    Ok(report)
}

/// Gives every lease back; the targets, or `None` if one could not be given back.
pub(crate) async fn release_all(
    locks: &dyn LockManager,
    leases: &[Lease],
) -> Option<Vec<TargetId>> {
    let mut all = true;
    for lease in leases {
        if let Err(e) = locks.release(lease).await {
            tracing::warn!(error = %e, target_id = %lease.target, "could not release a lease; it will expire by itself");
            all = false;
        }
    }
    all.then(|| leases.iter().map(|l| l.target.clone()).collect())
}

/// Preflight's first part: every step's checks, the transaction's checks and the on-failure
/// actions validated without being made ([`Check::validate`], [`Action::validate`]).
fn validate_checks(b: &TransactionBuilder) -> Result<()> {
    for s in b.stages.iter().flatten() {
        let target = s.target.id().to_string();
        for c in &s.checks {
            c.validate(&target)?;
        }
    }
    for c in &b.checks {
        c.validate("transaction")?;
    }
    for a in &b.on_failure {
        a.validate().map_err(|e| {
            refused(
                "transaction",
                &format!("on-failure action {:?}", a.name()),
                &e,
            )
        })?;
    }
    Ok(())
}

/// Records a run that stopped before changing anything.
fn abort(ctx: &Ctx, e: &Error) {
    let _ = ctx.log(Entry::End {
        outcome: Outcome::Failed,
        error: Some(e.record()),
        needs_attention: Vec::new(),
        duration_ms: ms(ctx.start.elapsed()),
    });
    ctx.emit(
        EventKind::Finished,
        None,
        None,
        format!("failed before changing anything: {e}"),
    );
}

async fn preflight(ctx: &Ctx, index: usize, s: &super::Step) -> Result<(Change, bool)> {
    let t = &s.target;
    let id = t.id();
    let span = tracing::info_span!("preflight", transaction = %ctx.id, step = index, target = %id);
    async {
        let current = ctx.retry(Some(index), &id, || t.current()).await?;
        let to = ctx.retry(Some(index), &id, || t.resolve(&s.selector)).await?;
        // Already there only if the facts agree too: a Lambda alias at version 3 with canary
        // weights is not at a clean version 3, and moving it there clears the weights.
        if to.same_as(&current) && to.facts == current.facts {
            if s.allow_current {
                return Ok((Change::new(id, current.clone(), current), true));
            }
            return Err(Error::invalid(
                id.to_string(),
                format!(
                    "already at revision {} (selected by {}); nothing to roll back. Choose another revision, or accept it with Step::allow_current()",
                    current.id, s.selector
                ),
            ));
        }
        let change = ctx.retry(Some(index), &id, || t.plan(&to)).await?;
        if !change.from.same_as(&current) {
            return Err(Error::Conflict {
                target: id.to_string(),
                expected: current.id,
                found: change.from.id, source: None });
        }
        Ok((change, false))
    }
    .instrument(span)
    .await
}

async fn lock_all(
    ctx: &Ctx,
    locks: &dyn LockManager,
    steps: &[StepRun],
    holder: &Holder,
    ttl: Duration,
) -> Result<Arc<Mutex<Vec<Lease>>>> {
    let mut ids: Vec<&TargetId> = steps.iter().map(|s| &s.id).collect();
    ids.sort();
    let mut leases = Vec::new();
    for id in &ids {
        match locks.acquire(id, holder, ttl).await {
            Ok(l) => leases.push(l),
            Err(e) => {
                release_all(locks, &leases).await;
                return Err(e);
            }
        }
    }
    ctx.log(Entry::Locked {
        targets: ids.iter().map(|i| (*i).clone()).collect(),
    })?;
    ctx.emit(
        EventKind::Locked,
        None,
        None,
        format!("{} target(s) locked by {holder}", ids.len()),
    );
    Ok(Arc::new(Mutex::new(leases)))
}

/// A background task stopped when this is dropped.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps the leases alive while the run goes on: renews every third of the TTL, until the
/// returned guard is dropped.
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
                        tracing::error!(transaction = %tx, error = %e, "lease lost");
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

/// Applies, waits for and verifies every pending step, stage by stage; then the
/// transaction's checks; on failure compensates or halts and runs the on-failure actions.
pub(crate) async fn drive(
    ctx: &Ctx,
    steps: &mut [StepRun],
    prior_failure: Option<ErrorRecord>,
) -> Report {
    let mut failure = prior_failure;
    let mut verdicts = Vec::new();
    if failure.is_none() {
        let stop = AtomicBool::new(false);
        let last_stage = steps.iter().map(|s| s.stage).max().unwrap_or(0);
        for stage in 0..=last_stage {
            let runs: Vec<_> = steps
                .iter_mut()
                .filter(|s| s.stage == stage)
                .map(|s| run_step(ctx, s, &stop))
                .collect();
            stream::iter(runs)
                .buffer_unordered(ctx.concurrency)
                .collect::<Vec<()>>()
                .await;
            if let Some(s) = steps.iter().find(|s| s.phase == Phase::Failed) {
                failure = s.error.clone();
                break;
            }
        }
        if failure.is_none() {
            failure = revert_temporaries(ctx, steps).await;
        }
        if failure.is_none() {
            for check in &ctx.checks {
                let v = run_check(ctx, None, None, check).await;
                let passed = v.passed;
                verdicts.push(v.clone());
                if !passed {
                    let e = v.into_result("transaction").err().map(|e| e.record());
                    if let Some(rec) = &e {
                        let _ = ctx.log(Entry::ChecksFailed { error: rec.clone() });
                        ctx.emit(EventKind::Failed, None, None, rec.message.clone());
                    }
                    failure = e;
                    break;
                }
            }
        }
    }
    let mut actions = Vec::new();
    if let Some(err) = &failure {
        match ctx.policy {
            FailurePolicy::Compensate => compensate(ctx, steps).await,
            FailurePolicy::Halt => {
                for s in steps
                    .iter()
                    .filter(|s| s.maybe_applied && !is_back(s.phase))
                {
                    if let Some(c) = &s.change {
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
        }
        tracing::warn!(transaction = %ctx.id, error = %err, "transaction failed");
        for a in &ctx.on_failure {
            let name = a.name();
            let (ok, message) = match a.run().await {
                Ok(m) => (true, m),
                Err(e) => (false, e.to_string()),
            };
            let _ = ctx.log(Entry::Action {
                name: name.clone(),
                ok,
                message: message.clone(),
            });
            ctx.emit(EventKind::Action, None, None, format!("{name}: {message}"));
            if !ok {
                ctx.attention(
                    None,
                    format!("on-failure action {name:?} failed: {message}"),
                );
            }
            actions.push(ActionReport { name, ok, message });
        }
    }
    finish(ctx, steps, failure, verdicts, actions, false)
}

fn is_back(p: Phase) -> bool {
    matches!(
        p,
        Phase::Compensated | Phase::CompensationFailed | Phase::Reverted
    )
}

async fn run_step(ctx: &Ctx, s: &mut StepRun, stop: &AtomicBool) {
    if matches!(
        s.phase,
        Phase::Skipped
            | Phase::Verified
            | Phase::Failed
            | Phase::Compensated
            | Phase::CompensationFailed
    ) {
        return;
    }
    if stop.load(Ordering::SeqCst) && s.phase == Phase::Pending {
        return;
    }
    let Some(change) = s.change.clone() else {
        return;
    };
    let span = tracing::info_span!("step", transaction = %ctx.id, step = s.index, target = %s.id, from = %change.from.id, to = %change.to.id);
    let started = Instant::now();
    async {
        ctx.emit(
            EventKind::StepStarted,
            Some(s.index),
            Some(&s.id),
            format!("{} -> {}", change.from.id, change.to.id),
        );
        if matches!(s.phase, Phase::Pending | Phase::Intent) {
            if s.phase == Phase::Pending {
                if let Err(e) = ctx.log(Entry::Intent {
                    step: s.index,
                    target: s.id.clone(),
                    from: change.from.id.clone(),
                    to: change.to.id.clone(),
                }) {
                    fail(ctx, s, stop, e);
                    return;
                }
                s.phase = Phase::Intent;
            }
            s.maybe_applied = true;
            let t0 = Instant::now();
            let target = s.target.clone();
            match ctx
                .retry(Some(s.index), &s.id, || target.apply(&change))
                .await
            {
                Ok(outcome) => {
                    if let Err(e) = ctx.log(Entry::Applied {
                        step: s.index,
                        target: s.id.clone(),
                        outcome,
                        duration_ms: ms(t0.elapsed()),
                    }) {
                        fail(ctx, s, stop, e);
                        return;
                    }
                    s.phase = Phase::Applied;
                    let msg = match outcome {
                        ApplyOutcome::Applied => format!("moved to {}", change.to.id),
                        ApplyOutcome::AlreadyCurrent => {
                            format!("already at {}; nothing sent", change.to.id)
                        }
                    };
                    ctx.emit(EventKind::Applied, Some(s.index), Some(&s.id), msg);
                }
                Err(e) => {
                    // These errors mean the backend refused before changing anything.
                    if matches!(
                        e.kind(),
                        ErrorKind::Conflict
                            | ErrorKind::NotFound
                            | ErrorKind::InvalidInput
                            | ErrorKind::Locked
                            | ErrorKind::Throttled
                    ) {
                        s.maybe_applied = false;
                    }
                    fail(ctx, s, stop, e);
                    return;
                }
            }
        }
        if s.phase == Phase::Applied {
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
            if let Err(e) = s.target.wait_stable(&change.to, s.timeout, &progress).await {
                fail(ctx, s, stop, e);
                return;
            }
            if let Err(e) = ctx.log(Entry::Stable {
                step: s.index,
                target: s.id.clone(),
                duration_ms: ms(t0.elapsed()),
            }) {
                fail(ctx, s, stop, e);
                return;
            }
            s.phase = Phase::Stable;
            ctx.emit(
                EventKind::Stable,
                Some(s.index),
                Some(&s.id),
                format!("stable at {} after {:.1?}", change.to.id, t0.elapsed()),
            );
        }
        if s.phase == Phase::Stable {
            for check in s.checks.clone() {
                let v = run_check(ctx, Some(s.index), Some(&s.id), &check).await;
                s.verdicts.push(v.clone());
                if let Err(e) = v.into_result(&s.id.to_string()) {
                    fail(ctx, s, stop, e);
                    return;
                }
            }
            if let Err(e) = ctx.log(Entry::StepVerified {
                step: s.index,
                target: s.id.clone(),
            }) {
                fail(ctx, s, stop, e);
                return;
            }
            s.phase = Phase::Verified;
            ctx.emit(
                EventKind::Verified,
                Some(s.index),
                Some(&s.id),
                format!("verified at {}", change.to.id),
            );
        }
    }
    .instrument(span)
    .await;
    s.duration += started.elapsed();
}

fn fail(ctx: &Ctx, s: &mut StepRun, stop: &AtomicBool, e: Error) {
    stop.store(true, Ordering::SeqCst);
    let rec = e.record();
    let _ = ctx.log(Entry::StepFailed {
        step: s.index,
        target: s.id.clone(),
        maybe_applied: s.maybe_applied,
        error: rec.clone(),
    });
    ctx.emit(
        EventKind::Failed,
        Some(s.index),
        Some(&s.id),
        rec.message.clone(),
    );
    s.error = Some(rec);
    s.phase = Phase::Failed;
}

async fn run_check(
    ctx: &Ctx,
    step: Option<usize>,
    target: Option<&TargetId>,
    check: &Check,
) -> Verdict {
    let name = check.verifier.name();
    let span = tracing::info_span!("verify", transaction = %ctx.id, check = %name);
    let v = check
        .policy
        .run(&*check.verifier, |n, o| {
            if !o.passed {
                ctx.emit(
                    EventKind::CheckFailed,
                    step,
                    target,
                    format!("{name} attempt {n}: {}", o.evidence),
                );
            }
        })
        .instrument(span)
        .await;
    let _ = ctx.log(Entry::Checked {
        step,
        check: v.name.clone(),
        passed: v.passed,
        attempts: v.attempts,
        evidence: v.evidence.clone(),
    });
    if v.passed {
        ctx.emit(
            EventKind::Verified,
            step,
            target,
            format!("{} passed: {}", v.name, v.evidence),
        );
    }
    v
}

/// Puts every temporary step's target back to its captured revision once the stages are
/// done: the last stage's first, the steps of one stage at once (bounded), as they were
/// applied. A failure here fails the transaction (and compensation tries again).
async fn revert_temporaries(ctx: &Ctx, steps: &mut [StepRun]) -> Option<ErrorRecord> {
    let mut stages: Vec<usize> = steps
        .iter()
        .filter(|s| s.temporary && s.phase == Phase::Verified)
        .map(|s| s.stage)
        .collect();
    stages.sort_unstable_by(|a, b| b.cmp(a));
    stages.dedup();
    for stage in stages {
        let reverts: Vec<_> = steps
            .iter_mut()
            .filter(|s| s.temporary && s.phase == Phase::Verified && s.stage == stage)
            .map(|s| revert_one(ctx, s))
            .collect();
        stream::iter(reverts)
            .buffer_unordered(ctx.concurrency)
            .collect::<Vec<()>>()
            .await;
        if let Some(s) = steps
            .iter()
            .find(|s| s.temporary && s.stage == stage && s.phase == Phase::Failed)
        {
            return s.error.clone();
        }
    }
    None
}

/// Applies `back` (the reverse of the step's change) and waits until the target is stable
/// at its captured revision: the shared part of compensating a step and reverting a
/// temporary one. Retryable errors of both are retried under the transaction's
/// [`CompensationRetry`], within one deadline; the wait keeps the step's timeout in all.
async fn put_back(ctx: &Ctx, s: &StepRun, back: &Change) -> Result<ApplyOutcome> {
    let policy = ctx.compensation_retry;
    let until = Instant::now() + policy.deadline;
    let on_retry = |n, e: &Error, d| ctx.retrying(Some(s.index), &s.id, n, e, d);
    let target = s.target.clone();
    let outcome = policy
        .run_until(until, || target.apply(back), on_retry)
        .await?;
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

async fn revert_one(ctx: &Ctx, s: &mut StepRun) {
    let Some(change) = s.change.clone() else {
        return;
    };
    let back = change.reverse();
    let span = tracing::info_span!("revert", transaction = %ctx.id, step = s.index, target = %s.id, to = %back.to.id);
    let t0 = Instant::now();
    let result: Result<ApplyOutcome> = async {
        ctx.emit(
            EventKind::Reverting,
            Some(s.index),
            Some(&s.id),
            format!(
                "temporary step done: putting back {} -> {}",
                back.from.id, back.to.id
            ),
        );
        ctx.log(Entry::RevertIntent {
            step: s.index,
            target: s.id.clone(),
            from: back.from.id.clone(),
            to: back.to.id.clone(),
        })?;
        let outcome = put_back(ctx, s, &back).await?;
        ctx.log(Entry::Reverted {
            step: s.index,
            target: s.id.clone(),
            outcome,
            duration_ms: ms(t0.elapsed()),
        })?;
        Ok(outcome)
    }
    .instrument(span)
    .await;
    s.duration += t0.elapsed();
    match result {
        Ok(_) => {
            s.phase = Phase::Reverted;
            ctx.emit(
                EventKind::Reverted,
                Some(s.index),
                Some(&s.id),
                format!("back at {}", back.to.id),
            );
        }
        Err(e) => fail(ctx, s, &AtomicBool::new(false), e),
    }
}

/// Puts every step that may have changed its target back to the captured revision, newest
/// stage first, one at a time, waiting for each.
async fn compensate(ctx: &Ctx, steps: &mut [StepRun]) {
    let mut order: Vec<&mut StepRun> = steps
        .iter_mut()
        .filter(|s| s.maybe_applied && !is_back(s.phase) && s.phase != Phase::Skipped)
        .collect();
    order.sort_by_key(|s| std::cmp::Reverse((s.stage, s.index)));
    for s in order {
        let Some(change) = s.change.clone() else {
            continue;
        };
        let back = change.reverse();
        let span = tracing::info_span!("compensate", transaction = %ctx.id, step = s.index, target = %s.id, to = %back.to.id);
        let t0 = Instant::now();
        let result: Result<ApplyOutcome> = async {
            ctx.emit(
                EventKind::Compensating,
                Some(s.index),
                Some(&s.id),
                format!("putting back {} -> {}", back.from.id, back.to.id),
            );
            ctx.log(Entry::CompensateIntent {
                step: s.index,
                target: s.id.clone(),
                from: back.from.id.clone(),
                to: back.to.id.clone(),
            })?;
            put_back(ctx, s, &back).await
        }
        .instrument(span)
        .await;
        s.duration += t0.elapsed();
        match result {
            Ok(outcome) => {
                let _ = ctx.log(Entry::Compensated {
                    step: s.index,
                    target: s.id.clone(),
                    outcome,
                    duration_ms: ms(t0.elapsed()),
                });
                s.phase = Phase::Compensated;
                if let Some(note) = s.target.compensation_note(&change) {
                    ctx.attention(Some(&s.id), note);
                }
                ctx.emit(
                    EventKind::Compensated,
                    Some(s.index),
                    Some(&s.id),
                    format!("back at {}", back.to.id),
                );
            }
            Err(e) => {
                let rec = e.record();
                let _ = ctx.log(Entry::CompensationFailed {
                    step: s.index,
                    target: s.id.clone(),
                    error: rec.clone(),
                });
                ctx.emit(
                    EventKind::Failed,
                    Some(s.index),
                    Some(&s.id),
                    format!("compensation: {e}"),
                );
                ctx.attention(
                    Some(&s.id),
                    format!(
                        "could not be put back to {} (it was moved to {}): {e}; restore it by hand",
                        back.to.id, back.from.id
                    ),
                );
                s.phase = Phase::CompensationFailed;
                if s.error.is_none() {
                    s.error = Some(rec);
                }
            }
        }
    }
}

pub(crate) fn status_of(phase: Phase, dry_run: bool) -> StepStatus {
    match phase {
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

fn finish(
    ctx: &Ctx,
    steps: &mut [StepRun],
    failure: Option<ErrorRecord>,
    checks: Vec<Verdict>,
    actions: Vec<ActionReport>,
    dry_run: bool,
) -> Report {
    let outcome = if dry_run {
        Outcome::Planned
    } else if failure.is_none() {
        Outcome::Succeeded
    } else if ctx.policy == FailurePolicy::Compensate
        && !steps
            .iter()
            .any(|s| s.maybe_applied && !matches!(s.phase, Phase::Compensated | Phase::Reverted))
    {
        Outcome::Compensated
    } else {
        Outcome::Failed
    };
    let needs_attention = match ctx.attention.lock() {
        Ok(v) => v.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let duration = ctx.start.elapsed();
    if let Err(e) = ctx.log(Entry::End {
        outcome,
        error: failure.clone(),
        needs_attention: needs_attention.clone(),
        duration_ms: ms(duration),
    }) {
        tracing::error!(error = %e, "could not write the end of the journal");
    }
    ctx.emit(
        EventKind::Finished,
        None,
        None,
        format!("{outcome} in {duration:.1?}"),
    );
    Report {
        transaction: ctx.id.clone(),
        name: ctx.name.clone(),
        reason: ctx.reason.clone(),
        outcome,
        steps: steps
            .iter()
            .map(|s| StepReport {
                step: s.index,
                stage: s.stage,
                target: s.id.clone(),
                from: s.change.as_ref().map(|c| c.from.clone()),
                to: s.change.as_ref().map(|c| c.to.clone()),
                diff: s
                    .change
                    .as_ref()
                    .map(|c| c.diff.clone())
                    .unwrap_or_default(),
                status: status_of(s.phase, dry_run),
                error: s.error.clone(),
                verdicts: s.verdicts.clone(),
                duration: s.duration,
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
