//! `rollback.testing`: the in-memory target (`rollback_core::FakeTarget`) with its fault
//! injection, and the conformance suite run on any target, a user's own Python class
//! included. The pure-Python helpers (fake checks, the event recorder, assertions, pytest
//! fixtures) are in `python/rollback/testing.py`.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rollback_core::conformance::{run as run_suite, Fixture};
use rollback_core::fake::FailureKind;
use rollback_core::{FakeTarget, RollbackTarget};

use crate::check::PyCheck;
use crate::errors::{invalid, py_err};
use crate::runtime::{awaitable, block_on};
use crate::target::{target_of, PyTarget};
use crate::types::{revision_of, Int, PyPolicy, Seconds};

/// A target that lives in memory, for unit-testing rollback logic: revisions (oldest first,
/// the last in use unless `current` says otherwise), an optional convergence delay, and
/// faults to inject. It behaves as the real backends do (idempotent apply, conflicts,
/// stability waits), and records what was done to it.
#[pyclass(module = "rollback.testing", name = "InMemoryTarget", extends = PyTarget, frozen)]
pub(crate) struct PyInMemoryTarget {
    inner: FakeTarget,
}

fn failure_kind(name: &str, kind: &str) -> PyResult<FailureKind> {
    Ok(match kind {
        "throttled" => FailureKind::Throttled,
        "transient" | "5xx" => FailureKind::Transient,
        "permanent" => FailureKind::Permanent,
        "conflict" => FailureKind::Conflict,
        other => {
            return Err(invalid(
                &format!("memory/{name}"),
                format!("kind={other:?} is not a fault; give \"throttled\", \"transient\" (a 5xx), \"permanent\" or \"conflict\""),
            ))
        }
    })
}

#[pymethods]
impl PyInMemoryTarget {
    #[new]
    #[pyo3(signature = (name, revisions, *, current = None, convergence = None))]
    fn new(
        name: &str,
        revisions: Vec<Bound<'_, PyAny>>,
        current: Option<String>,
        convergence: Option<Seconds>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let id = format!("memory/{name}");
        let mut b = FakeTarget::builder(name);
        for r in &revisions {
            b = b.revision(revision_of(r)?);
        }
        if let Some(c) = current {
            b = b.current(c);
        }
        if let Some(d) = Seconds::get_opt(convergence, &id, "convergence")? {
            b = b.convergence(d);
        }
        let t = b.build().map_err(py_err)?;
        Ok(PyTarget::init(Arc::new(t.clone())).add_subclass(PyInMemoryTarget { inner: t }))
    }

    /// The name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The id of the revision in use (without a call counted in `calls`).
    #[getter]
    fn current_id(&self) -> String {
        self.inner.current_id()
    }

    /// Every real change `apply` made, as `(from, to)` ids, in order.
    #[getter]
    fn applied(&self) -> Vec<(String, String)> {
        self.inner.applied()
    }

    /// How many real changes `apply` made.
    #[getter]
    fn apply_count(&self) -> usize {
        self.inner.apply_count()
    }

    /// The target's methods the library called, in order: `current`, `history`,
    /// `resolve`, `plan`, `apply`, `check_stable`.
    #[getter]
    fn calls(&self) -> Vec<String> {
        self.inner.calls()
    }

    /// Makes `revision` (a `Revision` or an id) the newest and the one in use, as a deploy
    /// does: the scene before a rollback.
    fn deploy(&self, revision: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.deploy(revision_of(revision)?).map_err(py_err)
    }

    /// Puts the target at revision `id` (which must exist), as if someone else moved it.
    fn set_current(&self, id: String) -> PyResult<()> {
        self.inner.set_current(id).map_err(py_err)
    }

    /// The next `n` applies fail with `kind`: `"throttled"` (retried), `"transient"` (a
    /// 5xx, retried), `"permanent"` (a 4xx) or `"conflict"` (someone else's change).
    #[pyo3(signature = (n = None, kind = "transient"))]
    fn fail_next_applies(&self, n: Option<Int>, kind: &str) -> PyResult<()> {
        let id = format!("memory/{}", self.inner.name());
        let n: u32 = match n {
            Some(n) => n.get(&id, "fail_next_applies({})", 1)?,
            None => 1,
        };
        self.inner
            .fail_next_applies(n, failure_kind(self.inner.name(), kind)?);
        Ok(())
    }

    /// A rollout to revision `id` fails (as a Deployment past its progress deadline).
    #[pyo3(signature = (id, message = "the rollout failed (injected)"))]
    fn fail_rollout(&self, id: String, message: &str) {
        self.inner.fail_rollout(id, message);
    }

    /// Revision `id` never becomes stable (the step's timeout ends the wait).
    fn never_stable(&self, id: String) {
        self.inner.never_stable(id);
    }

    /// Whether revision `id` is healthy for :meth:`health_check` (every one is, by default).
    #[pyo3(signature = (id, healthy = true))]
    fn set_healthy(&self, id: String, healthy: bool) {
        self.inner.set_healthy(id, healthy);
    }

