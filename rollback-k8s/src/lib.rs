//! Kubernetes rollbacks as kubectl does them, for Deployments, StatefulSets and DaemonSets.
//!
//! # The rules
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
//! # Targets on a cluster
//!
//! On a kube-rs client ([`K8s`]: `KUBECONFIG` or in-cluster, a URL, or your own client):
//!
//! - [`Deployment`], [`StatefulSet`], [`DaemonSet`]: history, `kubectl rollout undo`'s
//!   patch sent with the object's `resourceVersion` (a concurrent change is a conflict, not
//!   overwritten), a paused Deployment refused, an already-matching template skipped, and
//!   waiting by watch with kubectl's status rules.
//! - Runbook 004's recovery steps: [`Replicas`] (scale to zero and back, gradual scale-up
//!   with a check between) and [`Restart`] (`kubectl rollout restart`).
//! - [`PodsReady`]: the pods matching a selector are Ready.
//!
//! ```no_run
//! use rollback_core::{Selector, Step, Transaction};
//! use rollback_k8s::{Deployment, K8s, PodsReady};
//! use std::sync::Arc;
//!
//! # async fn demo() -> rollback_core::Result<()> {
//! let k8s = K8s::from_env().await?;
//! let frontend = Deployment::new(&k8s, "production", "frontend")?;
//! let report = Transaction::builder("frontend-undo")
//!     .reason("error rate 12% after 2.4.0")
//!     .step(Step::new(Arc::new(frontend.clone()), Selector::Previous).verify(PodsReady::of(&frontend)))
//!     .build()?
//!     .run()
//!     .await?;
//! println!("{}", report.outcome);
//! # Ok(()) }
//! ```
//!
//! # Bad input and errors
//!
//! Bad input is refused as [`rollback_core::Error::InvalidInput`] naming the target before
//! any request: names and namespaces by the API server's DNS-1123 rules (a StatefulSet's
//! name and every namespace a label, other names subdomains), `Exact` revisions that are not
//! whole numbers from 1 (kubectl would read `--to-revision=0` as "the previous one"),
//! `StepsBack(0)`, replica counts outside 0..=2147483647, restart times that are not RFC
//! 3339, [`PodsReady`] label selectors kubectl would not parse, and kubeconfig contexts the
//! kubeconfig does not have.
//!
//! API errors read as one or two sentences: the operation (`patch deployment
//! production/frontend`), the HTTP status, the API's reason and message (or a short,
//! secret-checked excerpt of a body that was not a Kubernetes `Status`, such as a proxy's
//! HTML page), and what to do (RBAC and `kubectl auth can-i` for 403, retry for 5xx and 429,
//! the name, namespace and context for 404). The kube-rs error itself is only the
//! `source()` of [`rollback_core::Error::Backend`]; the other kinds have no source.
//!
//! A step's wait fails at once when someone else changes what it waits for: the template
//! of a workload being rolled back, the replica count of a [`Replicas`] step, the restart
//! annotation of a [`Restart`], and the pod template our own write left for either of the
//! two (a new rollout, `kubectl set image`). Their change is left as it is.
//!
//! # Tested against
//!
//! - kube-rs's `tower_test` mock service (`tests/wire.rs`): the exact requests, and API
//!   answers a simulator rarely gives (409 at the worst moment, 429, 5xx, 403);
//! - the project's Kubernetes API simulator (`rollback_testkit::k8s`, also the binary
//!   `rollback-k8s-sim`): the real REST API with patches, watch and the three controllers
//!   (`tests/scenarios.rs`: the conformance suite per kind, undo, undo to a revision, undo
//!   twice, paused, already matching, bad input, conflicts, progress deadline and
//!   compensation, the recovery steps, resume);
//! - a real cluster: the same scenarios with
//!   `KUBECONFIG=... cargo test -p rollback-k8s --test scenarios -- --ignored`.

pub mod client;
pub mod history;
pub mod pods;
pub mod recovery;
pub mod status;
pub mod undo;
pub mod workload;

pub use client::{K8s, K8sConfig};
pub use pods::PodsReady;
pub use recovery::{Replicas, Restart, Scalable, RESTARTED_AT_ANNOTATION};
pub use workload::{DaemonSet, Deployment, StatefulSet, Workload, WorkloadKind, UNRECORDED};

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

/// Registers this crate's target kinds (`k8s-deployment`, `k8s-statefulset`,
/// `k8s-daemonset`, their `-replicas` and `-restart` kinds) so that a journal naming them
/// can be resumed.
pub fn register(r: &mut rollback_core::Registry) {
    use k8s_openapi::api::apps::v1 as apps;
    workload::register_kind::<apps::Deployment>(r);
    workload::register_kind::<apps::StatefulSet>(r);
    workload::register_kind::<apps::DaemonSet>(r);
    recovery::register_replicas::<apps::Deployment>(r);
    recovery::register_replicas::<apps::StatefulSet>(r);
    recovery::register_restart::<apps::Deployment>(r);
    recovery::register_restart::<apps::StatefulSet>(r);
    recovery::register_restart::<apps::DaemonSet>(r);
}

/// A registry with the core's and this crate's kinds.
pub fn registry() -> rollback_core::Registry {
    let mut r = rollback_core::Registry::with_builtins();
    register(&mut r);
    r
}
