//! The rollback transaction: stages of steps run through preflight, lock, apply, wait,
//! verify and, on failure, compensation; journaled and resumable.
//!
//! # One transition, recorded once
//!
//! The transition type is the journal's [`Entry`](crate::journal::Entry): `intent`,
//! `applied`, `stable`, `checked`, `step_verified`, `step_failed`, `compensate_intent`,
//! `compensated`... Everything else about a transition is derived from it, in one place
//! each:
//!
//! - the [`Event`] it raises: [`Entry::event_kind`](crate::journal::Entry::event_kind);
//! - the step's state it leaves: an internal `StepState::apply` (module `transition`),
//!   and from that state the public [`StepStatus`] of the [`Report`].
//!
//! One function records a transition, `Ctx::record` (module `context`): the journal line
//! first, written and synced (no one hears of a transition a crash would lose), then the
//! event, then the step's state. `Ctx::note` does the same for the records a run goes on
//! after even if the line cannot be written (a failure, a verdict, an on-failure action,
//! the end). Events that are not transitions are progress, emitted without a record: a
//! step started, a wait's progress, a retry, a failed check attempt, a preflight error.
//!
//! [`resume()`] replays a journal through the same `StepState::apply` (and `StepState::plan`
//! for the `planned` record), so a resumed step stands exactly where the run left it, and
//! [`report_from_journal`], a run's own [`Report`] and Python's `Report` (and anything
//! reading the journal, a `status` or `report` command included) see the same statuses.
//!
//! The engine is split by phase: `preflight` (validate, capture, resolve, plan; a dry run
//! ends there), `leases` (lock in a fixed order, renew, release), `drive` (stages of
//! intent, apply, wait, verify; temporary steps put back; the transaction's checks),
//! `compensate` (compensate or halt, then the on-failure actions) and `report` (the
//! outcome and the `end` record); `engine` keeps `build` and `run`, which strings them
//! together, and `resume` feeds `drive` from a journal.
//!
//! # Nothing to do
//!
//! Whether a step has nothing to do is one rule, [`Revision::same_state_as`] (the same
//! revision with the same facts), that [`Change::is_noop`](crate::Change::is_noop) asks of
//! a plan and preflight asks of the current and selected revisions before any `plan` call
//! (so a step already there costs no extra backend call, and the call counts tests assert
//! stay as they were). Targets decide it through what their revisions carry: a Lambda
//! alias with a canary split has it as a fact of its current revision, so it is not "at"
//! the clean version, and its plan, which clears the split, is not a no-op either. No
//! target-specific rule lives in the engine. (A `RollbackTarget` hook to say "already
//! there" was considered and left out: the facts already carry what the one target that
//! needs it has to say, and a hook would let `is_noop` and the engine disagree again.)

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorRecord, Result};
use crate::events::{Event, EventSink};
use crate::known_good::{FileKnownGood, KnownGoodStore};
use crate::lock::{FileLocks, LockManager};
use crate::revision::{Diff, Revision};
use crate::selector::Selector;
use crate::target::{RollbackTarget, TargetId};
use crate::verify::{Check, Verdict};
use crate::wait::{CompensationRetry, RetryPolicy};

mod actions;
mod compensate;
mod context;
mod drive;
mod engine;
mod interrupt;
mod leases;
mod preflight;
mod report;
mod resume;
mod transition;

pub use interrupt::Interrupt;
pub use resume::{
    report_from_journal, report_so_far, resume, resume_from_store, resume_with, ResumeOptions,
};

/// What to do when a step or check fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Put every applied target back to its captured revision, in reverse order, and wait
    /// for it (the default).
    #[default]
    Compensate,
    /// Leave everything as it is for a person to look at.
    Halt,
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A dry run: the plan, nothing changed.
    Planned,
    /// Every step applied, stable and verified; the transaction's checks passed.
    Succeeded,
    /// Something failed and every applied target is back at its captured revision.
    Compensated,
    /// Something failed and not everything is back; see the report's `needs_attention`.
    Failed,
    /// Stopped before it finished: on request ([`Interrupt`]), or (in
    /// [`report_so_far`]) a journal with no end, whose process died or still runs. Nothing
    /// was put back; [`resume_with`] finishes the run, or puts back what it changed
    /// ([`ResumeOptions::put_back`]).
    Interrupted,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Planned => "planned",
            Outcome::Succeeded => "succeeded",
            Outcome::Compensated => "compensated",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        })
    }
}

