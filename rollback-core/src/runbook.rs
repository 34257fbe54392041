//! Runbook files: a transaction as data, reviewed before it acts (feature `runbook`).
//!
//! A runbook file is YAML (JSON is YAML too) naming what a rollback does: its targets as
//! [`TargetSpec`]s (the kind and its parameters, as a journal records them), the revision
//! each goes to, the checks that prove it worked, stages, the failure policy and where
//! leases and the journal live. Loading one is library API: [`Runbook::load`] parses and
//! checks it offline (every problem with its line and column), [`Runbook::build`] turns it
//! into a [`TransactionBuilder`] with the kinds a [`Registry`] knows (each backend crate
//! registers its own, as for resume), and the `rollback` command line is a thin shell over
//! these.
//!
//! ```yaml
//! name: lambda-rollback-${ENV}
//! reason: release 42 returns 5xx        # or --reason on the command line
//! policy: compensate                    # or halt
//! steps:                                # one stage; `stages: [{steps: [...]}, ...]` for more
//!   - target: {kind: lambda-alias, function: "agentcore-mcp-s3-tools-${ENV}", alias: live}
//!     to: previous                      # exact: 14 | steps_back: 2 | image_tag: abc | last_known_good
//!     timeout: 5m
//!     verify:
//!       - http: {url: "https://api.example.com/health", status: 200}
//!         policy: {attempts: 10, interval: 3s}
//! verify:                               # the transaction's checks, once, after the last stage
//!   - check: {kind: cloudwatch-alarms, prefix: "api-"}
//! ```
//!
//! Variables: `${NAME}` is replaced, before the file is parsed, by the value given
//! ([`Vars`]: `--var NAME=value` on the command line) or else the environment's. A
//! variable that is unset is an error naming its line and column, never an empty string;
//! `$${` writes a literal `${`.
//!
//! Keys a runbook does not know are errors (a misspelt `verfy:` would otherwise silently
//! drop a check), as are unknown target, check and lock kinds, target parameters the kind
//! does not take, selectors and durations that do not parse.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::error::{Error, Result};
use crate::lock::LockSpec;
use crate::selector::Selector;
use crate::target::{Registry, TargetSpec};
use crate::transaction::{FailurePolicy, Step, Transaction, TransactionBuilder};
use crate::verify::{Check, Policy, Verifier};

/// Variables for `${NAME}`: given values first, then (unless turned off) the environment.
#[derive(Debug, Clone)]
pub struct Vars {
    given: BTreeMap<String, String>,
    environment: bool,
}

impl Default for Vars {
    fn default() -> Self {
        Vars {
            given: BTreeMap::new(),
            environment: true,
        }
    }
}

impl Vars {
    /// The environment's variables only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` (it wins over the environment).
    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.given.insert(name.into(), value.into());
        self
    }

    /// Parses `NAME=value` (as `--var` takes it).
    pub fn parse_assignment(self, text: &str) -> Result<Self> {
        match text.split_once('=') {
            Some((k, v)) if valid_name(k) => Ok(self.set(k, v)),
            _ => Err(Error::invalid(
                "runbook",
                format!("--var {text:?} is not NAME=value (NAME: letters, digits and _)"),
            )),
        }
    }

    /// Only the given values: the environment is not read.
    pub fn without_environment(mut self) -> Self {
        self.environment = false;
        self
    }

    fn get(&self, name: &str) -> Option<String> {
        self.given
            .get(name)
            .cloned()
            .or_else(|| self.environment.then(|| std::env::var(name).ok()).flatten())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// One problem in a runbook file, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line (0: the file as a whole).
    pub line: u64,
    /// 1-based column (0: the line as a whole).
    pub column: u64,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}", self.message),
            (l, 0) => write!(f, "{l}: {}", self.message),
            (l, c) => write!(f, "{l}:{c}: {}", self.message),
        }
    }
}

/// The problems of a runbook file, all of them (lint shows every one, not the first).
#[derive(Debug, Clone)]
pub struct Problems {
    /// The file.
    pub file: String,
    /// Each problem, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{p}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl Problems {
    fn into_error(self) -> Error {
        let n = self.problems.len();
        let first = self.to_string();
        Error::InvalidInput {
            target: "runbook".into(),
            message: if n == 1 {
                format!("{first}; fix it and run `rollback lint` again")
            } else {
                format!("{n} problems; fix them and run `rollback lint` again:\n{first}")
            },
            source: Some(Box::new(self)),
        }
    }
}

