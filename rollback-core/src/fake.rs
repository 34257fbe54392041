//! [`FakeTarget`]: a [`RollbackTarget`] that lives in memory (or in a JSON file shared
//! between processes), with fault injection, for testing rollback pipelines.
//!
//! ```
//! use rollback_core::fake::FailureKind;
//! use rollback_core::{ApplyOutcome, FakeTarget, Revision, RollbackTarget, Selector};
//!
//! # async fn demo() -> rollback_core::Result<()> {
//! let api = FakeTarget::builder("api")
//!     .revision(Revision::new("1").image("registry/api:v1"))
//!     .revision(Revision::new("2").image("registry/api:v2"))
//!     .build()?;
//! let previous = api.resolve(&Selector::Previous).await?;
//! let change = api.plan(&previous).await?;
//!
//! api.fail_next_applies(1, FailureKind::Transient);
//! assert!(api.apply(&change).await.unwrap_err().is_retryable());
//! assert_eq!(api.apply(&change).await?, ApplyOutcome::Applied);
//! assert_eq!(api.current_id(), "1");
//! assert_eq!(api.applied(), vec![("2".to_string(), "1".to_string())]);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::revision::{Change, Revision};
use crate::selector::Selector;
use crate::target::{ApplyOutcome, Registry, RollbackTarget, Stability, TargetId, TargetSpec};
use crate::verify::{CheckOutcome, Verifier};

/// The kind of [`FakeTarget`]s: `"memory"`.
pub const KIND: &str = "memory";

/// A failure [`FakeTarget::fail_next_applies`] injects into `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// [`Error::Throttled`] (retryable), as when a backend says "Rate exceeded".
    Throttled,
    /// [`Error::Backend`] with `retryable: true` ("503 Service Unavailable").
    Transient,
    /// [`Error::Backend`] with `retryable: false` ("400 Bad Request").
    Permanent,
    /// [`Error::Conflict`]: someone else changed the target meanwhile (not retried; a
    /// compensation finds the target where it is).
    Conflict,
}

impl FailureKind {
    fn error(self, target: &str, to: &str) -> Error {
        match self {
            FailureKind::Throttled => Error::throttled(
                target.to_string(),
                format!("Rate exceeded (injected) while applying revision {to}"),
                None,
            ),
            FailureKind::Transient => Error::backend(
                target,
                format!("503 Service Unavailable (injected) while applying revision {to}"),
                true,
            ),
            FailureKind::Permanent => Error::backend(
                target,
                format!("400 Bad Request (injected) while applying revision {to}"),
                false,
            ),
            FailureKind::Conflict => Error::conflict(
                target,
                format!("the revision before {to}"),
                "a change made by someone else (injected)",
            ),
        }
    }
}

/// One real change made by `apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AppliedChange {
    from: String,
    to: String,
    at: DateTime<Utc>,
}

/// Failures still to inject into `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct PendingFailures {
    remaining: u32,
    kind: FailureKind,
}

/// Everything a target is; what the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    name: String,
    /// Oldest first (deploy order).
    revisions: Vec<Revision>,
    current: String,
    /// When `current` last changed (apply, deploy, set_current); `None` when built.
    #[serde(default)]
    changed_at: Option<DateTime<Utc>>,
    #[serde(default, with = "crate::serde_duration")]
    convergence: Duration,
    #[serde(default)]
    applied: Vec<AppliedChange>,
    #[serde(default)]
    pending_failures: Option<PendingFailures>,
    /// Revision id -> the message `check_stable` fails with.
    #[serde(default)]
    failed_rollouts: BTreeMap<String, String>,
    #[serde(default)]
    never_stable: BTreeSet<String>,
    #[serde(default)]
    unhealthy: BTreeSet<String>,
}

impl State {
    fn target(&self) -> String {
        TargetId::new(KIND, &self.name).to_string()
    }

