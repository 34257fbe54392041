//! Practising a rollback and measuring it: a [`Drill`] (runbook 004 "Testing Rollback
//! Procedures", runbook 000 "keep rollback scripts tested monthly").
//!
//! On an environment the runbook marks as a drill environment, a drill:
//!
//! 1. checks the rollback transaction's inputs (checks, policies, actions) and notes
//!    where every target is and what it will be broken to; nothing has changed if this
//!    fails;
//! 2. **breaks** each target: moves it forward to the known-bad revision
//!    ([`Drill::break_to`]; by default the newest revision that is not in use), without
//!    waiting for it to be stable;
//! 3. **detects**: runs the runbook's checks (each once per probe) until one fails, for at
//!    most [`Drill::detect_within`]; the time from the break to the first failing check is
//!    the *time to detect*. Checks that never fail are the drill's first finding: the
//!    alerts would not fire;
//! 4. **recovers**: runs the rollback transaction itself; from its start to its checks
//!    passing is the *time to recover*, held against [`Drill::recover_within`] (runbook
//!    004: under 5 minutes);
//! 5. **restores**: every target that is not at the revision it was found at (the same
//!    revision, [`Revision::same_as`]) is put back there, and checked.
//!
//! The [`DrillReport`] has the times, per-target step times, what needed a person, and
//! renders as Markdown for the ticket a team files after its drill; [`DrillReport::append`]
//! keeps a history (JSON lines) and the Markdown shows the trend.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::revision::Revision;
use crate::selector::Selector;
use crate::target::{RollbackTarget, TargetId};
use crate::transaction::{Outcome, Report, Step, TransactionBuilder};
use crate::verify::{Check, Policy};

/// Which revision a drill breaks a target to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakTo {
    /// The newest revision that is not in use (the default).
    #[default]
    Newest,
    /// The revision a selector picks (`{exact: 7}`, `{image_tag: bad}`).
    Selector(Selector),
}

/// What happened to one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillTarget {
    /// The target.
    pub target: TargetId,
    /// Where the drill found it.
    pub found: Revision,
    /// What the drill broke it to.
    pub broken_to: Revision,
    /// Where the rollback left it.
    pub rolled_back_to: Option<Revision>,
    /// Where the drill left it.
    pub left_at: Option<Revision>,
    /// Whether it was left where it was found.
    pub restored: bool,
    /// The rollback step's time (apply, stable, checks).
    #[serde(with = "crate::serde_duration")]
    pub rollback_time: Duration,
}