/// Something a person has to look at after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    /// The target, if about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetId>,
    /// What happened and what to do.
    pub message: String,
}

impl fmt::Display for Attention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(t) => write!(f, "{t}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// When an [`AfterAction`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionWhen {
    /// After a failure, whatever the policy ([`TransactionBuilder::on_failure`]).
    OnFailure,
    /// After a run that succeeded: every step verified, the transaction's checks passed
    /// ([`TransactionBuilder::on_success`]).
    OnSuccess,
}

impl fmt::Display for ActionWhen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActionWhen::OnFailure => "on-failure",
            ActionWhen::OnSuccess => "on-success",
        })
    }
}

/// The run an [`AfterAction`] is part of, as [`AfterAction::run_in`] is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActionRun {
    /// The transaction id: the same for the run and every resume of it, so an action that
    /// must not be done twice can key its request on it (a CloudFront invalidation's
    /// CallerReference).
    pub transaction: String,
    /// Why it runs.
    pub when: ActionWhen,
}

impl ActionRun {
    /// The run of transaction `transaction`, for an action run `when`.
    pub fn new(transaction: impl Into<String>, when: ActionWhen) -> Self {
        ActionRun {
            transaction: transaction.into(),
            when,
        }
    }
}

/// An action run after the steps: after a failure, whatever the policy (scale to zero,
/// maintenance mode: [`TransactionBuilder::on_failure`]), or after a success (invalidate a
/// CDN cache, tell a status page: [`TransactionBuilder::on_success`]).
///
/// Each run of one is journaled twice, its intent before and its outcome after (an
/// `action_intent` and an `action` record), so a resume never runs one whose outcome is
/// journaled, and runs again one whose outcome is not (make such actions idempotent, with
/// [`ActionRun::transaction`]). An action that fails never changes the outcome of the run:
/// it is listed in the report's `needs_attention`, as a failed notification is
/// ([`crate::notify`]).
///
/// One trait for both: what an action is does not depend on when it runs. It was
/// [`FailureAction`] (and `Action` before that, renamed so that the name says one thing:
/// the decision tree's recommendation is
/// [`metrics::Recommendation`](crate::metrics::Recommendation)); that name stays, the same
/// trait, so code implementing or holding a `FailureAction` is unchanged.
#[async_trait]
pub trait AfterAction: Send + Sync + fmt::Debug {
    /// A short name for reports; it names the action in the journal, so two actions of one
    /// transaction should not share it.
    fn name(&self) -> String;
    /// Runs it; the `Ok` text goes into the report.
    async fn run(&self) -> Result<String>;

    /// The cloud permissions its calls need ([`Permission`](crate::permission::Permission)),
    /// for `rollback policy`; `None` (the default) when it does not say, and then a policy
    /// generated for a run that holds it says it is incomplete.
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        None
    }

    /// Runs it as part of `run`: what a transaction calls. The default is
    /// [`run`](Self::run); an action that must not be done twice on a resume keys its
    /// request on [`ActionRun::transaction`].
    async fn run_in(&self, run: &ActionRun) -> Result<String> {
        let _ = run;
        self.run().await
    }

    /// Refuses an action that cannot run, without running it; like
    /// [`Verifier::validate`](crate::verify::Verifier::validate), a transaction calls it in
    /// preflight, so a bad action stops the run before anything changes rather than when it
    /// is needed most. The default accepts everything.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Reads what it needs to prove it can run (that a CloudFront distribution exists),
    /// changing nothing: called in preflight after [`validate`](Self::validate), dry runs
    /// included, before any target is read. The default reads nothing.
    async fn preflight(&self) -> Result<()> {
        Ok(())
    }

    /// How a resume rebuilds it from the journal: a kind registered with
    /// [`Registry::register_action`](crate::Registry::register_action) and its parameters
    /// (names, never secrets), recorded in the journal's `begin`. `None` (the default): it
    /// is code, so a resume runs it only if given it again ([`ResumeOptions::on_success`],
    /// [`ResumeOptions::on_failure`]).
    fn spec(&self) -> Option<crate::target::TargetSpec> {
        None
    }
}

/// The earlier name of [`AfterAction`], the same trait (see there).
pub use self::AfterAction as FailureAction;

type ActionFn = dyn Fn() -> BoxFuture<'static, Result<String>> + Send + Sync;

struct FnAction {
    name: String,
    f: Box<ActionFn>,
}

impl fmt::Debug for FnAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnAction")
            .field("name", &self.name)
            .finish()
    }
}