/// A runbook file: a rollback transaction as data (`rollback lint` checks it offline).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "rollback runbook")]
struct File {
    /// What is being rolled back (the transaction's name, in journals and reports).
    #[schemars(with = "String")]
    name: Spanned<String>,
    /// Why (a run needs one: here or `--reason`).
    #[serde(default)]
    reason: Option<String>,
    /// On failure: `compensate` (put applied targets back, the default) or `halt` (leave
    /// them for a person).
    #[serde(default)]
    #[schemars(with = "Option<PolicyName>")]
    policy: Option<Spanned<String>>,
    /// Steps of a stage run at most this many at once (default 16).
    #[serde(default)]
    #[schemars(with = "Option<usize>", range(min = 1))]
    concurrency: Option<Spanned<usize>>,
    /// The journal file, relative to the runbook (default: `$ROLLBACK_JOURNAL_DIR` or
    /// `.rollback/journal`).
    #[serde(default)]
    journal: Option<PathBuf>,
    /// Where leases are kept: `{kind: file, dir: ...}` (one machine, the default),
    /// `{kind: dynamodb, table: ...}`, `{kind: kubernetes-lease, namespace: ...}`.
    #[serde(default)]
    #[schemars(with = "Option<KindAndParams>")]
    locks: Option<Spanned<BTreeMap<String, Value>>>,
    /// Where the journal is also kept, for the team (read by `rollback list --journal-store`
    /// and resumed from another machine): `{kind: s3, bucket: ..., prefix: ...}`. The local
    /// journal file is written as well.
    #[serde(default)]
    #[schemars(with = "Option<KindAndParams>")]
    journal_store: Option<Spanned<BTreeMap<String, Value>>>,
    /// Where a successful run records what it verified, for `to: last_known_good`:
    /// `{kind: file, dir: ...}` (one machine, the default: `$ROLLBACK_KNOWN_GOOD_DIR`),
    /// `{kind: dynamodb, table: ...}`, `{kind: s3, bucket: ..., prefix: ...}`.
    #[serde(default)]
    #[schemars(with = "Option<KindAndParams>")]
    known_good: Option<Spanned<BTreeMap<String, Value>>>,
    /// Lease time to live (`60s`, `5m`).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    lease_ttl: Option<Spanned<String>>,
    /// The steps of one stage (or give `stages`).
    #[serde(default)]
    steps: Vec<StepEntry>,
    /// Stages, run one after another; the steps of a stage run at once.
    #[serde(default)]
    stages: Vec<StageEntry>,
    /// The transaction's own checks, run once after the last stage.
    #[serde(default)]
    verify: Vec<CheckEntry>,
    /// Who is told when the run starts and when it ends: `[{webhook: {url, format}}]`. A
    /// notification that fails is reported and never fails the run.
    #[serde(default)]
    notify: Vec<NotifyEntry>,
    /// Done after the run succeeded (every step verified, the checks passed), in order:
    /// `[{cloudfront_invalidation: {distribution: E2QWRUHAPOMQZL, paths: ["/*"]}}]`. Each is
    /// journaled, so a resume does not do it again; one that fails is reported as needing a
    /// person and never fails the run.
    #[serde(default)]
    on_success: Vec<ActionEntry>,
    /// Done after the run failed, whatever the policy (a maintenance page, scale to zero),
    /// in order; the same kinds as `on_success`.
    #[serde(default)]
    on_failure: Vec<ActionEntry>,
    /// What `rollback watch` watches, and how it decides to run this runbook (runbook
    /// 004's decision tree): `{source: {kind: prometheus, url: ...}, error_rate: QUERY,
    /// p95_latency_seconds: QUERY}`.
    #[serde(default)]
    #[schemars(with = "Option<WatchEntry>")]
    watch: Option<Spanned<WatchEntry>>,
    /// Marks the runbook as one to practise on a drill environment (`rollback drill`
    /// refuses a runbook without it, and one whose environment is not the one named on
    /// its command line): `{environment: staging, recover_within: 5m}`.
    #[serde(default)]
    #[schemars(with = "Option<DrillEntry>")]
    drill: Option<Spanned<DrillEntry>>,
}

/// A drill: where, what to break to, how long detection and recovery may take.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DrillEntry {
    /// The drill environment's name (`staging`): `rollback drill --environment` must name
    /// it too.
    environment: String,
    /// What each target is broken to: `newest` (the newest revision not in use, the
    /// default) or a selector (`previous`, `{exact: ID}`, `{image_tag: TAG}`...).
    #[serde(default)]
    #[schemars(with = "Option<SelectorText>")]
    break_to: Option<Value>,
    /// How long the checks have to notice the break (default 5m).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    detect_within: Option<String>,
    /// The target for the time to recover (default 5m, runbook 004's).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    recover_within: Option<String>,
    /// Time between probes of the checks while detecting (default 2s).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    probe_interval: Option<String>,
    /// The drill history (JSON lines), relative to the runbook (default:
    /// `.rollback/drills/NAME.jsonl`).
    #[serde(default)]
    history: Option<PathBuf>,
}

impl DrillEntry {
    fn build(
        &self,
        place: (u64, u64),
        dir: &Path,
        rollback: TransactionBuilder,
        lint: &mut Lint,
    ) -> Option<crate::drill::Drill> {
        use crate::drill::{BreakTo, Drill};
        if self.environment.trim().is_empty() {
            lint.add(
                place,
                "the drill needs an environment: the name of the drill environment (staging)",
            );
            return None;
        }
        let break_to = match &self.break_to {
            None => Some(BreakTo::Newest),
            Some(Value::String(s)) if s == "newest" => Some(BreakTo::Newest),
            Some(v) => selector_of(v)
                .map(BreakTo::Selector)
                .map_err(|e| lint.add(place, format!("drill break_to: {e}, or newest")))
                .ok(),
        };
        let detect = lint.duration_in(place, &self.detect_within);
        let recover = lint.duration_in(place, &self.recover_within);
        let probe = lint.duration_in(place, &self.probe_interval);
        let mut d = Drill::new(self.environment.trim(), rollback).break_to(break_to?);
        if let Some(t) = detect {
            d = d.detect_within(t);
        }
        if let Some(t) = recover {
            d = d.recover_within(t);
        }
        if let Some(t) = probe {
            d = d.probe_interval(t);
        }
        if let Some(h) = &self.history {
            d = d.history(dir.join(h));
        }
        if let Err(e) = d.validate() {
            lint.add(place, e.to_string());
            return None;
        }
        Some(d)
    }
}

/// The watch: a metric source, the decision's queries, thresholds and pacing.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WatchEntry {
    /// Where the series come from: `{kind: prometheus, url: http://prometheus:9090,
    /// bearer_token_env: PROM_TOKEN}`, `{kind: cloudwatch, region: ...}`.
    #[schemars(with = "KindAndParams")]
    source: BTreeMap<String, Value>,
    /// The error rate as a fraction (0.05 is 5 %), in the source's language.
    error_rate: String,
    /// The p95 latency in seconds.
    p95_latency_seconds: String,
    /// The SLO burn rate (1: the budget is used up exactly at the period's end); optional.
    #[serde(default)]
    slo_burn_rate: Option<String>,
    /// The range queries' step (default 30s).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    step: Option<String>,
    /// The decision's thresholds (default: runbook 004's "When to Rollback").
    #[serde(default)]
    thresholds: Option<ThresholdsEntry>,
    /// Time between decisions (default 30s).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    interval: Option<String>,
    /// After a rollback, none for this long (default 30m).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    cooldown: Option<String>,
    /// When the source fails or a signal has no data: `hold` (do nothing, the default) or
    /// `act` (as if a rollback were called for).
    #[serde(default)]
    #[schemars(with = "Option<NoDataName>")]
    no_data: Option<String>,
    /// The decision log (JSON lines), relative to the runbook (default: `rollback watch
    /// --log`, else `.rollback/watch/NAME.jsonl`).
    #[serde(default)]
    log: Option<PathBuf>,
}

