//! Checks: `rollback.Check` (a Python callable under a policy) and the built-in checks
//! that extend it (`HttpCheck`, `CommandCheck`; `AlarmCheck` and `PodsReady` live with
//! their backends), plus on-failure actions from Python callables.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString, PyTuple};
use rollback_core::transaction::FailureAction;
use rollback_core::verify::{CommandCheck, HttpCheck};
use rollback_core::{Check, CheckOutcome, Result, Verifier};

use crate::errors::{from_py_err, invalid, py_err};
use crate::runtime::{awaitable, block_on, call};
use crate::types::{type_name, verdict, Int, PyPolicy, PyVerdict, Seconds};

/// A check: a verifier and the policy it runs under (attempts, interval, consecutive
/// passes, deadline). `Check(func)` makes one from a Python callable that returns a bool
/// (or raises); the built-in checks (`HttpCheck`, `CommandCheck`, `aws.AlarmCheck`,
/// `k8s.PodsReady`) extend this class.
#[pyclass(module = "rollback", name = "Check", subclass, frozen)]
pub(crate) struct PyCheck {
    pub(crate) inner: Check,
}

impl PyCheck {
    pub(crate) fn init(
        verifier: impl Verifier + 'static,
        policy: Option<PyPolicy>,
    ) -> PyClassInitializer<Self> {
        let check = Check::new(verifier).policy(policy.map(|p| p.inner).unwrap_or_default());
        PyClassInitializer::from(PyCheck { inner: check })
    }
}

async fn run_check(check: Check) -> PyResult<PyVerdict> {
    let v = check.policy.run(&*check.verifier, |_, _| {}).await;
    Ok(verdict(&v))
}

#[pymethods]
impl PyCheck {
    #[new]
    #[pyo3(signature = (func, *, name=None, policy=None))]
    fn new(
        func: &Bound<'_, PyAny>,
        name: Option<String>,
        policy: Option<PyPolicy>,
    ) -> PyResult<Self> {
        let verifier = PyVerifier::new(func, name)?;
        let check = Check::new(verifier).policy(policy.map(|p| p.inner).unwrap_or_default());
        Ok(PyCheck { inner: check })
    }

    /// The check's name, as reports show it.
    #[getter]
    fn name(&self) -> String {
        self.inner.verifier.name()
    }

    /// The policy it runs under.
    #[getter]
    fn policy(&self) -> PyPolicy {
        PyPolicy {
            inner: self.inner.policy,
        }
    }

    /// The same check under another policy.
    fn with_policy(&self, policy: PyPolicy) -> PyCheck {
        PyCheck {
            inner: self.inner.clone().policy(policy.inner),
        }
    }

    /// Runs the check under its policy now and returns the verdict.
    fn run(&self, py: Python<'_>) -> PyResult<PyVerdict> {
        block_on(py, run_check(self.inner.clone()))
    }

    /// `run()`, awaitable.
    fn run_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, run_check(self.inner.clone()))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        format!(
            "<{} {}>",
            type_name(slf.as_any()),
            slf.get().inner.verifier.name()
        )
    }
}

/// The check a Python object stands for: a `rollback.Check`, or a callable (default
/// policy).
pub(crate) fn check_of(obj: &Bound<'_, PyAny>) -> PyResult<Check> {
    if let Ok(c) = obj.cast::<PyCheck>() {
        return Ok(c.get().inner.clone());
    }
    if obj.is_callable() {
        return Ok(Check::new(PyVerifier::new(obj, None)?));
    }
    Err(PyTypeError::new_err(format!(
        "expected a check (rollback.Check, HttpCheck, CommandCheck, aws.AlarmCheck, k8s.PodsReady) or a callable returning a bool, got {}",
        type_name(obj)
    )))
}

/// The name Python gives a callable (`__qualname__`, `__name__`, else its type).
pub(crate) fn callable_name(obj: &Bound<'_, PyAny>) -> String {
    for attr in ["__qualname__", "__name__"] {
        if let Ok(n) = obj.getattr(attr).and_then(|n| n.extract::<String>()) {
            return n;
        }
    }
    type_name(obj)
}

/// A Python callable as a verifier. Its result: `True`/truthy or `None` passes, `False`
/// (or falsy) fails, `(passed, evidence)` gives both; an exception fails the attempt with
/// the exception as evidence. Coroutine functions are awaited.
pub(crate) struct PyVerifier {
    func: Arc<Py<PyAny>>,
    name: String,
}

impl fmt::Debug for PyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PyVerifier")
            .field("name", &self.name)
            .finish()
    }
}

