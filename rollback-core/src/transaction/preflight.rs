//! Preflight, with no mutation: every check, policy and on-failure action validated before
//! any target is read, then every current revision captured, selectors resolved and the
//! plan built; `begin` and `planned` recorded (a dry run ends here).

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use futures::stream::{self, StreamExt};
use tokio::time::Instant;
use tracing::Instrument;

use super::context::{ms, Ctx, StepRun, LOG_TARGET};
use super::transition::StepState;
use super::{ActionWhen, Outcome, Step, Transaction, TransactionBuilder};
use crate::error::{Error, Result};
use crate::events::{Emitter, EventKind};
use crate::journal::{self, Entry, JournalWriter, StepSpec};
use crate::lock::Holder;
use crate::revision::Change;
use crate::selector::Selector;
use crate::verify::{refused, Check};

/// The run, planned: its context, its steps (each planned or skipped) and who holds its
/// leases. On an error nothing was changed, and a run that got as far as `begin` has
/// recorded its end.
pub(crate) async fn preflight(
    t: &Transaction,
    dry_run: bool,
) -> Result<(Ctx, Vec<StepRun>, Holder)> {
    let b = &t.b;
    let what = format!("transaction {:?}", b.name);
    // Before anything else, dry run or not: a device or named pipe must not be read, and
    // checks, policies and actions are input too, refused before any target is read.
    journal::check_path(&t.journal)?;
    validate_checks(b)?;
    preflight_actions(b).await?;
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
        let w = JournalWriter::open(&path, &t.id)?;
        match &b.journal_store {
            Some(store) => w.with_store(store.clone()),
            None => w,
        }
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
    let steps_in: Vec<(usize, &Step)> = b
        .stages
        .iter()
        .enumerate()
        .flat_map(|(stage, steps)| steps.iter().map(move |s| (stage, s)))
        .collect();
    let ctx = Ctx {
        id: t.id.clone(),
        name: b.name.clone(),
        reason: b.reason.clone(),
        policy: b.policy,
        concurrency: b.concurrency,
        calls: std::sync::Arc::new(tokio::sync::Semaphore::new(b.concurrency)),
        retry: b.retry,
        compensation_retry: b.compensation_retry,
        journal,
        emitter: Emitter {
            transaction: t.id.clone(),
            sinks: b.sinks.clone(),
        },
        checks: b.checks.clone(),
        on_failure: b.on_failure.clone(),
        on_success: b.on_success.clone(),
        attention: Mutex::new(Vec::new()),
        fence: Default::default(),
        known_good: b.known_good.clone(),
        started_at: Utc::now(),
        start: Instant::now(),
        interrupt: b.interrupt.clone(),
        notifiers: b.notifiers.clone(),
    };
    ctx.record(
        None,
        begin(b, &holder, &steps_in, dry_run),
        format!(
            "{} ({} step(s)){}",
            b.name,
            steps_in.len(),
            if dry_run { ", dry run" } else { "" }
        ),
    )
    .await?;

    // The futures are made before they are streamed so the run future stays `Send`
    // (closures over borrowed items in stream combinators are not, for now).
    let plans: Vec<_> = steps_in
        .iter()
        .enumerate()
        .map(|(i, (_, s))| plan_step(&ctx, i, s))
        .collect();
    let results: Vec<Result<(Change, bool)>> =
        stream::iter(plans).buffered(b.concurrency).collect().await;
    let mut changes = Vec::with_capacity(results.len());
    let mut skipped = Vec::new();
    let mut first_err = None;
    for (i, ((_, s), r)) in steps_in.iter().zip(results).enumerate() {
        match r {
            Ok((change, skip)) => {
                if skip {
                    skipped.push(i);
                }
                changes.push(change);
            }
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
        abort(&ctx, &e).await;
        return Err(e);
    }
    let mut steps: Vec<StepRun> = steps_in
        .iter()
        .enumerate()
        .map(|(i, (stage, s))| StepRun {
            index: i,
            stage: *stage,
            target: s.target.clone(),
            id: s.target.id(),
            checks: s.checks.clone(),
            timeout: s.timeout,
            temporary: s.temporary,
            state: StepState::default(),
            duration: Duration::ZERO,
        })
        .collect();
    record_plan(&ctx, &mut steps, Entry::Planned { changes, skipped }).await?;
    Ok((ctx, steps, holder))
}

/// The `begin` record: the transaction as asked for.
fn begin(
    b: &TransactionBuilder,
    holder: &Holder,
    steps: &[(usize, &Step)],
    dry_run: bool,
) -> Entry {
    let specs = steps
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
    Entry::Begin {
        format: journal::FORMAT.into(),
        name: b.name.clone(),
        reason: b.reason.clone(),
        holder: holder.clone(),
        policy: b.policy,
        dry_run,
        concurrency: b.concurrency,
        steps: specs,
        checks: b.checks.iter().map(Check::spec).collect(),
        on_failure: b.on_failure.iter().map(|a| a.name()).collect(),
        on_success: b.on_success.iter().map(|a| a.name()).collect(),
        action_specs: journal::ActionSpecs {
            on_failure: specs_of(&b.on_failure),
            on_success: specs_of(&b.on_success),
        },
        locks: b.locks.spec(),
    }
}

/// The specs of the actions that describe themselves, by name.
fn specs_of(
    actions: &[std::sync::Arc<dyn super::AfterAction>],
) -> std::collections::BTreeMap<String, crate::target::TargetSpec> {
    actions
        .iter()
        .filter_map(|a| Some((a.name(), a.spec()?)))
        .collect()
}

/// Records the `planned` transition of every step: the journal line, one `planned` event
/// per step, then each step's state as [`StepState::plan`] reads it (a resume reads the
/// same record the same way).
async fn record_plan(ctx: &Ctx, steps: &mut [StepRun], planned: Entry) -> Result<()> {
    let record = ctx.journal.append(planned).await?;
    let Entry::Planned { changes, skipped } = &record.entry else {
        return Ok(());
    };
    StepState::plan(steps.iter_mut().map(|s| &mut s.state), changes, skipped);
    for (s, c) in steps.iter().zip(changes) {
        let msg = if skipped.contains(&s.index) {
            format!("already at {}; skipped", c.to.id)
        } else {
            format!("{} -> {}", c.from.id, c.to.id)
        };
        ctx.emit(EventKind::Planned, Some(s.index), Some(&s.id), msg);
    }
    Ok(())
}

/// Preflight's first part: every step's checks, the transaction's checks and the on-failure
/// and on-success actions validated without being made ([`Check::validate`],
/// [`AfterAction::validate`](super::AfterAction::validate)).
/// The part of preflight that reads no target: checks, policies and actions.
pub(crate) async fn validate_inputs(b: &TransactionBuilder) -> Result<()> {
    validate_checks(b)?;
    preflight_actions(b).await
}

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
    for n in &b.notifiers {
        n.validate()
            .map_err(|e| refused("transaction", &format!("notifier {:?}", n.name()), &e))?;
    }
    let mut names = std::collections::HashSet::new();
    for (when, a) in actions(b) {
        let what = format!("{when} action {:?}", a.name());
        a.validate()
            .map_err(|e| refused("transaction", &what, &e))?;
        // The journal tells actions apart by name: a resume must know which one ran.
        if !names.insert((when, a.name())) {
            return Err(Error::invalid(
                "transaction",
                format!("{what} is given twice; give each action a name of its own"),
            ));
        }
    }
    Ok(())
}

