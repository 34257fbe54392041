//! [`LeaseLocks`]: the run's locks as Kubernetes `coordination.k8s.io/v1` Leases, one per
//! target, so that every machine that can reach the cluster sees the same locks.
//!
//! How a lock is a Lease (read them with `kubectl get leases -n NAMESPACE -l
//! app.kubernetes.io/managed-by=rollback`):
//!
//! | rollback | Lease |
//! | --- | --- |
//! | the target | the name ([`LeaseLocks::lease_name`]), and the annotation [`TARGET_ANNOTATION`] |
//! | [`Holder::transaction`] | `spec.holderIdentity` (none once given back) |
//! | [`Holder::name`], [`Holder::journal`] | the annotations [`HOLDER_ANNOTATION`], [`JOURNAL_ANNOTATION`] |
//! | [`Lease::acquired_at`] | `spec.acquireTime` |
//! | [`Lease::expires_at`] | `spec.renewTime` + `spec.leaseDurationSeconds` |
//! | [`Lease::token`] | `spec.leaseTransitions` (1 for the first holder) |
//!
//! Every write is a create, or an update carrying the `resourceVersion` it was decided
//! on (the API server refuses a Lease update without one): a 409 means someone else wrote
//! in between, and the decision is made again on what they wrote.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease as KubeLease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use rollback_core::lock::{claim, Holder, Lease, LockManager, LockSpec};
use rollback_core::{Error, Registry, Result, TargetId};
use serde::{Deserialize, Serialize};

use crate::client::{
    check_name, describe_status, kube_error, Clients, K8s, K8sConfig, NameRule, Op,
};

/// The label every Lease of [`LeaseLocks`] carries: `app.kubernetes.io/managed-by`.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "rollback";
/// The annotation naming the target a Lease locks (`kind/name`).
pub const TARGET_ANNOTATION: &str = "rollback/target";
/// The annotation naming the holder as a person reads it (`user@host (pid N)`).
pub const HOLDER_ANNOTATION: &str = "rollback/holder";
/// The annotation naming the holder's journal, when it has one.
pub const JOURNAL_ANNOTATION: &str = "rollback/journal";

/// How many times one call reads and writes again after losing a race (a 409).
const ATTEMPTS: usize = 8;

/// Leases on a Kubernetes cluster: one `coordination.k8s.io/v1` Lease per target in one
/// namespace. Shared by every machine, CI runner and pod that can reach the cluster with
/// credentials that may `get`, `create` and `update` Leases in that namespace.
///
/// How to use it, the RBAC rules it needs and what it protects: the crate docs'
/// [Locks on the cluster](crate#locks-on-the-cluster-leaselocks).
#[derive(Clone)]
pub struct LeaseLocks {
    k8s: K8s,
    namespace: String,
    api: Api<KubeLease>,
}

impl fmt::Debug for LeaseLocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseLocks")
            .field("namespace", &self.namespace)
            .field("config", &self.k8s.config)
            .finish()
    }
}

/// What a [`LockSpec`] of Kubernetes leases records: the namespace, and where the client's
/// configuration comes from (left out when it is the default, `KUBECONFIG` or in-cluster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Params {
    namespace: String,
    #[serde(default, skip_serializing_if = "is_default")]
    k8s: K8sConfig,
}

fn is_default(config: &K8sConfig) -> bool {
    *config == K8sConfig::default()
}

impl LeaseLocks {
    /// The [`LockSpec::kind`] of Kubernetes leases.
    pub const KIND: &'static str = "kubernetes-lease";

    /// Leases in `namespace` (which must exist) on `k8s`'s cluster. A namespace that is
    /// not a DNS-1123 label is refused as [`Error::InvalidInput`].
    pub fn new(k8s: &K8s, namespace: impl Into<String>) -> Result<LeaseLocks> {
        let namespace = namespace.into();
        check_name(
            &TargetId::new(Self::KIND, &namespace),
            "namespace",
            &namespace,
            NameRule::Label,
        )?;
        Ok(LeaseLocks {
            api: Api::namespaced(k8s.client.clone(), &namespace),
            k8s: k8s.clone(),
            namespace,
        })
    }

