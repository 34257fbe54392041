//! The three workload targets, [`Deployment`], [`StatefulSet`] and [`DaemonSet`]: history,
//! undo and rollout status as kubectl has them, on a kube-rs client.
//!
//! One generic [`Workload`] target does the work; [`WorkloadKind`] says, per kind, where the
//! history lives (ReplicaSets or ControllerRevisions) and which of kubectl's rules apply.
//!
//! What a step does, against kubectl:
//!
//! | | kubectl | here |
//! | --- | --- | --- |
//! | history | `rollout history` | [`history`](rollback_core::RollbackTarget::history), newest first, with images, env names, change-cause |
//! | revision picked | `rollout undo [--to-revision=N]` | `Previous` (second-highest revision, kubectl's default), `Exact("N")`, `StepsBack(n)`, `ImageTag(tag)` |
//! | patch | JSON patch (Deployment) / strategic merge (StatefulSet, DaemonSet) | the same patch, plus the object's `resourceVersion` so a concurrent change is refused (409) |
//! | paused Deployment | refused | refused in preflight, with kubectl's advice |
//! | template already matches | `skipped rollback` | nothing sent ([`ApplyOutcome::AlreadyCurrent`]) |
//! | wait | `rollout status` (watch) | a watch, with kubectl's rules and messages; `ProgressDeadlineExceeded` fails at once |
//!
//! Revision numbers move: the controller gives a reused ReplicaSet the next number, so after
//! rolling back from `"3"` to `"2"` the Deployment is at `"4"`, which is the old revision 2
//! (`kubectl rollout history` shows 1, 3, 4). Revisions carry the ReplicaSet's (or
//! ControllerRevision's) name as their [`key`](Revision::key), and
//! [`Revision::same_as`] compares those, so plans, compensation and waiting follow the
//! template, not the number.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use rollback_core::{
    ApplyOutcome, Change, Error, Progress, Registry, Result, Revision, RollbackTarget, Selector,
    Stability, TargetId, TargetSpec,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{
    check_name, kube_error, watch_problem, Clients, K8s, K8sConfig, K8sDefaults, NameRule, Op,
};
use crate::history::{
    controlled_replica_sets, controlled_revisions, controller_revision_history,
    controller_revision_rollback_target, deployment_history, deployment_rollback_target,
    revision_of, HistoryError,
};
use crate::status::{
    daemonset_status, deployment_status, statefulset_status, RolloutStatus, StatusError,
    StatusErrorKind,
};
use crate::undo::{
    controller_revision_undo_patch, deployment_undo_patch, equal_ignore_hash, PatchType, UndoError,
    UndoPlan,
};

/// How many times apply re-reads and re-sends after a 409 caused by a status update (the
/// controller writes status while a rollout is under way); a change to the template itself
/// is a [`Error::Conflict`] at once.
pub(crate) const CONFLICT_RETRIES: usize = 5;

mod sealed {
    pub trait Sealed {}
    impl Sealed for k8s_openapi::api::apps::v1::Deployment {}
    impl Sealed for k8s_openapi::api::apps::v1::StatefulSet {}
    impl Sealed for k8s_openapi::api::apps::v1::DaemonSet {}
}

/// A namespaced API object kube-rs can read, patch and watch.
pub trait ApiObject:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Serialize
    + fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<T> ApiObject for T where
    T: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// What differs between the three workload kinds (sealed: Deployment, StatefulSet and