impl PyVerifier {
    pub(crate) fn new(func: &Bound<'_, PyAny>, name: Option<String>) -> PyResult<Self> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "a check is a callable returning a bool; {} is not callable",
                type_name(func)
            )));
        }
        let name = name.unwrap_or_else(|| callable_name(func));
        Ok(PyVerifier {
            func: Arc::new(func.clone().unbind()),
            name,
        })
    }
}

fn outcome(name: &str, value: &Bound<'_, PyAny>) -> PyResult<CheckOutcome> {
    if value.is_none() {
        return Ok(CheckOutcome::pass(format!("{name}: returned None")));
    }
    if let Ok(b) = value.cast::<PyBool>() {
        let passed = b.is_true();
        let text = format!("{name}: {}", if passed { "True" } else { "False" });
        return Ok(if passed {
            CheckOutcome::pass(text)
        } else {
            CheckOutcome::fail(text)
        });
    }
    if let Ok(t) = value.cast::<PyTuple>() {
        if t.len() == 2 {
            let passed = t.get_item(0)?.is_truthy()?;
            let evidence = t.get_item(1)?;
            let evidence = match evidence.cast::<PyString>() {
                Ok(s) => s.to_cow()?.into_owned(),
                Err(_) => evidence.str()?.to_string(),
            };
            return Ok(CheckOutcome {
                passed,
                evidence: format!("{name}: {evidence}"),
            });
        }
    }
    let passed = value.is_truthy()?;
    let text = format!(
        "{name}: returned a {} ({})",
        type_name(value),
        if passed { "truthy" } else { "falsy" }
    );
    Ok(CheckOutcome {
        passed,
        evidence: text,
    })
}

#[async_trait]
impl Verifier for PyVerifier {
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The callable was checked when the check was made; its name must say something.
    fn validate(&self) -> Result<()> {
        named("check", &self.name)
    }

    async fn check(&self) -> Result<CheckOutcome> {
        let target = format!("check {}", self.name);
        match call(self.func.clone(), ()).await {
            Ok(value) => Python::attach(|py| outcome(&self.name, value.bind(py)))
                .map_err(|e| from_py_err(e, &target)),
            Err(e) => Ok(CheckOutcome::fail(format!(
                "{}: raised {}",
                self.name,
                Python::attach(|py| {
                    let v = e.value(py);
                    format!(
                        "{}: {}",
                        type_name(v.as_any()),
                        v.str().map(|s| s.to_string()).unwrap_or_default()
                    )
                })
            ))),
        }
    }
}

/// Refuses an empty `name=` for a Python check or action: reports would not say which.
fn named(what: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(rollback_core::Error::invalid(
            what,
            format!("the {what}'s name is empty; pass name=\"...\" saying what it does"),
        ));
    }
    Ok(())
}

/// An HTTP request that passes when the answer looks healthy: by default a `GET` that must
/// answer `status` within 10 s; optionally a substring of the body, a JSON value at a
/// pointer, and a maximum latency. Header values of secret-looking names are never shown.
#[pyclass(module = "rollback", name = "HttpCheck", extends = PyCheck, frozen)]
pub(crate) struct PyHttpCheck {
    url: String,
}

#[pymethods]
impl PyHttpCheck {
    #[new]
    #[pyo3(signature = (url, status=Int::Fits(200), *, method="GET", body_contains=None, json_pointer=None, json_value=None, headers=None, timeout=None, max_latency=None, policy=None))]
    #[pyo3(
        text_signature = "(url, status=200, *, method=\"GET\", body_contains=None, json_pointer=None, json_value=None, headers=None, timeout=None, max_latency=None, policy=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: &str,
        status: Int,
        method: &str,
        body_contains: Option<String>,
        json_pointer: Option<String>,
        json_value: Option<Bound<'_, PyAny>>,
        headers: Option<BTreeMap<String, String>>,
        timeout: Option<Seconds>,
        max_latency: Option<Seconds>,
        policy: Option<PyPolicy>,
    ) -> PyResult<PyClassInitializer<Self>> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "http-check",
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        }
        let status: u16 = status.within("http-check", "status={} (an HTTP status)", 100, 599)?;
        let mut check = HttpCheck::new(url).status(status).method(method);
        if let Some(text) = body_contains {
            check = check.body_contains(text);
        }
        match (json_pointer, json_value) {
            (Some(p), Some(v)) => {
                let text: String = py.import("json")?.call_method1("dumps", (v,))?.extract()?;
                let value: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| invalid("http-check", format!("json_value is not JSON: {e}")))?;
                check = check.json_value(p, value);
            }
            (Some(p), None) => check = check.json_pointer(p),
            (None, Some(_)) => return Err(invalid(
                "http-check",
                "json_value needs json_pointer (where in the body the value is, e.g. \"/status\")",
            )),
            (None, None) => {}
        }
        for (k, v) in headers.unwrap_or_default() {
            check = check.header(k, v);
        }
        if let Some(t) = Seconds::get_opt(timeout, "http-check", "timeout")? {
            check = check.timeout(t);
        }
        if let Some(m) = Seconds::get_opt(max_latency, "http-check", "max_latency")? {
            check = check.max_latency(m);
        }
        check.validate().map_err(py_err)?;
        Ok(PyCheck::init(check, policy).add_subclass(PyHttpCheck {
            url: url.to_string(),
        }))
    }

    /// The URL.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }
}

