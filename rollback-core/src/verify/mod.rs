//! Verifiers: checks that pass or fail with evidence, run under a [`Policy`].
//!
//! A [`Verifier`] makes one check. [`Policy`] runs it with attempts, an interval, a number
//! of consecutive passes and a deadline. [`VerifierExt`] combines verifiers with `and`,
//! `or` and `not`; [`check_fn`] turns a closure into one. Built in: `HttpCheck` (feature
//! `http`) and `CommandCheck` (feature `process`).
//!
//! Checks are input like targets and selectors: a transaction validates every one
//! ([`Check::validate`]: [`Policy::validate`] and [`Verifier::validate`]) in preflight,
//! before it reads a target, so a check that cannot run or can never pass stops the run
//! (and a dry run, with the same error) before anything changes. `validate` was chosen
//! over a `prepare` step that returns a ready-to-run check: checks hold no state between
//! attempts, and a pure "is this input usable" question keeps every implementation small.
//! Evidence is what reaches reports, events and journals, so verifiers quote outside text
//! (bodies, program output) only through [`crate::redact`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::{Error, Result};

#[cfg(feature = "process")]
mod command;
#[cfg(feature = "http")]
mod http;
#[cfg(any(feature = "http", feature = "process"))]
mod redacted;

#[cfg(feature = "process")]
pub use command::CommandCheck;
#[cfg(feature = "http")]
pub use http::HttpCheck;

/// The result of one check: pass or fail, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// Whether the check passed.
    pub passed: bool,
    /// What the check saw (status and latency, exit code, alarm names...). Never a secret.
    pub evidence: String,
}

impl CheckOutcome {
    /// A pass with evidence.
    pub fn pass(evidence: impl Into<String>) -> Self {
        CheckOutcome {
            passed: true,
            evidence: evidence.into(),
        }
    }

    /// A failure with evidence.
    pub fn fail(evidence: impl Into<String>) -> Self {
        CheckOutcome {
            passed: false,
            evidence: evidence.into(),
        }
    }
}

/// A verifier described as data, so a journal can rebuild it on resume and a runbook file
/// can name it. Closures and other code-only checks are [`VerifierSpec::Opaque`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum VerifierSpec {
    /// An [`HttpCheck`].
    #[cfg(feature = "http")]
    Http(HttpCheck),
    /// A [`CommandCheck`].
    #[cfg(feature = "process")]
    Command(CommandCheck),
    /// A [`ThresholdCheck`](crate::metrics::ThresholdCheck) over a source that can be
    /// rebuilt from data.
    Threshold(crate::metrics::ThresholdSpec),
    /// Both must pass.
    And {
        /// Left.
        left: Box<VerifierSpec>,
        /// Right.
        right: Box<VerifierSpec>,
    },
    /// Either must pass.
    Or {
        /// Left.
        left: Box<VerifierSpec>,
        /// Right.
        right: Box<VerifierSpec>,
    },
    /// Passes when the inner check fails.
    Not {
        /// The negated check.
        inner: Box<VerifierSpec>,
    },
    /// Code that cannot be rebuilt from data (a closure, a user type).
    Opaque {
        /// The check's name.
        name: String,
    },
}

impl VerifierSpec {
    /// Rebuilds the verifier, or `None` when some part is [`VerifierSpec::Opaque`].
    pub fn build(&self) -> Option<Arc<dyn Verifier>> {
        Some(match self {
            #[cfg(feature = "http")]
            VerifierSpec::Http(c) => Arc::new(c.clone()),
            #[cfg(feature = "process")]
            VerifierSpec::Command(c) => Arc::new(c.clone()),
            VerifierSpec::Threshold(t) => t.build()?,
            VerifierSpec::And { left, right } => Arc::new(And(left.build()?, right.build()?)),
            VerifierSpec::Or { left, right } => Arc::new(Or(left.build()?, right.build()?)),
            VerifierSpec::Not { inner } => Arc::new(Not(inner.build()?)),
            VerifierSpec::Opaque { .. } => return None,
        })
    }
}

/// One check that passes or fails with evidence.
///
/// `Err` means the check could not be made (a network error, say); a [`Policy`] counts it
/// as a failed attempt and keeps the error text as evidence.
#[async_trait]
pub trait Verifier: Send + Sync + fmt::Debug {
    /// A short name for reports and events (`GET https://api/health`, `smoke_test.sh`).
    fn name(&self) -> String;

    /// Makes the check once.
    async fn check(&self) -> Result<CheckOutcome>;

