//! The conformance suite every [`RollbackTarget`] implementation runs (and, in [`locks`],
//! the one every [`LockManager`](crate::LockManager) runs; in [`processes`], its checks
//! across processes).
//!
//! It checks the trait's contract against a live target: identity and spec, history order,
//! selector resolution and its errors, that planning changes nothing, and (when the
//! fixture allows mutation) apply, idempotence, conflict detection and stability waits,
//! then puts the target back where it found it. With a secret canary it also checks that
//! the secret never shows in `Debug` output, specs, revisions, plans or errors.
//!
//! A backend's integration test runs it against a real (or emulated) resource:
//!
//! ```no_run
//! use rollback_core::conformance::{assert_conformance, Fixture};
//! use rollback_core::{FakeTarget, Revision};
//!
//! # async fn demo() -> rollback_core::Result<()> {
//! let target = FakeTarget::builder("api")
//!     .revision(Revision::new("1"))
//!     .revision(Revision::new("2"))
//!     .build()?;
//! assert_conformance(&target, &Fixture::default()).await;
//! # Ok(()) }
//! ```
//!
//! The target needs at least two revisions for the mutating checks; each check that cannot
//! run on the target as it is is skipped with a note in [`ConformanceReport::passed`].

use std::fmt;
use std::time::Duration;

pub mod locks;
pub mod processes;

use crate::error::{Error, ErrorKind, Result};
use crate::revision::{Change, Revision};
use crate::selector::Selector;
use crate::target::{ApplyOutcome, Progress, RollbackTarget, TargetSpec};

/// What the suite needs to know about the target under test.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// A revision id that does not exist on the target.
    pub unknown_revision: String,
    /// A value that must never appear in `Debug` output, the spec, revisions, plans or
    /// error messages (a secret's value, a password in the target's configuration).
    pub secret_canary: Option<String>,
    /// How long a `wait_stable` may take.
    pub stable_timeout: Duration,
    /// Whether the suite may apply changes. When `false` only read-only checks run.
    pub may_mutate: bool,
}

impl Default for Fixture {
    /// `"does-not-exist-0"` as the unknown revision, no canary, 60 s to stabilise,
    /// mutation allowed.
    fn default() -> Self {
        Fixture {
            unknown_revision: "does-not-exist-0".into(),
            secret_canary: None,
            stable_timeout: Duration::from_secs(60),
            may_mutate: true,
        }
    }
}

/// What the suite found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConformanceReport {
    /// The names of the checks that passed (a skipped check is listed as
    /// `"name: skipped, <why>"`).
    pub passed: Vec<String>,
    /// `"name: what went wrong"` for every check that failed.
    pub failures: Vec<String>,
}

impl ConformanceReport {
    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// Whether a check whose name starts with `check` failed.
    pub fn failed(&self, check: &str) -> bool {
        self.failures.iter().any(|f| f.starts_with(check))
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} check(s) passed, {} failed",
            self.passed.len(),
            self.failures.len()
        )?;
        for p in &self.passed {
            writeln!(f, "  ok   {p}")?;
        }
        for e in &self.failures {
            writeln!(f, "  FAIL {e}")?;
        }
        Ok(())
    }
}

/// Runs [`run`] and panics listing every failure.
pub async fn assert_conformance(target: &dyn RollbackTarget, fixture: &Fixture) {
    let report = run(target, fixture).await;
    if !report.is_ok() {
        panic!(
            "{} does not conform to the RollbackTarget contract:\n{report}",
            target.id()
        );
    }
}

/// How one check ended when it did not fail.
enum Pass {
    Ok,
    Skipped(String),
}

type CheckResult = std::result::Result<Pass, String>;

/// What the read-only checks learned, for the ones after them.
struct Seen {
    current: Revision,
    history: Vec<Revision>,
}

impl Seen {
    /// The revision after the current one in the history (what `Previous` should pick).
    fn previous(&self) -> Option<&Revision> {
        let pos = self.history.iter().position(|r| r.id == self.current.id)?;
        self.history.get(pos + 1)
    }

    /// A revision to move to: the previous one, or else any other one.
    fn other(&self) -> Option<&Revision> {
        self.previous()
            .or_else(|| self.history.iter().find(|r| r.id != self.current.id))
    }
}

