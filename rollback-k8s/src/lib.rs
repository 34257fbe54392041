//! Kubernetes rollbacks as kubectl does them, for Deployments, StatefulSets and DaemonSets.
//!
//! # What exists now
//!
//! The rules, as pure functions over the [`k8s_openapi`] `apps/v1` types, restated from
//! kubectl's `pkg/polymorphichelpers` (our own code, checked against kubectl's own test
//! cases):
//!
//! - [`status`]: `kubectl rollout status` — whether a rollout is done, still waiting (with
//!   kubectl's exact message) or failed (progress deadline exceeded, or a StatefulSet /
//!   DaemonSet strategy other than `RollingUpdate`); [`status::status_of`] takes any of the
//!   three kinds as JSON.
//! - [`history`]: `kubectl rollout history` — a Deployment's revisions from the ReplicaSets
//!   it controls, a StatefulSet's or DaemonSet's from its ControllerRevisions, as
//!   [`rollback_core::Revision`]s newest first; and the revision `kubectl rollout undo`
//!   picks (the previous one by default, or `--to-revision=N`) with kubectl's errors.
//! - [`undo`]: `kubectl rollout undo` — the exact patch kubectl sends (a JSON patch of the
//!   Deployment's template and annotations, or the ControllerRevision's strategic merge
//!   patch), or why it sends none (paused Deployment refused; template already matching).
//!
//! Nothing here talks to a cluster, and nothing here implements
//! [`rollback_core::RollbackTarget`] yet.
//!
//! # What comes next
//!
//! - Targets on a kube-rs client (`k8s-deployment`, `k8s-statefulset`, `k8s-daemonset`)
//!   that list the ReplicaSets / ControllerRevisions, send these patches with the
//!   object's resourceVersion as the precondition, and report [`status`] as stability.
//! - Waiting by watching the object instead of polling.
//! - An in-repo API simulator (apps/v1 REST, patches, watch, a deployment controller) so
//!   that the targets are tested end to end without a cluster.

pub mod history;
pub mod status;
pub mod undo;

pub use history::{
    controller_revision_history, controller_revision_rollback_target, deployment_history,
    deployment_rollback_target, HistoryError,
};
pub use status::{
    daemonset_status, deployment_status, statefulset_status, status_of, RolloutError,
    RolloutErrorKind, RolloutStatus,
};
pub use undo::{
    daemonset_undo, deployment_undo, deployment_undo_patch, statefulset_undo, PatchType, UndoError,
    UndoPatch, UndoPlan,
};
