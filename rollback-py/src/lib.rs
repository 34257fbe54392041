//! The `rollback` Python package's native module, `rollback._rollback`.
//!
//! Everything here is reached through the pure-Python package in `python/rollback`
//! (`rollback`, `rollback.aws`, `rollback.k8s`), whose hand-written `.pyi` stubs document
//! the API. Design:
//!
//! - one multi-thread tokio runtime for the process ([`runtime`]); blocking calls release
//!   the GIL and look at signals while they wait (Ctrl-C works), `*_async` calls return
//!   asyncio awaitables;
//! - the library's errors become one Python exception tree (`rollback._errors`), and Python
//!   exceptions from user code become the library's errors ([`errors`]);
//! - the built-in targets and checks extend `rollback.Target` / `rollback.Check`; any
//!   Python object with the target methods, and any callable, work too ([`target`],
//!   [`check`]);
//! - Rust `tracing` events go to Python `logging` (logger `rollback`) ([`logging`]);
//! - a `Transaction` is a description built into a fresh Rust transaction per run
//!   ([`transaction`]).

mod action;
mod aws;
mod check;
mod errors;
mod k8s;
mod logging;
mod metrics;
mod runtime;
mod stores;
mod target;
mod testing;
mod transaction;
mod types;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _rollback(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    logging::install(m)?;
    // core
    types::add_classes(m)?;
    m.add_class::<target::PyTarget>()?;
    m.add_class::<check::PyCheck>()?;
    m.add_class::<check::PyHttpCheck>()?;
    m.add_class::<check::PyCommandCheck>()?;
    m.add_class::<target::PyCommandTarget>()?;
    m.add_class::<transaction::PyTransaction>()?;
    m.add_class::<action::PyActionBase>()?;
    m.add_class::<action::PyWebhook>()?;
    m.add_class::<transaction::PyRunbook>()?;
    m.add_class::<transaction::PyDrill>()?;
    m.add_class::<stores::PyLocks>()?;
    m.add_class::<stores::PyKnownGoodStore>()?;
    m.add_class::<stores::PyJournalStore>()?;
    m.add_function(wrap_pyfunction!(transaction::resume_from_store, m)?)?;
    m.add_function(wrap_pyfunction!(transaction::resume_from_store_async, m)?)?;
    m.add_function(wrap_pyfunction!(transaction::resume, m)?)?;
    m.add_function(wrap_pyfunction!(transaction::resume_async, m)?)?;
    // metrics
    m.add_class::<metrics::PyMetricSource>()?;
    m.add_class::<metrics::PyPrometheusSource>()?;
    m.add_class::<metrics::PyStaticSource>()?;
    m.add_class::<metrics::PySeries>()?;
    m.add_class::<metrics::PyThreshold>()?;
    m.add_class::<metrics::PyDecisionPolicy>()?;
    m.add_class::<metrics::PyDecision>()?;
    m.add_class::<metrics::PyWatch>()?;
    m.add_function(wrap_pyfunction!(metrics::decide, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::decide_async, m)?)?;
    m.add_class::<aws::PyCloudWatchSource>()?;
    // testing
    m.add_class::<testing::PyInMemoryTarget>()?;
    m.add_class::<testing::PyConformanceReport>()?;
    m.add_function(wrap_pyfunction!(testing::conformance, m)?)?;
    m.add_function(wrap_pyfunction!(testing::conformance_async, m)?)?;
    // aws
    m.add_class::<aws::PyAwsConfig>()?;
    m.add_class::<aws::PyLambdaAlias>()?;
    m.add_class::<aws::PyEcsService>()?;
    m.add_class::<aws::PyEcsDesiredCount>()?;
    m.add_class::<aws::PyEcsRestart>()?;
    m.add_class::<aws::PySecretVersion>()?;
    m.add_class::<aws::PyRdsInstance>()?;
    m.add_class::<aws::PyConnectionHandover>()?;
    m.add_class::<aws::PyPipelineTransition>()?;
    m.add_class::<aws::PyPipelineExecution>()?;
    m.add_class::<aws::PyCloudFormationStack>()?;
    m.add_class::<aws::PyAlarmCheck>()?;
    m.add_class::<aws::PyCloudFrontInvalidation>()?;
    m.add_class::<aws::PyDynamoDbLocks>()?;
    m.add_class::<aws::PyDynamoDbKnownGood>()?;
    m.add_class::<aws::PyS3KnownGood>()?;
    m.add_class::<aws::PyS3Journals>()?;
    // k8s
    m.add_class::<k8s::PyK8sConfig>()?;
    m.add_class::<k8s::PyDeployment>()?;
    m.add_class::<k8s::PyStatefulSet>()?;
    m.add_class::<k8s::PyDaemonSet>()?;
    m.add_class::<k8s::PyReplicas>()?;
    m.add_class::<k8s::PyRestart>()?;
    m.add_class::<k8s::PyPodsReady>()?;
    m.add_class::<k8s::PyRolloutStatus>()?;
    m.add_class::<k8s::PyLeaseLocks>()?;
    m.add_class::<k8s::PyManifest>()?;
    m.add_function(wrap_pyfunction!(k8s::rollout_status, m)?)?;
    Ok(())
}
