//! `rollback.Transaction` and `rollback.resume`.
//!
//! A Python `Transaction` holds a [`TransactionBuilder`], the one description of the
//! transaction (name, reason, stages of steps, checks, on-failure actions, settings), and
//! builds a fresh Rust transaction from a clone of it for every `run()`, so one object can
//! be dry-run, then run. Only the lock folder is kept beside it: the default one
//! (`$ROLLBACK_LOCK_DIR`) is read when a run starts, not when the object is made.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyKeyboardInterrupt, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use rollback_core::journal::JournalStore;
use rollback_core::lock::{FileLocks, LockManager};
use rollback_core::wait::CompensationRetry;
use rollback_core::{
    Error, Event, FailurePolicy, Registry, ResumeOptions, RollbackTarget, Step, TargetSpec,
    Transaction, TransactionBuilder,
};

use crate::action::{action_of, PyWebhook};
use crate::check::check_of;
use crate::errors::{invalid, py_err};
use crate::runtime::{awaitable, block_on};
use crate::stores::{journal_store_of, StoreArgs};
use crate::target::{target_of, PYTHON_KIND};
use crate::types::{selector_of, Int, PyEvent, PyReport, Seconds};

/// A rollback transaction: stages of steps (target + selector + checks) run through
/// preflight, lock, apply, wait and verify, compensated on failure, journaled.
#[pyclass(module = "rollback", name = "Transaction")]
pub(crate) struct PyTransaction {
    builder: TransactionBuilder,
    /// `None`: `FileLocks::from_env()`, read when the run starts.
    locks: Option<Arc<dyn LockManager>>,
    /// The builder's own lock manager is kept (a runbook file's `locks:`).
    own_locks: bool,
}

/// An event sink as the builder takes it.
pub(crate) type Sink = Box<dyn Fn(&Event) + Send + Sync>;

fn policy_of(policy: &str) -> PyResult<FailurePolicy> {
    match policy {
        "compensate" => Ok(FailurePolicy::Compensate),
        "halt" => Ok(FailurePolicy::Halt),
        other => Err(invalid(
            "transaction",
            format!("policy={other:?}: use \"compensate\" (put applied targets back) or \"halt\" (leave them for a person)"),
        )),
    }
}

/// An event sink calling a Python callable. Under `run_async` the callable runs on the
/// caller's event loop (`call_soon_threadsafe`, in order); under `run()` it runs on the
/// library's thread that emits the event. Exceptions go to `sys.unraisablehook`.
fn event_sink(
    callback: Py<PyAny>,
    event_loop: Option<Py<PyAny>>,
) -> impl Fn(&Event) + Send + Sync + 'static {
    move |e: &Event| {
        let event = PyEvent { inner: e.clone() };
        Python::attach(|py| {
            let cb = callback.bind(py);
            let result = match &event_loop {
                Some(l) => l
                    .bind(py)
                    .call_method1("call_soon_threadsafe", (cb, event))
                    .map(|_| ()),
                None => cb.call1((event,)).map(|_| ()),
            };
            if let Err(err) = result {
                err.write_unraisable(py, Some(cb));
            }
        });
    }
}

fn running_loop(py: Python<'_>) -> Option<Py<PyAny>> {
    py.import("asyncio")
        .and_then(|a| a.call_method0("get_running_loop"))
        .map(Bound::unbind)
        .ok()
}

impl PyTransaction {
    /// The builder, changed by `f`.
    fn update(&mut self, f: impl FnOnce(TransactionBuilder) -> TransactionBuilder) {
        self.builder = f(self.builder.clone());
    }

    /// The lock manager a run uses: the one given, else `FileLocks::from_env()` (read now).
    pub(crate) fn run_locks(&self) -> Arc<dyn LockManager> {
        match &self.locks {
            Some(l) => l.clone(),
            None => Arc::new(FileLocks::from_env()),
        }
    }

    /// A copy of the description with the run's lock manager and event sink.
    pub(crate) fn builder(
        &self,
        locks: Arc<dyn LockManager>,
        sink: Option<Sink>,
    ) -> TransactionBuilder {
        let b = if self.own_locks && self.locks.is_none() {
            self.builder.clone()
        } else {
            self.builder.clone().locks(locks)
        };
        match sink {
            Some(sink) => b.on_event(sink),
            None => b,
        }
    }

