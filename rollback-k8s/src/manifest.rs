//! A set of objects applied for a while and put back: runbook 004's "Enable maintenance
//! mode" (`kubectl apply -f kubernetes/maintenance-mode.yaml`) as a target, [`Manifest`].
//!
//! ```text
//! kubectl apply -f maintenance-mode.yaml          Manifest, to "applied", temporary
//! ... the rollback, restore, re-deploy ...
//! (maintenance off)                               the engine puts it back: the objects
//!                                                 replaced get their old content again,
//!                                                 the ones it created are deleted
//! ```
//!
//! # Revisions
//!
//! - [`BEFORE`]: what exists now for the manifest's objects, read in preflight: each
//!   object's content without what the server manages (`resourceVersion`, `uid`,
//!   `creationTimestamp`, `generation`, `managedFields`, `status`, the Deployment
//!   controller's revision annotation), or `absent`. The revision records it in its
//!   [`facts`](rollback_core::Revision::facts), one per object (`ConfigMap/production/maintenance-mode`),
//!   so the journal holds what putting back needs and a resume in another process puts
//!   back from the journal alone.
//! - [`APPLIED`]: the manifest. The target is there when every object holds what the
//!   manifest gives (fields the server adds, such as defaults and a Service's cluster IP,
//!   do not count).
//!
//! `history` is `[before, applied]` (just `[applied]` once applied), so `Previous` (a
//! runbook's default) and `Exact("applied")` both pick the manifest.
//!
//! # Apply, put back, stable
//!
//! Moving to `applied` creates each absent object and replaces (PUT, with the
//! `resourceVersion` just read) each present one with the manifest's content, in the
//! manifest's order. Moving back to `before` goes in the reverse order (so a Service's
//! selector points back at the real pods before the maintenance Deployment goes): each
//! replaced object gets its recorded content again, each created one is deleted (with the
//! `resourceVersion` and `uid` it was judged on as preconditions). Every object is checked
//! before anything is written: one that is neither as the revision we come from nor as the
//! one we go to (someone else changed it) is a [`Error::Conflict`] and nothing is sent; a
//! 409 on a write reads again and decides afresh. Objects already where they should be are
//! left alone, so a resumed or retried apply finishes what a stopped one began.
//!
//! Stable: every object is as the revision says (deleted ones gone) and every Deployment's
//! rollout is complete by `kubectl rollout status`'s rules ([`deployment_status`]);
//! ConfigMaps and Services are stable at once. The wait polls (one read per object per
//! look) rather than watching several objects.
//!
//! # Plan and secrets
//!
//! The plan is a diff per object, as `kubectl diff` makes it: each write is sent to the API
//! server as a dry run (`dryRun=All`, nothing stored), which also validates it in
//! preflight, and the object as it would be stored is compared with the object as it is,
//! field by field (`+` added, `~` changed, `-` removed; an object to create lists the
//! manifest's fields). Values of secret-looking keys (a ConfigMap key `api_token`, an
//! environment variable `DB_PASSWORD`) are shown as `<redacted>`. Kind `Secret` is refused:
//! the journal holds the previous content of every object of the manifest, which must
//! never be a secret value; roll secrets back with their own target. ConfigMaps, Services
//! and Deployments are not secret in Kubernetes' model (anyone who may `kubectl get` them
//! reads them whole), and their content is journaled as the cluster stores it: keep
//! secret values in Secrets and refer to them (`valueFrom.secretKeyRef`), so that the
//! journal holds the reference only.
//!
//! # Bad input
//!
//! Refused as [`Error::InvalidInput`] before any request, naming the object (`object 2
//! (Service frontend)`): no objects, an object that is not a mapping, without `kind`,
//! `apiVersion` or `metadata.name` (a `generateName` could not be put back), a kind other
//! than ConfigMap, Service or Deployment (or Secret), an `apiVersion` that does not serve
//! the kind, names and namespaces the API server would refuse, the same object twice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as core;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, PostParams, Preconditions, PropagationPolicy,
};
use rollback_core::revision::{is_secret_key, REDACTED};
use rollback_core::{
    ApplyOutcome, Change, Diff, DiffEntry, DiffSection, Error, Registry, Result, Revision,
    RollbackTarget, Selector, Stability, TargetId, TargetSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::client::{check_name, kube_error, Clients, K8s, K8sConfig, K8sDefaults, NameRule, Op};
use crate::status::{deployment_status, RolloutStatus};
use crate::workload::{is_conflict, CONFLICT_RETRIES};

/// The target kind.
pub const KIND: &str = "k8s-manifest";
/// The revision id of the manifest applied.
pub const APPLIED: &str = "applied";
/// The revision id of what was there before (the snapshot preflight takes).
pub const BEFORE: &str = "before";
/// What a snapshot records for an object that did not exist.
const ABSENT: &str = "absent";
/// The Deployment controller's annotation: it moves on its own, so it is not content.
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// How long a value may be in a plan line.
const SHOWN_CHARS: usize = 120;

/// The kinds a manifest takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ObjectKind {
    ConfigMap,
    Service,
    Deployment,
}

