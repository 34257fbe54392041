//! Finishing a run whose process died, from its journal, without applying anything twice.
//!
//! The journal says how far each step got. A step whose intent was written but whose apply
//! was not is applied again: the [`RollbackTarget::apply`](crate::RollbackTarget::apply)
//! contract makes that safe (a target already at the revision answers `AlreadyCurrent` and
//! nothing is sent). Applied steps are waited for and verified; a recorded failure goes
//! straight to compensation.
//!
//! Leases are taken where the run took them: the journal's `begin` record names the lock
//! manager ([`crate::lock::LockSpec`]), rebuilt through the [`Registry`] unless
//! [`ResumeOptions::locks`] gives one. A run that ended but died before giving its leases
//! back (no `released` record) has them released by a resume.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::context::{Ctx, StepRun};
use super::drive::drive;
use super::leases::{acquire_all, release_all, spawn_renewal};
use super::transition::{Phase, StepState};
use super::{ActionReport, ActionWhen, AfterAction, Attention, FailurePolicy, Outcome, Report};
use crate::error::{Error, ErrorRecord, Result};
use crate::events::{Emitter, EventSink};
use crate::journal::{read_journal, Entry, JournalWriter, Record, StepSpec};
use crate::lock::{FileLocks, Holder, Lease, LockManager, LockSpec};
use crate::target::{Registry, TargetId};
use crate::verify::{Check, CheckSpec, Verdict};
use crate::wait::{CompensationRetry, RetryPolicy};