    /// The transaction ready to run, and the future that runs it.
    fn prepare(
        &self,
        py: Python<'_>,
        dry_run: bool,
        on_event: Option<Bound<'_, PyAny>>,
        in_loop: bool,
    ) -> PyResult<(
        impl std::future::Future<Output = PyResult<PyReport>> + Send + 'static,
        Option<PathBuf>,
    )> {
        let sink = match on_event {
            Some(cb) if !cb.is_none() => {
                if !cb.is_callable() {
                    return Err(PyTypeError::new_err(
                        "on_event must be a callable taking an Event",
                    ));
                }
                let event_loop = if in_loop { running_loop(py) } else { None };
                Some(Box::new(event_sink(cb.unbind(), event_loop)) as Sink)
            }
            _ => None,
        };
        // A run dropped on Ctrl-C or an asyncio cancellation stops renewing its leases
        // (they lapse after their time to live) and is resumed from its journal.
        let b = self.builder(self.run_locks(), sink);
        let tx = b.build().map_err(|e| crate::errors::to_py(py, &e))?;
        let journal = (!dry_run).then(|| tx.journal_path().to_path_buf());
        let fut = async move {
            let result = if dry_run {
                tx.dry_run().await
            } else {
                tx.run().await
            };
            result.map(|r| PyReport { inner: r }).map_err(py_err)
        };
        Ok((fut, journal))
    }
}