impl ObjectKind {
    const NAMES: &'static str = "ConfigMap, Service, Deployment";

    fn of(kind: &str) -> Option<ObjectKind> {
        match kind {
            "ConfigMap" => Some(ObjectKind::ConfigMap),
            "Service" => Some(ObjectKind::Service),
            "Deployment" => Some(ObjectKind::Deployment),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "ConfigMap",
            ObjectKind::Service => "Service",
            ObjectKind::Deployment => "Deployment",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap | ObjectKind::Service => "v1",
            ObjectKind::Deployment => "apps/v1",
        }
    }

    /// kubectl's noun and the resource's plural, as error messages name them.
    fn nouns(self) -> (&'static str, &'static str) {
        match self {
            ObjectKind::ConfigMap => ("configmap", "configmaps"),
            ObjectKind::Service => ("service", "services"),
            ObjectKind::Deployment => ("deployment", "deployments"),
        }
    }

    /// A Service's name is a DNS-1035 label (close to a DNS-1123 label); the others are
    /// subdomains.
    fn name_rule(self) -> NameRule {
        match self {
            ObjectKind::Service => NameRule::Label,
            _ => NameRule::Subdomain,
        }
    }

    fn resource(self) -> ApiResource {
        match self {
            ObjectKind::ConfigMap => ApiResource::erase::<core::ConfigMap>(&()),
            ObjectKind::Service => ApiResource::erase::<core::Service>(&()),
            ObjectKind::Deployment => ApiResource::erase::<apps::Deployment>(&()),
        }
    }
}

/// One object of the manifest, checked.
#[derive(Debug, Clone)]
struct Object {
    kind: ObjectKind,
    namespace: String,
    name: String,
    /// The manifest's content, without server-managed fields, its namespace set.
    body: Value,
}

impl Object {
    /// The fact key of the object in a [`BEFORE`] revision: `ConfigMap/production/x`.
    fn key(&self) -> String {
        format!("{}/{}/{}", self.kind.name(), self.namespace, self.name)
    }

    /// `Service production/frontend`, as messages and plans name it.
    fn shown(&self) -> String {
        format!("{} {}/{}", self.kind.name(), self.namespace, self.name)
    }
}

/// What one object should become.
#[derive(Debug, Clone, Copy)]
enum Goal<'a> {
    /// As the manifest says.
    Manifest,
    /// As it was: this content, or absent.
    Was(Option<&'a Value>),
    /// A revision this manifest did not make (no snapshot of its objects): never there.
    Unknown,
}

/// A manifest's parameters as data (what a journal and a runbook file hold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ManifestParams {
    namespace: String,
    name: String,
    objects: Vec<Value>,
    #[serde(default)]
    k8s: K8sConfig,
}

