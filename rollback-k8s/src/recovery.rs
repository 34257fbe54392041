//! Runbook 004's "Failed Rollback Recovery" as targets: scale to zero and back, scale up
//! gradually with a check between, and restart (`kubectl rollout restart`).
//!
//! ```text
//! kubectl scale deployment/frontend --replicas=0 -n production     Replicas, Exact("0"), temporary
//! ... restore, re-deploy ...
//! kubectl scale deployment/frontend --replicas=1 -n production     Replicas::gradual([1]) with a check
//! # Verify health                                                   between the steps
//! kubectl scale deployment/frontend --replicas=3 -n production
//! ```
//!
//! A [`Replicas`] step marked [temporary](rollback_core::Step::temporary) with
//! `Exact("0")` stops the workload for the length of the transaction's stages and puts it
//! back to the replica count captured in preflight (gradually, if asked) before the
//! transaction's checks. A [`Restart`] step makes every pod start afresh, which is how a
//! workload reads a rolled-back secret.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::apps::v1 as apps;
use rollback_core::verify::{Verifier, VerifierSpec};
use rollback_core::{
    ApplyOutcome, Change, Error, Progress, Registry, Result, Revision, RollbackTarget, Selector,
    Stability, TargetId, TargetSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{Clients, K8sConfig, K8sDefaults};
use crate::pods::{PodsReady, PodsReadyParams};
use crate::status::{RolloutStatus, StatusErrorKind};
use crate::workload::{watch_until, Workload, WorkloadKind};

/// The annotation `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";

/// The revision id of a workload never restarted.
pub const NEVER: &str = "never";

/// The pod template a recovery step's own write left, per revision it moved to, so that
/// its wait can tell someone else's template change (a new rollout, `kubectl set image`)
/// from the rollout it started, and fail at once instead of waiting for theirs. A target
/// rebuilt from a journal has not written anything and judges by its own field alone.
#[derive(Clone, Default)]
struct Written(Arc<Mutex<Option<(String, serde_json::Value)>>>);

impl Written {
    fn record<W: WorkloadKind>(&self, revision: &str, object: &W) {
        let template = serde_json::to_value(object.template()).unwrap_or_default();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((revision.to_string(), template));
    }

    /// Whether `object`'s template is not the one our write to `revision` left.
    fn changed<W: WorkloadKind>(&self, revision: &str, object: &W) -> bool {
        match &*self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((r, template)) if r == revision => {
                serde_json::to_value(object.template()).unwrap_or_default() != *template
            }
            _ => false,
        }
    }
}

/// What a wait reports when someone else changed the pod template.
fn template_changed<W: WorkloadKind>(object: &W, waiting_for: &str) -> Stability {
    let images = crate::workload::images_of(object);
    Stability::Failed(format!(
        "someone else changed the {}'s pod template while we waited for {waiting_for} (it now runs {}); their change is left as it is",
        W::NOUN,
        images.join(", ")
    ))
}

/// Kinds that have `spec.replicas` (Deployment, StatefulSet).
pub trait Scalable: WorkloadKind {
    /// The [`Replicas`] target kind: `k8s-deployment-replicas`, `k8s-statefulset-replicas`.
    const REPLICAS_KIND: &'static str;
}

impl Scalable for apps::Deployment {
    const REPLICAS_KIND: &'static str = "k8s-deployment-replicas";
}

impl Scalable for apps::StatefulSet {
    const REPLICAS_KIND: &'static str = "k8s-statefulset-replicas";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReplicasParams {
    namespace: String,
    name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gradual: Vec<i32>,
    /// The check between the steps of the scale-up, as data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    between: Option<BetweenSpec>,
    #[serde(default)]
    k8s: K8sConfig,
}

/// The check between the steps of a gradual scale-up as a journal records it: a
/// [`PodsReady`] by its parameters, any other check by its [`VerifierSpec`] (which is
/// [`VerifierSpec::Opaque`] for code, such as a closure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BetweenSpec {
    PodsReady(PodsReadyParams),
    Check(VerifierSpec),
}

