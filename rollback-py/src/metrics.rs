//! `rollback.metrics`: metric sources (Prometheus, CloudWatch in `rollback.aws`, a static
//! one for tests), threshold checks ("above X for N minutes") usable wherever a check is,
//! and runbook 004's decision tree (`decide`) with its reasons and evidence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rollback_core::metrics::{
    decide_from, Comparison, Decision, DecisionPolicy, DecisionQueries, MetricSource,
    PrometheusSource, Recommendation, Series, StaticSource, ThresholdCheck,
};

use rollback_core::watch::{NoData, Responder, Watch, WatchRecord, WatchState};

use crate::check::PyCheck;
use crate::errors::{invalid, py_err};
use crate::runtime::{awaitable, block_on};
use crate::types::{PyPolicy, Seconds};

/// Where metrics come from. `PrometheusSource`, `StaticSource` and
/// `rollback.aws.CloudWatchSource` extend this class.
#[pyclass(module = "rollback.metrics", name = "MetricSource", subclass, frozen)]
pub(crate) struct PyMetricSource {
    pub(crate) inner: Arc<dyn MetricSource>,
}

impl PyMetricSource {
    pub(crate) fn init(inner: Arc<dyn MetricSource>) -> PyClassInitializer<Self> {
        PyClassInitializer::from(PyMetricSource { inner })
    }
}

#[pymethods]
impl PyMetricSource {
    /// The source as errors name it (`prometheus/http://...`, `cloudwatch/us-east-1`).
    #[getter]
    fn name(&self) -> String {
        self.inner.name()
    }

    fn __repr__(&self) -> String {
        format!("<MetricSource {}>", self.inner.name())
    }
}

/// A Prometheus server's HTTP API (`/api/v1/query_range`); queries are PromQL. A bearer
/// token is read from the environment variable `bearer_token_env` at each query (never
/// kept, shown or journaled).
#[pyclass(module = "rollback.metrics", name = "PrometheusSource", extends = PyMetricSource, frozen)]
pub(crate) struct PyPrometheusSource {}

#[pymethods]
impl PyPrometheusSource {
    #[new]
    #[pyo3(signature = (url, *, bearer_token_env = None, timeout = None))]
    fn new(
        url: String,
        bearer_token_env: Option<String>,
        timeout: Option<Seconds>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let target = format!("prometheus/{url}");
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                &target,
                "the Prometheus URL must start with http:// or https://, e.g. http://prometheus:9090",
            ));
        }
        let mut p = PrometheusSource::new(url);
        if let Some(var) = bearer_token_env {
            p = p.bearer_token_env(var);
        }
        if let Some(t) = Seconds::get_opt(timeout, &target, "timeout")? {
            p = p.timeout(t);
        }
        Ok(PyMetricSource::init(Arc::new(p)).add_subclass(PyPrometheusSource {}))
    }
}

/// A source answering every query from series given up front, for tests and replays:
/// `StaticSource("replay", {"error_rate": [Series(...)]})`.
#[pyclass(module = "rollback.metrics", name = "StaticSource", extends = PyMetricSource, frozen)]
pub(crate) struct PyStaticSource {}

#[pymethods]
impl PyStaticSource {
    #[new]
    #[pyo3(signature = (name, series))]
    fn new(
        name: String,
        series: BTreeMap<String, Vec<PyRef<'_, PySeries>>>,
    ) -> PyClassInitializer<Self> {
        let mut s = StaticSource::new(name);
        for (query, list) in series {
            s = s.with(query, list.iter().map(|x| x.inner.clone()).collect());
        }
        PyMetricSource::init(Arc::new(s)).add_subclass(PyStaticSource {})
    }
}

/// One time series: a metric name, labels, and `(datetime, value)` points.
#[pyclass(module = "rollback.metrics", name = "Series", frozen)]
#[derive(Clone)]
pub(crate) struct PySeries {
    pub(crate) inner: Series,
}

#[pymethods]
impl PySeries {
    #[new]
    #[pyo3(signature = (name, points, *, labels = None))]
    fn new(
        name: String,
        points: Vec<(DateTime<Utc>, f64)>,
        labels: Option<BTreeMap<String, String>>,
    ) -> Self {
        let mut s = Series::new(name).points(points);
        for (k, v) in labels.unwrap_or_default() {
            s = s.label(k, v);
        }
        PySeries { inner: s }
    }

