//! Reads: get (an object or its scale), list (label and field selectors, `limit` /
//! `continue`).

use serde_json::{json, Value};

use super::super::errors::ApiError;
use super::super::resources::{name_of, namespace_of, Kind};
use super::super::selector::{FieldSelector, Selector};
use super::super::state::{Sim, State};
use super::http::{json_response, Req, Resp};
use super::routing::Sub;

/// GET of one object, or of its scale subresource.
pub(super) fn get(
    st: &State,
    kind: Kind,
    ns: &str,
    name: &str,
    sub: Option<Sub>,
) -> Result<Resp, ApiError> {
    let stored = get_stored(st, kind, ns, name)?;
    Ok(json_response(
        200,
        &match sub {
            Some(Sub::Scale) => scale_of(&stored),
            _ => stored,
        },
    ))
}

pub(super) fn selectors(req: &Req, kind: Kind) -> Result<(Selector, FieldSelector), ApiError> {
    let label = Selector::parse(req.param("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let field = FieldSelector::parse(req.param("fieldSelector").unwrap_or(""), kind)
        .map_err(ApiError::bad_request)?;
    Ok((label, field))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

pub(super) fn list(sim: &Sim, req: &Req, kind: Kind, ns: Option<&str>) -> Result<Resp, ApiError> {
    let (label, field) = selectors(req, kind)?;
    let after = match req.param("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(unhex(token).ok_or_else(|| {
            ApiError::bad_request("continue key is not valid: illegal base64 data")
        })?),
        None => None,
    };
    let limit = req
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let st = sim.lock();
    let matching: Vec<&Value> = st
        .store
        .list(kind, ns)
        .filter(|o| label.matches_object(o) && field.matches(o))
        .filter(|o| {
            after
                .as_deref()
                .is_none_or(|a| format!("{}/{}", namespace_of(o), name_of(o)).as_str() > a)
        })
        .collect();
    let take = limit.unwrap_or(matching.len()).min(matching.len());
    let mut meta = json!({"resourceVersion": st.store.rv().to_string()});
    if take < matching.len() {
        let last = matching[take - 1];
        meta["continue"] = json!(hex(&format!("{}/{}", namespace_of(last), name_of(last))));
        meta["remainingItemCount"] = json!(matching.len() - take);
    }
    let items: Vec<Value> = matching[..take].iter().map(|o| (*o).clone()).collect();
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", kind.kind()),
            "apiVersion": kind.api_version(),
            "metadata": meta,
            "items": items,
        }),
    ))
}

pub(super) fn get_stored(st: &State, kind: Kind, ns: &str, name: &str) -> Result<Value, ApiError> {
    st.store
        .get(kind, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(kind, name))
}

pub(super) fn scale_of(obj: &Value) -> Value {
    let selector = Selector::from_label_selector(&obj["spec"]["selector"])
        .map(|s| s.to_text())
        .unwrap_or_default();
    let m = &obj["metadata"];
    let mut scale = json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    });
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(0);
    if replicas != 0 {
        scale["spec"]["replicas"] = json!(replicas);
    }
    scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens() {
        assert_eq!(unhex(&hex("ns/name")).as_deref(), Some("ns/name"));
    }
}