#[pymethods]
impl PyTransaction {
    #[new]
    #[pyo3(signature = (name, reason=None, journal=None, policy="compensate", concurrency=Int::Fits(16), *, locks_dir=None, lease_ttl=None, holder=None, compensation_deadline=None, known_good_dir=None, locks=None, known_good=None, journal_store=None))]
    #[pyo3(
        text_signature = "(name, reason=None, journal=None, policy=\"compensate\", concurrency=16, *, locks_dir=None, lease_ttl=None, holder=None, compensation_deadline=None, known_good_dir=None, locks=None, known_good=None, journal_store=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: &str,
        reason: Option<String>,
        journal: Option<PathBuf>,
        policy: &str,
        concurrency: Int,
        locks_dir: Option<PathBuf>,
        lease_ttl: Option<Seconds>,
        holder: Option<String>,
        compensation_deadline: Option<Seconds>,
        known_good_dir: Option<PathBuf>,
        locks: Option<&Bound<'_, PyAny>>,
        known_good: Option<&Bound<'_, PyAny>>,
        journal_store: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        if name.trim().is_empty() {
            return Err(invalid(
                "transaction",
                "a transaction needs a name (what is being rolled back)",
            ));
        }
        let what = format!("transaction {name:?}");
        let concurrency: usize = concurrency.get(&what, "concurrency={}", 1)?;
        let lease_ttl = Seconds::get_opt(lease_ttl, &what, "lease_ttl")?;
        if lease_ttl.is_some_and(|t| t < Duration::from_secs(1)) {
            return Err(invalid(&what, "lease_ttl must be at least 1 second"));
        }
        let compensation_deadline =
            Seconds::get_opt(compensation_deadline, &what, "compensation_deadline")?;
        let mut b = Transaction::builder(name)
            .policy(policy_of(policy)?)
            .concurrency(concurrency);
        if let Some(r) = reason {
            b = b.reason(r);
        }
        if let Some(p) = journal {
            b = b.journal(p);
        }
        if let Some(t) = lease_ttl {
            b = b.lease_ttl(t);
        }
        if let Some(h) = holder {
            b = b.holder(h);
        }
        let stores = StoreArgs {
            locks_dir,
            locks,
            known_good_dir,
            known_good,
            journal_store,
        }
        .stores(&what)?;
        if let Some(k) = stores.known_good {
            b = b.known_good(k);
        }
        if let Some(j) = stores.journal_store {
            b = b.journal_store(j);
        }
        if let Some(deadline) = compensation_deadline {
            b = b.compensation_retry(CompensationRetry {
                deadline,
                ..CompensationRetry::default()
            });
        }
        Ok(PyTransaction {
            builder: b,
            locks: stores.locks,
            own_locks: false,
        })
    }

    /// The name.
    #[getter]
    fn name(&self) -> &str {
        self.builder.name()
    }

    /// Why it runs (required for a real run).
    #[getter]
    fn reason(&self) -> Option<String> {
        self.builder.reason_text().map(str::to_string)
    }

    /// Adds a step to the current stage: move `target` to the revision `selector` picks,
    /// then run `verify`'s checks. `temporary` puts it back once every stage is done;
    /// `allow_current` accepts a target already there (skipped) instead of refusing the
    /// run; `timeout` bounds the wait for it to be stable (default 10 minutes).
    #[pyo3(signature = (target, selector, verify=None, *, temporary=false, allow_current=false, timeout=None))]
    fn add<'py>(
        mut slf: PyRefMut<'py, Self>,
        target: &Bound<'py, PyAny>,
        selector: &Bound<'py, PyAny>,
        verify: Option<&Bound<'py, PyAny>>,
        temporary: bool,
        allow_current: bool,
        timeout: Option<Seconds>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let target = target_of(target)?;
        let selector = selector_of(selector)?;
        let mut checks = Vec::new();
        if let Some(v) = verify {
            if v.is_instance_of::<PyList>() || v.is_instance_of::<pyo3::types::PyTuple>() {
                for item in v.try_iter()? {
                    checks.push(check_of(&item?)?);
                }
            } else {
                checks.push(check_of(v)?);
            }
        }
        let id = target.id();
        let timeout = Seconds::get_opt(timeout, &id.to_string(), "timeout")?;
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(invalid(
                &id.to_string(),
                "timeout=0: give the target time to become stable",
            ));
        }
        if slf
            .builder
            .stages()
            .flatten()
            .any(|s| s.target().id() == id)
        {
            return Err(invalid(
                &id.to_string(),
                "appears in two steps; a transaction moves each target once",
            ));
        }
        let mut step = Step::new(target, selector);
        for c in checks {
            step = step.verify(c);
        }
        if temporary {
            step = step.temporary();
        }
        if allow_current {
            step = step.allow_current();
        }
        if let Some(t) = timeout {
            step = step.timeout(t);
        }
        slf.update(|b| b.step(step));
        Ok(slf)
    }

    /// Starts a new stage: its steps run after every step of the stages before.
    fn stage(mut slf: PyRefMut<'_, Self>) -> PyRefMut<'_, Self> {
        slf.update(TransactionBuilder::stage);
        slf
    }

    /// Adds a transaction-level check, run after every stage.
    fn verify<'py>(
        mut slf: PyRefMut<'py, Self>,
        check: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let c = check_of(check)?;
        slf.update(|b| b.verify(c));
        Ok(slf)
    }

    /// Adds an action run after a failure, whatever the policy (scale to zero,
    /// maintenance mode): a callable whose return value (a str, or None) is reported, or a
    /// `rollback.Action`.
    #[pyo3(signature = (action, *, name=None))]
    fn on_failure<'py>(
        mut slf: PyRefMut<'py, Self>,
        action: &Bound<'py, PyAny>,
        name: Option<String>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let a = action_of(action, name, "on_failure")?;
        slf.update(|b| b.on_failure(a));
        Ok(slf)
    }

    /// Adds an action run after the run succeeded (every step verified, the checks
    /// passed), in the order added: a `rollback.Action` (`rollback.aws.CloudFrontInvalidation`)
    /// or a callable whose return value (a str, or None) is reported. Each is journaled
    /// before and after it runs, so a resume does not run it again; one that fails is in
    /// the report's `needs_attention` and the run stays succeeded.
    #[pyo3(signature = (action, *, name=None))]
    fn on_success<'py>(
        mut slf: PyRefMut<'py, Self>,
        action: &Bound<'py, PyAny>,
        name: Option<String>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let a = action_of(action, name, "on_success")?;
        slf.update(|b| b.on_success(a));
        Ok(slf)
    }

    /// Adds a notifier (`rollback.Webhook`), told when the run starts and how it ended; a
    /// notification that fails is in `needs_attention` and never fails the run.
    fn notify<'py>(
        mut slf: PyRefMut<'py, Self>,
        notifier: &Bound<'py, PyWebhook>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let hook = Arc::new(notifier.get().inner.clone());
        slf.update(|b| b.notify(hook));
        Ok(slf)
    }

    /// How many steps were added.
    fn __len__(&self) -> usize {
        self.builder.stages().map(<[Step]>::len).sum()
    }

    /// Runs the transaction (or, with `dry_run=True`, only its preflight: the plan, nothing
    /// changed) and returns the report. Raises (nothing changed) on bad input or a locked
    /// target; any later failure is in the report's outcome. `on_event` is called with
    /// every event. Releases the GIL; Ctrl-C stops the run, which `rollback.resume` can
    /// finish from its journal.
    #[pyo3(signature = (dry_run=false, on_event=None))]
    fn run(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        dry_run: bool,
        on_event: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyReport> {
        let (fut, journal) = slf.borrow().prepare(py, dry_run, on_event, false)?;
        block_on(py, fut).map_err(|e| interrupted(py, e, journal.as_ref()))
    }

    /// `run()`, awaitable (events are delivered on the caller's event loop).
    #[pyo3(signature = (dry_run=false, on_event=None))]
    fn run_async<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        dry_run: bool,
        on_event: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (fut, _) = slf.borrow().prepare(py, dry_run, on_event, true)?;
        awaitable(py, fut)
    }

    /// The least privilege a run of this transaction needs (what `rollback policy` prints):
    /// `{"iam": <IAM policy document>, "rbac": [<Role>, ...], "undeclared": [<part>, ...]}`,
    /// the parts in `undeclared` (a Python target, a command check) not covered. `account`
    /// (12 digits) and `region` fill in the ARNs' unknown fields. Calls nothing.
    #[pyo3(signature = (*, account=None, region=None, role="rollback"))]
    fn permissions<'py>(
        &self,
        py: Python<'py>,
        account: Option<&str>,
        region: Option<&str>,
        role: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(a) = account {
            rollback_core::permission::check_account("account=", a).map_err(py_err)?;
        }
        let needs = self.builder(self.run_locks(), None).permissions();
        let doc = serde_json::json!({
            "iam": needs.iam_policy(account, region),
            "rbac": needs.rbac_roles(role),
            "undeclared": needs.undeclared,
        });
        py.import("json")?.call_method1("loads", (doc.to_string(),))
    }

    fn __repr__(&self) -> String {
        let steps = self.__len__();
        let stages = self.builder.stages().count();
        format!(
            "<Transaction {:?}: {steps} step(s) in {stages} stage(s)>",
            self.builder.name()
        )
    }
}