    /// The series as PromQL writes it: `name{label="value"}`.
    #[getter]
    fn selector(&self) -> String {
        self.inner.selector()
    }

    /// The points, oldest first.
    #[getter]
    fn points(&self) -> Vec<(DateTime<Utc>, f64)> {
        self.inner.samples.iter().map(|s| (s.at, s.value)).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "<Series {}: {} point(s)>",
            self.inner.selector(),
            self.inner.samples.len()
        )
    }
}

fn comparison(query: &str, above: Option<f64>, below: Option<f64>) -> PyResult<Comparison> {
    let target = format!("threshold {query:?}");
    match (above, below) {
        (Some(v), None) if v.is_finite() => Ok(Comparison::Above(v)),
        (None, Some(v)) if v.is_finite() => Ok(Comparison::Below(v)),
        (Some(_), Some(_)) => Err(invalid(&target, "give above= or below=, not both")),
        (None, None) => Err(invalid(
            &target,
            "give the threshold: above=0.05 (breaching values are higher) or below=... (lower)",
        )),
        _ => Err(invalid(&target, "the threshold must be a finite number")),
    }
}

/// A check that fails while `query` stays above (or below) a threshold for `sustained_for`
/// seconds ("error rate above 5 % for 5 minutes"), over the source's range query; its
/// evidence gives the worst and last values. No data fails it ("no data is never read as
/// healthy") unless `pass_on_no_data`.
#[pyclass(module = "rollback.metrics", name = "Threshold", extends = PyCheck, frozen)]
pub(crate) struct PyThreshold {}

#[pymethods]
impl PyThreshold {
    #[new]
    #[pyo3(signature = (source, query, *, above = None, below = None, sustained_for = Seconds::of(300), step = None, pass_on_no_data = false, at = None, policy = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        source: PyRef<'_, PyMetricSource>,
        query: String,
        above: Option<f64>,
        below: Option<f64>,
        sustained_for: Seconds,
        step: Option<Seconds>,
        pass_on_no_data: bool,
        at: Option<DateTime<Utc>>,
        policy: Option<PyPolicy>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let target = format!("threshold {query:?}");
        let cmp = comparison(&query, above, below)?;
        source.inner.validate_query(&query).map_err(py_err)?;
        let window = sustained_for.get(&target, "sustained_for")?;
        let mut t = ThresholdCheck::new(source.inner.clone(), query, cmp, window);
        if let Some(s) = Seconds::get_opt(step, &target, "step")? {
            if s.is_zero() {
                return Err(invalid(&target, "step must be more than 0 seconds"));
            }
            t = t.step(s);
        }
        if pass_on_no_data {
            t = t.pass_on_no_data();
        }
        if let Some(at) = at {
            t = t.at(at);
        }
        Ok(PyCheck::init(t, policy).add_subclass(PyThreshold {}))
    }
}

/// The thresholds of runbook 004's decision tree; the defaults are its "When to Rollback":
/// error rate above 5 %, p95 latency above 2 s, for 5 minutes; an SLO burn rate above 1
/// means "roll back within 10 minutes".
#[pyclass(
    module = "rollback.metrics",
    name = "DecisionPolicy",
    frozen,
    from_py_object
)]
#[derive(Clone)]
pub(crate) struct PyDecisionPolicy {
    inner: DecisionPolicy,
}

#[pymethods]
impl PyDecisionPolicy {
    #[new]
    #[pyo3(signature = (*, error_rate_above = 0.05, latency_p95_above = 2.0, sustained_for = Seconds::of(300), slo_burn_rate_above = 1.0, rollback_within = Seconds::of(600)))]
    fn new(
        error_rate_above: f64,
        latency_p95_above: f64,
        sustained_for: Seconds,
        slo_burn_rate_above: f64,
        rollback_within: Seconds,
    ) -> PyResult<Self> {
        for (what, v) in [
            ("error_rate_above", error_rate_above),
            ("latency_p95_above", latency_p95_above),
            ("slo_burn_rate_above", slo_burn_rate_above),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(
                    "DecisionPolicy",
                    format!("{what}={v} must be a finite number, 0 or more"),
                ));
            }
        }
        if error_rate_above > 1.0 {
            return Err(invalid(
                "DecisionPolicy",
                format!("error_rate_above={error_rate_above} is a fraction: 0.05 is 5 %"),
            ));
        }
        Ok(PyDecisionPolicy {
            inner: DecisionPolicy {
                error_rate_above,
                latency_p95_above_secs: latency_p95_above,
                sustained_for: sustained_for.get("DecisionPolicy", "sustained_for")?,
                slo_burn_rate_above,
                rollback_within: rollback_within.get("DecisionPolicy", "rollback_within")?,
            },
        })
    }

    #[getter]
    fn error_rate_above(&self) -> f64 {
        self.inner.error_rate_above
    }

    #[getter]
    fn latency_p95_above(&self) -> f64 {
        self.inner.latency_p95_above_secs
    }

    #[getter]
    fn sustained_for(&self) -> Duration {
        self.inner.sustained_for
    }

    #[getter]
    fn rollback_within(&self) -> Duration {
        self.inner.rollback_within
    }
}

