//! What people read: the plan, progress lines.

use std::fmt::Write as _;

use rollback_core::{Event, Report, StepStatus, TransactionBuilder};

/// The checks that will run, per step (in step order) and for the transaction.
pub(crate) struct CheckNames {
    steps: Vec<Vec<String>>,
    transaction: Vec<String>,
}

pub(crate) fn check_names(b: &TransactionBuilder) -> CheckNames {
    let names = |checks: &[rollback_core::verify::Check]| -> Vec<String> {
        checks.iter().map(|c| c.verifier.name()).collect()
    };
    CheckNames {
        steps: b.stages().flatten().map(|s| names(s.checks())).collect(),
        transaction: names(b.checks()),
    }
}

/// The plan as people review it: stage by stage, each target from -> to with where the
/// choice came from, the diff (secret values are never in it), the checks.
pub(crate) fn plan(plan: &Report, checks: &CheckNames) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Plan: {}", plan.name);
    if let Some(r) = &plan.reason {
        let _ = writeln!(s, "  why: {r}");
    }
    let mut stage = usize::MAX;
    for step in &plan.steps {
        if step.stage != stage {
            stage = step.stage;
            let _ = writeln!(s, "  stage {}:", stage + 1);
        }
        let id = |r: &Option<rollback_core::Revision>| {
            r.as_ref().map_or("?".to_string(), |r| r.id.clone())
        };
        let what = match step.status {
            StepStatus::Planned => format!("{} -> {}", id(&step.from), id(&step.to)),
            StepStatus::Skipped => format!("already at {}: nothing to do", id(&step.from)),
            other => format!("{other}"),
        };
        let _ = writeln!(s, "    {}: {what}", step.target);
        if let Some(origin) = &step.origin {
            let _ = writeln!(s, "      chosen as {origin}");
        }
        for line in step.diff.to_string().lines() {
            let _ = writeln!(s, "    {line}");
        }
        for c in checks.steps.get(step.step).into_iter().flatten() {
            let _ = writeln!(s, "      then check: {c}");
        }
    }
    for c in &checks.transaction {
        let _ = writeln!(s, "  after every stage, check: {c}");
    }
    let planned = plan
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Planned)
        .count();
    let _ = writeln!(
        s,
        "{planned} change(s) planned, {} target(s) already there.",
        plan.steps.len() - planned
    );
    s
}

/// A progress line for a log: time, what happened, where.
pub(crate) fn event_line(e: &Event) -> String {
    let at = e.at.format("%H:%M:%S%.3f");
    match &e.target {
        Some(t) => format!("{at} {:<12} {t}: {}", e.kind.to_string(), e.message),
        None => format!("{at} {:<12} {}", e.kind.to_string(), e.message),
    }
}