/// Adds where to resume from to a KeyboardInterrupt that stopped a run.
fn interrupted(py: Python<'_>, e: PyErr, journal: Option<&PathBuf>) -> PyErr {
    if let Some(path) = journal {
        if e.is_instance_of::<PyKeyboardInterrupt>(py) && path.exists() {
            // BaseException.add_note (Python 3.11+; on older ones the error goes without it).
            let note = format!(
                "rollback: the run was interrupted; finish it with rollback.resume({:?})",
                path.display().to_string()
            );
            let _ = e.value(py).call_method1("add_note", (note,));
        }
    }
    e
}

fn registry(targets: &[Arc<dyn RollbackTarget>]) -> Registry {
    let mut r = Registry::with_builtins();
    // The process's loaded AWS settings: a resume does not resolve them again.
    rollback_aws::register_with(&mut r, crate::aws::loaded());
    rollback_k8s::register(&mut r);
    r.register(PYTHON_KIND, |spec: TargetSpec| async move {
        Err(Error::invalid(
            format!(
                "{}/{}",
                spec.params
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .unwrap_or(PYTHON_KIND),
                spec.params
                    .get("name")
                    .and_then(|k| k.as_str())
                    .unwrap_or("?")
            ),
            "is a Python target; pass the object again: rollback.resume(path, targets=[...])",
        ))
    });
    for t in targets {
        r.insert(t.clone());
    }
    r
}

