//! Metrics: time series from a monitoring backend, threshold checks over them, and
//! runbook 004's rollback decision as a function.
//!
//! - [`Series`] of [`Sample`]s come from a [`MetricSource`]: `PrometheusSource` (the
//!   Prometheus HTTP API, with the `http` feature), [`StaticSource`] (series held in
//!   memory, for tests and recorded incidents), or a backend crate's own source
//!   (CloudWatch `GetMetricData` in `rollback-aws`).
//! - [`sustained_breach`] says whether a series stayed beyond a threshold for a whole
//!   window ("error rate > 5 % for 5+ minutes"), [`breach_stats`] says by how much.
//! - [`ThresholdCheck`] is a [`Verifier`](crate::verify::Verifier) that fails while a
//!   breach is sustained.
//! - [`decide`] walks runbook 004's "Rollback Decision Tree" over metric series and
//!   returns a [`Decision`] with its reasons and evidence; [`decide_from`] first fetches
//!   the series from a source.
//!
//! # What "sustained" means
//!
//! A series breaches a [`Comparison`] *sustainedly* over `[window_start, window_end]`
//! when all of these hold (see [`breach_stats`]):
//!
//! 1. it has at least one sample in the window (samples outside it are ignored);
//! 2. every sample in the window breaches (`NaN`, which Prometheus returns for "no
//!    traffic" ratios, never breaches, so it interrupts a breach);
//! 3. the samples cover the window: the first one is at most one sample interval after
//!    `window_start`, and no two consecutive samples are more than two intervals apart
//!    (one missing point is tolerated). The interval is the smallest gap between the
//!    series' samples in the window, i.e. the query's step. A single sample only counts
//!    when it sits exactly at `window_start`, which is the case of a zero-length window.
//!
//! Rule 3 is why a series that only appeared a minute ago (new pods after a deploy) does
//! not count as "above 5 % for 5 minutes", however high it is. The end of the window is
//! not required to be covered: CloudWatch, for one, publishes the last minutes late.
//!
//! # The decision tree
//!
//! ```
//! use chrono::{DateTime, TimeDelta};
//! use rollback_core::metrics::{decide, Recommendation, DecisionInputs, DecisionPolicy, Series};
//!
//! let now = DateTime::from_timestamp(1_764_513_000, 0).unwrap(); // 2025-11-30 14:30 UTC
//! // One sample every 30 s over the last 10 minutes.
//! let series = |service: &str, value: f64| {
//!     Series::new("")
//!         .label("service", service)
//!         .points((0..=20).map(|i| (now - TimeDelta::seconds(600 - 30 * i), value)))
//! };
//!
//! let inputs = DecisionInputs::new(now)
//!     .error_rate(vec![series("checkout", 0.07), series("search", 0.004)])
//!     .p95_latency_seconds(vec![series("checkout", 0.4)]);
//! let decision = decide(&inputs, &DecisionPolicy::default());
//! assert_eq!(decision.action, Recommendation::RollbackNow);
//! assert!(decision.reasons[0].starts_with("error rate above 5% for 5m"));
//! assert!(decision.reasons[0].contains(r#"{service="checkout"}"#));
//!
//! let calm = DecisionInputs::new(now)
//!     .error_rate(vec![series("checkout", 0.02)])
//!     .p95_latency_seconds(vec![series("checkout", 0.4)])
//!     .slo_burn_rate(vec![series("checkout", 2.5)]);
//! let decision = decide(&calm, &DecisionPolicy::default());
//! assert_eq!(decision.action, Recommendation::RollbackWithin(std::time::Duration::from_secs(600)));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod decision;
mod prometheus;
mod threshold;

#[allow(deprecated)]
pub use decision::Action;
pub use decision::{
    decide, decide_from, Decision, DecisionInputs, DecisionPolicy, DecisionQueries, Evidence,
    Recommendation, Signal,
};
pub use prometheus::parse_response;
#[cfg(feature = "http")]
pub use prometheus::PrometheusSource;
pub use threshold::{ThresholdCheck, ThresholdSpec};

/// One observation of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was observed (for a Prometheus range query: the evaluation time).
    pub at: DateTime<Utc>,
    /// The value. `NaN` and infinities are kept; in JSON they are written as the strings
    /// `"NaN"`, `"+Inf"` and `"-Inf"`, as Prometheus writes them.
    #[serde(with = "float")]
    pub value: f64,
}

