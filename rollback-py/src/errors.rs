//! Errors across the border: the library's typed [`Error`] as the Python exception tree of
//! `rollback._errors` (base `RollbackError`; `NotFoundError` is also a `LookupError`,
//! `InvalidInputError` a `ValueError`, `RollbackTimeoutError` a `TimeoutError`), and Python
//! exceptions raised by user code (custom targets, checks, actions) as [`Error`]s.

use pyo3::exceptions::{PyConnectionError, PyLookupError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use rollback_core::{Error, ErrorKind};

/// The pure-Python module that defines the exception classes.
const ERRORS_MODULE: &str = "rollback._errors";

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors_module<'py>(py: Python<'py>) -> PyResult<&'py Bound<'py, PyModule>> {
    ERRORS
        .get_or_try_init(py, || py.import(ERRORS_MODULE).map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// The exception class called `name` in `rollback._errors`.
pub(crate) fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(errors_module(py)?.getattr(name)?.cast_into::<PyType>()?)
}

/// The stable name of an error kind (`not_found`, ...), as the exceptions' `kind` holds it.
pub(crate) fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not_found",
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Locked => "locked",
        ErrorKind::LeaseLost => "lease_lost",
        ErrorKind::Throttled => "throttled",
        ErrorKind::Timeout => "timeout",
        ErrorKind::RolloutFailed => "rollout_failed",
        ErrorKind::VerificationFailed => "verification_failed",
        ErrorKind::Backend => "backend",
        ErrorKind::Journal => "journal",
        ErrorKind::PermissionDenied => "permission_denied",
        _ => "error",
    }
}

fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "NotFoundError",
        ErrorKind::InvalidInput => "InvalidInputError",
        ErrorKind::Conflict => "ConflictError",
        ErrorKind::Locked => "LockedError",
        ErrorKind::LeaseLost => "LeaseLostError",
        ErrorKind::Throttled => "ThrottledError",
        ErrorKind::Timeout => "RollbackTimeoutError",
        ErrorKind::RolloutFailed => "RolloutError",
        ErrorKind::VerificationFailed => "VerificationError",
        ErrorKind::Backend => "BackendError",
        ErrorKind::Journal => "JournalError",
        ErrorKind::PermissionDenied => "PermissionDeniedError",
        _ => "RollbackError",
    }
}

/// A Python exception of the class `name` with the library's attributes.
pub(crate) fn new_error(
    py: Python<'_>,
    name: &str,
    message: String,
    target: &str,
    kind: &str,
    retryable: bool,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = class(py, name)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("target", target)?;
        kwargs.set_item("kind", kind)?;
        kwargs.set_item("retryable", retryable)?;
        let value = cls.call((message.clone(),), Some(&kwargs))?;
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|e| e)
}

/// The Python exception for a library error. Its message is the error's own (it names the
/// target and never holds a secret value).
pub(crate) fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    let kind = e.kind();
    new_error(
        py,
        class_name(kind),
        e.to_string(),
        e.target(),
        kind_name(kind),
        e.is_retryable(),
    )
}

/// [`to_py`] for use in `map_err` where the GIL is not held.
pub(crate) fn py_err(e: Error) -> PyErr {
    Python::attach(|py| to_py(py, &e))
}

/// `InvalidInputError` about `target`, raised for bad arguments before anything runs.
pub(crate) fn invalid(target: &str, message: impl Into<String>) -> PyErr {
    py_err(Error::invalid(target, message))
}

/// The library error for an exception raised by Python code acting for `target` (a custom
/// target's method, a check, an action). The library's own exceptions keep their kind;
/// `LookupError` is not found, `ValueError` invalid input, `TimeoutError` a timeout,
/// `ConnectionError` a retryable backend error, anything else a backend error.
pub(crate) fn from_py(py: Python<'_>, err: &PyErr, target: &str) -> Error {
    let value = err.value(py);
    let type_name = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let text = value
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| String::new());
    let message = if text.is_empty() {
        type_name.clone()
    } else {
        format!("{type_name}: {text}")
    };
    let ours = class(py, "RollbackError")
        .map(|c| value.is_instance(&c).unwrap_or(false))
        .unwrap_or(false);
    let kind = if ours {
        value
            .getattr("kind")
            .and_then(|k| k.extract::<String>())
            .unwrap_or_default()
    } else if err.is_instance_of::<PyLookupError>(py) {
        "not_found".into()
    } else if err.is_instance_of::<PyValueError>(py) {
        "invalid_input".into()
    } else if err.is_instance_of::<PyTimeoutError>(py) {
        "timeout".into()
    } else if err.is_instance_of::<PyConnectionError>(py) {
        "transient".into()
    } else {
        String::new()
    };
    match kind.as_str() {
        "not_found" => Error::not_found(target, message, "raised by Python code"),
        "invalid_input" => Error::invalid(target, message),
        "conflict" => Error::conflict(target, "the revision planned", message),
        "throttled" => Error::throttled(target, message, None),
        "timeout" => Error::timeout(target, "Python code", std::time::Duration::ZERO, message),
        "rollout_failed" => Error::rollout_failed(target, message),
        "verification_failed" => Error::verification_failed(target, "python", message),
        "transient" => Error::backend(target, message, true),
        _ => Error::backend(target, message, false),
    }
}

/// [`from_py`] where the GIL is not held.
pub(crate) fn from_py_err(err: PyErr, target: &str) -> Error {
    Python::attach(|py| from_py(py, &err, target))
}
