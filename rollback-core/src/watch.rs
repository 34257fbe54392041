//! Rolling back when the numbers say so: a [`Watch`] asks runbook 004's decision tree
//! ([`decide_from`]) on an interval and acts on its answer.
//!
//! - "roll back immediately" ([`Recommendation::RollbackNow`]) acts at once;
//! - "roll back within 10 minutes" ([`Recommendation::RollbackWithin`]: the SLO is at
//!   risk) waits that grace period and decides again: it acts only if the decision at the
//!   end of the grace still says so;
//! - "monitor" keeps watching.
//!
//! Acting is a [`Responder`]'s business (the `rollback watch` command runs the runbook's
//! transaction, which takes its targets' leases first). Every look is a [`WatchRecord`]
//! with its evidence (values, thresholds, windows), written to the decision log and
//! handed to the caller.
//!
//! # Safe by construction
//!
//! - **Once per incident.** An incident opens at the first decision that calls for a
//!   rollback and closes at the first healthy one (every signal with data, no condition
//!   holding). Within one incident a watch acts at most once, whatever came of it: a
//!   rollback that failed or was refused (a lease held by a person rolling back by hand)
//!   is for a person, and acting again on top of it could make things worse. A watch
//!   restarted over the same decision log ([`Watch::resume_state`], which
//!   [`Watch::run`] does) goes on where it left off: same incident, same cooldown.
//! - **Cooldown.** After any action, none for [`Watch::cooldown`] (30 minutes by
//!   default), even in a new incident.
//! - **No data is not a verdict.** A source that fails, or a signal with no series in the
//!   window, is read neither as healthy nor as unhealthy: the record says "no data" and,
//!   per [`NoData`], the watch holds (the default: it does nothing and does not close an
//!   open incident) or acts as if a rollback were called for.
//! - **Dry run.** [`Watch::dry_run`] decides, and records what it would do, without
//!   acting (it keeps the incident and cooldown book as if it had acted, so its log reads
//!   as the real run's would).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::{
    decide_from, Decision, DecisionPolicy, DecisionQueries, Evidence, MetricSource, Recommendation,
};
use crate::transaction::{Outcome, Report};

/// What a watch does when its source fails or a signal has no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoData {
    /// Do nothing, keep an open incident open (the default): a missing signal proves
    /// nothing either way.
    #[default]
    Hold,
    /// Act as if a rollback were called for (for a service whose metrics vanish only when
    /// it is down); the once-per-incident rule and the cooldown still apply.
    Act,
}

impl fmt::Display for NoData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoData::Hold => "hold",
            NoData::Act => "act",
        })
    }
}

/// What one look concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// Every signal had data and no rollback condition held.
    Healthy,
    /// The SLO is at risk: the watch decides again at `act_at` and acts if it still is.
    Grace {
        /// When the grace period ends.
        act_at: DateTime<Utc>,
    },
    /// The responder ran: see `outcome`.
    Acted {
        /// The transaction's id.
        transaction: String,
        /// How it ended.
        outcome: Outcome,
    },
    /// The responder could not run (refused in preflight, a lease held elsewhere); nothing
    /// was changed by this watch.
    ActFailed {
        /// What stopped it.
        error: String,
    },
    /// A dry run: this is where the watch would have acted.
    WouldAct,
    /// A rollback is called for, but the watch acted less than [`Watch::cooldown`] ago.
    Cooldown {
        /// When the cooldown ends.
        until: DateTime<Utc>,
    },
    /// A rollback is called for, but this incident was already acted on.
    AlreadyActed {
        /// The incident.
        incident: u64,
    },
    /// The source failed or a signal had no data, and [`NoData::Hold`] holds.
    NoData,
}

impl Verdict {
    /// Whether this look acted (or, in a dry run, would have).
    pub fn acted(&self) -> bool {
        matches!(
            self,
            Verdict::Acted { .. } | Verdict::ActFailed { .. } | Verdict::WouldAct
        )
    }
}