impl Sample {
    /// A sample.
    pub fn new(at: DateTime<Utc>, value: f64) -> Self {
        Sample { at, value }
    }
}

/// A time series: a metric name, its labels and its samples in time order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Series {
    /// The metric name (Prometheus `__name__`); empty when the query's result has none
    /// (`rate(...)`, `sum(...)` drop it).
    #[serde(default)]
    pub name: String,
    /// The labels, without `__name__`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The samples, oldest first.
    #[serde(default)]
    pub samples: Vec<Sample>,
}

impl Series {
    /// An empty series named `name` (may be empty).
    pub fn new(name: impl Into<String>) -> Self {
        Series {
            name: name.into(),
            ..Series::default()
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a sample.
    pub fn sample(mut self, at: DateTime<Utc>, value: f64) -> Self {
        self.samples.push(Sample::new(at, value));
        self
    }

    /// Adds samples.
    pub fn points(mut self, points: impl IntoIterator<Item = (DateTime<Utc>, f64)>) -> Self {
        self.samples
            .extend(points.into_iter().map(|(at, v)| Sample::new(at, v)));
        self
    }

    /// The newest sample.
    pub fn last(&self) -> Option<&Sample> {
        self.samples.iter().max_by_key(|s| s.at)
    }

    /// The series as a PromQL selector: `http_requests_total{code="500",job="api"}`, or
    /// `{service="checkout"}` without a name, or `{}` with neither.
    pub fn selector(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        if labels.is_empty() && !self.name.is_empty() {
            return self.name.clone();
        }
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.selector())
    }
}

/// Where metric series come from: Prometheus, CloudWatch, a recording.
///
/// `query` is whatever the backend understands (PromQL for Prometheus, a metric spec for
/// CloudWatch). An unknown metric is not an error: the answer is simply no series.
#[async_trait]
pub trait MetricSource: Send + Sync + fmt::Debug {
    /// A short name for errors and evidence (`prometheus/http://prometheus:9090`).
    fn name(&self) -> String;

    /// The cloud permissions its queries need (see
    /// [`RollbackTarget::permissions`](crate::RollbackTarget::permissions)); `None` (the
    /// default) when it does not say.
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        None
    }

    /// The series of `query` evaluated from `start` to `end` (both included) every `step`.
    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>>;

    /// The series of `query` at one instant (`None`: now), one sample each.
    async fn instant(&self, query: &str, at: Option<DateTime<Utc>>) -> Result<Vec<Series>>;

    /// The source as data, so a [`ThresholdCheck`] over it can be journaled and rebuilt;
    /// [`MetricSourceSpec::Opaque`] unless the type can be rebuilt.
    fn spec(&self) -> MetricSourceSpec {
        MetricSourceSpec::Opaque { name: self.name() }
    }

    /// Refuses a query (or a source setting) that can never be answered, without asking
    /// the backend: a [`ThresholdCheck`] calls it from
    /// [`Verifier::validate`](crate::verify::Verifier::validate), that is in a
    /// transaction's preflight. `Err` is [`Error::InvalidInput`]; the default accepts
    /// everything (an unknown metric is no data, not an error).
    fn validate_query(&self, query: &str) -> Result<()> {
        let _ = query;
        Ok(())
    }
}

#[async_trait]
impl<S: MetricSource + ?Sized> MetricSource for Arc<S> {
    fn name(&self) -> String {
        (**self).name()
    }
    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>> {
        (**self).range(query, start, end, step).await
    }
    async fn instant(&self, query: &str, at: Option<DateTime<Utc>>) -> Result<Vec<Series>> {
        (**self).instant(query, at).await
    }
    fn spec(&self) -> MetricSourceSpec {
        (**self).spec()
    }
    fn validate_query(&self, query: &str) -> Result<()> {
        (**self).validate_query(query)
    }
}

/// A metric source described as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum MetricSourceSpec {
    /// A [`PrometheusSource`] (its bearer token is never written, see there).
    #[cfg(feature = "http")]
    Prometheus(PrometheusSource),
    /// Code that cannot be rebuilt from data.
    Opaque {
        /// The source's name.
        name: String,
    },
}