/// What a resumed run needs besides the journal.
pub struct ResumeOptions {
    /// Rebuilds the targets from their specs (default: this crate's kinds only; backend
    /// crates add theirs, live instances can be inserted), and the lock manager from the
    /// journal's [`LockSpec`].
    pub registry: Registry,
    /// The lock manager; `None` (the default) uses the one the journal names, rebuilt
    /// through [`registry`](Self::registry), or [`FileLocks::from_env`] for journals that
    /// name none (older ones, lock managers without a [`LockManager::spec`]).
    pub locks: Option<Arc<dyn LockManager>>,
    /// Event sinks.
    pub sinks: Vec<EventSink>,
    /// Checks to use for steps whose journaled checks hold code (closures cannot be
    /// rebuilt from data), by target. Replaces the journaled checks of that step.
    pub step_checks: HashMap<TargetId, Vec<Check>>,
    /// Transaction-level checks replacing the journaled ones, if any are given.
    pub checks: Vec<Check>,
    /// On-failure actions (code, so not in the journal); those named in the journal but not
    /// given here are reported as needing a person.
    pub on_failure: Vec<Arc<dyn AfterAction>>,
    /// On-success actions (code, so not in the journal), run if the resumed run succeeds,
    /// except those whose outcome the journal already holds; one named in the journal but
    /// not given here is reported as failed (not run), needing a person.
    pub on_success: Vec<Arc<dyn AfterAction>>,
    /// Retry policy for backend calls.
    pub retry: RetryPolicy,
    /// Retry policy for putting targets back (see
    /// [`TransactionBuilder::compensation_retry`](crate::TransactionBuilder::compensation_retry)).
    pub compensation_retry: CompensationRetry,
    /// Lease time to live.
    pub lease_ttl: Duration,
    /// Where the journal is also kept (its records written there too), as the run kept it
    /// ([`TransactionBuilder::journal_store`](crate::TransactionBuilder::journal_store));
    /// [`resume_from_store`] sets it.
    pub journal_store: Option<Arc<dyn crate::journal::JournalStore>>,
    /// Where the resumed run records what it verified if it succeeds (default:
    /// [`FileKnownGood::from_env`](crate::FileKnownGood::from_env)).
    pub known_good: Arc<dyn crate::KnownGoodStore>,
    /// Instead of finishing the run, put back every target it changed (newest stage first,
    /// as compensation does, whatever the run's failure policy) and end it `compensated`:
    /// what a person asks for after stopping a run that should not go on. Refused for a run
    /// that already ended.
    pub put_back: bool,
    /// Stops the resumed run on request, as [`crate::TransactionBuilder::interrupt`] does.
    pub interrupt: super::Interrupt,
    /// Told when the resumed run ends (as [`crate::TransactionBuilder::notify`]).
    pub notify: Vec<Arc<dyn crate::notify::Notifier>>,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        ResumeOptions {
            registry: Registry::with_builtins(),
            locks: None,
            sinks: Vec::new(),
            step_checks: HashMap::new(),
            checks: Vec::new(),
            on_failure: Vec::new(),
            on_success: Vec::new(),
            retry: RetryPolicy::default(),
            compensation_retry: CompensationRetry::default(),
            lease_ttl: Duration::from_secs(300),
            known_good: Arc::new(crate::FileKnownGood::from_env()),
            journal_store: None,
            put_back: false,
            interrupt: super::Interrupt::new(),
            notify: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ResumeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeOptions")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl ResumeOptions {
    /// Calls `f` with every event.
    pub fn on_event(mut self, f: impl Fn(&crate::Event) + Send + Sync + 'static) -> Self {
        self.sinks.push(Arc::new(f));
        self
    }

    /// The journal's writer: the file, and the store if there is one.
    fn writer(&self, path: &Path, transaction: &str) -> Result<JournalWriter> {
        let w = JournalWriter::open(path, transaction)?;
        Ok(match &self.journal_store {
            Some(store) => w.with_store(store.clone()),
            None => w,
        })
    }

    /// Puts back what the run changed instead of finishing it (see
    /// [`put_back`](Self::put_back)).
    pub fn put_back(mut self) -> Self {
        self.put_back = true;
        self
    }

    /// Stops the resumed run when `interrupt` is asked to (see [`super::Interrupt`]).
    pub fn interrupt(mut self, interrupt: super::Interrupt) -> Self {
        self.interrupt = interrupt;
        self
    }

    /// Uses `locks` instead of the lock manager the journal names.
    pub fn locks(mut self, locks: Arc<dyn LockManager>) -> Self {
        self.locks = Some(locks);
        self
    }

    /// The lock manager for a journal: the one given, else the journal's, else the default.
    async fn lock_manager(
        &self,
        path: &Path,
        journal: Option<&LockSpec>,
    ) -> Result<Arc<dyn LockManager>> {
        match (&self.locks, journal) {
            (Some(l), _) => Ok(l.clone()),
            (None, Some(spec)) => self.registry.build_locks(spec).await.map_err(|e| match e {
                // About the journal that names the locks; the cause kept.
                Error::InvalidInput {
                    message, source, ..
                } => Error::InvalidInput {
                    target: format!("journal {}", path.display()),
                    message,
                    source,
                },
                other => other,
            }),
            (None, None) => Ok(Arc::new(FileLocks::from_env())),
        }
    }
}

/// Finishes transaction `transaction` from its journal in `store` (a run whose machine
/// died, finished from another): the records are copied to `local` (the store is the
/// authority: a file there is replaced), then resumed as [`resume_with`] does, every new
/// record written to the file and the store. If the run's process is in fact still
/// writing, one of the two fails at its next record instead of both going on.
pub async fn resume_from_store(
    store: Arc<dyn crate::journal::JournalStore>,
    transaction: &str,
    local: impl AsRef<Path>,
    mut opts: ResumeOptions,
) -> Result<Report> {
    let local = local.as_ref();
    let bytes = store.read(transaction).await?;
    let records = crate::journal::parse_records(&store.describe(), &bytes)?;
    if !records.iter().any(|r| r.transaction == transaction) {
        return Err(Error::not_found(
            "transaction",
            format!("transaction {transaction:?} in {}", store.describe()),
            "list the transactions there with rollback_core::journal::list_store",
        ));
    }
    if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::journal(local.display().to_string(), e.to_string()))?;
    }
    crate::journal::check_path(local)?;
    std::fs::write(local, &bytes)
        .map_err(|e| Error::journal(local.display().to_string(), format!("cannot write: {e}")))?;
    opts.journal_store = Some(store);
    resume_with(local, opts).await
}

