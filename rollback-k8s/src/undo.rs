//! `kubectl rollout undo` as data: the patch kubectl would send, or why it sends none.
//!
//! The rules are those of kubectl's `pkg/polymorphichelpers/rollback.go`:
//! - Deployment: a JSON patch that replaces `/spec/template` with the chosen ReplicaSet's
//!   pod template (without its `pod-template-hash` label) and `/metadata/annotations` with
//!   the ReplicaSet's annotations, except those in [`ANNOTATIONS_KEPT_FROM_DEPLOYMENT`],
//!   which keep the Deployment's values. A paused Deployment is refused; a Deployment whose
//!   template already equals the revision's (ignoring `pod-template-hash`) needs nothing.
//! - StatefulSet and DaemonSet: the ControllerRevision's data, sent as a strategic merge
//!   patch; nothing when the object's template already equals the recorded one.
//!
//! Templates are compared as kubectl's semantic equality does in practice: absent, null
//! and empty values count as equal. Unlike kubectl's `Semantic.DeepEqual`, resource
//! quantities are compared as written (`1` and `1000m` differ); the API server writes them
//! in canonical form, so objects read from it compare alike.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{json, Value};

use crate::history::{
    annotations, controller_revision_rollback_target, deployment_rollback_target, revision_of,
    HistoryError, POD_TEMPLATE_HASH_LABEL,
};

/// Annotations a Deployment undo keeps from the Deployment instead of taking them from the
/// ReplicaSet (kubectl's `annotationsToSkip`).
pub const ANNOTATIONS_KEPT_FROM_DEPLOYMENT: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// kubectl's refusal to roll back a paused Deployment.
pub const PAUSED_MESSAGE: &str =
    "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again";

/// How a patch body is to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902 JSON patch (a Deployment undo).
    Json,
    /// Kubernetes strategic merge patch (a StatefulSet or DaemonSet undo).
    StrategicMerge,
}

impl PatchType {
    /// The `Content-Type` of a PATCH request with this body.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// The request kubectl sends to undo a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoPatch {
    /// How to send the body.
    pub patch_type: PatchType,
    /// The patch body.
    pub body: Value,
    /// The revision number being restored.
    pub revision: i64,
}

/// What an undo comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum UndoPlan {
    /// Send this patch to the object.
    Patch(UndoPatch),
    /// The object's template already is the revision's; nothing to send.
    AlreadyMatches {
        /// The revision number that already matches.
        revision: i64,
    },
}

impl UndoPlan {
    /// What kubectl prints: `rolled back`, or
    /// `skipped rollback (current template already matches revision N)`.
    ///
    /// N here is the matching revision's number; kubectl prints its `--to-revision` value,
    /// which is 0 when the flag is not given.
    pub fn message(&self) -> String {
        match self {
            UndoPlan::Patch(_) => "rolled back".to_string(),
            UndoPlan::AlreadyMatches { revision } => {
                format!("skipped rollback (current template already matches revision {revision})")
            }
        }
    }
}

/// Why an undo cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoError {
    /// The Deployment is paused ([`PAUSED_MESSAGE`]).
    Paused,
    /// No revision to roll back to (kubectl's history errors).
    History(HistoryError),
    /// The chosen ControllerRevision holds no patch data.
    InvalidRevision(String),
}

impl fmt::Display for UndoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UndoError::Paused => f.write_str(PAUSED_MESSAGE),
            UndoError::History(e) => e.fmt(f),
            UndoError::InvalidRevision(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for UndoError {}

impl From<HistoryError> for UndoError {
    fn from(e: HistoryError) -> Self {
        UndoError::History(e)
    }
}

/// Drops nulls, empty objects and empty arrays, so that "absent", `null`, `{}` and `[]`
/// compare equal (Go's zero values against serde's skipped `None`s).
fn pruned(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let map: serde_json::Map<String, Value> = map
                .into_iter()
                .filter_map(|(k, v)| pruned(v).map(|v| (k, v)))
                .collect();
            (!map.is_empty()).then_some(Value::Object(map))
        }
        Value::Array(items) => {
            let items: Vec<Value> = items
                .into_iter()
                .map(|v| pruned(v).unwrap_or(Value::Null))
                .collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        other => Some(other),
    }
}

fn template_value(template: &PodTemplateSpec) -> Value {
    serde_json::to_value(template).unwrap_or(Value::Null)
}

fn without_hash(mut template: Value) -> Value {
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    template
}

/// Whether two pod templates are equal, ignoring the `pod-template-hash` label (kubectl's
/// `equalIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    pruned(without_hash(template_value(a))) == pruned(without_hash(template_value(b)))
}