/// A set of Kubernetes objects (ConfigMaps, Services, Deployments) applied as one target
/// and put back as they were: runbook 004's maintenance mode. See the [module](self) for
/// its revisions, what apply and put-back do, the plan, and what is refused.
///
/// Its [`TargetId`] is `k8s-manifest/<namespace>/<name>`; the namespace is also that of
/// objects that give none. Make the step [temporary](rollback_core::Step::temporary) to
/// have the engine put it back once the stages are done (and by compensation on failure).
///
/// ```no_run
/// use rollback_core::{Selector, Step, Transaction};
/// use rollback_k8s::{Deployment, K8s, Manifest};
/// use serde_json::json;
/// use std::sync::Arc;
///
/// # async fn demo() -> rollback_core::Result<()> {
/// let k8s = K8s::from_env().await?;
/// let maintenance = Manifest::new(&k8s, "production", "maintenance", [
///     json!({"apiVersion": "v1", "kind": "ConfigMap",
///            "metadata": {"name": "maintenance-mode"}, "data": {"enabled": "true"}}),
///     json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "frontend"},
///            "spec": {"selector": {"app": "maintenance"}, "ports": [{"port": 80}]}}),
/// ])?;
/// let frontend = Deployment::new(&k8s, "production", "frontend")?;
/// let report = Transaction::builder("frontend-recovery")
///     .reason("rollback of 2.4.0 failed")
///     .step(Step::new(Arc::new(maintenance), Selector::exact("applied")).temporary())
///     .stage()
///     .step(Step::new(Arc::new(frontend), Selector::Previous))
///     .build()?
///     .run()
///     .await?;
/// println!("{}", report.outcome);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Manifest {
    k8s: K8s,
    namespace: String,
    name: String,
    /// The objects as given (what [`spec`](RollbackTarget::spec) records).
    given: Vec<Value>,
    objects: Vec<Object>,
    id: TargetId,
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: the objects' content may hold values a log should not.
        f.debug_struct("Manifest")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field(
                "objects",
                &self.objects.iter().map(Object::shown).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// `e` (about a name) as a refusal of the object `what` of `target`.
fn about(target: &TargetId, what: &str, e: Error) -> Error {
    match e {
        Error::InvalidInput { message, .. } => {
            Error::invalid(target.to_string(), format!("{what}: {message}"))
        }
        other => other,
    }
}

impl Manifest {
    /// The manifest `name` in `namespace` (also the namespace of objects that give none),
    /// with these objects. Every object is checked now, before any request (see the
    /// [module](self) for what is refused); an error names the object.
    pub fn new(
        k8s: &K8s,
        namespace: impl Into<String>,
        name: impl Into<String>,
        objects: impl IntoIterator<Item = Value>,
    ) -> Result<Manifest> {
        let (namespace, name) = (namespace.into(), name.into());
        let id = TargetId::new(KIND, format!("{namespace}/{name}"));
        check_name(&id, "namespace", &namespace, NameRule::Label)?;
        check_name(&id, "name", &name, NameRule::Subdomain)?;
        let given: Vec<Value> = objects.into_iter().collect();
        if given.is_empty() {
            return Err(Error::invalid(
                id.to_string(),
                "the manifest has no objects; give the objects to apply (objects: [{apiVersion: v1, kind: ConfigMap, metadata: {name: ...}, ...}])",
            ));
        }
        let mut checked = Vec::with_capacity(given.len());
        let mut seen = BTreeSet::new();
        for (i, raw) in given.iter().enumerate() {
            let object = check_object(&id, &namespace, i + 1, raw)?;
            if !seen.insert(object.key()) {
                return Err(Error::invalid(
                    id.to_string(),
                    format!(
                        "object {} ({}) is in the manifest twice; give each object once",
                        i + 1,
                        object.shown()
                    ),
                ));
            }
            checked.push(object);
        }
        Ok(Manifest {
            k8s: k8s.clone(),
            namespace,
            name,
            given,
            objects: checked,
            id,
        })
    }

    /// The manifest's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The manifest's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The objects, as `Kind namespace/name`, in the manifest's order.
    pub fn objects(&self) -> Vec<String> {
        self.objects.iter().map(Object::shown).collect()
    }

    fn api(&self, o: &Object) -> Api<DynamicObject> {
        Api::namespaced_with(self.k8s.client.clone(), &o.namespace, &o.kind.resource())
    }

    fn err(&self, verb: &'static str, o: &Object, e: kube::Error) -> Error {
        kube_error(
            &self.id,
            &Op::named(verb, o.kind.nouns(), &o.namespace, &o.name),
            e,
        )
    }

    /// The object as stored, or `None` when it does not exist.
    async fn read(&self, o: &Object) -> Result<Option<Value>> {
        let found = self
            .api(o)
            .get_opt(&o.name)
            .await
            .map_err(|e| self.err("get", o, e))?;
        found
            .map(|d| {
                serde_json::to_value(d).map_err(|e| {
                    Error::backend(self.id.to_string(), format!("{}: {e}", o.shown()), false)
                })
            })
            .transpose()
    }

    /// Every object as stored, in the manifest's order.
    async fn read_all(&self) -> Result<Vec<Option<Value>>> {
        futures::future::try_join_all(self.objects.iter().map(|o| self.read(o))).await
    }

    fn at(&self, o: &Object, live: Option<&Value>, goal: Goal<'_>) -> bool {
        match (goal, live) {
            (Goal::Manifest, Some(live)) => contains(&content(live), &o.body),
            (Goal::Manifest, None) => false,
            (Goal::Was(None), live) => live.is_none(),
            (Goal::Was(Some(was)), Some(live)) => content(live) == *was,
            (Goal::Was(Some(_)), None) => false,
            (Goal::Unknown, _) => false,
        }
    }

    /// The [`BEFORE`] revision of what `live` holds.
    fn before(&self, live: &[Option<Value>]) -> Revision {
        let mut r = Revision::new(BEFORE);
        let mut parts = Vec::new();
        for (o, live) in self.objects.iter().zip(live) {
            let value = match live {
                Some(v) => {
                    parts.push(format!("{} (present)", o.shown()));
                    serde_json::to_string(&content(v)).unwrap_or_default()
                }
                None => {
                    parts.push(format!("{} (absent)", o.shown()));
                    ABSENT.to_string()
                }
            };
            r.facts.insert(o.key(), value);
        }
        r.description(format!(
            "before the manifest {}: {}",
            self.name,
            parts.join(", ")
        ))
    }

    fn applied(&self) -> Revision {
        Revision::new(APPLIED).description(format!(
            "the manifest {} applied: {}",
            self.name,
            self.objects().join(", ")
        ))
    }

    /// The revision `live` is at: [`APPLIED`] when every object is as the manifest says,
    /// else [`BEFORE`] (a snapshot of `live`).
    fn current_of(&self, live: &[Option<Value>]) -> Revision {
        let applied = self
            .objects
            .iter()
            .zip(live)
            .all(|(o, l)| self.at(o, l.as_ref(), Goal::Manifest));
        if applied {
            self.applied()
        } else {
            self.before(live)
        }
    }

    fn history_of(&self, current: &Revision) -> Vec<Revision> {
        if current.id == APPLIED {
            vec![current.clone()]
        } else {
            vec![current.clone(), self.applied()]
        }
    }

    /// What a [`BEFORE`] revision recorded for each object, in the manifest's order.
    fn snapshot(&self, revision: &Revision) -> Result<Vec<Option<Value>>> {
        self.objects
            .iter()
            .map(|o| {
                let fact = revision.facts.get(&o.key()).ok_or_else(|| {
                    Error::invalid(
                        self.id.to_string(),
                        format!(
                            "revision {} records nothing of {}: it was taken of another manifest; plan again",
                            revision.id,
                            o.shown()
                        ),
                    )
                })?;
                if fact == ABSENT {
                    return Ok(None);
                }
                serde_json::from_str(fact).map(Some).map_err(|e| {
                    Error::invalid(
                        self.id.to_string(),
                        format!("revision {} records {} unreadably ({e})", revision.id, o.shown()),
                    )
                })
            })
            .collect()
    }

    /// The goal of each object at `revision`, with the snapshot it refers to.
    fn goals(&self, revision: &Revision) -> Result<Vec<Option<Value>>> {
        if revision.id == APPLIED {
            Ok(Vec::new())
        } else {
            self.snapshot(revision)
        }
    }

    fn goal<'a>(revision: &Revision, snapshot: Option<&'a [Option<Value>]>, i: usize) -> Goal<'a> {
        match snapshot {
            _ if revision.id == APPLIED => Goal::Manifest,
            Some(snapshot) => Goal::Was(snapshot.get(i).and_then(Option::as_ref)),
            None => Goal::Unknown,
        }
    }

    /// The change to `to` from what `live` holds, with its per-object diff; writes to the
    /// manifest are checked by the API server as dry runs.
    async fn plan_from(&self, live: &[Option<Value>], to: &Revision) -> Result<Change> {
        let from = self.current_of(live);
        let mut entries = Vec::new();
        if to.id == APPLIED {
            for (o, live) in self.objects.iter().zip(live) {
                if self.at(o, live.as_ref(), Goal::Manifest) {
                    continue;
                }
                let stored = self.dry_run(o, live.as_ref()).await?;
                match live {
                    None => {
                        entries.push(entry(&o.shown(), None, Some("created".into())));
                        let mut body = o.body.clone();
                        if let Some(m) = body.as_object_mut() {
                            m.remove("apiVersion");
                            m.remove("kind");
                        }
                        if let Some(m) = body["metadata"].as_object_mut() {
                            m.remove("name");
                            m.remove("namespace");
                        }
                        if body["metadata"].as_object().is_some_and(Map::is_empty) {
                            if let Some(m) = body.as_object_mut() {
                                m.remove("metadata");
                            }
                        }
                        diff_values(&o.shown(), &Value::Null, &body, &mut entries);
                    }
                    Some(live) => {
                        diff_values(&o.shown(), &content(live), &content(&stored), &mut entries)
                    }
                }
            }
        } else {
            let snapshot = self.snapshot(to)?;
            for ((o, live), was) in self.objects.iter().zip(live).zip(&snapshot) {
                match (live, was) {
                    (None, None) => {}
                    (Some(_), None) => entries.push(entry(
                        &o.shown(),
                        Some("present".into()),
                        Some("deleted".into()),
                    )),
                    (None, Some(was)) => {
                        entries.push(entry(&o.shown(), None, Some("created".into())));
                        diff_values(&o.shown(), &Value::Null, was, &mut entries);
                    }
                    (Some(live), Some(was)) => {
                        diff_values(&o.shown(), &content(live), was, &mut entries)
                    }
                }
            }
        }
        let mut change = Change::new(self.id.clone(), from, to.clone());
        change.diff = Diff { entries };
        Ok(change)
    }

    /// The object the API server would store for the manifest's write (`dryRun=All`).
    async fn dry_run(&self, o: &Object, live: Option<&Value>) -> Result<Value> {
        let params = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let written = match live {
            None => self
                .api(o)
                .create(&params, &dynamic(&self.id, &o.body)?)
                .await
                .map_err(|e| self.err("create", o, e))?,
            Some(live) => {
                let mut body = o.body.clone();
                body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
                self.api(o)
                    .replace(&o.name, &params, &dynamic(&self.id, &body)?)
                    .await
                    .map_err(|e| self.err("update", o, e))?
            }
        };
        serde_json::to_value(written)
            .map_err(|e| Error::backend(self.id.to_string(), e.to_string(), false))
    }

    /// Moves one object to `goal` from `live` (as first read); a 409 reads again and
    /// decides afresh. Returns whether it wrote.
    async fn move_object(
        &self,
        o: &Object,
        from: Goal<'_>,
        goal: Goal<'_>,
        mut live: Option<Value>,
    ) -> Result<bool> {
        for attempt in 0..CONFLICT_RETRIES {
            if attempt > 0 {
                live = self.read(o).await?;
            }
            if self.at(o, live.as_ref(), goal) {
                return Ok(false);
            }
            if !self.at(o, live.as_ref(), from) {
                return Err(self.changed(o, live.as_ref()));
            }
            let content = match goal {
                Goal::Manifest => Some(&o.body),
                Goal::Was(was) => was,
                Goal::Unknown => return Err(self.changed(o, live.as_ref())),
            };
            let result = match (content, &live) {
                (Some(body), None) => self
                    .api(o)
                    .create(&PostParams::default(), &dynamic(&self.id, body)?)
                    .await
                    .map(|_| ())
                    .map_err(|e| ("create", e)),
                (Some(body), Some(l)) => {
                    let mut body = body.clone();
                    body["metadata"]["resourceVersion"] = l["metadata"]["resourceVersion"].clone();
                    self.api(o)
                        .replace(&o.name, &PostParams::default(), &dynamic(&self.id, &body)?)
                        .await
                        .map(|_| ())
                        .map_err(|e| ("update", e))
                }
                (None, Some(l)) => {
                    let text = |v: &Value| v.as_str().map(str::to_string);
                    let params = DeleteParams {
                        preconditions: Some(Preconditions {
                            resource_version: text(&l["metadata"]["resourceVersion"]),
                            uid: text(&l["metadata"]["uid"]),
                        }),
                        propagation_policy: Some(PropagationPolicy::Background),
                        ..DeleteParams::default()
                    };
                    match self.api(o).delete(&o.name, &params).await {
                        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                        other => other.map(|_| ()).map_err(|e| ("delete", e)),
                    }
                }
                (None, None) => return Ok(false),
            };
            match result {
                Ok(()) => return Ok(true),
                // A write since our read (or a create that lost a race): read again.
                Err((_, e)) if is_conflict(&e) => {}
                Err((verb, e)) => return Err(self.err(verb, o, e)),
            }
        }
        Err(Error::conflict(
            self.id.to_string(),
            format!("{} as read", o.shown()),
            format!("an object rewritten {CONFLICT_RETRIES} times while we tried to write it"),
        ))
    }

    fn changed(&self, o: &Object, live: Option<&Value>) -> Error {
        Error::conflict(
            self.id.to_string(),
            format!("{} as planned", o.shown()),
            match live {
                Some(_) => format!(
                    "{} changed by someone else (it is neither as before nor as the manifest says); their change is left as it is",
                    o.shown()
                ),
                None => format!("{} deleted by someone else", o.shown()),
            },
        )
    }
}

