//! Runbook 004's "Rollback Decision Tree" over metric series: [`decide`], [`decide_from`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    breach_stats, fmt_duration, fmt_num, fmt_time, minus, opt_float, BreachStats, Comparison,
    MetricSource, Series,
};
use crate::error::Result;

/// A metric the decision looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The fraction of requests that failed (0..1).
    ErrorRate,
    /// The 95th percentile latency, in seconds.
    P95Latency,
    /// How fast the SLO's error budget burns (1 = exactly used up by the end of the SLO
    /// period).
    SloBurnRate,
}

impl Signal {
    /// A value of this signal for people: `7.4%`, `2.4s`, `2.5`.
    fn value(self, v: f64) -> String {
        match self {
            Signal::ErrorRate if v.is_finite() => format!("{}%", fmt_num(v * 100.0)),
            Signal::P95Latency if v.is_finite() => format!("{}s", fmt_num(v)),
            _ => fmt_num(v),
        }
    }

    fn opt_value(self, v: Option<f64>) -> String {
        v.map_or_else(|| "none".to_string(), |v| self.value(v))
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::ErrorRate => "error rate",
            Signal::P95Latency => "p95 latency",
            Signal::SloBurnRate => "SLO burn rate",
        })
    }
}

/// What to do, per the runbook: the recommendation of a [`Decision`]. (Called `Action`
/// before; renamed so that `Action` no longer names two things: this and a transaction's
/// on-failure action, now [`FailureAction`](crate::FailureAction).)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    /// "Rollback immediately".
    RollbackNow,
    /// "Rollback within 10 min" (the SLO is at risk); the duration is
    /// [`DecisionPolicy::rollback_within`].
    RollbackWithin(#[serde(with = "crate::serde_duration")] Duration),
    /// "Monitor closely, prepare rollback".
    Monitor,
}

/// The former name of [`Recommendation`].
#[deprecated(note = "renamed to Recommendation")]
pub type Action = Recommendation;

impl Recommendation {
    /// Whether the action is a rollback, now or soon.
    pub fn is_rollback(&self) -> bool {
        !matches!(self, Recommendation::Monitor)
    }
}

impl fmt::Display for Recommendation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recommendation::RollbackNow => f.write_str("roll back immediately"),
            Recommendation::RollbackWithin(d) => write!(f, "roll back within {}", fmt_duration(*d)),
            Recommendation::Monitor => f.write_str("monitor closely, prepare rollback"),
        }
    }
}

/// The thresholds of the decision; [`Default`] is runbook 004's "When to Rollback".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecisionPolicy {
    /// Roll back now when the error rate (a fraction) stays above this: 0.05 ("Error rate
    /// > 5%").
    pub error_rate_above: f64,
    /// Roll back now when p95 latency stays above this many seconds: 2 ("P95 latency > 2
    /// seconds").
    pub latency_p95_above_secs: f64,
    /// How long a breach must last: 5 minutes ("for 5+ minutes").
    #[serde(with = "crate::serde_duration")]
    pub sustained_for: Duration,
    /// The SLO is at risk when the burn rate stays above this: 1 (the budget will be
    /// exhausted before the SLO period ends).
    pub slo_burn_rate_above: f64,
    /// How soon to roll back when the SLO is at risk: 10 minutes.
    #[serde(with = "crate::serde_duration")]
    pub rollback_within: Duration,
}

impl Default for DecisionPolicy {
    fn default() -> Self {
        DecisionPolicy {
            error_rate_above: 0.05,
            latency_p95_above_secs: 2.0,
            sustained_for: Duration::from_secs(5 * 60),
            slo_burn_rate_above: 1.0,
            rollback_within: Duration::from_secs(10 * 60),
        }
    }
}

