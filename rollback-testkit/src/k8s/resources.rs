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
    Lease,
}

impl Kind {
    pub(crate) const ALL: [Kind; 7] = [
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ControllerRevision,
        Kind::Pod,
        Kind::Lease,
    ];

    /// The API groups served under `/apis` (the core group `""` is served under `/api`).
    pub(crate) const GROUPS: [&'static str; 2] = ["apps", COORDINATION];

    /// The URL name (plural, lower case).
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::StatefulSet => "statefulsets",
            Kind::DaemonSet => "daemonsets",
            Kind::ControllerRevision => "controllerrevisions",
            Kind::Pod => "pods",
            Kind::Lease => "leases",
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
            Kind::Lease => "lease",
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
            Kind::Lease => "Lease",
        }
    }

    /// The API group (`""` for core).
    pub(crate) fn group(self) -> &'static str {
        match self {
            Kind::Pod => "",
            Kind::Lease => COORDINATION,
            _ => "apps",
        }
    }

    /// The `apiVersion` field.
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Kind::Pod => "v1",
            Kind::Lease => "coordination.k8s.io/v1",
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
        !matches!(self, Kind::ControllerRevision | Kind::Pod | Kind::Lease)
    }

    /// Whether the resource has a `status` subresource.
    pub(crate) fn has_status(self) -> bool {
        !matches!(self, Kind::ControllerRevision | Kind::Lease)
    }

    /// Whether an update (PUT, or a patch) must carry the stored `metadata.resourceVersion`
    /// (the strategy's `AllowUnconditionalUpdate` is false): a Lease's must, as a real API
    /// server's `leaseStrategy` says, so no client overwrites a holder it has not seen.
    pub(crate) fn update_needs_resource_version(self) -> bool {
        self == Kind::Lease
    }

    /// Whether a PUT to a name that does not exist creates the object (the strategy's
    /// `AllowCreateOnUpdate`): true for Leases only, among the resources served here.
    pub(crate) fn creates_on_update(self) -> bool {
        self == Kind::Lease
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
            Kind::ControllerRevision | Kind::Lease => &[],
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
        Kind::ControllerRevision | Kind::Lease => {}
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
        Kind::Lease => validate_lease_spec(&obj["spec"], name)?,
    }
    Ok(())
}

/// The API group of Leases.
pub(crate) const COORDINATION: &str = "coordination.k8s.io";

/// A Lease's spec by the API server's `ValidateLeaseSpec` (a duration above 0, transitions
/// not negative); a field of the wrong type is a 400, as decoding it fails on a real server.
fn validate_lease_spec(spec: &Value, name: &str) -> Result<(), ApiError> {
    let undecodable = |field: &str, v: &Value, want: &str| {
        ApiError::bad_request(format!(
            "Lease in version \"v1\" cannot be handled as a Lease: spec.{field}: {v} is not {want}"
        ))
    };
    let int = |field: &str| match &spec[field] {
        Value::Null => Ok(None),
        v => v
            .as_i64()
            .filter(|n| i32::try_from(*n).is_ok())
            .map(Some)
            .ok_or_else(|| undecodable(field, v, "a 32-bit integer")),
    };
    let invalid = |field: &str, detail: String| {
        ApiError::invalid(
            Kind::Lease,
            name,
            &format!("spec.{field}: {detail}"),
            &format!("spec.{field}"),
        )
    };
    if let Some(d) = int("leaseDurationSeconds")?.filter(|d| *d <= 0) {
        return Err(invalid(
            "leaseDurationSeconds",
            format!("Invalid value: {d}: must be greater than 0"),
        ));
    }
    if let Some(t) = int("leaseTransitions")?.filter(|t| *t < 0) {
        return Err(invalid(
            "leaseTransitions",
            format!("Invalid value: {t}: must be greater than or equal to 0"),
        ));
    }
    for field in ["acquireTime", "renewTime"] {
        match &spec[field] {
            Value::Null => {}
            Value::String(t) if chrono::DateTime::parse_from_rfc3339(t).is_ok() => {}
            v => return Err(undecodable(field, v, "an RFC 3339 time")),
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