/// One look of a watch, as the decision log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchRecord {
    /// 1 for the first look.
    pub seq: u64,
    /// The end of the window looked at.
    pub at: DateTime<Utc>,
    /// What the decision tree said (`None` when the source failed).
    pub recommendation: Option<Recommendation>,
    /// What the watch did about it.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The open incident, if any.
    pub incident: Option<u64>,
    /// Whether the signals lacked data (or the source failed).
    pub no_data: bool,
    /// One line for people.
    pub summary: String,
    /// The decision's reasons.
    pub reasons: Vec<String>,
    /// The decision's evidence: values, thresholds and windows per signal.
    pub evidence: Vec<Evidence>,
    /// The source's failure, if it failed.
    pub source_error: Option<String>,
    /// A dry run's record.
    pub dry_run: bool,
}

impl fmt::Display for WatchRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {}: {}",
            self.seq,
            self.at.format("%H:%M:%S"),
            self.summary
        )
    }
}

/// The reason of a transaction a watch runs for `decision`: the transaction's own reason,
/// if it has one, with the decision after it (`errors above 5 % (rollback watch: roll back
/// immediately: ...)`), for its journal and report.
pub fn reason_for(decision: &Decision, own: Option<&str>) -> String {
    match own.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => format!("{r} (rollback watch: {decision})"),
        None => format!("rollback watch: {decision}"),
    }
}

/// What a watch acts with: usually "run the runbook's transaction".
#[async_trait]
pub trait Responder: Send + Sync {
    /// Acts on `decision` (its reasons make a good transaction reason). `Err` means
    /// nothing was done (refused before any change); a run that changed something and
    /// failed is an `Ok` report whose outcome says so.
    async fn respond(&self, decision: &Decision) -> Result<Report>;
}

/// How a watch ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchSummary {
    /// Looks made by this run.
    pub decisions: u64,
    /// Times the responder ran (or, in a dry run, would have).
    pub actions: u64,
    /// The last look.
    pub last: Option<WatchRecord>,
}

#[derive(Debug, Clone)]
struct Incident {
    id: u64,
    acted: bool,
    grace_until: Option<DateTime<Utc>>,
}

/// Watches a metric source and rolls back when runbook 004's decision tree says so. See
/// the [module](self) for the rules.
#[derive(Debug, Clone)]
pub struct Watch {
    source: Arc<dyn MetricSource>,
    queries: DecisionQueries,
    policy: DecisionPolicy,
    interval: Duration,
    cooldown: Duration,
    no_data: NoData,
    dry_run: bool,
    log: Option<PathBuf>,
    status_file: Option<PathBuf>,
    max_decisions: Option<u64>,
}

/// What [`Watch::step`] keeps between looks.
#[derive(Debug, Default)]
pub struct WatchState {
    seq: u64,
    incidents: u64,
    incident: Option<Incident>,
    cooldown_until: Option<DateTime<Utc>>,
    actions: u64,
}

impl Watch {
    /// Watches `queries` on `source` with runbook 004's thresholds, every 30 s, a 30 minute
    /// cooldown, holding on no data.
    pub fn new(source: Arc<dyn MetricSource>, queries: DecisionQueries) -> Self {
        Watch {
            source,
            queries,
            policy: DecisionPolicy::default(),
            interval: Duration::from_secs(30),
            cooldown: Duration::from_secs(30 * 60),
            no_data: NoData::Hold,
            dry_run: false,
            log: None,
            status_file: None,
            max_decisions: None,
        }
    }

    /// The thresholds.
    pub fn policy(mut self, policy: DecisionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Time between looks (30 s by default).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// After any action, none for this long (30 minutes by default).
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// What no data means ([`NoData::Hold`] by default).
    pub fn no_data(mut self, no_data: NoData) -> Self {
        self.no_data = no_data;
        self
    }

    /// Decides and records, never acts.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Appends every record to this file, one JSON object per line (the decision log).
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// Keeps the last record in this file (written whole, then renamed into place), for
    /// whoever supervises the watch.
    pub fn status_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.status_file = Some(path.into());
        self
    }