    /// Rebuilds Kubernetes leases from their [`LockSpec`], loading the configuration it
    /// recorded (what [`crate::register`] does on a resume).
    pub async fn from_spec(spec: &LockSpec) -> Result<LeaseLocks> {
        let p = Self::params(spec)?;
        LeaseLocks::new(&p.k8s.load().await?, p.namespace)
    }

    fn params(spec: &LockSpec) -> Result<Params> {
        if spec.kind != Self::KIND {
            return Err(Error::invalid(
                "locks",
                format!("lock kind {:?} is not Kubernetes leases", spec.kind),
            ));
        }
        serde_json::from_value(spec.params.clone()).map_err(|e| {
            Error::invalid(
                "locks",
                format!("Kubernetes lease parameters need a \"namespace\": {e}"),
            )
        })
    }

    /// The namespace holding the Leases.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name of `target`'s Lease: `rollback-`, the target id in lower case with every
    /// run of other characters than letters and digits made one `-` (cut to 36
    /// characters), `-` and 16 hex digits of the id's 64-bit FNV-1a hash, so ids that read
    /// alike still get Leases of their own. A DNS-1123 label (at most 62 characters), the
    /// same on every machine and every version.
    pub fn lease_name(target: &TargetId) -> String {
        let id = target.to_string();
        let mut safe = String::new();
        for c in id.chars() {
            if c.is_ascii_alphanumeric() {
                safe.push(c.to_ascii_lowercase());
            } else if !safe.ends_with('-') {
                safe.push('-');
            }
        }
        let mut safe: String = safe.trim_matches('-').chars().take(36).collect();
        while safe.ends_with('-') {
            safe.pop();
        }
        let hash = id.bytes().fold(0xcbf29ce484222325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        if safe.is_empty() {
            format!("rollback-{hash:016x}")
        } else {
            format!("rollback-{safe}-{hash:016x}")
        }
    }

    /// A kube-rs error from `verb` on `target`'s Lease `name` as this crate's error kinds:
    /// a 403 names the RBAC rules leases need, a 404 on create the missing namespace.
    fn error(&self, target: &TargetId, verb: &'static str, name: &str, e: kube::Error) -> Error {
        let op = Op::of::<KubeLease>(verb, &self.namespace, Some(name));
        let ns = &self.namespace;
        match &e {
            kube::Error::Api(status) if status.code == 403 => Error::permission_denied(
                target.to_string(),
                format!("{verb} leases.coordination.k8s.io"),
                format!("{ns}/{name}"),
                format!(
                    "{op} answered {}. Kubernetes leases need get, create and update on leases (API group coordination.k8s.io) in namespace {ns}: a Role with those verbs, bound to the kubeconfig context's user or the pod's service account (kubectl auth can-i update leases.coordination.k8s.io -n {ns}; `rollback policy --format rbac` prints it)",
                    describe_status(status)
                ),
            )
            .with_source(e),
            kube::Error::Api(status) if status.code == 404 && verb == "create" => Error::not_found(
                target.to_string(),
                format!("namespace {ns:?} for rollback's leases"),
                format!(
                    "{op} answered {}; create the namespace (kubectl create namespace {ns}) or give the lock manager one that exists",
                    describe_status(status)
                ),
            )
            .with_source(e),
            _ => kube_error(target, &op, e),
        }
    }

    /// `target`'s Lease as the API server holds it now, `None` when there is none. A Lease
    /// of that name annotated for another target is refused rather than shared.
    async fn read(&self, target: &TargetId, name: &str) -> Result<Option<KubeLease>> {
        let found = self
            .api
            .get_opt(name)
            .await
            .map_err(|e| self.error(target, "get", name, e))?;
        if let Some(other) = found
            .as_ref()
            .and_then(|l| annotation(l, TARGET_ANNOTATION))
            .filter(|t| *t != target.to_string())
        {
            return Err(Error::backend(
                target.to_string(),
                format!(
                    "the Lease {}/{name} locks {other}, not this target; remove it if nothing uses it (kubectl delete lease {name} -n {})",
                    self.namespace, self.namespace
                ),
                false,
            ));
        }
        Ok(found)
    }

    /// Writes `lease` (a create when it has no resourceVersion, else an update with it);
    /// `None` when someone else wrote first (409): read again and decide again.
    async fn write(&self, target: &TargetId, lease: KubeLease) -> Result<Option<KubeLease>> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let pp = PostParams::default();
        let (verb, written) = if lease.metadata.resource_version.is_none() {
            ("create", self.api.create(&pp, &lease).await)
        } else {
            ("update", self.api.replace(&name, &pp, &lease).await)
        };
        match written {
            Ok(l) => Ok(Some(l)),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                tracing::debug!(target_id = %target, lease = %name, reason = %s.reason, "lost a race for a Lease; reading it again");
                Ok(None)
            }
            Err(e) => Err(self.error(target, verb, &name, e)),
        }
    }

    /// Reads `target`'s Lease, lets `decide` say what to write (or to stop with a result),
    /// and writes it; again on a lost race, [`ATTEMPTS`] times at most.
    async fn update<T, F, Fut>(&self, target: &TargetId, decide: F) -> Result<T>
    where
        F: Fn(Option<KubeLease>) -> Fut,
        Fut: std::future::Future<Output = Result<Decision<T>>>,
    {
        let name = Self::lease_name(target);
        for _ in 0..ATTEMPTS {
            let current = self.read(target, &name).await?;
            let (lease, done) = match decide(current).await? {
                Decision::Done(out) => return Ok(out),
                Decision::Write(lease, done) => (lease, done),
            };
            if let Some(written) = self.write(target, *lease).await? {
                return done(written);
            }
        }
        Err(Error::backend(
            target.to_string(),
            format!(
                "the Lease {}/{name} kept changing while it was written ({ATTEMPTS} conflicts in a row); try again",
                self.namespace
            ),
            true,
        ))
    }

    /// `target`'s Lease as `holder` holds it (`taken`: the token and when it was taken),
    /// renewed at `now` for `ttl`; built on the Lease read (`base`, whose resourceVersion
    /// the update carries), or a new one.
    fn held(
        &self,
        base: Option<KubeLease>,
        target: &TargetId,
        holder: &Holder,
        (token, acquired_at): (u64, DateTime<Utc>),
        (now, ttl): (DateTime<Utc>, Duration),
    ) -> Result<KubeLease> {
        let mut lease = base.unwrap_or_else(|| KubeLease {
            metadata: ObjectMeta {
                name: Some(Self::lease_name(target)),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: None,
        });
        lease
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        let notes = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
        notes.insert(TARGET_ANNOTATION.into(), target.to_string());
        notes.insert(HOLDER_ANNOTATION.into(), holder.name.clone());
        match &holder.journal {
            Some(j) => notes.insert(JOURNAL_ANNOTATION.into(), j.display().to_string()),
            None => notes.remove(JOURNAL_ANNOTATION),
        };
        let transitions = i32::try_from(token).map_err(|_| {
            Error::backend(
                target.to_string(),
                format!(
                    "the Lease's leaseTransitions would pass {} (the largest the API takes); delete the Lease {}/{} once nothing holds it",
                    i32::MAX,
                    self.namespace,
                    Self::lease_name(target)
                ),
                false,
            )
        })?;
        let (renew_time, seconds) = renewal(now, ttl);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(holder.transaction.clone());
        spec.lease_transitions = Some(transitions);
        spec.acquire_time = Some(micro(acquired_at));
        spec.renew_time = Some(micro(renew_time));
        spec.lease_duration_seconds = Some(seconds);
        Ok(lease)
    }
}

