//! Targets: the `rollback.Target` base class every built-in target extends (current,
//! history and plan, blocking and async), and the adapter that makes any Python object
//! with `current`, `history`, `apply` and `wait` methods a target.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use rollback_core::{
    ApplyOutcome, Change, Error, Result, Revision, RollbackTarget, Selector, Stability, TargetId,
    TargetSpec,
};

use crate::errors::{from_py_err, py_err};
use crate::runtime::{awaitable, block_on, call_method};
use crate::types::{
    revision, revision_of, selector_of, selector_to_py, type_name, PyChange, PyRevision,
};

/// The target kind journals record for Python targets; a resumed run needs the object
/// again (`rollback.resume(path, targets=[...])`).
pub(crate) const PYTHON_KIND: &str = "python";

/// A thing with revisions and a current revision. The built-in targets (Lambda aliases,
/// ECS services, secrets, RDS instances, Kubernetes workloads...) extend this class; a
/// Python object with `current`, `history`, `apply` and `wait` methods works wherever a
/// target is asked for, without extending it.
#[pyclass(module = "rollback", name = "Target", subclass, frozen)]
pub(crate) struct PyTarget {
    pub(crate) inner: Arc<dyn RollbackTarget>,
}

impl PyTarget {
    pub(crate) fn init(inner: Arc<dyn RollbackTarget>) -> PyClassInitializer<Self> {
        PyClassInitializer::from(PyTarget { inner })
    }
}

async fn current(t: Arc<dyn RollbackTarget>) -> PyResult<PyRevision> {
    t.current().await.map(|r| revision(&r)).map_err(py_err)
}

async fn history(t: Arc<dyn RollbackTarget>) -> PyResult<Vec<PyRevision>> {
    t.history()
        .await
        .map(|h| h.iter().map(revision).collect())
        .map_err(py_err)
}

async fn plan(t: Arc<dyn RollbackTarget>, selector: Selector) -> PyResult<PyChange> {
    // The backend's preflight in one: as few calls as the engine's preflight makes.
    let change = t.prepare(&selector).await.map_err(py_err)?;
    Ok(PyChange { inner: change })
}

#[pymethods]
impl PyTarget {
    /// The target as messages and reports name it: `kind/name`.
    #[getter]
    fn target_id(&self) -> String {
        self.inner.id().to_string()
    }

    /// The kind (`lambda-alias`, `ecs-service`, `k8s-deployment`...).
    #[getter]
    fn kind(&self) -> String {
        self.inner.id().kind
    }

    /// The revision in use now.
    fn current(&self, py: Python<'_>) -> PyResult<PyRevision> {
        block_on(py, current(self.inner.clone()))
    }

    /// `current()`, awaitable.
    fn current_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, current(self.inner.clone()))
    }

    /// Every revision one can roll back to, newest first, including the one in use.
    fn history(&self, py: Python<'_>) -> PyResult<Vec<PyRevision>> {
        block_on(py, history(self.inner.clone()))
    }

    /// `history()`, awaitable.
    fn history_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, history(self.inner.clone()))
    }

    /// The change a selector asks for, with its diff; changes nothing.
    fn plan(&self, py: Python<'_>, selector: &Bound<'_, PyAny>) -> PyResult<PyChange> {
        let selector = selector_of(selector)?;
        block_on(py, plan(self.inner.clone(), selector))
    }

    /// `plan()`, awaitable.
    fn plan_async<'py>(
        &self,
        py: Python<'py>,
        selector: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let selector = selector_of(selector)?;
        awaitable(py, plan(self.inner.clone(), selector))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        format!("<{} {}>", type_name(slf.as_any()), slf.get().inner.id())
    }
}

