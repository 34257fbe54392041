//! CloudWatch: alarms as a verifier (runbook 001's "Check CloudWatch alarm status") and
//! GetMetricData as a [`MetricSource`] for threshold checks and runbook 004's decision.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StateValue,
};
use aws_sdk_cloudwatch::Client;
use chrono::{DateTime, Utc};
use rollback_core::metrics::{MetricSource, Sample, Series};
use rollback_core::verify::{CheckOutcome, Verifier};
use rollback_core::{Error, Result, TargetId};

use crate::config::{Aws, AwsConfig};
use crate::sdk::{all_pages, chrono_time, smithy_time};

/// Which alarms an [`AlarmCheck`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Alarms {
    Prefix(String),
    Names(Vec<String>),
}

/// Passes when no alarm matching a name prefix (or in a list) is in ALARM: runbook 001's
/// `aws cloudwatch describe-alarms --alarm-name-prefix agentauri --state-value ALARM`.
/// Evidence names every alarm in ALARM with its reason.
#[derive(Clone)]
pub struct AlarmCheck {
    alarms: Alarms,
    aws: AwsConfig,
    client: crate::config::LazyClient<Client>,
    id: TargetId,
}

impl fmt::Debug for AlarmCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlarmCheck")
            .field("alarms", &self.alarms)
            .field("region", &self.aws.region)
            .finish()
    }
}

impl AlarmCheck {
    /// Alarms whose names start with `prefix` (an empty prefix means every alarm).
    pub fn prefix(aws: &Aws, prefix: impl Into<String>) -> Self {
        Self::make(aws, Alarms::Prefix(prefix.into()))
    }

    /// Registers check kind `cloudwatch-alarms` (as a runbook file names it: `prefix: api-`
    /// or `names: [a, b]`, with optional `aws` settings), built with `cache`'s AWS settings.
    pub fn register(registry: &mut rollback_core::Registry, cache: &crate::AwsCache) {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Params {
            #[serde(default)]
            prefix: Option<String>,
            #[serde(default)]
            names: Option<Vec<String>>,
            #[serde(default)]
            aws: crate::AwsConfig,
        }
        let cache = cache.clone();
        registry.register_check("cloudwatch-alarms", move |params| {
            let cache = cache.clone();
            async move {
                let p: Params = serde_json::from_value(params).map_err(|e| {
                    Error::invalid("cloudwatch-alarms", format!("{e}; give prefix: ... or names: [...]"))
                })?;
                let aws = cache.get(&p.aws).await;
                let check = match (p.prefix, p.names) {
                    (Some(prefix), None) => Self::prefix(&aws, prefix),
                    (None, Some(names)) => Self::names(&aws, names)?,
                    _ => {
                        return Err(Error::invalid(
                            "cloudwatch-alarms",
                            "give prefix: ... (alarms whose names start with it) or names: [...], not both",
                        ))
                    }
                };
                Ok(std::sync::Arc::new(check) as std::sync::Arc<dyn rollback_core::verify::Verifier>)
            }
        });
    }