/// Runbook 004's thresholds.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ThresholdsEntry {
    /// Roll back now when the error rate stays above this fraction (default 0.05).
    #[serde(default)]
    error_rate_above: Option<f64>,
    /// Roll back now when p95 latency stays above this (default 2s).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    latency_p95_above: Option<String>,
    /// How long a breach must last (default 5m).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    sustained_for: Option<String>,
    /// The SLO is at risk when the burn rate stays above this (default 1).
    #[serde(default)]
    slo_burn_rate_above: Option<f64>,
    /// How soon to roll back when the SLO is at risk (default 10m).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    rollback_within: Option<String>,
}

/// `hold` or `act`.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // the schema's
enum NoDataName {
    /// Do nothing; an open incident stays open.
    Hold,
    /// Act as if a rollback were called for.
    Act,
}

/// One action after the run: `cloudfront_invalidation` or a backend's `action`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ActionEntry {
    /// A CloudFront invalidation, waited for until Completed (needs rollback-aws's kinds):
    /// the cache invalidation after a rollback (runbook 002).
    #[serde(default)]
    #[schemars(with = "Option<InvalidationEntry>")]
    cloudfront_invalidation: Option<Spanned<InvalidationEntry>>,
    /// A backend's action: `{kind: cloudfront-invalidation, distribution: ..., paths: [...]}`.
    #[serde(default)]
    #[schemars(with = "Option<KindAndParams>")]
    action: Option<Spanned<BTreeMap<String, Value>>>,
}

/// A CloudFront invalidation.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct InvalidationEntry {
    /// The distribution's id (`E2QWRUHAPOMQZL`, not its domain name).
    distribution: String,
    /// The paths, each from the root: `/*`, `/index.html`, `/assets/*` (at most 3000, 15
    /// of them wildcards).
    #[schemars(length(min = 1, max = 3000))]
    paths: Vec<String>,
    /// How long it is waited for (default 20m).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    timeout: Option<String>,
    /// AWS settings, as a target's (`{region, endpoint_url, profile}`; default: the
    /// environment's).
    #[serde(default)]
    aws: Option<BTreeMap<String, Value>>,
}

/// One notifier.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NotifyEntry {
    /// A webhook: Slack's incoming webhook (`format: slack`, the default: `{"text": ...}`)
    /// or anything that takes the notice as JSON (`format: json`).
    #[schemars(with = "WebhookEntry")]
    webhook: Spanned<WebhookEntry>,
}

/// A webhook notifier.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
struct WebhookEntry {
    /// The http(s) URL to post to (keep Slack's in a variable: `${SLACK_WEBHOOK}`).
    url: String,
    /// `slack` (default) or `json`.
    #[serde(default)]
    format: Option<String>,
    /// How long a post may take (default 10s).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    timeout: Option<String>,
}

/// `compensate` or `halt`.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // the schema's
enum PolicyName {
    /// Put applied targets back, in reverse order.
    Compensate,
    /// Leave everything for a person.
    Halt,
}

/// A duration: `500ms`, `30s`, `5m`, `1h`, `1h30m`, or a number of seconds.
#[derive(JsonSchema)]
#[schemars(transparent)]
#[allow(dead_code)] // the schema's
struct DurationText(
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$|^[0-9]+(\.[0-9]+)?$"))] String,
);

/// A kind and its parameters: `{kind: ecs-service, cluster: prod, service: api}`.
#[derive(JsonSchema)]
#[allow(dead_code)] // the schema's
struct KindAndParams {
    /// The kind.
    kind: String,
    #[serde(flatten)]
    params: BTreeMap<String, Value>,
}

/// A stage: steps run at once.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StageEntry {
    /// A label for whoever reads the file.
    #[serde(default)]
    #[allow(dead_code)] // a label for the reader of the file
    name: Option<String>,
    /// The stage's steps.
    steps: Vec<StepEntry>,
}

/// One target moved to one revision, then checked.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StepEntry {
    /// The target: its kind and the kind's parameters (`{kind: lambda-alias, function:
    /// f, alias: live}`).
    #[schemars(with = "KindAndParams")]
    target: Spanned<BTreeMap<String, Value>>,
    /// The revision: `previous` (the default), `last_known_good`, `{exact: ID}`,
    /// `{steps_back: N}`, `{image_tag: TAG}`.
    #[serde(default)]
    #[schemars(with = "Option<SelectorText>")]
    to: Option<Spanned<Value>>,
    /// Put back once every stage is done (a freeze, services stopped during a restore).
    #[serde(default)]
    temporary: bool,
    /// A target already at the revision is skipped instead of refused.
    #[serde(default)]
    allow_current: bool,
    /// How long to wait for the target to be stable (default 10m).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    timeout: Option<Spanned<String>>,
    /// Checks run once the target is stable.
    #[serde(default)]
    verify: Vec<CheckEntry>,
}

/// Which revision a step moves its target to.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // the schema's
enum SelectorText {
    /// The revision before the one in use.
    Previous,
    /// The newest revision a past run verified healthy.
    LastKnownGood,
    /// A revision by its id.
    Exact(Value),
    /// N revisions before the one in use.
    StepsBack(u32),
    /// The newest revision whose images carry this tag.
    ImageTag(String),
}

/// One check: `http`, `command` or a backend's `check`, with an optional policy.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CheckEntry {
    /// An HTTP request that must answer as expected.
    #[serde(default)]
    #[schemars(with = "Option<HttpEntry>")]
    http: Option<Spanned<HttpEntry>>,
    /// A program that must exit 0.
    #[serde(default)]
    #[schemars(with = "Option<CommandEntry>")]
    command: Option<Spanned<CommandEntry>>,
    /// A backend's check: `{kind: cloudwatch-alarms, prefix: ...}`, `{kind:
    /// k8s-pods-ready, namespace: ..., deployment: ..., min: 3}`.
    #[serde(default)]
    #[schemars(with = "Option<KindAndParams>")]
    check: Option<Spanned<BTreeMap<String, Value>>>,
    /// Attempts, interval, consecutive passes, deadline.
    #[serde(default)]
    #[schemars(with = "Option<PolicyEntry>")]
    policy: Option<Spanned<PolicyEntry>>,
}