/// What one look at the Lease decided: a result without writing, or a Lease to write and
/// what to make of it once written.
enum Decision<T> {
    Done(T),
    Write(Box<KubeLease>, WrittenFn<T>),
}

type WrittenFn<T> = Box<dyn FnOnce(KubeLease) -> Result<T> + Send>;

/// A decision to write `lease` and answer the lease it holds once written.
fn write_held(target: &TargetId, lease: KubeLease) -> Decision<Lease> {
    let target = target.clone();
    Decision::Write(
        Box::new(lease),
        Box::new(move |written| {
            view(&target, &written).ok_or_else(|| {
                Error::backend(
                    target.to_string(),
                    "the API server answered the Lease written without its holder",
                    false,
                )
            })
        }),
    )
}

fn annotation<'a>(lease: &'a KubeLease, key: &str) -> Option<&'a str> {
    lease
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// The renewal time and whole seconds recorded for a lease renewed at `now` for `ttl`: the
/// TTL rounded up to whole seconds. The API server takes no duration under one second, so
/// a zero TTL (a lease that has already lapsed) is one second renewed one second ago.
fn renewal(now: DateTime<Utc>, ttl: Duration) -> (DateTime<Utc>, i32) {
    if ttl.is_zero() {
        return (now - chrono::Duration::seconds(1), 1);
    }
    let seconds = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0));
    (now, i32::try_from(seconds).unwrap_or(i32::MAX))
}