/// Finishes the run recorded in `journal` with the default [`ResumeOptions`]. A run that
/// already ended is not run again: its leftover leases are released and its report is
/// rebuilt from the journal.
pub async fn resume(journal: impl AsRef<Path>) -> Result<Report> {
    resume_with(journal, ResumeOptions::default()).await
}

/// One step as the journal tells it: its spec and the state its records leave it in.
#[derive(Debug, Clone)]
struct Replayed {
    spec: StepSpec,
    state: StepState,
}

#[derive(Debug)]
struct Replay {
    transaction: String,
    name: String,
    reason: Option<String>,
    policy: FailurePolicy,
    dry_run: bool,
    concurrency: usize,
    checks: Vec<CheckSpec>,
    on_failure: Vec<String>,
    on_success: Vec<String>,
    action_specs: crate::journal::ActionSpecs,
    locks: Option<LockSpec>,
    /// The targets of the `locked` record, if any.
    locked: Vec<TargetId>,
    released: bool,
    planned: bool,
    steps: Vec<Replayed>,
    failure: Option<ErrorRecord>,
    tx_verdicts: Vec<Verdict>,
    actions: Vec<ActionReport>,
    /// The on-success actions whose outcome is journaled.
    success_actions: Vec<ActionReport>,
    end: Option<(Outcome, Option<ErrorRecord>, Vec<Attention>, u64)>,
    /// Stopped on request (and not resumed since): how long it had run.
    interrupted: Option<u64>,
    started_at: chrono::DateTime<Utc>,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::journal(path.display().to_string(), message)
}