    /// Stops after this many looks of this run (`1`: decide once, as from cron).
    pub fn max_decisions(mut self, n: u64) -> Self {
        self.max_decisions = Some(n);
        self
    }

    /// The decision log, if one is kept.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The time between looks.
    pub fn interval_of(&self) -> Duration {
        self.interval
    }

    /// The decision queries.
    pub fn queries(&self) -> &DecisionQueries {
        &self.queries
    }

    /// The source.
    pub fn source(&self) -> &Arc<dyn MetricSource> {
        &self.source
    }

    /// Refuses settings and queries that can never work, without asking the source or
    /// touching a file: what `rollback lint` checks.
    pub fn validate_offline(&self) -> Result<()> {
        let what = self.what();
        if self.interval.is_zero() {
            return Err(Error::invalid(what, "the interval must be longer than 0"));
        }
        if self.queries.step.is_zero() {
            return Err(Error::invalid(what, "the query step must be longer than 0"));
        }
        let p = &self.policy;
        for (name, v) in [
            ("error_rate_above", p.error_rate_above),
            ("latency_p95_above", p.latency_p95_above_secs),
            ("slo_burn_rate_above", p.slo_burn_rate_above),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::invalid(
                    what,
                    format!("{name} must be a number of at least 0, not {v}"),
                ));
            }
        }
        if p.error_rate_above > 1.0 {
            return Err(Error::invalid(
                what,
                format!(
                    "error_rate_above is a fraction (0.05 is 5%), not {}",
                    p.error_rate_above
                ),
            ));
        }
        for query in self.query_texts() {
            if query.trim().is_empty() {
                return Err(Error::invalid(what, "a decision query is empty"));
            }
        }
        Ok(())
    }

    /// [`validate_offline`](Self::validate_offline), then each query as the source would
    /// send it (its URL, its credentials' settings) and the folders of the log and status
    /// file (made if missing): what [`run`](Self::run) checks before its first look.
    pub fn validate(&self) -> Result<()> {
        self.validate_offline()?;
        let what = self.what();
        for query in self.query_texts() {
            self.source.validate_query(query)?;
        }
        // The log's folder is made now: a record that cannot be written should stop the
        // watch before its first look, not after an action.
        for path in [&self.log, &self.status_file].into_iter().flatten() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::invalid(
                        &what,
                        format!(
                            "cannot create {} for {} ({e}); give another path",
                            dir.display(),
                            path.display()
                        ),
                    )
                })?;
            }
        }
        Ok(())
    }

    fn what(&self) -> String {
        format!("watch of {}", self.source.name())
    }

    fn query_texts(&self) -> impl Iterator<Item = &String> {
        let q = &self.queries;
        [
            Some(&q.error_rate),
            Some(&q.p95_latency_seconds),
            q.slo_burn_rate.as_ref(),
        ]
        .into_iter()
        .flatten()
    }

    /// Looks once at `now`: decides, acts (through `responder`) if the rules say so, and
    /// returns the record (also written to the log and the status file).
    pub async fn step(
        &self,
        state: &mut WatchState,
        responder: &dyn Responder,
        now: DateTime<Utc>,
    ) -> Result<WatchRecord> {
        state.seq += 1;
        let decided = decide_from(
            self.source.as_ref(),
            &self.queries,
            false,
            &self.policy,
            now,
        )
        .await;
        let (decision, source_error) = match decided {
            Ok(d) => (Some(d), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let at = decision.as_ref().map_or(now, |d| d.at);
        let recommendation = decision.as_ref().map(|d| d.action);
        let no_data = match &decision {
            None => true,
            Some(d) => d.evidence.iter().any(|e| e.series == 0),
        };
        // Whether the decision (or, by NoData::Act, its absence) calls for a rollback now.
        let call = match recommendation {
            Some(Recommendation::RollbackNow) => Call::Now,
            Some(Recommendation::RollbackWithin(grace)) => Call::Within(grace),
            _ if no_data => match self.no_data {
                NoData::Act => Call::Now,
                NoData::Hold => Call::Hold,
            },
            _ => Call::Healthy,
        };
        let (verdict, summary) = match call {
            Call::Healthy => {
                let summary = match state.incident.take() {
                    Some(i) if i.acted => format!("healthy again: incident {} closed", i.id),
                    Some(i) => format!("healthy again: incident {} closed without acting", i.id),
                    None => "healthy".to_string(),
                };
                (Verdict::Healthy, summary)
            }
            Call::Hold => {
                let why = source_error.as_deref().map_or_else(
                    || "a signal has no data in the window".to_string(),
                    |e| format!("the source failed: {e}"),
                );
                (Verdict::NoData, format!("no data, holding ({why})"))
            }
            Call::Within(grace) => {
                let incident = state.open_incident();
                let act_at = *incident.grace_until.get_or_insert_with(|| plus(at, grace));
                if at < act_at && !incident.acted {
                    (
                        Verdict::Grace { act_at },
                        format!(
                            "SLO at risk: deciding again at {} (incident {})",
                            act_at.format("%H:%M:%S"),
                            incident.id
                        ),
                    )
                } else {
                    self.act(state, responder, decision.as_ref(), at).await
                }
            }
            Call::Now => {
                state.open_incident();
                self.act(state, responder, decision.as_ref(), at).await
            }
        };
        let summary = match (&decision, no_data, &verdict) {
            (Some(d), _, Verdict::Healthy) => format!("{summary}: {d}"),
            (Some(d), false, _) => format!("{summary}; {d}"),
            _ => summary,
        };
        let record = WatchRecord {
            seq: state.seq,
            at,
            recommendation,
            verdict,
            incident: state.incident.as_ref().map(|i| i.id),
            no_data,
            summary,
            reasons: decision
                .as_ref()
                .map(|d| d.reasons.clone())
                .unwrap_or_default(),
            evidence: decision.map(|d| d.evidence).unwrap_or_default(),
            source_error,
            dry_run: self.dry_run,
        };
        self.write(&record)?;
        Ok(record)
    }

    async fn act(
        &self,
        state: &mut WatchState,
        responder: &dyn Responder,
        decision: Option<&Decision>,
        at: DateTime<Utc>,
    ) -> (Verdict, String) {
        let Some(incident) = state.incident.as_mut() else {
            return (Verdict::NoData, "no incident".into());
        };
        if incident.acted {
            let id = incident.id;
            return (
                Verdict::AlreadyActed { incident: id },
                format!("incident {id} was already acted on; waiting for healthy metrics"),
            );
        }
        if let Some(until) = state.cooldown_until.filter(|u| at < *u) {
            return (
                Verdict::Cooldown { until },
                format!("in cooldown until {}", until.format("%H:%M:%S")),
            );
        }
        incident.acted = true;
        let id = incident.id;
        state.actions += 1;
        state.cooldown_until = Some(plus(at, self.cooldown));
        if self.dry_run {
            return (
                Verdict::WouldAct,
                format!("dry run: would roll back now (incident {id})"),
            );
        }
        let fallback;
        let decision = match decision {
            Some(d) => d,
            None => {
                fallback = Decision {
                    action: Recommendation::RollbackNow,
                    reasons: vec![format!(
                        "no data from {} and no_data: act",
                        self.source.name()
                    )],
                    evidence: Vec::new(),
                    at,
                };
                &fallback
            }
        };
        match responder.respond(decision).await {
            Ok(report) => {
                let summary = format!(
                    "rolled back (incident {id}): transaction {} {}",
                    report.transaction, report.outcome
                );
                (
                    Verdict::Acted {
                        transaction: report.transaction,
                        outcome: report.outcome,
                    },
                    summary,
                )
            }
            Err(e) => (
                Verdict::ActFailed {
                    error: e.to_string(),
                },
                format!("could not roll back (incident {id}): {e}"),
            ),
        }
    }

    fn write(&self, record: &WatchRecord) -> Result<()> {
        let line = serde_json::to_string(record)
            .map_err(|e| Error::journal("decision log", format!("cannot write a record: {e}")))?;
        if let Some(path) = &self.log {
            crate::journal::append_line(path, &line)?;
        }
        if let Some(path) = &self.status_file {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, format!("{line}\n"))
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| file_error(path, e))?;
        }
        Ok(())
    }

    /// Looks now and then every [`Watch::interval`] until `shutdown` completes (a
    /// rollback under way is finished first: it is never left half done) or
    /// [`Watch::max_decisions`] looks were made; `observe` sees every record.
    pub async fn run(
        &self,
        responder: &dyn Responder,
        shutdown: impl std::future::Future<Output = ()>,
        mut observe: impl FnMut(&WatchRecord) + Send,
    ) -> Result<WatchSummary> {
        self.validate()?;
        // A watch restarted (a new pod, a crash) goes on where its log left off: an
        // incident it acted on is not acted on again, the cooldown still runs.
        let mut state = match &self.log {
            Some(log) => self.resume_state(log)?,
            None => WatchState::default(),
        };
        let mut last = None;
        let first = state.seq;
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            if self.max_decisions.is_some_and(|n| state.seq - first >= n) {
                break;
            }
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticks.tick() => {}
            }
            let record = self.step(&mut state, responder, Utc::now()).await?;
            tracing::info!(
                seq = record.seq,
                verdict = ?record.verdict,
                "{}",
                record.summary
            );
            observe(&record);
            last = Some(record);
        }
        Ok(WatchSummary {
            decisions: state.seq - first,
            actions: state.actions,
            last,
        })
    }
}