/// Now, to the microsecond a Lease's times keep.
fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

fn micro(t: DateTime<Utc>) -> MicroTime {
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(t.timestamp_micros())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

fn chrono_of(t: &MicroTime) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.0.as_microsecond()).unwrap_or(DateTime::UNIX_EPOCH)
}

/// The token the Lease's last holder had (0 for a Lease that never had one).
fn last_token(lease: &KubeLease) -> u64 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(0)
}

/// The lease a Lease object holds, `None` when it has no holder (given back, or never
/// taken). Expiry is the renewal (else the acquisition) plus the duration; a Lease with
/// neither time has lapsed.
fn view(target: &TargetId, lease: &KubeLease) -> Option<Lease> {
    let spec = lease.spec.as_ref()?;
    let transaction = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    let acquired_at = spec
        .acquire_time
        .as_ref()
        .map(chrono_of)
        .unwrap_or(DateTime::UNIX_EPOCH);
    let renewed = spec
        .renew_time
        .as_ref()
        .map(chrono_of)
        .unwrap_or(acquired_at);
    let duration = chrono::Duration::seconds(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    Some(Lease {
        target: target.clone(),
        holder: Holder {
            name: annotation(lease, HOLDER_ANNOTATION)
                .unwrap_or(&transaction)
                .to_string(),
            journal: annotation(lease, JOURNAL_ANNOTATION).map(PathBuf::from),
            transaction,
        },
        acquired_at,
        expires_at: renewed + duration,
        token: last_token(lease),
    })
}

/// Whether `holder`'s journal (on this machine) says its run has ended; read off the
/// async threads, as a journal may be slow to read.
async fn run_ended(holder: &Holder) -> bool {
    if holder.journal.is_none() {
        return false;
    }
    let holder = holder.clone();
    tokio::task::spawn_blocking(move || holder.run_ended())
        .await
        .unwrap_or(false)
}

fn locked(lease: &Lease) -> Error {
    Error::locked(
        lease.target.to_string(),
        lease.holder.to_string(),
        lease.expires_at,
    )
}

#[async_trait]
impl LockManager for LeaseLocks {
    /// Leases read, made and replaced in the namespace (one per target: their names are
    /// made from the targets, so not narrowed).
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        Some(rollback_core::Permission::kubernetes(
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update"],
            &self.namespace,
            None,
        ))
    }

    fn spec(&self) -> Option<LockSpec> {
        let params = Params {
            namespace: self.namespace.clone(),
            k8s: self.k8s.config.clone(),
        };
        Some(LockSpec {
            kind: Self::KIND.into(),
            params: serde_json::to_value(params).unwrap_or_default(),
        })
    }

    async fn acquire(&self, target: &TargetId, holder: &Holder, ttl: Duration) -> Result<Lease> {
        if holder.transaction.is_empty() {
            // An empty holderIdentity reads as a Lease nobody holds.
            return Err(Error::invalid(
                target.to_string(),
                "a Kubernetes lease needs a holder with a transaction id",
            ));
        }
        self.update(target, |current| async move {
            let now = now();
            let held = current.as_ref().and_then(|l| view(target, l));
            // The holder's journal is read (off the async threads) only when it decides.
            let ended = match &held {
                Some(h) if h.holder.transaction != holder.transaction && !h.expired_at(now) => {
                    run_ended(&h.holder).await
                }
                _ => false,
            };
            let last = current.as_ref().map_or(0, last_token);
            let taken = claim(target, held.as_ref(), last, holder, now, |_| ended)?;
            let lease = self.held(current, target, holder, taken, (now, ttl))?;
            Ok(write_held(target, lease))
        })
        .await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        let target = &lease.target;
        self.update(target, |current| async move {
            let Some(current) = current else {
                return Err(Error::lease_lost(
                    target.to_string(),
                    format!(
                        "its Lease {}/{} no longer exists (deleted)",
                        self.namespace,
                        Self::lease_name(target)
                    ),
                ));
            };
            match view(target, &current) {
                Some(held)
                    if held.holder.transaction == lease.holder.transaction
                        && held.token == lease.token =>
                {
                    let renewed = self.held(
                        Some(current),
                        target,
                        &lease.holder,
                        (held.token, held.acquired_at),
                        (now(), ttl),
                    )?;
                    Ok(write_held(target, renewed))
                }
                Some(other) => Err(locked(&other)),
                None => Err(Error::lease_lost(
                    target.to_string(),
                    format!(
                        "its Lease {}/{} has no holder (given back)",
                        self.namespace,
                        Self::lease_name(target)
                    ),
                )),
            }
        })
        .await
    }

    async fn current(&self, target: &TargetId) -> Result<Option<Lease>> {
        let name = Self::lease_name(target);
        Ok(self
            .read(target, &name)
            .await?
            .and_then(|l| view(target, &l)))
    }

    /// Gives the lease back by clearing the Lease's holder (its `leaseTransitions` stay, so
    /// the next holder's token is greater); the Lease object is kept.
    async fn release(&self, lease: &Lease) -> Result<()> {
        let target = &lease.target;
        self.update(target, |current| async move {
            let Some(mut current) = current.filter(|l| {
                view(target, l).is_some_and(|h| h.holder.transaction == lease.holder.transaction)
            }) else {
                return Ok(Decision::Done(()));
            };
            if let Some(notes) = current.metadata.annotations.as_mut() {
                notes.remove(HOLDER_ANNOTATION);
                notes.remove(JOURNAL_ANNOTATION);
            }
            if let Some(spec) = current.spec.as_mut() {
                spec.holder_identity = None;
                spec.acquire_time = None;
                spec.renew_time = Some(micro(now()));
            }
            Ok(Decision::Write(Box::new(current), Box::new(|_| Ok(()))))
        })
        .await
    }
}