/// An HTTP check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "http"), allow(dead_code))]
struct HttpEntry {
    /// The absolute http:// or https:// URL.
    url: String,
    /// The method (default GET).
    #[serde(default)]
    method: Option<String>,
    /// The status it must answer (default 200).
    #[serde(default)]
    status: Option<u16>,
    /// Text the body must contain.
    #[serde(default)]
    body_contains: Option<String>,
    /// A JSON pointer (`/healthy`) that must exist in the body.
    #[serde(default)]
    json_pointer: Option<String>,
    /// The value at `json_pointer`.
    #[serde(default)]
    json_value: Option<Value>,
    /// The slowest answer that passes.
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    max_latency: Option<String>,
    /// How long to wait for an answer (default 10s).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    timeout: Option<String>,
    /// Request headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// A command check: passes when the program exits 0.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "process"), allow(dead_code))]
struct CommandEntry {
    /// The program and its arguments.
    argv: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// The working directory (default: where `rollback` runs).
    #[serde(default)]
    cwd: Option<PathBuf>,
    /// How long it may run (default 60s).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    timeout: Option<String>,
}

/// How a check is run.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PolicyEntry {
    /// Attempts at most (default 10).
    #[serde(default)]
    attempts: Option<u32>,
    /// Time between attempts (default 2s).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    interval: Option<String>,
    /// Consecutive passes needed (default 1).
    #[serde(default)]
    consecutive: Option<u32>,
    /// All attempts within (default 2m).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    deadline: Option<String>,
}

/// A parsed runbook file whose shape and variables are right; [`Runbook::build`] checks it
/// against the kinds and makes the transaction.
#[derive(Debug)]
pub struct Runbook {
    file: String,
    dir: PathBuf,
    body: File,
}

/// `${NAME}` replaced; unset names are problems where they are written.
fn substitute(text: &str, vars: &Vars) -> std::result::Result<String, Vec<Problem>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        let mut col = 1u64;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            col += rest[..i].chars().count() as u64;
            let after = &rest[i..];
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
                col += 3;
            } else if let Some(tail) = after.strip_prefix("${") {
                match tail.find('}') {
                    Some(end) if valid_name(&tail[..end]) => {
                        let name = &tail[..end];
                        match vars.get(name) {
                            Some(v) if v.contains('\n') => problems.push(Problem {
                                line: n as u64 + 1,
                                column: col,
                                message: format!("variable {name} holds a line break; give it on one line"),
                            }),
                            Some(v) => out.push_str(&v),
                            None => problems.push(Problem {
                                line: n as u64 + 1,
                                column: col,
                                message: format!(
                                    "variable {name} is not set; give it with --var {name}=... or in the environment"
                                ),
                            }),
                        }
                        col += end as u64 + 3;
                        rest = &tail[end + 1..];
                    }
                    _ => {
                        problems.push(Problem {
                            line: n as u64 + 1,
                            column: col,
                            message: "`${` starts no variable: write ${NAME} (letters, digits, _), or $${ for a literal ${".into(),
                        });
                        out.push_str("${");
                        rest = tail;
                        col += 2;
                    }
                }
            } else {
                out.push('$');
                rest = &after[1..];
                col += 1;
            }
        }
        out.push_str(rest);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

pub use crate::duration::parse_duration;

fn at<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

/// Collects problems while a runbook is checked.
struct Lint {
    problems: Vec<Problem>,
}

impl Lint {
    fn add(&mut self, (line, column): (u64, u64), message: impl Into<String>) {
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }

    /// `{kind: ..., params...}` as a [`LockSpec`] / [`crate::StoreSpec`]; without a kind,
    /// the problem `no_kind` says.
    fn store_spec(
        &mut self,
        entry: &Spanned<BTreeMap<String, Value>>,
        no_kind: impl FnOnce() -> String,
    ) -> Option<LockSpec> {
        let mut params = entry.value.clone();
        match params.remove("kind") {
            Some(Value::String(kind)) => Some(LockSpec {
                kind,
                params: Value::Object(params.into_iter().collect()),
            }),
            _ => {
                self.add(at(entry), no_kind());
                None
            }
        }
    }

    fn duration(&mut self, s: &Spanned<String>) -> Option<Duration> {
        parse_duration(&s.value)
            .map_err(|e| self.add(at(s), e))
            .ok()
    }

    fn duration_in(&mut self, place: (u64, u64), text: &Option<String>) -> Option<Duration> {
        text.as_ref()
            .and_then(|t| parse_duration(t).map_err(|e| self.add(place, e)).ok())
    }
}

/// A selector as runbooks write it: `previous`, `last_known_good`, `{exact: 14}`,
/// `{steps_back: 2}`, `{image_tag: abc123}`.
fn selector_of(v: &Value) -> std::result::Result<Selector, String> {
    let want = "write previous, last_known_good, {exact: ID}, {steps_back: N} or {image_tag: TAG}";
    match v {
        Value::String(s) if s == "previous" => Ok(Selector::Previous),
        Value::String(s) if s == "last_known_good" => Ok(Selector::LastKnownGood),
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().ok_or_else(|| want.to_string())?;
            let text = match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            match (k.as_str(), text) {
                ("exact", Some(id)) if !id.is_empty() => Ok(Selector::Exact(id)),
                ("image_tag", Some(tag)) if !tag.is_empty() => Ok(Selector::ImageTag(tag)),
                ("steps_back", Some(n)) => match n.parse::<u32>() {
                    Ok(n) if n >= 1 => Ok(Selector::StepsBack(n)),
                    _ => Err(format!(
                        "steps_back must be a whole number of at least 1, not {n}"
                    )),
                },
                _ => Err(format!("{} is not a selector: {want}", compact(v, k))),
            }
        }
        other => Err(format!("{other} is not a selector: {want}")),
    }
}

fn compact(v: &Value, k: &str) -> String {
    format!("{{{k}: {v}}}")
}