/// Checks object `n` of a manifest and makes it an [`Object`].
fn check_object(id: &TargetId, namespace: &str, n: usize, raw: &Value) -> Result<Object> {
    let refuse = |message: String| Error::invalid(id.to_string(), message);
    let Some(map) = raw.as_object() else {
        return Err(refuse(format!(
            "object {n} is not a mapping; give each object as in a manifest file (apiVersion, kind, metadata, ...)"
        )));
    };
    let name = raw["metadata"]["name"].as_str().unwrap_or("");
    let Some(kind_text) = map
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
    else {
        return Err(refuse(format!(
            "object {n}{} has no kind; give one of {}",
            if name.is_empty() {
                String::new()
            } else {
                format!(" ({name})")
            },
            ObjectKind::NAMES
        )));
    };
    let what = if name.is_empty() {
        format!("object {n} ({kind_text})")
    } else {
        format!("object {n} ({kind_text} {name})")
    };
    if kind_text == "Secret" {
        return Err(refuse(format!(
            "{what} is a Secret, which a manifest refuses: its plan and its journal hold what it writes and what was there before, and never a secret value; roll a secret back with its own target, or keep it out of the manifest"
        )));
    }
    let Some(kind) = ObjectKind::of(kind_text) else {
        return Err(refuse(format!(
            "{what}: kind {kind_text:?} is not one a manifest takes ({})",
            ObjectKind::NAMES
        )));
    };
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            return Err(refuse(format!(
                "{what} has no apiVersion; a {} is apiVersion: {}",
                kind.name(),
                kind.api_version()
            )))
        }
        Some(v) if v != kind.api_version() => {
            return Err(refuse(format!(
                "{what}: apiVersion {v:?} does not serve {}; use apiVersion: {}",
                kind.name(),
                kind.api_version()
            )))
        }
        Some(_) => {}
    }
    if !raw["metadata"].is_object() || name.is_empty() {
        return Err(refuse(format!(
            "{what} has no metadata.name; every object needs one (a generateName could not be put back)"
        )));
    }
    check_name(id, "name", name, kind.name_rule()).map_err(|e| about(id, &what, e))?;
    let object_namespace = match &raw["metadata"]["namespace"] {
        Value::Null => namespace.to_string(),
        Value::String(ns) => ns.clone(),
        other => {
            return Err(refuse(format!(
                "{what}: metadata.namespace {other} is not a name"
            )))
        }
    };
    check_name(id, "namespace", &object_namespace, NameRule::Label)
        .map_err(|e| about(id, &what, e))?;
    let mut body = content(raw);
    body["metadata"]["namespace"] = json!(object_namespace);
    Ok(Object {
        kind,
        namespace: object_namespace,
        name: name.to_string(),
        body,
    })
}