/// What the decision tree concluded and why: `recommendation` (`rollback_now`,
/// `rollback_within`, `monitor`), `rollback` (now or soon), `reasons` with numbers (the
/// first is the branch that decided), `evidence` per signal, and `at`, the window's end.
#[pyclass(module = "rollback.metrics", name = "Decision", frozen)]
pub(crate) struct PyDecision {
    inner: Decision,
}

#[pymethods]
impl PyDecision {
    #[getter]
    fn recommendation(&self) -> &'static str {
        match self.inner.action {
            Recommendation::RollbackNow => "rollback_now",
            Recommendation::RollbackWithin(_) => "rollback_within",
            Recommendation::Monitor => "monitor",
        }
    }

    /// How soon, for `rollback_within`.
    #[getter]
    fn within(&self) -> Option<Duration> {
        match self.inner.action {
            Recommendation::RollbackWithin(d) => Some(d),
            _ => None,
        }
    }

    /// Whether the recommendation is a rollback, now or soon.
    #[getter]
    fn rollback(&self) -> bool {
        self.inner.action.is_rollback()
    }

    #[getter]
    fn reasons(&self) -> Vec<String> {
        self.inner.reasons.clone()
    }

    /// One dict per signal: `signal`, `labels`, `window_start`, `window_end`, `threshold`,
    /// `worst`, `last`, `samples`, `breaching_samples`, `series`, `breached`.
    #[getter]
    fn evidence<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .evidence
            .iter()
            .map(|e| {
                let d = PyDict::new(py);
                d.set_item(
                    "signal",
                    serde_json::to_value(e.signal)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string)),
                )?;
                d.set_item("labels", e.labels.clone())?;
                d.set_item("window_start", e.window_start)?;
                d.set_item("window_end", e.window_end)?;
                d.set_item("threshold", e.threshold)?;
                d.set_item("worst", e.worst)?;
                d.set_item("last", e.last)?;
                d.set_item("samples", e.samples)?;
                d.set_item("breaching_samples", e.breaching_samples)?;
                d.set_item("series", e.series)?;
                d.set_item("breached", e.breached)?;
                Ok(d)
            })
            .collect()
    }

    #[getter]
    fn at(&self) -> DateTime<Utc> {
        self.inner.at
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("<Decision {}>", self.recommendation())
    }
}

#[allow(clippy::too_many_arguments)]
fn decision(
    source: &PyMetricSource,
    error_rate: String,
    p95_latency: String,
    slo_burn_rate: Option<String>,
    critical_feature_broken: bool,
    policy: Option<PyDecisionPolicy>,
    step: Seconds,
    at: Option<DateTime<Utc>>,
) -> PyResult<impl std::future::Future<Output = PyResult<PyDecision>> + Send + 'static> {
    let step = step.get("decide", "step")?;
    if step.is_zero() {
        return Err(PyValueError::new_err(
            "decide: step must be more than 0 seconds",
        ));
    }
    for q in [
        Some(&error_rate),
        Some(&p95_latency),
        slo_burn_rate.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        source.inner.validate_query(q).map_err(py_err)?;
    }
    let mut queries = DecisionQueries::new(error_rate, p95_latency).step(step);
    if let Some(q) = slo_burn_rate {
        queries = queries.slo_burn_rate(q);
    }
    let policy = policy.map(|p| p.inner).unwrap_or_default();
    let source = source.inner.clone();
    Ok(async move {
        let now = at.unwrap_or_else(Utc::now);
        decide_from(&*source, &queries, critical_feature_broken, &policy, now)
            .await
            .map(|inner| PyDecision { inner })
            .map_err(py_err)
    })
}