impl Runbook {
    /// Reads and parses `path` with `vars`: every problem of shape (unknown keys, wrong
    /// types, YAML syntax) and every unset variable, with line and column.
    pub fn load(path: impl AsRef<Path>, vars: &Vars) -> Result<Runbook> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::InvalidInput {
            target: format!("runbook {}", path.display()),
            message: format!("cannot read the runbook file: {e}"),
            source: Some(Box::new(e)),
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&path.display().to_string(), &dir, &text, vars)
    }

    /// Parses runbook text; `file` names it in problems, relative paths (the journal) are
    /// taken from `dir`.
    pub fn parse(file: &str, dir: &Path, text: &str, vars: &Vars) -> Result<Runbook> {
        let problems = |problems| {
            Problems {
                file: file.to_string(),
                problems,
            }
            .into_error()
        };
        let text = substitute(text, vars).map_err(problems)?;
        let body: File = serde_saphyr::from_str(&text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let message = e.to_string();
            // The crate's message may carry its own location and a snippet: keep its
            // first line.
            let mut message = message.lines().next().unwrap_or("").trim();
            message = message.strip_prefix("error:").unwrap_or(message).trim();
            if let Some(rest) = message.strip_prefix("line ") {
                // "line 4 column 5: ..." repeats the location.
                if let Some((_, m)) = rest.split_once(": ") {
                    message = m;
                }
            }
            let message = message.to_string();
            problems(vec![Problem {
                line,
                column,
                message,
            }])
        })?;
        Ok(Runbook {
            file: file.to_string(),
            dir: dir.to_path_buf(),
            body,
        })
    }

    /// The runbook's `watch:` as a [`Watch`](crate::watch::Watch), with its source built
    /// by `registry` (offline); [`Error::InvalidInput`] with every problem when the section
    /// is wrong, or when there is none.
    pub async fn watch(&self, registry: &Registry) -> Result<crate::watch::Watch> {
        let mut lint = Lint {
            problems: Vec::new(),
        };
        let watch = match &self.body.watch {
            Some(w) => w.value.build(at(w), registry, &self.dir, &mut lint).await,
            None => {
                lint.add(
                    (0, 0),
                    "the runbook has no watch: section; add one with a source and the \
                     error_rate and p95_latency_seconds queries (see RUNBOOK.md)",
                );
                None
            }
        };
        match watch {
            Some(w) if lint.problems.is_empty() => Ok(w),
            _ => Err(Problems {
                file: self.file.clone(),
                problems: lint.problems,
            }
            .into_error()),
        }
    }

    /// The runbook's drill on the drill environment `environment`: its transaction (built
    /// by `registry`, offline) under its `drill:` settings. Refused, changing nothing, when
    /// the runbook has no `drill:` section (it is not marked for drills) or names another
    /// environment.
    pub async fn drill(
        &self,
        registry: &Registry,
        environment: &str,
    ) -> Result<crate::drill::Drill> {
        let runbook = format!("runbook {}", self.file);
        let Some(entry) = &self.body.drill else {
            return Err(Error::invalid(
                runbook,
                "is not marked for drills (it has no drill: section), so it is never run as \
                 one; add drill: {environment: NAME} to a runbook for the drill environment",
            ));
        };
        let marked = entry.value.environment.trim();
        if marked != environment.trim() {
            return Err(Error::invalid(
                runbook,
                format!(
                    "is marked for drills on {marked:?}, not {environment:?}; a drill runs \
                     only on the environment its runbook names"
                ),
            ));
        }
        let b = self.build(registry).await?;
        let mut lint = Lint {
            problems: Vec::new(),
        };
        match entry.value.build(at(entry), &self.dir, b, &mut lint) {
            Some(d) if lint.problems.is_empty() => Ok(d),
            _ => Err(Problems {
                file: self.file.clone(),
                problems: lint.problems,
            }
            .into_error()),
        }
    }

    /// The JSON Schema of runbook files (draft 2020-12), for editors and CI; target, check
    /// and lock kinds are listed from `registry`, their parameters are each kind's own.
    pub fn schema(registry: &Registry) -> Value {
        let mut schema = serde_json::to_value(schemars::schema_for!(File)).unwrap_or_default();
        let kinds = |ks: Vec<String>| Value::from(ks);
        if let Some(defs) = schema.pointer_mut("/$defs/KindAndParams/properties/kind") {
            defs["description"] = Value::from(format!(
                "The kind. Targets: {}. Checks: {}. Actions: {}.",
                registry.target_kinds().join(", "),
                registry.check_kinds().join(", "),
                registry.action_kinds().join(", ")
            ));
            defs["examples"] = kinds(registry.target_kinds());
        }
        schema
    }

    /// The transaction's name.
    pub fn name(&self) -> &str {
        &self.body.name.value
    }

    /// The reason the file gives, if any.
    pub fn reason(&self) -> Option<&str> {
        self.body.reason.as_deref()
    }

    /// Checks the runbook against `registry`'s kinds and makes its transaction, offline
    /// (targets and checks are built, nothing is called). Every problem is reported, with
    /// its line and column, in one [`Error::InvalidInput`] whose `source()` is
    /// [`Problems`].
    pub async fn build(&self, registry: &Registry) -> Result<TransactionBuilder> {
        let mut lint = Lint {
            problems: Vec::new(),
        };
        let b = self.body.build(registry, &self.dir, &mut lint).await;
        if lint.problems.is_empty() {
            if let Some(b) = b {
                return Ok(b);
            }
        }
        lint.problems.sort_by_key(|p| (p.line, p.column));
        Err(Problems {
            file: self.file.clone(),
            problems: lint.problems,
        }
        .into_error())
    }
}