    /// The cloud permissions its calls need ([`Permission`](crate::permission::Permission)),
    /// for `rollback policy`; `None` (the default) when it does not say, and then a policy
    /// generated for a run that holds it says it is incomplete.
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        None
    }

    /// The check as data; [`VerifierSpec::Opaque`] unless the type can be rebuilt.
    fn spec(&self) -> VerifierSpec {
        VerifierSpec::Opaque { name: self.name() }
    }

    /// Refuses a check that cannot run or can never pass (a malformed URL, an empty
    /// command, a secret lost to the journal), without making it: no request, no program,
    /// no backend call. A transaction calls this for every check in preflight, before it
    /// reads any target, so bad input stops a run (and a dry run) before anything changes
    /// instead of failing the first attempt after the rollback was applied.
    ///
    /// `Err` is [`Error::InvalidInput`] saying what to fix. The default accepts everything:
    /// a verifier whose input is all checked at construction needs nothing more.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl<V: Verifier + ?Sized> Verifier for Arc<V> {
    fn name(&self) -> String {
        (**self).name()
    }
    async fn check(&self) -> Result<CheckOutcome> {
        (**self).check().await
    }
    fn spec(&self) -> VerifierSpec {
        (**self).spec()
    }
    fn validate(&self) -> Result<()> {
        (**self).validate()
    }
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        (**self).permissions()
    }
}

async fn outcome_of(v: &dyn Verifier) -> CheckOutcome {
    match v.check().await {
        Ok(o) => o,
        Err(e) => CheckOutcome::fail(format!("check could not run: {e}")),
    }
}

/// Both checks must pass (`a.and(b)`); the second is not run when the first fails.
#[derive(Debug)]
pub struct And(pub Arc<dyn Verifier>, pub Arc<dyn Verifier>);

#[async_trait]
impl Verifier for And {
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        let mut all = self.0.permissions()?;
        all.extend(self.1.permissions()?);
        Some(all)
    }
    fn name(&self) -> String {
        format!("({} and {})", self.0.name(), self.1.name())
    }
    async fn check(&self) -> Result<CheckOutcome> {
        let a = outcome_of(&*self.0).await;
        if !a.passed {
            return Ok(a);
        }
        let b = outcome_of(&*self.1).await;
        Ok(CheckOutcome {
            passed: b.passed,
            evidence: format!("{}; {}", a.evidence, b.evidence),
        })
    }
    fn validate(&self) -> Result<()> {
        self.0.validate()?;
        self.1.validate()
    }
    fn spec(&self) -> VerifierSpec {
        VerifierSpec::And {
            left: Box::new(self.0.spec()),
            right: Box::new(self.1.spec()),
        }
    }
}

/// Either check must pass (`a.or(b)`); the second is not run when the first passes.
#[derive(Debug)]
pub struct Or(pub Arc<dyn Verifier>, pub Arc<dyn Verifier>);

#[async_trait]
impl Verifier for Or {
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        let mut all = self.0.permissions()?;
        all.extend(self.1.permissions()?);
        Some(all)
    }
    fn name(&self) -> String {
        format!("({} or {})", self.0.name(), self.1.name())
    }
    async fn check(&self) -> Result<CheckOutcome> {
        let a = outcome_of(&*self.0).await;
        if a.passed {
            return Ok(a);
        }
        let b = outcome_of(&*self.1).await;
        Ok(CheckOutcome {
            passed: b.passed,
            evidence: format!("{}; {}", a.evidence, b.evidence),
        })
    }
    fn validate(&self) -> Result<()> {
        self.0.validate()?;
        self.1.validate()
    }
    fn spec(&self) -> VerifierSpec {
        VerifierSpec::Or {
            left: Box::new(self.0.spec()),
            right: Box::new(self.1.spec()),
        }
    }
}

/// Passes when the inner check fails (`a.not()`). A check that cannot run still fails.
#[derive(Debug)]
pub struct Not(pub Arc<dyn Verifier>);

#[async_trait]
impl Verifier for Not {
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        self.0.permissions()
    }
    fn name(&self) -> String {
        format!("not {}", self.0.name())
    }
    async fn check(&self) -> Result<CheckOutcome> {
        match self.0.check().await {
            Ok(o) => Ok(CheckOutcome {
                passed: !o.passed,
                evidence: format!("not: {}", o.evidence),
            }),
            Err(e) => Ok(CheckOutcome::fail(format!("check could not run: {e}"))),
        }
    }
    fn validate(&self) -> Result<()> {
        self.0.validate()
    }
    fn spec(&self) -> VerifierSpec {
        VerifierSpec::Not {
            inner: Box::new(self.0.spec()),
        }
    }
}

