//! Rollout history as kubectl reads it, and the revision `kubectl rollout undo` picks.
//!
//! A Deployment's history is the ReplicaSets it controls, numbered by their
//! `deployment.kubernetes.io/revision` annotation. A StatefulSet's or DaemonSet's history is
//! the ControllerRevisions it controls, numbered by their `revision` field. "Controls" is
//! kubectl's `IsControlledBy`: the object's controller owner reference (the one with
//! `controller: true`) carries the owner's uid.
//!
//! The functions take the objects already listed (kubectl lists them by the owner's label
//! selector, then keeps the controlled ones, as these functions do); they never call the
//! API server.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use rollback_core::Revision;

/// The annotation the deployment controller numbers ReplicaSets (and the Deployment) with.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The annotation that records why a revision was made (`kubectl ... --record`, or set by
/// hand), shown as CHANGE-CAUSE by `kubectl rollout history`.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
/// The label the deployment controller adds to each ReplicaSet's pod template.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// A revision annotation that is not a number (kubectl's `strconv.ParseInt` error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionParseError {
    value: String,
    out_of_range: bool,
}

impl fmt::Display for RevisionParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = if self.out_of_range {
            "value out of range"
        } else {
            "invalid syntax"
        };
        write!(f, "strconv.ParseInt: parsing {:?}: {why}", self.value)
    }
}

impl std::error::Error for RevisionParseError {}

/// The revision number of an object, as kubectl's `deploymentutil.Revision` reads it: the
/// `deployment.kubernetes.io/revision` annotation, and 0 when there is none.
pub fn revision_of(meta: &ObjectMeta) -> Result<i64, RevisionParseError> {
    let Some(value) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
    else {
        return Ok(0);
    };
    value.parse::<i64>().map_err(|e| RevisionParseError {
        value: value.clone(),
        out_of_range: matches!(
            e.kind(),
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
        ),
    })
}

/// Whether `obj`'s controller owner reference points at `owner` (kubectl's
/// `metav1.IsControlledBy`: the first owner reference with `controller: true`, compared by
/// uid).
pub fn is_controlled_by(obj: &ObjectMeta, owner: &ObjectMeta) -> bool {
    obj.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .is_some_and(|r| r.uid == owner.uid.as_deref().unwrap_or(""))
}

/// The ReplicaSets among `replica_sets` that `deployment` controls.
pub fn controlled_replica_sets<'a>(
    deployment: &Deployment,
    replica_sets: &'a [ReplicaSet],
) -> Vec<&'a ReplicaSet> {
    replica_sets
        .iter()
        .filter(|rs| is_controlled_by(&rs.metadata, &deployment.metadata))
        .collect()
}

/// Why no revision could be chosen for an undo; the messages are kubectl's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// `--to-revision=N` names a revision the history does not hold (or N is negative).
    RevisionNotFound(i64),
    /// Undo to the previous revision of a Deployment with fewer than two revisions.
    NoDeploymentHistory {
        /// The Deployment's name.
        name: String,
    },
    /// Undo to the previous revision of a StatefulSet or DaemonSet with fewer than two
    /// ControllerRevisions.
    NoLastRevision,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::RevisionNotFound(n) => {
                write!(f, "unable to find specified revision {n} in history")
            }
            HistoryError::NoDeploymentHistory { name } => {
                write!(f, "no rollout history found for deployment {name:?}")
            }
            HistoryError::NoLastRevision => f.write_str("no last revision to roll back to"),
        }
    }
}

impl std::error::Error for HistoryError {}

fn to_chrono(t: &Time) -> Option<DateTime<Utc>> {
    let nanos = t.0.as_nanosecond();
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(secs, sub)
}