impl File {
    async fn build(
        &self,
        registry: &Registry,
        dir: &Path,
        lint: &mut Lint,
    ) -> Option<TransactionBuilder> {
        let name = self.name.value.trim();
        if name.is_empty() {
            lint.add(
                at(&self.name),
                "the runbook needs a name (what is being rolled back)",
            );
        }
        let mut b = Transaction::builder(name);
        if let Some(r) = &self.reason {
            b = b.reason(r.clone());
        }
        if let Some(p) = &self.policy {
            match p.value.as_str() {
                "compensate" => b = b.policy(FailurePolicy::Compensate),
                "halt" => b = b.policy(FailurePolicy::Halt),
                other => lint.add(
                    at(p),
                    format!("policy {other:?}: write compensate (put applied targets back) or halt (leave them for a person)"),
                ),
            }
        }
        if let Some(c) = &self.concurrency {
            if c.value == 0 {
                lint.add(at(c), "concurrency must be at least 1");
            } else {
                b = b.concurrency(c.value);
            }
        }
        if let Some(j) = &self.journal {
            b = b.journal(dir.join(j));
        }
        if let Some(t) = self.lease_ttl.as_ref().and_then(|t| lint.duration(t)) {
            b = b.lease_ttl(t);
        }
        let kinds = |what: &str, known: Vec<String>| {
            format!("{what} need a kind: one of {}", known.join(", "))
        };
        if let Some(locks) = &self.locks {
            if let Some(spec) = lint.store_spec(locks, || {
                "locks need a kind: file (with dir), dynamodb (with table), kubernetes-lease (with namespace)".into()
            }) {
                match registry.build_locks(&spec).await {
                    Ok(l) => b = b.locks(l),
                    Err(e) => lint.add(at(locks), e.to_string()),
                }
            }
        }
        if let Some(js) = &self.journal_store {
            if let Some(spec) = lint.store_spec(js, || {
                kinds("journal stores", registry.journal_store_kinds())
            }) {
                match registry.build_journal_store(&spec).await {
                    Ok(store) => b = b.journal_store(store),
                    Err(e) => lint.add(at(js), e.to_string()),
                }
            }
        }
        if let Some(kg) = &self.known_good {
            if let Some(spec) = lint.store_spec(kg, || {
                kinds("known-good stores", registry.known_good_kinds())
            }) {
                match registry.build_known_good(&spec).await {
                    Ok(store) => b = b.known_good(store),
                    Err(e) => lint.add(at(kg), e.to_string()),
                }
            }
        }
        if !self.steps.is_empty() && !self.stages.is_empty() {
            lint.add(at(&self.name), "give steps (one stage) or stages, not both");
        }
        let stages: Vec<&[StepEntry]> = if self.stages.is_empty() {
            vec![&self.steps]
        } else {
            self.stages.iter().map(|s| s.steps.as_slice()).collect()
        };
        if stages.iter().all(|s| s.is_empty()) {
            lint.add(at(&self.name), "the runbook has no steps: add steps: [...]");
        }
        for (i, stage) in stages.iter().enumerate() {
            if i > 0 {
                b = b.stage();
            }
            for entry in *stage {
                if let Some(step) = entry.build(registry, lint).await {
                    b = b.step(step);
                }
            }
        }
        for c in &self.verify {
            if let Some(check) = c.build(registry, lint).await {
                b = b.verify(check);
            }
        }
        for n in &self.notify {
            if let Some(n) = webhook_of(&n.webhook, lint) {
                b = b.notify(n);
            }
        }
        for a in &self.on_success {
            if let Some(a) = a.build(registry, lint).await {
                b = b.on_success(a);
            }
        }
        for a in &self.on_failure {
            if let Some(a) = a.build(registry, lint).await {
                b = b.on_failure(a);
            }
        }
        if let Some(w) = &self.watch {
            // Checked with the rest, so `rollback lint` sees its problems too.
            let _ = w.value.build(at(w), registry, dir, lint).await;
        }
        if let Some(d) = &self.drill {
            let _ = d.value.build(at(d), dir, b.clone(), lint);
        }
        Some(b)
    }
}

impl WatchEntry {
    async fn build(
        &self,
        place: (u64, u64),
        registry: &Registry,
        dir: &Path,
        lint: &mut Lint,
    ) -> Option<crate::watch::Watch> {
        use crate::metrics::{DecisionPolicy, DecisionQueries};
        use crate::watch::{NoData, Watch};
        let mut params = self.source.clone();
        let source = match params.remove("kind") {
            Some(Value::String(kind)) => match registry
                .build_metric_source(&kind, Value::Object(params.into_iter().collect()))
                .await
            {
                Ok(s) => Some(s),
                Err(e) => {
                    lint.add(place, e.to_string());
                    None
                }
            },
            _ => {
                lint.add(
                    place,
                    format!(
                        "the watch source needs a kind: one of {}",
                        registry.metric_source_kinds().join(", ")
                    ),
                );
                None
            }
        };
        let mut queries = DecisionQueries::new(&self.error_rate, &self.p95_latency_seconds);
        if let Some(q) = &self.slo_burn_rate {
            queries = queries.slo_burn_rate(q);
        }
        if let Some(step) = lint.duration_in(place, &self.step) {
            queries = queries.step(step);
        }
        let mut policy = DecisionPolicy::default();
        if let Some(t) = &self.thresholds {
            if let Some(v) = t.error_rate_above {
                policy.error_rate_above = v;
            }
            if let Some(d) = lint.duration_in(place, &t.latency_p95_above) {
                policy.latency_p95_above_secs = d.as_secs_f64();
            }
            if let Some(d) = lint.duration_in(place, &t.sustained_for) {
                policy.sustained_for = d;
            }
            if let Some(v) = t.slo_burn_rate_above {
                policy.slo_burn_rate_above = v;
            }
            if let Some(d) = lint.duration_in(place, &t.rollback_within) {
                policy.rollback_within = d;
            }
        }
        let no_data = match self.no_data.as_deref() {
            None | Some("hold") => Some(NoData::Hold),
            Some("act") => Some(NoData::Act),
            Some(other) => {
                lint.add(
                    place,
                    format!("watch no_data {other:?}: write hold (do nothing) or act (roll back as if the metrics said so)"),
                );
                None
            }
        };
        let interval = lint.duration_in(place, &self.interval);
        let cooldown = lint.duration_in(place, &self.cooldown);
        let mut watch = Watch::new(source?, queries)
            .policy(policy)
            .no_data(no_data?);
        if let Some(i) = interval {
            watch = watch.interval(i);
        }
        if let Some(c) = cooldown {
            watch = watch.cooldown(c);
        }
        if let Some(log) = &self.log {
            watch = watch.log(dir.join(log));
        }
        if let Err(e) = watch.validate_offline() {
            lint.add(place, e.to_string());
            return None;
        }
        Some(watch)
    }
}