fn replay(path: &Path, records: &[Record]) -> Result<Replay> {
    let first = records.first().ok_or_else(|| {
        bad(
            path,
            "holds no complete journal record; there is nothing to resume",
        )
    })?;
    let Entry::Begin {
        name,
        reason,
        policy,
        dry_run,
        concurrency,
        steps,
        checks,
        on_failure,
        on_success,
        action_specs,
        locks,
        ..
    } = &first.entry
    else {
        return Err(bad(
            path,
            "does not start with a begin record; is it a rollback journal?",
        ));
    };
    let mut r = Replay {
        transaction: first.transaction.clone(),
        name: name.clone(),
        reason: reason.clone(),
        policy: *policy,
        dry_run: *dry_run,
        concurrency: (*concurrency).max(1),
        checks: checks.clone(),
        on_failure: on_failure.clone(),
        on_success: on_success.clone(),
        action_specs: action_specs.clone(),
        locks: locks.clone(),
        locked: Vec::new(),
        released: false,
        planned: false,
        steps: steps
            .iter()
            .map(|spec| Replayed {
                spec: spec.clone(),
                state: StepState::default(),
            })
            .collect(),
        failure: None,
        tx_verdicts: Vec::new(),
        actions: Vec::new(),
        success_actions: Vec::new(),
        end: None,
        interrupted: None,
        started_at: first.at,
    };
    let n = r.steps.len();
    // Actions whose intent is journaled and outcome not yet: which list their outcome joins.
    let mut intents: HashMap<String, ActionWhen> = HashMap::new();
    for rec in &records[1..] {
        if rec.transaction != r.transaction {
            return Err(bad(
                path,
                format!(
                    "record {} belongs to transaction {}, not {}",
                    rec.seq, rec.transaction, r.transaction
                ),
            ));
        }
        let step = |i: usize| -> Result<usize> {
            if i < n {
                Ok(i)
            } else {
                Err(bad(
                    path,
                    format!("record {} names step {i} of {n}", rec.seq),
                ))
            }
        };
        match &rec.entry {
            Entry::Planned { changes, skipped } => {
                for i in skipped {
                    step(*i)?;
                }
                StepState::plan(r.steps.iter_mut().map(|s| &mut s.state), changes, skipped)
                    .ok_or_else(|| bad(path, "the plan does not have one change per step"))?;
                r.planned = true;
            }
            Entry::Checked {
                step: None,
                check,
                passed,
                attempts,
                evidence,
            } => r.tx_verdicts.push(Verdict {
                name: check.clone(),
                passed: *passed,
                attempts: *attempts,
                evidence: evidence.clone(),
            }),
            Entry::ChecksFailed { error } => {
                r.failure.get_or_insert_with(|| error.clone());
            }
            Entry::ActionIntent { name, when } => {
                intents.insert(name.clone(), *when);
            }
            Entry::Action { name, ok, message } => {
                let report = ActionReport {
                    name: name.clone(),
                    ok: *ok,
                    message: message.clone(),
                };
                // Without an intent: a notification, or an older journal's on-failure action.
                match intents.remove(name) {
                    Some(ActionWhen::OnSuccess) => r.success_actions.push(report),
                    _ => r.actions.push(report),
                }
            }
            Entry::End {
                outcome,
                error,
                needs_attention,
                duration_ms,
            } => {
                r.end = Some((
                    *outcome,
                    error.clone(),
                    needs_attention.clone(),
                    *duration_ms,
                ));
            }
            Entry::Locked { targets } => {
                r.locked = targets.clone();
                r.released = false;
            }
            Entry::Released { .. } => r.released = true,
            Entry::Interrupted { duration_ms } => r.interrupted = Some(*duration_ms),
            Entry::Resumed { .. } => r.interrupted = None,
            Entry::Begin { .. } => {
                return Err(bad(path, format!("record {} is a second begin", rec.seq)))
            }
            // A step's transition: its state moves as it did in the run.
            other => {
                if let Some(i) = other.step() {
                    let state = &mut r.steps[step(i)?].state;
                    state.apply(other);
                    state.stamp(other, rec.at);
                }
                if let Entry::StepFailed { error, .. } = other {
                    r.failure.get_or_insert_with(|| error.clone());
                }
            }
        }
    }
    Ok(r)
}

/// The report of a finished run, rebuilt from its journal (for incident reports and audits).
pub fn report_from_journal(journal: impl AsRef<Path>) -> Result<Report> {
    let path = journal.as_ref();
    let r = replay(path, &read_journal(path)?)?;
    let end = r
        .end
        .clone()
        .ok_or_else(|| bad(path, "has not ended; resume it to finish the run"))?;
    Ok(replayed_report(path, &r, end))
}

/// Where the run recorded in `journal` is: its report if it ended, else the report so
/// far, [`Outcome::Interrupted`] with each step as far as it got (stopped on request, or
/// its process died, or it still runs: [`Report::needs_attention`] says which the journal
/// tells).
pub fn report_so_far(journal: impl AsRef<Path>) -> Result<Report> {
    let path = journal.as_ref();
    let r = replay(path, &read_journal(path)?)?;
    let why = match r.interrupted {
        Some(_) => {
            "it was stopped on request; resume it to finish it or to put back what it changed"
        }
        None => "it has not ended: its process died, or it is still running; if it died, resume it",
    };
    let end = r.end.clone().unwrap_or_else(|| {
        let attention = Attention {
            target: None,
            message: why.to_string(),
        };
        let failure = r.failure.clone();
        (
            Outcome::Interrupted,
            failure,
            vec![attention],
            r.interrupted.unwrap_or(0),
        )
    });
    Ok(replayed_report(path, &r, end))
}