#[async_trait]
impl AfterAction for FnAction {
    fn name(&self) -> String {
        self.name.clone()
    }
    async fn run(&self) -> Result<String> {
        (self.f)().await
    }
    fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(crate::Error::invalid(
                "action",
                "an action made with action_fn has an empty name; give it one that says what \
                 it does, e.g. action_fn(\"maintenance mode on\", ...)",
            ));
        }
        Ok(())
    }
}

/// An [`AfterAction`] from an async closure (for [`TransactionBuilder::on_failure`] or
/// [`TransactionBuilder::on_success`]).
pub fn action_fn<F, Fut>(name: impl Into<String>, f: F) -> Arc<dyn AfterAction>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String>> + Send + 'static,
{
    Arc::new(FnAction {
        name: name.into(),
        f: Box::new(move || Box::pin(f())),
    })
}

/// One step: a target, the revision to move it to, and the checks that prove it worked.
#[derive(Debug, Clone)]
pub struct Step {
    pub(crate) target: Arc<dyn RollbackTarget>,
    pub(crate) selector: Selector,
    pub(crate) checks: Vec<Check>,
    pub(crate) allow_current: bool,
    pub(crate) temporary: bool,
    pub(crate) timeout: Duration,
}

impl Step {
    /// Default time to wait for a target to become stable: 10 minutes.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

    /// A step moving `target` to the revision `selector` picks.
    pub fn new(target: Arc<dyn RollbackTarget>, selector: Selector) -> Self {
        Step {
            target,
            selector,
            checks: Vec::new(),
            allow_current: false,
            temporary: false,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Adds a check run after the target is stable.
    pub fn verify(mut self, check: impl Into<Check>) -> Self {
        self.checks.push(check.into());
        self
    }

    /// Accepts a target that already is at the chosen revision (the step is skipped)
    /// instead of refusing the transaction in preflight.
    pub fn allow_current(mut self) -> Self {
        self.allow_current = true;
        self
    }

    /// Makes the step temporary: its target is put back to the captured revision once every
    /// stage is done, before the transaction's own checks (and by compensation on failure).
    /// For what must hold only while the rollback runs: services stopped during a database
    /// restore (runbook 001, steps 1 and 6), a frozen pipeline (runbook 003, steps 1 and 5),
    /// maintenance mode.
    pub fn temporary(mut self) -> Self {
        self.temporary = true;
        self
    }

    /// How long to wait for the target to become stable.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The step's target.
    pub fn target(&self) -> &Arc<dyn RollbackTarget> {
        &self.target
    }

    /// The revision it asks for.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// The checks run after its target is stable.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Whether it is put back once every stage is done.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }
}

/// Where a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Planned only (dry run).
    Planned,
    /// Not started because an earlier failure stopped the run.
    NotStarted,
    /// The target already was at the revision.
    Skipped,
    /// Applied, but the run stopped before it was verified (halted).
    Applied,
    /// Applied, stable and verified.
    Succeeded,
    /// This step failed.
    Failed,
    /// Applied, then put back to its captured revision.
    Compensated,
    /// A temporary step: applied, then put back once the stages were done.
    Reverted,
    /// Putting it back failed; a person must look.
    CompensationFailed,
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step index.
    pub step: usize,
    /// Its stage.
    pub stage: usize,
    /// The target.
    pub target: TargetId,
    /// The revision captured in preflight.
    pub from: Option<Revision>,
    /// The revision chosen.
    pub to: Option<Revision>,
    /// The reviewable diff.
    pub diff: Diff,
    /// Where the choice of `to` came from, when a person should know
    /// ([`Change::origin`](crate::Change::origin): the last known good's transaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Where it ended.
    pub status: StepStatus,
    /// The error, if it failed.
    pub error: Option<ErrorRecord>,
    /// The checks' verdicts.
    pub verdicts: Vec<Verdict>,
    /// How long the step took.
    #[serde(with = "crate::serde_duration")]
    pub duration: Duration,
}

/// What an on-failure or on-success action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReport {
    /// Its name.
    pub name: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// What it said.
    pub message: String,
}