/// What the decision looks at: series ending at `now`, and what a person (or another
/// check) reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionInputs {
    /// Error rate series, as fractions (0.07 is 7 %).
    #[serde(default)]
    pub error_rate: Vec<Series>,
    /// p95 latency series, in seconds.
    #[serde(default)]
    pub p95_latency_seconds: Vec<Series>,
    /// Whether critical functionality is broken (a failed smoke test, a person's report).
    #[serde(default)]
    pub critical_feature_broken: bool,
    /// SLO burn-rate series; `None` when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_burn_rate: Option<Vec<Series>>,
    /// Whether the SLO is reported at risk by other means (an error-budget tool, a
    /// person); counts as well as a sustained burn rate.
    #[serde(default)]
    pub slo_at_risk: bool,
    /// The end of the window looked at.
    pub now: DateTime<Utc>,
}

impl DecisionInputs {
    /// No series, nothing reported, window ending at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        DecisionInputs {
            error_rate: Vec::new(),
            p95_latency_seconds: Vec::new(),
            critical_feature_broken: false,
            slo_burn_rate: None,
            slo_at_risk: false,
            now,
        }
    }

    /// Sets the error rate series.
    pub fn error_rate(mut self, series: Vec<Series>) -> Self {
        self.error_rate = series;
        self
    }

    /// Sets the p95 latency series.
    pub fn p95_latency_seconds(mut self, series: Vec<Series>) -> Self {
        self.p95_latency_seconds = series;
        self
    }

    /// Sets whether critical functionality is broken.
    pub fn critical_feature_broken(mut self, broken: bool) -> Self {
        self.critical_feature_broken = broken;
        self
    }

    /// Sets the SLO burn-rate series.
    pub fn slo_burn_rate(mut self, series: Vec<Series>) -> Self {
        self.slo_burn_rate = Some(series);
        self
    }

    /// Sets whether the SLO is reported at risk.
    pub fn slo_at_risk(mut self, at_risk: bool) -> Self {
        self.slo_at_risk = at_risk;
        self
    }
}

/// How one signal fared: the worst of its series over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The signal.
    pub signal: Signal,
    /// The labels of the worst series (empty when there was no data).
    pub labels: BTreeMap<String, String>,
    /// The window's start.
    pub window_start: DateTime<Utc>,
    /// The window's end.
    pub window_end: DateTime<Utc>,
    /// The threshold (values above it breach).
    pub threshold: f64,
    /// The worst series' highest value in the window.
    #[serde(with = "opt_float")]
    pub worst: Option<f64>,
    /// The worst series' newest value in the window.
    #[serde(with = "opt_float")]
    pub last: Option<f64>,
    /// The worst series' samples in the window.
    pub samples: usize,
    /// Of those, how many breached.
    pub breaching_samples: usize,
    /// How many series had samples in the window.
    pub series: usize,
    /// Whether some series breached for the whole window.
    pub breached: bool,
}

/// What [`decide`] concluded, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub action: Recommendation,
    /// Why, with numbers. The first reason is the branch of the tree that decided; for a
    /// rollback, later reasons (`also: ...`) are further branches that would have fired;
    /// for [`Recommendation::Monitor`], one line per signal.
    pub reasons: Vec<String>,
    /// One entry per metric signal looked at, in the tree's order.
    pub evidence: Vec<Evidence>,
    /// The end of the window looked at.
    pub at: DateTime<Utc>,
}

impl fmt::Display for Decision {
    /// `roll back immediately: error rate above 5% for 5m ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.action)?;
        if let Some(first) = self.reasons.first() {
            write!(f, ": {first}")?;
        }
        Ok(())
    }
}

/// A signal's evidence and the sentence about it.
struct Assessment {
    evidence: Evidence,
    text: String,
}