impl Watch {
    /// The state a watch had when it wrote the decision log at `log` (its records of the
    /// same kind: dry run or not): the open incident and whether it was acted on, the
    /// grace under way, the cooldown after the last action. A missing log is a fresh
    /// start.
    pub fn resume_state(&self, log: &Path) -> Result<WatchState> {
        let Some(text) = crate::journal::read_lines(log)? else {
            return Ok(WatchState::default());
        };

        let mut state = WatchState::default();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let r: WatchRecord = serde_json::from_str(line).map_err(|e| {
                Error::journal(
                    log.display().to_string(),
                    format!(
                        "line {} is not a watch record ({e}); move the file away to start afresh",
                        n + 1
                    ),
                )
            })?;
            if r.dry_run != self.dry_run {
                continue;
            }
            state.seq = state.seq.max(r.seq);
            if let Some(id) = r.incident {
                state.incidents = state.incidents.max(id);
            }
            let acted = r.verdict.acted();
            if acted {
                state.actions += 1;
                state.cooldown_until = Some(plus(r.at, self.cooldown));
            }
            state.incident = r.incident.map(|id| {
                let before = state.incident.take().filter(|i| i.id == id);
                Incident {
                    id,
                    acted: acted
                        || matches!(r.verdict, Verdict::AlreadyActed { .. })
                        || before.as_ref().is_some_and(|i| i.acted),
                    grace_until: match &r.verdict {
                        Verdict::Grace { act_at } => Some(*act_at),
                        _ => before.and_then(|i| i.grace_until),
                    },
                }
            });
        }
        state.actions = 0;
        Ok(state)
    }
}