impl MetricSourceSpec {
    /// Rebuilds the source, or `None` when it is [`MetricSourceSpec::Opaque`].
    pub fn build(&self) -> Option<Arc<dyn MetricSource>> {
        match self {
            #[cfg(feature = "http")]
            MetricSourceSpec::Prometheus(p) => Some(Arc::new(p.clone())),
            MetricSourceSpec::Opaque { .. } => None,
        }
    }
}

/// The `prometheus` metric source kind of runbook files: `{kind: prometheus, url:
/// http://prometheus:9090, bearer_token_env: PROM_TOKEN, timeout: 30s}`. A token itself is
/// never written in a runbook: give the variable that holds it.
#[cfg(feature = "http")]
pub(crate) fn register_prometheus(registry: &mut crate::Registry) {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        url: String,
        #[serde(default)]
        bearer_token_env: Option<String>,
        #[serde(default)]
        timeout: Option<String>,
    }
    registry.register_metric_source("prometheus", |params| async move {
        let p: Params = serde_json::from_value(params).map_err(|e| {
            Error::invalid(
                "prometheus source",
                format!("{e}; a prometheus source takes url, bearer_token_env and timeout"),
            )
        })?;
        let mut source = PrometheusSource::new(p.url);
        if let Some(var) = p.bearer_token_env {
            source = source.bearer_token_env(var);
        }
        if let Some(t) = p.timeout {
            let t = crate::duration::parse_duration(&t)
                .map_err(|e| Error::invalid("prometheus source", format!("timeout: {e}")))?;
            source = source.timeout(t);
        }
        Ok(Arc::new(source) as Arc<dyn MetricSource>)
    });
}

/// Series held in memory, answered by query string: for tests, demos and replaying a
/// recorded incident (see [`parse_response`] to load recorded Prometheus answers).
///
/// `range` returns each series' samples between `start` and `end` as recorded (the step
/// is not applied) and leaves out series with none; `instant` returns each series' newest
/// sample at or before `at`. An unknown query has no series, as with Prometheus.
#[derive(Debug, Clone, Default)]
pub struct StaticSource {
    name: String,
    series: BTreeMap<String, Vec<Series>>,
}

impl StaticSource {
    /// An empty source named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        StaticSource {
            name: name.into(),
            series: BTreeMap::new(),
        }
    }

    /// Answers `query` with `series` (replacing what it answered before).
    pub fn with(mut self, query: impl Into<String>, series: Vec<Series>) -> Self {
        self.series.insert(query.into(), series);
        self
    }
}

#[async_trait]
impl MetricSource for StaticSource {
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        Some(Vec::new())
    }
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>> {
        check_range(&self.name, start, end, step)?;
        Ok(self
            .series
            .get(query)
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let samples: Vec<Sample> = s
                    .samples
                    .iter()
                    .filter(|p| p.at >= start && p.at <= end)
                    .copied()
                    .collect();
                (!samples.is_empty()).then(|| Series {
                    samples,
                    ..s.clone()
                })
            })
            .collect())
    }

    async fn instant(&self, query: &str, at: Option<DateTime<Utc>>) -> Result<Vec<Series>> {
        Ok(self
            .series
            .get(query)
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let last = s
                    .samples
                    .iter()
                    .filter(|p| at.is_none_or(|at| p.at <= at))
                    .max_by_key(|p| p.at)?;
                Some(Series {
                    samples: vec![*last],
                    ..s.clone()
                })
            })
            .collect())
    }
}

/// Refuses a range a backend could not answer: `start` after `end`, or a zero step.
pub(crate) fn check_range(
    target: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
) -> Result<()> {
    if start > end {
        return Err(Error::invalid(
            target,
            format!(
                "range start {} is after its end {}; swap them",
                fmt_time(start),
                fmt_time(end)
            ),
        ));
    }
    if step.is_zero() {
        return Err(Error::invalid(
            target,
            "a range query needs a step above zero, e.g. 30s",
        ));
    }
    Ok(())
}

/// Which side of a threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Values strictly above the threshold breach it (error rate, latency).
    Above(f64),
    /// Values strictly below the threshold breach it (success rate, throughput).
    Below(f64),
}

impl Comparison {
    /// Whether `value` breaches the threshold. `NaN` never does.
    pub fn breaches(&self, value: f64) -> bool {
        match *self {
            Comparison::Above(t) => value > t,
            Comparison::Below(t) => value < t,
        }
    }

    /// The threshold.
    pub fn threshold(&self) -> f64 {
        match *self {
            Comparison::Above(t) | Comparison::Below(t) => t,
        }
    }