    /// Removes every injected fault (failing applies and rollouts, never-stable revisions).
    fn clear_faults(&self) {
        self.inner.clear_faults();
    }

    /// A check that passes when the revision in use is healthy (see :meth:`set_healthy`).
    #[pyo3(signature = (*, policy = None))]
    fn health_check(&self, py: Python<'_>, policy: Option<PyPolicy>) -> PyResult<Py<PyCheck>> {
        Py::new(py, PyCheck::init(self.inner.health_check(), policy))
    }
}

/// What the conformance suite found: the checks that `passed` (a skipped one says why) and
/// the `failures`, each `"check: what went wrong"`.
#[pyclass(
    module = "rollback.testing",
    name = "ConformanceReport",
    frozen,
    get_all
)]
pub(crate) struct PyConformanceReport {
    passed: Vec<String>,
    failures: Vec<String>,
}

#[pymethods]
impl PyConformanceReport {
    /// Whether every check passed.
    #[getter]
    fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    fn __bool__(&self) -> bool {
        self.ok()
    }

    fn __str__(&self) -> String {
        let mut out = format!(
            "{} check(s) passed, {} failed",
            self.passed.len(),
            self.failures.len()
        );
        for f in &self.failures {
            out.push_str("\n  FAILED ");
            out.push_str(f);
        }
        out
    }

    fn __repr__(&self) -> String {
        format!(
            "<ConformanceReport: {} passed, {} failed>",
            self.passed.len(),
            self.failures.len()
        )
    }
}

fn fixture(
    unknown_revision: String,
    secret_canary: Option<String>,
    stable_timeout: Seconds,
    may_mutate: bool,
) -> PyResult<Fixture> {
    if unknown_revision.is_empty() {
        return Err(PyValueError::new_err(
            "unknown_revision must be a revision id the target does not have",
        ));
    }
    Ok(Fixture {
        unknown_revision,
        secret_canary,
        stable_timeout: stable_timeout.get("conformance", "stable_timeout")?,
        may_mutate,
    })
}

/// The identity check's failure every Python class gets by design: its journaled spec
/// has the kind `python` (a resume is given the object again), whatever its `kind` says.
const PYTHON_SPEC: &str = "identity: spec().kind is \"python\"";

/// The suite's run on `target`, checked and ready to be awaited.
fn suite(
    target: &Bound<'_, PyAny>,
    fixture: Fixture,
) -> PyResult<impl std::future::Future<Output = PyResult<PyConformanceReport>> + Send + 'static> {
    let python_class = !target.is_instance_of::<PyTarget>();
    Ok(conformance_of(target_of(target)?, fixture, python_class))
}

async fn conformance_of(
    target: Arc<dyn RollbackTarget>,
    fixture: Fixture,
    python_class: bool,
) -> PyResult<PyConformanceReport> {
    let r = run_suite(&*target, &fixture).await;
    let mut passed = r.passed;
    let mut failures = Vec::new();
    for f in r.failures {
        if python_class && f.starts_with(PYTHON_SPEC) {
            passed.push("identity: spec kind `python` (a Python class is journaled as such; resume takes the object again)".into());
        } else {
            failures.push(f);
        }
    }
    Ok(PyConformanceReport { passed, failures })
}

/// Runs the conformance suite every built-in target passes on `target` (a built-in one or
/// your own Python class): identity, history order, selectors and their errors, that a plan
/// changes nothing, and (with `may_mutate`) apply, idempotence, conflict detection and
/// stability waits, putting the target back afterwards. With `secret_canary` it also checks
/// that value never shows in reprs, revisions, plans or errors.
#[pyfunction]
#[pyo3(signature = (target, *, unknown_revision = "does-not-exist-0".to_string(), secret_canary = None, stable_timeout = Seconds::of(60), may_mutate = true))]
pub(crate) fn conformance(
    py: Python<'_>,
    target: &Bound<'_, PyAny>,
    unknown_revision: String,
    secret_canary: Option<String>,
    stable_timeout: Seconds,
    may_mutate: bool,
) -> PyResult<PyConformanceReport> {
    let fixture = fixture(unknown_revision, secret_canary, stable_timeout, may_mutate)?;
    block_on(py, suite(target, fixture)?)
}

/// :func:`conformance`, awaitable.
#[pyfunction]
#[pyo3(signature = (target, *, unknown_revision = "does-not-exist-0".to_string(), secret_canary = None, stable_timeout = Seconds::of(60), may_mutate = true))]
pub(crate) fn conformance_async<'py>(
    py: Python<'py>,
    target: &Bound<'py, PyAny>,
    unknown_revision: String,
    secret_canary: Option<String>,
    stable_timeout: Seconds,
    may_mutate: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let fixture = fixture(unknown_revision, secret_canary, stable_timeout, may_mutate)?;
    awaitable(py, suite(target, fixture)?)
}