/// Combinators for every verifier.
pub trait VerifierExt: Verifier + Sized + 'static {
    /// Both must pass.
    fn and(self, other: impl Verifier + 'static) -> And {
        And(Arc::new(self), Arc::new(other))
    }
    /// Either must pass.
    fn or(self, other: impl Verifier + 'static) -> Or {
        Or(Arc::new(self), Arc::new(other))
    }
    /// Passes when this fails.
    fn not(self) -> Not {
        Not(Arc::new(self))
    }
}

impl<V: Verifier + Sized + 'static> VerifierExt for V {}

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<CheckOutcome>> + Send + Sync;

/// A verifier from a closure; see [`check_fn`].
pub struct FnCheck {
    name: String,
    f: Box<CheckFn>,
}

impl fmt::Debug for FnCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnCheck").field("name", &self.name).finish()
    }
}

/// A verifier from an async closure returning a [`CheckOutcome`] (or `bool` via
/// [`check_bool`]).
///
/// ```
/// use rollback_core::verify::{check_fn, CheckOutcome};
/// let v = check_fn("always", || async { Ok(CheckOutcome::pass("fine")) });
/// ```
pub fn check_fn<F, Fut>(name: impl Into<String>, f: F) -> FnCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<CheckOutcome>> + Send + 'static,
{
    FnCheck {
        name: name.into(),
        f: Box::new(move || Box::pin(f())),
    }
}

/// A verifier from an async closure returning `bool`.
pub fn check_bool<F, Fut>(name: impl Into<String>, f: F) -> FnCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let name = name.into();
    let n2 = name.clone();
    check_fn(name, move || {
        let fut = f();
        let n = n2.clone();
        async move {
            Ok(if fut.await {
                CheckOutcome::pass(format!("{n}: true"))
            } else {
                CheckOutcome::fail(format!("{n}: false"))
            })
        }
    })
}

#[async_trait]
impl Verifier for FnCheck {
    fn name(&self) -> String {
        self.name.clone()
    }
    async fn check(&self) -> Result<CheckOutcome> {
        (self.f)().await
    }
    /// The closure cannot be looked into; only its name, which reports show, must be there.
    fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid(
                "check",
                "a check made with check_fn or check_bool has an empty name; give it one \
                 that says what it checks, e.g. check_fn(\"orders flow\", ...)",
            ));
        }
        Ok(())
    }
}

/// How a verifier is run: attempts, the interval between them, how many consecutive passes
/// count as verified, and an overall deadline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Attempts at most.
    pub attempts: u32,
    /// Time between attempts.
    #[serde(with = "crate::serde_duration")]
    pub interval: Duration,
    /// Consecutive passes needed.
    pub consecutive: u32,
    /// Overall deadline for all attempts.
    #[serde(with = "crate::serde_duration")]
    pub deadline: Duration,
}

impl Default for Policy {
    /// 10 attempts, 2 s apart, 1 pass, within 2 minutes.
    fn default() -> Self {
        Policy {
            attempts: 10,
            interval: Duration::from_secs(2),
            consecutive: 1,
            deadline: Duration::from_secs(120),
        }
    }
}

impl Policy {
    /// One attempt, one pass.
    pub fn once() -> Self {
        Policy {
            attempts: 1,
            interval: Duration::ZERO,
            consecutive: 1,
            deadline: Duration::from_secs(60),
        }
    }

