//! The [`RollbackTarget`] trait: one thing that has revisions and a current revision.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lock::{FileLocks, LockManager, LockSpec};
use crate::revision::{Change, Revision};
use crate::selector::Selector;
use crate::wait::{poll_until, PollSchedule};

/// Who a target is: its kind (`lambda-alias`, `ecs-service`, `memory`...) and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TargetId {
    /// The kind of target, e.g. `ecs-service`.
    pub kind: String,
    /// The name within the kind, e.g. `production/api-gateway-v2`.
    pub name: String,
}

impl TargetId {
    /// A target id.
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        TargetId {
            kind: kind.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// A target described as data, so that a run can be rebuilt from its journal (see
/// [`Registry`]) and written in a runbook file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// The kind, which picks the factory in a [`Registry`].
    pub kind: String,
    /// The kind's own parameters (function and alias, cluster and service...).
    #[serde(default)]
    pub params: serde_json::Value,
}

impl TargetSpec {
    /// A spec from a kind and any serializable parameters.
    pub fn new(kind: impl Into<String>, params: impl Serialize) -> Self {
        TargetSpec {
            kind: kind.into(),
            params: serde_json::to_value(params).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The parameters as a typed value, with an [`Error::InvalidInput`] naming the kind
    /// when they do not fit.
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.params.clone()).map_err(|e| {
            Error::invalid(
                self.kind.clone(),
                format!("target parameters do not fit this kind: {e}"),
            )
        })
    }
}

/// What [`RollbackTarget::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    /// The target was moved to the revision.
    Applied,
    /// The target was already at the revision; nothing was sent.
    AlreadyCurrent,
}

/// Where a target is on its way to a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stability {
    /// Done: the revision is in use and healthy by the backend's own rules.
    Stable,
    /// Still converging; the message says how far (kubectl / waiter style).
    Waiting(String),
    /// Will not get there by waiting (circuit breaker, progress deadline...).
    Failed(String),
}

/// Receives progress messages while a target converges.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(&str) + Send + Sync>);

impl Progress {
    /// A progress sink from a closure.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Progress(Arc::new(f))
    }

    /// A sink that drops every message.
    pub fn none() -> Self {
        Progress::new(|_| {})
    }

    /// Reports one message.
    pub fn report(&self, message: &str) {
        (self.0)(message)
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress")
    }
}

/// One thing that has revisions and a current revision: a Lambda alias, an ECS service, a
/// secret, a Kubernetes Deployment...
///
/// Backends implement [`id`](Self::id), [`spec`](Self::spec), [`current`](Self::current),
/// [`history`](Self::history), [`apply`](Self::apply) and
/// [`check_stable`](Self::check_stable); the rest have shared defaults they may refine.
///
/// The contract every implementation keeps (and the `conformance` suite, feature `testing`,
/// checks):
/// - `history` is newest first and contains the current revision;
/// - nothing but `apply` changes anything;
/// - `apply` of a revision already in use returns [`ApplyOutcome::AlreadyCurrent`] and
///   sends nothing; `apply` when the target is neither at `change.from` nor `change.to`
///   returns [`Error::Conflict`] and changes nothing;
/// - no secret value ever appears in a revision, change, error or `Debug` output.
#[async_trait]
pub trait RollbackTarget: Send + Sync + fmt::Debug {
    /// Kind and name.
    fn id(&self) -> TargetId;

    /// The target as data, for journals and runbook files.
    fn spec(&self) -> TargetSpec;