/// The check between the steps of a gradual scale-up: the code that runs and the data a
/// journal records of it.
#[derive(Clone)]
struct Between {
    /// `None` for a check rebuilt from a journal that recorded code: it cannot run, so the
    /// scale-up stops at its first step rather than go on unchecked.
    verifier: Option<Arc<dyn Verifier>>,
    spec: BetweenSpec,
}

impl Between {
    fn of<V: Verifier + 'static>(check: V) -> Between {
        let spec = match (&check as &dyn Any).downcast_ref::<PodsReady>() {
            Some(pods) => BetweenSpec::PodsReady(pods.params()),
            None => BetweenSpec::Check(check.spec()),
        };
        Between {
            verifier: Some(Arc::new(check)),
            spec,
        }
    }

    /// The check the journal of `p`'s target recorded, on the registry's clients.
    async fn rebuild<W: Scalable>(
        spec: BetweenSpec,
        clients: &Clients,
        p: &ReplicasParams,
    ) -> Result<Between> {
        let verifier: Option<Arc<dyn Verifier>> = match &spec {
            BetweenSpec::PodsReady(pods) => {
                let k8s = clients
                    .for_target(&pods.k8s, W::REPLICAS_KIND, &p.namespace, &p.name)
                    .await?;
                Some(Arc::new(PodsReady::from_params(&k8s, pods.clone())?))
            }
            BetweenSpec::Check(v) => v.build(),
        };
        Ok(Between { verifier, spec })
    }

    fn name(&self) -> String {
        match (&self.verifier, &self.spec) {
            (Some(v), _) => v.name(),
            (None, BetweenSpec::Check(VerifierSpec::Opaque { name })) => name.clone(),
            (None, _) => "a check holding code".into(),
        }
    }
}

/// A workload's replica count as a target (`kubectl scale`): revisions are counts (`"0"`,
/// `"3"`), chosen with `Exact("N")`.
///
/// Stable means kubectl's rollout status is done at that count. With
/// [`gradual`](Self::gradual) a scale-up stops at each intermediate count, waits for it and
/// runs the [`between`](Self::between) check before going on; a failing check scales back
/// to where it started and fails with [`Error::VerificationFailed`].
pub struct Replicas<W: Scalable> {
    workload: Workload<W>,
    gradual: Vec<i32>,
    between: Option<Between>,
    step_timeout: Duration,
    written: Written,
    id: TargetId,
}

impl<W: Scalable> Clone for Replicas<W> {
    fn clone(&self) -> Self {
        Replicas {
            workload: self.workload.clone(),
            gradual: self.gradual.clone(),
            between: self.between.clone(),
            step_timeout: self.step_timeout,
            written: self.written.clone(),
            id: self.id.clone(),
        }
    }
}

impl<W: Scalable> fmt::Debug for Replicas<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replicas")
            .field("kind", &W::REPLICAS_KIND)
            .field("namespace", &self.workload.namespace)
            .field("name", &self.workload.name)
            .field("gradual", &self.gradual)
            .field("between", &self.between.as_ref().map(Between::name))
            .finish()
    }
}

impl<W: Scalable> Workload<W> {
    /// This workload's replica count as a target.
    pub fn replicas(&self) -> Replicas<W> {
        Replicas {
            id: TargetId::new(W::REPLICAS_KIND, self.id.name.clone()),
            workload: self.clone(),
            gradual: Vec::new(),
            between: None,
            step_timeout: Duration::from_secs(300),
            written: Written::default(),
        }
    }
}

impl<W: WorkloadKind> Workload<W> {
    /// This workload's restart (`kubectl rollout restart`) as a target.
    pub fn restart(&self) -> Restart<W> {
        Restart {
            id: TargetId::new(restart_kind::<W>(), self.id.name.clone()),
            workload: self.clone(),
            written: Written::default(),
        }
    }
}