/// The result of a run: outcome, steps, checks and what needs a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The transaction id.
    pub transaction: String,
    /// Its name.
    pub name: String,
    /// Why it ran.
    pub reason: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// One report per step, in step order.
    pub steps: Vec<StepReport>,
    /// The transaction-level checks' verdicts.
    pub checks: Vec<Verdict>,
    /// The on-failure actions (and, in a report rebuilt from a journal, the notifications).
    pub actions: Vec<ActionReport>,
    /// The on-success actions (none unless the run succeeded).
    #[serde(default)]
    pub on_success: Vec<ActionReport>,
    /// What a person must look at.
    pub needs_attention: Vec<Attention>,
    /// The failure that stopped the run, if any.
    pub error: Option<ErrorRecord>,
    /// The journal file.
    pub journal_path: PathBuf,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    #[serde(with = "crate::serde_duration")]
    pub duration: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} [{}]: {} in {:.1?}",
            self.name, self.transaction, self.outcome, self.duration
        )?;
        if let Some(reason) = &self.reason {
            writeln!(f, "  why: {reason}")?;
        }
        for s in &self.steps {
            let from = s.from.as_ref().map(|r| r.id.as_str()).unwrap_or("?");
            let to = s.to.as_ref().map(|r| r.id.as_str()).unwrap_or("?");
            writeln!(
                f,
                "  [{}] {}: {from} -> {to}: {}",
                s.stage, s.target, s.status
            )?;
            if let Some(origin) = &s.origin {
                writeln!(f, "    chosen as {origin}")?;
            }
            for line in s.diff.to_string().lines() {
                writeln!(f, "    {line}")?;
            }
            for v in &s.verdicts {
                let mark = if v.passed { "pass" } else { "FAIL" };
                writeln!(f, "    check {} {mark}: {}", v.name, v.evidence)?;
            }
            if let Some(e) = &s.error {
                writeln!(f, "    error: {e}")?;
            }
        }
        for v in &self.checks {
            let mark = if v.passed { "pass" } else { "FAIL" };
            writeln!(f, "  check {} {mark}: {}", v.name, v.evidence)?;
        }
        for a in &self.actions {
            let mark = if a.ok { "ok" } else { "FAILED" };
            writeln!(f, "  on-failure {} {mark}: {}", a.name, a.message)?;
        }
        for a in &self.on_success {
            let mark = if a.ok { "ok" } else { "FAILED" };
            writeln!(f, "  on-success {} {mark}: {}", a.name, a.message)?;
        }
        // What ended it, unless a step's error or a failed check above says it.
        if let Some(e) = &self.error {
            let said = self.steps.iter().any(|s| s.error.as_ref() == Some(e))
                || self.checks.iter().any(|v| !v.passed);
            if !said {
                writeln!(f, "  ended by: {e}")?;
            }
        }
        for a in &self.needs_attention {
            writeln!(f, "  NEEDS ATTENTION: {a}")?;
        }
        if self.outcome == Outcome::Planned {
            write!(
                f,
                "  journal: none (dry run; the run will write {})",
                self.journal_path.display()
            )
        } else {
            write!(f, "  journal: {}", self.journal_path.display())
        }
    }
}

/// Builds a [`Transaction`]. Cheap to clone (targets, checks, actions, the lock manager and
/// event sinks are shared), so a description can be kept and built again for every run, as
/// the Python `Transaction` does.
#[derive(Clone)]
pub struct TransactionBuilder {
    pub(crate) name: String,
    pub(crate) reason: Option<String>,
    pub(crate) stages: Vec<Vec<Step>>,
    pub(crate) checks: Vec<Check>,
    pub(crate) policy: FailurePolicy,
    pub(crate) concurrency: usize,
    pub(crate) on_failure: Vec<Arc<dyn AfterAction>>,
    pub(crate) on_success: Vec<Arc<dyn AfterAction>>,
    pub(crate) journal: Option<PathBuf>,
    pub(crate) locks: Arc<dyn LockManager>,
    pub(crate) known_good: Arc<dyn KnownGoodStore>,
    pub(crate) journal_store: Option<Arc<dyn crate::journal::JournalStore>>,
    pub(crate) lease_ttl: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) compensation_retry: CompensationRetry,
    pub(crate) sinks: Vec<EventSink>,
    pub(crate) holder: Option<String>,
    pub(crate) interrupt: Interrupt,
    pub(crate) notifiers: Vec<Arc<dyn crate::notify::Notifier>>,
}

impl fmt::Debug for TransactionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionBuilder")
            .field("name", &self.name)
            .field("stages", &self.stages.len())
            .finish_non_exhaustive()
    }
}

impl TransactionBuilder {
    /// What preflight checks before it reads any target: the checks' settings and
    /// policies, the actions' inputs. Changes nothing.
    pub async fn validate_inputs(&self) -> Result<()> {
        preflight::validate_inputs(self).await
    }

