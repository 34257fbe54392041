//! [`ThresholdCheck`]: a verifier that fails while a metric stays beyond a threshold.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    breach_stats, fmt_duration, fmt_num, fmt_time, minus, BreachStats, Comparison, MetricSource,
    MetricSourceSpec, Series,
};
use crate::error::{Error, Result};
use crate::verify::{CheckOutcome, Verifier, VerifierSpec};

fn default_step() -> Duration {
    Duration::from_secs(30)
}

/// "Error rate above 5 % for 5 minutes" as a [`Verifier`]: it **fails** (the system is
/// unhealthy) when some series of `query` breached the threshold for the whole last
/// `for_` window ([`sustained_breach`](super::sustained_breach)), and passes otherwise.
///
/// Each check runs one range query over `[now - for_, now]` every `step` (30 s by
/// default); `now` is the current time truncated to whole seconds, or the time set with
/// [`ThresholdCheck::at`] to judge a past window. No data fails with the evidence
/// `no data for <query> ...`, unless [`ThresholdCheck::pass_on_no_data`]. A source that
/// cannot answer is an `Err` (a [`Policy`](crate::verify::Policy) counts it as a failed
/// attempt).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rollback_core::metrics::{Comparison, StaticSource, ThresholdCheck};
///
/// let source = Arc::new(StaticSource::new("recorded"));
/// let errors = ThresholdCheck::new(
///     source,
///     r#"sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))"#,
///     Comparison::Above(0.05),
///     Duration::from_secs(300),
/// )
/// .step(Duration::from_secs(15));
/// ```
///
/// Note: this passes as soon as one sample of the window is back under the threshold.
/// To require the opposite, "healthy for the whole window", do not wrap it in
/// [`not`](crate::verify::VerifierExt::not) with the reversed comparison: no data would
/// then pass.
#[derive(Debug, Clone)]
pub struct ThresholdCheck {
    source: Arc<dyn MetricSource>,
    query: String,
    comparison: Comparison,
    for_: Duration,
    step: Duration,
    pass_on_no_data: bool,
    at: Option<DateTime<Utc>>,
}

impl ThresholdCheck {
    /// Fails while `query` stays beyond `comparison` for `for_`; 30 s step.
    pub fn new(
        source: Arc<dyn MetricSource>,
        query: impl Into<String>,
        comparison: Comparison,
        for_: Duration,
    ) -> Self {
        ThresholdCheck {
            source,
            query: query.into(),
            comparison,
            for_,
            step: default_step(),
            pass_on_no_data: false,
            at: None,
        }
    }

    /// Sets the step of the range query.
    pub fn step(mut self, step: Duration) -> Self {
        self.step = step;
        self
    }

    /// Passes when the query has no data in the window (instead of failing).
    pub fn pass_on_no_data(mut self) -> Self {
        self.pass_on_no_data = true;
        self
    }

    /// Judges the window ending at `end` instead of now (incident review, replays).
    pub fn at(mut self, end: DateTime<Utc>) -> Self {
        self.at = Some(end);
        self
    }

    /// The query.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The comparison.
    pub fn comparison(&self) -> Comparison {
        self.comparison
    }

    /// How long a breach must last.
    pub fn duration(&self) -> Duration {
        self.for_
    }

    /// The window `[start, end]` a check made now looks at.
    fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = match self.at {
            Some(at) => DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at),
            None => {
                let now = Utc::now();
                DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
            }
        };
        (minus(end, self.for_), end)
    }
}

/// The three numbers people ask for first.
fn values(st: &BreachStats) -> String {
    let f = |v: Option<f64>| v.map_or_else(|| "none".to_string(), fmt_num);
    format!("min {}, max {}, last {}", f(st.min), f(st.max), f(st.last))
}