/// DaemonSet).
pub trait WorkloadKind: ApiObject + sealed::Sealed {
    /// Where the history lives: `ReplicaSet` or `ControllerRevision`.
    type History: ApiObject;
    /// The target kind: `k8s-deployment`, `k8s-statefulset`, `k8s-daemonset`.
    const KIND: &'static str;
    /// kubectl's resource noun: `deployment`, `statefulset`, `daemonset`.
    const NOUN: &'static str;
    /// The API server's rule for the kind's names (a StatefulSet's name is a DNS label,
    /// as its pods' host names are; the others are DNS subdomains).
    const NAME_RULE: NameRule;
    /// The object's label selector (`spec.selector`).
    fn selector(&self) -> Option<&LabelSelector>;
    /// The object's pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// Whether the object's controller has stopped rolling out (a paused Deployment).
    fn paused(&self) -> bool {
        false
    }
    /// `spec.replicas`, for kinds that have it.
    fn replicas(&self) -> Option<i32> {
        None
    }
    /// The history objects this object controls, as revisions, newest first.
    fn revisions(&self, items: &[Self::History]) -> Vec<Revision>;
    /// The history objects this object controls.
    fn controlled<'a>(&self, items: &'a [Self::History]) -> Vec<&'a Self::History>;
    /// The revision number of a history object.
    fn number(item: &Self::History) -> i64;
    /// The history object `kubectl rollout undo [--to-revision=N]` picks.
    fn undo_target<'a>(
        &self,
        items: &'a [Self::History],
        to_revision: i64,
    ) -> std::result::Result<&'a Self::History, HistoryError>;
    /// Whether the object's template is the one the history object records.
    fn matches(&self, item: &Self::History) -> bool;
    /// kubectl's undo of the object to the history object.
    fn undo(&self, item: &Self::History) -> std::result::Result<UndoPlan, UndoError>;
    /// kubectl's rollout status.
    fn rollout_status(&self) -> std::result::Result<RolloutStatus, StatusError>;
}

impl WorkloadKind for apps::Deployment {
    type History = apps::ReplicaSet;
    const KIND: &'static str = "k8s-deployment";
    const NOUN: &'static str = "deployment";
    const NAME_RULE: NameRule = NameRule::Subdomain;

    fn selector(&self) -> Option<&LabelSelector> {
        self.spec.as_ref().map(|s| &s.selector)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().map(|s| &s.template)
    }
    fn paused(&self) -> bool {
        self.spec.as_ref().and_then(|s| s.paused) == Some(true)
    }
    fn replicas(&self) -> Option<i32> {
        Some(self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))
    }
    fn revisions(&self, items: &[apps::ReplicaSet]) -> Vec<Revision> {
        deployment_history(self, items)
    }
    fn controlled<'a>(&self, items: &'a [apps::ReplicaSet]) -> Vec<&'a apps::ReplicaSet> {
        controlled_replica_sets(self, items)
    }
    fn number(item: &apps::ReplicaSet) -> i64 {
        revision_of(&item.metadata).unwrap_or(0)
    }
    fn undo_target<'a>(
        &self,
        items: &'a [apps::ReplicaSet],
        to_revision: i64,
    ) -> std::result::Result<&'a apps::ReplicaSet, HistoryError> {
        deployment_rollback_target(self, items, to_revision)
    }
    fn matches(&self, item: &apps::ReplicaSet) -> bool {
        match (
            item.spec.as_ref().and_then(|s| s.template.as_ref()),
            self.template(),
        ) {
            (Some(a), Some(b)) => equal_ignore_hash(a, b),
            _ => false,
        }
    }
    fn undo(&self, item: &apps::ReplicaSet) -> std::result::Result<UndoPlan, UndoError> {
        deployment_undo_patch(self, item)
    }
    fn rollout_status(&self) -> std::result::Result<RolloutStatus, StatusError> {
        deployment_status(self, None)
    }
}

fn revision_matches(template: Option<&PodTemplateSpec>, item: &apps::ControllerRevision) -> bool {
    let template = template.cloned().unwrap_or_default();
    matches!(
        controller_revision_undo_patch(&template, item),
        Ok(UndoPlan::AlreadyMatches { .. })
    )
}

fn revision_undo(
    template: Option<&PodTemplateSpec>,
    item: &apps::ControllerRevision,
) -> std::result::Result<UndoPlan, UndoError> {
    controller_revision_undo_patch(&template.cloned().unwrap_or_default(), item)
}