    /// The alarms with these names.
    pub fn names(aws: &Aws, names: impl IntoIterator<Item = impl Into<String>>) -> Result<Self> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
            return Err(Error::invalid(
                "cloudwatch-alarms",
                "give at least one alarm name, and no empty ones (or use AlarmCheck::prefix)",
            ));
        }
        Ok(Self::make(aws, Alarms::Names(names)))
    }

    fn make(aws: &Aws, alarms: Alarms) -> Self {
        let name = match &alarms {
            Alarms::Prefix(p) => format!("{p}*"),
            Alarms::Names(n) => n.join(","),
        };
        AlarmCheck {
            alarms,
            aws: aws.config().clone(),
            client: aws.lazy_client(Client::new),
            id: TargetId::new("cloudwatch-alarms", name),
        }
    }

    /// The alarms in ALARM now: (name, reason).
    pub async fn in_alarm(&self) -> Result<Vec<(String, String)>> {
        let req = self
            .client
            .get()
            .await?
            .describe_alarms()
            .state_value(StateValue::Alarm);
        let req = match &self.alarms {
            Alarms::Prefix(p) if !p.is_empty() => req.alarm_name_prefix(p),
            Alarms::Prefix(_) => req,
            Alarms::Names(n) => req.set_alarm_names(Some(n.clone())),
        };
        let mut out = Vec::new();
        for page in all_pages(&self.id, "DescribeAlarms", req.into_paginator().send()).await? {
            out.extend(page.metric_alarms().iter().filter_map(|a| {
                Some((
                    a.alarm_name()?.to_string(),
                    a.state_reason().unwrap_or_default().to_string(),
                ))
            }));
            out.extend(page.composite_alarms().iter().filter_map(|a| {
                Some((
                    a.alarm_name()?.to_string(),
                    a.state_reason().unwrap_or_default().to_string(),
                ))
            }));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// DescribeAlarms takes at most this many alarm names, each of at most
/// [`MAX_NAME`] characters (and a prefix of at most as many).
const MAX_ALARM_NAMES: usize = 100;
/// CloudWatch's limit for alarm names, namespaces, metric and dimension names.
const MAX_NAME: usize = 255;
/// CloudWatch's limit for a dimension value.
const MAX_DIMENSION_VALUE: usize = 1024;
/// GetMetricData's limit of dimensions per metric.
const MAX_DIMENSIONS: usize = 30;

#[async_trait]
impl Verifier for AlarmCheck {
    fn name(&self) -> String {
        format!("no CloudWatch alarm {} in ALARM", self.id.name)
    }

    /// DescribeAlarms, which IAM grants on no particular alarm.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        Some(vec![rollback_core::Permission::aws(
            "cloudwatch:DescribeAlarms",
            "*",
        )])
    }

    /// DescribeAlarms' own limits (at most 100 names, names and prefix of at most 255
    /// characters), which it would refuse only when the check first runs, after the
    /// rollback. Calls nothing.
    fn validate(&self) -> Result<()> {
        let too_long = |n: &String| n.chars().count() > MAX_NAME;
        let why = match &self.alarms {
            Alarms::Prefix(p) if too_long(p) => format!(
                "the alarm name prefix is longer than {MAX_NAME} characters, which CloudWatch \
                 refuses; shorten it"
            ),
            Alarms::Names(n) if n.len() > MAX_ALARM_NAMES => format!(
                "{} alarm names given, CloudWatch takes at most {MAX_ALARM_NAMES} at once; \
                 split them into several checks or use AlarmCheck::prefix",
                n.len()
            ),
            Alarms::Names(n) if n.iter().any(too_long) => format!(
                "an alarm name is longer than {MAX_NAME} characters, which CloudWatch refuses; \
                 check the names"
            ),
            _ => return Ok(()),
        };
        Err(Error::invalid(self.id.to_string(), why))
    }

    async fn check(&self) -> Result<CheckOutcome> {
        let firing = self.in_alarm().await?;
        Ok(if firing.is_empty() {
            CheckOutcome::pass(format!("no alarm matching {} is in ALARM", self.id.name))
        } else {
            let list: Vec<String> = firing
                .iter()
                .map(|(n, r)| {
                    if r.is_empty() {
                        n.clone()
                    } else {
                        format!("{n} ({r})")
                    }
                })
                .collect();
            CheckOutcome::fail(format!("in ALARM: {}", list.join("; ")))
        })
    }
}

/// A metric named by a query string `Namespace MetricName Stat [Dim=Value ...]`, e.g.
/// `AWS/ApplicationELB HTTPCode_Target_5XX_Count Sum LoadBalancer=app/api/50dc6c495c0c9188`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    /// The namespace.
    pub namespace: String,
    /// The metric name.
    pub metric: String,
    /// The statistic (`Average`, `Sum`, `p95`...).
    pub stat: String,
    /// The dimensions.
    pub dimensions: BTreeMap<String, String>,
}

/// Whether GetMetricData knows `stat`: a standard statistic, or an extended one such as
/// `p95`, `p99.9`, `tm90`, `TM(10%:90%)`, `IQM`.
fn is_statistic(stat: &str) -> bool {
    const STANDARD: [&str; 6] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum", "IQM"];
    if STANDARD.contains(&stat) {
        return true;
    }
    let lower = stat.to_ascii_lowercase();
    ["p", "tm", "wm", "tc", "ts", "pr"].iter().any(|prefix| {
        lower.strip_prefix(prefix).is_some_and(|rest| {
            rest.starts_with('(') && rest.ends_with(')')
                || rest
                    .parse::<f64>()
                    .is_ok_and(|v| (0.0..=100.0).contains(&v))
        })
    })
}