/// A replica count as the API server takes it: a whole number from 0 to 2147483647.
fn replica_count(id: &TargetId, n: &str) -> Result<i32> {
    let shown = rollback_core::redact::truncate(n, 40);
    let digits = n.trim();
    let fault = if digits.starts_with('-')
        && digits[1..].bytes().all(|b| b.is_ascii_digit())
        && digits.len() > 1
    {
        "a replica count cannot be negative"
    } else if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        "it is not a whole number"
    } else {
        match digits.parse::<i32>() {
            Ok(n) => return Ok(n),
            Err(_) => "it is over the API's limit of 2147483647",
        }
    };
    Err(Error::invalid(
        id.to_string(),
        format!("{shown:?} is not a replica count ({fault}); choose one from 0 up with Exact(\"N\"), e.g. Exact(\"0\") to stop the workload"),
    ))
}

fn count_revision(n: i32) -> Revision {
    Revision::new(n.to_string()).description(format!("{n} replica(s)"))
}

impl<W: Scalable> Replicas<W> {
    /// Scale up through these counts (runbook 004: `[1]`, then the final count); counts
    /// outside a scale-up's range are skipped.
    pub fn gradual(mut self, counts: impl IntoIterator<Item = i32>) -> Self {
        self.gradual = counts.into_iter().collect();
        self.gradual.sort_unstable();
        self.gradual.dedup();
        self
    }

    /// The check to pass at each intermediate count ("Verify health"), made once.
    ///
    /// The journal records it with the target, so a resumed scale-up runs it too: a
    /// [`PodsReady`], [`HttpCheck`](rollback_core::verify::HttpCheck),
    /// [`CommandCheck`](rollback_core::verify::CommandCheck) or threshold check is rebuilt
    /// from the journal; code (a closure) cannot be, and a scale-up resumed without it
    /// stops at its next step with [`Error::VerificationFailed`] rather than go on
    /// unchecked (give the resume the target with its check to go on).
    pub fn between(mut self, check: impl Verifier + 'static) -> Self {
        self.between = Some(Between::of(check));
        self
    }

    /// How long to wait for each intermediate count (default 300 s).
    pub fn step_timeout(mut self, timeout: Duration) -> Self {
        self.step_timeout = timeout;
        self
    }

    fn count_of(&self, object: &W) -> i32 {
        object.replicas().unwrap_or(1)
    }

    /// Sets `spec.replicas` with the object's resourceVersion as the precondition; a 409
    /// from a status write is retried, a count changed by someone else is a conflict.
    async fn scale(&self, from: i32, to: i32) -> Result<()> {
        let (_, object) = self
            .workload
            .guarded_merge(
                &self.id,
                "scale",
                (&from.to_string(), &to.to_string()),
                |o: &W| self.count_of(o).to_string(),
                json!({"spec": {"replicas": to}}),
            )
            .await?;
        self.written.record(&to.to_string(), &object);
        Ok(())
    }

    fn judge(&self, object: &W, want: i32) -> Stability {
        let now = self.count_of(object);
        if now != want {
            return Stability::Failed(format!(
                "the replica count is now {now}, not {want}: someone else scaled it while we waited; their change is left as it is"
            ));
        }
        if self.written.changed(&want.to_string(), object) {
            return template_changed(object, &format!("{want} replica(s)"));
        }
        match object.rollout_status() {
            Ok(RolloutStatus::Done(_)) => Stability::Stable,
            Ok(RolloutStatus::Waiting(m)) => Stability::Waiting(m),
            Err(e) if e.kind() == StatusErrorKind::UnsupportedStrategy => Stability::Stable,
            Err(e) => Stability::Failed(e.to_string()),
        }
    }

    fn parse(&self, revision: &Revision) -> Result<i32> {
        replica_count(&self.id, &revision.id)
    }