struct Suite<'a> {
    target: &'a dyn RollbackTarget,
    fixture: &'a Fixture,
    report: ConformanceReport,
    /// Every error the target returned, for the naming and secret checks.
    errors: Vec<Error>,
    /// Every debug or text rendering of the target's output, for the secret check.
    shown: Vec<(String, String)>,
}

/// Runs every check against `target` and reports each one.
///
/// The checks that mutate (when [`Fixture::may_mutate`]) move the target to another
/// revision and back; whatever fails on the way, the suite tries to put the target back
/// at the revision it found and reports a failure if it cannot.
pub async fn run(target: &dyn RollbackTarget, fixture: &Fixture) -> ConformanceReport {
    let mut s = Suite {
        target,
        fixture,
        report: ConformanceReport::default(),
        errors: Vec::new(),
        shown: Vec::new(),
    };

    let r = s.identity();
    s.record("identity", r);

    let seen = match s.read_state().await {
        Ok(seen) => Some(seen),
        Err(e) => {
            s.record("history", Err(e));
            None
        }
    };
    if let Some(seen) = &seen {
        let r = check_history(seen);
        s.record("history", r);
        let r = s.resolve_previous(seen).await;
        s.record("resolve_previous", r);
        let r = s.resolve_steps_back_one(seen).await;
        s.record("resolve_steps_back_1", r);
        let r = s.resolve_exact_current(seen).await;
        s.record("resolve_exact_current", r);
        let r = s.resolve_errors().await;
        s.record("resolve_errors", r);
        let r = s.plan_changes_nothing(seen).await;
        s.record("plan_changes_nothing", r);
        if fixture.may_mutate {
            s.mutating_checks(seen).await;
        }
    }

    let r = s.errors_name_the_target();
    s.record("errors_name_target", r);
    if fixture.secret_canary.is_some() {
        let r = s.no_secret_leaks().await;
        s.record("no_secret_leaks", r);
    }
    s.report
}

/// Renders an error for reports.
fn show(e: &Error) -> String {
    format!("{} ({:?})", e, e.kind())
}

