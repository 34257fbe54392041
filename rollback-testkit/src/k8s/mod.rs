//! # Kubernetes API simulator
//!
//! No real API server can be installed on the build machines, so this module serves the
//! real Kubernetes REST API (JSON over plain HTTP on 127.0.0.1) for what rollback's
//! Kubernetes targets use, with controllers that behave like the real ones:
//!
//! - apps/v1 `deployments`, `replicasets`, `statefulsets`, `daemonsets`,
//!   `controllerrevisions` and core/v1 `pods`: get, list (label and field selectors,
//!   `limit` / `continue`), create, update, delete (cascading to owned objects), JSON /
//!   merge / strategic merge patch, `status` and `scale` subresources, watch (with
//!   `resourceVersion`, `timeoutSeconds`, bookmarks, `sendInitialEvents`, 410 for a
//!   compacted resourceVersion);
//! - core/v1 `configmaps` and `services` (what `rollback_k8s::Manifest` and `kubectl
//!   apply -f` use): the same verbs (no `scale`; a Service's `status`), a Service's defaults and a
//!   cluster IP allocated on create and kept by an update that leaves it out, the API
//!   server's validation of both (a subset), a Service's ports merged by `port` in a
//!   strategic merge patch;
//! - coordination.k8s.io/v1 `leases` (what a lock store uses): the same verbs, a create
//!   of an existing name 409 `AlreadyExists`, an update with a stale resourceVersion 409
//!   `Conflict` and one without it 422 (Leases allow no unconditional update), a PUT to a
//!   missing name a create, and the API server's Lease validation;
//! - server-managed metadata (uid, creationTimestamp, one global resourceVersion counter,
//!   generation), the API server's defaults, optimistic concurrency, `Status` errors;
//! - a Deployment controller (ReplicaSets named `<deployment>-<pod-template-hash>`,
//!   `deployment.kubernetes.io/revision` and `revision-history` annotations, rolling
//!   updates one replica per step, status and conditions, `ProgressDeadlineExceeded` for
//!   images registered with [`K8sSimulator::fail_image`], history cleanup), StatefulSet and
//!   DaemonSet controllers (ControllerRevisions, partitions, rolling updates), and a kubelet
//!   that makes pods ready (or crash-looping);
//! - a control API under `/_sim/` (timing, failing images, pausing or stepping the
//!   controller, the call log, fault injection, reset).
//!
//! `rollback-testkit/README.md` documents the control API and the gaps to a real API server.
//!
//! Layout: `server` answers HTTP (one file per job: routing, discovery, reads, writes,
//! deletes, watches, the control API, faults), `controller` moves workloads and pods, `store`
//! holds objects and the watch event log, `state` the shared state behind one lock;
//! `resources`, `selector`, `patch`, `hash` and `errors` are the API server's rules.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rollback_testkit::k8s::K8sSimulator;
//! let sim = K8sSimulator::start()?;
//! let client = kube::Client::try_from(kube::Config::new(sim.url().parse()?))?;
//! # Ok(()) }
//! ```

mod controller;
mod errors;
mod hash;
mod patch;
mod resources;
mod selector;
mod server;
mod state;
mod store;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::TestkitError;

/// Timing and size settings of the simulator; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SimConfig {
    /// How often the controller acts: one rollout step (one replica moved) per step.
    /// Default 200 ms.
    pub step: Option<Duration>,
    /// Simulated time without rollout progress after which a Deployment's Progressing
    /// condition becomes `ProgressDeadlineExceeded` (it replaces the Deployment's
    /// `progressDeadlineSeconds`). Default 1 s.
    pub deadline: Option<Duration>,
    /// Simulated nodes (one DaemonSet pod per node). Default 3.
    pub nodes: Option<u32>,
    /// Watch events kept for watches from an older resourceVersion. Default 10 000.
    pub watch_cache: Option<usize>,
    /// How often watches that allow bookmarks get one. Default 1 s.
    pub bookmark_interval: Option<Duration>,
}

impl SimConfig {
    /// No change.
    pub fn new() -> SimConfig {
        SimConfig::default()
    }

    /// Sets the controller step.
    pub fn step(mut self, step: Duration) -> SimConfig {
        self.step = Some(step);
        self
    }

    /// Sets the progress deadline.
    pub fn deadline(mut self, deadline: Duration) -> SimConfig {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the node count.
    pub fn nodes(mut self, nodes: u32) -> SimConfig {
        self.nodes = Some(nodes);
        self
    }

    /// Sets how many watch events are kept.
    pub fn watch_cache(mut self, events: usize) -> SimConfig {
        self.watch_cache = Some(events);
        self
    }

    /// Sets the bookmark interval.
    pub fn bookmark_interval(mut self, every: Duration) -> SimConfig {
        self.bookmark_interval = Some(every);
        self
    }

    /// The body of `POST /_sim/config`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({});
        let ms = |d: &Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if let Some(d) = &self.step {
            v["step_ms"] = json!(ms(d));
        }
        if let Some(d) = &self.deadline {
            v["deadline_ms"] = json!(ms(d));
        }
        if let Some(n) = self.nodes {
            v["nodes"] = json!(n);
        }
        if let Some(n) = self.watch_cache {
            v["watch_cache"] = json!(n);
        }
        if let Some(d) = &self.bookmark_interval {
            v["bookmark_ms"] = json!(ms(d));
        }
        v
    }