/// The worst series of `series` against `threshold` over `[start, end]`.
fn assess(
    signal: Signal,
    series: &[Series],
    threshold: f64,
    window: &Window,
    sustained_for: Duration,
) -> Assessment {
    let cmp = Comparison::Above(threshold);
    let with_data: Vec<(&Series, BreachStats)> = series
        .iter()
        .map(|s| (s, breach_stats(s, cmp, window.start, window.end)))
        .filter(|(_, st)| st.samples > 0)
        .collect();
    let sustained = with_data.iter().filter(|(_, st)| st.sustained).count();
    let worst = with_data.iter().max_by(|(_, a), (_, b)| {
        a.sustained.cmp(&b.sustained).then_with(|| {
            let key = |st: &BreachStats| st.max.unwrap_or(f64::NEG_INFINITY);
            key(a).total_cmp(&key(b))
        })
    });
    let thr = signal.value(threshold);
    let Some((series, st)) = worst else {
        return Assessment {
            evidence: Evidence {
                signal,
                labels: BTreeMap::new(),
                window_start: window.start,
                window_end: window.end,
                threshold,
                worst: None,
                last: None,
                samples: 0,
                breaching_samples: 0,
                series: 0,
                breached: false,
            },
            text: format!(
                "{signal}: no data from {} to {}; check the query, or whether the service \
                 has traffic",
                fmt_time(window.start),
                fmt_time(window.end)
            ),
        };
    };
    let sel = series.selector();
    let (max, last) = (signal.opt_value(st.max), signal.opt_value(st.last));
    let text = if st.sustained {
        let more = match sustained - 1 {
            0 => String::new(),
            1 => "; 1 more series breached too".to_string(),
            n => format!("; {n} more series breached too"),
        };
        format!(
            "{signal} above {thr} for {} ({} to {}): {sel} breached in all {} samples \
             (min {}, max {max}, last {last}){more}",
            fmt_duration(sustained_for),
            fmt_time(window.start),
            fmt_time(window.end),
            st.samples,
            signal.opt_value(st.min),
        )
    } else if st.breached > 0 {
        format!(
            "{signal}: not above {thr} for the whole {}: worst {sel} breached in {} of {} \
             samples (max {max}, last {last})",
            fmt_duration(sustained_for),
            st.breached,
            st.samples,
        )
    } else {
        format!(
            "{signal}: within {thr} (worst {sel}: max {max}, last {last}; {} series)",
            with_data.len()
        )
    };
    Assessment {
        evidence: Evidence {
            signal,
            labels: series.labels.clone(),
            window_start: window.start,
            window_end: window.end,
            threshold,
            worst: st.max,
            last: st.last,
            samples: st.samples,
            breaching_samples: st.breached,
            series: with_data.len(),
            breached: st.sustained,
        },
        text,
    }
}

struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// Runbook 004's decision tree over `inputs`, branch by branch in the runbook's order:
///
/// 1. error rate above [`DecisionPolicy::error_rate_above`] for
///    [`DecisionPolicy::sustained_for`] → [`Recommendation::RollbackNow`];
/// 2. else p95 latency above [`DecisionPolicy::latency_p95_above_secs`] for as long →
///    [`Recommendation::RollbackNow`];
/// 3. else critical feature broken → [`Recommendation::RollbackNow`];
/// 4. else SLO at risk (burn rate above [`DecisionPolicy::slo_burn_rate_above`] for as
///    long, or [`DecisionInputs::slo_at_risk`]) →
///    [`Recommendation::RollbackWithin`]`(`[`DecisionPolicy::rollback_within`]`)`;
/// 5. else [`Recommendation::Monitor`] ("monitor closely, prepare rollback").
///
/// The window is `[now - sustained_for, now]`; "for 5 minutes" is [`sustained_breach`]
/// of some series. A signal with no data does not fire (the reasons say so).
///
/// [`sustained_breach`]: super::sustained_breach
pub fn decide(inputs: &DecisionInputs, policy: &DecisionPolicy) -> Decision {
    let window = Window {
        start: minus(inputs.now, policy.sustained_for),
        end: inputs.now,
    };
    let within = policy.rollback_within;
    let error = assess(
        Signal::ErrorRate,
        &inputs.error_rate,
        policy.error_rate_above,
        &window,
        policy.sustained_for,
    );
    let latency = assess(
        Signal::P95Latency,
        &inputs.p95_latency_seconds,
        policy.latency_p95_above_secs,
        &window,
        policy.sustained_for,
    );
    let slo = inputs.slo_burn_rate.as_ref().map(|s| {
        assess(
            Signal::SloBurnRate,
            s,
            policy.slo_burn_rate_above,
            &window,
            policy.sustained_for,
        )
    });

    let mut fired: Vec<(Recommendation, String)> = Vec::new();
    let mut quiet: Vec<String> = Vec::new();
    let mut branch = |hit: bool, action: Recommendation, text: String| {
        if hit {
            fired.push((action, format!("{text} -> {action}")));
        } else {
            quiet.push(text);
        }
    };
    branch(
        error.evidence.breached,
        Recommendation::RollbackNow,
        error.text.clone(),
    );
    branch(
        latency.evidence.breached,
        Recommendation::RollbackNow,
        latency.text.clone(),
    );
    branch(
        inputs.critical_feature_broken,
        Recommendation::RollbackNow,
        if inputs.critical_feature_broken {
            "critical feature broken (reported)".to_string()
        } else {
            "critical feature: not reported broken".to_string()
        },
    );
    match &slo {
        Some(a) => branch(
            a.evidence.breached,
            Recommendation::RollbackWithin(within),
            format!("SLO at risk: {}", a.text),
        ),
        None if !inputs.slo_at_risk => {
            branch(
                false,
                Recommendation::Monitor,
                "SLO: no burn-rate series given".into(),
            );
        }
        None => {}
    }
    if inputs.slo_at_risk {
        branch(
            true,
            Recommendation::RollbackWithin(within),
            "SLO at risk (reported)".to_string(),
        );
    }

    let evidence: Vec<Evidence> = [Some(error), Some(latency), slo]
        .into_iter()
        .flatten()
        .map(|a| a.evidence)
        .collect();
    let (action, reasons) = match fired.split_first() {
        Some(((action, first), rest)) => (
            *action,
            std::iter::once(first.clone())
                .chain(rest.iter().map(|(_, r)| format!("also: {r}")))
                .collect(),
        ),
        None => (
            Recommendation::Monitor,
            std::iter::once(format!(
                "no rollback condition held -> {}",
                Recommendation::Monitor
            ))
            .chain(quiet)
            .collect(),
        ),
    };
    Decision {
        action,
        reasons,
        evidence,
        at: inputs.now,
    }
}

fn default_step() -> Duration {
    Duration::from_secs(30)
}

/// The queries [`decide_from`] runs, in the source's language (PromQL for Prometheus).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionQueries {
    /// The error rate as a fraction, e.g.
    /// `sum by (service) (rate(http_requests_total{code=~"5.."}[1m])) / sum by (service) (rate(http_requests_total[1m]))`.
    pub error_rate: String,
    /// p95 latency in seconds, e.g.
    /// `histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket[1m])))`.
    pub p95_latency_seconds: String,
    /// The SLO burn rate, if measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_burn_rate: Option<String>,
    /// The range queries' step (30 s by default).
    #[serde(default = "default_step", with = "crate::serde_duration")]
    pub step: Duration,
}

impl DecisionQueries {
    /// Error rate and p95 latency queries, no SLO query, a 30 s step.
    pub fn new(error_rate: impl Into<String>, p95_latency_seconds: impl Into<String>) -> Self {
        DecisionQueries {
            error_rate: error_rate.into(),
            p95_latency_seconds: p95_latency_seconds.into(),
            slo_burn_rate: None,
            step: default_step(),
        }
    }

    /// Sets the SLO burn-rate query.
    pub fn slo_burn_rate(mut self, query: impl Into<String>) -> Self {
        self.slo_burn_rate = Some(query.into());
        self
    }

    /// Sets the step of the range queries.
    pub fn step(mut self, step: Duration) -> Self {
        self.step = step;
        self
    }
}

