//! Selectors: which revision to roll back to (`Selector` and its subclasses `Previous`,
//! `Exact`, `StepsBack`, `ImageTag`, `LastKnownGood`).

use pyo3::basic::CompareOp;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};
use rollback_core::Selector;

use super::args::{type_name, Int};
use crate::errors::invalid;

/// Which revision to roll back to. Use the subclasses: `Previous()`, `Exact(id)`,
/// `StepsBack(n)`, `ImageTag(tag)`.
#[pyclass(module = "rollback", name = "Selector", subclass, frozen)]
#[derive(Debug, Clone)]
pub(crate) struct PySelector {
    pub(crate) inner: Selector,
}

impl PySelector {
    fn init(inner: Selector) -> PyClassInitializer<Self> {
        PyClassInitializer::from(PySelector { inner })
    }
}

#[pymethods]
impl PySelector {
    fn __repr__(&self) -> String {
        match &self.inner {
            Selector::Previous => "Previous()".to_string(),
            Selector::Exact(id) => format!("Exact({id:?})"),
            Selector::StepsBack(n) => format!("StepsBack({n})"),
            Selector::ImageTag(tag) => format!("ImageTag({tag:?})"),
            Selector::LastKnownGood => "LastKnownGood()".to_string(),
            other => format!("Selector({other})"),
        }
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> Py<PyAny> {
        let py = other.py();
        match other.cast::<PySelector>() {
            Ok(o) => match op {
                CompareOp::Eq => (self.inner == o.get().inner).into_pyobject(py),
                CompareOp::Ne => (self.inner != o.get().inner).into_pyobject(py),
                _ => return py.NotImplemented(),
            }
            .map(|b| b.to_owned().into_any().unbind())
            .unwrap_or_else(|_| py.NotImplemented()),
            Err(_) => py.NotImplemented(),
        }
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.hash(&mut h);
        h.finish()
    }
}

/// The revision before the one in use (not "newest minus one").
#[pyclass(module = "rollback", name = "Previous", extends = PySelector, frozen)]
pub(crate) struct PyPrevious;

#[pymethods]
impl PyPrevious {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        PySelector::init(Selector::Previous).add_subclass(PyPrevious)
    }
}

/// The revision with this id (Lambda `"7"`, ECS `"family:14"`, a secret version id...).
#[pyclass(module = "rollback", name = "Exact", extends = PySelector, frozen)]
pub(crate) struct PyExact;

#[pymethods]
impl PyExact {
    #[new]
    fn new(id: &Bound<'_, PyAny>) -> PyResult<PyClassInitializer<Self>> {
        let id = if let Ok(s) = id.cast::<PyString>() {
            s.to_cow()?.into_owned()
        } else if id.is_instance_of::<PyInt>() {
            // A version or a count as a number: Exact(7) is Exact("7").
            let n: i64 = id.extract::<Int>()?.get("selector", "Exact({})", 0)?;
            n.to_string()
        } else {
            return Err(PyTypeError::new_err(format!(
                "Exact takes a revision id as str (or a number as int), not {}",
                type_name(id)
            )));
        };
        if id.trim().is_empty() {
            return Err(invalid("selector", "Exact needs a revision id"));
        }
        Ok(PySelector::init(Selector::exact(id)).add_subclass(PyExact))
    }

    /// The revision id.
    #[getter]
    fn id(slf: PyRef<'_, Self>) -> String {
        match &slf.as_super().inner {
            Selector::Exact(id) => id.clone(),
            _ => String::new(),
        }
    }
}

/// The revision `n` steps before the one in use (`StepsBack(1)` is `Previous()`).
#[pyclass(module = "rollback", name = "StepsBack", extends = PySelector, frozen)]
pub(crate) struct PyStepsBack;

#[pymethods]
impl PyStepsBack {
    #[new]
    fn new(n: Int) -> PyResult<PyClassInitializer<Self>> {
        // 0 is refused when resolved, with the target's name.
        let n: u32 = n.get("selector", "StepsBack({})", 0)?;
        Ok(PySelector::init(Selector::StepsBack(n)).add_subclass(PyStepsBack))
    }

    /// How many steps back.
    #[getter]
    fn n(slf: PyRef<'_, Self>) -> u32 {
        match &slf.as_super().inner {
            Selector::StepsBack(n) => *n,
            _ => 0,
        }
    }
}

/// The newest revision whose images carry this tag (`abc123` in `repo/api:abc123`).
#[pyclass(module = "rollback", name = "ImageTag", extends = PySelector, frozen)]
pub(crate) struct PyImageTag;

#[pymethods]
impl PyImageTag {
    #[new]
    fn new(tag: &str) -> PyResult<PyClassInitializer<Self>> {
        if tag.trim().is_empty() {
            return Err(invalid("selector", "ImageTag needs a non-empty tag"));
        }
        Ok(PySelector::init(Selector::image_tag(tag)).add_subclass(PyImageTag))
    }

    /// The tag.
    #[getter]
    fn tag(slf: PyRef<'_, Self>) -> String {
        match &slf.as_super().inner {
            Selector::ImageTag(t) => t.clone(),
            _ => String::new(),
        }
    }
}

/// The newest revision a past transaction verified healthy (it succeeded and its checks
/// passed), from the transaction's known-good records; an error when there is none.
#[pyclass(module = "rollback", name = "LastKnownGood", extends = PySelector, frozen)]
pub(crate) struct PyLastKnownGood;

#[pymethods]
impl PyLastKnownGood {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        PySelector::init(Selector::LastKnownGood).add_subclass(PyLastKnownGood)
    }
}

/// The selector a Python object stands for.
pub(crate) fn selector_of(obj: &Bound<'_, PyAny>) -> PyResult<Selector> {
    obj.cast::<PySelector>()
        .map(|s| s.get().inner.clone())
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "expected a selector (rollback.Previous(), Exact(id), StepsBack(n), ImageTag(tag) or LastKnownGood()), got {}",
                type_name(obj)
            ))
        })
}

/// The Python object for a selector (its subclass).
pub(crate) fn selector_to_py<'py>(py: Python<'py>, s: &Selector) -> PyResult<Bound<'py, PyAny>> {
    Ok(match s {
        Selector::Exact(_) => {
            Bound::new(py, PySelector::init(s.clone()).add_subclass(PyExact))?.into_any()
        }
        Selector::StepsBack(_) => {
            Bound::new(py, PySelector::init(s.clone()).add_subclass(PyStepsBack))?.into_any()
        }
        Selector::ImageTag(_) => {
            Bound::new(py, PySelector::init(s.clone()).add_subclass(PyImageTag))?.into_any()
        }
        Selector::LastKnownGood => Bound::new(
            py,
            PySelector::init(s.clone()).add_subclass(PyLastKnownGood),
        )?
        .into_any(),
        _ => Bound::new(py, PySelector::init(s.clone()).add_subclass(PyPrevious))?.into_any(),
    })
}