impl WatchState {
    fn open_incident(&mut self) -> &mut Incident {
        let incidents = &mut self.incidents;
        self.incident.get_or_insert_with(|| {
            *incidents += 1;
            Incident {
                id: *incidents,
                acted: false,
                grace_until: None,
            }
        })
    }
}

enum Call {
    Healthy,
    Hold,
    Now,
    Within(Duration),
}

fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn file_error(path: &Path, e: std::io::Error) -> Error {
    Error::Journal {
        path: path.display().to_string(),
        message: format!(
            "the watch cannot write its decision record ({e}); check the path and its permissions"
        ),
        source: Some(Box::new(e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::metrics::Series;

    /// Answers the error-rate query with the values of `script`, one per look (`None`: no
    /// series; `f64::NAN` in the script: the source fails), latency always 0.2 s.
    #[derive(Debug)]
    struct Scripted {
        script: Vec<Option<f64>>,
        looks: AtomicUsize,
    }

    #[async_trait]
    impl MetricSource for Scripted {
        fn name(&self) -> String {
            "scripted".into()
        }
        async fn range(
            &self,
            query: &str,
            start: DateTime<Utc>,
            end: DateTime<Utc>,
            step: Duration,
        ) -> Result<Vec<Series>> {
            let flat = |v: f64| {
                let step = TimeDelta::from_std(step).unwrap();
                let mut s = Series::new("").label("service", "api");
                let mut t = start;
                while t <= end {
                    s = s.sample(t, v);
                    t += step;
                }
                vec![s]
            };
            if query == "p95" {
                return Ok(flat(0.2));
            }
            let i = self.looks.fetch_add(1, Ordering::SeqCst);
            match self.script.get(i).copied().flatten() {
                Some(v) if v.is_nan() => Err(Error::backend("scripted", "unreachable", true)),
                Some(v) => Ok(flat(v)),
                None => Ok(Vec::new()),
            }
        }
        async fn instant(&self, _: &str, _: Option<DateTime<Utc>>) -> Result<Vec<Series>> {
            Ok(Vec::new())
        }
    }

    #[derive(Default)]
    struct Counting {
        calls: Mutex<Vec<String>>,
        fail: bool,
    }

    #[async_trait]
    impl Responder for Counting {
        async fn respond(&self, decision: &Decision) -> Result<Report> {
            self.calls.lock().unwrap().push(decision.to_string());
            if self.fail {
                return Err(Error::invalid("api", "refused in preflight"));
            }
            Ok(Report {
                transaction: format!("tx-{}", self.calls.lock().unwrap().len()),
                name: "api".into(),
                reason: None,
                outcome: Outcome::Succeeded,
                steps: Vec::new(),
                checks: Vec::new(),
                actions: Vec::new(),
                on_success: Vec::new(),
                needs_attention: Vec::new(),
                error: None,
                journal_path: PathBuf::new(),
                started_at: Utc::now(),
                duration: Duration::ZERO,
            })
        }
    }

    fn watch(script: &[Option<f64>]) -> Watch {
        let source = Scripted {
            script: script.to_vec(),
            looks: AtomicUsize::new(0),
        };
        Watch::new(Arc::new(source), DecisionQueries::new("err", "p95"))
            .cooldown(Duration::from_secs(3600))
    }

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_513_000 + minutes * 60, 0).unwrap()
    }

    /// The verdict names of each look, one look a minute.
    async fn verdicts(w: &Watch, responder: &dyn Responder, looks: i64) -> Vec<String> {
        let mut state = WatchState::default();
        let mut out = Vec::new();
        for m in 0..looks {
            let r = w.step(&mut state, responder, t(m)).await.unwrap();
            let v = serde_json::to_value(&r).unwrap();
            out.push(v["verdict"].as_str().unwrap().to_string());
        }
        out
    }

    #[tokio::test]
    async fn acts_once_per_incident_then_the_cooldown_holds() {
        let w = watch(&[
            Some(0.01),
            Some(0.09),
            Some(0.09),
            Some(0.01),
            Some(0.09),
            Some(0.01),
        ]);
        let r = Counting::default();
        let v = verdicts(&w, &r, 6).await;
        assert_eq!(
            v,
            [
                "healthy",
                "acted",
                "already_acted",
                "healthy",
                "cooldown",
                "healthy"
            ]
        );
        let calls = r.calls.lock().unwrap();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert!(
            calls[0].starts_with("roll back immediately: error rate above 5%"),
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn no_data_and_a_failing_source_are_held_by_default_and_acted_on_when_asked() {
        let script = [None, Some(f64::NAN), Some(0.01)];
        let r = Counting::default();
        assert_eq!(
            verdicts(&watch(&script), &r, 3).await,
            ["no_data", "no_data", "healthy"]
        );
        assert!(r.calls.lock().unwrap().is_empty());

        let act = watch(&script).no_data(NoData::Act);
        assert_eq!(
            verdicts(&act, &r, 3).await,
            ["acted", "already_acted", "healthy"]
        );
        assert_eq!(r.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn no_data_does_not_close_an_open_incident() {
        // Breach, act, no data, breach again: still the same incident, so no second action.
        let w = watch(&[Some(0.09), None, Some(0.09)]);
        let r = Counting::default();
        assert_eq!(
            verdicts(&w, &r, 3).await,
            ["acted", "no_data", "already_acted"]
        );
        assert_eq!(r.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn slo_at_risk_waits_its_grace_and_acts_only_if_it_still_holds() {
        // A burn rate above 1 with calm errors: "roll back within 10 minutes".
        #[derive(Debug)]
        struct Burn(Scripted);
        #[async_trait]
        impl MetricSource for Burn {
            fn name(&self) -> String {
                "burn".into()
            }
            async fn range(
                &self,
                query: &str,
                start: DateTime<Utc>,
                end: DateTime<Utc>,
                step: Duration,
            ) -> Result<Vec<Series>> {
                match query {
                    "burn" => self.0.range("err", start, end, step).await,
                    _ => self.0.range("p95", start, end, step).await.map(|mut s| {
                        // errors at 1 %, latency 0.2 s
                        if query == "err" {
                            for x in &mut s[0].samples {
                                x.value = 0.01;
                            }
                        }
                        s
                    }),
                }
            }
            async fn instant(&self, _: &str, _: Option<DateTime<Utc>>) -> Result<Vec<Series>> {
                Ok(Vec::new())
            }
        }
        let burning = |script: &[Option<f64>]| {
            Watch::new(
                Arc::new(Burn(Scripted {
                    script: script.to_vec(),
                    looks: AtomicUsize::new(0),
                })),
                DecisionQueries::new("err", "p95").slo_burn_rate("burn"),
            )
            .policy(DecisionPolicy {
                rollback_within: Duration::from_secs(120),
                ..DecisionPolicy::default()
            })
        };
        let r = Counting::default();
        // Minutes 0 and 1 within the 2 minute grace; at minute 2 it still burns: act.
        let w = burning(&[Some(2.5), Some(2.5), Some(2.5), Some(2.5)]);
        assert_eq!(
            verdicts(&w, &r, 4).await,
            ["grace", "grace", "acted", "already_acted"]
        );
        assert_eq!(r.calls.lock().unwrap().len(), 1);
        // It recovers within the grace: never acts.
        let r = Counting::default();
        let w = burning(&[Some(2.5), Some(0.5), Some(2.5)]);
        assert_eq!(verdicts(&w, &r, 3).await, ["grace", "healthy", "grace"]);
        assert!(r.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_restarted_watch_goes_on_from_its_log_and_does_not_act_twice() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("d.jsonl");
        let r = Counting::default();
        let first = watch(&[Some(0.09), Some(0.09)]).log(&log);
        let mut state = WatchState::default();
        first.step(&mut state, &r, t(0)).await.unwrap();
        assert_eq!(r.calls.lock().unwrap().len(), 1);
        // A new process, the same log: the incident was acted on.
        let again = watch(&[Some(0.09), Some(0.01), Some(0.09)]).log(&log);
        let mut state = again.resume_state(&log).unwrap();
        let v = |rec: WatchRecord| serde_json::to_value(rec).unwrap()["verdict"].clone();
        assert_eq!(
            v(again.step(&mut state, &r, t(1)).await.unwrap()),
            "already_acted"
        );
        assert_eq!(
            v(again.step(&mut state, &r, t(2)).await.unwrap()),
            "healthy"
        );
        // A new incident, still within the hour's cooldown of the first process's action.
        let rec = again.step(&mut state, &r, t(3)).await.unwrap();
        assert_eq!(rec.seq, 4);
        assert_eq!(rec.incident, Some(2));
        assert_eq!(v(rec), "cooldown");
        assert_eq!(r.calls.lock().unwrap().len(), 1);
        // A log that is not one is refused, naming the line.
        std::fs::write(&log, "{}\n").unwrap();
        let e = again.resume_state(&log).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[tokio::test]
    async fn a_dry_run_records_what_it_would_do_and_calls_nothing() {
        let w = watch(&[Some(0.09), Some(0.09), Some(0.01)]).dry_run(true);
        let r = Counting::default();
        assert_eq!(
            verdicts(&w, &r, 3).await,
            ["would_act", "already_acted", "healthy"]
        );
        assert!(r.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refused_action_is_recorded_and_not_retried_within_the_incident() {
        let w = watch(&[Some(0.09), Some(0.09)]);
        let r = Counting {
            fail: true,
            ..Counting::default()
        };
        let mut state = WatchState::default();
        let first = w.step(&mut state, &r, t(0)).await.unwrap();
        assert!(
            matches!(&first.verdict, Verdict::ActFailed { error } if error.contains("refused in preflight")),
            "{first:?}"
        );
        let second = w.step(&mut state, &r, t(1)).await.unwrap();
        assert_eq!(second.verdict, Verdict::AlreadyActed { incident: 1 });
        assert_eq!(r.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn records_go_to_the_log_and_the_status_file_with_their_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let (log, status) = (dir.path().join("d.jsonl"), dir.path().join("status.json"));
        let w = watch(&[Some(0.01), Some(0.09)])
            .log(&log)
            .status_file(&status);
        let r = Counting::default();
        verdicts(&w, &r, 2).await;
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["verdict"], "acted");
        assert_eq!(lines[1]["transaction"], "tx-1");
        assert_eq!(lines[1]["evidence"][0]["signal"], "error_rate");
        assert_eq!(lines[1]["evidence"][0]["threshold"], 0.05);
        assert_eq!(lines[1]["evidence"][0]["worst"], 0.09);
        let last: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&status).unwrap()).unwrap();
        assert_eq!(last, lines[1]);
    }

    #[tokio::test]
    async fn run_stops_at_shutdown_or_after_max_decisions_and_refuses_bad_settings() {
        let r = Counting::default();
        let w = watch(&[Some(0.01); 8]).interval(Duration::from_millis(1));
        let s = w
            .clone()
            .max_decisions(3)
            .run(&r, std::future::pending(), |_| {})
            .await
            .unwrap();
        assert_eq!((s.decisions, s.actions), (3, 0));
        let s = w.run(&r, async {}, |_| {}).await.unwrap();
        assert_eq!(s.decisions, 0);
        let bad = watch(&[]).interval(Duration::ZERO);
        let e = bad.run(&r, async {}, |_| {}).await.unwrap_err();
        assert!(e.to_string().contains("interval"), "{e}");
        let bad = watch(&[]).policy(DecisionPolicy {
            error_rate_above: 5.0,
            ..DecisionPolicy::default()
        });
        assert!(bad.validate().unwrap_err().to_string().contains("fraction"));
    }
}
