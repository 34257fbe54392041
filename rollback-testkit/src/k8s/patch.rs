//! The three patch types the API server takes.
//!
//! - `application/json-patch+json`: RFC 6902 (the `json-patch` crate), atomic, `test` included.
//! - `application/merge-patch+json`: RFC 7386.
//! - `application/strategic-merge-patch+json`: merge-patch semantics plus the directives
//!   `"$patch": "replace"` / `"$patch": "delete"` on maps, `{"$patch": "replace"}` and
//!   `{"$patch": "delete", key}` elements in lists, and lists of the pod API merged by their
//!   merge key (containers by `name`, a container's ports by `containerPort`, a Service's
//!   ports by `port`, ...). Other lists are replaced wholesale. `$setElementOrder`,
//!   `$retainKeys` and `$deleteFromPrimitiveList` are ignored.

use serde_json::{Map, Value};

use super::errors::ApiError;

/// Which patch a request carries (from its content type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Json,
    Merge,
    Strategic,
}

impl PatchType {
    /// The patch type of a content type, or the 415 error the server answers.
    pub(crate) fn from_content_type(ct: &str) -> Result<PatchType, ApiError> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            _ => Err(ApiError::unsupported_media_type(base)),
        }
    }
}

/// Applies `patch` (raw body) of type `pt` to `doc`.
pub(crate) fn apply(pt: PatchType, doc: &mut Value, body: &[u8]) -> Result<(), ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match pt {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(doc, &ops).map_err(|e| ApiError::patch_failed(&e.to_string()))
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "a merge patch for an object must be a JSON object",
                ));
            }
            merge_patch(doc, &patch);
            Ok(())
        }
        PatchType::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            strategic_merge(doc, &patch);
            Ok(())
        }
    }
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(doc: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    if let Value::Object(d) = doc {
        for (k, v) in p {
            if v.is_null() {
                d.remove(k);
            } else {
                merge_patch(d.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The merge key of a list field of the pod / workload API, by field name.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// The merge key of the list field `field` whose patch elements are `items`: a Service's
/// `ports` (elements with `port` and no `containerPort`) merge by `port`, a container's by
/// `containerPort`.
fn list_merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    let key = merge_key(field)?;
    let service_ports = field == "ports"
        && items
            .iter()
            .filter(|e| directive(e).is_none() || e.get("port").is_some())
            .all(|e| e.get("port").is_some() && e.get("containerPort").is_none());
    Some(if service_ports && !items.is_empty() {
        "port"
    } else {
        key
    })
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

/// Without the `$patch` directive and other `$` keys, recursively.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|e| directive(e).is_none())
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Strategic merge patch (see the module docs for what is covered).
pub(crate) fn strategic_merge(doc: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *doc = strip_directives(patch);
        return;
    };
    match directive(patch) {
        Some("replace") => {
            *doc = strip_directives(patch);
            return;
        }
        Some("delete") => {
            *doc = Value::Object(Map::new());
            return;
        }
        _ => {}
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Value::Object(d) = doc else { return };
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() || directive(v) == Some("delete") {
            d.remove(k);
            continue;
        }
        match v {
            Value::Object(_) => {
                strategic_merge(d.entry(k.clone()).or_insert(Value::Null), v);
            }
            Value::Array(items) => match (list_merge_key(k, items), d.get_mut(k)) {
                (Some(key), Some(Value::Array(existing))) => merge_list(existing, items, key),
                _ => {
                    d.insert(k.clone(), strip_directives(v));
                }
            },
            _ => {
                d.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Merges a list of maps by `key`.
fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    if items.iter().any(|e| directive(e) == Some("replace")) {
        *existing = items
            .iter()
            .filter(|e| directive(e).is_none())
            .map(strip_directives)
            .collect();
        return;
    }
    for item in items {
        let Some(k) = item.get(key) else {
            // Not a keyed element: the list is treated as atomic.
            *existing = items.iter().map(strip_directives).collect();
            return;
        };
        let pos = existing.iter().position(|e| e.get(key) == Some(k));
        match (directive(item), pos) {
            (Some("delete"), Some(i)) => {
                existing.remove(i);
            }
            (Some("delete"), None) => {}
            (Some("replace"), Some(i)) => existing[i] = strip_directives(item),
            (_, Some(i)) => strategic_merge(&mut existing[i], item),
            (_, None) => existing.push(strip_directives(item)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut d = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut d, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(d, json!({"a": "z", "c": {"d": "e"}}));
        let mut d = json!({"a": [1, 2]});
        merge_patch(&mut d, &json!({"a": [3]}));
        assert_eq!(d, json!({"a": [3]}));
    }

    #[test]
    fn strategic_replace_directive() {
        let mut d = json!({"spec": {"replicas": 2, "template": {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}}}});
        strategic_merge(
            &mut d,
            &json!({"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"a": "1"}}}}}),
        );
        assert_eq!(
            d,
            json!({"spec": {"replicas": 2, "template": {"metadata": {"labels": {"a": "1"}}}}})
        );
    }

    #[test]
    fn strategic_lists_merge_by_key() {
        let mut d = json!({"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "side", "image": "s:1"}
        ]});
        strategic_merge(
            &mut d,
            &json!({"containers": [{"name": "app", "image": "a:2"}, {"name": "side", "$patch": "delete"}, {"name": "new", "image": "n:1"}]}),
        );
        assert_eq!(
            d,
            json!({"containers": [
                {"name": "app", "image": "a:2", "env": [{"name": "X", "value": "1"}]},
                {"name": "new", "image": "n:1"}
            ]})
        );
        let mut d = json!({"args": ["a", "b"], "labels": {"x": "1"}});
        strategic_merge(
            &mut d,
            &json!({"args": ["c"], "labels": {"$patch": "delete"}}),
        );
        assert_eq!(d, json!({"args": ["c"]}));
    }

    #[test]
    fn service_ports_merge_by_port() {
        let mut d = json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "protocol": "TCP"}
        ], "selector": {"app": "web"}}});
        strategic_merge(
            &mut d,
            &json!({"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 443}], "ports": [{"port": 80, "targetPort": 9090}], "selector": {"app": "maintenance"}}}),
        );
        assert_eq!(
            d,
            json!({"spec": {"ports": [
                {"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"},
                {"name": "https", "port": 443, "protocol": "TCP"}
            ], "selector": {"app": "maintenance"}}})
        );
    }

    #[test]
    fn json_patch_test_failure_is_422_and_atomic() {
        let mut d = json!({"metadata": {"resourceVersion": "5"}, "spec": {"replicas": 1}});
        let body = br#"[{"op":"replace","path":"/spec/replicas","value":3},{"op":"test","path":"/metadata/resourceVersion","value":"4"}]"#;
        let err = apply(PatchType::Json, &mut d, body).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml")
                .unwrap_err()
                .code,
            415
        );
    }
}