impl ActionEntry {
    /// The action, built by its kind's factory in `registry` (offline).
    async fn build(
        &self,
        registry: &Registry,
        lint: &mut Lint,
    ) -> Option<Arc<dyn crate::transaction::AfterAction>> {
        let (place, kind, params) = match (&self.cloudfront_invalidation, &self.action) {
            (Some(c), None) => {
                let e = &c.value;
                let mut params = serde_json::json!({
                    "distribution": e.distribution,
                    "paths": e.paths,
                });
                if let Some(t) = lint.duration_in(at(c), &e.timeout) {
                    params["timeout_ms"] = Value::from(t.as_millis() as u64);
                }
                if let Some(aws) = &e.aws {
                    params["aws"] = Value::Object(aws.clone().into_iter().collect());
                }
                (at(c), "cloudfront-invalidation".to_string(), params)
            }
            (None, Some(k)) => {
                let mut params = k.value.clone();
                match params.remove("kind") {
                    Some(Value::String(kind)) => {
                        (at(k), kind, Value::Object(params.into_iter().collect()))
                    }
                    _ => {
                        lint.add(
                            at(k),
                            format!(
                                "the action needs a kind (one of: {})",
                                registry.action_kinds().join(", ")
                            ),
                        );
                        return None;
                    }
                }
            }
            (Some(c), Some(_)) => {
                lint.add(
                    at(c),
                    "give one of cloudfront_invalidation or action per entry, not both",
                );
                return None;
            }
            (None, None) => {
                // An empty entry has no position of its own: the enclosing list reports it.
                lint.add(
                    (0, 0),
                    "an on_success/on_failure entry needs cloudfront_invalidation: {...} or action: {kind: ...}",
                );
                return None;
            }
        };
        match registry.build_action(&kind, params).await {
            Ok(a) => Some(a),
            Err(e) => {
                lint.add(place, e.to_string());
                None
            }
        }
    }
}

#[cfg(feature = "http")]
fn webhook_of(
    w: &Spanned<WebhookEntry>,
    lint: &mut Lint,
) -> Option<Arc<dyn crate::notify::Notifier>> {
    use crate::notify::{Notifier, Webhook, WebhookFormat};
    let e = &w.value;
    let mut hook = Webhook::new(e.url.clone());
    match e.format.as_deref() {
        None | Some("slack") => {}
        Some("json") => hook = hook.format(WebhookFormat::Json),
        Some(other) => {
            lint.add(
                at(w),
                format!("webhook format {other:?}: write slack or json"),
            );
            return None;
        }
    }
    if let Some(t) = lint.duration_in(at(w), &e.timeout) {
        hook = hook.timeout(t);
    }
    match hook.validate() {
        Ok(()) => Some(Arc::new(hook)),
        Err(e) => {
            lint.add(at(w), e.to_string());
            None
        }
    }
}

#[cfg(not(feature = "http"))]
fn webhook_of(
    w: &Spanned<WebhookEntry>,
    lint: &mut Lint,
) -> Option<Arc<dyn crate::notify::Notifier>> {
    lint.add(
        at(w),
        "webhook notifications need rollback-core's `http` feature",
    );
    None
}

impl StepEntry {
    async fn build(&self, registry: &Registry, lint: &mut Lint) -> Option<Step> {
        let target = target_of(&self.target, registry, lint).await;
        let selector = match &self.to {
            None => Some(Selector::Previous),
            Some(to) => selector_of(&to.value).map_err(|e| lint.add(at(to), e)).ok(),
        };
        let timeout = self.timeout.as_ref().and_then(|t| lint.duration(t));
        let mut checks = Vec::new();
        for c in &self.verify {
            checks.extend(c.build(registry, lint).await);
        }
        let mut step = Step::new(target?, selector?);
        if let Some(t) = timeout {
            step = step.timeout(t);
        }
        if self.temporary {
            step = step.temporary();
        }
        if self.allow_current {
            step = step.allow_current();
        }
        for c in checks {
            step = step.verify(c);
        }
        Some(step)
    }
}

