//! `rollback.k8s`: Deployments, StatefulSets and DaemonSets rolled back as `kubectl rollout
//! undo` does, their replica counts and restarts as targets, `PodsReady`, and kubectl's
//! rollout status rules as a function.

use std::sync::{Arc, OnceLock};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rollback_core::{RollbackTarget, Verifier};
use rollback_k8s::{K8s, K8sConfig, PodsReady, RolloutStatus, StatusError, StatusErrorKind};

use crate::check::{check_of, PyCheck};
use crate::errors::{invalid, new_error, py_err};
use crate::runtime::block_on;
use crate::target::PyTarget;
use crate::types::{type_name, Int, PyPolicy, Seconds};

/// Where the Kubernetes client's configuration comes from: a kubeconfig file (None:
/// `KUBECONFIG` / `~/.kube/config`, else the in-cluster service account), a context (None:
/// the current one), or an API server URL that needs no credentials (`kubectl proxy`, a
/// test simulator), which overrides the other two.
#[pyclass(module = "rollback.k8s", name = "K8sConfig", frozen)]
pub(crate) struct PyK8sConfig {
    config: K8sConfig,
    loaded: OnceLock<K8s>,
}

#[pymethods]
impl PyK8sConfig {
    #[new]
    #[pyo3(signature = (kubeconfig=None, context=None, url=None))]
    fn new(
        kubeconfig: Option<std::path::PathBuf>,
        context: Option<String>,
        url: Option<String>,
    ) -> PyResult<Self> {
        if let Some(u) = &url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(invalid(
                    "kubernetes",
                    format!(
                        "url={u:?} is not an API server URL; give one like http://127.0.0.1:8001"
                    ),
                ));
            }
        }
        Ok(PyK8sConfig {
            config: K8sConfig {
                kubeconfig,
                context,
                url,
            },
            loaded: OnceLock::new(),
        })
    }

    /// The kubeconfig file, if given.
    #[getter]
    fn kubeconfig(&self) -> Option<std::path::PathBuf> {
        self.config.kubeconfig.clone()
    }

    /// The context, if given.
    #[getter]
    fn context(&self) -> Option<String> {
        self.config.context.clone()
    }

    /// The API server URL, if given.
    #[getter]
    fn url(&self) -> Option<String> {
        self.config.url.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "K8sConfig(kubeconfig={:?}, context={:?}, url={:?})",
            self.config.kubeconfig, self.config.context, self.config.url
        )
    }
}

/// The client for `config` (loaded once per `K8sConfig`), or kubectl's (`KUBECONFIG`).
fn k8s_for(py: Python<'_>, config: Option<&Bound<'_, PyK8sConfig>>) -> PyResult<K8s> {
    let cfg = config.map(|c| c.get().config.clone()).unwrap_or_default();
    if let Some(c) = config {
        if let Some(k) = c.get().loaded.get() {
            return Ok(k.clone());
        }
    }
    let k8s = block_on(py, async move { cfg.load().await.map_err(py_err) })?;
    Ok(match config {
        Some(c) => c.get().loaded.get_or_init(|| k8s).clone(),
        None => k8s,
    })
}

/// kubectl's rollout status: `done` and kubectl's message.
#[pyclass(module = "rollback.k8s", name = "RolloutStatus", frozen)]
pub(crate) struct PyRolloutStatus {
    inner: RolloutStatus,
}

#[pymethods]
impl PyRolloutStatus {
    /// Whether the rollout is complete.
    #[getter]
    fn done(&self) -> bool {
        self.inner.is_done()
    }

    /// kubectl's message (`deployment "x" successfully rolled out`, `Waiting for ...`).
    #[getter]
    fn message(&self) -> &str {
        self.inner.message()
    }

    fn __bool__(&self) -> bool {
        self.inner.is_done()
    }

    fn __str__(&self) -> &str {
        self.inner.message()
    }

    fn __repr__(&self) -> String {
        format!(
            "<RolloutStatus done={} {:?}>",
            if self.inner.is_done() {
                "True"
            } else {
                "False"
            },
            self.inner.message()
        )
    }
}