impl Suite<'_> {
    fn record(&mut self, name: &str, result: CheckResult) {
        match result {
            Ok(Pass::Ok) => self.report.passed.push(name.to_string()),
            Ok(Pass::Skipped(why)) => self.report.passed.push(format!("{name}: skipped, {why}")),
            Err(e) => self.report.failures.push(format!("{name}: {e}")),
        }
    }

    /// Keeps an error for the later checks and renders it.
    fn keep(&mut self, e: Error) -> String {
        let text = show(&e);
        self.errors.push(e);
        text
    }

    /// Keeps a rendering of the target's output for the secret check.
    fn saw(&mut self, what: &str, text: String) {
        self.shown.push((what.to_string(), text));
    }

    /// `Ok` when `result` is an error of `kind`.
    fn expect_error<T: fmt::Debug>(
        &mut self,
        call: &str,
        result: Result<T>,
        kind: ErrorKind,
    ) -> std::result::Result<(), String> {
        match result {
            Ok(v) => Err(format!("{call} returned {v:?}, expected a {kind:?} error")),
            Err(e) if e.kind() == kind => {
                self.keep(e);
                Ok(())
            }
            Err(e) => {
                let text = self.keep(e);
                Err(format!(
                    "{call} failed with {text}, expected a {kind:?} error"
                ))
            }
        }
    }

    /// The current revision, with the failure of `current()` kept and described.
    async fn current(&mut self, when: &str) -> std::result::Result<Revision, String> {
        match self.target.current().await {
            Ok(r) => Ok(r),
            Err(e) => Err(format!("current() {when} failed: {}", self.keep(e))),
        }
    }

    fn identity(&mut self) -> CheckResult {
        let id = self.target.id();
        let mut problems = Vec::new();
        if id.kind.is_empty() {
            problems.push("id().kind is empty".to_string());
        }
        if id.name.is_empty() {
            problems.push("id().name is empty".to_string());
        }
        if self.target.id() != id {
            problems.push(format!(
                "id() is not stable: {id} then {}",
                self.target.id()
            ));
        }
        let spec = self.target.spec();
        if spec.kind != id.kind {
            problems.push(format!(
                "spec().kind is {:?} but id().kind is {:?}",
                spec.kind, id.kind
            ));
        }
        match serde_json::to_string(&spec) {
            Ok(json) => {
                match serde_json::from_str::<TargetSpec>(&json) {
                    Ok(back) if back == spec => {}
                    Ok(back) => problems.push(format!(
                        "spec() does not round-trip through JSON: {spec:?} came back as {back:?}"
                    )),
                    Err(e) => problems.push(format!("spec() JSON does not parse back: {e}")),
                }
                self.saw("spec() as JSON", json);
            }
            Err(e) => problems.push(format!("spec() does not serialize: {e}")),
        }
        self.saw("spec()", format!("{spec:?}"));
        self.saw("the target's Debug output", format!("{:?}", self.target));
        self.saw("id()", id.to_string());
        if problems.is_empty() {
            Ok(Pass::Ok)
        } else {
            Err(problems.join("; "))
        }
    }

    async fn read_state(&mut self) -> std::result::Result<Seen, String> {
        let history = match self.target.history().await {
            Ok(h) => h,
            Err(e) => return Err(format!("history() failed: {}", self.keep(e))),
        };
        let current = self.current("").await?;
        self.saw("history()", format!("{history:?}"));
        self.saw("current()", format!("{current:?}"));
        Ok(Seen { current, history })
    }

    async fn resolve_previous(&mut self, seen: &Seen) -> CheckResult {
        let Some(expected) = seen.previous() else {
            return Ok(Pass::Skipped(format!(
                "the revision in use ({}) is the oldest in the history",
                seen.current.id
            )));
        };
        match self.target.resolve(&Selector::Previous).await {
            Ok(r) if r.id == expected.id => Ok(Pass::Ok),
            Ok(r) => Err(format!(
                "Previous resolved to {}, expected {} (the revision after the current {} in the history)",
                r.id, expected.id, seen.current.id
            )),
            Err(e) => Err(format!("resolve(Previous) failed: {}", self.keep(e))),
        }
    }

    async fn resolve_steps_back_one(&mut self, seen: &Seen) -> CheckResult {
        let result = self.target.resolve(&Selector::StepsBack(1)).await;
        match seen.previous() {
            Some(expected) => match result {
                Ok(r) if r.id == expected.id => Ok(Pass::Ok),
                Ok(r) => Err(format!(
                    "StepsBack(1) resolved to {}, Previous is {}",
                    r.id, expected.id
                )),
                Err(e) => Err(format!("resolve(StepsBack(1)) failed: {}", self.keep(e))),
            },
            // With nothing older, one step back does not exist.
            None => self
                .expect_error(
                    "resolve(StepsBack(1)) from the oldest revision",
                    result,
                    ErrorKind::NotFound,
                )
                .map(|()| Pass::Ok),
        }
    }

    async fn resolve_exact_current(&mut self, seen: &Seen) -> CheckResult {
        match self
            .target
            .resolve(&Selector::Exact(seen.current.id.clone()))
            .await
        {
            Ok(r) if r.id == seen.current.id => Ok(Pass::Ok),
            Ok(r) => Err(format!("Exact({:?}) resolved to {}", seen.current.id, r.id)),
            Err(e) => Err(format!(
                "resolve(Exact({:?})) of the current revision failed: {}",
                seen.current.id,
                self.keep(e)
            )),
        }
    }

    async fn resolve_errors(&mut self) -> CheckResult {
        let unknown = self.fixture.unknown_revision.clone();
        let cases = [
            (Selector::Exact(unknown), ErrorKind::NotFound),
            (Selector::StepsBack(10_000), ErrorKind::NotFound),
            (
                Selector::ImageTag("no-such-tag-xyz".into()),
                ErrorKind::NotFound,
            ),
            (Selector::StepsBack(0), ErrorKind::InvalidInput),
        ];
        let mut problems = Vec::new();
        for (selector, kind) in cases {
            let result = self.target.resolve(&selector).await;
            if let Err(p) = self.expect_error(&format!("resolve({selector:?})"), result, kind) {
                problems.push(p);
            }
        }
        if problems.is_empty() {
            Ok(Pass::Ok)
        } else {
            Err(problems.join("; "))
        }
    }

    async fn plan_changes_nothing(&mut self, seen: &Seen) -> CheckResult {
        let Some(to) = seen.other().cloned() else {
            return Ok(Pass::Skipped("the history holds a single revision".into()));
        };
        let change = match self.target.plan(&to).await {
            Ok(c) => c,
            Err(e) => return Err(format!("plan({}) failed: {}", to.id, self.keep(e))),
        };
        self.saw("plan()", format!("{change:?}"));
        self.saw("plan() as text", change.to_string());
        let mut problems = Vec::new();
        if change.target != self.target.id() {
            problems.push(format!(
                "the change is for {}, not {}",
                change.target,
                self.target.id()
            ));
        }
        if change.from.id != seen.current.id {
            problems.push(format!(
                "the change is from {}, but the current revision is {}",
                change.from.id, seen.current.id
            ));
        }
        if change.to.id != to.id {
            problems.push(format!(
                "the change is to {}, but {} was planned",
                change.to.id, to.id
            ));
        }
        let after = self.current("after plan()").await?;
        if after.id != seen.current.id {
            problems.push(format!(
                "plan() changed the target: the current revision went from {} to {}",
                seen.current.id, after.id
            ));
        }
        if problems.is_empty() {
            Ok(Pass::Ok)
        } else {
            Err(problems.join("; "))
        }
    }

    async fn mutating_checks(&mut self, seen: &Seen) {
        let Some(to) = seen.other().cloned() else {
            let why = "the history holds a single revision".to_string();
            for name in ["apply", "apply_again", "apply_stale_conflict", "restore"] {
                self.record(name, Ok(Pass::Skipped(why.clone())));
            }
            return;
        };
        let original = seen.current.clone();

        let r = self.apply(&to).await;
        let applied = r.as_ref().ok().cloned();
        self.record("apply", r.map(|_| Pass::Ok));

        match applied {
            Some(change) => {
                let r = self.apply_again(&change).await;
                self.record("apply_again", r);
                let r = self.stale_conflict(seen, &original, &to).await;
                self.record("apply_stale_conflict", r);
            }
            None => {
                for name in ["apply_again", "apply_stale_conflict"] {
                    self.record(name, Err("not run because apply failed".into()));
                }
            }
        }

        let r = self.restore(&original).await;
        self.record("restore", r);
    }

    /// plan + apply + wait_stable to `to`, which must not be the current revision.
    async fn apply(&mut self, to: &Revision) -> std::result::Result<Change, String> {
        let change = match self.target.plan(to).await {
            Ok(c) => c,
            Err(e) => return Err(format!("plan({}) failed: {}", to.id, self.keep(e))),
        };
        match self.target.apply(&change).await {
            Ok(ApplyOutcome::Applied) => {}
            Ok(other) => {
                return Err(format!(
                    "apply {} -> {} returned {other:?}, expected Applied",
                    change.from.id, change.to.id
                ))
            }
            Err(e) => {
                return Err(format!(
                    "apply {} -> {} failed: {}",
                    change.from.id,
                    change.to.id,
                    self.keep(e)
                ))
            }
        }
        if let Err(e) = self
            .target
            .wait_stable(to, self.fixture.stable_timeout, &Progress::none())
            .await
        {
            return Err(format!(
                "wait_stable({}) after apply failed: {}",
                to.id,
                self.keep(e)
            ));
        }
        let now = self.current("after apply").await?;
        if !now.same_as(to) {
            return Err(format!(
                "after applying and waiting for {}, the current revision is {}",
                to.id, now.id
            ));
        }
        Ok(change)
    }

    async fn apply_again(&mut self, change: &Change) -> CheckResult {
        let r = match self.target.apply(change).await {
            Ok(ApplyOutcome::AlreadyCurrent) => Ok(Pass::Ok),
            Ok(other) => Err(format!(
                "applying {} -> {} a second time returned {other:?}, expected AlreadyCurrent",
                change.from.id, change.to.id
            )),
            Err(e) => Err(format!(
                "applying {} -> {} a second time failed: {}",
                change.from.id,
                change.to.id,
                self.keep(e)
            )),
        };
        let now = self.current("after the second apply").await?;
        if !now.same_as(&change.to) {
            return Err(format!(
                "the second apply moved the target from {} to {}",
                change.to.id, now.id
            ));
        }
        r
    }

    /// A change planned from a revision the target is not at must be refused.
    async fn stale_conflict(
        &mut self,
        seen: &Seen,
        original: &Revision,
        at: &Revision,
    ) -> CheckResult {
        // From: a third revision when there is one, else one that does not exist; to: the
        // original, which is not the revision in use now.
        let from = seen
            .history
            .iter()
            .find(|r| !r.same_as(original) && !r.same_as(at))
            .cloned()
            .unwrap_or_else(|| Revision::new(self.fixture.unknown_revision.clone()));
        let stale = Change::new(self.target.id(), from.clone(), original.clone());
        let result = self.target.apply(&stale).await;
        let verdict = self.expect_error(
            &format!(
                "apply of a stale change {} -> {} while at {}",
                from.id, original.id, at.id
            ),
            result,
            ErrorKind::Conflict,
        );
        let now = self.current("after the stale apply").await?;
        if !now.same_as(at) {
            return Err(format!(
                "{}the refused change moved the target from {} to {}",
                verdict.err().map(|e| format!("{e}; ")).unwrap_or_default(),
                at.id,
                now.id
            ));
        }
        verdict.map(|()| Pass::Ok)
    }

    /// Puts the target back at `original` (plan + apply + wait) if it is elsewhere.
    async fn restore(&mut self, original: &Revision) -> CheckResult {
        let now = self.current("before restoring").await?;
        if !now.same_as(original) {
            let change = match self.target.plan(original).await {
                Ok(c) => c,
                Err(e) => {
                    return Err(format!(
                        "cannot restore {}: plan failed: {}; the target was left at {}",
                        original.id,
                        self.keep(e),
                        now.id
                    ))
                }
            };
            match self.target.apply(&change).await {
                Ok(ApplyOutcome::Applied) => {}
                Ok(other) => {
                    return Err(format!(
                        "restoring {} -> {} returned {other:?}, expected Applied",
                        now.id, original.id
                    ))
                }
                Err(e) => {
                    return Err(format!(
                        "cannot restore {}: apply failed: {}; the target was left at {}",
                        original.id,
                        self.keep(e),
                        now.id
                    ))
                }
            }
        }
        if let Err(e) = self
            .target
            .wait_stable(original, self.fixture.stable_timeout, &Progress::none())
            .await
        {
            return Err(format!(
                "wait_stable({}) after restoring failed: {}",
                original.id,
                self.keep(e)
            ));
        }
        let end = self.current("after restoring").await?;
        if !end.same_as(original) {
            return Err(format!(
                "the target was left at {}, not at {} where the suite found it",
                end.id, original.id
            ));
        }
        Ok(Pass::Ok)
    }

    fn errors_name_the_target(&mut self) -> CheckResult {
        if self.errors.is_empty() {
            return Ok(Pass::Skipped("the target returned no errors".into()));
        }
        let id = self.target.id();
        let full = id.to_string();
        let mut bad: Vec<String> = Vec::new();
        for e in &self.errors {
            let text = e.to_string();
            if e.target() == full || text.contains(&full) || text.contains(&id.name) {
                continue;
            }
            let problem = format!("{:?} error {text:?} does not name {full}", e.kind());
            if !bad.contains(&problem) {
                bad.push(problem);
            }
        }
        if bad.is_empty() {
            Ok(Pass::Ok)
        } else {
            Err(bad.join("; "))
        }
    }

    async fn no_secret_leaks(&mut self) -> CheckResult {
        let Some(canary) = self.fixture.secret_canary.clone() else {
            return Ok(Pass::Skipped("no secret canary".into()));
        };
        // Look again now, after any mutation, in case the output changed.
        if let Ok(history) = self.target.history().await {
            self.saw("history() at the end", format!("{history:?}"));
        }
        let mut leaks: Vec<String> = self
            .shown
            .iter()
            .filter(|(_, text)| text.contains(&canary))
            .map(|(what, _)| what.clone())
            .collect();
        for e in &self.errors {
            if e.to_string().contains(&canary) || format!("{e:?}").contains(&canary) {
                leaks.push(format!("a {:?} error", e.kind()));
            }
        }
        if leaks.is_empty() {
            Ok(Pass::Ok)
        } else {
            Err(format!("the secret canary appears in {}", leaks.join(", ")))
        }
    }
}