/// The report a replayed journal tells, with how it ended.
fn replayed_report(
    path: &Path,
    r: &Replay,
    (outcome, error, needs_attention, duration_ms): (
        Outcome,
        Option<ErrorRecord>,
        Vec<Attention>,
        u64,
    ),
) -> Report {
    Report {
        transaction: r.transaction.clone(),
        name: r.name.clone(),
        reason: r.reason.clone(),
        outcome,
        steps: r
            .steps
            .iter()
            .map(|s| {
                s.state.report(
                    (s.spec.step, s.spec.stage, &s.spec.target),
                    r.dry_run,
                    Duration::ZERO,
                )
            })
            .collect(),
        checks: r.tx_verdicts.clone(),
        actions: r.actions.clone(),
        on_success: r.success_actions.clone(),
        needs_attention,
        error,
        journal_path: path.to_path_buf(),
        started_at: r.started_at,
        duration: Duration::from_millis(duration_ms),
    }
}

/// Finishes the run recorded in `journal`: a step whose intent was journaled but not its
/// apply is applied again (safe by the apply contract: a target already at the revision
/// answers `AlreadyCurrent`), applied steps are waited for and verified, and a recorded
/// failure goes straight to compensation.
///
/// Errors: a journal that cannot be read, a target or lock kind the registry does not know,
/// or a target now locked by another transaction. A run that already ended is not run
/// again: if it died before giving its leases back (no `released` record), they are
/// released and `released` is journaled; then its report is rebuilt from the journal.
pub async fn resume_with(journal: impl AsRef<Path>, opts: ResumeOptions) -> Result<Report> {
    let path = journal.as_ref();
    let records = read_journal(path)?;
    let r = replay(path, &records)?;
    let holder = Holder::current(&r.transaction).with_journal(path);
    if let (true, Some((outcome, ..))) = (opts.put_back, &r.end) {
        return Err(Error::invalid(
            format!("transaction {:?}", r.name),
            format!(
                "it already ended ({outcome}), so there is no run to put back; to undo what it did, run a new rollback (its journal: {})",
                path.display()
            ),
        ));
    }
    if r.end.is_some() {
        if !r.locked.is_empty() && !r.released {
            release_leftovers(path, &r, &holder, &opts).await?;
        }
        return report_from_journal(path);
    }
    let locks = opts.lock_manager(path, r.locks.as_ref()).await?;
    let writer = opts.writer(path, &r.transaction)?;
    let ctx = Ctx {
        id: r.transaction.clone(),
        name: r.name.clone(),
        reason: r.reason.clone(),
        policy: r.policy,
        concurrency: r.concurrency,
        calls: std::sync::Arc::new(tokio::sync::Semaphore::new(r.concurrency)),
        retry: opts.retry,
        compensation_retry: opts.compensation_retry,
        journal: writer,
        emitter: Emitter {
            transaction: r.transaction.clone(),
            sinks: opts.sinks.clone(),
        },
        checks: Vec::new(),
        on_failure: Vec::new(),
        on_success: success_actions(&r, &opts.on_success, &opts.registry).await,
        attention: Mutex::new(Vec::new()),
        fence: Default::default(),
        known_good: opts.known_good.clone(),
        started_at: r.started_at,
        start: Instant::now(),
        interrupt: opts.interrupt.clone(),
        notifiers: opts.notify.clone(),
    };
    ctx.record(
        None,
        Entry::Resumed {
            holder: holder.clone(),
        },
        format!("resuming {} from {}", r.name, path.display()),
    )
    .await?;
    if r.dry_run || !r.planned {
        // Nothing was changed before the process died: record that and stop.
        let (outcome, error) = if r.dry_run {
            (Outcome::Planned, None)
        } else {
            let e = Error::invalid(
                format!("transaction {:?}", r.name),
                "the run stopped during preflight, before changing anything; run it again",
            );
            (Outcome::Failed, Some(e.record()))
        };
        let message = format!("{outcome} (nothing was changed before the run stopped)");
        ctx.record(
            None,
            Entry::End {
                outcome,
                error,
                needs_attention: Vec::new(),
                duration_ms: 0,
            },
            message,
        )
        .await?;
        return report_from_journal(path);
    }

    // Rebuild targets and checks.
    let mut steps = Vec::with_capacity(r.steps.len());
    for s in &r.steps {
        let target = opts.registry.build(&s.spec.target, &s.spec.spec).await?;
        let checks = match opts.step_checks.get(&s.spec.target) {
            Some(c) => c.clone(),
            None => rebuild_checks(&ctx, Some(&s.spec.target), &s.spec.checks, s.state.phase),
        };
        let mut state = s.state.clone();
        // The checks of a step not yet verified run again.
        if !matches!(state.phase, Phase::Verified | Phase::Failed) {
            state.verdicts.clear();
        }
        steps.push(StepRun {
            index: s.spec.step,
            stage: s.spec.stage,
            target,
            id: s.spec.target.clone(),
            checks,
            timeout: Duration::from_millis(s.spec.timeout_ms),
            temporary: s.spec.temporary,
            state,
            duration: Duration::ZERO,
        });
    }
    let mut ctx = ctx;
    ctx.checks = if opts.checks.is_empty() {
        rebuild_checks(&ctx, None, &r.checks, Phase::Stable)
    } else {
        opts.checks.clone()
    };
    if r.failure.is_some() || !r.on_failure.is_empty() {
        let ran: BTreeSet<&str> = r.actions.iter().map(|a| a.name.as_str()).collect();
        let given: BTreeSet<String> = opts.on_failure.iter().map(|a| a.name()).collect();
        ctx.on_failure = opts
            .on_failure
            .iter()
            .filter(|a| !ran.contains(a.name().as_str()))
            .cloned()
            .collect();
        // Those not given that the journal describes are rebuilt from it.
        let mut rebuilt = BTreeSet::new();
        for name in r
            .on_failure
            .iter()
            .filter(|n| !ran.contains(n.as_str()) && !given.contains(*n))
        {
            if let Some(spec) = r.action_specs.on_failure.get(name) {
                if let Ok(a) = opts
                    .registry
                    .build_action(&spec.kind, spec.params.clone())
                    .await
                {
                    ctx.on_failure.push(a);
                    rebuilt.insert(name.clone());
                }
            }
        }
        if r.failure.is_some() {
            for name in r.on_failure.iter().filter(|n| {
                !ran.contains(n.as_str()) && !given.contains(*n) && !rebuilt.contains(*n)
            }) {
                ctx.attention.lock().map(|mut v| {
                    v.push(Attention {
                        target: None,
                        message: format!(
                            "on-failure action {name:?} is code and was not given to resume; run it by hand"
                        ),
                    })
                }).ok();
            }
        }
    }

    // Take the leases again (ours by transaction id, even if not yet expired).
    let mut ids: Vec<TargetId> = steps.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    let leases = acquire_all(locks.as_ref(), &ids, &holder, opts.lease_ttl).await?;
    ctx.fence.arm(locks.clone(), leases, opts.lease_ttl);
    let renewer = spawn_renewal(ctx.fence.clone());
    // Putting back on request: compensation, whatever the run's policy, from where the
    // journal says each step got (a failure journaled before keeps its own words).
    let failure = match (opts.put_back, r.failure.clone()) {
        (false, f) => f,
        (true, Some(f)) => Some(f),
        (true, None) => Some(
            Error::invalid(
                format!("transaction {:?}", r.name),
                format!("put back on request by {}", holder.name),
            )
            .record(),
        ),
    };
    if opts.put_back {
        ctx.policy = FailurePolicy::Compensate;
    }
    let mut report = drive(&ctx, &mut steps, failure).await;
    drop(renewer);
    ctx.release(locks.as_ref()).await;
    // Actions that ran before the crash belong in the report too.
    let mut actions = r.actions.clone();
    actions.append(&mut report.actions);
    report.actions = actions;
    let mut on_success = r.success_actions.clone();
    on_success.append(&mut report.on_success);
    report.on_success = on_success;
    Ok(report)
}