/// Runbook 004's "Rollback Decision Tree" over `source`: the error rate and p95 latency
/// queries (and the SLO burn rate, when given) over the policy's window ending `at` (now),
/// then the tree. A query that fails fails the decision (never decided on partial data).
#[pyfunction]
#[pyo3(signature = (source, *, error_rate, p95_latency, slo_burn_rate = None, critical_feature_broken = false, policy = None, step = Seconds::of(30), at = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn decide(
    py: Python<'_>,
    source: PyRef<'_, PyMetricSource>,
    error_rate: String,
    p95_latency: String,
    slo_burn_rate: Option<String>,
    critical_feature_broken: bool,
    policy: Option<PyDecisionPolicy>,
    step: Seconds,
    at: Option<DateTime<Utc>>,
) -> PyResult<PyDecision> {
    let fut = decision(
        &source,
        error_rate,
        p95_latency,
        slo_burn_rate,
        critical_feature_broken,
        policy,
        step,
        at,
    )?;
    block_on(py, fut)
}

/// :func:`decide`, awaitable.
#[pyfunction]
#[pyo3(signature = (source, *, error_rate, p95_latency, slo_burn_rate = None, critical_feature_broken = false, policy = None, step = Seconds::of(30), at = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn decide_async<'py>(
    py: Python<'py>,
    source: PyRef<'py, PyMetricSource>,
    error_rate: String,
    p95_latency: String,
    slo_burn_rate: Option<String>,
    critical_feature_broken: bool,
    policy: Option<PyDecisionPolicy>,
    step: Seconds,
    at: Option<DateTime<Utc>>,
) -> PyResult<Bound<'py, PyAny>> {
    let fut = decision(
        &source,
        error_rate,
        p95_latency,
        slo_burn_rate,
        critical_feature_broken,
        policy,
        step,
        at,
    )?;
    awaitable(py, fut)
}

/// Runs the Transaction a Python callable gives for a decision.
struct PyResponder {
    respond: Py<PyAny>,
}

#[async_trait::async_trait]
impl Responder for PyResponder {
    async fn respond(&self, decision: &Decision) -> rollback_core::Result<rollback_core::Report> {
        let b = Python::attach(|py| -> PyResult<rollback_core::TransactionBuilder> {
            let given = self.respond.bind(py).call1((PyDecision {
                inner: decision.clone(),
            },))?;
            let tx = given
                .cast::<crate::transaction::PyTransaction>()
                .map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "the watch's respond callable must return a rollback.Transaction, not {}",
                        given.get_type()
                    ))
                })?
                .borrow();
            Ok(tx.builder(tx.run_locks(), None))
        })
        .map_err(|e| crate::errors::from_py_err(e, "watch"))?;
        let reason = rollback_core::watch::reason_for(decision, b.reason_text());
        let b = b.reason(reason);
        b.build()?.run().await
    }
}

/// A record (`serde_json::to_string` of it) as a dict.
fn record_dict(py: Python<'_>, json: serde_json::Result<String>) -> PyResult<Py<PyAny>> {
    let text =
        json.map_err(|e| PyValueError::new_err(format!("cannot convert a watch record: {e}")))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

fn respond_of(respond: &Bound<'_, PyAny>) -> PyResult<PyResponder> {
    if !respond.is_callable() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "respond must be a callable taking a Decision and returning the Transaction to run",
        ));
    }
    Ok(PyResponder {
        respond: respond.clone().unbind(),
    })
}

/// Rolls back when the numbers say so: runbook 004's decision tree over `source` every
/// `interval`; "roll back immediately" calls `respond(decision)` for the Transaction to run
/// and runs it; "roll back within" waits its grace and decides again. Once per incident,
/// none within `cooldown` after an action; a failing source or a signal without data is
/// `no_data="hold"` (nothing) or `"act"`. Each look is a record (a dict, as the decision
/// log `log` keeps it, one JSON line each).
#[pyclass(module = "rollback.metrics", name = "Watch", frozen)]
pub(crate) struct PyWatch {
    inner: Watch,
    state: Arc<tokio::sync::Mutex<WatchState>>,
}

impl PyWatch {
    fn look(
        &self,
        respond: &Bound<'_, PyAny>,
        at: Option<DateTime<Utc>>,
    ) -> PyResult<impl std::future::Future<Output = PyResult<WatchRecord>> + Send + 'static> {
        let responder = respond_of(respond)?;
        let (watch, state) = (self.inner.clone(), self.state.clone());
        Ok(async move {
            let mut state = state.lock().await;
            watch
                .step(&mut state, &responder, at.unwrap_or_else(Utc::now))
                .await
                .map_err(py_err)
        })
    }
}