    /// Sets the number of attempts.
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = n.max(1);
        self
    }

    /// Sets the interval between attempts.
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// Sets the consecutive passes needed.
    pub fn consecutive(mut self, n: u32) -> Self {
        self.consecutive = n.max(1);
        self
    }

    /// Sets the overall deadline.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        self
    }

    /// Refuses a policy under which no check can ever pass: no attempts, no passes needed,
    /// more consecutive passes than attempts, a zero deadline, or a deadline shorter than
    /// the intervals between the passes needed. The builders keep values in range where
    /// they can (`attempts(0)` is 1) and stay infallible; this also covers fields set
    /// directly or read from a runbook file or journal. A transaction calls it for every
    /// check in preflight.
    pub fn validate(&self) -> Result<()> {
        let (a, c) = (self.attempts, self.consecutive);
        let gap = c
            .checked_sub(1)
            .and_then(|n| self.interval.checked_mul(n))
            .unwrap_or(Duration::MAX);
        let why = if a == 0 {
            "attempts is 0; give at least 1 with Policy::attempts".to_string()
        } else if c == 0 {
            "consecutive is 0; a check needs at least 1 pass, set with Policy::consecutive"
                .to_string()
        } else if c > a {
            format!(
                "needs {c} consecutive passes in at most {a} attempt(s), so it can never pass; \
                 raise attempts to {c} or more, or lower consecutive"
            )
        } else if self.deadline.is_zero() {
            "the deadline is 0, so no attempt can finish; give it time with Policy::deadline"
                .to_string()
        } else if gap > self.deadline {
            format!(
                "{c} consecutive passes {:?} apart take at least {gap:?}, longer than the {:?} \
                 deadline, so it can never pass; lengthen the deadline or shorten the interval",
                self.interval, self.deadline
            )
        } else {
            return Ok(());
        };
        Err(Error::invalid("policy", format!("policy: {why}")))
    }

    /// Runs `v` under this policy. `on_attempt` hears each attempt's outcome.
    pub async fn run(
        &self,
        v: &dyn Verifier,
        mut on_attempt: impl FnMut(u32, &CheckOutcome),
    ) -> Verdict {
        let start = Instant::now();
        let deadline = start + self.deadline;
        let mut streak = 0u32;
        let mut last = CheckOutcome::fail("not checked");
        let mut attempts = 0u32;
        while attempts < self.attempts.max(1) {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            last = match tokio::time::timeout(remaining, outcome_of(v)).await {
                Ok(o) => o,
                Err(_) => {
                    CheckOutcome::fail(format!("no answer within the {:?} deadline", self.deadline))
                }
            };
            on_attempt(attempts, &last);
            if last.passed {
                streak += 1;
                if streak >= self.consecutive.max(1) {
                    return Verdict {
                        name: v.name(),
                        passed: true,
                        attempts,
                        evidence: last.evidence,
                    };
                }
            } else {
                streak = 0;
            }
            let now = Instant::now();
            if attempts >= self.attempts || now + self.interval > deadline {
                break;
            }
            tokio::time::sleep(self.interval).await;
        }
        Verdict {
            name: v.name(),
            passed: false,
            attempts,
            evidence: last.evidence,
        }
    }
}

/// What a policy run concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The verifier's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's evidence.
    pub evidence: String,
}

impl Verdict {
    /// `Ok` when passed, else [`Error::VerificationFailed`] naming `target`.
    pub fn into_result(self, target: &str) -> Result<Verdict> {
        if self.passed {
            Ok(self)
        } else {
            Err(Error::verification_failed(
                target.to_string(),
                self.name,
                format!("{} (after {} attempt(s))", self.evidence, self.attempts),
            ))
        }
    }
}

/// A verifier with the policy it runs under: what steps and transactions hold.
#[derive(Debug, Clone)]
pub struct Check {
    /// The verifier.
    pub verifier: Arc<dyn Verifier>,
    /// Its policy.
    pub policy: Policy,
}

impl Check {
    /// A check under the default [`Policy`].
    pub fn new(v: impl Verifier + 'static) -> Self {
        Check {
            verifier: Arc::new(v),
            policy: Policy::default(),
        }
    }

    /// A check from a shared verifier.
    pub fn shared(v: Arc<dyn Verifier>) -> Self {
        Check {
            verifier: v,
            policy: Policy::default(),
        }
    }

    /// Sets the policy.
    pub fn policy(mut self, p: Policy) -> Self {
        self.policy = p;
        self
    }

    /// Refuses a check whose policy can never pass or whose verifier cannot run
    /// ([`Policy::validate`], [`Verifier::validate`]), with an [`Error::InvalidInput`]
    /// naming `target` (the step's target, or `transaction`) and the check. Makes no check.
    pub fn validate(&self, target: &str) -> Result<()> {
        self.policy
            .validate()
            .and_then(|()| self.verifier.validate())
            .map_err(|e| refused(target, &format!("check {:?}", self.verifier.name()), &e))
    }
}

/// `e` (a part's own refusal) restated about `target`: `<what> cannot be used: <why>`.
pub(crate) fn refused(target: &str, what: &str, e: &Error) -> Error {
    let why = match e {
        Error::InvalidInput { message, .. } => message.clone(),
        other => other.to_string(),
    };
    Error::invalid(
        target,
        format!("{what} cannot be used: {why}. Nothing was changed"),
    )
}

impl<V: Verifier + 'static> From<V> for Check {
    fn from(v: V) -> Self {
        Check::new(v)
    }
}

/// A check as data: its verifier's spec and policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// The verifier.
    pub verifier: VerifierSpec,
    /// The policy.
    pub policy: Policy,
}

impl Check {
    /// This check as data.
    pub fn spec(&self) -> CheckSpec {
        CheckSpec {
            verifier: self.verifier.spec(),
            policy: self.policy,
        }
    }
}