/// The target a step names: its kind's factory, and no parameter the kind does not take
/// (found by comparing what was written with the target's own spec).
async fn target_of(
    entry: &Spanned<BTreeMap<String, Value>>,
    registry: &Registry,
    lint: &mut Lint,
) -> Option<Arc<dyn crate::target::RollbackTarget>> {
    let mut params = entry.value.clone();
    let Some(Value::String(kind)) = params.remove("kind") else {
        lint.add(
            at(entry),
            format!(
                "the target needs a kind (one of: {})",
                registry.target_kinds().join(", ")
            ),
        );
        return None;
    };
    if !registry.target_kinds().contains(&kind) {
        lint.add(
            at(entry),
            format!(
                "unknown target kind {kind:?} (known: {})",
                registry.target_kinds().join(", ")
            ),
        );
        return None;
    }
    let given: Vec<String> = params.keys().cloned().collect();
    let spec = TargetSpec {
        kind: kind.clone(),
        params: Value::Object(params.into_iter().collect()),
    };
    let id = crate::target::TargetId::new(kind.clone(), "(runbook)");
    match registry.build(&id, &spec).await {
        Ok(t) => {
            let taken = t.spec().params;
            let unknown: Vec<&String> = given
                .iter()
                .filter(|k| taken.get(k.as_str()).is_none())
                .collect();
            if !unknown.is_empty() {
                let known: Vec<&String> = taken
                    .as_object()
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                lint.add(
                    at(entry),
                    format!(
                        "{kind} takes no {} (it takes: {})",
                        unknown
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        known
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                return None;
            }
            Some(t)
        }
        Err(e) => {
            lint.add(at(entry), e.to_string());
            None
        }
    }
}

impl CheckEntry {
    async fn build(&self, registry: &Registry, lint: &mut Lint) -> Option<Check> {
        let given = [
            self.http.as_ref().map(at),
            self.command.as_ref().map(at),
            self.check.as_ref().map(at),
        ];
        let places: Vec<(u64, u64)> = given.iter().flatten().copied().collect();
        let policy = self.policy.as_ref().and_then(|p| policy_of(p, lint));
        let verifier: Option<Arc<dyn Verifier>> = match (&self.http, &self.command, &self.check) {
            (Some(h), None, None) => http_of(h, lint),
            (None, Some(c), None) => command_of(c, lint),
            (None, None, Some(k)) => {
                let mut params = k.value.clone();
                match params.remove("kind") {
                    Some(Value::String(kind)) => {
                        match registry
                            .build_check(&kind, Value::Object(params.into_iter().collect()))
                            .await
                        {
                            Ok(v) => Some(v),
                            Err(e) => {
                                lint.add(at(k), e.to_string());
                                None
                            }
                        }
                    }
                    _ => {
                        lint.add(
                            at(k),
                            format!(
                                "the check needs a kind (one of: {})",
                                registry.check_kinds().join(", ")
                            ),
                        );
                        None
                    }
                }
            }
            _ => {
                let place = places
                    .get(1)
                    .copied()
                    .or_else(|| self.policy.as_ref().map(at))
                    .unwrap_or((0, 0));
                lint.add(place, "a check is one of http: {...}, command: {...} or check: {kind: ...}, with an optional policy");
                None
            }
        };
        let verifier = verifier?;
        if let Err(e) = verifier.validate() {
            lint.add(places.first().copied().unwrap_or((0, 0)), e.to_string());
            return None;
        }
        let check = Check::shared(verifier);
        Some(match policy {
            Some(p) => check.policy(p),
            None => check,
        })
    }
}

fn policy_of(p: &Spanned<PolicyEntry>, lint: &mut Lint) -> Option<Policy> {
    let d = Policy::default();
    let place = at(p);
    let policy = Policy {
        attempts: p.value.attempts.unwrap_or(d.attempts),
        interval: lint
            .duration_in(place, &p.value.interval)
            .unwrap_or(d.interval),
        consecutive: p.value.consecutive.unwrap_or(d.consecutive),
        deadline: lint
            .duration_in(place, &p.value.deadline)
            .unwrap_or(d.deadline),
    };
    match policy.validate() {
        Ok(()) => Some(policy),
        Err(e) => {
            lint.add(place, e.to_string());
            None
        }
    }
}

#[cfg(feature = "http")]
fn http_of(h: &Spanned<HttpEntry>, lint: &mut Lint) -> Option<Arc<dyn Verifier>> {
    let e = &h.value;
    let place = at(h);
    let mut c = crate::verify::HttpCheck::new(e.url.clone());
    if let Some(m) = &e.method {
        c = c.method(m.clone());
    }
    if let Some(s) = e.status {
        c = c.status(s);
    }
    if let Some(t) = &e.body_contains {
        c = c.body_contains(t.clone());
    }
    match (&e.json_pointer, &e.json_value) {
        (Some(p), Some(v)) => c = c.json_value(p.clone(), v.clone()),
        (Some(p), None) => c = c.json_pointer(p.clone()),
        (None, Some(_)) => {
            lint.add(
                place,
                "json_value needs json_pointer (where in the body to look)",
            );
            return None;
        }
        (None, None) => {}
    }
    if let Some(d) = lint.duration_in(place, &e.max_latency) {
        c = c.max_latency(d);
    }
    if let Some(d) = lint.duration_in(place, &e.timeout) {
        c = c.timeout(d);
    }
    for (k, v) in &e.headers {
        c = c.header(k.clone(), v.clone());
    }
    Some(Arc::new(c))
}

#[cfg(not(feature = "http"))]
fn http_of(h: &Spanned<HttpEntry>, lint: &mut Lint) -> Option<Arc<dyn Verifier>> {
    lint.add(at(h), "HTTP checks need rollback-core's `http` feature");
    None
}

#[cfg(feature = "process")]
fn command_of(c: &Spanned<CommandEntry>, lint: &mut Lint) -> Option<Arc<dyn Verifier>> {
    let e = &c.value;
    let mut check = crate::verify::CommandCheck::new(e.argv.clone());
    for (k, v) in &e.env {
        check = check.env(k.clone(), v.clone());
    }
    if let Some(d) = &e.cwd {
        check = check.cwd(d.clone());
    }
    if let Some(t) = lint.duration_in(at(c), &e.timeout) {
        check = check.timeout(t);
    }
    Some(Arc::new(check))
}

#[cfg(not(feature = "process"))]
fn command_of(c: &Spanned<CommandEntry>, lint: &mut Lint) -> Option<Arc<dyn Verifier>> {
    lint.add(
        at(c),
        "command checks need rollback-core's `process` feature",
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_replaced_and_unset_ones_are_errors_where_written() {
        let vars = Vars::new().without_environment().set("ENV", "prod");
        assert_eq!(
            substitute("f: tools-${ENV}\nx: $${ENV} $5\n", &vars).unwrap(),
            "f: tools-prod\nx: ${ENV} $5\n"
        );
        let e = substitute("a: 1\nb: x-${MISSING}-${ENV}\nc: ${bad name}\n", &vars).unwrap_err();
        assert_eq!(
            e.iter().map(|p| (p.line, p.column)).collect::<Vec<_>>(),
            [(2, 6), (3, 4)]
        );
        assert!(e[0].message.contains("--var MISSING="), "{}", e[0].message);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        for bad in ["", "5 minutes", "-3", "m", "5x"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn selectors_read_as_people_write_them() {
        let v = |s: &str| -> Value { serde_saphyr::from_str(s).unwrap() };
        assert_eq!(selector_of(&v("previous")).unwrap(), Selector::Previous);
        assert_eq!(
            selector_of(&v("{exact: 14}")).unwrap(),
            Selector::exact("14")
        );
        assert_eq!(
            selector_of(&v("{steps_back: 2}")).unwrap(),
            Selector::StepsBack(2)
        );
        assert_eq!(
            selector_of(&v("{image_tag: abc123}")).unwrap(),
            Selector::image_tag("abc123")
        );
        assert_eq!(
            selector_of(&v("last_known_good")).unwrap(),
            Selector::LastKnownGood
        );
        for bad in [
            "latest",
            "{steps_back: 0}",
            "{exact: 1, image_tag: x}",
            "{newest: 1}",
        ] {
            assert!(selector_of(&v(bad)).is_err(), "{bad}");
        }
    }
}
