//! What people read: the plan, progress lines.

use std::fmt::Write as _;

use rollback_core::{
    Event, Report, Revision, StepStatus, TargetId, TargetSpec, TransactionBuilder,
};
use serde_json::{Map, Value};

use crate::term::{outcome_tone, paint, Tone};

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
            StepStatus::Planned => paint(
                format!("{} -> {}", id(&step.from), id(&step.to)),
                Tone::Change,
                false,
            ),
            StepStatus::Skipped => paint(
                format!("already at {}: nothing to do", id(&step.from)),
                Tone::Good,
                false,
            ),
            other => paint(other, Tone::Bad, false),
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
        let _ = writeln!(s, "  after the last stage, check: {c}");
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

/// A progress line for a log (stderr): time, what happened, where.
pub(crate) fn event_line(e: &Event) -> String {
    let at = e.at.format("%H:%M:%S%.3f");
    let kind = match event_tone(e) {
        Some(tone) => paint(format!("{:<12}", e.kind.to_string()), tone, true),
        None => format!("{:<12}", e.kind.to_string()),
    };
    match &e.target {
        Some(t) => format!("{at} {kind} {t}: {}", e.message),
        None => format!("{at} {kind} {}", e.message),
    }
}

/// The colour of an event that says how something went; `None` for the steps between.
fn event_tone(e: &Event) -> Option<Tone> {
    use rollback_core::EventKind as K;
    match e.kind {
        K::Verified | K::Stable | K::CheckPassed | K::Skipped => Some(Tone::Good),
        K::Failed | K::CheckFailed => Some(Tone::Bad),
        K::Applied
        | K::Compensating
        | K::Compensated
        | K::Reverting
        | K::Reverted
        | K::Interrupted
        | K::Action => Some(Tone::Change),
        _ => None,
    }
}

/// The spec of `kind` named as its id writes the name (see `rollback history --help`).
pub(crate) fn spec_of(kind: &str, name: &str) -> Result<TargetSpec, String> {
    let split = |sep: char, a: &str, b: &str| -> Result<Map<String, Value>, String> {
        match name.split_once(sep) {
            Some((x, y)) if !x.is_empty() && !y.is_empty() => Ok(Map::from_iter([
                (a.to_string(), Value::from(x)),
                (b.to_string(), Value::from(y)),
            ])),
            _ => Err(format!("{kind} {name:?}: write the name as {a}{sep}{b}")),
        }
    };
    let params = if name.contains('=') {
        name.split(',')
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    Ok((k.trim().to_string(), Value::from(v.trim())))
                }
                _ => Err(format!("{name:?}: write parameters as key=value,key=value")),
            })
            .collect::<Result<Map<_, _>, _>>()?
    } else {
        match kind {
            "lambda-alias" => split(':', "function", "alias")?,
            "ecs-service" | "ecs-desired-count" => split('/', "cluster", "service")?,
            "pipeline-transition" => split('/', "pipeline", "stage")?,
            "secret-version" => Map::from_iter([("secret_id".to_string(), Value::from(name))]),
            // A name without its namespace takes the default one (`--namespace`), which
            // the registry fills in; without a default it must be written in.
            k if k.starts_with("k8s-")
                && !name.contains('/')
                && rollback_k8s::K8sDefaults::from_env().namespace.is_some() =>
            {
                Map::from_iter([("name".to_string(), Value::from(name))])
            }
            k if k.starts_with("k8s-") => split('/', "namespace", "name").map_err(|e| {
                format!("{e} (or give the namespace with --namespace)")
            })?,
            _ => {
                return Err(format!(
                    "{kind}: give its parameters as key=value,key=value (the names a runbook's target takes)"
                ))
            }
        }
    };
    Ok(TargetSpec {
        kind: kind.to_string(),
        params: Value::Object(params),
    })
}