/// A Python object used as a target: `current()`, `history()`, `apply(change)` and
/// `wait(revision)` are called on the runtime's blocking threads (coroutines are awaited).
///
/// - `current()` returns a `Revision` (or its id as a str); `history()` a list of them,
///   newest first.
/// - `apply(change)` moves the target. Before calling it the library reads `current()`:
///   already at `change.to_revision` is a skip (apply is not called), neither there nor at
///   `change.from_revision` is a conflict. So custom targets keep the trait's idempotence
///   and conflict rules without code of their own.
/// - `wait(revision)` says whether the target is stable at `revision`: `True` or `None`
///   stable, `False` or a str (a progress message) still converging (asked again with
///   back-off until the step's timeout); raising fails the step.
/// - Optional: `resolve(selector)` returning the `Revision` a selector picks (for targets
///   whose revisions are not all in the history, like a restart); `name` and `kind`
///   attributes naming the target (default: the class name and `python`).
pub(crate) struct PythonTarget {
    obj: Arc<Py<PyAny>>,
    id: TargetId,
    label: String,
    has_resolve: bool,
}

impl fmt::Debug for PythonTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PythonTarget")
            .field("id", &self.id)
            .finish()
    }
}

const REQUIRED: [&str; 4] = ["current", "history", "apply", "wait"];

impl PythonTarget {
    fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|m| !obj.getattr(*m).map(|a| a.is_callable()).unwrap_or(false))
            .collect();
        if !missing.is_empty() {
            return Err(PyTypeError::new_err(format!(
                "{} is not a target: a target is a rollback.Target (LambdaAlias, EcsService, Deployment...) or an object with the methods current(), history(), apply(change) and wait(revision); missing: {}",
                type_name(obj),
                missing.join(", ")
            )));
        }
        let text = |attr: &str| -> PyResult<Option<String>> {
            match obj.getattr(attr) {
                Ok(v) if !v.is_none() && !v.is_callable() => Ok(Some(v.str()?.to_string())),
                _ => Ok(None),
            }
        };
        let name = text("name")?.unwrap_or_else(|| type_name(obj));
        let kind = text("kind")?.unwrap_or_else(|| PYTHON_KIND.to_string());
        if name.trim().is_empty() || kind.trim().is_empty() {
            return Err(crate::errors::invalid(
                &type_name(obj),
                "a Python target's name and kind must not be empty",
            ));
        }
        let id = TargetId::new(kind, name);
        let has_resolve = obj
            .getattr("resolve")
            .map(|a| a.is_callable())
            .unwrap_or(false);
        Ok(PythonTarget {
            obj: Arc::new(obj.clone().unbind()),
            label: id.to_string(),
            id,
            has_resolve,
        })
    }

    fn err(&self, e: PyErr, method: &str) -> Error {
        from_py_err(e, &format!("{} ({method})", self.label))
    }

    async fn revision_call<A>(&self, method: &'static str, args: A) -> Result<Revision>
    where
        A: for<'py> pyo3::call::PyCallArgs<'py> + Send + 'static,
    {
        let value = call_method(self.obj.clone(), method, args)
            .await
            .map_err(|e| self.err(e, method))?;
        Python::attach(|py| revision_of(value.bind(py))).map_err(|e| self.err(e, method))
    }
}

#[async_trait]
impl RollbackTarget for PythonTarget {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    fn spec(&self) -> TargetSpec {
        TargetSpec::new(
            PYTHON_KIND,
            serde_json::json!({"kind": self.id.kind, "name": self.id.name}),
        )
    }

    async fn current(&self) -> Result<Revision> {
        self.revision_call("current", ()).await
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let value = call_method(self.obj.clone(), "history", ())
            .await
            .map_err(|e| self.err(e, "history"))?;
        Python::attach(|py| -> PyResult<Vec<Revision>> {
            let value = value.bind(py);
            let items = match value.cast::<PyList>() {
                Ok(list) => list.iter().collect::<Vec<_>>(),
                Err(_) => value.try_iter()?.collect::<PyResult<Vec<_>>>()?,
            };
            items.iter().map(revision_of).collect()
        })
        .map_err(|e| self.err(e, "history"))
    }

    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        if !self.has_resolve {
            let (history, current) = futures::try_join!(self.history(), self.current())?;
            return selector.resolve(&self.id, &history, &current.id);
        }
        let arg = Python::attach(|py| selector_to_py(py, selector).map(Bound::unbind))
            .map_err(|e| self.err(e, "resolve"))?;
        self.revision_call("resolve", (arg,)).await
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let now = self.current().await?;
        if now.same_as(&change.to) {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        if !now.same_as(&change.from) {
            return Err(Error::conflict(
                self.label.clone(),
                change.from.id.clone(),
                now.id,
            ));
        }
        let arg = PyChange {
            inner: change.clone(),
        };
        call_method(self.obj.clone(), "apply", (arg,))
            .await
            .map_err(|e| self.err(e, "apply"))?;
        Ok(ApplyOutcome::Applied)
    }