fn status_reason(kind: StatusErrorKind) -> &'static str {
    match kind {
        StatusErrorKind::ProgressDeadlineExceeded => "progress_deadline_exceeded",
        StatusErrorKind::UnsupportedStrategy => "unsupported_strategy",
        StatusErrorKind::RevisionMismatch => "revision_mismatch",
        StatusErrorKind::InvalidObject => "invalid_object",
    }
}

/// `rollback.RolloutError` (the published name) for a status kubectl reports as an error;
/// `reason` says which.
fn status_error(py: Python<'_>, target: &str, e: &StatusError) -> PyErr {
    let err = new_error(
        py,
        "RolloutError",
        format!("{target}: {e}"),
        target,
        "rollout_failed",
        false,
    );
    let _ = err.value(py).setattr("reason", status_reason(e.kind()));
    err
}

fn status_result(
    py: Python<'_>,
    target: &str,
    r: Result<RolloutStatus, StatusError>,
) -> PyResult<PyRolloutStatus> {
    r.map(|s| PyRolloutStatus { inner: s })
        .map_err(|e| status_error(py, target, &e))
}

/// kubectl's rollout status of an object given as a dict (`kubectl get -o json`), for
/// Deployments, StatefulSets and DaemonSets. Raises `RolloutError` where kubectl reports an
/// error (progress deadline exceeded, a strategy without rollout status, an object it
/// cannot read).
#[pyfunction]
pub(crate) fn rollout_status(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<PyRolloutStatus> {
    if !obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "rollout_status takes the object as a dict (kubectl get -o json), not {}",
            type_name(obj)
        )));
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("default", py.import("builtins")?.getattr("str")?)?;
    let text: String = py
        .import("json")?
        .getattr("dumps")?
        .call((obj,), Some(&kwargs))?
        .extract()?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| invalid("kubernetes", format!("the object is not JSON: {e}")))?;
    let name = value
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or("object")
        .to_string();
    status_result(py, &name, rollback_k8s::status_of(&value))
}

/// A workload's replica count as a target (`kubectl scale`): revisions are counts chosen
/// with `Exact("N")`; a scale-up can stop at `gradual` counts and run the `between` check
/// at each.
#[pyclass(module = "rollback.k8s", name = "Replicas", extends = PyTarget, frozen)]
pub(crate) struct PyReplicas {}

/// A workload's restart (`kubectl rollout restart`) as a target: any selector but `Exact`
/// restarts now; stable when the rollout it starts is done.
#[pyclass(module = "rollback.k8s", name = "Restart", extends = PyTarget, frozen)]
pub(crate) struct PyRestart {}

fn verifier_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<dyn Verifier>> {
    Ok(check_of(obj)?.verifier)
}

fn counts(target: &str, gradual: Option<Vec<Int>>) -> PyResult<Vec<i32>> {
    gradual
        .unwrap_or_default()
        .iter()
        .map(|n| n.get(target, "gradual count {} (a replica count)", 0))
        .collect()
}

macro_rules! workload {
    // A workload whose replica count is a target too (Deployments, StatefulSets).
    ($py_ty:ident, $name:literal, $rust:ty, $doc:literal, scalable) => {
        workload!($py_ty, $name, $rust, $doc, {
            /// This workload's replica count as a target: `Exact("0")` scales to zero; on the
            /// way up it stops at each `gradual` count, waits for it and runs `between`.
            #[pyo3(signature = (gradual=None, between=None, *, step_timeout=None))]
            fn replicas(
                &self,
                py: Python<'_>,
                gradual: Option<Vec<Int>>,
                between: Option<&Bound<'_, PyAny>>,
                step_timeout: Option<Seconds>,
            ) -> PyResult<Py<PyReplicas>> {
                replicas_of(py, &self.inner, gradual, between, step_timeout)
            }
        });
    };
    ($py_ty:ident, $name:literal, $rust:ty, $doc:literal, { $($extra:tt)* }) => {
        #[doc = $doc]
        #[pyclass(module = "rollback.k8s", name = $name, extends = PyTarget, frozen)]
        pub(crate) struct $py_ty {
            inner: $rust,
        }

        #[pymethods]
        impl $py_ty {
            #[new]
            #[pyo3(signature = (name, namespace="default", *, config=None))]
            fn new(
                py: Python<'_>,
                name: &str,
                namespace: &str,
                config: Option<&Bound<'_, PyK8sConfig>>,
            ) -> PyResult<PyClassInitializer<Self>> {
                let k8s = k8s_for(py, config)?;
                let w = <$rust>::new(&k8s, namespace, name).map_err(py_err)?;
                Ok(PyTarget::init(Arc::new(w.clone())).add_subclass($py_ty { inner: w }))
            }

            /// The object's name.
            #[getter]
            fn name(&self) -> &str {
                self.inner.name()
            }

            /// Its namespace.
            #[getter]
            fn namespace(&self) -> &str {
                self.inner.namespace()
            }

            /// kubectl's rollout status of the object now; raises `RolloutError` where
            /// kubectl reports an error.
            fn rollout_status(&self, py: Python<'_>) -> PyResult<PyRolloutStatus> {
                let w = self.inner.clone();
                let target = format!("{}/{}", $name.to_lowercase(), self.inner.name());
                let r = block_on(py, async move { w.rollout_status().await.map_err(py_err) })?;
                status_result(py, &target, r)
            }

            /// This workload's restart (`kubectl rollout restart`) as a target.
            fn restart(&self, py: Python<'_>) -> PyResult<Py<PyRestart>> {
                Py::new(
                    py,
                    PyTarget::init(Arc::new(self.inner.restart())).add_subclass(PyRestart {}),
                )
            }

            $($extra)*
        }
    };
}