/// StatefulSets and DaemonSets differ only in names, replicas and status rules: their
/// history is ControllerRevisions, read and undone alike.
macro_rules! controller_revision_kind {
    ($ty:ty, $kind:literal, $noun:literal, $rule:expr, $status:path, |$obj:ident| $replicas:expr) => {
        impl WorkloadKind for $ty {
            type History = apps::ControllerRevision;
            const KIND: &'static str = $kind;
            const NOUN: &'static str = $noun;
            const NAME_RULE: NameRule = $rule;

            fn selector(&self) -> Option<&LabelSelector> {
                self.spec.as_ref().map(|s| &s.selector)
            }
            fn template(&self) -> Option<&PodTemplateSpec> {
                self.spec.as_ref().map(|s| &s.template)
            }
            fn replicas(&self) -> Option<i32> {
                let $obj = self;
                $replicas
            }
            fn revisions(&self, items: &[apps::ControllerRevision]) -> Vec<Revision> {
                controller_revision_history(&self.metadata, items)
            }
            fn controlled<'a>(
                &self,
                items: &'a [apps::ControllerRevision],
            ) -> Vec<&'a apps::ControllerRevision> {
                controlled_revisions(&self.metadata, items)
            }
            fn number(item: &apps::ControllerRevision) -> i64 {
                item.revision
            }
            fn undo_target<'a>(
                &self,
                items: &'a [apps::ControllerRevision],
                to_revision: i64,
            ) -> std::result::Result<&'a apps::ControllerRevision, HistoryError> {
                controller_revision_rollback_target(&self.metadata, items, to_revision)
            }
            fn matches(&self, item: &apps::ControllerRevision) -> bool {
                revision_matches(self.template(), item)
            }
            fn undo(
                &self,
                item: &apps::ControllerRevision,
            ) -> std::result::Result<UndoPlan, UndoError> {
                revision_undo(self.template(), item)
            }
            fn rollout_status(&self) -> std::result::Result<RolloutStatus, StatusError> {
                $status(self)
            }
        }
    };
}

controller_revision_kind!(
    apps::StatefulSet,
    "k8s-statefulset",
    "statefulset",
    NameRule::Label,
    statefulset_status,
    |sts| Some(sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))
);
controller_revision_kind!(
    apps::DaemonSet,
    "k8s-daemonset",
    "daemonset",
    NameRule::Subdomain,
    daemonset_status,
    |_ds| None
);

/// A label selector as the `labelSelector` query parameter: `matchLabels` as `k=v`,
/// `matchExpressions` as `k in (a,b)`, `k notin (a)`, `k`, `!k`.
pub fn selector_query(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({values})", e.key),
        });
    }
    parts.join(",")
}

/// The target's parameters as data (what a journal records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Params {
    pub(crate) namespace: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) k8s: K8sConfig,
}

/// The revision id of a template no history object records yet (a paused Deployment
/// whose template was edited, or a controller that has not caught up).
pub const UNRECORDED: &str = "unrecorded";

/// What one read of the object and its history found.
pub(crate) struct Seen<W: WorkloadKind> {
    pub(crate) object: W,
    pub(crate) items: Vec<W::History>,
}

impl<W: WorkloadKind> Seen<W> {
    /// The history object the template in use matches (the highest-numbered one if several).
    fn current_item(&self) -> Option<&W::History> {
        self.object
            .controlled(&self.items)
            .into_iter()
            .filter(|item| self.object.matches(item))
            .max_by_key(|item| W::number(item))
    }

    fn current(&self) -> Revision {
        let history = self.object.revisions(&self.items);
        if let Some(item) = self.current_item() {
            let name = item.meta().name.clone();
            if let Some(r) = history.into_iter().find(|r| r.key == name) {
                return r;
            }
        }
        let mut r = Revision::new(UNRECORDED).description(format!(
            "the {}'s template is not recorded in its history yet (paused, or the controller has not caught up)",
            W::NOUN
        ));
        r.images = images_of(&self.object);
        r
    }

    /// The history object a revision names: by key (its name), else by number.
    fn item_for(&self, revision: &Revision) -> Option<&W::History> {
        let controlled = self.object.controlled(&self.items);
        match &revision.key {
            Some(key) => controlled
                .into_iter()
                .find(|i| i.meta().name.as_deref() == Some(key.as_str())),
            None => {
                let n: i64 = revision.id.parse().ok()?;
                controlled.into_iter().find(|i| W::number(i) == n)
            }
        }
    }
}