/// A target's revisions as a table, newest first, the one in use marked `*`.
pub(crate) fn history(target: &TargetId, current: &Revision, revisions: &[Revision]) -> String {
    let mut rows = vec![[
        String::new(),
        "REVISION".to_string(),
        "CREATED".to_string(),
        "IMAGES".to_string(),
        "DESCRIPTION".to_string(),
    ]];
    for r in revisions {
        rows.push([
            if r.id == current.id {
                paint("*", Tone::Good, false)
            } else {
                String::new()
            },
            r.id.clone(),
            r.created_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into()),
            if r.images.is_empty() {
                "-".into()
            } else {
                r.images.join(",")
            },
            r.description.clone().unwrap_or_default(),
        ]);
    }
    format!(
        "{target} ({} revisions, * in use)\n{}",
        revisions.len(),
        table(&rows)
    )
}

/// Recent transactions as a table, newest first.
pub(crate) fn runs(
    dir: &std::path::Path,
    runs: &[rollback_core::journal::TransactionSummary],
) -> String {
    if runs.is_empty() {
        return format!("no transactions in {}\n", dir.display());
    }
    let mut rows = vec![[
        "ID".to_string(),
        "STARTED".to_string(),
        "OUTCOME".to_string(),
        "TOOK".to_string(),
        "WHO".to_string(),
        "NAME".to_string(),
        "REASON".to_string(),
    ]];
    for r in runs {
        rows.push([
            r.id.chars().take(8).collect(),
            r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            match (r.outcome, r.dry_run) {
                (_, true) => paint("dry run", Tone::Quiet, false),
                (Some(o), _) => paint(o, outcome_tone(o), false),
                (None, _) => paint("not ended", Tone::Change, false),
            },
            r.duration_ms.map_or_else(
                || "-".into(),
                |ms| format!("{:.1?}", std::time::Duration::from_millis(ms)),
            ),
            r.who.clone(),
            r.name.clone(),
            r.reason.clone().unwrap_or_default(),
        ]);
    }
    table(&rows)
}