/// Where a resumed run's journal comes from.
enum Source {
    /// A journal file.
    File(PathBuf),
    /// A journal store's transaction, copied to a local file first.
    Store(Arc<dyn JournalStore>, String, PathBuf),
}

#[allow(clippy::too_many_arguments)]
fn prepare_resume(
    py: Python<'_>,
    source: Source,
    targets: Option<&Bound<'_, PyAny>>,
    on_event: Option<Bound<'_, PyAny>>,
    stores: StoreArgs<'_, '_>,
    in_loop: bool,
) -> PyResult<impl std::future::Future<Output = PyResult<PyReport>> + Send + 'static> {
    let mut live = Vec::new();
    if let Some(ts) = targets {
        for t in ts.try_iter()? {
            live.push(target_of(&t?)?);
        }
    }
    let stores = stores.stores("resume")?;
    let mut opts = ResumeOptions {
        registry: registry(&live),
        // Without `locks` or `locks_dir`, the lock manager the run recorded in its journal
        // (or, for an older journal, $ROLLBACK_LOCK_DIR).
        locks: stores.locks,
        journal_store: stores.journal_store,
        ..ResumeOptions::default()
    };
    if let Some(k) = stores.known_good {
        opts.known_good = k;
    }
    if let Some(cb) = on_event.filter(|c| !c.is_none()) {
        if !cb.is_callable() {
            return Err(PyTypeError::new_err(
                "on_event must be a callable taking an Event",
            ));
        }
        let event_loop = if in_loop { running_loop(py) } else { None };
        opts = opts.on_event(event_sink(cb.unbind(), event_loop));
    }
    Ok(async move {
        let report = match source {
            Source::File(journal) => rollback_core::resume_with(&journal, opts).await,
            Source::Store(store, tx, local) => {
                rollback_core::resume_from_store(store, &tx, &local, opts).await
            }
        };
        report.map(|r| PyReport { inner: r }).map_err(py_err)
    })
}

/// Finishes the run recorded in a journal (one whose process died or was interrupted)
/// without applying anything twice; a run that already ended is returned as it was.
/// Built-in targets are rebuilt from the journal; pass Python targets again in `targets`.
/// Leases are taken where the run recorded (its lock folder or shared store), unless
/// `locks_dir` or `locks` is given; `journal_store` also writes the new records there;
/// a success is recorded in `known_good` / `known_good_dir` (default: the local folder).
#[pyfunction]
#[pyo3(signature = (journal_path, *, targets=None, on_event=None, locks_dir=None, locks=None, known_good_dir=None, known_good=None, journal_store=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn resume(
    py: Python<'_>,
    journal_path: PathBuf,
    targets: Option<&Bound<'_, PyAny>>,
    on_event: Option<Bound<'_, PyAny>>,
    locks_dir: Option<PathBuf>,
    locks: Option<&Bound<'_, PyAny>>,
    known_good_dir: Option<PathBuf>,
    known_good: Option<&Bound<'_, PyAny>>,
    journal_store: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyReport> {
    let stores = StoreArgs {
        locks_dir,
        locks,
        known_good_dir,
        known_good,
        journal_store,
    };
    let fut = prepare_resume(
        py,
        Source::File(journal_path),
        targets,
        on_event,
        stores,
        false,
    )?;
    block_on(py, fut)
}

/// `resume()`, awaitable.
#[pyfunction]
#[pyo3(signature = (journal_path, *, targets=None, on_event=None, locks_dir=None, locks=None, known_good_dir=None, known_good=None, journal_store=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn resume_async<'py>(
    py: Python<'py>,
    journal_path: PathBuf,
    targets: Option<&Bound<'py, PyAny>>,
    on_event: Option<Bound<'py, PyAny>>,
    locks_dir: Option<PathBuf>,
    locks: Option<&Bound<'py, PyAny>>,
    known_good_dir: Option<PathBuf>,
    known_good: Option<&Bound<'py, PyAny>>,
    journal_store: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let stores = StoreArgs {
        locks_dir,
        locks,
        known_good_dir,
        known_good,
        journal_store,
    };
    let fut = prepare_resume(
        py,
        Source::File(journal_path),
        targets,
        on_event,
        stores,
        true,
    )?;
    awaitable(py, fut)
}