/// `.replicas(...)` of a Deployment or StatefulSet.
fn replicas_of<W: rollback_k8s::Scalable>(
    py: Python<'_>,
    workload: &rollback_k8s::Workload<W>,
    gradual: Option<Vec<Int>>,
    between: Option<&Bound<'_, PyAny>>,
    step_timeout: Option<Seconds>,
) -> PyResult<Py<PyReplicas>> {
    let r = workload.replicas();
    let id = r.id().to_string();
    let gradual = counts(&id, gradual)?;
    let mut r = r.gradual(gradual);
    if let Some(c) = between {
        // A PodsReady goes in as itself, so that the journal records it as data and a
        // resumed scale-up rebuilds it.
        r = match c.cast::<PyPodsReady>() {
            Ok(pods) => r.between(pods.get().inner.clone()),
            Err(_) => r.between(verifier_of(c)?),
        };
    }
    if let Some(t) = Seconds::get_opt(step_timeout, &id, "step_timeout")? {
        r = r.step_timeout(t);
    }
    Py::new(py, PyTarget::init(Arc::new(r)).add_subclass(PyReplicas {}))
}

workload!(
    PyDeployment,
    "Deployment",
    rollback_k8s::Deployment,
    "A Deployment: revisions are its rollout revisions (`\"3\"`, from its ReplicaSets); a rollback is `kubectl rollout undo` (paused Deployments refused, an already-matching template skipped), guarded by the object's resourceVersion, and waited for by watch with kubectl's status rules.",
    scalable
);
workload!(
    PyStatefulSet,
    "StatefulSet",
    rollback_k8s::StatefulSet,
    "A StatefulSet: revisions are its ControllerRevisions; a rollback is `kubectl rollout undo`.",
    scalable
);
workload!(
    PyDaemonSet,
    "DaemonSet",
    rollback_k8s::DaemonSet,
    "A DaemonSet: revisions are its ControllerRevisions; a rollback is `kubectl rollout undo`.",
    {}
);

/// Passes when the pods of a workload (`PodsReady(deployment)`), or the pods matching a
/// label selector in a namespace (`PodsReady(namespace=..., selector="app=x")`), are
/// Ready, at least `min` of them; the evidence names pods that are not (CrashLoopBackOff,
/// ImagePullBackOff...).
#[pyclass(module = "rollback.k8s", name = "PodsReady", extends = PyCheck, frozen)]
pub(crate) struct PyPodsReady {
    inner: PodsReady,
}

