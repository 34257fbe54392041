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
//! - [`Manifest`] (kind `k8s-manifest`): runbook 004's maintenance mode, a set of
//!   ConfigMaps, Services and Deployments applied as one (temporary) step and put back as
//!   they were: replaced objects get their previous content again (recorded in the
//!   journal), created ones are deleted.
//!
//! # Gradual scale-up and resume
//!
//! [`Replicas::gradual`] with [`Replicas::between`] scales up through counts, waiting for
//! each and running the check at each, inside the target's `apply`. It stays there, rather
//! than becoming the engine's stages and step checks, because the engine moves each target
//! once per transaction (a target in two steps is refused) and puts a temporary step back,
//! or compensates one, with a single `apply`: runbook 004's "scale to zero for the length
//! of the transaction, then back up gradually, verifying health" is a put-back, which
//! stages cannot express. So the check is journaled as data instead: the target's spec
//! records it (a [`PodsReady`] by its parameters, any other check by its
//! [`VerifierSpec`](rollback_core::verify::VerifierSpec)), and the registry rebuilds it with
//! the target. A resumed scale-up finds the count at the step it had reached and goes on
//! from there, waiting for that step and running the check again before going further. A
//! check that is code (a closure) cannot be rebuilt: the rebuilt scale-up stops at its
//! next step with `VerificationFailed` (and is put back) rather than go on unchecked.
//!
//! # Resuming: where rebuilt targets get their client
//!
//! [`register`] (and [`registry`]) rebuild each target on the configuration its spec
//! recorded ([`K8sConfig`]), loading each configuration once for the registry: N targets
//! on one cluster are one kubeconfig read and one client, shared by their checks.
//! [`register_with`] rebuilds every target on a client you give ([`K8s`]), loading nothing.
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
//! # Locks on the cluster: [`LeaseLocks`]
//!
//! A transaction locks each target it changes ([`rollback_core::LockManager`]); the default,
//! file leases, protects only the runs of one machine. [`LeaseLocks`] keeps each target's
//! lease as a `coordination.k8s.io/v1` Lease in one namespace of a cluster, so it protects
//! every run that uses that namespace from any machine that can reach the cluster: two
//! people on two laptops, CI runners, a deploy bot on three replicas. The targets need not
//! be on that cluster (an ECS service locked on a Lease works the same).
//!
//! - One Lease per target, named from the target id ([`LeaseLocks::lease_name`]:
//!   `rollback-<the id, sanitised>-<16 hex digits of its hash>`), labelled
//!   `app.kubernetes.io/managed-by: rollback`, annotated with the target id, the holder as a
//!   person reads it and its journal; `holderIdentity` is the holder's transaction,
//!   `leaseTransitions` the fencing token ([`rollback_core::Lease::token`]), the expiry
//!   `renewTime` + `leaseDurationSeconds` (the TTL rounded up to whole seconds).
//! - Every write is a create or an update with the `resourceVersion` it was decided on, so
//!   of two runs racing for a lease one wins and the other is refused naming it
//!   ([`rollback_core::Error::Locked`]); a lease given back keeps its Lease with no holder
//!   (its `leaseTransitions` stay, so the next holder's token is greater).
//! - Who holds what: `kubectl get leases -n NAMESPACE -l app.kubernetes.io/managed-by=rollback
//!   -o custom-columns=TARGET:.metadata.annotations.rollback/target,HOLDER:.metadata.annotations.rollback/holder,UNTIL:.spec.renewTime`.
//! - RBAC: `get`, `create` and `update` on `leases` (API group `coordination.k8s.io`) in
//!   the namespace, which must exist. A 403 says so; 429 is
//!   [`rollback_core::Error::Throttled`], 5xx and an unreachable server a retryable
//!   [`rollback_core::Error::Backend`].
//! - Expiry is judged on the clock of the machine that reads the Lease against the
//!   `renewTime` the holder wrote: the machines' clocks must agree to well within a tenth
//!   of the TTL (the margin the engine keeps before a lease lapses).
//! - A resume rebuilds it from the journal (kind `kubernetes-lease`, parameters
//!   `{"namespace": ...}` and the client configuration when it is not the default) through
//!   [`register`] or [`register_with`].
//!
//! ```yaml
//! apiVersion: rbac.authorization.k8s.io/v1
//! kind: Role
//! metadata: {name: rollback-leases, namespace: rollback}
//! rules:
//! - apiGroups: [coordination.k8s.io]
//!   resources: [leases]
//!   verbs: [get, create, update]
//! ```
//!
//! ```no_run
//! use rollback_core::{Selector, Step, Transaction};
//! use rollback_k8s::{Deployment, K8s, LeaseLocks};
//! use std::sync::Arc;
//!
//! # async fn demo() -> rollback_core::Result<()> {
//! let k8s = K8s::from_env().await?;
//! let frontend = Deployment::new(&k8s, "production", "frontend")?;
//! let report = Transaction::builder("frontend-undo")
//!     .reason("error rate 12% after 2.4.0")
//!     .locks(Arc::new(LeaseLocks::new(&k8s, "rollback")?))
//!     .step(Step::new(Arc::new(frontend), Selector::Previous))
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
//! the name, namespace and context for 404). The kube-rs error itself is never in the
//! message: it is the `source()` of the error, whatever kind it becomes (`NotFound`,
//! `Conflict`, `Throttled`, `InvalidInput`, `Backend`), and so is the kubeconfig's error
//! of a configuration that cannot be loaded.
//!
//! Names: [`StatusError`] is what kubectl's `rollout status` rules report as an error for
//! one object; a step whose rollout failed is [`rollback_core::Error::RolloutFailed`]
//! (`rollback.RolloutError` in Python).
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
//!   compensation, the recovery steps, resume; `tests/resume_gradual.rs`: a gradual
//!   scale-up killed after its first step and resumed; `tests/clients.rs`: errors keep
//!   their source, and where rebuilt targets get their client; `tests/leases.rs`:
//!   [`LeaseLocks`] passes the lock conformance suite, locks a transaction, fences a run
//!   whose lease was taken over, and lets one of two racing clients win;
//!   `tests/manifest.rs`: [`Manifest`] as runbook 004's maintenance mode around the
//!   frontend's undo, set up and checked with the real kubectl: put back after the
//!   stages and by compensation, bad objects refused before anything changes, a stopped
//!   run resumed from its journal in a fresh registry, the runbook file, a change made
//!   during maintenance not overwritten, the conformance suite);
//! - a real cluster: the same scenarios with
//!   `KUBECONFIG=... cargo test -p rollback-k8s --test scenarios -- --ignored`.