/// A [`Revision`] for one pod template: its images, the names of its environment variables
/// (never their values), when it was made and its change-cause.
fn template_revision(id: i64, meta: &ObjectMeta, template: Option<&PodTemplateSpec>) -> Revision {
    let mut revision = Revision::new(id.to_string());
    revision.created_at = meta.creation_timestamp.as_ref().and_then(to_chrono);
    revision.description = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHANGE_CAUSE_ANNOTATION))
        .filter(|c| !c.is_empty())
        .cloned();
    if let Some(pod) = template.and_then(|t| t.spec.as_ref()) {
        revision.images = pod
            .containers
            .iter()
            .filter_map(|c| c.image.clone())
            .collect();
        let mut keys: Vec<String> = pod
            .containers
            .iter()
            .flat_map(|c| c.env.iter().flatten().map(|e| e.name.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        revision.env_keys = keys;
    }
    revision
}

/// Keeps one entry per revision number (the most recently created one, as kubectl's
/// map ends up holding the newest ReplicaSet) and orders them newest revision first.
fn newest_first<T>(
    mut entries: Vec<(i64, Option<DateTime<Utc>>, String, T)>,
) -> Vec<(i64, Option<DateTime<Utc>>, String, T)> {
    entries.sort_by(|a, b| (b.0, b.1, &b.2).cmp(&(a.0, a.1, &a.2)));
    entries.dedup_by_key(|e| e.0);
    entries
}

/// The rollout history of a Deployment, newest revision first: one [`Revision`] per
/// ReplicaSet it controls, with the id the ReplicaSet's revision number, its images, its
/// change-cause as the description and the facts `replicaset` (its name) and
/// `pod-template-hash`. The ReplicaSet's name is also the revision's
/// [`key`](Revision::key): the controller renumbers a ReplicaSet that a rollback reuses.
///
/// As in `kubectl rollout history`, ReplicaSets whose revision annotation is not a number
/// are left out, and one without the annotation is revision 0.
pub fn deployment_history(deployment: &Deployment, replica_sets: &[ReplicaSet]) -> Vec<Revision> {
    let entries = controlled_replica_sets(deployment, replica_sets)
        .into_iter()
        .filter_map(|rs| {
            let n = revision_of(&rs.metadata).ok()?;
            let created = rs.metadata.creation_timestamp.as_ref().and_then(to_chrono);
            let name = rs.metadata.name.clone().unwrap_or_default();
            Some((n, created, name, rs))
        })
        .collect();
    newest_first(entries)
        .into_iter()
        .map(|(n, _, name, rs)| {
            let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
            let mut revision = template_revision(n, &rs.metadata, template);
            // The deployment controller renumbers a ReplicaSet a rollback reuses; its name
            // (the template's hash) is what stays.
            revision.key = Some(name.clone());
            revision.facts.insert("replicaset".into(), name);
            if let Some(hash) = template
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.as_ref())
                .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))
            {
                revision
                    .facts
                    .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
            }
            revision
        })
        .collect()
}

/// The ReplicaSet `kubectl rollout undo deployment/x [--to-revision=N]` rolls back to
/// (kubectl's `deploymentRevision`).
///
/// `to_revision` 0 is kubectl's default: the ReplicaSet with the second-highest revision
/// number (the deployment controller renumbers a restored ReplicaSet to the highest, so
/// this is the revision before the one in use). A positive `to_revision` is that revision
/// exactly; a negative one is never found.
pub fn deployment_rollback_target<'a>(
    deployment: &Deployment,
    replica_sets: &'a [ReplicaSet],
    to_revision: i64,
) -> Result<&'a ReplicaSet, HistoryError> {
    if to_revision < 0 {
        return Err(HistoryError::RevisionNotFound(to_revision));
    }
    let mut latest: (i64, Option<&ReplicaSet>) = (-1, None);
    let mut previous: (i64, Option<&ReplicaSet>) = (-1, None);
    for rs in controlled_replica_sets(deployment, replica_sets) {
        let Ok(n) = revision_of(&rs.metadata) else {
            continue;
        };
        if to_revision > 0 {
            if n == to_revision {
                return Ok(rs);
            }
        } else if latest.0 < n {
            previous = latest;
            latest = (n, Some(rs));
        } else if previous.0 < n {
            previous = (n, Some(rs));
        }
    }
    if to_revision > 0 {
        return Err(HistoryError::RevisionNotFound(to_revision));
    }
    previous.1.ok_or_else(|| HistoryError::NoDeploymentHistory {
        name: deployment.metadata.name.clone().unwrap_or_default(),
    })
}

/// The ControllerRevisions among `revisions` that `owner` (a StatefulSet's or DaemonSet's
/// metadata) controls.
pub fn controlled_revisions<'a>(
    owner: &ObjectMeta,
    revisions: &'a [ControllerRevision],
) -> Vec<&'a ControllerRevision> {
    revisions
        .iter()
        .filter(|cr| is_controlled_by(&cr.metadata, owner))
        .collect()
}

