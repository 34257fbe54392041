//! The resources the simulator serves, their names, defaults and validation.

use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::selector::Selector;

/// A resource type the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ControllerRevision,
    Pod,
}

impl Kind {
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ControllerRevision,
        Kind::Pod,
    ];

    /// The URL name (plural, lower case).
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::StatefulSet => "statefulsets",
            Kind::DaemonSet => "daemonsets",
            Kind::ControllerRevision => "controllerrevisions",
            Kind::Pod => "pods",
        }
    }

    /// The singular name discovery reports.
    pub(crate) fn singular(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::ReplicaSet => "replicaset",
            Kind::StatefulSet => "statefulset",
            Kind::DaemonSet => "daemonset",
            Kind::ControllerRevision => "controllerrevision",
            Kind::Pod => "pod",
        }
    }

    /// The `kind` field.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::ControllerRevision => "ControllerRevision",
            Kind::Pod => "Pod",
        }
    }

    /// The API group (`""` for core).
    pub(crate) fn group(self) -> &'static str {
        match self {
            Kind::Pod => "",
            _ => "apps",
        }
    }

    /// The `apiVersion` field.
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Kind::Pod => "v1",
            _ => "apps/v1",
        }
    }

    /// `deployments.apps` / `pods`, as error messages name a resource.
    pub(crate) fn qualified(self) -> String {
        if self.group().is_empty() {
            self.plural().to_string()
        } else {
            format!("{}.{}", self.plural(), self.group())
        }
    }

    /// `Deployment.apps` / `Pod`, as validation messages name a kind.
    pub(crate) fn qualified_kind(self) -> String {
        if self.group().is_empty() {
            self.kind().to_string()
        } else {
            format!("{}.{}", self.kind(), self.group())
        }
    }

    /// Whether the resource has a `spec` whose changes bump `metadata.generation`.
    pub(crate) fn has_generation(self) -> bool {
        !matches!(self, Kind::ControllerRevision | Kind::Pod)
    }

    /// Whether the resource has a `status` subresource.
    pub(crate) fn has_status(self) -> bool {
        !matches!(self, Kind::ControllerRevision)
    }

    /// Whether the resource has a `scale` subresource.
    pub(crate) fn has_scale(self) -> bool {
        matches!(
            self,
            Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet
        )
    }

    /// Short names discovery reports.
    pub(crate) fn short_names(self) -> &'static [&'static str] {
        match self {
            Kind::Deployment => &["deploy"],
            Kind::ReplicaSet => &["rs"],
            Kind::StatefulSet => &["sts"],
            Kind::DaemonSet => &["ds"],
            Kind::ControllerRevision => &[],
            Kind::Pod => &["po"],
        }
    }

    /// The resource served under `group` with URL name `plural`.
    pub(crate) fn from_path(group: &str, plural: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.group() == group && k.plural() == plural)
    }

    /// Whether a field selector may name `field` for this resource.
    pub(crate) fn supports_field(self, field: &str) -> bool {
        match field {
            "metadata.name" | "metadata.namespace" => true,
            "spec.nodeName"
            | "spec.restartPolicy"
            | "spec.schedulerName"
            | "spec.serviceAccountName"
            | "spec.hostNetwork"
            | "status.phase"
            | "status.podIP"
            | "status.nominatedNodeName" => self == Kind::Pod,
            "status.replicas" => self == Kind::ReplicaSet,
            _ => false,
        }
    }
}

/// Looks up a dotted path (`spec.replicas`) in an object.
pub(crate) fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |v, k| v.get(k))
}

/// The object's name.
pub(crate) fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

/// The object's namespace.
pub(crate) fn namespace_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("")
}

/// The object's uid.
pub(crate) fn uid_of(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or("")
}

/// The object's labels as a map (empty when none).
pub(crate) fn labels_of(obj: &Value) -> Map<String, Value> {
    obj["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// The uid of the object's controller (the owner reference with `controller: true`).
pub(crate) fn controller_uid(obj: &Value) -> Option<&str> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == json!(true))
        .and_then(|r| r["uid"].as_str())
}

/// Whether the object names `uid` among its owners.
pub(crate) fn owned_by(obj: &Value, uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(uid)))
}