    /// The transaction's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The transaction-level checks, run once after the last stage (and after the temporary
    /// steps are put back).
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The cloud permissions a run of this transaction needs (its targets, checks, lock,
    /// journal and known-good stores, actions), for `rollback policy`; the parts that do not
    /// declare theirs are listed as such.
    pub fn permissions(&self) -> crate::permission::Permissions {
        let mut p = crate::permission::Permissions::default();
        let checks = |p: &mut crate::permission::Permissions, checks: &[Check]| {
            for c in checks {
                p.add(
                    format!("check {}", c.verifier.name()),
                    c.verifier.permissions(),
                );
            }
        };
        for step in self.stages.iter().flatten() {
            p.add(
                format!("target {}", step.target.id()),
                step.target.permissions(),
            );
            checks(&mut p, &step.checks);
        }
        checks(&mut p, &self.checks);
        p.add(format!("locks {:?}", self.locks), self.locks.permissions());
        p.add(
            format!("known-good store {}", self.known_good.describe()),
            self.known_good.permissions(),
        );
        if let Some(store) = &self.journal_store {
            p.add(
                format!("journal store {}", store.describe()),
                store.permissions(),
            );
        }
        for a in self.on_failure.iter().chain(&self.on_success) {
            p.add(format!("action {}", a.name()), a.permissions());
        }
        p
    }

    /// The reason given with [`reason`](Self::reason), if any.
    pub fn reason_text(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The stages added so far, in order, each with its steps (empty stages left out).
    pub fn stages(&self) -> impl Iterator<Item = &[Step]> {
        self.stages
            .iter()
            .filter(|s| !s.is_empty())
            .map(Vec::as_slice)
    }

    /// Why this rollback runs (required for a real run; runbook 001's checklist asks for it).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds a step to the current stage.
    pub fn step(mut self, step: Step) -> Self {
        if self.stages.is_empty() {
            self.stages.push(Vec::new());
        }
        if let Some(stage) = self.stages.last_mut() {
            stage.push(step);
        }
        self
    }

    /// Starts a new stage: its steps run after every step of the previous stages.
    pub fn stage(mut self) -> Self {
        if self.stages.last().is_some_and(|s| !s.is_empty()) {
            self.stages.push(Vec::new());
        }
        self
    }

    /// Adds a transaction-level check, run once after the last stage (and after the
    /// temporary steps are put back): a check that must hold while they are in place belongs
    /// on a step.
    pub fn verify(mut self, check: impl Into<Check>) -> Self {
        self.checks.push(check.into());
        self
    }

    /// Sets the failure policy (default [`FailurePolicy::Compensate`]).
    pub fn policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How many calls the run makes at once (default 16): preflight reads this many targets
    /// at a time, and applies and the looks of the waits share this many places. A step
    /// waiting for its target to converge holds no place, so every step of a stage
    /// converges at once however many there are; what this bounds is the load on the
    /// backend (its rate limits), not how many targets are rolled back together.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Tells `notifier` when the run starts (its locks held, before the first change) and
    /// when it ends (see [`crate::notify`]); a notification that fails is reported, never
    /// fails the run.
    pub fn notify(mut self, notifier: Arc<dyn crate::notify::Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// Adds an action run after a failure, whatever the policy.
    pub fn on_failure(mut self, action: Arc<dyn AfterAction>) -> Self {
        self.on_failure.push(action);
        self
    }

    /// Adds an action run after the run succeeded (every step verified, the transaction's
    /// checks passed), in the order added: the cache invalidation after a rollback (runbook
    /// 002), the all-clear (runbook 000). Validated in preflight like an on-failure action;
    /// journaled before and after it runs, so a resume does not run it again; one that
    /// fails is listed in `needs_attention` and the run stays succeeded (the targets are
    /// where they should be; what is left is for a person).
    pub fn on_success(mut self, action: Arc<dyn AfterAction>) -> Self {
        self.on_success.push(action);
        self
    }

    /// The journal file (default: a new file under [`crate::journal::default_dir`]).
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// The lock manager (default: [`FileLocks::from_env`]). Its [`LockManager::spec`] is
    /// recorded in the journal, so that a resume locks in the same place.
    pub fn locks(mut self, locks: Arc<dyn LockManager>) -> Self {
        self.locks = locks;
        self
    }

    /// Also keeps the journal in `store` (S3: `rollback_aws::S3Journals`), every record
    /// written there before the run goes on, so that a run whose machine dies is finished
    /// from another with [`resume_from_store`] (default: the local file only).
    pub fn journal_store(mut self, store: Arc<dyn crate::journal::JournalStore>) -> Self {
        self.journal_store = Some(store);
        self
    }

    /// Where verified-good revisions are recorded after a successful run, and read by
    /// [`Selector::LastKnownGood`](crate::Selector::LastKnownGood) steps (default:
    /// [`FileKnownGood::from_env`], a folder on this machine). See [`crate::known_good`].
    pub fn known_good(mut self, store: Arc<dyn KnownGoodStore>) -> Self {
        self.known_good = store;
        self
    }

    /// How long a lease lasts before it must be renewed (default 5 minutes; renewed every
    /// third of that while the run goes on).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// How retryable backend errors are retried.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How putting targets back (compensation, reverting temporary steps) is retried:
    /// retryable errors until a deadline of minutes (default [`CompensationRetry`]: 5
    /// minutes per target), instead of [`retry`](Self::retry)'s few attempts.
    pub fn compensation_retry(mut self, retry: CompensationRetry) -> Self {
        self.compensation_retry = retry;
        self
    }

    /// Calls `f` with every event.
    pub fn on_event(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.sinks.push(Arc::new(f));
        self
    }

    /// Sends every event to a channel; returns the receiver.
    pub fn events(self) -> (Self, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let b = self.on_event(move |e| {
            let _ = tx.send(e.clone());
        });
        (b, rx)
    }

    /// The holder name shown to others who find the targets locked (default
    /// `user@host (pid N)`).
    pub fn holder(mut self, name: impl Into<String>) -> Self {
        self.holder = Some(name.into());
        self
    }

    /// Stops the run when `interrupt` is asked to (Ctrl-C): no step starts after that, calls
    /// in flight finish, nothing is put back, and the journal holds where it stopped (see
    /// [`Interrupt`]). The run has one of its own otherwise
    /// ([`Transaction::interrupt_handle`]).
    pub fn interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = interrupt;
        self
    }

    /// The transaction, ready to run. Only shape is checked here; targets are checked in
    /// preflight.
    pub fn build(self) -> Result<Transaction> {
        engine::build(self)
    }
}

/// A rollback transaction; see the [crate docs](crate) for its lifecycle.
pub struct Transaction {
    pub(crate) id: String,
    pub(crate) journal: PathBuf,
    pub(crate) b: TransactionBuilder,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("id", &self.id)
            .field("name", &self.b.name)
            .finish_non_exhaustive()
    }
}

impl Transaction {
    /// A builder for a transaction called `name`.
    pub fn builder(name: impl Into<String>) -> TransactionBuilder {
        TransactionBuilder {
            name: name.into(),
            reason: None,
            stages: Vec::new(),
            checks: Vec::new(),
            policy: FailurePolicy::Compensate,
            concurrency: 16,
            on_failure: Vec::new(),
            on_success: Vec::new(),
            journal: None,
            locks: Arc::new(FileLocks::from_env()),
            known_good: Arc::new(FileKnownGood::from_env()),
            journal_store: None,
            lease_ttl: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            compensation_retry: CompensationRetry::default(),
            sinks: Vec::new(),
            holder: None,
            interrupt: Interrupt::new(),
            notifiers: Vec::new(),
        }
    }

    /// The transaction id (also in the journal and every event).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The journal file a run writes: the builder's, or a new file under
    /// [`crate::journal::default_dir`] named when the transaction was built. What
    /// [`crate::resume`] takes if the process dies mid-run.
    pub fn journal_path(&self) -> &std::path::Path {
        &self.journal
    }

    /// What stops this transaction's run on request (for a signal handler): see
    /// [`Interrupt`].
    pub fn interrupt_handle(&self) -> Interrupt {
        self.b.interrupt.clone()
    }

    /// Preflight only: the plan, with nothing changed. Errors are those a real run would
    /// stop on before changing anything, a journal path that is not a regular file
    /// included (although a dry run writes no journal).
    pub async fn dry_run(&self) -> Result<Report> {
        engine::run(self, true).await
    }

    /// Runs the transaction. `Err` means nothing was changed (bad input, a locked target);
    /// `Ok` carries the outcome of a run that got past preflight and locking.
    pub async fn run(&self) -> Result<Report> {
        engine::run(self, false).await
    }
}
