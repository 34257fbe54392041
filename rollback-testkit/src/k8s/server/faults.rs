//! Injected faults (`POST /_sim/inject`): which call a fault hits, and what it answers.

use bytes::Bytes;
use serde_json::Value;

use super::super::errors::ApiError;
use super::super::state::{PendingFault, Sim};
use super::http::{error_response, respond, Req, Resp};
use super::routing::Route;

/// The fault a call meets, if any: the first pending fault matching its method and path,
/// used up by one.
pub(super) fn take(sim: &Sim, req: &Req) -> Option<PendingFault> {
    let mut st = sim.lock();
    let method = req.method.as_str();
    let f = st.faults.iter_mut().find(|f| {
        f.times > 0
            && (f.method.is_empty() || f.method == "*" || f.method.eq_ignore_ascii_case(method))
            && req.path.contains(&f.path_contains)
    })?;
    f.times -= 1;
    let out = f.clone();
    st.faults.retain(|f| f.times > 0);
    Some(out)
}

/// What a fault with a status answers instead of the API: its raw page (a proxy's error
/// page) when it has one, else a Kubernetes `Status` naming the object on the route.
pub(super) fn answer(fault: PendingFault, route: Option<&Route>) -> Resp {
    match fault {
        PendingFault {
            status,
            body: Some(body),
            ..
        } => respond(status, "text/html", Bytes::from(body)),
        f => {
            let target = match route {
                Some(Route::Object { kind, name, .. }) => Some((*kind, name.as_str())),
                _ => None,
            };
            error_response(&ApiError::injected(f.status, target, f.retry_after))
        }
    }
}

/// A fault from the body of `POST /_sim/inject`, or why it is refused.
pub(super) fn from_json(body: &Value) -> Result<PendingFault, &'static str> {
    let status = body["status"].as_u64().unwrap_or(500);
    let fault = PendingFault {
        method: body["method"].as_str().unwrap_or("").to_uppercase(),
        path_contains: body["path_contains"].as_str().unwrap_or("").to_string(),
        status: u16::try_from(status).unwrap_or(500),
        times: body["times"].as_u64().unwrap_or(1),
        retry_after: body["retry_after"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(1),
        delay_ms: body["delay_ms"].as_u64().unwrap_or(0),
        body: body["body"].as_str().map(str::to_string),
    };
    if fault.status != 0 && !(400..=599).contains(&fault.status) {
        return Err("status must be 0 (delay only) or 400..=599");
    }
    Ok(fault)
}