    /// The worst of `min` and `max`: the maximum for [`Comparison::Above`], the minimum
    /// for [`Comparison::Below`].
    pub fn worst(&self, min: Option<f64>, max: Option<f64>) -> Option<f64> {
        match self {
            Comparison::Above(_) => max,
            Comparison::Below(_) => min,
        }
    }
}

impl fmt::Display for Comparison {
    /// `> 0.05` or `< 0.99`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Comparison::Above(t) => write!(f, "> {}", fmt_num(*t)),
            Comparison::Below(t) => write!(f, "< {}", fmt_num(*t)),
        }
    }
}

/// How one series fared against a threshold over a window; see [`breach_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BreachStats {
    /// Samples in the window.
    pub samples: usize,
    /// Of those, how many breached.
    pub breached: usize,
    /// The smallest value in the window (`NaN` ignored).
    #[serde(default, with = "opt_float")]
    pub min: Option<f64>,
    /// The largest value in the window (`NaN` ignored).
    #[serde(default, with = "opt_float")]
    pub max: Option<f64>,
    /// The newest value in the window (may be `NaN`).
    #[serde(default, with = "opt_float")]
    pub last: Option<f64>,
    /// The oldest sample's time in the window.
    pub first_at: Option<DateTime<Utc>>,
    /// The newest sample's time in the window.
    pub last_at: Option<DateTime<Utc>>,
    /// Whether the breach lasted the whole window (see the [module docs](self)).
    pub sustained: bool,
}

/// How `series` fared against `cmp` between `window_start` and `window_end` (both
/// included): counts, extremes, and whether the breach was sustained (see the
/// [module docs](self) for the exact rule).
pub fn breach_stats(
    series: &Series,
    cmp: Comparison,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
) -> BreachStats {
    let mut inside: Vec<&Sample> = series
        .samples
        .iter()
        .filter(|s| s.at >= window_start && s.at <= window_end)
        .collect();
    inside.sort_by_key(|s| s.at);
    let mut stats = BreachStats {
        samples: inside.len(),
        breached: inside.iter().filter(|s| cmp.breaches(s.value)).count(),
        first_at: inside.first().map(|s| s.at),
        last_at: inside.last().map(|s| s.at),
        last: inside.last().map(|s| s.value),
        ..BreachStats::default()
    };
    for s in inside.iter().filter(|s| !s.value.is_nan()) {
        stats.min = Some(stats.min.map_or(s.value, |m| m.min(s.value)));
        stats.max = Some(stats.max.map_or(s.value, |m| m.max(s.value)));
    }
    let Some(first) = inside.first() else {
        return stats;
    };
    if stats.breached < stats.samples {
        return stats;
    }
    let gaps: Vec<TimeDelta> = inside.windows(2).map(|w| w[1].at - w[0].at).collect();
    let interval = gaps
        .iter()
        .copied()
        .filter(|g| *g > TimeDelta::zero())
        .min();
    stats.sustained = match interval {
        None => first.at == window_start,
        Some(interval) => {
            first.at - window_start <= interval && gaps.iter().all(|g| *g <= interval * 2)
        }
    };
    stats
}

/// Whether `series` breached `cmp` for the whole window `[window_start, window_end]`:
/// every sample in it breaches and the samples cover it (see the [module docs](self)).
/// Samples outside the window are ignored; no samples in it is no breach.
pub fn sustained_breach(
    series: &Series,
    cmp: Comparison,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
) -> bool {
    breach_stats(series, cmp, window_start, window_end).sustained
}

