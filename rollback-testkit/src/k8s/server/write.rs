//! Writes: create, replace (PUT) and patch of an object, its status or its scale, with
//! the API server's defaults, validation and optimistic concurrency.

use serde_json::{json, Value};

use super::super::errors::ApiError;
use super::super::hash::random_suffix;
use super::super::patch::{self, PatchType};
use super::super::resources::{
    allocate_cluster_ip, apply_defaults, keep_allocated_service_values, name_of, namespace_of,
    uid_of, validate, Kind,
};
use super::super::state::{Sim, State};
use super::http::{json_response, Req, Resp};
use super::read::{get_stored, scale_of};
use super::routing::Sub;

pub(super) fn rv_of(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"].as_str().unwrap_or("")
}

/// What a write stores: defaults applied, then validated.
fn prepare(kind: Kind, obj: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
    apply_defaults(kind, obj);
    validate(kind, obj, old)?;
    if let (Some(old), Kind::ControllerRevision) = (old, kind) {
        if old["data"] != obj["data"] {
            return Err(ApiError::invalid(
                kind,
                name_of(obj),
                "data: Invalid value: field is immutable",
                "data",
            ));
        }
    }
    Ok(())
}

fn check_identity(
    req_kind: Kind,
    obj: &Value,
    ns: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(k) = obj["kind"].as_str() {
        if k != req_kind.kind() {
            return Err(ApiError::bad_request(format!(
                "the kind in the body ({k}) does not match the resource {} on the URL",
                req_kind.plural()
            )));
        }
    }
    if let Some(v) = obj["apiVersion"].as_str() {
        if v != req_kind.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                req_kind.api_version()
            )));
        }
    }
    let body_ns = namespace_of(obj);
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let Some(name) = name {
        let body_name = name_of(obj);
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    Ok(())
}

pub(super) fn create(sim: &Sim, req: &Req, kind: Kind, ns: &str) -> Result<Resp, ApiError> {
    let obj = req.json_body()?;
    check_identity(kind, &obj, ns, None)?;
    if !rv_of(&obj).is_empty() {
        return Err(ApiError {
            code: 500,
            reason: "InternalError",
            message: "Internal error occurred: resourceVersion should not be set on objects to be created".into(),
            details: None,
            retry_after: None,
        });
    }
    let mut st = sim.lock();
    insert_new(&mut st, req, kind, ns, obj)
}

/// Stores a new object (a create, or a PUT that creates): server-managed metadata set,
/// defaults, validation, 409 `AlreadyExists` for a name in use; answers 201.
fn insert_new(
    st: &mut State,
    req: &Req,
    kind: Kind,
    ns: &str,
    mut obj: Value,
) -> Result<Resp, ApiError> {
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["namespace"] = json!(ns);
    if name_of(&obj).is_empty() {
        if let Some(prefix) = obj["metadata"]["generateName"].as_str() {
            obj["metadata"]["name"] = json!(format!("{prefix}{}", random_suffix(5)));
        }
    }
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("managedFields");
        m.remove("uid");
        m.remove("generation");
        m.remove("creationTimestamp");
        m.remove("resourceVersion");
    }
    match kind {
        Kind::Pod => obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"}),
        Kind::Service => obj["status"] = json!({"loadBalancer": {}}),
        k if k.has_status() => obj["status"] = json!({}),
        _ => {}
    }
    prepare(kind, &mut obj, None)?;
    if kind == Kind::Service {
        let used = st
            .store
            .list(Kind::Service, None)
            .filter_map(|s| s["spec"]["clusterIP"].as_str());
        allocate_cluster_ip(&mut obj, used);
    }
    if st.store.get(kind, ns, name_of(&obj)).is_some() {
        return Err(ApiError::already_exists(kind, name_of(&obj)));
    }
    if req.dry_run() {
        obj["kind"] = json!(kind.kind());
        obj["apiVersion"] = json!(kind.api_version());
        obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        obj["metadata"]["creationTimestamp"] =
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        if kind.has_generation() {
            obj["metadata"]["generation"] = json!(1);
        }
        return Ok(json_response(201, &obj));
    }
    let stored = st.store.create(kind, obj);
    Ok(json_response(201, &stored))
}

/// Optimistic concurrency: a resourceVersion in the body must be the stored one; a
/// resource whose updates need one (Leases) refuses an update without it.
fn check_resource_version(kind: Kind, stored: &Value, new: &Value) -> Result<(), ApiError> {
    let rv = rv_of(new);
    if rv.is_empty() && kind.update_needs_resource_version() {
        return Err(ApiError::resource_version_required(kind, name_of(stored)));
    }
    if !rv.is_empty() && rv != rv_of(stored) {
        return Err(ApiError::conflict(kind, name_of(stored)));
    }
    Ok(())
}

/// Stores `obj` in place of `stored` and returns what is stored, or returns `obj` for a
/// dry run.
fn store(st: &mut State, req: &Req, kind: Kind, stored: &Value, obj: Value) -> Value {
    if req.dry_run() {
        return obj;
    }
    st.store.update(kind, obj).unwrap_or_else(|| stored.clone())
}

