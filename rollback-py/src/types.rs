//! Plain data classes: selectors, revisions, changes and diffs, policies, verdicts, events
//! and reports. None of them holds a secret value (the Rust types they copy never do).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDelta, PyDeltaAccess, PyInt, PyString};
use rollback_core::transaction::ActionReport;
use rollback_core::verify::Verdict;
use rollback_core::{
    Change, Diff, DiffEntry, DiffSection, Event, Policy, Report, Revision, Selector, StepReport,
};

use crate::errors::{invalid, py_err};

/// The longest duration an argument may give: longer is a mistake (and would overflow the
/// clocks the library adds it to).
pub(crate) const MAX_SECONDS: f64 = 366.0 * 86_400.0;

/// A duration argument: seconds (int or float, of any size) or a `datetime.timedelta`.
/// [`Seconds::get`] checks it where the target is known: zero or more, at most
/// [`MAX_SECONDS`], else `InvalidInputError` naming the target and the parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds(f64);

impl Seconds {
    /// A default value.
    pub(crate) const fn of(secs: u64) -> Self {
        Seconds(secs as f64)
    }

    /// The duration, or `InvalidInputError` about `target` naming the parameter `what`.
    pub(crate) fn get(self, target: &str, what: &str) -> PyResult<Duration> {
        let secs = self.0;
        if secs.is_nan() || secs < 0.0 {
            return Err(invalid(
                target,
                format!("{what}={secs} is not a duration; give zero or more seconds"),
            ));
        }
        if secs > MAX_SECONDS {
            let shown = if secs.is_finite() {
                format!("{secs:e}")
            } else {
                "an endless".into()
            };
            return Err(invalid(
                target,
                format!(
                    "{what}={shown} seconds is too long; give at most {MAX_SECONDS} (366 days)"
                ),
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// [`Seconds::get`] for an optional argument.
    pub(crate) fn get_opt(
        value: Option<Self>,
        target: &str,
        what: &str,
    ) -> PyResult<Option<Duration>> {
        value.map(|v| v.get(target, what)).transpose()
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Seconds {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Seconds(if let Ok(delta) = obj.cast::<PyDelta>() {
            delta.get_days() as f64 * 86_400.0
                + delta.get_seconds() as f64
                + delta.get_microseconds() as f64 / 1e6
        } else if obj.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyTypeError::new_err(
                "a duration is seconds (int or float) or a datetime.timedelta, not a bool",
            ));
        } else if obj.is_instance_of::<PyInt>() {
            // An int too large for a float is too large for a duration, of either sign.
            match obj.extract::<f64>() {
                Ok(secs) => secs,
                Err(_) if obj.gt(0)? => f64::INFINITY,
                Err(_) => f64::NEG_INFINITY,
            }
        } else {
            obj.extract::<f64>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "a duration is seconds (int or float) or a datetime.timedelta, not {}",
                    obj.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?
        }))
    }
}

/// An integer argument of any size, as Python gives it. [`Int::get`] turns it into the type
/// the library takes or raises `InvalidInputError` naming the target and the range, so that
/// a number too large for the Rust side says so instead of raising `OverflowError`. Every
/// integer parameter of the API goes through it.
#[derive(Debug, Clone)]
pub(crate) enum Int {
    /// Fits in an `i64`.
    Fits(i64),
    /// Beyond `i64`, above (true) or below zero, as Python shows it (shortened).
    Huge { positive: bool, shown: String },
}

/// The Rust integer types [`Int::get`] converts to.
pub(crate) trait Bounded: Copy + TryFrom<i64> {
    /// The type's largest value, as an `i64` (capped there).
    const MAX: i64;
}

impl Bounded for u16 {
    const MAX: i64 = u16::MAX as i64;
}
impl Bounded for i32 {
    const MAX: i64 = i32::MAX as i64;
}
impl Bounded for u32 {
    const MAX: i64 = u32::MAX as i64;
}
impl Bounded for usize {
    const MAX: i64 = if usize::BITS >= 64 {
        i64::MAX
    } else {
        usize::MAX as i64
    };
}
impl Bounded for i64 {
    const MAX: i64 = i64::MAX;
}

impl<'a, 'py> FromPyObject<'a, 'py> for Int {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyTypeError::new_err("expected an int, not a bool"));
        }
        match obj.extract::<i64>() {
            Ok(n) => Ok(Int::Fits(n)),
            Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
                let text = obj.str()?.to_string();
                let shown = if text.len() > 24 {
                    let digits = text.trim_start_matches('-').len();
                    format!("{}... ({digits} digits)", &text[..12])
                } else {
                    text
                };
                Ok(Int::Huge {
                    positive: obj.gt(0)?,
                    shown,
                })
            }
            Err(e) => Err(e),
        }
    }
}

