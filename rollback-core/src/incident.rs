//! The incident report a finished run leaves behind (runbook 004's post-incident steps):
//! what happened, why rollback was needed (the run's reason), who ran it, the timeline
//! from the journal, each target's revisions and diff, the checks with their evidence, the
//! time to recover, what needs a person, and empty "Root cause" and "Action items"
//! sections to fill in. Built from the journal alone, so it is the same on any machine
//! that has the journal; secret values are never in a journal, so never in the report.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::journal::{read_journal, Entry, Record};
use crate::transaction::{report_from_journal, Report};

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// When the journal recorded it.
    pub at: DateTime<Utc>,
    /// The record (`intent`, `applied`, `stable`, `checked`, `compensated`...).
    pub what: String,
    /// The target, when about a step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A finished run's incident report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentReport {
    /// The run's report, rebuilt from its journal.
    pub report: Report,
    /// Who ran it.
    pub who: String,
    /// Every journal record, in order.
    pub timeline: Vec<TimelineEntry>,
}

/// The incident report of the finished run in `journal`; an unfinished run is an error
/// saying to resume it first.
pub fn incident_report(journal: impl AsRef<Path>) -> Result<IncidentReport> {
    let path = journal.as_ref();
    let report = report_from_journal(path)?;
    let records: Vec<Record> = read_journal(path)?
        .into_iter()
        .filter(|r| r.transaction == report.transaction)
        .collect();
    let mut who = String::new();
    let mut targets = Vec::new();
    for r in &records {
        if let Entry::Begin { holder, steps, .. } = &r.entry {
            who = holder.name.clone();
            targets = steps.iter().map(|s| s.target.to_string()).collect();
        }
    }
    let timeline = records
        .iter()
        .map(|r| {
            let v = serde_json::to_value(&r.entry).unwrap_or_default();
            let what = v["record"].as_str().unwrap_or("record").to_string();
            let target = v["step"]
                .as_u64()
                .and_then(|i| targets.get(i as usize).cloned());
            TimelineEntry {
                at: r.at,
                what,
                target,
            }
        })
        .collect();
    Ok(IncidentReport {
        report,
        who,
        timeline,
    })
}

impl IncidentReport {
    /// The report as Markdown, for the incident ticket or the post-mortem.
    pub fn markdown(&self) -> String {
        let r = &self.report;
        let mut s = String::new();
        let _ = writeln!(s, "# Incident report: {}\n", r.name);
        let _ = writeln!(s, "| | |\n| --- | --- |");
        let _ = writeln!(s, "| Transaction | `{}` |", r.transaction);
        let _ = writeln!(s, "| Outcome | **{}** |", r.outcome);
        let _ = writeln!(s, "| Run by | {} |", self.who);
        let _ = writeln!(
            s,
            "| Started | {} |",
            r.started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let _ = writeln!(s, "| Time to recover | {:.1?} |", r.duration);
        let _ = writeln!(s, "| Journal | `{}` |\n", r.journal_path.display());
        let _ = writeln!(s, "## What happened\n");
        let _ = writeln!(s, "Detected: _(when and how the problem was noticed)_\n");
        let _ = writeln!(s, "## Why rollback was needed\n");
        let _ = writeln!(
            s,
            "{}\n",
            r.reason.as_deref().unwrap_or("_(no reason was given)_")
        );
        let _ = writeln!(s, "## What was rolled back\n");
        for step in &r.steps {
            let id =
                |x: &Option<crate::Revision>| x.as_ref().map_or("?".to_string(), |x| x.id.clone());
            let _ = writeln!(
                s,
                "- **{}**: {} -> {} ({})",
                step.target,
                id(&step.from),
                id(&step.to),
                step.status
            );
            if let Some(o) = &step.origin {
                let _ = writeln!(s, "  - chosen as {o}");
            }
            for line in step.diff.to_string().lines() {
                let _ = writeln!(s, "  - `{}`", line.trim());
            }
            for v in &step.verdicts {
                let _ = writeln!(s, "  - check {}: {}", v.name, verdict(v));
            }
            if let Some(e) = &step.error {
                let _ = writeln!(s, "  - error: {}", e.message);
            }
        }
        if !r.checks.is_empty() {
            let _ = writeln!(s, "\n## Checks\n");
            for v in &r.checks {
                let _ = writeln!(s, "- {}: {}", v.name, verdict(v));
            }
        }
        if !r.on_success.is_empty() {
            let _ = writeln!(s, "\n## After the rollback\n");
            for a in &r.on_success {
                let mark = if a.ok { "done" } else { "FAILED" };
                let _ = writeln!(s, "- {} ({mark}): {}", a.name, a.message);
            }
        }
        if !r.needs_attention.is_empty() || r.error.is_some() {
            let _ = writeln!(s, "\n## Needs a person\n");
            if let Some(e) = &r.error {
                let _ = writeln!(s, "- {}", e.message);
            }
            for a in &r.needs_attention {
                let _ = writeln!(s, "- {a}");
            }
        }
        let _ = writeln!(s, "\n## Timeline (UTC, from the journal)\n");
        for t in &self.timeline {
            let _ = match &t.target {
                Some(target) => {
                    writeln!(s, "- {} {} {target}", t.at.format("%H:%M:%S%.3f"), t.what)
                }
                None => writeln!(s, "- {} {}", t.at.format("%H:%M:%S%.3f"), t.what),
            };
        }
        let _ = writeln!(s, "\n## Root cause\n\n_(to fill in)_\n");
        let _ = writeln!(s, "## Action items\n\n- [ ] _(to fill in)_");
        s
    }
}

fn verdict(v: &crate::verify::Verdict) -> String {
    format!(
        "{} after {} attempt(s): {}",
        if v.passed { "passed" } else { "failed" },
        v.attempts,
        v.evidence
    )
}
