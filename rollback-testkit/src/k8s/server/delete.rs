//! Deletes: one object (preconditions, propagation policy, dry run) or a collection,
//! cascading to the objects they own.

use serde_json::{json, Value};

use super::super::errors::ApiError;
use super::super::resources::{name_of, uid_of, Kind};
use super::super::state::{Sim, State};
use super::http::{json_response, Req, Resp};
use super::read::{get_stored, selectors};
use super::write::rv_of;

/// DELETE of one object.
pub(super) fn object(
    st: &mut State,
    req: &Req,
    kind: Kind,
    ns: &str,
    name: &str,
) -> Result<Resp, ApiError> {
    let stored = get_stored(st, kind, ns, name)?;
    let opts: Value = if req.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    if let Some(rv) = opts["preconditions"]["resourceVersion"].as_str() {
        if rv != rv_of(&stored) {
            return Err(ApiError::conflict_message(
                    kind,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        rv_of(&stored)
                    ),
                ));
        }
    }
    if let Some(uid) = opts["preconditions"]["uid"].as_str() {
        if uid != uid_of(&stored) {
            return Err(ApiError::conflict_message(
                kind,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    uid_of(&stored)
                ),
            ));
        }
    }
    let policy = req
        .param("propagationPolicy")
        .or(opts["propagationPolicy"].as_str())
        .unwrap_or("Background");
    let orphan = policy == "Orphan" || opts["orphanDependents"] == json!(true);
    let dry = req.dry_run() || opts["dryRun"].as_array().is_some_and(|a| !a.is_empty());
    let deleted = if dry {
        stored
    } else {
        st.store
            .remove_cascade(kind, ns, name, orphan)
            .unwrap_or(stored)
    };
    Ok(json_response(200, &deleted_answer(kind, &deleted)))
}

/// What DELETE answers: pods and Services return the object (a Service's registry sets
/// `ReturnDeletedObject`), the other resources a Success Status.
fn deleted_answer(kind: Kind, deleted: &Value) -> Value {
    if matches!(kind, Kind::Pod | Kind::Service) {
        return deleted.clone();
    }
    let mut details =
        json!({"name": name_of(deleted), "kind": kind.plural(), "uid": uid_of(deleted)});
    if !kind.group().is_empty() {
        details["group"] = json!(kind.group());
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// DELETE of a collection (label and field selectors).
pub(super) fn collection(sim: &Sim, req: &Req, kind: Kind, ns: &str) -> Result<Resp, ApiError> {
    let (label, field) = selectors(req, kind)?;
    let mut st = sim.lock();
    let names: Vec<String> = st
        .store
        .list(kind, Some(ns))
        .filter(|o| label.matches_object(o) && field.matches(o))
        .map(|o| name_of(o).to_string())
        .collect();
    let orphan = req.param("propagationPolicy") == Some("Orphan");
    let mut items = Vec::new();
    for n in names {
        let removed = if req.dry_run() {
            st.store.get(kind, ns, &n).cloned()
        } else {
            st.store.remove_cascade(kind, ns, &n, orphan)
        };
        items.extend(removed);
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", kind.kind()),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": st.store.rv().to_string()},
            "items": items,
        }),
    ))
}