/// A drill's findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    /// The runbook's name.
    pub name: String,
    /// The drill environment.
    pub environment: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Whether the drill passed: the checks noticed the break, the rollback succeeded
    /// within the target time, every target was left as found.
    pub passed: bool,
    /// The first failing check after the break (`None`: the checks never failed).
    pub detected_by: Option<String>,
    /// The time from the break to the first failing check.
    #[serde(with = "opt_duration")]
    pub time_to_detect: Option<Duration>,
    /// The time from the rollback's start to its checks passing (`None`: it failed).
    #[serde(with = "opt_duration")]
    pub time_to_recover: Option<Duration>,
    /// The target for the time to recover.
    #[serde(with = "crate::serde_duration")]
    pub recover_within: Duration,
    /// The rollback transaction's id.
    pub transaction: Option<String>,
    /// How the rollback ended.
    pub outcome: Option<Outcome>,
    /// Each target.
    pub targets: Vec<DrillTarget>,
    /// What needed a person: the rollback's own list, and the drill's findings.
    pub needs_attention: Vec<String>,
    /// The whole drill's time.
    #[serde(with = "crate::serde_duration")]
    pub duration: Duration,
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl DrillReport {
    /// Appends the report to the drill history at `path` (one JSON object per line; the
    /// folder is made if missing).
    pub fn append(&self, path: &Path) -> Result<()> {
        let line = serde_json::to_string(self)
            .map_err(|e| Error::journal(path.display().to_string(), e.to_string()))?;
        crate::journal::append_line(path, &line)
    }

    /// The drills of the history at `path`, oldest first (none when there is no file).
    pub fn history(path: &Path) -> Result<Vec<DrillReport>> {
        let Some(text) = crate::journal::read_lines(path)? else {
            return Ok(Vec::new());
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| {
                    Error::journal(
                        path.display().to_string(),
                        format!("a line is not a drill report ({e})"),
                    )
                })
            })
            .collect()
    }

    /// The report as Markdown, with the trend of `history` (earlier drills, oldest first).
    pub fn markdown(&self, history: &[DrillReport]) -> String {
        let mut m = String::new();
        let verdict = if self.passed { "passed" } else { "FAILED" };
        let _ = writeln!(
            m,
            "# Rollback drill: {} on {} ({verdict})\n",
            self.name, self.environment
        );
        let _ = writeln!(
            m,
            "Started {} and took {}.\n",
            self.started_at.to_rfc3339(),
            secs(self.duration)
        );
        let _ = writeln!(m, "| measure | value | target |\n| --- | --- | --- |");
        let _ = writeln!(
            m,
            "| time to detect | {} | |",
            self.time_to_detect
                .map_or_else(|| "not detected".into(), secs)
        );
        let _ = writeln!(
            m,
            "| time to recover | {} | under {} |",
            self.time_to_recover
                .map_or_else(|| "not recovered".into(), secs),
            secs(self.recover_within)
        );
        if let Some(by) = &self.detected_by {
            let _ = writeln!(m, "\nDetected by: {by}.");
        }
        if let (Some(tx), Some(o)) = (&self.transaction, self.outcome) {
            let _ = writeln!(m, "\nThe rollback: transaction {tx}, {o}.");
        }
        let _ = writeln!(
            m,
            "\n## Targets\n\n| target | found at | broken to | rolled back to | rollback step | left as found |\n| --- | --- | --- | --- | --- | --- |"
        );
        for t in &self.targets {
            let id = |r: &Option<Revision>| r.as_ref().map_or("-".to_string(), |r| r.id.clone());
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} |",
                t.target,
                t.found.id,
                t.broken_to.id,
                id(&t.rolled_back_to),
                secs(t.rollback_time),
                if t.restored { "yes" } else { "NO" }
            );
        }
        let _ = writeln!(m, "\n## Needed a person\n");
        if self.needs_attention.is_empty() {
            let _ = writeln!(m, "Nothing.");
        }
        for n in &self.needs_attention {
            let _ = writeln!(m, "- {n}");
        }
        if !history.is_empty() {
            let _ = writeln!(
                m,
                "\n## Trend\n\n| drill | passed | time to detect | time to recover |\n| --- | --- | --- | --- |"
            );
            for d in history.iter().chain(std::iter::once(self)) {
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {} |",
                    d.started_at.format("%Y-%m-%d %H:%M"),
                    if d.passed { "yes" } else { "no" },
                    d.time_to_detect.map_or_else(|| "-".into(), secs),
                    d.time_to_recover.map_or_else(|| "-".into(), secs)
                );
            }
        }
        let _ = writeln!(
            m,
            "\n## For the team\n\n- What surprised us:\n- What we change in the runbook:"
        );
        m
    }
}

/// A rollback drill over a runbook's transaction; see the [module](self).
#[derive(Debug, Clone)]
pub struct Drill {
    environment: String,
    rollback: TransactionBuilder,
    break_to: BreakTo,
    detect_within: Duration,
    recover_within: Duration,
    probe_interval: Duration,
    history: Option<std::path::PathBuf>,
}

impl Drill {
    /// A drill of `rollback` on the drill environment `environment`: breaks to the newest
    /// revision, detects within 5 minutes, recovers within 5 minutes, probes every 2 s.
    pub fn new(environment: impl Into<String>, rollback: TransactionBuilder) -> Self {
        Drill {
            environment: environment.into(),
            rollback,
            break_to: BreakTo::Newest,
            detect_within: Duration::from_secs(300),
            recover_within: Duration::from_secs(300),
            probe_interval: Duration::from_secs(2),
            history: None,
        }
    }

    /// Where the drill history is kept (see [`DrillReport::append`]).
    pub fn history(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.history = Some(path.into());
        self
    }

    /// The drill history's file, if set.
    pub fn history_path(&self) -> Option<&Path> {
        self.history.as_deref()
    }

    /// The revision each target is broken to.
    pub fn break_to(mut self, to: BreakTo) -> Self {
        self.break_to = to;
        self
    }