    fn apply(&self, c: &mut state::Config) {
        c.update(&self.to_json());
    }
}

/// A fault to inject into API calls (`POST /_sim/inject`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Fault {
    /// HTTP method (`PATCH`), or `None` for any.
    pub method: Option<String>,
    /// The fault applies to calls whose path contains this (`/deployments/web`).
    pub path_contains: String,
    /// HTTP status to answer with a matching `Status` body (409 Conflict, 429 with
    /// `Retry-After`, 500, 503, ...), or 0 to only delay the call.
    pub status: u16,
    /// How many matching calls fail. Default 1.
    pub times: u32,
    /// `Retry-After` seconds for 429 / 503. Default 1.
    pub retry_after: u32,
    /// Delay before answering. Default none.
    pub delay: Duration,
}

impl Fault {
    /// A fault answering `status` once to `method` calls whose path contains `path_contains`.
    pub fn new(method: Option<&str>, path_contains: &str, status: u16) -> Fault {
        Fault {
            method: method.map(str::to_uppercase),
            path_contains: path_contains.to_string(),
            status,
            times: 1,
            retry_after: 1,
            delay: Duration::ZERO,
        }
    }

    /// Fails `times` matching calls.
    pub fn times(mut self, times: u32) -> Fault {
        self.times = times;
        self
    }

    /// Sets the `Retry-After` seconds.
    pub fn retry_after(mut self, seconds: u32) -> Fault {
        self.retry_after = seconds;
        self
    }

    /// Delays the answer.
    pub fn delay(mut self, delay: Duration) -> Fault {
        self.delay = delay;
        self
    }

    /// The body of `POST /_sim/inject`.
    pub fn to_json(&self) -> Value {
        json!({
            "method": self.method.clone().unwrap_or_default(),
            "path_contains": self.path_contains,
            "status": self.status,
            "times": self.times,
            "retry_after": self.retry_after,
            "delay_ms": u64::try_from(self.delay.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// A kubeconfig whose current context points at `url` (namespace `default`, no auth).
pub fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: rollback-sim
  cluster:
    server: {url}
contexts:
- name: rollback-sim
  context:
    cluster: rollback-sim
    user: rollback-sim
    namespace: default
current-context: rollback-sim
users:
- name: rollback-sim
  user: {{}}
preferences: {{}}
"
    )
}

/// Runs the real `kubectl` with `kubeconfig` (one from [`K8sSimulator::write_kubeconfig`])
/// and returns its stdout; panics, naming the command and its stderr, when kubectl is
/// missing or fails (for tests that check the simulator as kubectl sees it).
pub async fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    let shown = format!("kubectl {}", args.join(" "));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap_or_else(|e| panic!("{shown}: {e}"))
        .unwrap_or_else(|e| panic!("{shown}: cannot run kubectl: {e}"));
    assert!(
        out.status.success(),
        "{shown}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start_error(message: String) -> TestkitError {
    TestkitError::Control {
        call: "start the Kubernetes simulator".into(),
        message,
    }
}

/// A running Kubernetes API simulator (its own thread and tokio runtime); stopped when
/// dropped.
#[derive(Debug)]
pub struct K8sSimulator {
    url: String,
    port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    http: reqwest::Client,
}

impl K8sSimulator {
    /// Starts the simulator on a free loopback port; returns once it is listening.
    pub fn start() -> Result<K8sSimulator, TestkitError> {
        K8sSimulator::start_with(0, &SimConfig::default())
    }

    /// [`K8sSimulator::start`] for async callers (starting does not block).
    pub async fn start_async() -> Result<K8sSimulator, TestkitError> {
        K8sSimulator::start()
    }

    /// Starts the simulator on `port` (0: any free port) with `config` applied before the
    /// first request.
    pub fn start_with(port: u16, config: &SimConfig) -> Result<K8sSimulator, TestkitError> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| start_error(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| start_error(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| start_error(e.to_string()))?
            .port();
        let sim = Arc::new(state::Sim::new());
        {
            let mut c = sim.lock().config.clone();
            config.apply(&mut c);
            server::configure(&sim, &c);
        }
        let (shutdown, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name(format!("k8s-sim-{port}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("tokio runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let _ = ready_tx.send(Ok(()));
                            server::serve(listener, sim, shutdown_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("listener: {e}")));
                        }
                    }
                });
            })
            .map_err(|e| start_error(format!("cannot start the simulator thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(start_error(e)),
            Err(_) => return Err(start_error("the simulator thread exited".into())),
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| start_error(format!("http client: {e}")))?;
        Ok(K8sSimulator {
            url: format!("http://127.0.0.1:{port}"),
            port,
            shutdown: Some(shutdown),
            thread: Some(thread),
            http,
        })
    }

    /// The API server URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port the simulator listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A kubeconfig pointing at the simulator (see [`kubeconfig_yaml`]).
    pub fn kubeconfig(&self) -> String {
        kubeconfig_yaml(&self.url)
    }

    /// Writes [`K8sSimulator::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), TestkitError> {
        let path = path.as_ref();
        std::fs::write(path, self.kubeconfig()).map_err(|e| TestkitError::Control {
            call: "write kubeconfig".into(),
            message: format!("{}: {e}", path.display()),
        })
    }

