//! The one runtime every call runs on, and the bridges between it and Python.
//!
//! - Blocking calls ([`block_on`]) release the GIL, run the work as a task on the shared
//!   multi-thread tokio runtime and look at Python's signals every 50 ms while they wait,
//!   so Ctrl-C interrupts them (the task is aborted, and waited for until it has stopped).
//! - Async calls ([`awaitable`]) return a real coroutine (`rollback._aio.coroutine`, an
//!   `async def`): creating it needs no event loop and starts nothing; awaiting it starts the
//!   work on the runtime through pyo3-async-runtimes, whose asyncio future drops the Rust
//!   future when cancelled (and with it the lease renewal). The awaiting event loop is
//!   remembered for the task (a task-local), so Python coroutines given to the library
//!   (async checks, async custom targets) run on that loop.
//! - Python code the library calls (checks, custom targets, actions) runs on the runtime's
//!   blocking threads ([`call_python`]), never on a worker that drives other tasks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::call::PyCallArgs;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use pyo3_async_runtimes::TaskLocals;

tokio::task_local! {
    /// The event loop of the `*_async` call a task serves, if any.
    static EVENT_LOOP: TaskLocals;
}

/// How often a blocking call looks at Python's signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// The library's runtime: one multi-thread tokio runtime for the process, shared with
/// pyo3-async-runtimes.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

fn join_error(e: tokio::task::JoinError) -> PyErr {
    if e.is_panic() {
        PyRuntimeError::new_err(format!("rollback: internal error (a task panicked): {e}"))
    } else {
        PyRuntimeError::new_err("rollback: the task was cancelled")
    }
}

/// How long an interrupted blocking call waits for its task to stop before it raises.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs `fut` on the runtime with the GIL released, and waits for it; Ctrl-C (any pending
/// signal whose handler raises) aborts the task and raises here once the task has stopped
/// (at its next await, within [`STOP_GRACE`]): a run interrupted has made its last change
/// and journal entry when this raises, so a resume started at once does not race it.
pub(crate) fn block_on<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: Send + 'static,
{
    crate::logging::refresh(py);
    let mut task = runtime().spawn(fut);
    py.detach(move || {
        runtime().block_on(async move {
            let mut tick = tokio::time::interval(SIGNAL_CHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let signal = loop {
                tokio::select! {
                    biased;
                    joined = &mut task => return joined.map_err(join_error)?,
                    _ = tick.tick() => {
                        if let Err(e) = Python::attach(|py| py.check_signals()) {
                            break e;
                        }
                    }
                }
            };
            task.abort();
            // Whether it stopped, finished or is stuck past the grace, the signal is raised.
            let _ = tokio::time::timeout(STOP_GRACE, &mut task).await;
            Err(signal)
        })
    })
}

/// The work of one `*_async` call, boxed until its coroutine is awaited.
type Work = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;

/// What `rollback._aio.coroutine` awaits: called once, on the awaiting event loop, it starts
/// the work and returns its asyncio future.
#[pyclass(module = "rollback._rollback", name = "_Pending", frozen)]
pub(crate) struct Pending {
    work: Mutex<Option<Work>>,
}

#[pymethods]
impl Pending {
    fn __call__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let work = self
            .work
            .lock()
            .map_err(|_| PyRuntimeError::new_err("rollback: internal error (a poisoned lock)"))?
            .take()
            .ok_or_else(|| {
                PyRuntimeError::new_err("rollback: this coroutine was already awaited")
            })?;
        let locals = TaskLocals::with_running_loop(py)?.copy_context(py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, EVENT_LOOP.scope(locals, work))
    }
}

/// A coroutine for `fut`: nothing runs until it is awaited; then `fut` runs on the runtime
/// and Python coroutines the work calls run on the awaiting event loop.
pub(crate) fn awaitable<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    crate::logging::refresh(py);
    let work: Work = Box::pin(async move {
        let value = fut.await?;
        Python::attach(|py| value.into_bound_py_any(py).map(Bound::unbind))
    });
    let pending = Bound::new(
        py,
        Pending {
            work: Mutex::new(Some(work)),
        },
    )?;
    py.import("rollback._aio")?
        .getattr("coroutine")?
        .call1((pending,))
}

/// Calls Python from async code: `f` runs on a blocking thread with the GIL. When it
/// returns a coroutine, the coroutine runs on the event loop of the `*_async` call this task
/// serves, or to completion on that blocking thread (`asyncio.run`) under a blocking call.
pub(crate) async fn call_python<F>(f: F) -> PyResult<Py<PyAny>>
where
    F: for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send + 'static,
{
    let event_loop = EVENT_LOOP.try_with(Clone::clone).ok();
    let (value, is_coroutine) = tokio::task::spawn_blocking(move || {
        Python::attach(|py| -> PyResult<(Py<PyAny>, bool)> {
            let value = f(py)?;
            let is_coroutine = py
                .import("inspect")?
                .call_method1("iscoroutine", (&value,))?
                .is_truthy()?;
            Ok((value.unbind(), is_coroutine))
        })
    })
    .await
    .map_err(join_error)??;
    if !is_coroutine {
        return Ok(value);
    }
    match event_loop {
        Some(locals) => {
            let fut = Python::attach(|py| {
                pyo3_async_runtimes::into_future_with_locals(&locals, value.into_bound(py))
            })?;
            fut.await
        }
        None => tokio::task::spawn_blocking(move || {
            Python::attach(|py| {
                py.import("asyncio")?
                    .call_method1("run", (value,))
                    .map(Bound::unbind)
            })
        })
        .await
        .map_err(join_error)?,
    }
}

/// Calls `callable(*args)` from async code; see [`call_python`].
pub(crate) async fn call<A>(callable: std::sync::Arc<Py<PyAny>>, args: A) -> PyResult<Py<PyAny>>
where
    A: for<'py> PyCallArgs<'py> + Send + 'static,
{
    call_python(move |py| callable.bind(py).call1(args)).await
}

/// Calls `obj.name(*args)` from async code; see [`call_python`].
pub(crate) async fn call_method<A>(
    obj: std::sync::Arc<Py<PyAny>>,
    name: &'static str,
    args: A,
) -> PyResult<Py<PyAny>>
where
    A: for<'py> PyCallArgs<'py> + Send + 'static,
{
    call_python(move |py| obj.bind(py).call_method1(name, args)).await
}