/// An object as content: without what the server manages (metadata it sets, `status`,
/// the Deployment controller's revision annotation).
fn content(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = v["metadata"].as_object_mut() {
        for field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            meta.remove(field);
        }
        if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
            annotations.remove(REVISION_ANNOTATION);
        }
        for field in ["annotations", "labels"] {
            if meta
                .get(field)
                .is_some_and(|a| a.as_object().is_some_and(Map::is_empty))
            {
                meta.remove(field);
            }
        }
    }
    v
}

/// Whether `have` holds everything `want` gives: maps key by key (a missing key counts as
/// given when `want` has it empty or null), lists element by element with the same length,
/// other values equal.
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(k, wv)| match h.get(k) {
            Some(hv) => contains(hv, wv),
            None => empty(wv),
        }),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        (Value::Null, w) => empty(w),
        (h, w) => h == w,
    }
}

/// Null, or a map or list holding nothing but empty values.
fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A JSON object as the dynamic object kube-rs sends.
fn dynamic(id: &TargetId, v: &Value) -> Result<DynamicObject> {
    serde_json::from_value(v.clone()).map_err(|e| {
        Error::invalid(
            id.to_string(),
            format!("an object of the manifest is not a Kubernetes object: {e}"),
        )
    })
}

fn entry(key: &str, from: Option<String>, to: Option<String>) -> DiffEntry {
    DiffEntry {
        section: DiffSection::Fact,
        key: key.to_string(),
        from,
        to,
    }
}

