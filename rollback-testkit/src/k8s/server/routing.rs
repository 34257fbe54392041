//! Routing: which API path names which resource, and which handler answers each method.

use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;
use serde_json::json;

use super::super::errors::ApiError;
use super::super::resources::Kind;
use super::super::state::Sim;
use super::discovery::{api_group, namespaces, resource_list, version};
use super::http::{error_response, json_response, respond, Req, Resp};
use super::watch::start_watch;
use super::{delete, read, write};

/// A subresource of an object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Sub {
    Status,
    Scale,
}

/// What a request path names.
#[derive(Debug)]
pub(super) enum Route {
    Version,
    Health,
    ApiVersions,
    GroupList,
    Group(&'static str),
    Resources(&'static str),
    Namespace(Option<String>),
    Collection {
        kind: Kind,
        ns: Option<String>,
        watch: bool,
    },
    Object {
        kind: Kind,
        ns: String,
        name: String,
        sub: Option<Sub>,
        watch: bool,
    },
}

pub(super) fn parse_route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let served = |g: &str| Kind::GROUPS.into_iter().find(|s| *s == g);
    match segs.as_slice() {
        ["version"] => return Some(Route::Version),
        ["healthz" | "readyz" | "livez", ..] => return Some(Route::Health),
        ["api"] => return Some(Route::ApiVersions),
        ["apis"] => return Some(Route::GroupList),
        ["apis", g] => return served(g).map(Route::Group),
        ["api", "v1"] => return Some(Route::Resources("")),
        ["apis", g, "v1"] => return served(g).map(Route::Resources),
        ["api", "v1", "namespaces"] => return Some(Route::Namespace(None)),
        ["api", "v1", "namespaces", ns] => return Some(Route::Namespace(Some((*ns).to_string()))),
        _ => {}
    }
    let (group, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, "v1", rest @ ..] => (served(g)?, rest),
        _ => return None,
    };
    let (watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let kind = |plural: &str| Kind::from_path(group, plural);
    match rest {
        [plural] => Some(Route::Collection {
            kind: kind(plural)?,
            ns: None,
            watch,
        }),
        ["namespaces", ns, plural] => Some(Route::Collection {
            kind: kind(plural)?,
            ns: Some((*ns).to_string()),
            watch,
        }),
        ["namespaces", ns, plural, name] => Some(Route::Object {
            kind: kind(plural)?,
            ns: (*ns).to_string(),
            name: (*name).to_string(),
            sub: None,
            watch,
        }),
        ["namespaces", ns, plural, name, sub] if !watch => {
            let kind = kind(plural)?;
            let sub = match *sub {
                "status" if kind.has_status() => Sub::Status,
                "scale" if kind.has_scale() => Sub::Scale,
                _ => return None,
            };
            Some(Route::Object {
                kind,
                ns: (*ns).to_string(),
                name: (*name).to_string(),
                sub: Some(sub),
                watch,
            })
        }
        _ => None,
    }
}

/// Answers an API request (faults aside).
pub(super) fn api(sim: &Arc<Sim>, req: &Req, route: Route) -> Resp {
    let result = match route {
        Route::Version => Ok(json_response(200, &version())),
        Route::Health => Ok(respond(200, "text/plain", Bytes::from_static(b"ok"))),
        Route::ApiVersions => Ok(json_response(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": req.host}]}),
        )),
        Route::GroupList => Ok(json_response(
            200,
            &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": Kind::GROUPS.map(api_group)}),
        )),
        Route::Group(group) => Ok(json_response(200, &api_group(group))),
        Route::Resources(group) => Ok(json_response(200, &resource_list(group))),
        Route::Namespace(ns) => namespaces(sim, req, ns),
        Route::Collection { kind, ns, watch } => {
            if watch || (req.method == Method::GET && req.flag("watch")) {
                if req.method != Method::GET {
                    Err(ApiError::method_not_allowed(req.method.as_str()))
                } else {
                    start_watch(sim, req, kind, ns, None)
                }
            } else {
                match (req.method.clone(), ns) {
                    (Method::GET, ns) => read::list(sim, req, kind, ns.as_deref()),
                    (Method::POST, Some(ns)) => write::create(sim, req, kind, &ns),
                    (Method::DELETE, Some(ns)) => delete::collection(sim, req, kind, &ns),
                    (m, _) => Err(ApiError::method_not_allowed(m.as_str())),
                }
            }
        }
        Route::Object {
            kind,
            ns,
            name,
            sub,
            watch,
        } => {
            if watch {
                if req.method != Method::GET {
                    Err(ApiError::method_not_allowed(req.method.as_str()))
                } else {
                    start_watch(sim, req, kind, Some(ns), Some(name))
                }
            } else {
                object(sim, req, kind, &ns, &name, sub)
            }
        }
    };
    result.unwrap_or_else(|e| error_response(&e))
}

/// One object (or its subresource): read, replace, patch or delete it, under one lock.
fn object(
    sim: &Sim,
    req: &Req,
    kind: Kind,
    ns: &str,
    name: &str,
    sub: Option<Sub>,
) -> Result<Resp, ApiError> {
    let mut st = sim.lock();
    let st = &mut *st;
    match req.method {
        Method::GET => read::get(st, kind, ns, name, sub),
        Method::PUT => write::replace(st, req, kind, ns, name, sub),
        Method::PATCH => write::apply_patch(st, req, kind, ns, name, sub),
        Method::DELETE if sub.is_none() => delete::object(st, req, kind, ns, name),
        ref m => Err(ApiError::method_not_allowed(m.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            parse_route("/apis/apps/v1/namespaces/ns/deployments/web/scale"),
            Some(Route::Object {
                kind: Kind::Deployment,
                sub: Some(Sub::Scale),
                ..
            })
        ));
        assert!(matches!(
            parse_route("/api/v1/pods"),
            Some(Route::Collection {
                kind: Kind::Pod,
                ns: None,
                ..
            })
        ));
        assert!(matches!(
            parse_route("/apis/apps/v1/watch/namespaces/ns/deployments/web"),
            Some(Route::Object { watch: true, .. })
        ));
        assert!(parse_route("/apis/apps/v1/namespaces/ns/daemonsets/x/scale").is_none());
        assert!(parse_route("/apis/batch/v1/jobs").is_none());
        assert!(matches!(
            parse_route("/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"),
            Some(Route::Object {
                kind: Kind::Lease,
                sub: None,
                ..
            })
        ));
        assert!(matches!(
            parse_route("/apis/coordination.k8s.io/v1/watch/namespaces/ns/leases"),
            Some(Route::Collection {
                kind: Kind::Lease,
                watch: true,
                ..
            })
        ));
        assert!(
            parse_route("/apis/coordination.k8s.io/v1/namespaces/ns/leases/l/status").is_none()
        );
        assert!(parse_route("/apis/apps/v1/namespaces/ns/leases").is_none());
        assert!(matches!(
            parse_route("/api/v1/namespaces/ns/configmaps/flags"),
            Some(Route::Object {
                kind: Kind::ConfigMap,
                sub: None,
                ..
            })
        ));
        assert!(matches!(
            parse_route("/api/v1/namespaces/ns/services/web/status"),
            Some(Route::Object {
                kind: Kind::Service,
                sub: Some(Sub::Status),
                ..
            })
        ));
        assert!(parse_route("/api/v1/namespaces/ns/configmaps/flags/status").is_none());
        assert!(parse_route("/apis/apps/v1/namespaces/ns/services").is_none());
        assert!(matches!(
            parse_route("/apis/coordination.k8s.io/v1"),
            Some(Route::Resources("coordination.k8s.io"))
        ));
    }
}
