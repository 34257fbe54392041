//! # rollback-core
//!
//! Deployment rollbacks as reviewed, verified, compensable transactions.
//!
//! A [`RollbackTarget`] is one thing with revisions (a Lambda alias, an ECS service, a
//! Kubernetes Deployment...). A [`Transaction`] groups steps (target + [`Selector`]) into
//! stages and runs them through one lifecycle:
//!
//! 1. **preflight** with no mutation: validate every check, policy and on-failure action
//!    ([`Verifier::validate`], [`Policy::validate`], [`FailureAction::validate`]) before any
//!    target is read, then capture every current revision, resolve selectors, build the
//!    plan; any bad input stops here, before anything changes (a dry run ends here, with
//!    the same errors);
//! 2. **lock** every target with an expiring lease ([`lock`]);
//! 3. stage by stage, each step: journal the intent, **apply**, journal the result,
//!    **wait until stable**, **verify** ([`verify`]); then the transaction's own checks;
//! 4. on failure, **compensate** (put every applied target back, in reverse order) or
//!    **halt**, then run the on-failure actions;
//! 5. an [`Outcome`] and a [`Report`] listing what needs a person.
//!
//! Every transition is one [`journal::Entry`], recorded once: a line in the append-only
//! [`journal`] first, then the [`Event`] it names ([`journal::Entry::event_kind`]), then
//! the step's status; [`resume`] replays the same entries to finish a run whose process
//! died, without applying anything twice (see [`transaction`] for the design).
//!
//! ```no_run
//! # // The fake target is a test double: feature `testing`.
//! use std::sync::Arc;
//! use rollback_core::{FakeTarget, Revision, Selector, Step, Transaction};
//!
//! # async fn demo() -> rollback_core::Result<()> {
//! let api = FakeTarget::builder("api")
//!     .revision(Revision::new("1").image("registry/api:v1"))
//!     .revision(Revision::new("2").image("registry/api:v2"))
//!     .build()?;
//! let report = Transaction::builder("roll back api")
//!     .reason("5xx after deploying v2")
//!     .step(Step::new(Arc::new(api.clone()), Selector::Previous))
//!     .build()?
//!     .run()
//!     .await?;
//! println!("{}", report.outcome);
//! # Ok(()) }
//! ```
//!
//! ## Features
//!
//! The contracts and the engine (targets, selectors, transactions, journal, locks, events,
//! verifiers and policies, metric decisions and threshold checks) build with no feature.
//! Each feature adds what it names and what that pulls in:
//!
//! | feature | default | brings | pulls in |
//! | --- | --- | --- | --- |
//! | `http` | yes | `verify::HttpCheck`, `metrics::PrometheusSource` | reqwest (rustls) |
//! | `process` | yes | `verify::CommandCheck`, and `command_target::CommandTarget` (a target driven by the user's own commands, kind `command` in `Registry::with_builtins()`) | tokio's `process`, `io-util`, `net` |
//! | `testing` | no | test doubles: `FakeTarget` (module `fake`: in memory, or shared between processes through a state file, with its file locking), the `conformance` suite, and its kind `memory` in `Registry::with_builtins()` (so journals of fake targets resume; the kind keeps the name journals have carried) | nothing |
//! | `mock` | no | module `mock`: mockall mocks of `RollbackTarget` and `Verifier` | mockall |
//! | `runbook` | no | module `runbook`: runbook files (a transaction as YAML) loaded with line and column, variables, checked against a `Registry`'s kinds, and their JSON Schema | serde-saphyr, schemars |
//!
//! [`verify::VerifierSpec`] has no variant for a check whose feature is off, so a spec or
//! journal naming that check does not deserialize in such a build. The test doubles are features of this
//! crate rather than a crate of their own so that the paths tests write
//! (`rollback_core::FakeTarget`, `rollback_core::conformance`, `rollback_core::mock`)
//! stay, and so that [`Registry::with_builtins`] can know the `memory` kind; turn them on
//! where the tests are:
//!
//! ```toml
//! [dependencies]
//! rollback-core = { version = "0.1", default-features = false, features = ["http"] }
//!
//! [dev-dependencies]
//! rollback-core = { version = "0.1", features = ["testing", "mock"] }
//! ```

#[cfg(feature = "process")]
pub mod command_target;
#[cfg(feature = "testing")]
pub mod conformance;
pub mod drill;
#[cfg(any(feature = "runbook", feature = "process", feature = "http"))]
mod duration;
pub mod error;
pub mod events;
#[cfg(feature = "testing")]
pub mod fake;
pub mod incident;
pub mod journal;
pub mod known_good;
pub mod lock;
pub mod metrics;
#[cfg(feature = "mock")]
pub mod mock;
#[cfg(feature = "http")]
mod net;
pub mod notify;
pub mod permission;
#[cfg(feature = "process")]
mod process;
pub mod redact;
pub mod revision;
#[cfg(feature = "runbook")]
pub mod runbook;
pub mod selector;
pub mod target;
pub mod transaction;
pub mod verify;
pub mod wait;
pub mod watch;

pub use error::{Error, ErrorKind, ErrorRecord, Result};
pub use events::{Event, EventKind};
#[cfg(feature = "testing")]
pub use fake::FakeTarget;
pub use known_good::{FileKnownGood, KnownGood, KnownGoodStore};
pub use lock::{FileLocks, Holder, Lease, LockManager};
/// The fake target's former name (it is held in memory or in a state file, so it is now
/// named for what it is: a fake).
#[cfg(feature = "testing")]
#[deprecated(note = "renamed FakeTarget")]
pub type InMemoryTarget = FakeTarget;
#[cfg(feature = "process")]
pub use command_target::CommandTarget;
pub use permission::{Permission, Permissions};
pub use revision::{Change, Diff, DiffBuilder, DiffEntry, DiffSection, Revision};
pub use selector::Selector;
pub use target::{
    ApplyOutcome, Progress, Registry, RollbackTarget, Stability, StoreSpec, TargetId, TargetSpec,
};
pub use transaction::{
    action_fn, report_from_journal, report_so_far, resume, resume_from_store, resume_with,
    ActionRun, ActionWhen, AfterAction, Attention, FailureAction, FailurePolicy, Interrupt,
    Outcome, Report, ResumeOptions, Step, StepReport, StepStatus, Transaction, TransactionBuilder,
};
pub use verify::{Check, CheckOutcome, Policy, Verifier, VerifierExt};

/// Durations in journals and specs are whole milliseconds.
pub(crate) mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