/// The on-success actions a resumed run runs if it succeeds: the journal's, in their order,
/// except those whose outcome is journaled (each the one given by that name, else the one
/// the journal's spec rebuilds with `registry`, else one that fails saying so); then any
/// given that the journal does not name.
async fn success_actions(
    r: &Replay,
    given: &[Arc<dyn AfterAction>],
    registry: &crate::target::Registry,
) -> Vec<Arc<dyn AfterAction>> {
    let ran: BTreeSet<&str> = r.success_actions.iter().map(|a| a.name.as_str()).collect();
    let mut out: Vec<Arc<dyn AfterAction>> = Vec::new();
    for n in r.on_success.iter().filter(|n| !ran.contains(n.as_str())) {
        if let Some(a) = given.iter().find(|a| a.name() == *n) {
            out.push(a.clone());
            continue;
        }
        let why = match r.action_specs.on_success.get(n) {
            Some(spec) => match registry.build_action(&spec.kind, spec.params.clone()).await {
                Ok(a) => {
                    out.push(a);
                    continue;
                }
                Err(e) => format!("not run: the journal's spec could not be rebuilt ({e})"),
            },
            None => "not run: the action is code, not in the journal, and was not given to resume (ResumeOptions::on_success)".to_string(),
        };
        out.push(Arc::new(NotGiven(n.clone(), why)));
    }
    out.extend(
        given
            .iter()
            .filter(|a| {
                let n = a.name();
                !ran.contains(n.as_str()) && !r.on_success.contains(&n)
            })
            .cloned(),
    );
    out
}

