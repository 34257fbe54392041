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
    ConfigMap,
    Service,
}

impl Kind {
    pub(crate) const ALL: [Kind; 9] = [
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ControllerRevision,
        Kind::Pod,
        Kind::Lease,
        Kind::ConfigMap,
        Kind::Service,
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
            Kind::ConfigMap => "configmaps",
            Kind::Service => "services",
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
            Kind::ConfigMap => "configmap",
            Kind::Service => "service",
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
            Kind::ConfigMap => "ConfigMap",
            Kind::Service => "Service",
        }
    }

    /// The API group (`""` for core).
    pub(crate) fn group(self) -> &'static str {
        match self {
            Kind::Pod | Kind::ConfigMap | Kind::Service => "",
            Kind::Lease => COORDINATION,
            _ => "apps",
        }
    }

    /// The `apiVersion` field.
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Kind::Pod | Kind::ConfigMap | Kind::Service => "v1",
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
        !matches!(
            self,
            Kind::ControllerRevision | Kind::Pod | Kind::Lease | Kind::ConfigMap | Kind::Service
        )
    }

    /// Whether the resource has a `status` subresource.
    pub(crate) fn has_status(self) -> bool {
        !matches!(
            self,
            Kind::ControllerRevision | Kind::Lease | Kind::ConfigMap
        )
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
            Kind::ConfigMap => &["cm"],
            Kind::Service => &["svc"],
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
        Kind::ControllerRevision | Kind::Lease | Kind::ConfigMap => {}
        Kind::Pod => {
            let status = object_at(obj, "status");
            default_field(status, "phase", json!("Pending"));
        }
        Kind::Service => default_service(obj),
    }
}

/// A Service's defaults as the API server sets them: `type: ClusterIP`, `sessionAffinity:
/// None`, `internalTrafficPolicy: Cluster`, single-stack IPv4 (for ClusterIP, NodePort
/// and LoadBalancer Services), and per port `protocol: TCP` and `targetPort` = `port`. The
/// cluster IP itself is allocated on create ([`allocate_cluster_ip`]).
fn default_service(obj: &mut Value) {
    let spec = object_at(obj, "spec");
    default_field(spec, "type", json!("ClusterIP"));
    default_field(spec, "sessionAffinity", json!("None"));
    let external = spec["type"] == json!("ExternalName");
    if !external {
        default_field(spec, "internalTrafficPolicy", json!("Cluster"));
        default_field(spec, "ipFamilies", json!(["IPv4"]));
        default_field(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            default_field(port, "protocol", json!("TCP"));
            let number = port.get("port").cloned().unwrap_or(Value::Null);
            if !number.is_null() {
                default_field(port, "targetPort", number);
            }
        }
    }
}

/// Gives a new Service (not headless, not ExternalName) a free cluster IP from
/// 10.96.0.0/16 when it asks for none, as the API server's allocator does; `used` are the
/// cluster IPs of the Services stored.
pub(crate) fn allocate_cluster_ip<'a>(obj: &mut Value, used: impl Iterator<Item = &'a str>) {
    let spec = &obj["spec"];
    if spec["type"] == json!("ExternalName") {
        return;
    }
    if let Some(ip) = spec["clusterIP"].as_str().filter(|ip| !ip.is_empty()) {
        if obj["spec"]["clusterIPs"].is_null() {
            obj["spec"]["clusterIPs"] = json!([ip]);
        }
        return;
    }
    let used: std::collections::BTreeSet<&str> = used.collect();
    let ip = (10u32..65_534)
        .map(|n| format!("10.96.{}.{}", n / 256, n % 256))
        .find(|ip| !used.contains(ip.as_str()))
        .unwrap_or_else(|| "10.96.255.254".to_string());
    obj["spec"]["clusterIP"] = json!(ip);
    obj["spec"]["clusterIPs"] = json!([ip]);
}