/// Finishes transaction `transaction` from its journal in `store` (a run whose machine
/// died, finished here): the records are copied to `local_path`, then resumed as
/// `resume()` does, every new record written there and to the store. Pass Python targets
/// again in `targets`; `locks` / `locks_dir` replace the lock manager the journal names.
#[pyfunction]
#[pyo3(signature = (store, transaction, local_path, *, targets=None, on_event=None, locks=None, locks_dir=None, known_good=None, known_good_dir=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn resume_from_store(
    py: Python<'_>,
    store: &Bound<'_, PyAny>,
    transaction: String,
    local_path: PathBuf,
    targets: Option<&Bound<'_, PyAny>>,
    on_event: Option<Bound<'_, PyAny>>,
    locks: Option<&Bound<'_, PyAny>>,
    locks_dir: Option<PathBuf>,
    known_good: Option<&Bound<'_, PyAny>>,
    known_good_dir: Option<PathBuf>,
) -> PyResult<PyReport> {
    let source = Source::Store(journal_store_of(store)?, transaction, local_path);
    let stores = StoreArgs {
        locks_dir,
        locks,
        known_good_dir,
        known_good,
        journal_store: None,
    };
    let fut = prepare_resume(py, source, targets, on_event, stores, false)?;
    block_on(py, fut)
}

/// `resume_from_store()`, awaitable.
#[pyfunction]
#[pyo3(signature = (store, transaction, local_path, *, targets=None, on_event=None, locks=None, locks_dir=None, known_good=None, known_good_dir=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn resume_from_store_async<'py>(
    py: Python<'py>,
    store: &Bound<'py, PyAny>,
    transaction: String,
    local_path: PathBuf,
    targets: Option<&Bound<'py, PyAny>>,
    on_event: Option<Bound<'py, PyAny>>,
    locks: Option<&Bound<'py, PyAny>>,
    locks_dir: Option<PathBuf>,
    known_good: Option<&Bound<'py, PyAny>>,
    known_good_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let source = Source::Store(journal_store_of(store)?, transaction, local_path);
    let stores = StoreArgs {
        locks_dir,
        locks,
        known_good_dir,
        known_good,
        journal_store: None,
    };
    let fut = prepare_resume(py, source, targets, on_event, stores, true)?;
    awaitable(py, fut)
}

/// Runbook files from Python: `rollback.Runbook.load(path, vars=...)` is the `Transaction`
/// the file describes, as `rollback plan|apply FILE --var ...` would run it.
#[pyclass(module = "rollback", name = "Runbook", frozen)]
pub(crate) struct PyRunbook {}

#[pymethods]
impl PyRunbook {
    /// The transaction of the runbook file at `path`, its `${NAME}`s filled from `vars`
    /// (then, unless `environment=False`, from the environment). Every problem (unknown
    /// keys or kinds, wrong types, unset variables, bad parameters) is reported at once,
    /// with its line and column, as `InvalidInputError`; nothing is called. `reason` (why
    /// you are rolling back; a real run needs one) replaces the file's.
    #[staticmethod]
    #[pyo3(signature = (path, *, vars = None, reason = None, environment = true))]
    fn load(
        py: Python<'_>,
        path: PathBuf,
        vars: Option<std::collections::BTreeMap<String, String>>,
        reason: Option<String>,
        environment: bool,
    ) -> PyResult<PyTransaction> {
        let runbook = runbook_of(&path, vars, environment)?;
        let mut builder = block_on(py, async move {
            runbook.build(&registry(&[])).await.map_err(py_err)
        })?;
        if let Some(r) = reason {
            builder = builder.reason(r);
        }
        Ok(PyTransaction {
            builder,
            locks: None,
            own_locks: true,
        })
    }