/// A program run directly (no shell) that passes when it exits 0, like runbook 002's
/// `smoke_test.sh`. Environment values are never shown (pass secrets through `env`, or
/// `secret_env` under names that do not look secret); the values of secret-looking env
/// vars, of `secret_env` and of `secrets` are taken out of the output it prints.
#[pyclass(module = "rollback", name = "CommandCheck", extends = PyCheck, frozen)]
pub(crate) struct PyCommandCheck {
    argv: Vec<String>,
}

#[pymethods]
impl PyCommandCheck {
    #[new]
    #[pyo3(signature = (argv, *, env=None, secret_env=None, secrets=None, cwd=None, timeout=None, policy=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        argv: &Bound<'_, PyAny>,
        env: Option<BTreeMap<String, String>>,
        secret_env: Option<BTreeMap<String, String>>,
        secrets: Option<Vec<String>>,
        cwd: Option<PathBuf>,
        timeout: Option<Seconds>,
        policy: Option<PyPolicy>,
    ) -> PyResult<PyClassInitializer<Self>> {
        if argv.is_instance_of::<PyString>() {
            return Err(invalid(
                "command-check",
                "give argv as a list (program first), e.g. [\"./smoke_test.sh\", \"--url\", \"https://api\"]; it is not run through a shell",
            ));
        }
        let argv: Vec<String> = argv
            .extract()
            .map_err(|_| PyTypeError::new_err("argv must be a list of str (program first)"))?;
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(invalid(
                "command-check",
                "argv is empty; give the program to run and its arguments",
            ));
        }
        let mut check = CommandCheck::new(argv.clone());
        for (k, v) in env.unwrap_or_default() {
            check = check.env(k, v);
        }
        for (k, v) in secret_env.unwrap_or_default() {
            check = check.secret_env(k, v);
        }
        for v in secrets.unwrap_or_default() {
            check = check.secret(v);
        }
        if let Some(dir) = cwd {
            check = check.cwd(dir);
        }
        if let Some(t) = Seconds::get_opt(timeout, "command-check", "timeout")? {
            check = check.timeout(t);
        }
        check.validate().map_err(py_err)?;
        Ok(PyCheck::init(check, policy).add_subclass(PyCommandCheck { argv }))
    }

    /// The program and its arguments.
    #[getter]
    fn argv(&self) -> Vec<String> {
        self.argv.clone()
    }
}

/// A Python callable as an on-failure or on-success action; what it returns (a str, or None) goes into
/// the report.
pub(crate) struct PyAction {
    func: Arc<Py<PyAny>>,
    name: String,
}

impl fmt::Debug for PyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PyAction")
            .field("name", &self.name)
            .finish()
    }
}

impl PyAction {
    /// The action of callable `func`, given to `when` (`on_failure`, `on_success`).
    pub(crate) fn new(func: &Bound<'_, PyAny>, name: Option<String>, when: &str) -> PyResult<Self> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "{when} takes a callable or a rollback.Action; {} is neither",
                type_name(func)
            )));
        }
        Ok(PyAction {
            name: name.unwrap_or_else(|| callable_name(func)),
            func: Arc::new(func.clone().unbind()),
        })
    }
}

#[async_trait]
impl FailureAction for PyAction {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn validate(&self) -> Result<()> {
        named("action", &self.name)
    }

    async fn run(&self) -> Result<String> {
        let target = format!("action {}", self.name);
        let value = call(self.func.clone(), ())
            .await
            .map_err(|e| from_py_err(e, &target))?;
        Python::attach(|py| -> PyResult<String> {
            let value = value.bind(py);
            Ok(if value.is_none() {
                "done".to_string()
            } else {
                value.str()?.to_string()
            })
        })
        .map_err(|e| from_py_err(e, &target))
    }
}