impl Int {
    /// The value as `T`, at least `min` and at most `T`'s largest; otherwise an
    /// `InvalidInputError` about `target` whose message shows `what` with `{}` replaced by
    /// the value (`"StepsBack({})"`, `"attempts={}"`).
    pub(crate) fn get<T: Bounded>(&self, target: &str, what: &str, min: i64) -> PyResult<T> {
        self.within(target, what, min, T::MAX)
    }

    /// [`Int::get`] with a largest value of its own (`max` at most `T`'s largest).
    pub(crate) fn within<T: Bounded>(
        &self,
        target: &str,
        what: &str,
        min: i64,
        max: i64,
    ) -> PyResult<T> {
        let max = max.min(T::MAX);
        let (shown, low) = match self {
            Int::Fits(n) if (min..=max).contains(n) => {
                if let Ok(v) = T::try_from(*n) {
                    return Ok(v);
                }
                (n.to_string(), false)
            }
            Int::Fits(n) => (n.to_string(), *n < min),
            Int::Huge { positive, shown } => (shown.clone(), !positive),
        };
        let what = what.replace("{}", &shown);
        Err(invalid(
            target,
            if low {
                format!("{what} is too small; give {min} or more")
            } else {
                format!("{what} is too large; give at most {max}")
            },
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Selectors

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
            s.to_str()?.to_string()
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

/// The selector a Python object stands for.
pub(crate) fn selector_of(obj: &Bound<'_, PyAny>) -> PyResult<Selector> {
    obj.cast::<PySelector>()
        .map(|s| s.get().inner.clone())
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "expected a selector (rollback.Previous(), Exact(id), StepsBack(n) or ImageTag(tag)), got {}",
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
        _ => Bound::new(py, PySelector::init(s.clone()).add_subclass(PyPrevious))?.into_any(),
    })
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

// ---------------------------------------------------------------------------------------
// Revisions, changes, diffs

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
        let id = s.to_str()?;
        if !id.is_empty() {
            return Ok(Revision::new(id));
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

// ---------------------------------------------------------------------------------------
// Policies and verdicts

/// How a check runs: attempts, the interval between them, how many consecutive passes it
/// needs, and a deadline for the whole.
#[pyclass(module = "rollback", name = "Policy", frozen, from_py_object)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct PyPolicy {
    pub(crate) inner: Policy,
}

#[pymethods]
impl PyPolicy {
    #[new]
    #[pyo3(signature = (attempts=Int::Fits(10), interval=Seconds::of(2), consecutive=Int::Fits(1), deadline=Seconds::of(120)))]
    #[pyo3(text_signature = "(attempts=10, interval=2.0, consecutive=1, deadline=120.0)")]
    fn new(
        attempts: Int,
        interval: Seconds,
        consecutive: Int,
        deadline: Seconds,
    ) -> PyResult<Self> {
        let attempts: u32 = attempts.get("policy", "attempts={}", 1)?;
        let consecutive: u32 = consecutive.get("policy", "consecutive={}", 1)?;
        let inner = Policy::default()
            .attempts(attempts)
            .interval(interval.get("policy", "interval")?)
            .consecutive(consecutive)
            .deadline(deadline.get("policy", "deadline")?);
        // One that can never pass (more passes than attempts, too short a deadline) is
        // refused here as it would be in a transaction's preflight.
        inner.validate().map_err(py_err)?;
        Ok(PyPolicy { inner })
    }

    /// One attempt, no retry (deadline 60 s).
    #[staticmethod]
    fn once() -> Self {
        PyPolicy {
            inner: Policy::once(),
        }
    }

    /// Attempts at most.
    #[getter]
    fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Between attempts.
    #[getter]
    fn interval(&self) -> Duration {
        self.inner.interval
    }

    /// Consecutive passes needed.
    #[getter]
    fn consecutive(&self) -> u32 {
        self.inner.consecutive
    }

    /// For the whole check.
    #[getter]
    fn deadline(&self) -> Duration {
        self.inner.deadline
    }

    fn __repr__(&self) -> String {
        format!(
            "Policy(attempts={}, interval={}, consecutive={}, deadline={})",
            self.inner.attempts,
            self.inner.interval.as_secs_f64(),
            self.inner.consecutive,
            self.inner.deadline.as_secs_f64()
        )
    }
}

/// What a check concluded under its policy.
#[pyclass(module = "rollback", name = "Verdict", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct PyVerdict {
    /// The check's name.
    name: String,
    /// Whether it passed.
    passed: bool,
    /// Attempts made.
    attempts: u32,
    /// What the last attempt saw.
    evidence: String,
}

#[pymethods]
impl PyVerdict {
    fn __bool__(&self) -> bool {
        self.passed
    }

    fn __repr__(&self) -> String {
        format!(
            "<Verdict {} {} after {} attempt(s): {}>",
            self.name,
            if self.passed { "passed" } else { "failed" },
            self.attempts,
            self.evidence
        )
    }
}

pub(crate) fn verdict(v: &Verdict) -> PyVerdict {
    PyVerdict {
        name: v.name.clone(),
        passed: v.passed,
        attempts: v.attempts,
        evidence: v.evidence.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Events

/// One transition of a transaction, as `on_event` receives it.
#[pyclass(module = "rollback", name = "Event", frozen)]
#[derive(Debug, Clone)]
pub(crate) struct PyEvent {
    pub(crate) inner: Event,
}

#[pymethods]
impl PyEvent {
    /// What happened: `started`, `planned`, `locked`, `step_started`, `skipped`, `applied`,
    /// `retrying`, `waiting`, `stable`, `verified`, `check_failed`, `failed`,
    /// `compensating`, `compensated`, `reverting`, `reverted`, `action`, `finished`.
    #[getter]
    fn kind(&self) -> String {
        self.inner.kind.to_string()
    }

    /// The target (`kind/name`), if the event is about one.
    #[getter]
    fn target(&self) -> Option<String> {
        self.inner.target.as_ref().map(ToString::to_string)
    }

    /// A message for a person.
    #[getter]
    fn message(&self) -> &str {
        &self.inner.message
    }

    /// The step index, if about a step.
    #[getter]
    fn step(&self) -> Option<usize> {
        self.inner.step
    }

    /// The transaction id.
    #[getter]
    fn transaction(&self) -> &str {
        &self.inner.transaction
    }

    /// When (UTC).
    #[getter]
    fn at(&self) -> DateTime<Utc> {
        self.inner.at
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("<Event {}>", self.inner)
    }
}

// ---------------------------------------------------------------------------------------
// Reports

/// What happened to one step.
#[pyclass(module = "rollback", name = "StepReport", frozen)]
#[derive(Debug, Clone)]
pub(crate) struct PyStepReport {
    inner: StepReport,
}

#[pymethods]
impl PyStepReport {
    /// The step index (in the order steps were added).
    #[getter]
    fn step(&self) -> usize {
        self.inner.step
    }

    /// Its stage.
    #[getter]
    fn stage(&self) -> usize {
        self.inner.stage
    }

    /// The target (`kind/name`).
    #[getter]
    fn target(&self) -> String {
        self.inner.target.to_string()
    }

    /// The revision captured in preflight.
    #[getter]
    fn get_from_revision(&self) -> Option<PyRevision> {
        self.inner.from.as_ref().map(revision)
    }

    /// The revision chosen.
    #[getter]
    fn get_to_revision(&self) -> Option<PyRevision> {
        self.inner.to.as_ref().map(revision)
    }

    /// The reviewable diff.
    #[getter]
    fn diff(&self) -> PyDiff {
        PyDiff {
            inner: self.inner.diff.clone(),
        }
    }

    /// `planned`, `not_started`, `skipped`, `applied`, `succeeded`, `failed`,
    /// `compensated`, `reverted` or `compensation_failed`.
    #[getter]
    fn status(&self) -> String {
        self.inner.status.to_string()
    }

    /// The error message, if the step failed.
    #[getter]
    fn error(&self) -> Option<String> {
        self.inner.error.as_ref().map(|e| e.message.clone())
    }

    /// The error's kind (`not_found`, `rollout_failed`, ...), if the step failed.
    #[getter]
    fn error_kind(&self) -> Option<&'static str> {
        self.inner
            .error
            .as_ref()
            .map(|e| crate::errors::kind_name(e.kind))
    }

    /// The checks' verdicts.
    #[getter]
    fn verdicts(&self) -> Vec<PyVerdict> {
        self.inner.verdicts.iter().map(verdict).collect()
    }

    /// How long the step took.
    #[getter]
    fn duration(&self) -> Duration {
        self.inner.duration
    }

    fn __repr__(&self) -> String {
        let id = |r: &Option<Revision>| r.as_ref().map_or("?".to_string(), |r| r.id.clone());
        format!(
            "<StepReport {}: {} -> {}: {}>",
            self.inner.target,
            id(&self.inner.from),
            id(&self.inner.to),
            self.inner.status
        )
    }
}

/// What an on-failure action did.
#[pyclass(module = "rollback", name = "ActionReport", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct PyActionReport {
    /// Its name.
    name: String,
    /// Whether it succeeded.
    ok: bool,
    /// What it said.
    message: String,
}

#[pymethods]
impl PyActionReport {
    fn __repr__(&self) -> String {
        format!(
            "<ActionReport {} {}: {}>",
            self.name,
            if self.ok { "ok" } else { "FAILED" },
            self.message
        )
    }
}

fn action(a: &ActionReport) -> PyActionReport {
    PyActionReport {
        name: a.name.clone(),
        ok: a.ok,
        message: a.message.clone(),
    }
}

/// The result of a run: outcome, steps, checks and what needs a person. `str()` is the
/// report a person reads.
#[pyclass(module = "rollback", name = "Report", frozen)]
#[derive(Debug, Clone)]
pub(crate) struct PyReport {
    pub(crate) inner: Report,
}

#[pymethods]
impl PyReport {
    /// `planned` (dry run), `succeeded`, `compensated` or `failed`.
    #[getter]
    fn outcome(&self) -> String {
        self.inner.outcome.to_string()
    }

    /// The transaction id.
    #[getter]
    fn transaction(&self) -> &str {
        &self.inner.transaction
    }

    /// The transaction's name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Why it ran.
    #[getter]
    fn reason(&self) -> Option<String> {
        self.inner.reason.clone()
    }

    /// One report per step, in step order.
    #[getter]
    fn steps(&self) -> Vec<PyStepReport> {
        self.inner
            .steps
            .iter()
            .map(|s| PyStepReport { inner: s.clone() })
            .collect()
    }

    /// The transaction-level checks' verdicts.
    #[getter]
    fn checks(&self) -> Vec<PyVerdict> {
        self.inner.checks.iter().map(verdict).collect()
    }

    /// The on-failure actions.
    #[getter]
    fn actions(&self) -> Vec<PyActionReport> {
        self.inner.actions.iter().map(action).collect()
    }

    /// What a person must look at.
    #[getter]
    fn needs_attention(&self) -> Vec<String> {
        self.inner
            .needs_attention
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The failure that stopped the run, if any.
    #[getter]
    fn error(&self) -> Option<String> {
        self.inner.error.as_ref().map(|e| e.message.clone())
    }

    /// The journal file (a dry run writes none).
    #[getter]
    fn journal_path(&self) -> PathBuf {
        self.inner.journal_path.clone()
    }

    /// When it started (UTC).
    #[getter]
    fn started_at(&self) -> DateTime<Utc> {
        self.inner.started_at
    }

    /// How long it took.
    #[getter]
    fn duration(&self) -> Duration {
        self.inner.duration
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<Report {:?}: {} in {:.1}s>",
            self.inner.name,
            self.inner.outcome,
            self.inner.duration.as_secs_f64()
        )
    }
}