    fn revision(&self, id: &str) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.id == id)
    }

    fn history(&self) -> Vec<Revision> {
        self.revisions.iter().rev().cloned().collect()
    }

    fn ids(&self) -> String {
        self.revisions
            .iter()
            .rev()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn current_revision(&self) -> Result<Revision> {
        self.revision(&self.current).cloned().ok_or_else(|| {
            Error::backend(
                self.target(),
                format!(
                    "the current revision {:?} is not among the revisions ({}); the state is corrupt",
                    self.current,
                    self.ids()
                ),
                false,
            )
        })
    }

    fn not_found(&self, id: &str) -> Error {
        Error::not_found(
            self.target(),
            format!("revision {id:?}"),
            format!("the history holds {}", self.ids()),
        )
    }

    fn set_current(&mut self, id: &str) {
        self.current = id.to_string();
        self.changed_at = Some(Utc::now());
    }

    fn apply(&mut self, change: &Change) -> Result<ApplyOutcome> {
        if self.current == change.to.id {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        if self.current != change.from.id {
            return Err(Error::conflict(
                self.target(),
                change.from.id.clone(),
                self.current.clone(),
            ));
        }
        if self.revision(&change.to.id).is_none() {
            return Err(self.not_found(&change.to.id));
        }
        if let Some(p) = self.pending_failures.as_mut() {
            let kind = p.kind;
            p.remaining = p.remaining.saturating_sub(1);
            if p.remaining == 0 {
                self.pending_failures = None;
            }
            return Err(kind.error(&self.target(), &change.to.id));
        }
        let from = self.current.clone();
        self.set_current(&change.to.id);
        self.applied.push(AppliedChange {
            from,
            to: change.to.id.clone(),
            at: Utc::now(),
        });
        Ok(ApplyOutcome::Applied)
    }

    fn check_stable(&self, revision: &Revision) -> Stability {
        let id = &revision.id;
        if &self.current != id {
            return Stability::Waiting(format!("current is {}, not {id}", self.current));
        }
        if let Some(message) = self.failed_rollouts.get(id) {
            return Stability::Failed(message.clone());
        }
        if self.never_stable.contains(id) {
            return Stability::Waiting(format!(
                "revision {id} is in use but never becomes stable (never_stable)"
            ));
        }
        if let Some(at) = self.changed_at {
            let convergence =
                chrono::Duration::from_std(self.convergence).unwrap_or(chrono::Duration::MAX);
            let until = at
                .checked_add_signed(convergence)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let left = until - Utc::now();
            if left > chrono::Duration::zero() {
                return Stability::Waiting(format!(
                    "converging to {id}: {} ms left",
                    left.num_milliseconds().max(1)
                ));
            }
        }
        Stability::Stable
    }
}

/// Builds an [`FakeTarget`]; see [`FakeTarget::builder`].
#[derive(Debug, Clone)]
pub struct FakeTargetBuilder {
    name: String,
    revisions: Vec<Revision>,
    current: Option<String>,
    convergence: Duration,
    state_file: Option<PathBuf>,
}

impl FakeTargetBuilder {
    /// Adds a revision. Call in deploy order, oldest first: the last one added is the
    /// newest (and, unless [`current`](Self::current) says otherwise, the one in use).
    pub fn revision(mut self, revision: Revision) -> Self {
        self.revisions.push(revision);
        self
    }

    /// The revision in use when built (default: the newest).
    pub fn current(mut self, id: impl Into<String>) -> Self {
        self.current = Some(id.into());
        self
    }

    /// How long after a change the target reports [`Stability::Waiting`]
    /// (`"converging to X: N ms left"`) before [`Stability::Stable`]. Default zero.
    ///
    /// Measured with the wall clock, so it holds across processes sharing a state file
    /// (and is not affected by tokio's paused time).
    pub fn convergence(mut self, delay: Duration) -> Self {
        self.convergence = delay;
        self
    }

    /// Keeps the whole state (revisions, current, applies, injected faults) as JSON in
    /// `path`, so several instances, in this process or others, are the same target.
    ///
    /// Every operation reads the file and every change rewrites it atomically (temporary
    /// file and rename) under an OS lock on `<path>.lock`. When the file already exists,
    /// [`build`](Self::build) loads it and ignores this builder's revisions, current
    /// revision and convergence.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// The target.
    ///
    /// Fails with [`Error::InvalidInput`] when the name is empty, there are no revisions,
    /// two revisions share an id, or the current revision is not among them; and, with a
    /// state file, when the file cannot be read or written or belongs to a target of
    /// another name.
    pub fn build(self) -> Result<FakeTarget> {
        let target = TargetId::new(KIND, &self.name).to_string();
        if self.name.is_empty() {
            return Err(Error::invalid(target, "a fake target needs a name"));
        }
        let Some(path) = self.state_file.clone() else {
            let state = self.initial_state()?;
            return Ok(FakeTarget::from_parts(self.name, None, Some(state)));
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|e| io_error(&target, &path, "create the directory of", e))?;
        }
        {
            let _lock = FileLock::acquire(&target, &path)?;
            match load_state(&target, &path)? {
                Some(existing) => check_name(&existing, &self.name, &path)?,
                None => store_state(&target, &path, &self.initial_state()?)?,
            }
        }
        Ok(FakeTarget::from_parts(self.name, Some(path), None))
    }

    fn initial_state(&self) -> Result<State> {
        let target = TargetId::new(KIND, &self.name).to_string();
        if self.revisions.is_empty() {
            return Err(Error::invalid(
                target,
                "no revisions: add at least one with .revision(Revision::new(\"1\"))",
            ));
        }
        let mut seen = BTreeSet::new();
        for r in &self.revisions {
            if !seen.insert(r.id.as_str()) {
                return Err(Error::invalid(
                    target,
                    format!(
                        "two revisions have the id {:?}; revision ids must be unique",
                        r.id
                    ),
                ));
            }
        }
        let current = match &self.current {
            Some(id) if seen.contains(id.as_str()) => id.clone(),
            Some(id) => {
                return Err(Error::invalid(
                    target,
                    format!(
                        "the current revision {id:?} is not among the revisions ({})",
                        self.revisions
                            .iter()
                            .map(|r| r.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
            None => self
                .revisions
                .last()
                .map(|r| r.id.clone())
                .unwrap_or_default(),
        };
        Ok(State {
            name: self.name.clone(),
            revisions: self.revisions.clone(),
            current,
            changed_at: None,
            convergence: self.convergence,
            applied: Vec::new(),
            pending_failures: None,
            failed_rollouts: BTreeMap::new(),
            never_stable: BTreeSet::new(),
            unhealthy: BTreeSet::new(),
        })
    }
}

/// What this process knows: the state (when not in a file) and the log of trait calls.
#[derive(Debug)]
struct Local {
    /// `None` when the state lives in the file.
    state: Option<State>,
    calls: Vec<String>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    state_file: Option<PathBuf>,
    local: Mutex<Local>,
}

/// A [`RollbackTarget`] held in memory: revisions, a current revision, and knobs to make
/// it fail, converge slowly or report unhealthy. Kind `"memory"`.
///
/// For unit tests of rollback pipelines (and of this crate's own engine): build one with
/// [`builder`](Self::builder), hand a clone to a [`crate::Transaction`], and inspect it
/// afterwards with [`current_id`](Self::current_id), [`applied`](Self::applied) and
/// [`calls`](Self::calls). Clones share their state. With a
/// [`state_file`](FakeTargetBuilder::state_file) several processes share it too,
/// which is how crash-and-resume tests work; the call log stays per process.
///
/// `apply` keeps the [`RollbackTarget`] contract exactly: already at `change.to` ->
/// [`ApplyOutcome::AlreadyCurrent`]; not at `change.from` -> [`Error::Conflict`]; unknown
/// `change.to` -> [`Error::NotFound`]; an injected failure -> that error; otherwise the
/// change is made, counted and recorded. Nothing else changes the target but the
/// `set_current`/`deploy` simulations.
///
/// # Panics
///
/// The inspection and fault-injection methods that return plain values
/// ([`current_id`](Self::current_id), [`fail_next_applies`](Self::fail_next_applies)...)
/// panic when the state file cannot be read or written; the trait methods return errors.
#[derive(Clone)]
pub struct FakeTarget {
    shared: Arc<Shared>,
}

impl fmt::Debug for FakeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTarget")
            .field("name", &self.shared.name)
            .field("state_file", &self.shared.state_file)
            .finish()
    }
}

impl FakeTarget {
    /// A builder for a target named `name`.
    pub fn builder(name: impl Into<String>) -> FakeTargetBuilder {
        FakeTargetBuilder {
            name: name.into(),
            revisions: Vec::new(),
            current: None,
            convergence: Duration::ZERO,
            state_file: None,
        }
    }

    /// The target whose state is in the existing file `path` (written by a target built
    /// with [`state_file`](FakeTargetBuilder::state_file), in this process or another).
    ///
    /// [`Error::NotFound`] naming the file when it does not exist.
    pub fn open(path: impl Into<PathBuf>) -> Result<FakeTarget> {
        let path = path.into();
        let what = KIND.to_string();
        let state = {
            let _lock = FileLock::acquire(&what, &path)?;
            load_state(&what, &path)?
        };
        let state = state.ok_or_else(|| missing_file(&what, &path))?;
        Ok(FakeTarget::from_parts(state.name, Some(path), None))
    }

    fn from_parts(name: String, state_file: Option<PathBuf>, state: Option<State>) -> Self {
        FakeTarget {
            shared: Arc::new(Shared {
                name,
                state_file,
                local: Mutex::new(Local {
                    state,
                    calls: Vec::new(),
                }),
            }),
        }
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The state file, if the state is kept in one.
    pub fn state_file(&self) -> Option<&Path> {
        self.shared.state_file.as_deref()
    }

    fn target(&self) -> String {
        TargetId::new(KIND, &self.shared.name).to_string()
    }

    fn local(&self) -> MutexGuard<'_, Local> {
        // The state is only changed in whole steps, so a panic elsewhere cannot leave it
        // half-written: a poisoned lock is safe to keep using.
        self.shared
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, call: &str) {
        self.local().calls.push(call.to_string());
    }

    /// Runs `f` on the state: in memory, or loaded from the state file under its OS lock
    /// and written back (atomically) if `f` changed it.
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T> {
        let mut local = self.local();
        if let Some(state) = local.state.as_mut() {
            return Ok(f(state));
        }
        let target = self.target();
        let Some(path) = self.shared.state_file.as_deref() else {
            return Err(Error::backend(target, "the target has no state", false));
        };
        let _lock = FileLock::acquire(&target, path)?;
        let before = load_state(&target, path)?.ok_or_else(|| missing_file(&target, path))?;
        let mut state = before.clone();
        let out = f(&mut state);
        if state != before {
            store_state(&target, path, &state)?;
        }
        Ok(out)
    }

    /// [`with_state`](Self::with_state) for the methods without a `Result`.
    fn with_state_or_panic<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.with_state(f) {
            Ok(v) => v,
            Err(e) => panic!("fake target: {e}"),
        }
    }

    /// The id of the revision in use.
    pub fn current_id(&self) -> String {
        self.with_state_or_panic(|s| s.current.clone())
    }

    /// How many `apply` calls changed the revision (not those that found it already
    /// current, were refused or failed).
    pub fn apply_count(&self) -> usize {
        self.with_state_or_panic(|s| s.applied.len())
    }

    /// `(from, to)` of every change `apply` made, in order.
    pub fn applied(&self) -> Vec<(String, String)> {
        self.with_state_or_panic(|s| {
            s.applied
                .iter()
                .map(|a| (a.from.clone(), a.to.clone()))
                .collect()
        })
    }

    /// Moves the target to revision `id` behind the pipeline's back (someone else's
    /// change). Not counted as an apply; the target converges as after one.
    ///
    /// [`Error::NotFound`] when there is no such revision.
    pub fn set_current(&self, id: impl Into<String>) -> Result<()> {
        let id = id.into();
        self.with_state(|s| {
            if s.revision(&id).is_none() {
                return Err(s.not_found(&id));
            }
            if s.current != id {
                s.set_current(&id);
            }
            Ok(())
        })?
    }

    /// Adds `revision` as the newest and makes it current, like a deploy. Not counted as
    /// an apply; the target converges as after one.
    ///
    /// [`Error::InvalidInput`] when a revision with that id exists.
    pub fn deploy(&self, revision: Revision) -> Result<()> {
        self.with_state(|s| {
            if s.revision(&revision.id).is_some() {
                return Err(Error::invalid(
                    s.target(),
                    format!(
                        "cannot deploy revision {:?}: a revision with that id exists",
                        revision.id
                    ),
                ));
            }
            let id = revision.id.clone();
            s.revisions.push(revision);
            s.set_current(&id);
            Ok(())
        })?
    }

    /// Makes the next `n` applies that would change the revision fail with `kind`,
    /// changing nothing. Replaces failures still pending; `n == 0` clears them.
    ///
    /// Applies that return [`ApplyOutcome::AlreadyCurrent`], [`Error::Conflict`] or
    /// [`Error::NotFound`] do not use up an injected failure.
    pub fn fail_next_applies(&self, n: u32, kind: FailureKind) {
        self.with_state_or_panic(|s| {
            s.pending_failures = (n > 0).then_some(PendingFailures { remaining: n, kind });
        })
    }

    /// Makes `check_stable` report [`Stability::Failed`] with `message` whenever revision
    /// `id` is in use (as an ECS circuit breaker would after the apply).
    pub fn fail_rollout(&self, id: impl Into<String>, message: impl Into<String>) {
        let (id, message) = (id.into(), message.into());
        self.with_state_or_panic(|s| {
            s.failed_rollouts.insert(id, message);
        })
    }

    /// Makes `check_stable` keep reporting [`Stability::Waiting`] while revision `id` is in
    /// use, so waits for it time out.
    pub fn never_stable(&self, id: impl Into<String>) {
        let id = id.into();
        self.with_state_or_panic(|s| {
            s.never_stable.insert(id);
        })
    }

    /// Removes every injected fault: pending apply failures, failed rollouts and
    /// never-stable revisions (not health, see [`set_healthy`](Self::set_healthy)).
    pub fn clear_faults(&self) {
        self.with_state_or_panic(|s| {
            s.pending_failures = None;
            s.failed_rollouts.clear();
            s.never_stable.clear();
        })
    }

    /// Whether revision `id` is healthy for [`health_check`](Self::health_check)
    /// (every revision is, by default).
    pub fn set_healthy(&self, id: impl Into<String>, healthy: bool) {
        let id = id.into();
        self.with_state_or_panic(|s| {
            if healthy {
                s.unhealthy.remove(&id);
            } else {
                s.unhealthy.insert(id);
            }
        })
    }

    /// A verifier named `"memory/<name> healthy"` that passes when the revision in use is
    /// healthy (see [`set_healthy`](Self::set_healthy)); its evidence names the revision.
    pub fn health_check(&self) -> HealthCheck {
        HealthCheck {
            target: self.clone(),
        }
    }

    /// The trait methods called on this target (and its clones) in this process, in
    /// order, by name: `"current"`, `"history"`, `"resolve"`, `"plan"`, `"apply"`,
    /// `"check_stable"` (the default `wait_stable` shows as its `check_stable` calls).
    pub fn calls(&self) -> Vec<String> {
        self.local().calls.clone()
    }
}

#[async_trait]
impl RollbackTarget for FakeTarget {
    fn id(&self) -> TargetId {
        TargetId::new(KIND, &self.shared.name)
    }

    fn spec(&self) -> TargetSpec {
        TargetSpec::new(
            KIND,
            Params {
                name: self.shared.name.clone(),
                state_file: self
                    .shared
                    .state_file
                    .as_ref()
                    .map(|p| PathBuf::from(p.to_string_lossy().into_owned())),
            },
        )
    }

    async fn current(&self) -> Result<Revision> {
        self.log("current");
        self.with_state(|s| s.current_revision())?
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        self.log("history");
        self.with_state(|s| s.history())
    }

    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        self.log("resolve");
        let (history, current) = self.with_state(|s| (s.history(), s.current.clone()))?;
        selector.resolve(&self.id(), &history, &current)
    }

    async fn plan(&self, to: &Revision) -> Result<Change> {
        self.log("plan");
        let current = self.with_state(|s| s.current_revision())??;
        Ok(Change::new(self.id(), current, to.clone()))
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        self.log("apply");
        self.with_state(|s| s.apply(change))?
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        self.log("check_stable");
        self.with_state(|s| s.check_stable(revision))
    }
}

/// The verifier of [`FakeTarget::health_check`].
#[derive(Debug, Clone)]
pub struct HealthCheck {
    target: FakeTarget,
}

#[async_trait]
impl Verifier for HealthCheck {
    fn name(&self) -> String {
        format!("{} healthy", self.target.target())
    }

    async fn check(&self) -> Result<CheckOutcome> {
        let (current, healthy) = self
            .target
            .with_state(|s| (s.current.clone(), !s.unhealthy.contains(&s.current)))?;
        let target = self.target.target();
        Ok(if healthy {
            CheckOutcome::pass(format!("{target}: revision {current} is healthy"))
        } else {
            CheckOutcome::fail(format!("{target}: revision {current} is unhealthy"))
        })
    }
}

/// The parameters of a memory target's [`TargetSpec`].
#[derive(Debug, Serialize, Deserialize)]
struct Params {
    name: String,
    #[serde(default)]
    state_file: Option<PathBuf>,
}

/// Registers the `"memory"` kind: targets with a state file are rebuilt from it; those
/// without cannot be (their state died with their process).
pub(crate) fn register(r: &mut Registry) {
    r.register(KIND, |spec: TargetSpec| async move {
        let params: Params = spec.params()?;
        let target = TargetId::new(KIND, &params.name).to_string();
        let Some(path) = params.state_file else {
            return Err(Error::invalid(
                target,
                "a fake target without a state file cannot be rebuilt in another process; \
                 give it a .state_file(...) or register the live instance with Registry::insert",
            ));
        };
        let state = {
            let _lock = FileLock::acquire(&target, &path)?;
            load_state(&target, &path)?
        };
        let state = state.ok_or_else(|| missing_file(&target, &path))?;
        check_name(&state, &params.name, &path)?;
        let t = FakeTarget::from_parts(params.name, Some(path), None);
        Ok(Arc::new(t) as Arc<dyn RollbackTarget>)
    });
}

fn check_name(state: &State, name: &str, path: &Path) -> Result<()> {
    if state.name == name {
        return Ok(());
    }
    Err(Error::invalid(
        TargetId::new(KIND, name).to_string(),
        format!(
            "the state file {} belongs to the fake target {:?}; use another file",
            path.display(),
            state.name
        ),
    ))
}

fn missing_file(target: &str, path: &Path) -> Error {
    Error::not_found(
        target,
        format!("state file {}", path.display()),
        "build the target with FakeTarget::builder(..).state_file(..) to create it",
    )
}

fn io_error(target: &str, path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Backend {
        target: target.to_string(),
        message: format!("cannot {what} the state file {}: {e}", path.display()),
        retryable: false,
        source: Some(Box::new(e)),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The OS lock on `<state file>.lock`, held while the state file is read and written.
///
/// A separate file because the state file itself is replaced by rename on every write.
struct FileLock(fs::File);

impl FileLock {
    fn acquire(target: &str, path: &Path) -> Result<FileLock> {
        let lock_path = with_suffix(path, ".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(target, path, "open the lock file of", e))?;
        file.lock().map_err(|e| io_error(target, path, "lock", e))?;
        Ok(FileLock(file))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first just says so.
        let _ = self.0.unlock();
    }
}

/// The state in `path`, or `None` when there is no such file. Call under the [`FileLock`].
fn load_state(target: &str, path: &Path) -> Result<Option<State>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(target, path, "read", e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Backend {
            target: target.to_string(),
            message: format!(
                "the state file {} does not hold a fake target: {e}",
                path.display()
            ),
            retryable: false,
            source: Some(Box::new(e)),
        })
}

/// Writes the state to a temporary file next to `path` and renames it over `path`, so a
/// reader never sees half a file. Call under the [`FileLock`].
fn store_state(target: &str, path: &Path, state: &State) -> Result<()> {
    let json = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::backend(target, format!("cannot serialize the state: {e}"), false))?;
    let tmp = with_suffix(path, &format!(".tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_error(target, path, "write", e)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::target::Progress;

    fn rev(id: &str) -> Revision {
        Revision::new(id).image(format!("registry/api:v{id}"))
    }

    fn api() -> FakeTarget {
        FakeTarget::builder("api")
            .revision(rev("1"))
            .revision(rev("2"))
            .revision(rev("3"))
            .build()
            .unwrap()
    }

    fn change(t: &FakeTarget, from: &str, to: &str) -> Change {
        Change::new(t.id(), Revision::new(from), Revision::new(to))
    }

    #[test]
    fn builder_errors_name_the_target() {
        let e = FakeTarget::builder("api").build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.target(), "memory/api");
        assert!(e.to_string().contains("no revisions"), "{e}");

        let e = FakeTarget::builder("api")
            .revision(rev("1"))
            .revision(rev("1"))
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("\"1\""), "{e}");

        let e = FakeTarget::builder("api")
            .revision(rev("1"))
            .current("7")
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("\"7\" is not among"), "{e}");

        let e = FakeTarget::builder("")
            .revision(rev("1"))
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn history_is_newest_first_and_current_defaults_to_newest() {
        let t = api();
        let ids: Vec<_> = t
            .history()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["3", "2", "1"]);
        assert_eq!(t.current().await.unwrap().id, "3");
        assert_eq!(t.current_id(), "3");

        let t = FakeTarget::builder("api")
            .revision(rev("1"))
            .revision(rev("2"))
            .current("1")
            .build()
            .unwrap();
        assert_eq!(t.current().await.unwrap(), rev("1"));
        assert_eq!(t.id(), TargetId::new("memory", "api"));
        assert_eq!(
            format!("{t:?}"),
            r#"FakeTarget { name: "api", state_file: None }"#
        );
        let spec = t.spec();
        assert_eq!(spec.kind, "memory");
        assert_eq!(
            spec.params,
            serde_json::json!({"name": "api", "state_file": null})
        );
    }

    #[tokio::test]
    async fn apply_keeps_the_contract() {
        let t = api();
        let previous = t.resolve(&Selector::Previous).await.unwrap();
        let c = t.plan(&previous).await.unwrap();
        assert_eq!((c.from.id.as_str(), c.to.id.as_str()), ("3", "2"));
        assert_eq!(t.calls(), ["resolve", "plan"], "planning changes nothing");
        assert_eq!(t.apply_count(), 0);

        assert_eq!(t.apply(&c).await.unwrap(), ApplyOutcome::Applied);
        assert_eq!(t.current_id(), "2");
        // Applying again sends nothing and is not counted.
        assert_eq!(t.apply(&c).await.unwrap(), ApplyOutcome::AlreadyCurrent);
        assert_eq!(t.apply_count(), 1);
        assert_eq!(t.applied(), [("3".to_string(), "2".to_string())]);

        // Someone else moves it: the old change is now stale.
        t.set_current("1").unwrap();
        let e = t.apply(&c).await.unwrap_err();
        match &e {
            Error::Conflict {
                target,
                expected,
                found,
                ..
            } => {
                assert_eq!(target, "memory/api");
                assert_eq!((expected.as_str(), found.as_str()), ("3", "1"));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(t.current_id(), "1");
        assert_eq!(t.apply_count(), 1, "set_current is not an apply");

        let e = t.apply(&change(&t, "1", "9")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("memory/api"), "{e}");
        assert_eq!(t.current_id(), "1");
        assert_eq!(t.set_current("9").unwrap_err().kind(), ErrorKind::NotFound);

        // Clones share the state.
        let clone = t.clone();
        clone.apply(&change(&t, "1", "3")).await.unwrap();
        assert_eq!(t.current_id(), "3");
        assert_eq!(
            t.calls().iter().filter(|c| *c == "apply").count(),
            5,
            "{:?}",
            t.calls()
        );
    }

    #[tokio::test]
    async fn injected_failures_change_nothing() {
        let t = api();
        let c = change(&t, "3", "2");
        t.fail_next_applies(2, FailureKind::Throttled);
        // AlreadyCurrent and conflicts do not use up an injected failure.
        assert_eq!(
            t.apply(&change(&t, "2", "3")).await.unwrap(),
            ApplyOutcome::AlreadyCurrent
        );
        for _ in 0..2 {
            let e = t.apply(&c).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Throttled);
            assert!(e.is_retryable());
            assert_eq!(t.current_id(), "3");
        }
        assert_eq!(t.apply_count(), 0);
        assert_eq!(t.apply(&c).await.unwrap(), ApplyOutcome::Applied);

        t.fail_next_applies(1, FailureKind::Transient);
        let e = t.apply(&change(&t, "2", "1")).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Backend {
                    retryable: true,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("503"), "{e}");

        t.fail_next_applies(1, FailureKind::Permanent);
        let e = t.apply(&change(&t, "2", "1")).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Backend {
                    retryable: false,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(t.current_id(), "2");

        t.fail_next_applies(5, FailureKind::Permanent);
        t.fail_next_applies(0, FailureKind::Permanent);
        assert_eq!(
            t.apply(&change(&t, "2", "1")).await.unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(t.apply_count(), 2);
    }

    #[tokio::test]
    async fn converges_then_is_stable() {
        let t = FakeTarget::builder("api")
            .revision(rev("1"))
            .revision(rev("2"))
            .convergence(Duration::from_millis(150))
            .build()
            .unwrap();
        // Stable as built.
        assert_eq!(t.check_stable(&rev("2")).await.unwrap(), Stability::Stable);
        t.apply(&change(&t, "2", "1")).await.unwrap();
        match t.check_stable(&rev("1")).await.unwrap() {
            Stability::Waiting(m) => {
                assert!(m.starts_with("converging to 1: "), "{m}");
                assert!(m.ends_with(" ms left"), "{m}");
            }
            other => panic!("expected waiting, got {other:?}"),
        }
        assert_eq!(
            t.check_stable(&rev("2")).await.unwrap(),
            Stability::Waiting("current is 1, not 2".into())
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let progress = Progress::new(move |m| s2.lock().unwrap().push(m.to_string()));
        t.wait_stable(&rev("1"), Duration::from_secs(10), &progress)
            .await
            .unwrap();
        assert_eq!(t.check_stable(&rev("1")).await.unwrap(), Stability::Stable);
        assert!(!seen.lock().unwrap().is_empty(), "progress was reported");
    }

    #[tokio::test(start_paused = true)]
    async fn failed_and_never_stable_rollouts() {
        let t = api();
        t.fail_rollout("2", "circuit breaker tripped");
        t.never_stable("1");
        t.apply(&change(&t, "3", "2")).await.unwrap();
        assert_eq!(
            t.check_stable(&rev("2")).await.unwrap(),
            Stability::Failed("circuit breaker tripped".into())
        );
        let e = t
            .wait_stable(&rev("2"), Duration::from_secs(30), &Progress::none())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RolloutFailed);
        assert!(e.to_string().contains("circuit breaker tripped"), "{e}");

        t.apply(&change(&t, "2", "1")).await.unwrap();
        let e = t
            .wait_stable(&rev("1"), Duration::from_secs(30), &Progress::none())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.to_string().contains("never becomes stable"), "{e}");

        t.clear_faults();
        assert_eq!(t.check_stable(&rev("1")).await.unwrap(), Stability::Stable);
    }

    #[tokio::test]
    async fn health_check_follows_the_current_revision() {
        let t = api();
        let v = t.health_check();
        assert_eq!(v.name(), "memory/api healthy");
        let o = v.check().await.unwrap();
        assert!(o.passed);
        assert!(
            o.evidence.contains("revision 3 is healthy"),
            "{}",
            o.evidence
        );

        t.set_healthy("3", false);
        let o = v.check().await.unwrap();
        assert!(!o.passed);
        assert!(
            o.evidence.contains("revision 3 is unhealthy"),
            "{}",
            o.evidence
        );

        t.apply(&change(&t, "3", "2")).await.unwrap();
        assert!(v.check().await.unwrap().passed);
        t.set_healthy("3", true);
        t.set_current("3").unwrap();
        assert!(v.check().await.unwrap().passed);
        assert!(!t.calls().contains(&"check".to_string()));
    }

    #[tokio::test]
    async fn deploy_adds_the_newest_revision() {
        let t = api();
        t.deploy(rev("4")).unwrap();
        assert_eq!(t.current_id(), "4");
        assert_eq!(t.history().await.unwrap()[0].id, "4");
        assert_eq!(
            t.resolve(&Selector::Previous).await.unwrap().id,
            "3",
            "previous of a fresh deploy"
        );
        assert_eq!(
            t.deploy(rev("2")).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(t.apply_count(), 0);
    }

    #[tokio::test]
    async fn a_state_file_is_shared_between_instances() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("api.json");
        let a = FakeTarget::builder("api")
            .revision(rev("1"))
            .revision(rev("2"))
            .revision(rev("3"))
            .state_file(&path)
            .build()
            .unwrap();
        // A second "process": no revisions given, the file has them.
        let b = FakeTarget::builder("api")
            .state_file(&path)
            .build()
            .unwrap();
        assert_eq!(b.current_id(), "3");

        a.apply(&change(&a, "3", "2")).await.unwrap();
        assert_eq!(b.current_id(), "2");
        assert_eq!(b.applied(), [("3".to_string(), "2".to_string())]);

        // Faults set by one are seen by the other.
        b.fail_next_applies(1, FailureKind::Transient);
        b.fail_rollout("1", "bad rollout");
        b.set_healthy("1", false);
        assert!(a
            .apply(&change(&a, "2", "1"))
            .await
            .unwrap_err()
            .is_retryable());
        assert_eq!(b.current_id(), "2");
        a.apply(&change(&a, "2", "1")).await.unwrap();
        assert_eq!(
            b.check_stable(&rev("1")).await.unwrap(),
            Stability::Failed("bad rollout".into())
        );
        assert!(!a.health_check().check().await.unwrap().passed);

        b.deploy(rev("4")).unwrap();
        assert_eq!(a.history().await.unwrap().len(), 4);
        assert_eq!(a.apply_count(), 2);

        // The call log is per process (per instance family).
        assert!(b.calls().iter().all(|c| c != "apply"));

        // Nothing but the state and its lock file is left around.
        let mut files: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files, ["api.json", "api.json.lock"]);
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["current"], "4");

        // Another target may not take over the file.
        let e = FakeTarget::builder("web")
            .revision(rev("1"))
            .state_file(&path)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("belongs to"), "{e}");

        let opened = FakeTarget::open(&path).unwrap();
        assert_eq!(opened.id(), a.id());
        assert_eq!(opened.current_id(), "4");
        let e = FakeTarget::open(dir.path().join("missing.json")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn concurrent_writers_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.json");
        FakeTarget::builder("api")
            .revision(rev("0"))
            .state_file(&path)
            .build()
            .unwrap();
        let threads: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|who| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // Each thread has its own instance, as another process would.
                    let t = FakeTarget::builder("api").state_file(path).build().unwrap();
                    for i in 0..20 {
                        t.deploy(rev(&format!("{who}{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let t = FakeTarget::open(&path).unwrap();
        let n = t.with_state(|s| s.revisions.len()).unwrap();
        assert_eq!(n, 61);
    }

    #[tokio::test]
    async fn the_registry_rebuilds_targets_with_a_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.json");
        let t = FakeTarget::builder("api")
            .revision(rev("1"))
            .revision(rev("2"))
            .state_file(&path)
            .build()
            .unwrap();
        let spec = t.spec();
        assert_eq!(
            spec.params,
            serde_json::json!({"name": "api", "state_file": path.to_string_lossy()})
        );
        let registry = Registry::with_builtins();
        let rebuilt = registry.build(&t.id(), &spec).await.unwrap();
        assert_eq!(rebuilt.id(), t.id());
        assert_eq!(rebuilt.spec(), spec);
        rebuilt.apply(&change(&t, "2", "1")).await.unwrap();
        assert_eq!(t.current_id(), "1");

        // Without a state file the state died with its process.
        let plain = api();
        let e = registry
            .build(&plain.id(), &plain.spec())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("Registry::insert"), "{e}");
        assert_eq!(e.target(), "memory/api");
        // ... unless the live instance is registered.
        let mut with_instance = Registry::with_builtins();
        with_instance.insert(Arc::new(plain.clone()));
        let same = with_instance
            .build(&plain.id(), &plain.spec())
            .await
            .unwrap();
        assert_eq!(same.current().await.unwrap().id, "3");

        fs::remove_file(&path).unwrap();
        let e = registry.build(&t.id(), &spec).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("api.json"), "{e}");
        // And the live instance reports the missing file instead of panicking.
        assert_eq!(t.current().await.unwrap_err().kind(), ErrorKind::NotFound);
    }
}