/// Lists whose elements are named (`containers[app]`, `env[LOG_LEVEL]`) rather than
/// numbered in a plan, as the API merges them by name: adding one does not renumber the rest.
const NAMED_LISTS: [&str; 6] = [
    "containers",
    "initContainers",
    "ephemeralContainers",
    "env",
    "volumes",
    "imagePullSecrets",
];

/// The leaves of `v` by path (`spec.selector.app`, `spec.ports[0].port`,
/// `containers[app].image`, `env[LOG_LEVEL].value`), each marked secret when a key on its
/// path (or the name of a list element, such as an environment variable's) looks secret.
fn leaves(
    (path, field): (&str, &str),
    v: &Value,
    out: &mut BTreeMap<String, (bool, String)>,
    secret: bool,
) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                leaves((&join(k), k), child, out, secret || is_secret_key(k));
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, child) in a.iter().enumerate() {
                let name = child["name"].as_str();
                let label = match name {
                    Some(name) if NAMED_LISTS.contains(&field) => name.to_string(),
                    _ => i.to_string(),
                };
                let hides = name.is_some_and(is_secret_key);
                leaves(
                    (&format!("{path}[{label}]"), field),
                    child,
                    out,
                    secret || hides,
                );
            }
        }
        Value::Null if path.is_empty() => {}
        Value::String(s) => {
            out.insert(path.to_string(), (secret, s.clone()));
        }
        other => {
            out.insert(path.to_string(), (secret, other.to_string()));
        }
    }
}