    /// Calls the control API (`/_sim/...`) and returns its JSON answer.
    pub async fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, TestkitError> {
        let path = path.trim_start_matches('/');
        let url = format!("{}/_sim/{path}", self.url);
        let call = format!("{method} /_sim/{path}");
        crate::control_call(&self.http, method, &url, body, call, false).await
    }

    /// Changes timing / size settings; returns the settings now in force.
    pub async fn configure(&self, config: SimConfig) -> Result<Value, TestkitError> {
        self.control("POST", "config", Some(config.to_json())).await
    }

    /// Makes pods of templates using `image` never become ready (CrashLoopBackOff), so
    /// rollouts to them end in `ProgressDeadlineExceeded`.
    pub async fn fail_image(&self, image: &str) -> Result<(), TestkitError> {
        self.control("POST", "fail-image", Some(json!({"image": image})))
            .await
            .map(|_| ())
    }

    /// Enforces RBAC with `roles` (a `v1 List` of Roles, as `rollback policy --format rbac`
    /// prints it): each namespaced call must be allowed by a rule of its namespace's Role
    /// (group, resource and subresource, verb, `resourceNames`), else it is answered 403
    /// Forbidden in the API server's words. `None` turns RBAC off.
    pub async fn rbac(&self, roles: Option<&Value>) -> Result<(), TestkitError> {
        match roles {
            Some(r) => self.control("POST", "rbac", Some(r.clone())).await,
            None => self.control("DELETE", "rbac", None).await,
        }
        .map(|_| ())
    }

    /// Undoes [`K8sSimulator::fail_image`]: the image's pods become ready at the next step.
    pub async fn heal_image(&self, image: &str) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "fail-image",
            Some(json!({"image": image, "fail": false})),
        )
        .await
        .map(|_| ())
    }

    /// Pauses (`true`) or resumes the controller. A paused controller changes nothing, so
    /// tests can look at intermediate states; [`K8sSimulator::step`] advances it by hand.
    pub async fn pause_controller(&self, paused: bool) -> Result<(), TestkitError> {
        self.control("POST", "controller", Some(json!({"running": !paused})))
            .await
            .map(|_| ())
    }

    /// Runs `steps` controller steps now (also while paused).
    pub async fn step(&self, steps: u32) -> Result<(), TestkitError> {
        self.control("POST", "step", Some(json!({"steps": steps})))
            .await
            .map(|_| ())
    }

    /// Every API call since the start or the last [`K8sSimulator::reset_calls`]: a JSON
    /// array of `{"method", "path", "query", "content_type", "status", "body"}` (`body`
    /// for POST / PUT / PATCH, parsed when JSON).
    pub async fn calls(&self) -> Result<Value, TestkitError> {
        Ok(self.control("GET", "calls", None).await?["calls"].take())
    }

    /// Forgets the calls so far.
    pub async fn reset_calls(&self) -> Result<(), TestkitError> {
        self.control("DELETE", "calls", None).await.map(|_| ())
    }

    /// How many API calls so far were not GETs (creates, updates, patches, deletes).
    pub async fn mutations(&self) -> Result<u64, TestkitError> {
        Ok(self.control("GET", "calls", None).await?["mutations"]
            .as_u64()
            .unwrap_or(0))
    }

    /// Injects a fault into the next matching API calls.
    pub async fn inject(&self, fault: Fault) -> Result<(), TestkitError> {
        self.control("POST", "inject", Some(fault.to_json()))
            .await
            .map(|_| ())
    }

    /// Removes the faults not yet used up.
    pub async fn clear_faults(&self) -> Result<(), TestkitError> {
        self.control("DELETE", "inject", None).await.map(|_| ())
    }

    /// Drops the watch event log, as etcd compaction does: watches from an older
    /// resourceVersion get `410 Gone` (an ERROR event with code 410).
    pub async fn compact(&self) -> Result<(), TestkitError> {
        self.control("POST", "compact", None).await.map(|_| ())
    }

    /// Deletes every object and forgets calls, faults and failing images (settings stay).
    pub async fn reset(&self) -> Result<(), TestkitError> {
        self.control("POST", "reset", None).await.map(|_| ())
    }
}

impl Drop for K8sSimulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
