//! Discovery and namespaces: `/version`, `/api`, `/apis`, the resource lists, and
//! namespaces (not stored: every name exists).

use hyper::Method;
use serde_json::{json, Value};

use super::super::errors::ApiError;
use super::super::resources::Kind;
use super::super::state::Sim;
use super::http::{json_response, Req, Resp};

pub(super) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "gitVersion": "v1.33.0-rollback-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// One API group served under `/apis` (only its `v1`).
pub(super) fn api_group(name: &str) -> Value {
    let version = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": [version],
        "preferredVersion": version,
    })
}

pub(super) fn resource_list(group: &str) -> Value {
    let verbs = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    let mut resources = Vec::new();
    for k in Kind::ALL.into_iter().filter(|k| k.group() == group) {
        resources.push(json!({
            "name": k.plural(), "singularName": k.singular(), "namespaced": true,
            "kind": k.kind(), "verbs": verbs, "shortNames": k.short_names(),
            "storageVersionHash": "",
        }));
        if k.has_scale() {
            resources.push(json!({
                "name": format!("{}/scale", k.plural()), "singularName": "", "namespaced": true,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
            }));
        }
        if k.has_status() {
            resources.push(json!({
                "name": format!("{}/status", k.plural()), "singularName": "", "namespaced": true,
                "kind": k.kind(), "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn namespace_object(name: &str) -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// Namespaces are not stored: every name exists.
pub(super) fn namespaces(sim: &Sim, req: &Req, ns: Option<String>) -> Result<Resp, ApiError> {
    if req.method != Method::GET {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    let st = sim.lock();
    Ok(match ns {
        Some(ns) => json_response(200, &namespace_object(&ns)),
        None => {
            let mut names: Vec<String> =
                ["default", "kube-node-lease", "kube-public", "kube-system"]
                    .iter()
                    .map(|s| (*s).to_string())
                    .collect();
            names.extend(st.store.namespaces());
            names.sort();
            names.dedup();
            let items: Vec<Value> = names.iter().map(|n| namespace_object(n)).collect();
            json_response(
                200,
                &json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": st.store.rv().to_string()}, "items": items}),
            )
        }
    })
}