pub mod client;
pub mod history;
pub mod lease;
pub mod manifest;
pub mod pods;
pub mod recovery;
pub mod status;
pub mod undo;
pub mod workload;

pub use client::{K8s, K8sConfig, K8sDefaults};
pub use lease::LeaseLocks;
pub use manifest::Manifest;
pub use pods::PodsReady;
pub use recovery::{Replicas, Restart, Scalable, RESTARTED_AT_ANNOTATION};
pub use workload::{DaemonSet, Deployment, StatefulSet, Workload, WorkloadKind, UNRECORDED};

pub use history::{
    controller_revision_history, controller_revision_rollback_target, deployment_history,
    deployment_rollback_target, HistoryError,
};
pub use status::{
    daemonset_status, deployment_status, statefulset_status, status_of, RolloutStatus, StatusError,
    StatusErrorKind,
};
pub use undo::{
    daemonset_undo, deployment_undo, deployment_undo_patch, statefulset_undo, PatchType, UndoError,
    UndoPatch, UndoPlan,
};

/// Registers this crate's target kinds (`k8s-deployment`, `k8s-statefulset`,
/// `k8s-daemonset`, their `-replicas` and `-restart` kinds, `k8s-manifest`) and its lock kind
/// (`kubernetes-lease`, [`LeaseLocks`]) so that a journal naming them can be resumed, each
/// target (and the lock manager) on the configuration its spec recorded: each
/// configuration is loaded once and its client shared by every target (and check) that
/// recorded it.
///
/// Targets and checks that give no namespace, or no context, get the defaults of the
/// environment ([`K8sDefaults::from_env`]: `ROLLBACK_KUBE_NAMESPACE`,
/// `ROLLBACK_KUBE_CONTEXT`), read now.
pub fn register(r: &mut rollback_core::Registry) {
    register_defaults(r, K8sDefaults::from_env());
}

/// [`register`] with these defaults instead of the environment's.
pub fn register_defaults(r: &mut rollback_core::Registry, defaults: K8sDefaults) {
    register_on(r, &client::Clients::resolved(), &defaults);
}

/// [`register`] with every target rebuilt on `k8s`, whatever configuration the journal
/// recorded: a client you built yourself ([`K8s::from_client`]), or one loaded before the
/// resume. Nothing is loaded from the specs. A namespace a target leaves out is
/// `ROLLBACK_KUBE_NAMESPACE`'s; the context is the client's.
pub fn register_with(r: &mut rollback_core::Registry, k8s: K8s) {
    let defaults = K8sDefaults {
        context: None,
        ..K8sDefaults::from_env()
    };
    register_on(r, &client::Clients::Given(k8s), &defaults);
}

/// [`register`] for checking runbook files on a machine that reaches no cluster
/// (`rollback lint`): every target, lock manager and check is built from its parameters,
/// so each parameter is checked as [`register`] checks it, but on a client that talks to
/// no API server; nothing is read from a kubeconfig, and any call the targets make fails.
/// Use it to validate, never to run.
pub fn register_offline(r: &mut rollback_core::Registry) {
    register_on(r, &client::Clients::Offline, &K8sDefaults::from_env());
}

fn register_on(r: &mut rollback_core::Registry, clients: &client::Clients, defaults: &K8sDefaults) {
    use k8s_openapi::api::apps::v1 as apps;
    workload::register_kind::<apps::Deployment>(r, clients, defaults);
    workload::register_kind::<apps::StatefulSet>(r, clients, defaults);
    workload::register_kind::<apps::DaemonSet>(r, clients, defaults);
    recovery::register_replicas::<apps::Deployment>(r, clients, defaults);
    recovery::register_replicas::<apps::StatefulSet>(r, clients, defaults);
    recovery::register_restart::<apps::Deployment>(r, clients, defaults);
    recovery::register_restart::<apps::StatefulSet>(r, clients, defaults);
    recovery::register_restart::<apps::DaemonSet>(r, clients, defaults);
    manifest::register(r, clients, defaults);
    lease::register_locks(r, clients);
    pods::register_check(r, clients, defaults);
}

/// A registry with the core's and this crate's kinds ([`register`]).
pub fn registry() -> rollback_core::Registry {
    let mut r = rollback_core::Registry::with_builtins();
    register(&mut r);
    r
}