/// Registers the lock kind [`LeaseLocks::KIND`], rebuilt on the client of the configuration
/// its spec recorded (or the one given).
pub(crate) fn register_locks(r: &mut Registry, clients: &Clients) {
    let clients = clients.clone();
    r.register_locks(LeaseLocks::KIND, move |spec: LockSpec| {
        let clients = clients.clone();
        async move {
            let p = LeaseLocks::params(&spec)?;
            let k8s = clients.load(&p.k8s).await?;
            Ok(Arc::new(LeaseLocks::new(&k8s, p.namespace)?) as Arc<dyn LockManager>)
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_are_labels_and_keep_alike_ids_apart() {
        let a = TargetId::new("k8s-deployment", "production/frontend");
        let b = TargetId::new("k8s-deployment", "production.frontend");
        let (na, nb) = (LeaseLocks::lease_name(&a), LeaseLocks::lease_name(&b));
        assert!(
            na.starts_with("rollback-k8s-deployment-production-frontend-"),
            "{na}"
        );
        assert_ne!(na, nb);
        assert_eq!(na, LeaseLocks::lease_name(&a), "stable");
        let long = TargetId::new(
            "ecs-service",
            format!("{}/UPPER_and_ünïcode", "x".repeat(300)),
        );
        for t in [&a, &b, &long, &TargetId::new("", "///")] {
            let n = LeaseLocks::lease_name(t);
            assert!(n.len() <= 63, "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
            assert!(!n.ends_with('-') && !n.contains("--"), "{n}");
        }
    }

    #[test]
    fn a_ttl_is_whole_seconds_and_zero_has_lapsed() {
        let t = now();
        assert_eq!(renewal(t, Duration::from_secs(60)), (t, 60));
        assert_eq!(renewal(t, Duration::from_millis(1500)), (t, 2));
        assert_eq!(renewal(t, Duration::from_millis(1)), (t, 1));
        let (at, secs) = renewal(t, Duration::ZERO);
        assert_eq!(at + chrono::Duration::seconds(i64::from(secs)), t);
        assert_eq!(renewal(t, Duration::MAX).1, i32::MAX);
    }

    #[test]
    fn times_round_trip_through_micro_time() {
        let t = now();
        assert_eq!(chrono_of(&micro(t)), t);
    }
}
