//! Shared state from Python: the base classes `rollback.Locks`, `rollback.KnownGoodStore`
//! and `rollback.JournalStore`, which the stores of `rollback.aws` (DynamoDB, S3) and
//! `rollback.k8s` (Leases) extend, and what `Transaction(...)` and `resume...(...)` take.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rollback_core::journal::JournalStore;
use rollback_core::{FileKnownGood, FileLocks, KnownGoodStore, LockManager};

use crate::errors::invalid;
use crate::types::type_name;

/// Where leases are kept: `rollback.aws.DynamoDbLocks`, `rollback.k8s.LeaseLocks` (a
/// folder on this machine is `locks_dir=`).
#[pyclass(module = "rollback", name = "Locks", subclass, frozen)]
pub(crate) struct PyLocks {
    pub(crate) inner: Arc<dyn LockManager>,
}

impl PyLocks {
    pub(crate) fn init(inner: Arc<dyn LockManager>) -> PyClassInitializer<Self> {
        PyClassInitializer::from(PyLocks { inner })
    }
}

#[pymethods]
impl PyLocks {
    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// Where verified-good revisions are kept: `rollback.aws.DynamoDbKnownGood`,
/// `rollback.aws.S3KnownGood` (a folder on this machine is `known_good_dir=`).
#[pyclass(module = "rollback", name = "KnownGoodStore", subclass, frozen)]
pub(crate) struct PyKnownGoodStore {
    pub(crate) inner: Arc<dyn KnownGoodStore>,
}

impl PyKnownGoodStore {
    pub(crate) fn init(inner: Arc<dyn KnownGoodStore>) -> PyClassInitializer<Self> {
        PyClassInitializer::from(PyKnownGoodStore { inner })
    }
}

#[pymethods]
impl PyKnownGoodStore {
    fn __repr__(&self) -> String {
        format!("<KnownGoodStore {}>", self.inner.describe())
    }
}

/// Where journals are kept beyond this machine: `rollback.aws.S3Journals`.
#[pyclass(module = "rollback", name = "JournalStore", subclass, frozen)]
pub(crate) struct PyJournalStore {
    pub(crate) inner: Arc<dyn JournalStore>,
}

impl PyJournalStore {
    pub(crate) fn init(inner: Arc<dyn JournalStore>) -> PyClassInitializer<Self> {
        PyClassInitializer::from(PyJournalStore { inner })
    }
}

#[pymethods]
impl PyJournalStore {
    fn __repr__(&self) -> String {
        format!("<JournalStore {}>", self.inner.describe())
    }
}

fn wrong(what: &str, want: &str, obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!("{what} must be {want}, not {}", type_name(obj)))
}

pub(crate) fn locks_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<dyn LockManager>> {
    obj.cast::<PyLocks>()
        .map(|l| l.get().inner.clone())
        .map_err(|_| {
            wrong(
                "locks",
                "a rollback.Locks (rollback.aws.DynamoDbLocks, rollback.k8s.LeaseLocks)",
                obj,
            )
        })
}

pub(crate) fn known_good_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<dyn KnownGoodStore>> {
    obj.cast::<PyKnownGoodStore>()
        .map(|l| l.get().inner.clone())
        .map_err(|_| {
            wrong(
                "known_good",
                "a rollback.KnownGoodStore (rollback.aws.DynamoDbKnownGood, rollback.aws.S3KnownGood)",
                obj,
            )
        })
}

pub(crate) fn journal_store_of(obj: &Bound<'_, PyAny>) -> PyResult<Arc<dyn JournalStore>> {
    obj.cast::<PyJournalStore>()
        .map(|l| l.get().inner.clone())
        .map_err(|_| {
            wrong(
                "journal_store",
                "a rollback.JournalStore (rollback.aws.S3Journals)",
                obj,
            )
        })
}

/// The stores `Transaction(...)`, `resume(...)` and `resume_from_store(...)` take: each a
/// folder on this machine or a shared store, not both; `None` where neither was given.
pub(crate) struct Stores {
    pub(crate) locks: Option<Arc<dyn LockManager>>,
    pub(crate) known_good: Option<Arc<dyn KnownGoodStore>>,
    pub(crate) journal_store: Option<Arc<dyn JournalStore>>,
}

/// What was passed as stores (Python `None` counts as not given).
#[derive(Default)]
pub(crate) struct StoreArgs<'a, 'py> {
    pub(crate) locks_dir: Option<PathBuf>,
    pub(crate) locks: Option<&'a Bound<'py, PyAny>>,
    pub(crate) known_good_dir: Option<PathBuf>,
    pub(crate) known_good: Option<&'a Bound<'py, PyAny>>,
    pub(crate) journal_store: Option<&'a Bound<'py, PyAny>>,
}

/// `o`, unless it is absent or Python's `None`.
fn given<'a, 'py>(o: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    o.filter(|v| !v.is_none())
}

impl StoreArgs<'_, '_> {
    /// The stores, or a clear error naming `what` when both forms of one were given.
    pub(crate) fn stores(self, what: &str) -> PyResult<Stores> {
        let locks = match (self.locks_dir, given(self.locks)) {
            (Some(_), Some(_)) => return Err(invalid(what, "give locks or locks_dir, not both")),
            (Some(d), None) => Some(Arc::new(FileLocks::new(d)) as Arc<dyn LockManager>),
            (None, Some(l)) => Some(locks_of(l)?),
            (None, None) => None,
        };
        let known_good = match (self.known_good_dir, given(self.known_good)) {
            (Some(_), Some(_)) => {
                return Err(invalid(what, "give known_good or known_good_dir, not both"))
            }
            (Some(d), None) => Some(Arc::new(FileKnownGood::new(d)) as Arc<dyn KnownGoodStore>),
            (None, Some(k)) => Some(known_good_of(k)?),
            (None, None) => None,
        };
        let journal_store = given(self.journal_store)
            .map(journal_store_of)
            .transpose()?;
        Ok(Stores {
            locks,
            known_good,
            journal_store,
        })
    }
}