/// The pod template a ControllerRevision records: its data is the patch
/// `{"spec":{"template":{..., "$patch":"replace"}}}` the StatefulSet and DaemonSet
/// controllers save. `None` when the data does not hold a readable template.
pub fn revision_template(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision
        .data
        .as_ref()?
        .0
        .get("spec")?
        .get("template")?
        .clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// The rollout history of a StatefulSet or DaemonSet (given its metadata), newest revision
/// first: one [`Revision`] per ControllerRevision it controls, with the id its `revision`
/// number, the images of the template it records, its change-cause as the description and
/// the fact `controllerrevision` (its name).
pub fn controller_revision_history(
    owner: &ObjectMeta,
    revisions: &[ControllerRevision],
) -> Vec<Revision> {
    let entries = controlled_revisions(owner, revisions)
        .into_iter()
        .map(|cr| {
            let created = cr.metadata.creation_timestamp.as_ref().and_then(to_chrono);
            let name = cr.metadata.name.clone().unwrap_or_default();
            (cr.revision, created, name, cr)
        })
        .collect();
    newest_first(entries)
        .into_iter()
        .map(|(n, _, name, cr)| {
            let template = revision_template(cr);
            let mut revision = template_revision(n, &cr.metadata, template.as_ref());
            revision.key = Some(name.clone());
            revision.facts.insert("controllerrevision".into(), name);
            revision
        })
        .collect()
}

/// The ControllerRevision `kubectl rollout undo statefulset/x` (or `daemonset/x`)
/// `[--to-revision=N]` rolls back to (kubectl's `findHistory`): with `to_revision` 0 the
/// one with the second-highest revision number, else that revision exactly.
pub fn controller_revision_rollback_target<'a>(
    owner: &ObjectMeta,
    revisions: &'a [ControllerRevision],
    to_revision: i64,
) -> Result<&'a ControllerRevision, HistoryError> {
    if to_revision < 0 {
        return Err(HistoryError::RevisionNotFound(to_revision));
    }
    let mut controlled = controlled_revisions(owner, revisions);
    if to_revision == 0 {
        if controlled.len() <= 1 {
            return Err(HistoryError::NoLastRevision);
        }
        controlled.sort_by_key(|cr| cr.revision);
        return Ok(controlled[controlled.len() - 2]);
    }
    controlled
        .into_iter()
        .find(|cr| cr.revision == to_revision)
        .ok_or(HistoryError::RevisionNotFound(to_revision))
}