/// The annotations a Deployment undo writes (kubectl's rule): the Deployment's own values
/// of [`ANNOTATIONS_KEPT_FROM_DEPLOYMENT`], and every other annotation of the ReplicaSet.
/// Annotations of the Deployment that are neither are dropped.
pub fn undo_annotations(deployment: &Deployment, rs: &ReplicaSet) -> BTreeMap<String, String> {
    let kept = |k: &str| ANNOTATIONS_KEPT_FROM_DEPLOYMENT.contains(&k);
    let mut result: BTreeMap<String, String> = annotations(&deployment.metadata)
        .into_iter()
        .filter(|(k, _)| kept(k))
        .collect();
    result.extend(
        annotations(&rs.metadata)
            .into_iter()
            .filter(|(k, _)| !kept(k)),
    );
    result
}

/// What `kubectl rollout undo` does to `deployment` once it has chosen `rs`: refuse a
/// paused Deployment, skip a template that already matches, or send the JSON patch.
pub fn deployment_undo_patch(
    deployment: &Deployment,
    rs: &ReplicaSet,
) -> Result<UndoPlan, UndoError> {
    let spec = deployment.spec.clone().unwrap_or_default();
    if spec.paused == Some(true) {
        return Err(UndoError::Paused);
    }
    let revision = revision_of(&rs.metadata).unwrap_or(0);
    let rs_template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    if equal_ignore_hash(&rs_template, &spec.template) {
        return Ok(UndoPlan::AlreadyMatches { revision });
    }
    let mut template = rs_template;
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
        if labels.is_empty() {
            // Go's `omitempty` leaves an emptied label map out of the patch.
            template.metadata.as_mut().map(|m| m.labels.take());
        }
    }
    let body = json!([
        {"op": "replace", "path": "/spec/template", "value": template_value(&template)},
        {"op": "replace", "path": "/metadata/annotations", "value": undo_annotations(deployment, rs)},
    ]);
    Ok(UndoPlan::Patch(UndoPatch {
        patch_type: PatchType::Json,
        body,
        revision,
    }))
}

/// `kubectl rollout undo deployment/x [--to-revision=N]` on `deployment` and the
/// ReplicaSets listed for it: choose the revision ([`deployment_rollback_target`]; 0 is
/// kubectl's default, the previous revision), then [`deployment_undo_patch`]. History
/// errors come before the paused check, as in kubectl.
pub fn deployment_undo(
    deployment: &Deployment,
    replica_sets: &[ReplicaSet],
    to_revision: i64,
) -> Result<UndoPlan, UndoError> {
    let rs = deployment_rollback_target(deployment, replica_sets, to_revision)?;
    deployment_undo_patch(deployment, rs)
}

/// What `kubectl rollout undo` does to a StatefulSet or DaemonSet whose template is
/// `current` once it has chosen `revision`: skip when the template already is the one
/// recorded, else send the revision's data as a strategic merge patch.
pub fn controller_revision_undo_patch(
    current: &PodTemplateSpec,
    revision: &ControllerRevision,
) -> Result<UndoPlan, UndoError> {
    let name = revision.metadata.name.as_deref().unwrap_or("");
    let data = revision
        .data
        .as_ref()
        .map(|d| d.0.clone())
        .filter(|d| d.pointer("/spec/template").is_some_and(Value::is_object))
        .ok_or_else(|| {
            UndoError::InvalidRevision(format!(
                "controller revision {name:?} holds no pod template to restore"
            ))
        })?;
    // kubectl compares the revision's data with the patch it would record for the object now.
    let mut now = template_value(current);
    if let Some(map) = now.as_object_mut() {
        map.insert("$patch".into(), Value::from("replace"));
    }
    let now = json!({"spec": {"template": now}});
    if pruned(now) == pruned(data.clone()) {
        return Ok(UndoPlan::AlreadyMatches {
            revision: revision.revision,
        });
    }
    Ok(UndoPlan::Patch(UndoPatch {
        patch_type: PatchType::StrategicMerge,
        body: data,
        revision: revision.revision,
    }))
}

/// `kubectl rollout undo statefulset/x [--to-revision=N]` on `sts` and the
/// ControllerRevisions listed for it.
pub fn statefulset_undo(
    sts: &StatefulSet,
    revisions: &[ControllerRevision],
    to_revision: i64,
) -> Result<UndoPlan, UndoError> {
    let revision = controller_revision_rollback_target(&sts.metadata, revisions, to_revision)?;
    let template = sts
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    controller_revision_undo_patch(&template, revision)
}