/// Every on-failure and on-success action, with when it runs.
fn actions(
    b: &TransactionBuilder,
) -> impl Iterator<Item = (ActionWhen, &std::sync::Arc<dyn super::AfterAction>)> {
    let failure = b.on_failure.iter().map(|a| (ActionWhen::OnFailure, a));
    failure.chain(b.on_success.iter().map(|a| (ActionWhen::OnSuccess, a)))
}

/// Preflight's reads of the actions ([`AfterAction::preflight`](super::AfterAction::preflight):
/// a CloudFront distribution that exists), before any target is read; nothing is changed.
async fn preflight_actions(b: &TransactionBuilder) -> Result<()> {
    for (when, a) in actions(b) {
        // Throttling and transient errors are retried as any preflight read is; refused
        // input reads as the action's, other errors (not found) keep their kind.
        b.retry
            .run(|| a.preflight(), |_, _, _| {})
            .await
            .map_err(|e| match e {
                Error::InvalidInput { .. } => {
                    refused("transaction", &format!("{when} action {:?}", a.name()), &e)
                }
                other => other,
            })?;
    }
    Ok(())
}

/// Records a run that stopped before changing anything.
pub(crate) async fn abort(ctx: &Ctx, e: &Error) {
    ctx.note(
        None,
        Entry::End {
            outcome: Outcome::Failed,
            error: Some(e.record()),
            needs_attention: Vec::new(),
            duration_ms: ms(ctx.start.elapsed()),
        },
        format!("failed before changing anything: {e}"),
    )
    .await;
}

/// One step's plan: its current revision, the one its selector picks, and the change
/// between them; `true` when the target already is there (and the step accepts that).
async fn plan_step(ctx: &Ctx, index: usize, s: &Step) -> Result<(Change, bool)> {
    let t = &s.target;
    let id = t.id();
    let span = tracing::info_span!(target: LOG_TARGET, "preflight", transaction = %ctx.id, step = index, target = %id);
    async {
        let (selector, origin) = match &s.selector {
            Selector::LastKnownGood => {
                let good = ctx
                    .retry(Some(index), &id, || ctx.known_good.latest(&id))
                    .await?
                    .ok_or_else(|| {
                        Error::not_found(
                            id.to_string(),
                            "a revision verified healthy by a past transaction",
                            format!(
                                "no successful run with checks has recorded one in the known-good store ({}); choose Previous or Exact for this rollback",
                                ctx.known_good.describe()
                            ),
                        )
                    })?;
                (Selector::Exact(good.revision.clone()), Some(good.origin()))
            }
            other => (other.clone(), None),
        };
        let mut change = ctx.retry(Some(index), &id, || t.prepare(&selector)).await?;
        change.origin = origin;
        // Nothing to do by the rule of `Change::is_noop`.
        if change.is_noop() {
            if s.allow_current {
                let current = change.from;
                return Ok((Change::new(id, current.clone(), current), true));
            }
            return Err(Error::invalid(
                id.to_string(),
                format!(
                    "already at revision {} (selected by {}); nothing to roll back. Choose another revision, or accept it with Step::allow_current()",
                    change.from.id, s.selector
                ),
            ));
        }
        Ok((change, false))
    }
    .instrument(span)
    .await
}