/// `end - d`, saturating at the earliest time chrono can hold.
pub(crate) fn minus(end: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| end.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A time as `2025-11-30T14:30:00Z` (with milliseconds only when there are some).
pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_millis() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

/// A duration as `5m`, `30s`, `1h30m`, `1.5s`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{}s", fmt_num(d.as_secs_f64()));
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// A number with at most 4 decimals and no trailing zeros: `0.05`, `2.4`, `7`, `NaN`.
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return float::text(v).to_string();
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// An `f64` in JSON as a number, or as Prometheus' `"NaN"`, `"+Inf"`, `"-Inf"`.
pub(crate) mod float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Prometheus' text for a value that is not finite, or `None`.
    pub(crate) fn text(v: f64) -> &'static str {
        if v.is_nan() {
            "NaN"
        } else if v > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        }
    }

    /// Parses a value as Prometheus writes it (`"0.07"`, `"1e-3"`, `"NaN"`, `"+Inf"`).
    pub(crate) fn parse(s: &str) -> Option<f64> {
        match s {
            "NaN" => Some(f64::NAN),
            "+Inf" | "Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            other => other.trim().parse().ok(),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(crate) enum NumOrText {
        Num(f64),
        Text(String),
    }

    impl NumOrText {
        pub(crate) fn value<E: serde::de::Error>(self) -> Result<f64, E> {
            match self {
                NumOrText::Num(v) => Ok(v),
                NumOrText::Text(s) => {
                    parse(&s).ok_or_else(|| E::custom(format!("{s:?} is not a number")))
                }
            }
        }
    }

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_str(text(*v))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        NumOrText::deserialize(d)?.value()
    }
}