impl MetricQuery {
    /// Parses `Namespace MetricName Stat [Dim=Value ...]`, within CloudWatch's limits
    /// (names of at most 255 characters, values of at most 1024, at most 30 dimensions,
    /// a statistic GetMetricData knows).
    pub fn parse(query: &str) -> std::result::Result<Self, String> {
        let mut parts = query.split_whitespace();
        let (Some(namespace), Some(metric), Some(stat)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "{query:?} is not `Namespace MetricName Stat [Dim=Value ...]`, e.g. `AgentAuri ErrorRate Average Service=api`"
            ));
        };
        let mut dimensions = BTreeMap::new();
        for d in parts {
            let (k, v) = d
                .split_once('=')
                .ok_or_else(|| format!("dimension {d:?} in {query:?} is not Name=Value"))?;
            if k.is_empty() || v.is_empty() {
                return Err(format!(
                    "dimension {d:?} in {query:?} needs both a name and a value"
                ));
            }
            if k.chars().count() > MAX_NAME || v.chars().count() > MAX_DIMENSION_VALUE {
                return Err(format!(
                    "dimension {k:?} in {query:?} is longer than CloudWatch allows \
                     ({MAX_NAME} characters for a name, {MAX_DIMENSION_VALUE} for a value)"
                ));
            }
            dimensions.insert(k.to_string(), v.to_string());
        }
        if dimensions.len() > MAX_DIMENSIONS {
            return Err(format!(
                "{query:?} has {} dimensions, CloudWatch takes at most {MAX_DIMENSIONS}",
                dimensions.len()
            ));
        }
        if [namespace, metric]
            .iter()
            .any(|n| n.chars().count() > MAX_NAME)
        {
            return Err(format!(
                "the namespace or metric name in {query:?} is longer than {MAX_NAME} characters"
            ));
        }
        if !is_statistic(stat) {
            return Err(format!(
                "{stat:?} in {query:?} is not a CloudWatch statistic; use Average, Sum, \
                 Minimum, Maximum, SampleCount or a percentile such as p95"
            ));
        }
        Ok(MetricQuery {
            namespace: namespace.to_string(),
            metric: metric.to_string(),
            stat: stat.to_string(),
            dimensions,
        })
    }
}

/// CloudWatch GetMetricData as a [`MetricSource`]; queries are [`MetricQuery`] strings.
#[derive(Clone)]
pub struct CloudWatchSource {
    aws: AwsConfig,
    client: crate::config::LazyClient<Client>,
}

impl fmt::Debug for CloudWatchSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudWatchSource")
            .field("region", &self.aws.region)
            .finish()
    }
}

impl CloudWatchSource {
    /// Registers the `cloudwatch` metric source kind of runbook files' `watch:`
    /// (`{kind: cloudwatch}`, with optional `aws` settings), built with `cache`'s AWS
    /// settings.
    pub fn register(registry: &mut rollback_core::Registry, cache: &crate::AwsCache) {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Params {
            #[serde(default)]
            aws: crate::AwsConfig,
        }
        let cache = cache.clone();
        registry.register_metric_source("cloudwatch", move |params| {
            let cache = cache.clone();
            async move {
                let p: Params = serde_json::from_value(params).map_err(|e| {
                    Error::invalid(
                        "cloudwatch source",
                        format!("{e}; a cloudwatch source takes only aws: {{region, endpoint_url, profile}}"),
                    )
                })?;
                let aws = cache.get(&p.aws).await;
                Ok(std::sync::Arc::new(Self::new(&aws))
                    as std::sync::Arc<dyn rollback_core::metrics::MetricSource>)
            }
        });
    }

    /// A source in the account and region of `aws`.
    pub fn new(aws: &Aws) -> Self {
        CloudWatchSource {
            aws: aws.config().clone(),
            client: aws.lazy_client(Client::new),
        }
    }

    /// `query` as a [`MetricQuery`], or [`Error::InvalidInput`] naming this source.
    fn parse(&self, query: &str) -> Result<MetricQuery> {
        MetricQuery::parse(query).map_err(|why| Error::invalid(self.target().to_string(), why))
    }

