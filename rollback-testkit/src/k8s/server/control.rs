//! The control API under `/_sim/` (settings, failing images, the controller, the call
//! log, faults, compaction, reset) and the call log it reads.

use hyper::Method;
use serde_json::{json, Value};

use super::super::controller;
use super::super::state::{PendingFault, Sim};
use super::faults;
use super::http::{json_response, Req, Resp};

/// Answers a `/_sim/...` request.
pub(super) fn control(sim: &Sim, req: &Req) -> Resp {
    let path = req.path.trim_start_matches("/_sim").trim_matches('/');
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => return json_response(400, &json!({"error": format!("invalid JSON: {e}")})),
        }
    };
    let mut st = sim.lock();
    let st = &mut *st;
    let out = match (req.method.as_str(), path) {
        ("GET", "config") => st.config.to_json(),
        ("POST", "config") => {
            st.config.update(&body);
            if body["watch_cache"].as_u64().is_some() {
                let cap = st.config.watch_cache;
                st.store.set_capacity(cap);
            }
            st.config.to_json()
        }
        ("GET", "fail-image") => json!({"images": st.failing_images}),
        ("POST", "fail-image") => {
            let Some(image) = body["image"].as_str() else {
                return json_response(
                    400,
                    &json!({"error": "fail-image needs {\"image\": \"...\"}"}),
                );
            };
            if body["fail"] == json!(false) {
                st.failing_images.remove(image);
            } else {
                st.failing_images.insert(image.to_string());
            }
            json!({"images": st.failing_images})
        }
        ("DELETE", "fail-image") => {
            st.failing_images.clear();
            json!({"images": []})
        }
        ("GET", "controller") => {
            json!({"running": st.running, "ticks": st.memory.ticks, "sim_ms": st.memory.sim_ms})
        }
        ("POST", "controller") => {
            if let Some(r) = body["running"].as_bool() {
                st.running = r;
            }
            json!({"running": st.running, "ticks": st.memory.ticks, "sim_ms": st.memory.sim_ms})
        }
        ("POST", "step") => {
            let n = body["steps"].as_u64().unwrap_or(1).min(100_000);
            for _ in 0..n {
                controller::tick(st);
            }
            json!({"running": st.running, "ticks": st.memory.ticks, "sim_ms": st.memory.sim_ms})
        }
        ("GET", "calls") => {
            let mutations = mutations(&st.calls);
            json!({"total": st.calls.len(), "mutations": mutations, "calls": st.calls})
        }
        ("DELETE", "calls") => {
            st.calls.clear();
            json!({"total": 0, "mutations": 0, "calls": []})
        }
        ("GET", "inject") => {
            json!({"faults": st.faults.iter().map(PendingFault::to_json).collect::<Vec<_>>()})
        }
        ("POST", "inject") => {
            let fault = match faults::from_json(&body) {
                Ok(fault) => fault,
                Err(error) => return json_response(400, &json!({"error": error})),
            };
            st.faults.push(fault);
            json!({"faults": st.faults.iter().map(PendingFault::to_json).collect::<Vec<_>>()})
        }
        ("DELETE", "inject") => {
            st.faults.clear();
            json!({"faults": []})
        }
        ("GET", "rbac") => json!({"roles": st.rbac}),
        ("POST", "rbac") => match super::rbac::parse(&body) {
            Ok(roles) => {
                st.rbac = Some(roles);
                json!({"roles": st.rbac})
            }
            Err(error) => return json_response(400, &json!({"error": error})),
        },
        ("DELETE", "rbac") => {
            st.rbac = None;
            json!({"roles": null})
        }
        ("POST", "compact") => {
            st.store.compact();
            json!({"compacted": st.store.compacted()})
        }
        ("POST", "reset") => {
            st.store.clear();
            st.store.compact();
            st.calls.clear();
            st.faults.clear();
            st.failing_images.clear();
            st.rbac = None;
            st.memory = Default::default();
            st.running = true;
            json!({"reset": true, "resourceVersion": st.store.rv().to_string()})
        }
        ("GET", "") => json!({
            "endpoints": ["GET|POST config", "GET|POST|DELETE fail-image", "GET|POST controller", "POST step",
                          "GET|DELETE calls", "GET|POST|DELETE inject", "GET|POST|DELETE rbac", "POST compact", "POST reset"],
            "config": st.config.to_json(),
            "running": st.running,
            "resourceVersion": st.store.rv().to_string(),
        }),
        _ => {
            return json_response(
                404,
                &json!({"error": format!("no control endpoint {} /_sim/{path}", req.method)}),
            )
        }
    };
    json_response(200, &out)
}

/// Non-GET API calls in a call log.
fn mutations(calls: &[Value]) -> usize {
    calls
        .iter()
        .filter(|c| c["method"].as_str().is_some_and(|m| m != "GET"))
        .count()
}

/// Adds an API call to the call log (`GET /_sim/calls`).
pub(super) fn record(sim: &Sim, req: &Req, status: u16) {
    let mut call = json!({
        "method": req.method.as_str(),
        "path": req.path,
        "query": req.raw_query,
        "content_type": req.content_type,
        "status": status,
    });
    if matches!(req.method, Method::POST | Method::PUT | Method::PATCH) {
        call["body"] = serde_json::from_slice(&req.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&req.body).into_owned()));
    }
    sim.lock().calls.push(call);
}