#[pymethods]
impl PyPodsReady {
    #[new]
    #[pyo3(signature = (workload=None, *, namespace=None, selector=None, min=Int::Fits(1), config=None, policy=None))]
    #[pyo3(
        text_signature = "(workload=None, *, namespace=None, selector=None, min=1, config=None, policy=None)"
    )]
    fn new(
        py: Python<'_>,
        workload: Option<&Bound<'_, PyAny>>,
        namespace: Option<String>,
        selector: Option<String>,
        min: Int,
        config: Option<&Bound<'_, PyK8sConfig>>,
        policy: Option<PyPolicy>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let min: usize = min.get("k8s-pods", "min={} (pods)", 0)?;
        let check = match (workload, selector) {
            (Some(w), None) => {
                if namespace.is_some() {
                    return Err(invalid(
                        "k8s-pods",
                        "the workload names its namespace; give workload or namespace and selector",
                    ));
                }
                if let Ok(d) = w.cast::<PyDeployment>() {
                    PodsReady::of(&d.get().inner)
                } else if let Ok(s) = w.cast::<PyStatefulSet>() {
                    PodsReady::of(&s.get().inner)
                } else if let Ok(d) = w.cast::<PyDaemonSet>() {
                    PodsReady::of(&d.get().inner)
                } else {
                    return Err(PyTypeError::new_err(format!(
                        "PodsReady takes a rollback.k8s Deployment, StatefulSet or DaemonSet, not {}",
                        type_name(w)
                    )));
                }
            }
            (None, Some(sel)) => {
                let k8s = k8s_for(py, config)?;
                PodsReady::new(&k8s, namespace.unwrap_or_else(|| "default".into()), sel)
                    .map_err(py_err)?
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "k8s-pods",
                    "give a workload or a selector, not both",
                ))
            }
            (None, None) => {
                return Err(invalid(
                    "k8s-pods",
                    "give a workload (PodsReady(deployment)) or a label selector (PodsReady(selector=\"app=frontend\", namespace=\"production\"))",
                ))
            }
        };
        let check = check.min(min);
        Ok(PyCheck::init(check.clone(), policy).add_subclass(PyPodsReady { inner: check }))
    }
}

/// Leases as Kubernetes `coordination.k8s.io/v1` Leases in `namespace`
/// (`rollback_k8s::LeaseLocks`); RBAC: get, create and update on leases there.
#[pyclass(module = "rollback.k8s", name = "LeaseLocks", extends = crate::stores::PyLocks, frozen)]
pub(crate) struct PyLeaseLocks;

#[pymethods]
impl PyLeaseLocks {
    #[new]
    #[pyo3(signature = (namespace, *, config=None))]
    fn new(
        py: Python<'_>,
        namespace: String,
        config: Option<&Bound<'_, PyK8sConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let k8s = k8s_for(py, config)?;
        let locks = rollback_k8s::LeaseLocks::new(&k8s, namespace).map_err(py_err)?;
        Ok(crate::stores::PyLocks::init(Arc::new(locks)).add_subclass(PyLeaseLocks))
    }
}

/// A set of Kubernetes objects (ConfigMaps, Services, Deployments) applied as one target,
/// usually a temporary step (runbook 004's maintenance mode): `Previous()` applies
/// `objects` (created, or replaced), and putting it back restores each object as it was
/// (deleting the ones it created). Secrets are refused. Each object is a dict with
/// `apiVersion`, `kind` and `metadata.name`; a missing namespace is `namespace`'s.
#[pyclass(module = "rollback.k8s", name = "Manifest", extends = PyTarget, frozen)]
pub(crate) struct PyManifest {
    inner: rollback_k8s::Manifest,
}

#[pymethods]
impl PyManifest {
    #[new]
    #[pyo3(signature = (name, objects, namespace="default", *, config=None))]
    fn new(
        py: Python<'_>,
        name: &str,
        objects: &Bound<'_, PyAny>,
        namespace: &str,
        config: Option<&Bound<'_, PyK8sConfig>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let text: String = py
            .import("json")?
            .call_method1("dumps", (objects,))?
            .extract()?;
        let target = format!("k8s-manifest/{namespace}/{name}");
        let objects: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| {
            crate::errors::invalid(
                &target,
                format!("objects must be a list of Kubernetes objects (dicts): {e}"),
            )
        })?;
        let k8s = k8s_for(py, config)?;
        let m = rollback_k8s::Manifest::new(&k8s, namespace, name, objects).map_err(py_err)?;
        Ok(PyTarget::init(Arc::new(m.clone())).add_subclass(PyManifest { inner: m }))
    }

    /// The manifest's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Its namespace.
    #[getter]
    fn namespace(&self) -> &str {
        self.inner.namespace()
    }
}