#[pymethods]
impl PyWatch {
    #[new]
    #[pyo3(signature = (source, *, error_rate, p95_latency, slo_burn_rate = None, policy = None, step = Seconds::of(30), interval = Seconds::of(30), cooldown = Seconds::of(1800), no_data = "hold", dry_run = false, log = None, status_file = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        source: PyRef<'_, PyMetricSource>,
        error_rate: String,
        p95_latency: String,
        slo_burn_rate: Option<String>,
        policy: Option<PyDecisionPolicy>,
        step: Seconds,
        interval: Seconds,
        cooldown: Seconds,
        no_data: &str,
        dry_run: bool,
        log: Option<std::path::PathBuf>,
        status_file: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let mut queries =
            DecisionQueries::new(error_rate, p95_latency).step(step.get("Watch", "step")?);
        if let Some(q) = slo_burn_rate {
            queries = queries.slo_burn_rate(q);
        }
        let no_data = match no_data {
            "hold" => NoData::Hold,
            "act" => NoData::Act,
            other => {
                return Err(invalid(
                    "Watch",
                    format!("no_data={other:?}: give \"hold\" (do nothing) or \"act\""),
                ))
            }
        };
        let mut w = Watch::new(source.inner.clone(), queries)
            .policy(policy.map(|p| p.inner).unwrap_or_default())
            .interval(interval.get("Watch", "interval")?)
            .cooldown(cooldown.get("Watch", "cooldown")?)
            .no_data(no_data)
            .dry_run(dry_run);
        if let Some(l) = log {
            w = w.log(l);
        }
        if let Some(s) = status_file {
            w = w.status_file(s);
        }
        w.validate().map_err(|e| crate::errors::to_py(py, &e))?;
        // Made again over the same log, a watch goes on where that one left off.
        let state = match w.log_path() {
            Some(log) => w
                .resume_state(log)
                .map_err(|e| crate::errors::to_py(py, &e))?,
            None => WatchState::default(),
        };
        Ok(PyWatch {
            inner: w,
            state: Arc::new(tokio::sync::Mutex::new(state)),
        })
    }

    /// One look at `at` (now): decides, acts if the rules say so, and returns the record.
    #[pyo3(signature = (respond, *, at = None))]
    fn step(
        &self,
        py: Python<'_>,
        respond: Bound<'_, PyAny>,
        at: Option<DateTime<Utc>>,
    ) -> PyResult<Py<PyAny>> {
        let record = block_on(py, self.look(&respond, at)?)?;
        record_dict(py, serde_json::to_string(&record))
    }

    /// :meth:`step`, awaitable.
    #[pyo3(signature = (respond, *, at = None))]
    fn step_async<'py>(
        &self,
        py: Python<'py>,
        respond: Bound<'py, PyAny>,
        at: Option<DateTime<Utc>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fut = self.look(&respond, at)?;
        awaitable(py, async move {
            let record = fut.await?;
            Python::attach(|py| record_dict(py, serde_json::to_string(&record)))
        })
    }

    /// Looks now and every `interval` until `max_decisions` looks (or Ctrl-C); each record
    /// goes to `on_record`. Returns `{"decisions", "actions", "last"}`.
    #[pyo3(signature = (respond, *, max_decisions = None, on_record = None))]
    fn run(
        &self,
        py: Python<'_>,
        respond: Bound<'_, PyAny>,
        max_decisions: Option<u64>,
        on_record: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let responder = respond_of(&respond)?;
        let mut watch = self.inner.clone();
        if let Some(n) = max_decisions {
            watch = watch.max_decisions(n);
        }
        let on_record = on_record.filter(|c| !c.is_none()).map(Bound::unbind);
        let summary = block_on(py, async move {
            watch
                .run(&responder, std::future::pending(), |r: &WatchRecord| {
                    if let Some(cb) = &on_record {
                        Python::attach(|py| {
                            if let Err(e) = record_dict(py, serde_json::to_string(r))
                                .and_then(|d| cb.bind(py).call1((d,)))
                            {
                                e.print(py);
                            }
                        });
                    }
                })
                .await
                .map_err(py_err)
        })?;
        record_dict(py, serde_json::to_string(&summary))
    }

    fn __repr__(&self) -> String {
        format!("<Watch {}>", self.inner.source().name())
    }
}
