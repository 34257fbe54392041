//! What runs after the steps: `rollback.Action` (the base of the built-in actions, such as
//! `rollback.aws.CloudFrontInvalidation`), Python callables as actions, and notifications
//! (`rollback.Webhook`).

use std::sync::Arc;

use pyo3::prelude::*;
use rollback_core::notify::{Notifier, Webhook, WebhookFormat};
use rollback_core::transaction::AfterAction;

use crate::check::PyAction;
use crate::errors::{invalid, py_err};
use crate::types::Seconds;

/// An action run after the steps, given to `Transaction.on_success` or `on_failure`:
/// `rollback.aws.CloudFrontInvalidation` extends it (a plain callable works too).
#[pyclass(module = "rollback", name = "Action", subclass, frozen)]
pub(crate) struct PyActionBase {
    pub(crate) inner: Arc<dyn AfterAction>,
}

impl PyActionBase {
    pub(crate) fn init(inner: Arc<dyn AfterAction>) -> PyClassInitializer<Self> {
        PyClassInitializer::from(PyActionBase { inner })
    }
}

#[pymethods]
impl PyActionBase {
    /// Its name in reports and the journal.
    #[getter]
    fn name(&self) -> String {
        self.inner.name()
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// The action for `on_success` / `on_failure`: a built-in `rollback.Action` as it is, or a
/// callable (named `name`, else by its own name).
pub(crate) fn action_of(
    action: &Bound<'_, PyAny>,
    name: Option<String>,
    when: &str,
) -> PyResult<Arc<dyn AfterAction>> {
    if let Ok(a) = action.cast::<PyActionBase>() {
        if name.is_some() {
            return Err(invalid(
                "action",
                format!(
                    "name= is for a callable given to {when}; {} is named {:?} already",
                    crate::types::type_name(action),
                    a.get().inner.name()
                ),
            ));
        }
        return Ok(a.get().inner.clone());
    }
    Ok(Arc::new(PyAction::new(action, name, when)?))
}

/// Posts a notice when a run starts (its leases held) and when it ends (outcome, targets,
/// reason, time to recover, what needs a person) to an http(s) URL: `format="slack"` (the
/// default) posts `{"text": ...}` as Slack's incoming webhooks take it, `format="json"` the
/// notice as JSON. The URL is a secret of sorts: reports, errors and `repr()` show its
/// host only. A post that fails is reported in `needs_attention` and never fails the run.
#[pyclass(module = "rollback", name = "Webhook", frozen)]
pub(crate) struct PyWebhook {
    pub(crate) inner: Webhook,
    format: &'static str,
}

#[pymethods]
impl PyWebhook {
    #[new]
    #[pyo3(signature = (url, *, format = "slack", timeout = None))]
    fn new(url: String, format: &str, timeout: Option<Seconds>) -> PyResult<Self> {
        let (fmt, name) = match format {
            "slack" => (WebhookFormat::Slack, "slack"),
            "json" => (WebhookFormat::Json, "json"),
            other => {
                return Err(invalid(
                    "webhook",
                    format!(
                        "format={:?} is not slack or json",
                        rollback_core::redact::truncate(other, 40)
                    ),
                ))
            }
        };
        let mut hook = Webhook::new(url).format(fmt);
        if let Some(t) = Seconds::get_opt(timeout, "webhook", "timeout")? {
            hook = hook.timeout(t);
        }
        hook.validate().map_err(py_err)?;
        Ok(PyWebhook {
            inner: hook,
            format: name,
        })
    }

    /// `"slack"` or `"json"`.
    #[getter]
    fn format(&self) -> &'static str {
        self.format
    }

    /// Its name in reports and the journal (`webhook <host>`).
    #[getter]
    fn name(&self) -> String {
        self.inner.name()
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}