#[async_trait]
impl Verifier for ThresholdCheck {
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        self.source.permissions()
    }
    /// `<query> > 0.05 for 5m`.
    fn name(&self) -> String {
        format!(
            "{} {} for {}",
            self.query,
            self.comparison,
            fmt_duration(self.for_)
        )
    }

    async fn check(&self) -> Result<CheckOutcome> {
        let (start, end) = self.window();
        let series = self
            .source
            .range(&self.query, start, end, self.step)
            .await?;
        let window = format!(
            "the {} window {} to {}",
            fmt_duration(self.for_),
            fmt_time(start),
            fmt_time(end)
        );
        let judged: Vec<(&Series, BreachStats)> = series
            .iter()
            .map(|s| (s, breach_stats(s, self.comparison, start, end)))
            .filter(|(_, st)| st.samples > 0)
            .collect();
        let cmp = self.comparison;
        let worst = judged.iter().max_by(|(_, a), (_, b)| {
            // Larger is worse; a series of only NaN is the least bad.
            let key = |st: &BreachStats| match (cmp, cmp.worst(st.min, st.max)) {
                (Comparison::Above(_), Some(w)) => w,
                (Comparison::Below(_), Some(w)) => -w,
                (_, None) => f64::NEG_INFINITY,
            };
            a.sustained
                .cmp(&b.sustained)
                .then(a.breached.cmp(&b.breached))
                .then_with(|| key(a).total_cmp(&key(b)))
        });
        let Some((series, st)) = worst else {
            let text = format!(
                "no data for {} in {window} ({})",
                self.query,
                self.source.name()
            );
            return Ok(if self.pass_on_no_data {
                CheckOutcome::pass(format!("{text}; passing as configured"))
            } else {
                CheckOutcome::fail(text)
            });
        };
        let sustained = judged.iter().filter(|(_, st)| st.sustained).count();
        let sel = series.selector();
        Ok(if st.sustained {
            let more = match sustained - 1 {
                0 => String::new(),
                n => format!("; {n} more series breached too"),
            };
            CheckOutcome::fail(format!(
                "{}: {sel} stayed {cmp} for {window}: {}/{} samples breached ({}){more}",
                self.query,
                st.breached,
                st.samples,
                values(st)
            ))
        } else {
            CheckOutcome::pass(format!(
                "{}: no series stayed {cmp} for {window} ({} series); worst {sel}: {}/{} \
                 samples breached ({})",
                self.query,
                judged.len(),
                st.breached,
                st.samples,
                values(st)
            ))
        })
    }

    /// Refuses a check that can never judge: an empty query, a threshold that is not a
    /// finite number, a zero step, or what the source refuses for the query
    /// ([`MetricSource::validate_query`]: a CloudWatch query that is not
    /// `Namespace Metric Stat`, a Prometheus URL or token that cannot be used). Asks the
    /// source nothing.
    fn validate(&self) -> Result<()> {
        let name = self.name();
        let why = if self.query.trim().is_empty() {
            "the query is empty; give the metric to watch"
        } else if !self.comparison.threshold().is_finite() {
            "the threshold is not a finite number, so nothing can be compared with it; \
             give one such as Comparison::Above(0.05)"
        } else if self.step.is_zero() {
            "the step is 0; give the interval between samples, e.g. 30 s"
        } else {
            return self.source.validate_query(&self.query);
        };
        Err(Error::invalid(
            self.source.name(),
            format!("{name:?}: {why}"),
        ))
    }

    /// [`VerifierSpec::Threshold`] when the source can be described as data, else
    /// [`VerifierSpec::Opaque`].
    fn spec(&self) -> VerifierSpec {
        let source = self.source.spec();
        if matches!(source, MetricSourceSpec::Opaque { .. }) {
            return VerifierSpec::Opaque { name: self.name() };
        }
        VerifierSpec::Threshold(ThresholdSpec {
            source,
            query: self.query.clone(),
            comparison: self.comparison,
            for_: self.for_,
            step: self.step,
            pass_on_no_data: self.pass_on_no_data,
            at: self.at,
        })
    }
}