/// The annotations of an object, or an empty map.
pub(crate) fn annotations(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.annotations.clone().unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec};
    use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    pub(crate) const DEPLOY_UID: &str = "d-uid";

    pub(crate) fn owned_by(uid: &str) -> Option<Vec<OwnerReference>> {
        Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }])
    }

    pub(crate) fn template(image: &str, hash: Option<&str>) -> PodTemplateSpec {
        let mut labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect();
        if let Some(h) = hash {
            labels.insert(POD_TEMPLATE_HASH_LABEL.into(), h.into());
        }
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    env: Some(vec![
                        EnvVar {
                            name: "LOG_LEVEL".into(),
                            value: Some("info".into()),
                            ..Default::default()
                        },
                        EnvVar {
                            name: "DB_PASSWORD".into(),
                            value: Some("hunter2".into()),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    pub(crate) fn deployment(image: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("prod".into()),
                uid: Some(DEPLOY_UID.into()),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                template: template(image, None),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn ts(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    pub(crate) fn rs(name: &str, revision: Option<&str>, image: &str, owner: &str) -> ReplicaSet {
        let hash = name.rsplit('-').next().unwrap_or(name);
        let mut annotations = BTreeMap::new();
        if let Some(r) = revision {
            annotations.insert(REVISION_ANNOTATION.to_string(), r.to_string());
        }
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("{name}-uid")),
                annotations: Some(annotations),
                owner_references: owned_by(owner),
                creation_timestamp: Some(ts(1_700_000_000 + name.len() as i64)),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                template: Some(template(image, Some(hash))),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn sets() -> Vec<ReplicaSet> {
        let mut v2 = rs("web-b2", Some("2"), "repo/web:v2", DEPLOY_UID);
        v2.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(CHANGE_CAUSE_ANNOTATION.into(), "deploy v2".into());
        vec![
            rs("web-a1", Some("1"), "repo/web:v1", DEPLOY_UID),
            rs("web-c3", Some("3"), "repo/web:v3", DEPLOY_UID),
            v2,
            rs("other-x9", Some("7"), "repo/other:v7", "someone-else"),
            rs("web-bad", Some("x"), "repo/web:bad", DEPLOY_UID),
        ]
    }

    #[test]
    fn revision_annotation_as_kubectl_reads_it() {
        let mut meta = ObjectMeta::default();
        assert_eq!(revision_of(&meta), Ok(0));
        meta.annotations = Some(
            [(
                REVISION_ANNOTATION.to_string(),
                "99999999999999999999".to_string(),
            )]
            .into_iter()
            .collect(),
        );
        assert_eq!(
            revision_of(&meta).unwrap_err().to_string(),
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
    }

    #[test]
    fn controlled_means_controller_reference_with_the_owners_uid() {
        let d = deployment("repo/web:v3");
        let mut not_controller = rs("web-n1", Some("1"), "i", DEPLOY_UID);
        not_controller.metadata.owner_references.as_mut().unwrap()[0].controller = None;
        let orphan = ReplicaSet {
            metadata: ObjectMeta {
                owner_references: None,
                ..not_controller.metadata.clone()
            },
            ..not_controller.clone()
        };
        let mine = rs("web-m1", Some("1"), "i", DEPLOY_UID);
        let all = [not_controller, orphan, mine];
        let names: Vec<_> = controlled_replica_sets(&d, &all)
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["web-m1"]);
    }

    #[test]
    fn deployment_history_newest_first() {
        let h = deployment_history(&deployment("repo/web:v3"), &sets());
        let ids: Vec<_> = h.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["3", "2", "1"]);
        assert_eq!(h[1].images, ["repo/web:v2"]);
        assert_eq!(h[1].description.as_deref(), Some("deploy v2"));
        assert_eq!(h[1].facts["replicaset"], "web-b2");
        assert_eq!(h[1].facts[POD_TEMPLATE_HASH_LABEL], "b2");
        assert_eq!(h[1].env_keys, ["DB_PASSWORD", "LOG_LEVEL"]);
        assert_eq!(
            h[1].created_at.unwrap().timestamp(),
            1_700_000_000 + "web-b2".len() as i64
        );
        assert_eq!(h[0].description, None);
        let text = format!("{h:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn deployment_rollback_target_as_kubectl() {
        let d = deployment("repo/web:v3");
        let all = sets();
        let name = |r: &ReplicaSet| r.metadata.name.clone().unwrap();
        assert_eq!(
            name(deployment_rollback_target(&d, &all, 0).unwrap()),
            "web-b2"
        );
        assert_eq!(
            name(deployment_rollback_target(&d, &all, 1).unwrap()),
            "web-a1"
        );
        assert_eq!(
            name(deployment_rollback_target(&d, &all, 3).unwrap()),
            "web-c3"
        );
        // Another Deployment's ReplicaSet is not in the history.
        let e = deployment_rollback_target(&d, &all, 7).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find specified revision 7 in history"
        );
        let e = deployment_rollback_target(&d, &all, -1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find specified revision -1 in history"
        );
        let e = deployment_rollback_target(&d, &all[1..2], 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no rollout history found for deployment \"web\""
        );
        let e = deployment_rollback_target(&d, &[], 0).unwrap_err();
        assert!(matches!(e, HistoryError::NoDeploymentHistory { .. }));
        // Without a revision annotation a ReplicaSet is revision 0, and may be "previous".
        let legacy = [
            rs("web-l0", None, "repo/web:v0", DEPLOY_UID),
            rs("web-c3", Some("3"), "repo/web:v3", DEPLOY_UID),
        ];
        assert_eq!(
            name(deployment_rollback_target(&d, &legacy, 0).unwrap()),
            "web-l0"
        );
    }

    pub(crate) fn controller_revision(
        name: &str,
        revision: i64,
        image: &str,
        owner: &str,
    ) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                owner_references: owned_by(owner),
                creation_timestamp: Some(ts(1_700_000_000 + revision)),
                annotations: Some(
                    [(
                        CHANGE_CAUSE_ANNOTATION.to_string(),
                        format!("rev {revision}"),
                    )]
                    .into_iter()
                    .collect(),
                ),
                ..Default::default()
            },
            revision,
            data: Some(RawExtension(json!({
                "spec": {"template": {
                    "$patch": "replace",
                    "metadata": {"creationTimestamp": null, "labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": image, "resources": {}}]}
                }}
            }))),
        }
    }

    #[test]
    fn controller_revision_history_and_target() {
        let owner = ObjectMeta {
            name: Some("db".into()),
            uid: Some("sts-uid".into()),
            ..Default::default()
        };
        let crs = [
            controller_revision("db-7c", 3, "repo/db:3", "sts-uid"),
            controller_revision("db-5a", 1, "repo/db:1", "sts-uid"),
            controller_revision("db-6b", 2, "repo/db:2", "sts-uid"),
            controller_revision("x-1", 9, "repo/x:9", "other"),
        ];
        let h = controller_revision_history(&owner, &crs);
        let ids: Vec<_> = h.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["3", "2", "1"]);
        assert_eq!(h[0].images, ["repo/db:3"]);
        assert_eq!(h[0].facts["controllerrevision"], "db-7c");
        assert_eq!(h[0].description.as_deref(), Some("rev 3"));
        assert!(h[0].has_image_tag("3"));

        let target = |n| {
            controller_revision_rollback_target(&owner, &crs, n)
                .map(|cr| cr.metadata.name.clone().unwrap())
        };
        assert_eq!(target(0).unwrap(), "db-6b");
        assert_eq!(target(1).unwrap(), "db-5a");
        assert_eq!(
            target(9).unwrap_err().to_string(),
            "unable to find specified revision 9 in history"
        );
        let e = controller_revision_rollback_target(&owner, &crs[..1], 0).unwrap_err();
        assert_eq!(e.to_string(), "no last revision to roll back to");
        // kubectl checks "no last revision" before looking for an exact one only for 0.
        assert_eq!(
            controller_revision_rollback_target(&owner, &crs[..1], 3)
                .unwrap()
                .revision,
            3
        );
    }
}
