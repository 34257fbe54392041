//! The HTTP server: accepts connections and passes each request through faults, routing
//! and the call log. By job:
//!
//! - [`http`]: response bodies (whole or streamed), the request read whole;
//! - [`routing`]: paths to resources, methods to handlers;
//! - [`discovery`]: `/version`, API group and resource lists, namespaces;
//! - [`read`], [`write`], [`delete`]: the object API (get / list, create / replace /
//!   patch, delete);
//! - [`watch`]: watch streams;
//! - [`control`]: the `/_sim/` control API and the call log;
//! - [`faults`]: injected faults.

mod control;
mod delete;
mod discovery;
mod faults;
mod http;
mod rbac;
mod read;
mod routing;
mod watch;
mod write;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::Request;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::controller;
use super::errors::ApiError;
use super::state::{Config, Sim};
use http::{error_response, Req, Resp};

/// Serves until `shutdown` resolves (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    sim: Arc<Sim>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let ctrl = tokio::spawn(controller::run(sim.clone()));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let sim = sim.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(sim.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
    ctrl.abort();
}

/// One request: the control API, or an API call through faults, routing and the call log.
async fn handle(sim: Arc<Sim>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let req = Req::read(req).await;
    if req.path == "/_sim" || req.path.starts_with("/_sim/") {
        return Ok(control::control(&sim, &req));
    }
    let route = routing::parse_route(&req.path);
    let fault = faults::take(&sim, &req);
    if let Some(f) = &fault {
        if f.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
        }
    }
    let denied = match (&route, &sim.lock().rbac) {
        (Some(route), Some(roles)) => rbac::check(roles, &req, route),
        _ => None,
    };
    let resp = match fault.filter(|f| f.status != 0) {
        Some(f) => faults::answer(f, route.as_ref()),
        None => match (denied, route) {
            (Some(denied), _) => error_response(&denied),
            (None, Some(route)) => routing::api(&sim, &req, route),
            (None, None) => error_response(&ApiError::no_route()),
        },
    };
    control::record(&sim, &req, resp.status().as_u16());
    Ok(resp)
}

/// Applies settings before serving (the binary's flags, `K8sSimulator::start_with`).
pub(crate) fn configure(sim: &Sim, config: &Config) {
    let mut st = sim.lock();
    st.store.set_capacity(config.watch_cache);
    st.config = config.clone();
}