/// An owner reference to `owner` marking it as the controller.
pub(crate) fn controller_ref(kind: Kind, owner: &Value) -> Value {
    json!({
        "apiVersion": kind.api_version(),
        "kind": kind.kind(),
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Sets `obj[key]` to `value` unless it is already set (not null).
fn default_field(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

/// The object at `obj[key]`, created (or replaced when not an object) if needed.
/// `obj` must be an object or null.
pub(crate) fn object_at<'a>(obj: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let slot = &mut obj[key];
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// Defaults `spec.<field>` to a `RollingUpdate` strategy whose `rollingUpdate` gets
/// `rolling_update` (when the type is `RollingUpdate`).
fn default_strategy<const N: usize>(
    spec: &mut Map<String, Value>,
    field: &str,
    rolling_update: [(&str, Value); N],
) {
    default_field(spec, field, json!({}));
    if let Some(Value::Object(strategy)) = spec.get_mut(field) {
        default_field(strategy, "type", json!("RollingUpdate"));
        if strategy["type"] == json!("RollingUpdate") {
            default_field(strategy, "rollingUpdate", json!({}));
            if let Some(Value::Object(ru)) = strategy.get_mut("rollingUpdate") {
                for (key, value) in rolling_update {
                    default_field(ru, key, value);
                }
            }
        }
    }
}

/// Applies the API server's defaulting (on create, update and patch).
pub(crate) fn apply_defaults(kind: Kind, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match kind {
        Kind::Deployment => {
            let spec = object_at(obj, "spec");
            default_field(spec, "replicas", json!(1));
            default_field(spec, "revisionHistoryLimit", json!(10));
            default_field(spec, "progressDeadlineSeconds", json!(600));
            default_strategy(
                spec,
                "strategy",
                [("maxUnavailable", json!("25%")), ("maxSurge", json!("25%"))],
            );
        }
        Kind::ReplicaSet => {
            let spec = object_at(obj, "spec");
            default_field(spec, "replicas", json!(1));
        }
        Kind::StatefulSet => {
            let spec = object_at(obj, "spec");
            default_field(spec, "replicas", json!(1));
            default_field(spec, "revisionHistoryLimit", json!(10));
            default_field(spec, "podManagementPolicy", json!("OrderedReady"));
            default_field(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            default_strategy(spec, "updateStrategy", [("partition", json!(0))]);
        }
        Kind::DaemonSet => {
            let spec = object_at(obj, "spec");
            default_field(spec, "revisionHistoryLimit", json!(10));
            default_strategy(
                spec,
                "updateStrategy",
                [("maxUnavailable", json!(1)), ("maxSurge", json!(0))],
            );
        }
        Kind::ControllerRevision => {}
        Kind::Pod => {
            let status = object_at(obj, "status");
            default_field(status, "phase", json!("Pending"));
        }
    }
}

/// Validates what the simulator checks of an object (a small part of the real validation).
pub(crate) fn validate(kind: Kind, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = name_of(obj);
    let invalid = |field: &str, detail: String| {
        ApiError::invalid(kind, name, &format!("{field}: {detail}"), field)
    };
    if name.is_empty() {
        return Err(invalid(
            "metadata.name",
            "Required value: name or generateName is required".into(),
        ));
    }
    if !valid_dns_subdomain(name) {
        return Err(invalid(
            "metadata.name",
            format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    if let Some(labels) = obj["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            if !v.is_string() {
                return Err(invalid(
                    "metadata.labels",
                    format!("Invalid value: label {k} must be a string"),
                ));
            }
        }
    }
    match kind {
        Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet | Kind::DaemonSet => {
            let spec = &obj["spec"];
            if spec["selector"].is_null() {
                return Err(invalid("spec.selector", "Required value".into()));
            }
            let selector = Selector::from_label_selector(&spec["selector"])
                .map_err(|e| invalid("spec.selector", format!("Invalid value: {e}")))?;
            if selector.is_empty() {
                return Err(invalid(
                    "spec.selector",
                    "Invalid value: empty selector is invalid for deployment".into(),
                ));
            }
            let template_labels = &spec["template"]["metadata"]["labels"];
            if !selector.matches(template_labels.as_object().unwrap_or(&Map::new())) {
                return Err(invalid(
                    "spec.template.metadata.labels",
                    format!(
                        "Invalid value: {}: `selector` does not match template `labels`",
                        template_labels
                    ),
                ));
            }
            let containers = spec["template"]["spec"]["containers"].as_array();
            if containers.is_none_or(|c| c.is_empty()) {
                return Err(invalid(
                    "spec.template.spec.containers",
                    "Required value".into(),
                ));
            }
            if let Some(replicas) = spec.get("replicas") {
                if replicas.as_i64().is_none_or(|r| r < 0) {
                    return Err(invalid(
                        "spec.replicas",
                        format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                    ));
                }
            }
            if let Some(old) = old {
                if old["spec"]["selector"] != spec["selector"] && kind != Kind::ReplicaSet {
                    return Err(invalid(
                        "spec.selector",
                        format!("Invalid value: {}: field is immutable", spec["selector"]),
                    ));
                }
            }
        }
        Kind::Pod => {
            let containers = obj["spec"]["containers"].as_array();
            if containers.is_none_or(|c| c.is_empty()) {
                return Err(invalid("spec.containers", "Required value".into()));
            }
        }
        Kind::ControllerRevision => {
            if obj["revision"].as_i64().is_none() {
                return Err(invalid("revision", "Required value".into()));
            }
        }
    }
    Ok(())
}

/// RFC 1123 subdomain: lower case alphanumerics, `-` and `.`, alphanumeric at both ends.
fn valid_dns_subdomain(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 253
        && name.chars().all(ok_char)
        && ends(name.chars().next())
        && ends(name.chars().last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_defaults() {
        let mut d = json!({"spec": {"replicas": 3}});
        apply_defaults(Kind::Deployment, &mut d);
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let mut r = json!({"spec": {"strategy": {"type": "Recreate"}}});
        apply_defaults(Kind::Deployment, &mut r);
        assert!(r["spec"]["strategy"].get("rollingUpdate").is_none());
    }

    #[test]
    fn names() {
        assert!(valid_dns_subdomain("web-1.a"));
        assert!(!valid_dns_subdomain("Web"));
        assert!(!valid_dns_subdomain("-web"));
        assert_eq!(Kind::Deployment.qualified(), "deployments.apps");
        assert_eq!(Kind::Pod.qualified(), "pods");
    }
}
