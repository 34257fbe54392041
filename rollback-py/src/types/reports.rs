//! What a run tells: `Event` (as it goes), `Report`, `StepReport` and `ActionReport`
//! (once it is done).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use rollback_core::transaction::ActionReport;
use rollback_core::{Event, Report, Revision, StepReport};

use super::policies::{verdict, PyVerdict};
use super::revisions::{revision, PyDiff, PyRevision};

/// One transition of a transaction, as `on_event` receives it.
#[pyclass(module = "rollback", name = "Event", frozen)]
#[derive(Debug, Clone)]
pub(crate) struct PyEvent {
    pub(crate) inner: Event,
}

#[pymethods]
impl PyEvent {
    /// What happened: `started`, `planned`, `locked`, `step_started`, `skipped`, `applied`,
    /// `retrying`, `waiting`, `stable`, `check_passed`, `verified` (a step is done),
    /// `check_failed`, `failed`, `compensating`, `compensated`, `reverting`, `reverted`,
    /// `action`, `interrupted`, `finished`.
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

    /// Where the choice of the revision came from, when a person should know (the last
    /// known good's transaction), else `None`.
    #[getter]
    fn origin(&self) -> Option<String> {
        self.inner.origin.clone()
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

    /// The on-success actions (none unless the run succeeded).
    #[getter]
    fn on_success(&self) -> Vec<PyActionReport> {
        self.inner.on_success.iter().map(action).collect()
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