/// The field-by-field diff of one object, `from` to `to`, values of secret-looking keys
/// redacted, long values cut.
fn diff_values(object: &str, from: &Value, to: &Value, out: &mut Vec<DiffEntry>) {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves(("", ""), from, &mut a, false);
    leaves(("", ""), to, &mut b, false);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let shown = |v: Option<&(bool, String)>| {
        v.map(|(secret, text)| {
            if *secret {
                REDACTED.to_string()
            } else {
                rollback_core::redact::truncate(text, SHOWN_CHARS)
            }
        })
    };
    for key in keys {
        let (x, y) = (a.get(key), b.get(key));
        if x.map(|v| &v.1) == y.map(|v| &v.1) {
            continue;
        }
        out.push(entry(&format!("{object} {key}"), shown(x), shown(y)));
    }
}

#[async_trait]
impl RollbackTarget for Manifest {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// Each object read, made, replaced and deleted (by name, but for create, which RBAC
    /// does not narrow).
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let mut p = Vec::new();
        for o in &self.objects {
            let r = o.kind.resource();
            p.extend(rollback_core::Permission::kubernetes(
                &r.group,
                &r.plural,
                &["get", "create", "update", "delete"],
                &o.namespace,
                Some(&o.name),
            ));
        }
        Some(p)
    }

    fn spec(&self) -> TargetSpec {
        TargetSpec::new(
            KIND,
            ManifestParams {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                objects: self.given.clone(),
                k8s: self.k8s.config.clone(),
            },
        )
    }

    async fn current(&self) -> Result<Revision> {
        Ok(self.current_of(&self.read_all().await?))
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        Ok(self.history_of(&self.current().await?))
    }

    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        let current = self.current().await?;
        resolve_in(&self.id, &self.history_of(&current), &current, selector)
    }

    async fn plan(&self, to: &Revision) -> Result<Change> {
        self.plan_from(&self.read_all().await?, to).await
    }

    /// One read of every object, then the revision the selector picks and the plan (with
    /// the API server's dry runs) from that read.
    async fn prepare(&self, selector: &Selector) -> Result<Change> {
        let live = self.read_all().await?;
        let current = self.current_of(&live);
        let to = resolve_in(&self.id, &self.history_of(&current), &current, selector)?;
        if current.same_state_as(&to) {
            return Ok(Change::new(self.id.clone(), current.clone(), current));
        }
        self.plan_from(&live, &to).await
    }

    /// Every object checked first (each must be as `change.from` or as `change.to` says,
    /// else a conflict and nothing is sent), then moved: to the manifest in its order,
    /// back in the reverse order.
    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        // A `from` this manifest did not make is never where the objects are: a conflict
        // unless they already are at `to`. A `to` it did not make cannot be moved to.
        let from_snapshot = self.goals(&change.from).ok();
        let to_snapshot = self.goals(&change.to)?;
        let live = self.read_all().await?;
        let goals: Vec<(Goal<'_>, Goal<'_>)> = (0..self.objects.len())
            .map(|i| {
                (
                    Self::goal(&change.from, from_snapshot.as_deref(), i),
                    Self::goal(&change.to, Some(&to_snapshot), i),
                )
            })
            .collect();
        let mut pending = Vec::new();
        for (i, (o, l)) in self.objects.iter().zip(&live).enumerate() {
            let (from, to) = goals[i];
            if self.at(o, l.as_ref(), to) {
                continue;
            }
            if !self.at(o, l.as_ref(), from) {
                return Err(self.changed(o, l.as_ref()));
            }
            pending.push(i);
        }
        if pending.is_empty() {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        if change.to.id != APPLIED {
            pending.reverse();
        }
        let mut wrote = false;
        for i in pending {
            let (from, to) = goals[i];
            wrote |= self
                .move_object(&self.objects[i], from, to, live[i].clone())
                .await?;
        }
        Ok(if wrote {
            ApplyOutcome::Applied
        } else {
            ApplyOutcome::AlreadyCurrent
        })
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        let snapshot = self.goals(revision)?;
        let live = self.read_all().await?;
        let mut waiting = None;
        for (i, (o, l)) in self.objects.iter().zip(&live).enumerate() {
            let goal = Self::goal(revision, Some(&snapshot), i);
            if !self.at(o, l.as_ref(), goal) {
                if matches!(goal, Goal::Was(None)) {
                    waiting.get_or_insert(format!("waiting for {} to be deleted", o.shown()));
                    continue;
                }
                return Ok(Stability::Failed(format!(
                    "{} is no longer as revision {} says: someone else changed it while we waited; their change is left as it is",
                    o.shown(),
                    revision.id
                )));
            }
            let (Some(l), ObjectKind::Deployment) = (l, o.kind) else {
                continue;
            };
            let deployment: apps::Deployment = serde_json::from_value(l.clone()).map_err(|e| {
                Error::backend(self.id.to_string(), format!("{}: {e}", o.shown()), false)
            })?;
            match deployment_status(&deployment, None) {
                Ok(RolloutStatus::Done(_)) => {}
                Ok(RolloutStatus::Waiting(m)) => {
                    waiting.get_or_insert(m);
                }
                Err(e) => return Ok(Stability::Failed(format!("{}: {e}", o.shown()))),
            }
        }
        Ok(match waiting {
            Some(m) => Stability::Waiting(m),
            None => Stability::Stable,
        })
    }
}