    /// Waits for an intermediate count and runs the check between steps.
    async fn step_up(&self, step: i32) -> Result<()> {
        self.wait_count(step, self.step_timeout, &Progress::none())
            .await?;
        let Some(between) = &self.between else {
            return Ok(());
        };
        let Some(check) = &between.verifier else {
            return Err(Error::verification_failed(
                self.id.to_string(),
                between.name(),
                format!("at {step} replica(s): the check is code and cannot be rebuilt from the journal, so the scale-up stops here rather than go on unchecked; resume with this target and its check given to the resume (Registry::insert)"),
            ));
        };
        let outcome = check.check().await?;
        if !outcome.passed {
            return Err(Error::verification_failed(
                self.id.to_string(),
                check.name(),
                format!("at {step} replica(s): {}", outcome.evidence),
            ));
        }
        Ok(())
    }

    async fn wait_count(&self, n: i32, timeout: Duration, progress: &Progress) -> Result<()> {
        watch_until(
            self.workload.api(),
            (&self.workload.namespace, &self.workload.name),
            &self.id,
            &format!("{} {} to run {n} replica(s)", W::NOUN, self.workload.name),
            timeout,
            progress,
            |o: &W| self.judge(o, n),
        )
        .await
    }
}

#[async_trait]
impl<W: Scalable> RollbackTarget for Replicas<W> {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The workload read, scaled (patched) and watched; and what the check between the
    /// steps of a gradual scale-up needs.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let mut p = self.workload.object_permissions();
        if let Some(between) = &self.between {
            p.extend(between.verifier.as_ref()?.permissions()?);
        }
        Some(p)
    }

    fn spec(&self) -> TargetSpec {
        TargetSpec::new(
            W::REPLICAS_KIND,
            ReplicasParams {
                namespace: self.workload.namespace.clone(),
                name: self.workload.name.clone(),
                gradual: self.gradual.clone(),
                between: self.between.as_ref().map(|b| b.spec.clone()),
                k8s: self.workload.k8s.config.clone(),
            },
        )
    }

    async fn current(&self) -> Result<Revision> {
        Ok(count_revision(
            self.count_of(&self.workload.object().await?),
        ))
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        Ok(vec![self.current().await?])
    }

    /// `Exact("N")` picks a count; other selectors follow the shared rules over the one
    /// count in use (so `Previous` is not found).
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        if let Some(bad) = self.gradual.iter().find(|n| **n < 1) {
            return Err(Error::invalid(
                self.id.to_string(),
                format!("the gradual scale-up count {bad} is not a step up; give counts from 1 up, e.g. gradual([1])"),
            ));
        }
        crate::workload::check_selector(&self.id, selector)?;
        if let Selector::Exact(n) = selector {
            return Ok(count_revision(replica_count(&self.id, n)?));
        }
        let current = self.current().await?;
        selector
            .resolve(&self.id, std::slice::from_ref(&current), &current.id)
            .map_err(|e| match e {
                // The same error, its cause kept, with the hint that fits a replica count.
                Error::NotFound {
                    target,
                    what,
                    hint,
                    source,
                } => Error::NotFound {
                    target,
                    what,
                    hint: format!("{hint}; a replica count is chosen with Exact(\"N\"), e.g. Exact(\"0\") to stop the workload"),
                    source,
                },
                other => other,
            })
    }

    /// Scales to `change.to`, through the [`gradual`](Self::gradual) counts on the way up,
    /// waiting for each and running the [`between`](Self::between) check.
    ///
    /// A count at one of those steps is this scale-up stopped there (the process died, and
    /// the run is resumed; or a put-back is retried): it goes on from that step, waiting for
    /// it and running the check again before going further.
    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let (from, to) = (self.parse(&change.from)?, self.parse(&change.to)?);
        let now = self.count_of(&self.workload.object().await?);
        if now == to {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        let steps: Vec<i32> = self
            .gradual
            .iter()
            .copied()
            .filter(|&n| n > from && n < to)
            .collect();
        if now != from && !steps.contains(&now) {
            return Err(Error::conflict(
                self.id.to_string(),
                from.to_string(),
                now.to_string(),
            ));
        }
        let mut at = now;
        for step in steps.into_iter().filter(|&n| n >= now) {
            if step != at {
                self.scale(at, step).await?;
                at = step;
            }
            if let Err(e) = self.step_up(step).await {
                // Stopped half-way: go back to where we started, so the step is either
                // done or not done (and a compensation finds it at `from`).
                return Err(match self.scale(at, from).await {
                    Ok(()) => e,
                    Err(back) => Error::backend(
                        self.id.to_string(),
                        format!("{e}; scaling back to {from} failed too: {back}; it is left at {at} replica(s)"),
                        false,
                    )
                    .with_source(back),
                });
            }
        }
        self.scale(at, to).await?;
        Ok(ApplyOutcome::Applied)
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        let want = self.parse(revision)?;
        Ok(self.judge(&self.workload.object().await?, want))
    }

    async fn wait_stable(
        &self,
        revision: &Revision,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<()> {
        let want = self.parse(revision)?;
        self.wait_count(want, timeout, progress).await
    }
}