fn check_history(seen: &Seen) -> CheckResult {
    let history = &seen.history;
    if history.is_empty() {
        return Err("history() is empty; it must hold at least the current revision".into());
    }
    let mut problems = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for r in history {
        if !ids.insert(r.id.as_str()) {
            problems.push(format!("revision id {:?} appears more than once", r.id));
        }
    }
    let dated: Vec<&Revision> = history.iter().filter(|r| r.created_at.is_some()).collect();
    for pair in dated.windows(2) {
        if let (Some(a), Some(b)) = (pair[0].created_at, pair[1].created_at) {
            if a < b {
                problems.push(format!(
                    "not newest first: {} (created {a}) comes before {} (created {b})",
                    pair[0].id, pair[1].id
                ));
                break;
            }
        }
    }
    if !ids.contains(seen.current.id.as_str()) {
        problems.push(format!(
            "the current revision {} is not in the history",
            seen.current.id
        ));
    }
    if problems.is_empty() {
        Ok(Pass::Ok)
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fake::FakeTarget;

    fn target(current: &str) -> FakeTarget {
        FakeTarget::builder("api")
            .revision(Revision::new("1").image("registry/api:v1"))
            .revision(Revision::new("2").image("registry/api:v2"))
            .revision(Revision::new("3").image("registry/api:v3"))
            .current(current)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn the_in_memory_target_conforms_and_is_left_as_found() {
        let t = target("3");
        let report = run(&t, &Fixture::default()).await;
        assert!(report.is_ok(), "{report}");
        assert!(
            report.passed.iter().any(|p| p == "apply_stale_conflict"),
            "{report}"
        );
        assert_eq!(t.current_id(), "3");
        assert_eq!(t.applied().len(), 2);
    }

    #[tokio::test]
    async fn the_oldest_current_revision_skips_previous() {
        let t = target("1");
        let report = run(&t, &Fixture::default()).await;
        assert!(report.is_ok(), "{report}");
        assert!(
            report
                .passed
                .iter()
                .any(|p| p.starts_with("resolve_previous: skipped")),
            "{report}"
        );
        // It still moves to another revision and back.
        assert_eq!(
            t.applied(),
            [("1".into(), "3".into()), ("3".into(), "1".into())]
        );
    }

    #[tokio::test]
    async fn read_only_runs_apply_nothing() {
        let t = target("2");
        let fixture = Fixture {
            may_mutate: false,
            ..Fixture::default()
        };
        let report = run(&t, &fixture).await;
        assert!(report.is_ok(), "{report}");
        assert!(!t.calls().iter().any(|c| c == "apply"), "{:?}", t.calls());
        assert!(!report.passed.iter().any(|p| p.starts_with("apply")));
    }

    #[tokio::test]
    async fn a_single_revision_skips_the_mutating_checks() {
        let t = FakeTarget::builder("solo")
            .revision(Revision::new("1"))
            .build()
            .unwrap();
        let report = run(&t, &Fixture::default()).await;
        assert!(report.is_ok(), "{report}");
        assert!(report
            .passed
            .iter()
            .any(|p| p.starts_with("restore: skipped")));
    }

    #[tokio::test]
    async fn a_leaked_canary_is_reported() {
        let t = FakeTarget::builder("api")
            .revision(Revision::new("1").description("password=hunter2"))
            .revision(Revision::new("2"))
            .build()
            .unwrap();
        let fixture = Fixture {
            secret_canary: Some("hunter2".into()),
            ..Fixture::default()
        };
        let report = run(&t, &fixture).await;
        assert!(report.failed("no_secret_leaks"), "{report}");
        assert!(report.failures[0].contains("history()"), "{report}");
        let clean = Fixture {
            secret_canary: Some("not-anywhere-42".into()),
            ..Fixture::default()
        };
        assert!(run(&t, &clean).await.is_ok());
    }
}