/// An on-success action the journal names that resume was not given and could not rebuild:
/// it fails saying why, so the report says a person must do it.
#[derive(Debug)]
struct NotGiven(String, String);

#[async_trait::async_trait]
impl AfterAction for NotGiven {
    fn name(&self) -> String {
        self.0.clone()
    }
    async fn run(&self) -> Result<String> {
        Err(Error::invalid(self.0.clone(), self.1.clone()))
    }
}

/// Gives back the leases of a run that ended but died before releasing them, and journals
/// `released`. Only leases still held by the run's transaction are touched.
async fn release_leftovers(
    path: &Path,
    r: &Replay,
    holder: &Holder,
    opts: &ResumeOptions,
) -> Result<()> {
    let locks = opts.lock_manager(path, r.locks.as_ref()).await?;
    let now = Utc::now();
    let leases: Vec<Lease> = r
        .locked
        .iter()
        .map(|t| Lease {
            target: t.clone(),
            holder: holder.clone(),
            acquired_at: now,
            expires_at: now,
            token: 0,
        })
        .collect();
    if let Some(targets) = release_all(locks.as_ref(), &leases).await {
        opts.writer(path, &r.transaction)?
            .append(Entry::Released { targets })
            .await?;
    }
    Ok(())
}

/// Rebuilds journaled checks; a check holding code cannot be, and is reported.
fn rebuild_checks(
    ctx: &Ctx,
    target: Option<&TargetId>,
    specs: &[CheckSpec],
    phase: Phase,
) -> Vec<Check> {
    let mut out = Vec::new();
    for spec in specs {
        match spec.build() {
            Some(c) => out.push(c),
            None => {
                if matches!(
                    phase,
                    Phase::Pending | Phase::Intent | Phase::Applied | Phase::Stable
                ) {
                    let name = match &spec.verifier {
                        crate::verify::VerifierSpec::Opaque { name } => name.clone(),
                        other => format!("{other:?}"),
                    };
                    let a = Attention {
                        target: target.cloned(),
                        message: format!(
                            "check {name:?} is code and cannot be rebuilt from the journal, so it was not run; verify by hand or pass it in ResumeOptions"
                        ),
                    };
                    if let Ok(mut v) = ctx.attention.lock() {
                        v.push(a);
                    }
                }
            }
        }
    }
    out
}
