//! How checks run and what they concluded: `Policy` and `Verdict`.

use std::time::Duration;

use pyo3::prelude::*;
use rollback_core::verify::Verdict;
use rollback_core::Policy;

use super::args::{Int, Seconds};
use crate::errors::py_err;

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
