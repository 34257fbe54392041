//! RBAC, when the simulator is given Roles (`POST /_sim/rbac` with a `v1 List` of Roles, as
//! `rollback policy --format rbac` prints it): every namespaced API call must be allowed by
//! a rule of its namespace's Role (API group, resource with its subresource, verb, and
//! `resourceNames` where the rule has them), else it is answered 403 `Forbidden` as the
//! API server words it. Calls outside namespaces (discovery, `/version`) are allowed;
//! `DELETE /_sim/rbac` (or `reset`) turns RBAC off.

use hyper::Method;
use serde_json::{json, Value};

use super::super::errors::ApiError;
use super::http::Req;
use super::routing::{Route, Sub};

/// The user the simulator's Forbidden messages name.
const USER: &str = "rollback";

/// Checks that `roles` is a List of Roles with namespaces and rules.
pub(super) fn parse(roles: &Value) -> Result<Value, String> {
    let items = roles["items"]
        .as_array()
        .ok_or("rbac needs a v1 List of Roles: {\"kind\": \"List\", \"items\": [...]}")?;
    for r in items {
        if r["kind"] != "Role" || r["metadata"]["namespace"].as_str().is_none() {
            return Err(format!("not a namespaced Role: {r}"));
        }
        if !r["rules"].is_array() {
            return Err(format!("a Role without rules: {r}"));
        }
    }
    Ok(roles.clone())
}

/// The RBAC attributes of a request: (namespace, group, resource, verb, name).
fn attributes(
    req: &Req,
    route: &Route,
) -> Option<(String, String, String, String, Option<String>)> {
    let (kind, ns, name, sub, watch) = match route {
        Route::Collection { kind, ns, watch } => (*kind, ns.clone()?, None, None, *watch),
        Route::Object {
            kind,
            ns,
            name,
            sub,
            watch,
        } => (*kind, ns.clone(), Some(name.clone()), *sub, *watch),
        _ => return None,
    };
    let resource = match sub {
        Some(Sub::Status) => format!("{}/status", kind.plural()),
        Some(Sub::Scale) => format!("{}/scale", kind.plural()),
        None => kind.plural().to_string(),
    };
    let verb = match (&req.method, &name) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, Some(_)) => "get",
        (&Method::GET, None) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, Some(_)) => "delete",
        (&Method::DELETE, None) => "deletecollection",
        _ => return None,
    };
    // A watch of one object is a list-watch with a field selector in RBAC's eyes, but
    // kube-rs and kubectl watch collections; a named watch keeps its name.
    Some((
        ns,
        kind.group().to_string(),
        resource,
        verb.to_string(),
        name,
    ))
}

fn allows(rule: &Value, group: &str, resource: &str, verb: &str, name: Option<&str>) -> bool {
    let has = |field: &str, v: &str| {
        rule[field]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == v || x == "*"))
    };
    has("apiGroups", group)
        && has("resources", resource)
        && has("verbs", verb)
        && match rule.get("resourceNames").and_then(Value::as_array) {
            None => true,
            Some(names) if names.is_empty() => true,
            Some(names) => name.is_some_and(|n| names.iter().any(|x| x == n)),
        }
}

/// `None` when `roles` allow the call, else the Forbidden answer.
pub(super) fn check(roles: &Value, req: &Req, route: &Route) -> Option<ApiError> {
    let (ns, group, resource, verb, name) = attributes(req, route)?;
    let allowed = roles["items"].as_array().is_some_and(|items| {
        items
            .iter()
            .filter(|r| r["metadata"]["namespace"] == ns.as_str())
            .flat_map(|r| r["rules"].as_array().cloned().unwrap_or_default())
            .any(|rule| allows(&rule, &group, &resource, &verb, name.as_deref()))
    });
    if allowed {
        return None;
    }
    let qualified = if group.is_empty() {
        resource.clone()
    } else {
        format!("{resource}.{group}")
    };
    let what = match &name {
        Some(n) => format!("{qualified} \"{n}\" is forbidden"),
        None => format!("{qualified} is forbidden"),
    };
    let message = format!(
        "{what}: User \"{USER}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" in the namespace \"{ns}\""
    );
    let mut details = json!({"kind": resource});
    if let Some(n) = &name {
        details["name"] = json!(n);
    }
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    Some(ApiError::forbidden(message, details))
}