/// The revision `selector` picks among `history` (`[before, applied]`, or `[applied]`).
fn resolve_in(
    id: &TargetId,
    history: &[Revision],
    current: &Revision,
    selector: &Selector,
) -> Result<Revision> {
    selector
        .resolve(id, history, &current.id)
        .map_err(|e| match e {
            Error::NotFound {
                target,
                what,
                hint,
                source,
            } => Error::NotFound {
                target,
                what,
                hint: format!("{hint}; a manifest's revisions are {APPLIED:?} (the manifest) and {BEFORE:?} (what was there before): choose Exact(\"{APPLIED}\") or Previous"),
                source,
            },
            other => other,
        })
}

pub(crate) fn register(r: &mut Registry, clients: &Clients, defaults: &K8sDefaults) {
    let (clients, defaults) = (clients.clone(), defaults.clone());
    r.register(KIND, move |spec: TargetSpec| {
        let clients = clients.clone();
        let params = defaults.fill(KIND, spec.params);
        async move {
            let p: ManifestParams = TargetSpec::new(KIND, params?).params()?;
            let k8s = clients
                .for_target(&p.k8s, KIND, &p.namespace, &p.name)
                .await?;
            Ok(
                Arc::new(Manifest::new(&k8s, p.namespace, p.name, p.objects)?)
                    as Arc<dyn RollbackTarget>,
            )
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_drops_what_the_server_manages() {
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "m", "namespace": "p", "uid": "u", "resourceVersion": "7", "generation": 2,
                "annotations": {REVISION_ANNOTATION: "3"}},
            "spec": {"replicas": 1}, "status": {"replicas": 1}});
        assert_eq!(
            content(&live),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "m", "namespace": "p"}, "spec": {"replicas": 1}})
        );
    }

    #[test]
    fn an_object_holds_the_manifest_whatever_the_server_added() {
        let want = json!({"spec": {"selector": {"app": "maintenance"}, "ports": [{"port": 80}]}, "metadata": {"labels": {}}});
        let have = json!({"spec": {"selector": {"app": "maintenance"}, "clusterIP": "10.96.0.10",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}});
        assert!(contains(&have, &want));
        let other = json!({"spec": {"selector": {"app": "frontend"}, "ports": [{"port": 80}]}});
        assert!(!contains(&other, &want));
        let more_ports = json!({"spec": {"selector": {"app": "maintenance"}, "ports": [{"port": 80}, {"port": 443}]}});
        assert!(!contains(&more_ports, &want));
    }

    #[test]
    fn diffs_redact_secret_looking_keys_and_name_list_elements() {
        let from = json!({"data": {"mode": "live", "api_token": "hunter2"}, "spec": {"containers": [{"name": "app", "env": [{"name": "DB_PASSWORD", "value": "x1"}]}]}});
        let to = json!({"data": {"mode": "maintenance", "api_token": "hunter3"}, "spec": {"containers": [{"name": "app", "env": [{"name": "DB_PASSWORD", "value": "x2"}]}]}});
        let mut out = Vec::new();
        diff_values("ConfigMap p/c", &from, &to, &mut out);
        let text = Diff { entries: out }.to_string();
        assert!(!text.contains("hunter") && !text.contains("x1"), "{text}");
        assert!(
            text.contains("~ fact ConfigMap p/c data.mode: live -> maintenance"),
            "{text}"
        );
        assert!(
            text.contains("data.api_token: <redacted> -> <redacted>"),
            "{text}"
        );
        assert!(
            text.contains("spec.containers[app].env[DB_PASSWORD].value: <redacted>"),
            "{text}"
        );
    }
}