/// A [`ThresholdCheck`] as data (inside [`VerifierSpec::Threshold`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdSpec {
    /// Where the series come from.
    pub source: MetricSourceSpec,
    /// The query.
    pub query: String,
    /// The comparison.
    pub comparison: Comparison,
    /// How long a breach must last, in milliseconds in JSON.
    #[serde(rename = "for", with = "crate::serde_duration")]
    pub for_: Duration,
    /// The step of the range query, in milliseconds in JSON.
    #[serde(default = "default_step", with = "crate::serde_duration")]
    pub step: Duration,
    /// Whether no data passes.
    #[serde(default)]
    pub pass_on_no_data: bool,
    /// The fixed end of the window, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

impl ThresholdSpec {
    /// Rebuilds the check, or `None` when the source is opaque.
    pub fn build(&self) -> Option<Arc<dyn Verifier>> {
        Some(Arc::new(ThresholdCheck {
            source: self.source.build()?,
            query: self.query.clone(),
            comparison: self.comparison,
            for_: self.for_,
            step: self.step,
            pass_on_no_data: self.pass_on_no_data,
            at: self.at,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::metrics::StaticSource;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_513_000 + secs, 0).unwrap()
    }

    fn flat(service: &str, from: i64, value: f64) -> Series {
        Series::new("")
            .label("service", service)
            .points((from..=0).step_by(30).map(|s| (t(s), value)))
    }

    fn check(series: Vec<Series>) -> ThresholdCheck {
        let src = StaticSource::new("recorded").with("err", series);
        ThresholdCheck::new(
            Arc::new(src),
            "err",
            Comparison::Above(0.05),
            Duration::from_secs(300),
        )
        .at(t(0))
    }

    #[test]
    fn validate_refuses_what_can_never_judge() {
        assert!(check(vec![]).validate().is_ok());
        let src = || Arc::new(StaticSource::new("recorded"));
        let five = Duration::from_secs(300);
        let cases = [
            (
                ThresholdCheck::new(src(), " ", Comparison::Above(0.05), five),
                "query is empty",
            ),
            (
                ThresholdCheck::new(src(), "err", Comparison::Above(f64::NAN), five),
                "not a finite number",
            ),
            (
                ThresholdCheck::new(src(), "err", Comparison::Below(f64::INFINITY), five),
                "not a finite number",
            ),
            (check(vec![]).step(Duration::ZERO), "step is 0"),
        ];
        for (c, want) in cases {
            let err = c.validate().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{c:?}");
            assert!(err.to_string().contains(want), "{want}: {err}");
            assert!(err.to_string().contains("recorded"), "{err}");
        }
    }

    #[tokio::test]
    async fn sustained_breach_fails_with_the_worst_series() {
        let c = check(vec![
            flat("search", -600, 0.06),
            flat("checkout", -600, 0.09),
            flat("admin", -60, 0.5),
        ]);
        assert_eq!(c.name(), "err > 0.05 for 5m");
        let out = c.check().await.unwrap();
        assert!(!out.passed);
        assert_eq!(
            out.evidence,
            "err: {service=\"checkout\"} stayed > 0.05 for the 5m window 2025-11-30T14:25:00Z \
             to 2025-11-30T14:30:00Z: 11/11 samples breached (min 0.09, max 0.09, last 0.09); \
             1 more series breached too"
        );
    }

    #[tokio::test]
    async fn no_sustained_breach_passes() {
        let out = check(vec![flat("admin", -60, 0.5), flat("search", -600, 0.01)])
            .check()
            .await
            .unwrap();
        assert!(out.passed, "{out:?}");
        assert!(
            out.evidence
                .contains("worst {service=\"admin\"}: 3/3 samples breached"),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn no_data_fails_unless_asked() {
        let out = check(vec![]).check().await.unwrap();
        assert!(!out.passed);
        assert!(out.evidence.starts_with("no data for err in "), "{out:?}");
        let out = check(vec![]).pass_on_no_data().check().await.unwrap();
        assert!(out.passed);
    }

    #[test]
    fn opaque_source_gives_an_opaque_spec() {
        assert_eq!(
            check(vec![]).spec(),
            VerifierSpec::Opaque {
                name: "err > 0.05 for 5m".into()
            }
        );
    }
}