/// Stores `new` in place of `stored` (a main-endpoint write: status kept) after the
/// optimistic-concurrency check on the resourceVersion `new` carries.
fn write_main(
    st: &mut State,
    req: &Req,
    kind: Kind,
    stored: &Value,
    mut new: Value,
) -> Result<Value, ApiError> {
    let name = name_of(stored).to_string();
    check_resource_version(kind, stored, &new)?;
    let uid = new["metadata"]["uid"].as_str().unwrap_or("");
    if !uid.is_empty() && uid != uid_of(stored) {
        return Err(ApiError::conflict_message(
            kind,
            &name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                uid_of(stored)
            ),
        ));
    }
    if name_of(&new) != name || namespace_of(&new) != namespace_of(stored) {
        return Err(ApiError::invalid(
            kind,
            &name,
            "metadata.name: Invalid value: field is immutable",
            "metadata.name",
        ));
    }
    if kind.has_status() {
        match stored.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    if let Some(m) = new["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    if kind == Kind::Service {
        keep_allocated_service_values(&mut new, stored);
    }
    prepare(kind, &mut new, Some(stored))?;
    Ok(store(st, req, kind, stored, new))
}

/// Stores `stored` with the status of `new` (a status-subresource write).
fn write_status(
    st: &mut State,
    req: &Req,
    kind: Kind,
    stored: &Value,
    new: &Value,
) -> Result<Value, ApiError> {
    check_resource_version(kind, stored, new)?;
    let mut obj = stored.clone();
    obj["status"] = new["status"].clone();
    Ok(store(st, req, kind, stored, obj))
}

fn write_scale(
    st: &mut State,
    req: &Req,
    kind: Kind,
    stored: &Value,
    scale: &Value,
) -> Result<Value, ApiError> {
    let name = name_of(stored).to_string();
    check_resource_version(kind, stored, scale)?;
    let replicas = match &scale["spec"]["replicas"] {
        Value::Null => 0,
        v => v.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!("spec.replicas must be an integer, not {v}"))
        })?,
    };
    if replicas < 0 {
        return Err(ApiError {
            code: 422,
            reason: "Invalid",
            message: format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
            ),
            details: Some(json!({"name": name, "group": "autoscaling", "kind": "Scale"})),
            retry_after: None,
        });
    }
    let mut obj = stored.clone();
    obj["spec"]["replicas"] = json!(replicas);
    Ok(scale_of(&store(st, req, kind, stored, obj)))
}

/// PUT of an object, its status or its scale.
pub(super) fn replace(
    st: &mut State,
    req: &Req,
    kind: Kind,
    ns: &str,
    name: &str,
    sub: Option<Sub>,
) -> Result<Resp, ApiError> {
    let mut body = req.json_body()?;
    // As the API server does, a body without a namespace is in the URL's.
    if body.is_object() && namespace_of(&body).is_empty() {
        if !body["metadata"].is_object() {
            body["metadata"] = json!({});
        }
        body["metadata"]["namespace"] = json!(ns);
    }
    if sub.is_none() && kind.creates_on_update() && st.store.get(kind, ns, name).is_none() {
        // A PUT to a name that does not exist creates it (the resourceVersion in the body,
        // if any, is dropped as a create drops it).
        check_identity(kind, &body, ns, Some(name))?;
        return insert_new(st, req, kind, ns, body);
    }
    let stored = get_stored(st, kind, ns, name)?;
    let out = match sub {
        None => {
            check_identity(kind, &body, ns, Some(name))?;
            write_main(st, req, kind, &stored, body)?
        }
        Some(Sub::Status) => {
            check_identity(kind, &body, ns, Some(name))?;
            write_status(st, req, kind, &stored, &body)?
        }
        Some(Sub::Scale) => write_scale(st, req, kind, &stored, &body)?,
    };
    Ok(json_response(200, &out))
}

/// PATCH (JSON, merge or strategic merge) of an object, its status or its scale.
pub(super) fn apply_patch(
    st: &mut State,
    req: &Req,
    kind: Kind,
    ns: &str,
    name: &str,
    sub: Option<Sub>,
) -> Result<Resp, ApiError> {
    let pt = PatchType::from_content_type(&req.content_type)?;
    let stored = get_stored(st, kind, ns, name)?;
    let out = match sub {
        Some(Sub::Scale) => {
            let mut scale = scale_of(&stored);
            patch::apply(pt, &mut scale, &req.body)?;
            write_scale(st, req, kind, &stored, &scale)?
        }
        Some(Sub::Status) => {
            let mut doc = stored.clone();
            patch::apply(pt, &mut doc, &req.body)?;
            write_status(st, req, kind, &stored, &doc)?
        }
        None => {
            let mut doc = stored.clone();
            patch::apply(pt, &mut doc, &req.body)?;
            if !doc.is_object() {
                return Err(ApiError::bad_request("the patched object is not an object"));
            }
            write_main(st, req, kind, &stored, doc)?
        }
    };
    Ok(json_response(200, &out))
}