/// Rows as columns, the last one unpadded; cells may be coloured (their escapes take no
/// room).
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let width = |cell: &str| console::measure_text_width(cell);
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| width(&r[i])).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 < N {
                let pad = widths[i].saturating_sub(width(cell));
                let _ = write!(line, "{cell}{:pad$}  ", "");
            } else {
                line.push_str(cell);
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// Live progress on a terminal: a spinner line per step with the backend's own words
/// (kubectl's rollout messages, ECS task counts) and its elapsed time, a bar per stage,
/// and the transaction's own events printed above them.
#[derive(Clone)]
pub(crate) struct Live {
    bars: indicatif::MultiProgress,
    steps: Vec<indicatif::ProgressBar>,
    stage_of: Vec<usize>,
    stages: Vec<indicatif::ProgressBar>,
}

impl Live {
    pub(crate) fn new(b: &TransactionBuilder) -> Live {
        use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let step_style =
            ProgressStyle::with_template("    {spinner} {prefix}: {wide_msg} {elapsed:>4}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let stage_style =
            ProgressStyle::with_template("  {prefix} [{bar:24}] {pos}/{len} step(s) {elapsed:>4}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let (mut steps, mut stage_of, mut stages) = (Vec::new(), Vec::new(), Vec::new());
        for (i, stage) in b.stages().enumerate() {
            let bar = bars.add(ProgressBar::new(stage.len() as u64));
            bar.set_style(stage_style.clone());
            bar.set_prefix(format!("stage {}", i + 1));
            stages.push(bar);
            for step in stage {
                let s = bars.add(ProgressBar::new_spinner());
                s.set_style(step_style.clone());
                s.set_prefix(step.target().id().to_string());
                s.set_message("waiting for its stage");
                steps.push(s);
                stage_of.push(i);
            }
        }
        Live {
            bars,
            steps,
            stage_of,
            stages,
        }
    }

    pub(crate) fn event(&self, e: &Event) {
        use rollback_core::EventKind as K;
        let Some(i) = e.step.filter(|&i| i < self.steps.len()) else {
            let _ = self.bars.println(event_line(e));
            return;
        };
        let bar = &self.steps[i];
        match e.kind {
            K::StepStarted | K::Applied | K::Waiting | K::Retrying | K::Stable => {
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar.set_message(e.message.clone());
            }
            K::CheckPassed => bar.set_message(e.message.clone()),
            K::Verified | K::Skipped | K::Reverted => self.finish(
                i,
                format!("{}: {}", paint("ok", Tone::Good, true), e.message),
            ),
            K::Failed | K::CheckFailed => self.finish(
                i,
                format!("{}: {}", paint("FAILED", Tone::Bad, true), e.message),
            ),
            K::Compensating | K::Reverting => {
                bar.reset_elapsed();
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar.set_message(e.message.clone());
            }
            K::Compensated => bar.finish_with_message(format!(
                "{}: {}",
                paint("put back", Tone::Change, true),
                e.message
            )),
            _ => bar.set_message(e.message.clone()),
        }
    }

    /// Step `i` is done: its line keeps `message`, its stage counts it (once).
    fn finish(&self, i: usize, message: String) {
        let bar = &self.steps[i];
        if !bar.is_finished() {
            self.stages[self.stage_of[i]].inc(1);
        }
        bar.finish_with_message(message);
    }

    /// Stops every spinner (the lines stay on the screen).
    pub(crate) fn done(&self) {
        for b in self.steps.iter().chain(&self.stages) {
            if !b.is_finished() {
                b.abandon();
            }
        }
    }
}

/// The runbook-file reference, from the JSON Schema: the file's keys, then each part's.
pub(crate) fn reference(schema: &Value) -> String {
    let mut s = String::from(
        "# Runbook files: reference\n\nGenerated from the JSON Schema (`rollback schema`, \
         shipped as `runbook.schema.json`) by `rollback schema --format markdown`; \
         `rollback lint FILE` checks a file against it and against the kinds.\n",
    );
    let mut part = |name: &str, def: &Value| {
        let _ = write!(s, "\n## {name}\n\n");
        if let Some(d) = def["description"].as_str() {
            let _ = writeln!(s, "{}\n", d.replace('\n', " "));
        }
        if let Some(variants) = def["oneOf"].as_array() {
            for v in variants {
                let what = v["const"]
                    .as_str()
                    .map(|c| format!("`{c}`"))
                    .or_else(|| {
                        v["enum"].as_array().map(|e| {
                            e.iter()
                                .map(|x| format!("`{}`", x.as_str().unwrap_or("")))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                    })
                    .or_else(|| {
                        v["properties"]
                            .as_object()
                            .and_then(|p| p.keys().next().map(|k| format!("`{{{k}: ...}}`")))
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "- {what}: {}",
                    v["description"].as_str().unwrap_or("").replace('\n', " ")
                );
            }
        }
        let Some(props) = def["properties"].as_object() else {
            return;
        };
        let required: Vec<&str> = def["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let _ = writeln!(s, "| key | | what |\n| --- | --- | --- |");
        for (k, p) in props {
            let refs: Vec<String> = std::iter::once(p)
                .chain(p["anyOf"].as_array().into_iter().flatten())
                .chain(std::iter::once(&p["items"]))
                .filter_map(|x| x["$ref"].as_str())
                .map(|r| {
                    format!(
                        "[{0}](#{1})",
                        r.trim_start_matches("#/$defs/"),
                        r.trim_start_matches("#/$defs/").to_lowercase()
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "| `{k}` | {}{} | {} |",
                if required.contains(&k.as_str()) {
                    "required"
                } else {
                    ""
                },
                if refs.is_empty() {
                    String::new()
                } else {
                    format!(" {}", refs.join(", "))
                },
                p["description"].as_str().unwrap_or("").replace('\n', " ")
            );
        }
    };
    part("The file", schema);
    if let Some(defs) = schema["$defs"].as_object() {
        for (name, def) in defs {
            part(name, def);
        }
    }
    s
}