fn restart_kind<W: WorkloadKind>() -> String {
    format!("{}-restart", W::KIND)
}

/// A workload's restart as a target (`kubectl rollout restart`): the revision is the
/// `kubectl.kubernetes.io/restartedAt` annotation of its pod template ([`NEVER`] when
/// unset). Any selector but `Exact` asks for a restart now; `Exact(t)` sets a given value
/// (what compensation does to put the previous one back). Stable when the rollout it
/// starts is done (kubectl's rules).
pub struct Restart<W: WorkloadKind> {
    workload: Workload<W>,
    written: Written,
    id: TargetId,
}

impl<W: WorkloadKind> Clone for Restart<W> {
    fn clone(&self) -> Self {
        Restart {
            workload: self.workload.clone(),
            written: self.written.clone(),
            id: self.id.clone(),
        }
    }
}

impl<W: WorkloadKind> fmt::Debug for Restart<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Restart")
            .field("kind", &W::KIND)
            .field("namespace", &self.workload.namespace)
            .field("name", &self.workload.name)
            .finish()
    }
}

fn restarted_at<W: WorkloadKind>(object: &W) -> String {
    object
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(RESTARTED_AT_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| NEVER.to_string())
}

/// The revision of restart time `at`, whose creation time is `at` when it is one (what a
/// secret's consumer is judged by on resume: restarted since the intent or not).
fn restart_revision(at: &str) -> Revision {
    let r = Revision::new(at);
    if at == NEVER {
        return r.description("never restarted");
    }
    let r = r.description(format!("restarted at {at}"));
    match chrono::DateTime::parse_from_rfc3339(at) {
        Ok(t) => r.created_at(t.with_timezone(&Utc)),
        Err(_) => r,
    }
}

impl<W: WorkloadKind> Restart<W> {
    fn judge(&self, object: &W, want: &str) -> Stability {
        let now = restarted_at(object);
        if now != want {
            return Stability::Failed(format!(
                "the restart annotation is now {now:?}, not {want:?}: someone else changed the template while we waited; their change is left as it is"
            ));
        }
        if self.written.changed(want, object) {
            return template_changed(object, "the restart");
        }
        match object.rollout_status() {
            Ok(RolloutStatus::Done(_)) => Stability::Stable,
            Ok(RolloutStatus::Waiting(m)) => Stability::Waiting(m),
            Err(e) => Stability::Failed(e.to_string()),
        }
    }
}