    /// The cloud permissions its calls need ([`Permission`](crate::permission::Permission)),
    /// for `rollback policy`; `None` (the default) when it does not say, and then a policy
    /// generated for a run that holds it says it is incomplete.
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        None
    }

    /// The revision in use now.
    async fn current(&self) -> Result<Revision>;

    /// All revisions one can roll back to, newest first, including the current one.
    async fn history(&self) -> Result<Vec<Revision>>;

    /// The revision a selector picks. The default applies [`Selector::resolve`] to
    /// [`history`](Self::history) and [`current`](Self::current).
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        let (history, current) = futures::try_join!(self.history(), self.current())?;
        selector.resolve(&self.id(), &history, &current.id)
    }

    /// The change from the revision in use to `to`, with a reviewable diff and any backend
    /// precondition. Changes nothing.
    async fn plan(&self, to: &Revision) -> Result<Change> {
        let current = self.current().await?;
        Ok(Change::new(self.id(), current, to.clone()))
    }

    /// Preflight's reads in one: the change from the revision in use to the one `selector`
    /// picks, with its diff, as [`current`](Self::current), [`resolve`](Self::resolve) and
    /// [`plan`](Self::plan) would give it, in as few calls as the backend can. The engine
    /// calls this (not the three) for every step; a change that [is a
    /// no-op](Change::is_noop) means the target already is there.
    ///
    /// The default calls the three in turn (skipping `plan` when the selected revision is
    /// the one in use) and refuses, as a conflict, a plan whose `from` is not the revision
    /// just read. Backends whose three reads overlap override it: an ECS service is
    /// described once, a Lambda alias read once.
    async fn prepare(&self, selector: &Selector) -> Result<Change> {
        let current = self.current().await?;
        let to = self.resolve(selector).await?;
        if current.same_state_as(&to) {
            return Ok(Change::new(self.id(), current.clone(), current));
        }
        let change = self.plan(&to).await?;
        if !change.from.same_as(&current) {
            return Err(Error::conflict(
                self.id().to_string(),
                current.id,
                change.from.id,
            ));
        }
        Ok(change)
    }

    /// Moves the target to `change.to` (see the trait's contract for conflicts and
    /// idempotence).
    async fn apply(&self, change: &Change) -> Result<ApplyOutcome>;

    /// What a person must know once `change` was compensated, if anything: an RDS restore
    /// keeps the instance it made (compensation never deletes data), say. Goes into the
    /// report's `needs_attention`.
    fn compensation_note(&self, change: &Change) -> Option<String> {
        let _ = change;
        None
    }

    /// One look at how far the target is on its way to `revision`.
    async fn check_stable(&self, revision: &Revision) -> Result<Stability>;

    /// Waits until the target is stable at `revision`, within `timeout`, reporting progress.
    ///
    /// The default polls [`check_stable`](Self::check_stable) on the
    /// [stability schedule](PollSchedule::stability) (a first look at once, then at most
    /// 400 ms apart for 10 s and 1.6 s after), each look under the transaction's bound on
    /// calls in flight ([`limited`](crate::wait::limited)); retryable errors are reported
    /// and waited through. Backends with a watch (Kubernetes) or a batched poll (ECS)
    /// override it.
    async fn wait_stable(
        &self,
        revision: &Revision,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<()> {
        let id = self.id().to_string();
        poll_until(
            &id,
            &format!("revision {} to be stable", revision.id),
            timeout,
            PollSchedule::stability(),
            progress,
            || self.check_stable(revision),
        )
        .await
    }
}

type LockFactory =
    Arc<dyn Fn(LockSpec) -> BoxFuture<'static, Result<Arc<dyn LockManager>>> + Send + Sync>;

type Factory = Arc<
    dyn Fn(TargetSpec, Registry) -> BoxFuture<'static, Result<Arc<dyn RollbackTarget>>>
        + Send
        + Sync,
>;

/// A shared store as data, the way a runbook file names one (`{kind: s3, bucket: ...,
/// prefix: ...}`): its kind and the kind's parameters. The same shape as a [`LockSpec`].
pub type StoreSpec = LockSpec;

type StoreFactory<T> = Arc<dyn Fn(StoreSpec) -> BoxFuture<'static, Result<T>> + Send + Sync>;

type ValueFactory<T> =
    Arc<dyn Fn(serde_json::Value) -> BoxFuture<'static, Result<T>> + Send + Sync>;

/// Factories of one family of things a runbook names by kind with parameters as data
/// (checks, actions), by kind.
#[derive(Clone)]
struct ValueKinds<T> {
    /// What they are, in errors: "check".
    what: &'static str,
    factories: HashMap<String, ValueFactory<T>>,
}

impl<T> ValueKinds<T> {
    fn new(what: &'static str) -> Self {
        ValueKinds {
            what,
            factories: HashMap::new(),
        }
    }

    fn insert<F, Fut>(&mut self, kind: String, factory: F)
    where
        F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        self.factories
            .insert(kind, Arc::new(move |params| Box::pin(factory(params))));
    }

    fn names(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.factories.keys().cloned().collect();
        kinds.sort();
        kinds
    }

    async fn build(&self, kind: &str, params: serde_json::Value) -> Result<T> {
        match self.factories.get(kind) {
            Some(factory) => factory(params).await,
            None => Err(Error::invalid(
                self.what,
                format!(
                    "no {} kind {kind:?} (known: {}); register the backend's {} kinds in the Registry",
                    self.what,
                    self.names().join(", "),
                    self.what
                ),
            )),
        }
    }
}