/// The images of an object's pod template, in container order.
pub(crate) fn images_of<W: WorkloadKind>(object: &W) -> Vec<String> {
    object
        .template()
        .and_then(|t| t.spec.as_ref())
        .map(|p| {
            p.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A Kubernetes workload rolled back as `kubectl rollout undo` does it; use the aliases
/// [`Deployment`], [`StatefulSet`] and [`DaemonSet`].
///
/// Its [`TargetId`] is `<kind>/<namespace>/<name>`, e.g. `k8s-deployment/production/frontend`.
pub struct Workload<W: WorkloadKind> {
    pub(crate) k8s: K8s,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) id: TargetId,
    _kind: PhantomData<fn() -> W>,
}

impl<W: WorkloadKind> Clone for Workload<W> {
    fn clone(&self) -> Self {
        Workload {
            k8s: self.k8s.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            id: self.id.clone(),
            _kind: PhantomData,
        }
    }
}

impl<W: WorkloadKind> fmt::Debug for Workload<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workload")
            .field("kind", &W::KIND)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish()
    }
}

/// A Deployment, its history the ReplicaSets it controls.
pub type Deployment = Workload<apps::Deployment>;
/// A StatefulSet, its history the ControllerRevisions it controls.
pub type StatefulSet = Workload<apps::StatefulSet>;
/// A DaemonSet, its history the ControllerRevisions it controls.
pub type DaemonSet = Workload<apps::DaemonSet>;