    fn target(&self) -> TargetId {
        TargetId::new(
            "cloudwatch",
            self.aws
                .region
                .clone()
                .unwrap_or_else(|| "default-region".into()),
        )
    }
}

#[async_trait]
impl MetricSource for CloudWatchSource {
    fn name(&self) -> String {
        self.target().to_string()
    }

    /// GetMetricData, which IAM grants on no particular metric.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        Some(vec![rollback_core::Permission::aws(
            "cloudwatch:GetMetricData",
            "*",
        )])
    }

    async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>> {
        let id = self.target();
        let q = self.parse(query)?;
        let dims: Vec<Dimension> = q
            .dimensions
            .iter()
            .map(|(k, v)| Dimension::builder().name(k).value(v).build())
            .collect();
        // CloudWatch periods are whole minutes (1 s, 5 s... only for high-resolution metrics).
        let period = (step.as_secs().max(60) / 60 * 60) as i32;
        let metric = Metric::builder()
            .namespace(&q.namespace)
            .metric_name(&q.metric)
            .set_dimensions(Some(dims))
            .build();
        let data_query = MetricDataQuery::builder()
            .id("m0")
            .metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(period)
                    .stat(&q.stat)
                    .build(),
            )
            .return_data(true)
            .build();
        let pages = self
            .client
            .get()
            .await?
            .get_metric_data()
            .metric_data_queries(data_query)
            .start_time(smithy_time(start))
            .end_time(smithy_time(end))
            .scan_by(ScanBy::TimestampAscending)
            .into_paginator()
            .send();
        let mut samples = Vec::new();
        for page in all_pages(&id, "GetMetricData", pages).await? {
            for r in page.metric_data_results() {
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    if let Some(at) = chrono_time(t) {
                        samples.push(Sample { at, value: *v });
                    }
                }
            }
        }
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        samples.sort_by_key(|s| s.at);
        let mut series = Series::new(q.metric.clone());
        series.labels = q.dimensions.clone();
        series
            .labels
            .insert("namespace".into(), q.namespace.clone());
        series.labels.insert("stat".into(), q.stat.clone());
        series.samples = samples;
        Ok(vec![series])
    }

    /// The query must be a [`MetricQuery`] CloudWatch would take; nothing is asked.
    fn validate_query(&self, query: &str) -> Result<()> {
        self.parse(query).map(|_| ())
    }

    async fn instant(&self, query: &str, at: Option<DateTime<Utc>>) -> Result<Vec<Series>> {
        let end = at.unwrap_or_else(Utc::now);
        let mut out = self
            .range(
                query,
                end - chrono::Duration::minutes(10),
                end,
                Duration::from_secs(60),
            )
            .await?;
        for s in &mut out {
            if let Some(last) = s.samples.last().cloned() {
                s.samples = vec![last];
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_queries() {
        let q = MetricQuery::parse("AgentAuri ErrorRate Average Service=api Stage=prod").unwrap();
        assert_eq!(q.namespace, "AgentAuri");
        assert_eq!(q.stat, "Average");
        assert_eq!(q.dimensions["Stage"], "prod");
        assert!(MetricQuery::parse("AgentAuri ErrorRate").is_err());
        assert!(MetricQuery::parse("A B C nodim")
            .unwrap_err()
            .contains("Name=Value"));
        for stat in ["p95", "p99.9", "tm90", "TM(10%:90%)", "IQM", "SampleCount"] {
            assert!(MetricQuery::parse(&format!("A B {stat}")).is_ok(), "{stat}");
        }
        for (query, want) in [
            ("AgentAuri ErrorRate Avg", "not a CloudWatch statistic"),
            ("AgentAuri ErrorRate p101", "not a CloudWatch statistic"),
            ("AgentAuri ErrorRate Average Service=", "name and a value"),
            ("AgentAuri ErrorRate Average =api", "name and a value"),
        ] {
            let err = MetricQuery::parse(query).unwrap_err();
            assert!(err.contains(want), "{query}: {err}");
        }
        let long = format!(
            "A B Sum {}",
            (0..31)
                .map(|i| format!("D{i}=v"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(MetricQuery::parse(&long)
            .unwrap_err()
            .contains("at most 30"));
        let long = format!("{} B Sum", "N".repeat(256));
        assert!(MetricQuery::parse(&long).unwrap_err().contains("255"));
    }
}