/// A Service update keeps what the server allocated when the new object leaves it out
/// (the API server's `patchAllocatedValues`: a PUT without `clusterIP` keeps the old one,
/// and the node ports of ports that keep their port).
pub(crate) fn keep_allocated_service_values(new: &mut Value, old: &Value) {
    for field in ["clusterIP", "clusterIPs"] {
        let unset = new["spec"][field].is_null() || new["spec"][field] == json!("");
        if unset && !old["spec"][field].is_null() && new["spec"]["type"] != json!("ExternalName") {
            new["spec"][field] = old["spec"][field].clone();
        }
    }
    let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
    if let Some(Value::Array(ports)) = new["spec"].get_mut("ports") {
        for port in ports.iter_mut() {
            if !port["nodePort"].is_null() {
                continue;
            }
            if let Some(old) = old_ports.iter().find(|o| o["port"] == port["port"]) {
                if !old["nodePort"].is_null() {
                    port["nodePort"] = old["nodePort"].clone();
                }
            }
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
        Kind::ConfigMap => validate_config_map(obj, old, name)?,
        Kind::Service => validate_service(obj, old, name)?,
    }
    Ok(())
}

/// A ConfigMap by the API server's `ValidateConfigMap`: keys of `[-._a-zA-Z0-9]` (at most
/// 253 characters, not `.` or `..`), string values, no key in both `data` and
/// `binaryData`, and nothing of an `immutable: true` ConfigMap changed.
fn validate_config_map(obj: &Value, old: Option<&Value>, name: &str) -> Result<(), ApiError> {
    let invalid = |field: &str, detail: String| {
        ApiError::invalid(Kind::ConfigMap, name, &format!("{field}: {detail}"), field)
    };
    let mut seen = std::collections::BTreeSet::new();
    for field in ["data", "binaryData"] {
        match &obj[field] {
            Value::Null => {}
            Value::Object(map) => {
                for (key, value) in map {
                    let ok_key = !key.is_empty()
                        && key.len() <= 253
                        && key != "."
                        && key != ".."
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                    if !ok_key {
                        return Err(invalid(
                            &format!("{field}[{key}]"),
                            format!("Invalid value: \"{key}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"),
                        ));
                    }
                    if !value.is_string() {
                        return Err(ApiError::bad_request(format!(
                            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal {} into Go struct field ConfigMap.{field} of type string",
                            json_type(value)
                        )));
                    }
                    if !seen.insert(key.clone()) {
                        return Err(invalid(
                            &format!("data[{key}]"),
                            format!("Invalid value: \"{key}\": duplicate of key present in binaryData"),
                        ));
                    }
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal {} into Go struct field ConfigMap.{field} of type map[string]string",
                    json_type(other)
                )))
            }
        }
    }
    if let Some(old) = old.filter(|o| o["immutable"] == json!(true)) {
        if old["data"] != obj["data"] || old["binaryData"] != obj["binaryData"] {
            return Err(invalid(
                "data",
                "Forbidden: field is immutable when `immutable` is set".into(),
            ));
        }
        if obj["immutable"] != json!(true) {
            return Err(invalid(
                "immutable",
                "Forbidden: field is immutable when `immutable` is set".into(),
            ));
        }
    }
    Ok(())
}

/// Go's name for a JSON value's type, as decoding errors give it.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A Service by part of the API server's `ValidateService`: a known type, ports (required
/// unless headless or ExternalName) from 1 to 65535 with a known protocol, names on every
/// port when there are several, string selector values, and a cluster IP that does not
/// change on update.
fn validate_service(obj: &Value, old: Option<&Value>, name: &str) -> Result<(), ApiError> {
    let invalid = |field: &str, detail: String| {
        ApiError::invalid(Kind::Service, name, &format!("{field}: {detail}"), field)
    };
    let spec = &obj["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&kind) {
        return Err(invalid(
            "spec.type",
            format!("Unsupported value: \"{kind}\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""),
        ));
    }
    let headless = spec["clusterIP"] == json!("None");
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    if ports.is_empty() && !headless && kind != "ExternalName" {
        return Err(invalid("spec.ports", "Required value".into()));
    }
    for (i, port) in ports.iter().enumerate() {
        match port["port"].as_i64() {
            Some(p) if (1..=65535).contains(&p) => {}
            Some(p) => {
                return Err(invalid(
                    &format!("spec.ports[{i}].port"),
                    format!("Invalid value: {p}: must be between 1 and 65535, inclusive"),
                ))
            }
            None => {
                return Err(invalid(
                    &format!("spec.ports[{i}].port"),
                    "Required value".into(),
                ))
            }
        }
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        if !["TCP", "UDP", "SCTP"].contains(&protocol) {
            return Err(invalid(
                &format!("spec.ports[{i}].protocol"),
                format!("Unsupported value: \"{protocol}\": supported values: \"SCTP\", \"TCP\", \"UDP\""),
            ));
        }
        if ports.len() > 1 && port["name"].as_str().is_none_or(str::is_empty) {
            return Err(invalid(
                &format!("spec.ports[{i}].name"),
                "Required value".into(),
            ));
        }
    }
    if let Some(selector) = spec["selector"].as_object() {
        if let Some((k, _)) = selector.iter().find(|(_, v)| !v.is_string()) {
            return Err(ApiError::bad_request(format!(
                "Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal the value of selector {k} into Go struct field ServiceSpec.spec.selector of type string"
            )));
        }
    }
    if let Some(old) = old {
        let (was, now) = (&old["spec"]["clusterIP"], &spec["clusterIP"]);
        if !was.is_null() && was != now {
            return Err(invalid(
                "spec.clusterIPs[0]",
                format!("Invalid value: {now}: may not change once set"),
            ));
        }
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