impl<W: WorkloadKind> Workload<W> {
    /// The workload `name` in `namespace`. Refuses names the API server would refuse,
    /// before any request.
    pub fn new(k8s: &K8s, namespace: impl Into<String>, name: impl Into<String>) -> Result<Self> {
        let (namespace, name) = (namespace.into(), name.into());
        let id = TargetId::new(W::KIND, format!("{namespace}/{name}"));
        check_name(&id, "namespace", &namespace, NameRule::Label)?;
        check_name(&id, "name", &name, W::NAME_RULE)?;
        Ok(Workload {
            k8s: k8s.clone(),
            namespace,
            name,
            id,
            _kind: PhantomData,
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn api(&self) -> Api<W> {
        Api::namespaced(self.k8s.client.clone(), &self.namespace)
    }

    fn history_api(&self) -> Api<W::History> {
        Api::namespaced(self.k8s.client.clone(), &self.namespace)
    }

    /// `verb` on this object, as error messages name it.
    pub(crate) fn op(&self, verb: &'static str) -> Op {
        Op::of::<W>(verb, &self.namespace, Some(&self.name))
    }

    pub(crate) fn err(&self, verb: &'static str, e: kube::Error) -> Error {
        kube_error(&self.id, &self.op(verb), e)
    }

    /// The object read and patched (by name) and watched (a watch lists, which RBAC does
    /// not narrow by name): what every target on a workload needs.
    pub(crate) fn object_permissions(&self) -> Vec<rollback_core::Permission> {
        let (group, plural) = (W::group(&()), W::plural(&()));
        let ns = &self.namespace;
        let mut p = rollback_core::Permission::kubernetes(
            &group,
            &plural,
            &["get", "patch"],
            ns,
            Some(&self.name),
        );
        p.extend(rollback_core::Permission::kubernetes(
            &group,
            &plural,
            &["list", "watch"],
            ns,
            None,
        ));
        p
    }

    /// Reads the object.
    pub(crate) async fn object(&self) -> Result<W> {
        self.api()
            .get(&self.name)
            .await
            .map_err(|e| self.err("get", e))
    }

    /// Reads the object and the history objects listed by its selector.
    pub(crate) async fn seen(&self) -> Result<Seen<W>> {
        let object = self.object().await?;
        let selector = object.selector().map(selector_query).unwrap_or_default();
        if selector.is_empty() {
            return Err(Error::invalid(
                self.id.to_string(),
                format!(
                    "the {} has no label selector, so it has no history to read",
                    W::NOUN
                ),
            ));
        }
        let items = self
            .history_api()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                kube_error(
                    &self.id,
                    &Op::of::<W::History>("list", &self.namespace, None),
                    e,
                )
            })?
            .items;
        Ok(Seen { object, items })
    }

    fn history_error(&self, e: HistoryError) -> Error {
        match e {
            HistoryError::RevisionNotFound(n) => Error::not_found(
                self.id.to_string(),
                format!("revision {n}"),
                format!(
                    "{e}; list the revisions with history() (kubectl rollout history {}/{} -n {})",
                    W::NOUN,
                    self.name,
                    self.namespace
                ),
            ),
            HistoryError::NoDeploymentHistory { .. } | HistoryError::NoLastRevision => {
                Error::not_found(
                    self.id.to_string(),
                    "a previous revision",
                    format!(
                        "{e}; the {} has a single revision, so there is nothing to roll back to",
                        W::NOUN
                    ),
                )
            }
        }
    }

    fn undo_error(&self, e: UndoError) -> Error {
        match e {
            UndoError::Paused => Error::invalid(self.id.to_string(), e.to_string()),
            UndoError::History(h) => self.history_error(h),
            UndoError::InvalidRevision(m) => Error::invalid(self.id.to_string(), m),
        }
    }

    /// kubectl's rollout status of the object now, as [`RolloutStatus`] (or the error kubectl
    /// reports).
    pub async fn rollout_status(&self) -> Result<std::result::Result<RolloutStatus, StatusError>> {
        Ok(self.object().await?.rollout_status())
    }

    /// Where the object is on its way to `item`'s template.
    fn stability(&self, object: &W, item: &W::History, revision: &Revision) -> Stability {
        if !object.matches(item) {
            let images = images_of(object);
            return Stability::Failed(format!(
                "the {}'s template is no longer revision {}: someone else changed it while we waited (it now runs {}); their change is left as it is",
                W::NOUN,
                revision.id,
                images.join(", ")
            ));
        }
        match object.rollout_status() {
            Ok(RolloutStatus::Done(_)) => Stability::Stable,
            Ok(RolloutStatus::Waiting(m)) => Stability::Waiting(m),
            Err(e) => match e.kind() {
                StatusErrorKind::UnsupportedStrategy => Stability::Failed(format!(
                    "{e}: pods are replaced only when deleted; delete them, or use the RollingUpdate strategy"
                )),
                _ => Stability::Failed(e.to_string()),
            },
        }
    }

    async fn item(&self, revision: &Revision) -> Result<W::History> {
        let seen = self.seen().await?;
        seen.item_for(revision).cloned().ok_or_else(|| {
            Error::not_found(
                self.id.to_string(),
                format!("revision {} ({})", revision.id, revision.key.as_deref().unwrap_or("no key")),
                "it is no longer in the history (the controller keeps revisionHistoryLimit old revisions); choose another one",
            )
        })
    }

    /// Sends `patch` with `rv` as the optimistic-concurrency precondition.
    async fn send(
        &self,
        kind: PatchType,
        mut body: Value,
        rv: &str,
    ) -> std::result::Result<(), kube::Error> {
        let params = PatchParams::default();
        match kind {
            PatchType::Json => {
                if let Some(ops) = body.as_array_mut() {
                    ops.push(serde_json::json!({
                        "op": "replace", "path": "/metadata/resourceVersion", "value": rv
                    }));
                }
                let patch: json_patch::Patch =
                    serde_json::from_value(body).map_err(kube::Error::SerdeError)?;
                self.api()
                    .patch(&self.name, &params, &Patch::Json::<()>(patch))
                    .await?;
            }
            PatchType::StrategicMerge => {
                if let Some(map) = body.as_object_mut() {
                    map.insert(
                        "metadata".into(),
                        serde_json::json!({ "resourceVersion": rv }),
                    );
                }
                self.api()
                    .patch(&self.name, &params, &Patch::Strategic(body))
                    .await?;
            }
        }
        Ok(())
    }
}

impl<W: WorkloadKind> Workload<W> {
    /// Moves one value of the object (what `read` shows) from `from` to `to` with the merge
    /// patch `body`, sent with the resourceVersion just read. A value already at `to` sends
    /// nothing; one neither `from` nor `to` is a conflict for `target`; a 409 (often a
    /// status write) reads again and decides afresh. Returns the object as the write left
    /// it (or as read, when nothing was sent).
    pub(crate) async fn guarded_merge(
        &self,
        target: &TargetId,
        doing: &str,
        (from, to): (&str, &str),
        read: impl Fn(&W) -> String + Send,
        mut body: Value,
    ) -> Result<(ApplyOutcome, W)> {
        let mut refused = None;
        for _ in 0..CONFLICT_RETRIES {
            let object = self.object().await?;
            let now = read(&object);
            if now == to {
                return Ok((ApplyOutcome::AlreadyCurrent, object));
            }
            if now != from {
                return Err(Error::conflict(target.to_string(), from, now));
            }
            let rv = object.meta().resource_version.clone().unwrap_or_default();
            body["metadata"] = serde_json::json!({ "resourceVersion": rv });
            match self
                .api()
                .patch(&self.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(written) => return Ok((ApplyOutcome::Applied, written)),
                Err(e) if is_conflict(&e) => refused = Some(e),
                Err(e) => return Err(self.err("patch", e)),
            }
        }
        Err(rewritten(target, from, doing, refused))
    }
}

/// Refuses the selectors no history can satisfy (`StepsBack(0)`, an empty image tag),
/// before any request.
pub(crate) fn check_selector(id: &TargetId, selector: &Selector) -> Result<()> {
    match selector {
        Selector::StepsBack(0) => Err(Error::invalid(
            id.to_string(),
            "StepsBack(0) is the revision in use; ask for 1 or more steps back (StepsBack(1) is Previous)",
        )),
        Selector::ImageTag(tag) if tag.trim().is_empty() => Err(Error::invalid(
            id.to_string(),
            "the image tag is empty; give the tag (or digest) of the images to go back to, e.g. ImageTag(\"2.3.1\")",
        )),
        _ => Ok(()),
    }
}

/// An `Exact` revision as `kubectl rollout undo --to-revision` takes it: a whole number
/// from 1 (0 would mean "the previous one" to kubectl, so it is refused rather than
/// silently read that way).
fn revision_number(id: &TargetId, n: &str) -> Result<i64> {
    let shown = rollback_core::redact::truncate(n, 40);
    let digits = n.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(
            id.to_string(),
            format!("{shown:?} is not a revision number; Kubernetes revisions are whole numbers from 1, as `kubectl rollout history` lists them (Exact(\"3\"))"),
        ));
    }
    match digits.parse::<i64>() {
        Ok(0) => Err(Error::invalid(
            id.to_string(),
            "revision 0 does not exist (revisions count from 1); use Previous for the revision before the one in use",
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(Error::invalid(
            id.to_string(),
            format!("revision {shown} is too large (revisions are at most {}); list the revisions with history()", i64::MAX),
        )),
    }
}

/// The conflict of a write refused with 409 [`CONFLICT_RETRIES`] times: the object was
/// rewritten each time we read it. The last 409 is the source.
fn rewritten(target: &TargetId, from: &str, doing: &str, last: Option<kube::Error>) -> Error {
    let e = Error::conflict(
        target.to_string(),
        from,
        format!("an object rewritten {CONFLICT_RETRIES} times while we tried to {doing} it"),
    );
    match last {
        Some(last) => e.with_source(last),
        None => e,
    }
}

/// Whether a kube error is the API server's 409 Conflict.
pub(crate) fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Waits on a watch of one object until `judge` says stable or failed, or `timeout` passes.
pub(crate) async fn watch_until<K, F>(
    api: Api<K>,
    (namespace, name): (&str, &str),
    id: &TargetId,
    what: &str,
    timeout: Duration,
    progress: &Progress,
    mut judge: F,
) -> Result<()>
where
    K: ApiObject,
    F: FnMut(&K) -> Stability + Send,
{
    let started = std::time::Instant::now();
    let mut last = String::from("no update from the watch yet");
    let stream = watcher::watch_object(api, name).default_backoff();
    futures::pin_mut!(stream);
    let result = tokio::time::timeout(timeout, async {
        while let Some(event) = stream.next().await {
            match event {
                Ok(Some(object)) => match judge(&object) {
                    Stability::Stable => return Ok(()),
                    Stability::Waiting(m) => {
                        if m != last {
                            progress.report(&m);
                            last = m;
                        }
                    }
                    Stability::Failed(m) => return Err(Error::rollout_failed(id.to_string(), m)),
                },
                Ok(None) => {
                    return Err(Error::rollout_failed(
                        id.to_string(),
                        format!("{name} was deleted while we waited"),
                    ))
                }
                // Refused credentials never come right by watching again.
                Err(
                    watcher::Error::InitialListFailed(e)
                    | watcher::Error::WatchStartFailed(e)
                    | watcher::Error::WatchFailed(e),
                ) if matches!(&e, kube::Error::Api(s) if s.code == 401 || s.code == 403) => {
                    return Err(kube_error(
                        id,
                        &Op::of::<K>("watch", namespace, Some(name)),
                        e,
                    ));
                }
                Err(e) => {
                    let m = watch_problem(&e);
                    progress.report(&m);
                    last = m;
                }
            }
        }
        Err(Error::backend(id.to_string(), "the watch ended", true))
    })
    .await;
    match result {
        Ok(r) => r,
        Err(_) => Err(Error::timeout(
            id.to_string(),
            what,
            started.elapsed(),
            last,
        )),
    }
}

#[async_trait]
impl<W: WorkloadKind> RollbackTarget for Workload<W> {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The object read and patched (by name), watched while it rolls out (a watch lists,
    /// which RBAC does not narrow by name), and its history listed.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let mut p = self.object_permissions();
        let ns = &self.namespace;
        let (hg, hp) = (W::History::group(&()), W::History::plural(&()));
        p.extend(rollback_core::Permission::kubernetes(
            &hg,
            &hp,
            &["list"],
            ns,
            None,
        ));
        Some(p)
    }

    fn spec(&self) -> TargetSpec {
        TargetSpec::new(
            W::KIND,
            Params {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                k8s: self.k8s.config.clone(),
            },
        )
    }

    /// The revision whose template the object uses now (the highest-numbered history object
    /// whose template equals it, ignoring `pod-template-hash`), or [`UNRECORDED`].
    async fn current(&self) -> Result<Revision> {
        Ok(self.seen().await?.current())
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let seen = self.seen().await?;
        Ok(seen.object.revisions(&seen.items))
    }

    /// `Previous` and `Exact("N")` follow `kubectl rollout undo` (the second-highest
    /// revision; revision N) with kubectl's errors; `StepsBack` and `ImageTag` use the
    /// shared rules over [`history`](RollbackTarget::history).
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        // Bad input is refused before any request.
        check_selector(&self.id, selector)?;
        let to_revision = match selector {
            Selector::Previous => 0,
            Selector::Exact(n) => revision_number(&self.id, n)?,
            _ => -1,
        };
        let seen = self.seen().await?;
        let history = seen.object.revisions(&seen.items);
        if to_revision < 0 {
            return selector.resolve(&self.id, &history, &seen.current().id);
        }
        let item = seen
            .object
            .undo_target(&seen.items, to_revision)
            .map_err(|e| self.history_error(e))?;
        let name = item.meta().name.clone();
        history
            .into_iter()
            .find(|r| r.key == name)
            .ok_or_else(|| self.history_error(HistoryError::RevisionNotFound(to_revision)))
    }

    /// The change to `to`; refuses a paused Deployment with kubectl's advice.
    async fn plan(&self, to: &Revision) -> Result<Change> {
        let seen = self.seen().await?;
        let item = seen.item_for(to).ok_or_else(|| {
            Error::not_found(
                self.id.to_string(),
                format!("revision {}", to.id),
                "it is not in the history; list the revisions with history()",
            )
        })?;
        seen.object.undo(item).map_err(|e| self.undo_error(e))?;
        let mut to = to.clone();
        if let Some(r) = seen
            .object
            .revisions(&seen.items)
            .into_iter()
            .find(|r| r.same_as(&to))
        {
            to = r;
        }
        Ok(Change::new(self.id.clone(), seen.current(), to))
    }

    /// `kubectl rollout undo`'s patch, sent with the object's resourceVersion. Refused with
    /// [`Error::Conflict`] when the template in use is neither `change.from` nor
    /// `change.to`; [`ApplyOutcome::AlreadyCurrent`] when it already is `change.to`
    /// (kubectl's "skipped rollback").
    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let mut refused = None;
        for _ in 0..CONFLICT_RETRIES {
            let seen = self.seen().await?;
            let current = seen.current();
            if current.same_as(&change.to) {
                return Ok(ApplyOutcome::AlreadyCurrent);
            }
            if !current.same_as(&change.from) {
                return Err(Error::conflict(
                    self.id.to_string(),
                    &change.from.id,
                    current.id,
                ));
            }
            let item = seen.item_for(&change.to).ok_or_else(|| {
                Error::not_found(
                    self.id.to_string(),
                    format!("revision {}", change.to.id),
                    "it is no longer in the history (the controller keeps revisionHistoryLimit old revisions); choose another one",
                )
            })?;
            let patch = match seen.object.undo(item).map_err(|e| self.undo_error(e))? {
                UndoPlan::AlreadyMatches { .. } => return Ok(ApplyOutcome::AlreadyCurrent),
                UndoPlan::Patch(p) => p,
            };
            let rv = seen
                .object
                .meta()
                .resource_version
                .clone()
                .unwrap_or_default();
            match self.send(patch.patch_type, patch.body, &rv).await {
                Ok(()) => return Ok(ApplyOutcome::Applied),
                // Someone wrote the object since we read it (often only its status): read
                // again and decide afresh.
                Err(e) if is_conflict(&e) => refused = Some(e),
                Err(e) => return Err(self.err("patch", e)),
            }
        }
        Err(rewritten(&self.id, &change.from.id, "patch", refused))
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        let seen = self.seen().await?;
        let Some(item) = seen.item_for(revision) else {
            return Ok(Stability::Waiting(format!(
                "waiting for the controller to record revision {}",
                revision.id
            )));
        };
        Ok(self.stability(&seen.object, item, revision))
    }

    /// Watches the object (as `kubectl rollout status` does) until kubectl's rules say the
    /// rollout is done, failing at once on `ProgressDeadlineExceeded` or when the template
    /// moves away from `revision`.
    async fn wait_stable(
        &self,
        revision: &Revision,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<()> {
        let item = self.item(revision).await?;
        let what = format!(
            "{} {} to roll out revision {}",
            W::NOUN,
            self.name,
            revision.id
        );
        watch_until(
            self.api(),
            (&self.namespace, &self.name),
            &self.id,
            &what,
            timeout,
            progress,
            |object: &W| self.stability(object, &item, revision),
        )
        .await
    }
}

pub(crate) fn register_kind<W: WorkloadKind>(
    r: &mut Registry,
    clients: &Clients,
    defaults: &K8sDefaults,
) {
    let (clients, defaults) = (clients.clone(), defaults.clone());
    r.register(W::KIND, move |spec: TargetSpec| {
        let clients = clients.clone();
        let params = defaults.fill(W::KIND, spec.params);
        async move {
            let p: Params = TargetSpec::new(W::KIND, params?).params()?;
            let k8s = clients
                .for_target(&p.k8s, W::KIND, &p.namespace, &p.name)
                .await?;
            Ok(Arc::new(Workload::<W>::new(&k8s, p.namespace, p.name)?) as Arc<dyn RollbackTarget>)
        }
    });
}