/// `Option<f64>` as [`float`] does it, `null` for `None`.
pub(crate) mod opt_float {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::float::{self, NumOrText};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) if v.is_finite() => s.serialize_some(v),
            Some(v) => s.serialize_some(float::text(*v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<NumOrText>::deserialize(d)?
            .map(NumOrText::value)
            .transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_513_000 + secs, 0).unwrap()
    }

    /// Samples every 30 s from `from` to `to` seconds (relative to 14:30), value by index.
    fn series(from: i64, to: i64, value: impl Fn(i64) -> f64) -> Series {
        Series::new("").label("service", "checkout").points(
            (from..=to)
                .step_by(30)
                .map(|s| (t(s), value((s - from) / 30))),
        )
    }

    const ABOVE: Comparison = Comparison::Above(0.05);

    #[test]
    fn all_samples_breaching_over_the_window_is_sustained() {
        let s = series(-300, 0, |_| 0.07);
        assert!(sustained_breach(&s, ABOVE, t(-300), t(0)));
        let stats = breach_stats(&s, ABOVE, t(-300), t(0));
        assert_eq!((stats.samples, stats.breached), (11, 11));
        assert_eq!(stats.max, Some(0.07));
    }

    #[test]
    fn one_sample_within_the_threshold_breaks_the_breach() {
        let s = series(-300, 0, |i| if i == 6 { 0.05 } else { 0.07 });
        assert!(!sustained_breach(&s, ABOVE, t(-300), t(0)));
        assert_eq!(breach_stats(&s, ABOVE, t(-300), t(0)).breached, 10);
        // The first and last samples count as well.
        let s = series(-300, 0, |i| if i == 0 { 0.01 } else { 0.07 });
        assert!(!sustained_breach(&s, ABOVE, t(-300), t(0)));
        let s = series(-300, 0, |i| if i == 10 { 0.01 } else { 0.07 });
        assert!(!sustained_breach(&s, ABOVE, t(-300), t(0)));
    }

    #[test]
    fn samples_older_than_the_window_are_ignored() {
        let s = series(-600, 0, |i| if i < 10 { 0.01 } else { 0.07 });
        assert!(sustained_breach(&s, ABOVE, t(-300), t(0)));
        let stats = breach_stats(&s, ABOVE, t(-300), t(0));
        assert_eq!((stats.samples, stats.min), (11, Some(0.07)));
        // ... and so are newer ones.
        let s = series(-300, 300, |i| if i <= 10 { 0.07 } else { 0.01 });
        assert!(sustained_breach(&s, ABOVE, t(-300), t(0)));
    }

    #[test]
    fn no_samples_is_no_breach() {
        let empty = Series::new("x");
        assert!(!sustained_breach(&empty, ABOVE, t(-300), t(0)));
        assert_eq!(
            breach_stats(&empty, ABOVE, t(-300), t(0)),
            BreachStats::default()
        );
        let old = series(-900, -330, |_| 0.5);
        assert!(!sustained_breach(&old, ABOVE, t(-300), t(0)));
    }

    #[test]
    fn a_breach_must_cover_the_window() {
        // Only the last minute: not "for 5 minutes".
        let late = series(-60, 0, |_| 0.5);
        assert!(!sustained_breach(&late, ABOVE, t(-300), t(0)));
        // Starting one interval late is tolerated (misaligned step).
        let misaligned = series(-290, 0, |_| 0.5);
        assert!(sustained_breach(&misaligned, ABOVE, t(-300), t(0)));
        // A hole of one missing point is tolerated, a longer one is not.
        let mut one_missing = series(-300, 0, |_| 0.5);
        one_missing.samples.remove(5);
        assert!(sustained_breach(&one_missing, ABOVE, t(-300), t(0)));
        let mut two_missing = series(-300, 0, |_| 0.5);
        two_missing.samples.drain(4..6);
        assert!(!sustained_breach(&two_missing, ABOVE, t(-300), t(0)));
        // The end need not be covered (late data).
        let lagging = series(-300, -120, |_| 0.5);
        assert!(sustained_breach(&lagging, ABOVE, t(-300), t(0)));
        // A single sample only counts at the window start (zero-length window).
        let single = Series::new("x").sample(t(-150), 0.5);
        assert!(!sustained_breach(&single, ABOVE, t(-300), t(0)));
        assert!(sustained_breach(&single, ABOVE, t(-150), t(-150)));
    }

    #[test]
    fn order_of_samples_does_not_matter() {
        let mut s = series(-300, 0, |_| 0.07);
        s.samples.reverse();
        assert!(sustained_breach(&s, ABOVE, t(-300), t(0)));
    }

    #[test]
    fn nan_never_breaches_and_infinity_does() {
        assert!(!ABOVE.breaches(f64::NAN));
        assert!(!Comparison::Below(0.5).breaches(f64::NAN));
        assert!(ABOVE.breaches(f64::INFINITY));
        assert!(Comparison::Below(0.5).breaches(f64::NEG_INFINITY));
        assert!(!ABOVE.breaches(0.05), "the threshold itself is not above");
        let s = series(-300, 0, |i| if i == 3 { f64::NAN } else { 0.07 });
        assert!(!sustained_breach(&s, ABOVE, t(-300), t(0)));
        let stats = breach_stats(&s, ABOVE, t(-300), t(0));
        assert_eq!((stats.min, stats.max), (Some(0.07), Some(0.07)));
        let s = series(-300, 0, |_| f64::INFINITY);
        assert!(sustained_breach(&s, ABOVE, t(-300), t(0)));
    }

    #[test]
    fn below_breaches_low_values() {
        let s = series(-300, 0, |_| 0.93);
        let cmp = Comparison::Below(0.99);
        assert!(sustained_breach(&s, cmp, t(-300), t(0)));
        let stats = breach_stats(&s, cmp, t(-300), t(0));
        assert_eq!(cmp.worst(stats.min, stats.max), Some(0.93));
        assert_eq!(cmp.to_string(), "< 0.99");
    }

    #[test]
    fn series_serde_keeps_nan_and_infinities() {
        let s = Series::new("up")
            .label("job", "api")
            .sample(t(0), f64::NAN)
            .sample(t(30), f64::INFINITY)
            .sample(t(60), f64::NEG_INFINITY)
            .sample(t(90), 0.25);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""value":"NaN""#), "{json}");
        assert!(json.contains(r#""value":"+Inf""#), "{json}");
        assert!(json.contains(r#""value":0.25"#), "{json}");
        let back: Series = serde_json::from_str(&json).unwrap();
        assert!(back.samples[0].value.is_nan());
        assert_eq!(back.samples[1..], s.samples[1..]);
        assert_eq!(back.selector(), r#"up{job="api"}"#);
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_num(0.05), "0.05");
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(0.074_44), "0.0744");
        assert_eq!(fmt_num(f64::NAN), "NaN");
        assert_eq!(fmt_duration(Duration::from_secs(300)), "5m");
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_time(t(0)), "2025-11-30T14:30:00Z");
    }

    #[tokio::test]
    async fn static_source_answers_by_query_and_window() {
        let src = StaticSource::new("recorded").with("err", vec![series(-600, 0, |_| 0.07)]);
        let got = src
            .range("err", t(-300), t(0), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(got[0].samples.len(), 11);
        assert!(src
            .range("other", t(-300), t(0), Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty());
        assert!(src
            .range("err", t(60), t(120), Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty());
        let now = src.instant("err", Some(t(-15))).await.unwrap();
        assert_eq!(now[0].samples, vec![Sample::new(t(-30), 0.07)]);
        let e = src
            .range("err", t(0), t(-300), Duration::from_secs(30))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        let e = src
            .range("err", t(-300), t(0), Duration::ZERO)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("step"), "{e}");
    }
}