    async fn check_stable(&self, rev: &Revision) -> Result<Stability> {
        let arg = revision(rev);
        let value = match call_method(self.obj.clone(), "wait", (arg,)).await {
            Ok(v) => v,
            Err(e) => {
                let err = self.err(e, "wait");
                return if err.is_retryable() {
                    Err(err)
                } else {
                    Ok(Stability::Failed(err.to_string()))
                };
            }
        };
        Python::attach(|py| -> PyResult<Stability> {
            let value = value.bind(py);
            if value.is_none() {
                return Ok(Stability::Stable);
            }
            if let Ok(s) = value.cast::<pyo3::types::PyString>() {
                return Ok(Stability::Waiting(s.to_cow()?.into_owned()));
            }
            Ok(if value.is_truthy()? {
                Stability::Stable
            } else {
                Stability::Waiting(format!("waiting for revision {} to be stable", rev.id))
            })
        })
        .map_err(|e| self.err(e, "wait"))
    }
}

/// The target a Python object stands for: a built-in target, or a Python object with the
/// target methods.
pub(crate) fn target_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<dyn RollbackTarget>> {
    if let Ok(t) = obj.cast::<PyTarget>() {
        return Ok(t.get().inner.clone());
    }
    Ok(Arc::new(PythonTarget::new(obj)?))
}

/// A target driven by your own commands (`rollback_core::command_target`): `current`,
/// `history`, `apply` and optionally `plan` and `stable`, each a program and its arguments
/// (no shell), speaking the documented JSON contract on stdout. `env` values are shown in
/// specs and journals, `secret_env` values never (only their names).
#[pyclass(module = "rollback", name = "CommandTarget", extends = PyTarget, frozen)]
pub(crate) struct PyCommandTarget {
    name: String,
}

#[pymethods]
impl PyCommandTarget {
    #[new]
    #[pyo3(signature = (name, *, current, history, apply, plan=None, stable=None, env=None, secret_env=None, cwd=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: &str,
        current: Vec<String>,
        history: Vec<String>,
        apply: Vec<String>,
        plan: Option<Vec<String>>,
        stable: Option<Vec<String>>,
        env: Option<std::collections::BTreeMap<String, String>>,
        secret_env: Option<std::collections::BTreeMap<String, String>>,
        cwd: Option<std::path::PathBuf>,
        timeout: Option<crate::types::Seconds>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mut b = rollback_core::CommandTarget::builder(name)
            .current(current)
            .history(history)
            .apply(apply);
        if let Some(p) = plan {
            b = b.plan(p);
        }
        if let Some(s) = stable {
            b = b.stable(s);
        }
        for (k, v) in env.unwrap_or_default() {
            b = b.env(k, v);
        }
        for (k, v) in secret_env.unwrap_or_default() {
            b = b.secret_env(k, v);
        }
        if let Some(dir) = cwd {
            b = b.cwd(dir);
        }
        let what = format!("command/{name}");
        if let Some(t) = crate::types::Seconds::get_opt(timeout, &what, "timeout")? {
            b = b.timeout(t);
        }
        let t = b.build().map_err(crate::errors::py_err)?;
        Ok(PyTarget::init(Arc::new(t)).add_subclass(PyCommandTarget { name: name.into() }))
    }

    /// The target's name (its id is `command/<name>`).
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }
}