/// `kubectl rollout undo daemonset/x [--to-revision=N]` on `ds` and the
/// ControllerRevisions listed for it.
pub fn daemonset_undo(
    ds: &DaemonSet,
    revisions: &[ControllerRevision],
    to_revision: i64,
) -> Result<UndoPlan, UndoError> {
    let revision = controller_revision_rollback_target(&ds.metadata, revisions, to_revision)?;
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    controller_revision_undo_patch(&template, revision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::{controller_revision, deployment, rs, template, DEPLOY_UID};
    use crate::history::{revision_template, CHANGE_CAUSE_ANNOTATION, REVISION_ANNOTATION};
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn with_annotations<'a>(
        meta: &mut ObjectMeta,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        meta.annotations.get_or_insert_with(BTreeMap::new).extend(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
    }

    fn history() -> (Deployment, Vec<ReplicaSet>) {
        let mut d = deployment("repo/web:v3");
        with_annotations(
            &mut d.metadata,
            [
                (REVISION_ANNOTATION, "3"),
                (
                    "kubectl.kubernetes.io/last-applied-configuration",
                    "{\"kind\":\"Deployment\"}",
                ),
                ("team", "payments"),
                (CHANGE_CAUSE_ANNOTATION, "deploy v3"),
            ],
        );
        let mut v2 = rs("web-b2", Some("2"), "repo/web:v2", DEPLOY_UID);
        with_annotations(
            &mut v2.metadata,
            [
                (CHANGE_CAUSE_ANNOTATION, "deploy v2"),
                ("deployment.kubernetes.io/desired-replicas", "3"),
                ("deployment.kubernetes.io/max-replicas", "4"),
                ("deployment.kubernetes.io/revision-history", "1"),
                ("owner", "team-b"),
            ],
        );
        let v3 = rs("web-c3", Some("3"), "repo/web:v3", DEPLOY_UID);
        (d, vec![v2, v3])
    }

    #[test]
    fn deployment_undo_sends_kubectls_json_patch() {
        let (d, sets) = history();
        let plan = deployment_undo(&d, &sets, 0).unwrap();
        assert_eq!(plan.message(), "rolled back");
        let UndoPlan::Patch(patch) = plan else {
            panic!("expected a patch, got {plan:?}")
        };
        assert_eq!(patch.patch_type, PatchType::Json);
        assert_eq!(
            patch.patch_type.content_type(),
            "application/json-patch+json"
        );
        assert_eq!(patch.revision, 2);
        let golden = json!([
            {
                "op": "replace",
                "path": "/spec/template",
                "value": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web",
                        "image": "repo/web:v2",
                        "env": [
                            {"name": "LOG_LEVEL", "value": "info"},
                            {"name": "DB_PASSWORD", "value": "hunter2"}
                        ]
                    }]}
                }
            },
            {
                "op": "replace",
                "path": "/metadata/annotations",
                "value": {
                    "deployment.kubernetes.io/revision": "3",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"kind\":\"Deployment\"}",
                    "kubernetes.io/change-cause": "deploy v2",
                    "owner": "team-b"
                }
            }
        ]);
        assert_eq!(patch.body, golden);
    }

    #[test]
    fn protected_annotations_rule() {
        let (d, sets) = history();
        let a = undo_annotations(&d, &sets[0]);
        // Kept from the Deployment, even though the ReplicaSet has its own revision.
        assert_eq!(a[REVISION_ANNOTATION], "3");
        assert!(a.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        // Protected annotations only on the ReplicaSet are not copied.
        for k in [
            "deployment.kubernetes.io/desired-replicas",
            "deployment.kubernetes.io/max-replicas",
            "deployment.kubernetes.io/revision-history",
        ] {
            assert!(!a.contains_key(k), "{k}");
        }
        // Others come from the ReplicaSet; the Deployment's own are dropped.
        assert_eq!(a[CHANGE_CAUSE_ANNOTATION], "deploy v2");
        assert_eq!(a["owner"], "team-b");
        assert!(!a.contains_key("team"));
        // No annotations at all still replaces them with an empty map, as kubectl does.
        let bare = rs("web-z9", Some("9"), "repo/web:v9", DEPLOY_UID);
        let mut plain = deployment("repo/web:v3");
        plain.metadata.annotations = None;
        let UndoPlan::Patch(p) = deployment_undo_patch(&plain, &bare).unwrap() else {
            panic!("expected a patch")
        };
        assert_eq!(p.body[1]["value"], json!({}));
    }

    #[test]
    fn pod_template_hash_is_removed() {
        let (d, sets) = history();
        assert!(sets[0]
            .spec
            .as_ref()
            .unwrap()
            .template
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap()
            .contains_key(POD_TEMPLATE_HASH_LABEL));
        let UndoPlan::Patch(p) = deployment_undo_patch(&d, &sets[0]).unwrap() else {
            panic!("expected a patch")
        };
        assert_eq!(
            p.body[0]["value"]["metadata"]["labels"],
            json!({"app": "web"})
        );
        // A template whose only label was the hash loses its labels altogether.
        let mut only_hash = sets[0].clone();
        let t = only_hash.spec.as_mut().unwrap().template.as_mut().unwrap();
        t.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .remove("app");
        let UndoPlan::Patch(p) = deployment_undo_patch(&d, &only_hash).unwrap() else {
            panic!("expected a patch")
        };
        assert_eq!(p.body[0]["value"]["metadata"].get("labels"), None);
    }

    #[test]
    fn already_matching_template_is_skipped() {
        let (d, sets) = history();
        // Revision 3 is the Deployment's own template, apart from the hash label.
        let plan = deployment_undo(&d, &sets, 3).unwrap();
        assert_eq!(plan, UndoPlan::AlreadyMatches { revision: 3 });
        assert_eq!(
            plan.message(),
            "skipped rollback (current template already matches revision 3)"
        );
        // Absent and empty values are equal (Go zero values against serde's None).
        let mut a = template("repo/web:v1", Some("h1"));
        let b = template("repo/web:v1", None);
        a.spec.as_mut().unwrap().volumes = Some(vec![]);
        a.metadata.as_mut().unwrap().annotations = Some(BTreeMap::new());
        assert!(equal_ignore_hash(&a, &b));
        assert!(!equal_ignore_hash(&a, &template("repo/web:v2", None)));
    }

    #[test]
    fn paused_deployment_is_refused() {
        let (mut d, sets) = history();
        d.spec.as_mut().unwrap().paused = Some(true);
        let e = deployment_undo(&d, &sets, 0).unwrap_err();
        assert_eq!(e, UndoError::Paused);
        assert_eq!(
            e.to_string(),
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"
        );
        // The history is looked at first, as kubectl does.
        let e = deployment_undo(&d, &sets, 8).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find specified revision 8 in history"
        );
    }

    #[test]
    fn unknown_revision_and_no_history() {
        let (d, sets) = history();
        let e = deployment_undo(&d, &sets, 5).unwrap_err();
        assert_eq!(e, UndoError::History(HistoryError::RevisionNotFound(5)));
        assert_eq!(
            e.to_string(),
            "unable to find specified revision 5 in history"
        );
        let e = deployment_undo(&d, &sets[1..], 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no rollout history found for deployment \"web\""
        );
    }

    fn statefulset(image: &str) -> StatefulSet {
        let recorded = controller_revision("db-x", 1, image, "sts-uid");
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("db".into()),
                uid: Some("sts-uid".into()),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                template: revision_template(&recorded).unwrap(),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn statefulset_undo_sends_the_revision_data() {
        let crs = [
            controller_revision("db-5a", 1, "repo/db:1", "sts-uid"),
            controller_revision("db-6b", 2, "repo/db:2", "sts-uid"),
        ];
        let sts = statefulset("repo/db:2");
        let plan = statefulset_undo(&sts, &crs, 0).unwrap();
        let UndoPlan::Patch(p) = plan else {
            panic!("expected a patch, got {plan:?}")
        };
        assert_eq!(p.patch_type, PatchType::StrategicMerge);
        assert_eq!(
            p.patch_type.content_type(),
            "application/strategic-merge-patch+json"
        );
        assert_eq!(p.revision, 1);
        assert_eq!(
            p.body,
            json!({"spec": {"template": {
                "$patch": "replace",
                "metadata": {"creationTimestamp": null, "labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "repo/db:1", "resources": {}}]}
            }}})
        );
        // The revision in use already matches.
        let plan = statefulset_undo(&sts, &crs, 2).unwrap();
        assert_eq!(plan, UndoPlan::AlreadyMatches { revision: 2 });
        // kubectl's history errors.
        assert_eq!(
            statefulset_undo(&sts, &crs[..1], 0)
                .unwrap_err()
                .to_string(),
            "no last revision to roll back to"
        );
        assert_eq!(
            statefulset_undo(&sts, &crs, 4).unwrap_err().to_string(),
            "unable to find specified revision 4 in history"
        );
    }

    #[test]
    fn daemonset_undo_and_empty_revision_data() {
        let mut crs = vec![
            controller_revision("agent-1", 1, "repo/agent:1", "ds-uid"),
            controller_revision("agent-2", 2, "repo/agent:2", "ds-uid"),
        ];
        let ds = DaemonSet {
            metadata: ObjectMeta {
                name: Some("agent".into()),
                uid: Some("ds-uid".into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::apps::v1::DaemonSetSpec {
                template: revision_template(&crs[1]).unwrap(),
                ..Default::default()
            }),
            status: None,
        };
        let UndoPlan::Patch(p) = daemonset_undo(&ds, &crs, 0).unwrap() else {
            panic!("expected a patch")
        };
        assert_eq!(
            p.body["spec"]["template"]["spec"]["containers"][0]["image"],
            "repo/agent:1"
        );
        crs[0].data = None;
        let e = daemonset_undo(&ds, &crs, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "controller revision \"agent-1\" holds no pod template to restore"
        );
    }
}