    /// How long the checks have to notice the break.
    pub fn detect_within(mut self, d: Duration) -> Self {
        self.detect_within = d;
        self
    }

    /// The target for the time to recover.
    pub fn recover_within(mut self, d: Duration) -> Self {
        self.recover_within = d;
        self
    }

    /// Time between probes of the checks while detecting.
    pub fn probe_interval(mut self, d: Duration) -> Self {
        self.probe_interval = d;
        self
    }

    /// The drill environment.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    fn targets(&self) -> Vec<Arc<dyn RollbackTarget>> {
        self.rollback
            .stages()
            .flatten()
            .map(|s| s.target().clone())
            .collect()
    }

    fn checks(&self) -> Vec<Check> {
        let mut checks: Vec<Check> = self
            .rollback
            .stages()
            .flatten()
            .flat_map(|s| s.checks().iter().cloned())
            .collect();
        checks.extend(self.rollback.checks().iter().cloned());
        checks
    }

    /// Refuses what cannot drill, changing nothing: a blank environment, no checks (a drill
    /// without them cannot detect or verify anything), zero times.
    pub fn validate(&self) -> Result<()> {
        let what = format!("drill of {}", self.rollback.name());
        if self.environment.trim().is_empty() {
            return Err(Error::invalid(what, "the drill environment has no name"));
        }
        if self.checks().is_empty() {
            return Err(Error::invalid(
                what,
                "the runbook has no checks, so a drill can neither see the break nor the \
                 recovery; add verify: checks to its steps",
            ));
        }
        for (name, d) in [
            ("detect_within", self.detect_within),
            ("recover_within", self.recover_within),
            ("probe_interval", self.probe_interval),
        ] {
            if d.is_zero() {
                return Err(Error::invalid(
                    what,
                    format!("{name} must be longer than 0"),
                ));
            }
        }
        Ok(())
    }

    async fn break_revision(&self, t: &dyn RollbackTarget, found: &Revision) -> Result<Revision> {
        match &self.break_to {
            BreakTo::Selector(s) => t.resolve(s).await,
            BreakTo::Newest => t
                .history()
                .await?
                .into_iter()
                .find(|r| !r.same_as(found))
                .ok_or_else(|| {
                    Error::invalid(
                        t.id().to_string(),
                        "has no revision but the one in use, so there is nothing to break it \
                         to; deploy a known-bad revision first or give break_to",
                    )
                }),
        }
    }

    /// One probe of every check: the first that fails, with its evidence.
    async fn first_failing(checks: &[Check]) -> Option<String> {
        for c in checks {
            let v = Policy::once().run(c.verifier.as_ref(), |_, _| {}).await;
            if !v.passed {
                return Some(format!("{}: {}", v.name, v.evidence));
            }
        }
        None
    }

    /// Runs the drill; `Err` only when it was refused before anything changed (bad input,
    /// the rollback's preflight). A drill that went wrong later is a report that did not
    /// pass, with every target put back where it can be.
    pub async fn run(&self) -> Result<DrillReport> {
        self.validate()?;
        let started_at = Utc::now();
        let clock = Instant::now();
        // Preflight: what the rollback takes as input, then where everything is. Its plan is
        // made by its own preflight once the targets are broken (from here, `previous`
        // would name another revision); refused then, the targets are put back.
        self.rollback.validate_inputs().await?;
        self.rollback.clone().build()?;
        let targets = self.targets();
        let checks = self.checks();
        let mut found = Vec::new();
        let mut broken = Vec::new();
        for t in &targets {
            let now = t.current().await?;
            let bad = self.break_revision(t.as_ref(), &now).await?;
            if bad.same_as(&now) {
                return Err(Error::invalid(
                    t.id().to_string(),
                    format!("is already at {}, the revision to break it to", bad.id),
                ));
            }
            found.push(now);
            broken.push(bad);
        }
        let mut attention = Vec::new();
        // Break.
        for (t, bad) in targets.iter().zip(&broken) {
            let applied = async {
                let change = t.prepare(&Selector::Exact(bad.id.clone())).await?;
                t.apply(&change).await
            }
            .await;
            if let Err(e) = applied {
                attention.push(format!(
                    "{}: could not be broken to {}: {e}",
                    t.id(),
                    bad.id
                ));
            }
        }
        let broke_at = Instant::now();
        // Detect.
        let mut detected_by = None;
        if attention.is_empty() {
            loop {
                if let Some(why) = Self::first_failing(&checks).await {
                    detected_by = Some(why);
                    break;
                }
                if broke_at.elapsed() + self.probe_interval > self.detect_within {
                    break;
                }
                tokio::time::sleep(self.probe_interval).await;
            }
        }
        let time_to_detect = detected_by.as_ref().map(|_| broke_at.elapsed());
        if detected_by.is_none() && attention.is_empty() {
            attention.push(format!(
                "the checks did not fail within {} of the break: the alerts would not fire",
                secs(self.detect_within)
            ));
        }
        // Recover, with the rollback itself.
        let recover = Instant::now();
        let report: Option<Report> = if attention.is_empty() {
            let b = self.rollback.clone().reason(format!(
                "rollback drill on {}: {}",
                self.environment,
                detected_by.as_deref().unwrap_or("")
            ));
            match b.build() {
                Ok(tx) => match tx.run().await {
                    Ok(r) => Some(r),
                    Err(e) => {
                        attention.push(format!("the rollback was refused: {e}"));
                        None
                    }
                },
                Err(e) => {
                    attention.push(format!("the rollback could not be built: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let recovered = report
            .as_ref()
            .is_some_and(|r| r.outcome == Outcome::Succeeded);
        let time_to_recover = recovered.then(|| recover.elapsed());
        if let Some(r) = &report {
            attention.extend(r.needs_attention.iter().map(|a| a.to_string()));
            if !recovered {
                attention.push(format!("the rollback ended {}", r.outcome));
            }
        }
        // Restore what is not where it was found.
        let mut out = Vec::new();
        // The rollback's own settings (leases, journal), none of its checks or actions.
        let mut restore = self.rollback.clone();
        restore.name = format!("drill-restore:{}", self.rollback.name());
        restore.reason = Some(format!(
            "rollback drill on {}: leave as found",
            self.environment
        ));
        restore.stages = vec![Vec::new()];
        restore.checks.clear();
        restore.on_failure.clear();
        restore.on_success.clear();
        restore.notifiers.clear();
        let mut to_restore = 0;
        for (i, t) in targets.iter().enumerate() {
            let step = report
                .as_ref()
                .and_then(|r| r.steps.iter().find(|s| s.target == t.id()));
            let rolled_back_to = step.and_then(|s| s.to.clone());
            let now = t.current().await.ok();
            if !now.as_ref().is_some_and(|n| n.same_as(&found[i])) {
                to_restore += 1;
                restore = restore.step(
                    Step::new(t.clone(), Selector::Exact(found[i].id.clone())).allow_current(),
                );
            }
            out.push(DrillTarget {
                target: t.id(),
                found: found[i].clone(),
                broken_to: broken[i].clone(),
                rolled_back_to,
                left_at: now,
                restored: false,
                rollback_time: step.map_or(Duration::ZERO, |s| s.duration),
            });
        }
        if to_restore > 0 {
            match restore.build() {
                Ok(tx) => match tx.run().await {
                    Ok(r) if r.outcome == Outcome::Succeeded => {}
                    Ok(r) => {
                        attention.push(format!("putting the targets back ended {}", r.outcome))
                    }
                    Err(e) => attention.push(format!("the targets could not be put back: {e}")),
                },
                Err(e) => attention.push(format!("the targets could not be put back: {e}")),
            }
        }
        for (i, t) in targets.iter().enumerate() {
            let now = t.current().await.ok();
            out[i].restored = now.as_ref().is_some_and(|n| n.same_as(&found[i]));
            if !out[i].restored {
                attention.push(format!(
                    "{} was left at {}, not where the drill found it ({}): put it back by hand",
                    t.id(),
                    now.as_ref()
                        .map_or("an unknown revision".into(), |n| n.id.clone()),
                    found[i].id
                ));
            }
            out[i].left_at = now;
        }
        let in_time = time_to_recover.is_some_and(|t| t <= self.recover_within);
        if recovered && !in_time {
            attention.push(format!(
                "the rollback took {}, over the {} target",
                time_to_recover.map_or_else(String::new, secs),
                secs(self.recover_within)
            ));
        }
        let passed = detected_by.is_some() && in_time && out.iter().all(|t| t.restored);
        let mut seen = BTreeMap::new();
        attention.retain(|a| seen.insert(a.clone(), ()).is_none());
        Ok(DrillReport {
            name: self.rollback.name().to_string(),
            environment: self.environment.clone(),
            started_at,
            passed,
            detected_by,
            time_to_detect,
            time_to_recover,
            recover_within: self.recover_within,
            transaction: report.as_ref().map(|r| r.transaction.clone()),
            outcome: report.as_ref().map(|r| r.outcome),
            targets: out,
            needs_attention: attention,
            duration: clock.elapsed(),
        })
    }
}

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::{FakeTarget, FileLocks, Transaction};

    fn setup(healthy_3: bool) -> (tempfile::TempDir, FakeTarget, Drill) {
        let dir = tempfile::tempdir().unwrap();
        let t = FakeTarget::builder("web")
            .revision(Revision::new("1"))
            .revision(Revision::new("2"))
            .revision(Revision::new("3"))
            .current("2")
            .build()
            .unwrap();
        t.set_healthy("3", healthy_3);
        let b = Transaction::builder("web-rollback")
            .journal(dir.path().join("journal.jsonl"))
            .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
            .step(Step::new(Arc::new(t.clone()), Selector::Previous))
            .verify(Check::new(t.health_check()).policy(Policy::once()));
        let d = Drill::new("staging", b)
            .probe_interval(Duration::from_millis(5))
            .detect_within(Duration::from_millis(200));
        (dir, t, d)
    }

    #[tokio::test]
    async fn a_drill_breaks_to_the_newest_detects_recovers_and_restores() {
        let (_dir, t, d) = setup(false);
        let r = d.run().await.unwrap();
        assert!(r.passed, "{r:#?}");
        assert!(r.detected_by.is_some() && r.time_to_detect.is_some());
        assert_eq!(r.outcome, Some(Outcome::Succeeded));
        assert_eq!(r.targets[0].broken_to.id, "3");
        assert_eq!(t.current_id(), "2");
        assert_eq!(
            t.applied(),
            [("2".into(), "3".into()), ("3".into(), "2".into())]
        );
        let md = r.markdown(std::slice::from_ref(&r));
        assert!(md.contains("(passed)") && md.contains("## Trend"), "{md}");
    }

    #[tokio::test]
    async fn checks_that_never_notice_fail_the_drill_and_the_target_is_put_back() {
        let (_dir, t, d) = setup(true);
        let r = d.run().await.unwrap();
        assert!(!r.passed);
        assert_eq!((r.detected_by.as_ref(), r.outcome), (None, None));
        assert!(
            r.needs_attention[0].contains("the alerts would not fire"),
            "{r:#?}"
        );
        // No rollback ran; the drill's own restore put it back.
        assert_eq!(t.current_id(), "2");
        assert!(r.targets[0].restored);
    }

    #[tokio::test]
    async fn a_drill_without_checks_is_refused_before_anything_changes() {
        let t = FakeTarget::builder("web")
            .revision(Revision::new("1"))
            .revision(Revision::new("2"))
            .build()
            .unwrap();
        let b = Transaction::builder("x").step(Step::new(Arc::new(t.clone()), Selector::Previous));
        let e = Drill::new("staging", b).run().await.unwrap_err();
        assert!(e.to_string().contains("no checks"), "{e}");
        assert_eq!(t.apply_count(), 0);
    }

    #[test]
    fn history_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d/h.jsonl");
        assert!(DrillReport::history(&path).unwrap().is_empty());
        let r = DrillReport {
            name: "n".into(),
            environment: "staging".into(),
            started_at: Utc::now(),
            passed: true,
            detected_by: Some("c".into()),
            time_to_detect: Some(Duration::from_millis(1500)),
            time_to_recover: None,
            recover_within: Duration::from_secs(300),
            transaction: None,
            outcome: None,
            targets: Vec::new(),
            needs_attention: Vec::new(),
            duration: Duration::from_secs(2),
        };
        r.append(&path).unwrap();
        r.append(&path).unwrap();
        assert_eq!(
            DrillReport::history(&path).unwrap(),
            vec![r.clone(), r.clone()]
        );
        // What is not a regular file is refused, as a journal path is.
        let e = r.append(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("not a regular file") || e.to_string().contains("directory"),
            "{e}"
        );
    }
}