/// Factories of one family of stores, by kind.
#[derive(Clone)]
struct StoreKinds<T> {
    /// What they are, in errors: "journal store".
    what: &'static str,
    factories: HashMap<String, StoreFactory<T>>,
}

impl<T> StoreKinds<T> {
    fn new(what: &'static str) -> Self {
        StoreKinds {
            what,
            factories: HashMap::new(),
        }
    }

    fn names(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.factories.keys().cloned().collect();
        kinds.sort();
        kinds
    }

    async fn build(&self, spec: &StoreSpec) -> Result<T> {
        match self.factories.get(&spec.kind) {
            Some(factory) => factory(spec.clone()).await,
            None => Err(Error::invalid(
                self.what,
                format!(
                    "no {} kind {:?} (known: {}); register the backend's kinds in the Registry",
                    self.what,
                    spec.kind,
                    self.names().join(", ")
                ),
            )),
        }
    }
}

/// Rebuilds targets from their [`TargetSpec`]s: how [`crate::resume`] finds the targets of a
/// journal, and how a runbook file names them.
///
/// Each backend crate offers a function that registers its kinds; live instances can be
/// registered too (a fake target in a test, say) and take precedence. Lock kinds are
/// registered the same way ([`register_locks`](Self::register_locks)), so that a resume
/// rebuilds the lock manager a journal names; file leases ([`FileLocks`]) are always known.
#[derive(Clone)]
pub struct Registry {
    factories: HashMap<String, Factory>,
    instances: HashMap<TargetId, Arc<dyn RollbackTarget>>,
    lock_kinds: HashMap<String, LockFactory>,
    check_kinds: ValueKinds<Arc<dyn crate::verify::Verifier>>,
    action_kinds: ValueKinds<Arc<dyn crate::transaction::AfterAction>>,
    source_kinds: ValueKinds<Arc<dyn crate::metrics::MetricSource>>,
    journal_stores: StoreKinds<Arc<dyn crate::journal::JournalStore>>,
    known_good_stores: StoreKinds<Arc<dyn crate::known_good::KnownGoodStore>>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut r = Registry {
            factories: HashMap::new(),
            instances: HashMap::new(),
            lock_kinds: HashMap::new(),
            check_kinds: ValueKinds::new("check"),
            action_kinds: ValueKinds::new("action"),
            source_kinds: ValueKinds::new("metric source"),
            journal_stores: StoreKinds::new("journal store"),
            known_good_stores: StoreKinds::new("known-good store"),
        };
        // Prometheus's HTTP API, for a runbook's `watch:`: always known (with `http`).
        #[cfg(feature = "http")]
        crate::metrics::register_prometheus(&mut r);
        // A folder of files: the one-machine default, always known.
        r.register_known_good("file", |spec: StoreSpec| async move {
            let dir = spec
                .params
                .get("dir")
                .and_then(|d| d.as_str())
                .ok_or_else(|| {
                    Error::invalid(
                        "known-good store",
                        "a file known-good store needs a dir (its folder)",
                    )
                })?;
            Ok(Arc::new(crate::known_good::FileKnownGood::new(dir))
                as Arc<dyn crate::known_good::KnownGoodStore>)
        });
        r
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<_> = self.factories.keys().collect();
        kinds.sort();
        f.debug_struct("Registry")
            .field("kinds", &kinds)
            .field("instances", &self.instances.keys().collect::<Vec<_>>())
            .field("lock_kinds", &self.lock_kind_names())
            .field("check_kinds", &self.check_kinds())
            .field("action_kinds", &self.action_kinds())
            .field("metric_source_kinds", &self.metric_source_kinds())
            .field("journal_stores", &self.journal_stores.names())
            .field("known_good_stores", &self.known_good_stores.names())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry that knows this crate's own kinds: [`CommandTarget`](crate::CommandTarget)'s
    /// (`command`), with the `process` feature, and the fake target's (`memory`), with the
    /// `testing` feature; none without them.
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        r.register_builtins();
        r
    }

    fn register_builtins(&mut self) {
        #[cfg(feature = "process")]
        crate::command_target::register(self);
        #[cfg(feature = "testing")]
        crate::fake::register(self);
    }

    /// Registers a factory for a kind.
    pub fn register<F, Fut>(&mut self, kind: impl Into<String>, factory: F) -> &mut Self
    where
        F: Fn(TargetSpec) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Arc<dyn RollbackTarget>>> + Send + 'static,
    {
        self.factories.insert(
            kind.into(),
            Arc::new(move |spec, _| Box::pin(factory(spec))),
        );
        self
    }

    /// Registers a factory for a kind whose targets hold other targets (a secret's
    /// consumers, which may be another backend's): the factory is given the registry the
    /// target is built from, to build those with [`build`](Self::build), whatever crate
    /// registered their kinds and in whatever order.
    pub fn register_nested<F, Fut>(&mut self, kind: impl Into<String>, factory: F) -> &mut Self
    where
        F: Fn(TargetSpec, Registry) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Arc<dyn RollbackTarget>>> + Send + 'static,
    {
        self.factories.insert(
            kind.into(),
            Arc::new(move |spec, registry| Box::pin(factory(spec, registry))),
        );
        self
    }

    /// Registers a live target; it is used for its id instead of building a new one.
    pub fn insert(&mut self, target: Arc<dyn RollbackTarget>) -> &mut Self {
        self.instances.insert(target.id(), target);
        self
    }

    /// The target for an id and spec: a registered instance, or one built by the kind's
    /// factory.
    pub async fn build(&self, id: &TargetId, spec: &TargetSpec) -> Result<Arc<dyn RollbackTarget>> {
        if let Some(t) = self.instances.get(id) {
            return Ok(t.clone());
        }
        let factory = self.factories.get(&spec.kind).ok_or_else(|| {
            let mut kinds: Vec<_> = self.factories.keys().cloned().collect();
            kinds.sort();
            Error::invalid(
                id.to_string(),
                format!(
                    "no factory for target kind {:?} (known: {}); register the backend's kinds in the Registry",
                    spec.kind,
                    kinds.join(", ")
                ),
            )
        })?;
        factory(spec.clone(), self.clone()).await
    }

    /// Registers a factory for a lock kind (a [`LockSpec::kind`]), as backends offering
    /// their own leases do.
    pub fn register_locks<F, Fut>(&mut self, kind: impl Into<String>, factory: F) -> &mut Self
    where
        F: Fn(LockSpec) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Arc<dyn LockManager>>> + Send + 'static,
    {
        self.lock_kinds
            .insert(kind.into(), Arc::new(move |spec| Box::pin(factory(spec))));
        self
    }

    /// The target kinds this registry can build, sorted.
    pub fn target_kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.factories.keys().cloned().collect();
        kinds.sort();
        kinds
    }

    /// Registers a factory for a check kind that a runbook file names
    /// (`{check: {kind: cloudwatch-alarms, prefix: ...}}`): the parameters, as data, to a
    /// verifier. Factories build offline (no call is made before the check runs).
    pub fn register_check<F, Fut>(&mut self, kind: impl Into<String>, factory: F) -> &mut Self
    where
        F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut:
            std::future::Future<Output = Result<Arc<dyn crate::verify::Verifier>>> + Send + 'static,
    {
        self.check_kinds.insert(kind.into(), factory);
        self
    }

    /// The check kinds registered, sorted.
    pub fn check_kinds(&self) -> Vec<String> {
        self.check_kinds.names()
    }

    /// The verifier of a registered check kind, from its parameters.
    pub async fn build_check(
        &self,
        kind: &str,
        params: serde_json::Value,
    ) -> Result<Arc<dyn crate::verify::Verifier>> {
        self.check_kinds.build(kind, params).await
    }

    /// Registers a factory for an action kind that a runbook file names under `on_success:`
    /// or `on_failure:` (`{action: {kind: cloudfront-invalidation, distribution: ...}}`):
    /// the parameters, as data, to an [`AfterAction`](crate::transaction::AfterAction).
    /// Factories build offline (what an action reads is read in preflight).
    pub fn register_action<F, Fut>(&mut self, kind: impl Into<String>, factory: F) -> &mut Self
    where
        F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Arc<dyn crate::transaction::AfterAction>>>
            + Send
            + 'static,
    {
        self.action_kinds.insert(kind.into(), factory);
        self
    }

    /// Registers a factory for a metric source kind that a runbook's `watch:` names
    /// (`source: {kind: prometheus, url: ...}`): the parameters, as data, to a
    /// [`MetricSource`](crate::metrics::MetricSource). Factories build offline.
    pub fn register_metric_source<F, Fut>(
        &mut self,
        kind: impl Into<String>,
        factory: F,
    ) -> &mut Self
    where
        F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Arc<dyn crate::metrics::MetricSource>>>
            + Send
            + 'static,
    {
        self.source_kinds.insert(kind.into(), factory);
        self
    }

    /// The metric source kinds registered, sorted.
    pub fn metric_source_kinds(&self) -> Vec<String> {
        self.source_kinds.names()
    }

    /// The source of a registered metric source kind, from its parameters.
    pub async fn build_metric_source(
        &self,
        kind: &str,
        params: serde_json::Value,
    ) -> Result<Arc<dyn crate::metrics::MetricSource>> {
        self.source_kinds.build(kind, params).await
    }

    /// The action kinds registered, sorted.
    pub fn action_kinds(&self) -> Vec<String> {
        self.action_kinds.names()
    }

    /// The action of a registered action kind, from its parameters.
    pub async fn build_action(
        &self,
        kind: &str,
        params: serde_json::Value,
    ) -> Result<Arc<dyn crate::transaction::AfterAction>> {
        self.action_kinds.build(kind, params).await
    }

    /// Registers a factory for a journal store kind that a runbook file names
    /// (`journal_store: {kind: s3, bucket: ...}`).
    pub fn register_journal_store<F, Fut>(
        &mut self,
        kind: impl Into<String>,
        factory: F,
    ) -> &mut Self
    where
        F: Fn(StoreSpec) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Arc<dyn crate::journal::JournalStore>>>
            + Send
            + 'static,
    {
        self.journal_stores
            .factories
            .insert(kind.into(), Arc::new(move |spec| Box::pin(factory(spec))));
        self
    }

    /// The journal store a [`StoreSpec`] describes.
    pub async fn build_journal_store(
        &self,
        spec: &StoreSpec,
    ) -> Result<Arc<dyn crate::journal::JournalStore>> {
        self.journal_stores.build(spec).await
    }

    /// The journal store kinds registered, sorted.
    pub fn journal_store_kinds(&self) -> Vec<String> {
        self.journal_stores.names()
    }

    /// Registers a factory for a known-good store kind that a runbook file names
    /// (`known_good: {kind: dynamodb, table: ...}`); `file` (with `dir`) is always known.
    pub fn register_known_good<F, Fut>(&mut self, kind: impl Into<String>, factory: F) -> &mut Self
    where
        F: Fn(StoreSpec) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Arc<dyn crate::known_good::KnownGoodStore>>>
            + Send
            + 'static,
    {
        self.known_good_stores
            .factories
            .insert(kind.into(), Arc::new(move |spec| Box::pin(factory(spec))));
        self
    }

    /// The known-good store a [`StoreSpec`] describes.
    pub async fn build_known_good(
        &self,
        spec: &StoreSpec,
    ) -> Result<Arc<dyn crate::known_good::KnownGoodStore>> {
        self.known_good_stores.build(spec).await
    }

    /// The known-good store kinds registered, sorted.
    pub fn known_good_kinds(&self) -> Vec<String> {
        self.known_good_stores.names()
    }

    fn lock_kind_names(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.lock_kinds.keys().cloned().collect();
        if !self.lock_kinds.contains_key(FileLocks::KIND) {
            kinds.push(FileLocks::KIND.into());
        }
        kinds.sort();
        kinds
    }

    /// The lock manager a [`LockSpec`] describes: built by its kind's factory, or file
    /// leases for kind `"file"` when no factory replaces them.
    pub async fn build_locks(&self, spec: &LockSpec) -> Result<Arc<dyn LockManager>> {
        match self.lock_kinds.get(&spec.kind) {
            Some(factory) => factory(spec.clone()).await,
            None if spec.kind == FileLocks::KIND => Ok(Arc::new(FileLocks::from_spec(spec)?)),
            None => Err(Error::invalid(
                "locks",
                format!(
                    "no factory for lock kind {:?} (known: {}); register the backend's lock kinds in the Registry, or give the lock manager explicitly",
                    spec.kind,
                    self.lock_kind_names().join(", ")
                ),
            )),
        }
    }
}