    /// The runbook file's drill on `environment` (its `drill:` section), as `rollback
    /// drill FILE --environment ...` runs it; `InvalidInputError` for a runbook not marked
    /// for drills or marked for another environment.
    #[staticmethod]
    #[pyo3(signature = (path, *, environment, vars = None, env = true))]
    fn drill(
        py: Python<'_>,
        path: PathBuf,
        environment: String,
        vars: Option<std::collections::BTreeMap<String, String>>,
        env: bool,
    ) -> PyResult<PyDrill> {
        let runbook = runbook_of(&path, vars, env)?;
        let inner = block_on(py, async move {
            runbook
                .drill(&registry(&[]), &environment)
                .await
                .map_err(py_err)
        })?;
        Ok(PyDrill { inner })
    }
}

/// The runbook file at `path` with `vars` (then, if `environment`, the environment's).
fn runbook_of(
    path: &std::path::Path,
    vars: Option<std::collections::BTreeMap<String, String>>,
    environment: bool,
) -> PyResult<rollback_core::runbook::Runbook> {
    let mut v = rollback_core::runbook::Vars::new();
    if !environment {
        v = v.without_environment();
    }
    for (name, value) in vars.unwrap_or_default() {
        v = v.set(name, value);
    }
    rollback_core::runbook::Runbook::load(path, &v).map_err(py_err)
}

/// A rollback drill (runbook 004 "Testing Rollback Procedures") over `transaction` on the
/// drill environment `environment`: each target broken to `break_to` (a selector; by
/// default the newest revision not in use), the transaction's checks waited on until one
/// fails (time to detect, within `detect_within`), the transaction run (time to recover,
/// against `recover_within`), every target left where it was found. `run()` returns the
/// report as a dict (with `markdown`, the report for the ticket).
#[pyclass(module = "rollback", name = "Drill", frozen)]
pub(crate) struct PyDrill {
    inner: rollback_core::drill::Drill,
}

#[pymethods]
impl PyDrill {
    #[new]
    #[pyo3(signature = (transaction, *, environment, break_to = None, detect_within = Seconds::of(300), recover_within = Seconds::of(300), probe_interval = Seconds::of(2)))]
    fn new(
        py: Python<'_>,
        transaction: PyRef<'_, PyTransaction>,
        environment: String,
        break_to: Option<Bound<'_, PyAny>>,
        detect_within: Seconds,
        recover_within: Seconds,
        probe_interval: Seconds,
    ) -> PyResult<Self> {
        use rollback_core::drill::{BreakTo, Drill};
        let break_to = match break_to.filter(|b| !b.is_none()) {
            None => BreakTo::Newest,
            Some(b) => BreakTo::Selector(selector_of(&b)?),
        };
        let d = Drill::new(
            environment,
            transaction.builder(transaction.run_locks(), None),
        )
        .break_to(break_to)
        .detect_within(detect_within.get("Drill", "detect_within")?)
        .recover_within(recover_within.get("Drill", "recover_within")?)
        .probe_interval(probe_interval.get("Drill", "probe_interval")?);
        d.validate().map_err(|e| crate::errors::to_py(py, &e))?;
        Ok(PyDrill { inner: d })
    }

    /// Runs the drill and returns its report (a dict, as `rollback drill -o json` prints
    /// it, plus `markdown`); with `history` (a JSON-lines file) the report is added to it
    /// and the Markdown shows the trend.
    #[pyo3(signature = (*, history = None))]
    fn run(&self, py: Python<'_>, history: Option<PathBuf>) -> PyResult<Py<PyAny>> {
        use rollback_core::drill::DrillReport;
        let past = match &history {
            Some(h) => DrillReport::history(h).map_err(py_err)?,
            None => Vec::new(),
        };
        let drill = self.inner.clone();
        let report = block_on(py, async move { drill.run().await.map_err(py_err) })?;
        if let Some(h) = &history {
            report.append(h).map_err(py_err)?;
        }
        let mut v = serde_json::to_value(&report).map_err(|e| {
            pyo3::exceptions::PyValueError::new_err(format!("cannot convert the report: {e}"))
        })?;
        v["markdown"] = serde_json::Value::from(report.markdown(&past));
        Ok(py
            .import("json")?
            .call_method1("loads", (v.to_string(),))?
            .unbind())
    }
}
