//! The simulator's shared state: the store, the controller's settings and memory, the call
//! log and the faults waiting to be injected.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Value};

use super::store::Store;

/// Timing and size settings (`POST /_sim/config`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// How often the controller acts (one rollout step per tick).
    pub(crate) step_ms: u64,
    /// Simulated time without progress after which a Deployment's rollout is
    /// ProgressDeadlineExceeded (replaces spec.progressDeadlineSeconds).
    pub(crate) deadline_ms: u64,
    /// Simulated nodes (DaemonSet pods, pod placement).
    pub(crate) nodes: u32,
    /// Events the watch log keeps.
    pub(crate) watch_cache: usize,
    /// How often watches with allowWatchBookmarks get a BOOKMARK.
    pub(crate) bookmark_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            step_ms: 200,
            deadline_ms: 1000,
            nodes: 3,
            watch_cache: 10_000,
            bookmark_ms: 1000,
        }
    }
}

impl Config {
    /// Changes the settings a `POST /_sim/config` body names (`step_ms`, `deadline_ms`,
    /// `nodes`, `bookmark_ms`, `watch_cache`), within their bounds; the others stay.
    pub(crate) fn update(&mut self, body: &Value) {
        let num = |k: &str| body[k].as_u64();
        if let Some(v) = num("step_ms") {
            self.step_ms = v.max(1);
        }
        if let Some(v) = num("deadline_ms") {
            self.deadline_ms = v;
        }
        if let Some(v) = num("nodes") {
            self.nodes = u32::try_from(v).unwrap_or(u32::MAX);
        }
        if let Some(v) = num("bookmark_ms") {
            self.bookmark_ms = v.max(10);
        }
        if let Some(v) = num("watch_cache") {
            self.watch_cache = usize::try_from(v).unwrap_or(usize::MAX).max(1);
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "step_ms": self.step_ms,
            "deadline_ms": self.deadline_ms,
            "nodes": self.nodes,
            "watch_cache": self.watch_cache,
            "bookmark_ms": self.bookmark_ms,
        })
    }
}

/// A fault waiting to be injected into matching API calls.
#[derive(Debug, Clone)]
pub(crate) struct PendingFault {
    /// HTTP method, or empty for any.
    pub(crate) method: String,
    /// Matches when the request path contains this.
    pub(crate) path_contains: String,
    pub(crate) status: u16,
    /// Calls left to fail.
    pub(crate) times: u64,
    pub(crate) retry_after: u32,
    /// Delay before answering (also applies when `status` is 0: a slow but normal answer).
    pub(crate) delay_ms: u64,
    /// A raw body (`text/html`) instead of a Kubernetes Status: what a proxy in front of the
    /// API server answers.
    pub(crate) body: Option<String>,
}

impl PendingFault {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "method": self.method,
            "path_contains": self.path_contains,
            "status": self.status,
            "times": self.times,
            "retry_after": self.retry_after,
            "delay_ms": self.delay_ms,
            "body": self.body,
        })
    }
}

/// What the controller remembers between ticks (not stored in objects).
#[derive(Debug, Default)]
pub(crate) struct Memory {
    /// Simulated milliseconds (ticks times step).
    pub(crate) sim_ms: u64,
    /// Ticks so far.
    pub(crate) ticks: u64,
    /// Deployment uid -> simulated time of its last rollout progress.
    pub(crate) progress: HashMap<String, u64>,
}

/// Everything behind the simulator's lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) config: Config,
    pub(crate) running: bool,
    pub(crate) failing_images: BTreeSet<String>,
    pub(crate) calls: Vec<Value>,
    pub(crate) faults: Vec<PendingFault>,
    pub(crate) memory: Memory,
    /// The Roles RBAC checks calls against (`POST /_sim/rbac`); `None`: no RBAC.
    pub(crate) rbac: Option<Value>,
}

impl State {
    pub(crate) fn new() -> State {
        let config = Config::default();
        State {
            store: Store::new(config.watch_cache),
            config,
            running: true,
            failing_images: BTreeSet::new(),
            calls: Vec::new(),
            faults: Vec::new(),
            memory: Memory::default(),
            rbac: None,
        }
    }

    /// Whether any container (or init container) of a pod spec uses a failing image.
    pub(crate) fn spec_fails(&self, pod_spec: &Value) -> bool {
        ["containers", "initContainers"].iter().any(|field| {
            pod_spec[field].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["image"]
                        .as_str()
                        .is_some_and(|i| self.failing_images.contains(i))
                })
            })
        })
    }
}

/// The simulator: state behind one lock.
#[derive(Debug)]
pub(crate) struct Sim {
    state: Mutex<State>,
}

impl Sim {
    pub(crate) fn new() -> Sim {
        Sim {
            state: Mutex::new(State::new()),
        }
    }

    /// Locks the state (recovering from a poisoned lock: a panicking handler must not take
    /// the whole simulator down).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