/// Fetches the series of `queries` from `source` over `[now - policy.sustained_for, now]`
/// (concurrently, with [`MetricSource::range`]) and [`decide`]s. `now` is truncated to
/// whole milliseconds, the precision of Prometheus timestamps.
///
/// Any query that fails fails the decision: a decision made on partial data would look
/// more certain than it is.
pub async fn decide_from(
    source: &dyn MetricSource,
    queries: &DecisionQueries,
    critical_feature_broken: bool,
    policy: &DecisionPolicy,
    now: DateTime<Utc>,
) -> Result<Decision> {
    let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
    let start = minus(now, policy.sustained_for);
    let step = queries.step;
    let (error_rate, p95_latency_seconds, slo_burn_rate) = futures::try_join!(
        source.range(&queries.error_rate, start, now, step),
        source.range(&queries.p95_latency_seconds, start, now, step),
        async {
            match &queries.slo_burn_rate {
                Some(q) => source.range(q, start, now, step).await.map(Some),
                None => Ok(None),
            }
        },
    )?;
    let inputs = DecisionInputs {
        error_rate,
        p95_latency_seconds,
        critical_feature_broken,
        slo_burn_rate,
        slo_at_risk: false,
        now,
    };
    Ok(decide(&inputs, policy))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::metrics::StaticSource;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_513_000 + secs, 0).unwrap()
    }

    fn flat(service: &str, value: f64) -> Series {
        Series::new("")
            .label("service", service)
            .points((-600..=0).step_by(30).map(|s| (t(s), value)))
    }

    #[test]
    fn thresholds_are_strict_and_configurable() {
        let at_threshold = DecisionInputs::new(t(0)).error_rate(vec![flat("api", 0.05)]);
        assert_eq!(
            decide(&at_threshold, &DecisionPolicy::default()).action,
            Recommendation::Monitor
        );
        let strict = DecisionPolicy {
            error_rate_above: 0.01,
            ..DecisionPolicy::default()
        };
        assert_eq!(
            decide(&at_threshold, &strict).action,
            Recommendation::RollbackNow
        );
    }

    #[test]
    fn slo_at_risk_flag_counts_without_series() {
        let d = decide(
            &DecisionInputs::new(t(0)).slo_at_risk(true),
            &DecisionPolicy::default(),
        );
        assert_eq!(
            d.action,
            Recommendation::RollbackWithin(Duration::from_secs(600))
        );
        assert_eq!(
            d.reasons[0],
            "SLO at risk (reported) -> roll back within 10m"
        );
    }

    #[test]
    fn no_data_monitors_and_says_so() {
        let d = decide(&DecisionInputs::new(t(0)), &DecisionPolicy::default());
        assert_eq!(d.action, Recommendation::Monitor);
        assert!(
            d.reasons[1].starts_with("error rate: no data from 2025-11-30T14:25:00Z"),
            "{d:#?}"
        );
        assert_eq!(d.evidence.len(), 2);
        assert!(d.evidence.iter().all(|e| e.series == 0 && !e.breached));
    }

    #[test]
    fn action_serde_and_display() {
        let json = serde_json::to_string(&Recommendation::RollbackWithin(Duration::from_secs(600)));
        assert_eq!(json.unwrap(), r#"{"rollback_within":600000}"#);
        assert_eq!(
            serde_json::to_string(&Recommendation::RollbackNow).unwrap(),
            r#""rollback_now""#
        );
        assert_eq!(
            Recommendation::Monitor.to_string(),
            "monitor closely, prepare rollback"
        );
        let p: DecisionPolicy = serde_json::from_str(r#"{"error_rate_above":0.02}"#).unwrap();
        assert_eq!(p.error_rate_above, 0.02);
        assert_eq!(p.sustained_for, Duration::from_secs(300));
    }

    #[tokio::test]
    async fn decide_from_queries_the_window() {
        let src = StaticSource::new("recorded")
            .with("err", vec![flat("api", 0.07)])
            .with("p95", vec![flat("api", 0.3)]);
        let d = decide_from(
            &src,
            &DecisionQueries::new("err", "p95"),
            false,
            &DecisionPolicy::default(),
            t(0),
        )
        .await
        .unwrap();
        assert_eq!(d.action, Recommendation::RollbackNow);
        assert_eq!(d.evidence[0].samples, 11);
        assert_eq!(d.evidence[0].window_start, t(-300));
    }
}