impl CheckSpec {
    /// Rebuilds the check, or `None` when it holds code.
    pub fn build(&self) -> Option<Check> {
        Some(Check {
            verifier: self.verifier.build()?,
            policy: self.policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn seq(results: &'static [bool]) -> FnCheck {
        let n = Arc::new(AtomicU32::new(0));
        check_bool("seq", move || {
            let i = n.fetch_add(1, Ordering::SeqCst) as usize;
            async move { results.get(i).copied().unwrap_or(false) }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn policy_needs_consecutive_passes() {
        let p = Policy::default()
            .attempts(6)
            .consecutive(2)
            .interval(Duration::from_secs(1));
        let v = p.run(&seq(&[true, false, true, true]), |_, _| {}).await;
        assert!(v.passed);
        assert_eq!(v.attempts, 4);
        let v = p
            .run(&seq(&[true, false, true, false, true, false]), |_, _| {})
            .await;
        assert!(!v.passed);
        assert_eq!(v.attempts, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn policy_respects_deadline() {
        let p = Policy::default()
            .attempts(100)
            .interval(Duration::from_secs(10))
            .deadline(Duration::from_secs(35));
        let v = p.run(&seq(&[]), |_, _| {}).await;
        assert!(!v.passed);
        assert_eq!(v.attempts, 4);
        let e = v.into_result("memory/api").unwrap_err();
        assert!(e.to_string().contains("memory/api"), "{e}");
    }

    #[test]
    fn policy_validate_refuses_what_can_never_pass() {
        assert!(Policy::default().validate().is_ok());
        assert!(Policy::once().validate().is_ok());
        // Exactly enough time for 3 passes 10 s apart.
        let tight = Policy::default()
            .attempts(3)
            .consecutive(3)
            .interval(Duration::from_secs(10))
            .deadline(Duration::from_secs(20));
        assert!(tight.validate().is_ok());
        let cases = [
            (
                Policy::default().attempts(2).consecutive(3),
                "can never pass",
            ),
            (
                Policy {
                    attempts: 0,
                    ..Policy::default()
                },
                "attempts is 0",
            ),
            (
                Policy {
                    consecutive: 0,
                    ..Policy::default()
                },
                "consecutive is 0",
            ),
            (Policy::default().deadline(Duration::ZERO), "deadline is 0"),
            (tight.deadline(Duration::from_secs(19)), "longer than"),
            (
                tight
                    .interval(Duration::MAX)
                    .deadline(Duration::from_secs(60)),
                "longer than",
            ),
        ];
        for (p, want) in cases {
            let err = p.validate().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{p:?}");
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_policy_validate_refuses_really_never_passes() {
        // The deadline case refused above, run anyway: it fails although every attempt
        // passes.
        let p = Policy::default()
            .attempts(3)
            .consecutive(3)
            .interval(Duration::from_secs(10))
            .deadline(Duration::from_secs(19));
        let v = p.run(&seq(&[true, true, true]), |_, _| {}).await;
        assert!(!v.passed, "{v:?}");
    }

    #[test]
    fn combined_checks_validate_every_part() {
        let yes = || check_bool("yes", || async { true });
        let nameless = || check_bool(" ", || async { true });
        assert!(yes().and(yes().or(yes().not())).validate().is_ok());
        for v in [
            Arc::new(yes().and(nameless())) as Arc<dyn Verifier>,
            Arc::new(nameless().or(yes())),
            Arc::new(yes().and(yes().or(nameless().not()))),
        ] {
            let err = Check::shared(v).validate("memory/api").unwrap_err();
            assert_eq!(err.target(), "memory/api");
            assert!(err.to_string().contains("empty name"), "{err}");
        }
    }

    #[tokio::test]
    async fn combinators() {
        let yes = || check_bool("yes", || async { true });
        let no = || check_bool("no", || async { false });
        assert!(yes().and(yes()).check().await.unwrap().passed);
        assert!(!yes().and(no()).check().await.unwrap().passed);
        assert!(no().or(yes()).check().await.unwrap().passed);
        assert!(!no().or(no()).check().await.unwrap().passed);
        assert!(no().not().check().await.unwrap().passed);
        assert_eq!(yes().and(no().not()).name(), "(yes and not no)");
        let failing = check_fn("err", || async { Err(Error::backend("x", "down", true)) });
        assert!(!failing.not().check().await.unwrap().passed);
        assert!(matches!(yes().spec(), VerifierSpec::Opaque { .. }));
        assert!(yes().and(no()).spec().build().is_none());
    }
}