#[async_trait]
impl<W: WorkloadKind> RollbackTarget for Restart<W> {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The workload read, restarted (patched) and watched.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        Some(self.workload.object_permissions())
    }

    fn spec(&self) -> TargetSpec {
        TargetSpec::new(
            restart_kind::<W>(),
            crate::workload::Params {
                namespace: self.workload.namespace.clone(),
                name: self.workload.name.clone(),
                k8s: self.workload.k8s.config.clone(),
            },
        )
    }

    async fn current(&self) -> Result<Revision> {
        Ok(restart_revision(&restarted_at(
            &self.workload.object().await?,
        )))
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        Ok(vec![self.current().await?])
    }

    /// `Exact` takes an RFC 3339 time (what `kubectl rollout restart` writes) or
    /// [`NEVER`], checked before any request.
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        if let Selector::Exact(at) = selector {
            if at != NEVER && chrono::DateTime::parse_from_rfc3339(at).is_err() {
                return Err(Error::invalid(
                    self.id.to_string(),
                    format!(
                        "{:?} is not a restart time; give an RFC 3339 time as kubectl writes it (Exact(\"2026-12-01T10:00:00Z\")), \"{NEVER}\", or Previous to restart now",
                        rollback_core::redact::truncate(at, 40)
                    ),
                ));
            }
        }
        crate::workload::check_selector(&self.id, selector)?;
        let object = self.workload.object().await?;
        if object.paused() {
            return Err(Error::invalid(
                self.id.to_string(),
                format!(
                    "can't restart paused {} (run rollout resume first)",
                    W::NOUN
                ),
            ));
        }
        Ok(match selector {
            Selector::Exact(at) => restart_revision(at),
            _ => {
                // kubectl writes whole seconds; a second restart within the same second (a
                // secret's consumer restarted again by its put-back) must still change the
                // template, so it gets milliseconds.
                let now = Utc::now();
                let mut at = now.to_rfc3339_opts(SecondsFormat::Secs, true);
                if at == restarted_at(&object) {
                    at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
                }
                restart_revision(&at)
            }
        })
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let value = if change.to.id == NEVER {
            serde_json::Value::Null
        } else {
            serde_json::Value::from(change.to.id.clone())
        };
        let (outcome, object) = self
            .workload
            .guarded_merge(
                &self.id,
                "restart",
                (&change.from.id, &change.to.id),
                restarted_at::<W>,
                json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: value}}}}}),
            )
            .await?;
        self.written.record(&change.to.id, &object);
        Ok(outcome)
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        Ok(self.judge(&self.workload.object().await?, &revision.id))
    }

    async fn wait_stable(
        &self,
        revision: &Revision,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<()> {
        watch_until(
            self.workload.api(),
            (&self.workload.namespace, &self.workload.name),
            &self.id,
            &format!("{} {} to restart", W::NOUN, self.workload.name),
            timeout,
            progress,
            |o: &W| self.judge(o, &revision.id),
        )
        .await
    }
}

pub(crate) fn register_replicas<W: Scalable>(
    r: &mut Registry,
    clients: &Clients,
    defaults: &K8sDefaults,
) {
    let (clients, defaults) = (clients.clone(), defaults.clone());
    r.register(W::REPLICAS_KIND, move |spec: TargetSpec| {
        let clients = clients.clone();
        let params = defaults.fill(W::REPLICAS_KIND, spec.params);
        async move {
            let p: ReplicasParams = TargetSpec::new(W::REPLICAS_KIND, params?).params()?;
            let k8s = clients
                .for_target(&p.k8s, W::REPLICAS_KIND, &p.namespace, &p.name)
                .await?;
            let between = match p.between.clone() {
                Some(spec) => Some(Between::rebuild::<W>(spec, &clients, &p).await?),
                None => None,
            };
            let mut target = Workload::<W>::new(&k8s, p.namespace, p.name)?
                .replicas()
                .gradual(p.gradual);
            target.between = between;
            Ok(Arc::new(target) as Arc<dyn RollbackTarget>)
        }
    });
}

pub(crate) fn register_restart<W: WorkloadKind>(
    r: &mut Registry,
    clients: &Clients,
    defaults: &K8sDefaults,
) {
    let (clients, defaults) = (clients.clone(), defaults.clone());
    r.register(restart_kind::<W>(), move |spec: TargetSpec| {
        let clients = clients.clone();
        let params = defaults.fill(&restart_kind::<W>(), spec.params);
        async move {
            let p: crate::workload::Params =
                TargetSpec::new(restart_kind::<W>(), params?).params()?;
            let k8s = clients
                .for_target(&p.k8s, &restart_kind::<W>(), &p.namespace, &p.name)
                .await?;
            Ok(
                Arc::new(Workload::<W>::new(&k8s, p.namespace, p.name)?.restart())
                    as Arc<dyn RollbackTarget>,
            )
        }
    });
}
