//! Plain data classes, by what they are: [`selectors`], [`revisions`] and diffs,
//! [`policies`] and verdicts, [`reports`] and events; and the argument types every class
//! takes ([`args`]). None of them holds a secret value (the Rust types they copy never do).

pub(crate) mod args;
pub(crate) mod policies;
pub(crate) mod reports;
pub(crate) mod revisions;
pub(crate) mod selectors;

use pyo3::prelude::*;

pub(crate) use args::{type_name, Int, Seconds};
pub(crate) use policies::{verdict, PyPolicy, PyVerdict};
pub(crate) use reports::{PyActionReport, PyEvent, PyReport, PyStepReport};
pub(crate) use revisions::{revision, revision_of, PyChange, PyDiff, PyDiffEntry, PyRevision};
pub(crate) use selectors::{
    selector_of, selector_to_py, PyExact, PyImageTag, PyLastKnownGood, PyPrevious, PySelector,
    PyStepsBack,
};

/// Adds the data classes to the native module.
pub(crate) fn add_classes(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySelector>()?;
    m.add_class::<PyPrevious>()?;
    m.add_class::<PyExact>()?;
    m.add_class::<PyStepsBack>()?;
    m.add_class::<PyImageTag>()?;
    m.add_class::<PyLastKnownGood>()?;
    m.add_class::<PyRevision>()?;
    m.add_class::<PyDiff>()?;
    m.add_class::<PyDiffEntry>()?;
    m.add_class::<PyChange>()?;
    m.add_class::<PyPolicy>()?;
    m.add_class::<PyVerdict>()?;
    m.add_class::<PyEvent>()?;
    m.add_class::<PyReport>()?;
    m.add_class::<PyStepReport>()?;
    m.add_class::<PyActionReport>()?;
    Ok(())
}
