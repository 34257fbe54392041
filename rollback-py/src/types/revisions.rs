//! Revisions and what moves between them: `Revision`, `Change`, `Diff` and `DiffEntry`.

use chrono::{DateTime, Utc};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use rollback_core::{Change, Diff, DiffEntry, DiffSection, Revision};

use super::args::type_name;
use crate::errors::invalid;

/// One revision of a target: the backend's id, when it was made, and the facts a person
/// needs to choose (images, environment variable names, description). Never a secret value.
#[pyclass(module = "rollback", name = "Revision", frozen, eq)]
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PyRevision {
    pub(crate) inner: Revision,
}

#[pymethods]
impl PyRevision {
    #[new]
    #[pyo3(signature = (id, *, created_at=None, images=Vec::new(), description=None, env_keys=Vec::new(), facts=None))]
    fn new(
        id: &str,
        created_at: Option<DateTime<Utc>>,
        images: Vec<String>,
        description: Option<String>,
        env_keys: Vec<String>,
        facts: Option<std::collections::BTreeMap<String, String>>,
    ) -> PyResult<Self> {
        if id.is_empty() {
            return Err(invalid("revision", "a revision needs a non-empty id"));
        }
        let mut r = Revision::new(id);
        r.created_at = created_at;
        r.images = images;
        r.description = description;
        r.env_keys = env_keys;
        r.facts = facts.unwrap_or_default();
        Ok(PyRevision { inner: r })
    }

    /// The backend's id: Lambda `"7"`, ECS `"family:14"`, a secret version id, a snapshot
    /// id, Kubernetes `"3"`.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }

    /// When it was made (UTC), if the backend says.
    #[getter]
    fn created_at(&self) -> Option<DateTime<Utc>> {
        self.inner.created_at
    }

    /// Container images, in order.
    #[getter]
    fn images(&self) -> Vec<String> {
        self.inner.images.clone()
    }

    /// Names of environment variables (never their values).
    #[getter]
    fn env_keys(&self) -> Vec<String> {
        self.inner.env_keys.clone()
    }

    /// Description or change-cause.
    #[getter]
    fn description(&self) -> Option<String> {
        self.inner.description.clone()
    }

    /// Other facts (Lambda canary weights, secret stages, snapshot type...).
    #[getter]
    fn facts(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.facts.clone()
    }

    fn __repr__(&self) -> String {
        let mut s = format!("Revision({:?}", self.inner.id);
        if !self.inner.images.is_empty() {
            s.push_str(&format!(", images={:?}", self.inner.images));
        }
        if let Some(d) = &self.inner.description {
            s.push_str(&format!(", description={d:?}"));
        }
        s.push(')');
        s
    }

    fn __str__(&self) -> &str {
        &self.inner.id
    }
}

/// A revision from what Python code returned: a `Revision`, or a str taken as the id.
pub(crate) fn revision_of(obj: &Bound<'_, PyAny>) -> PyResult<Revision> {
    if let Ok(r) = obj.cast::<PyRevision>() {
        return Ok(r.get().inner.clone());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let id = s.to_cow()?;
        if !id.is_empty() {
            return Ok(Revision::new(id.as_ref()));
        }
    }
    Err(PyTypeError::new_err(format!(
        "expected a rollback.Revision (or a non-empty revision id as str), got {}",
        type_name(obj)
    )))
}

pub(crate) fn revision(r: &Revision) -> PyRevision {
    PyRevision { inner: r.clone() }
}

/// One line of a diff: a section (`image`, `env`, `fact`, `description`), a key and the
/// values before and after (secret-looking keys show `<redacted>`).
#[pyclass(module = "rollback", name = "DiffEntry", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct PyDiffEntry {
    /// `image`, `env`, `fact` or `description`.
    section: String,
    /// What changed.
    key: String,
    /// Before (None when added).
    from_value: Option<String>,
    /// After (None when removed).
    to_value: Option<String>,
}

#[pymethods]
impl PyDiffEntry {
    fn __repr__(&self) -> String {
        format!(
            "DiffEntry({:?}, {:?}, {:?} -> {:?})",
            self.section, self.key, self.from_value, self.to_value
        )
    }
}

fn section_name(s: DiffSection) -> &'static str {
    match s {
        DiffSection::Image => "image",
        DiffSection::Env => "env",
        DiffSection::Fact => "fact",
        DiffSection::Description => "description",
    }
}

fn entry(e: &DiffEntry) -> PyDiffEntry {
    PyDiffEntry {
        section: section_name(e.section).to_string(),
        key: e.key.clone(),
        from_value: e.from.clone(),
        to_value: e.to.clone(),
    }
}

/// What a change changes, for review; `str()` is the text a person reads.
#[pyclass(module = "rollback", name = "Diff", frozen)]
#[derive(Debug, Clone)]
pub(crate) struct PyDiff {
    pub(crate) inner: Diff,
}

#[pymethods]
impl PyDiff {
    /// The entries.
    #[getter]
    fn entries(&self) -> Vec<PyDiffEntry> {
        self.inner.entries.iter().map(entry).collect()
    }

    fn __len__(&self) -> usize {
        self.inner.entries.len()
    }

    fn __bool__(&self) -> bool {
        !self.inner.is_empty()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("<Diff of {} entries>", self.inner.entries.len())
    }
}

/// A planned change of one target: from the revision in use to the one chosen, with a diff.
#[pyclass(module = "rollback", name = "Change", frozen)]
#[derive(Debug, Clone)]
pub(crate) struct PyChange {
    pub(crate) inner: Change,
}

#[pymethods]
impl PyChange {
    /// The target (`kind/name`).
    #[getter]
    fn target(&self) -> String {
        self.inner.target.to_string()
    }

    /// The revision in use.
    #[getter]
    fn get_from_revision(&self) -> PyRevision {
        revision(&self.inner.from)
    }

    /// The revision chosen.
    #[getter]
    fn get_to_revision(&self) -> PyRevision {
        revision(&self.inner.to)
    }

    /// What changes.
    #[getter]
    fn diff(&self) -> PyDiff {
        PyDiff {
            inner: self.inner.diff.clone(),
        }
    }

    /// Whether the target already is at the revision chosen.
    #[getter]
    fn is_noop(&self) -> bool {
        self.inner.is_noop()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<Change {}: {} -> {}>",
            self.inner.target, self.inner.from.id, self.inner.to.id
        )
    }
}
