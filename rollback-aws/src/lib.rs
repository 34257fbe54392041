//! # rollback-aws
//!
//! [`RollbackTarget`](rollback_core::RollbackTarget)s on the official AWS SDK:
//!
//! | target | revision | rollback |
//! | --- | --- | --- |
//! | [`LambdaAlias`] | published version (`"7"`) | one UpdateAlias to the version, canary weights cleared, with the alias RevisionId read in preflight |
//! | [`EcsService`] | task-definition revision (`"family:14"`) | UpdateService(taskDefinition), wait for the ServicesStable rules, fail fast on a FAILED rollout |
//! | [`SecretVersion`] | version id | UpdateSecretVersionStage(AWSCURRENT); never reads a secret value |
//! | [`RdsInstance`] | `live`, then DB snapshots; or a point in time | restore to a NEW instance (the original is never touched); DBInstanceAvailable |
//! | [`ConnectionHandover`] | the secret's AWSCURRENT version | a new secret version pointing at the restored instance; compensation moves AWSCURRENT back |
//! | [`EcsDesiredCount`] | the desired count (`"2"`) | UpdateService(desiredCount), a new deployment when scaling up from 0 |
//! | [`PipelineTransition`] | `enabled` / `disabled` | Disable/EnableStageTransition (freeze the pipeline, runbook 003) |
//!
//! Verification from CloudWatch: [`AlarmCheck`] (no alarm matching a prefix in ALARM) and
//! [`CloudWatchSource`] (GetMetricData for `rollback_core::metrics` threshold checks and
//! runbook 004's decision).
//!
//! Configuration comes from the standard AWS environment (`AWS_REGION`, credentials,
//! profiles, `AWS_ENDPOINT_URL`) or [`AwsConfig`]; [`register`] teaches a
//! [`Registry`](rollback_core::Registry) to rebuild these targets from a journal.
//!
//! ARNs given where a name or revision id is expected are checked in one place: a revision
//! ARN must be the target's own partition, region, account and name, a target's ARN must be
//! of its service in the configured region, or the input is refused before anything is sent.
//! Errors from the SDK read as one or two sentences (operation, HTTP status, AWS code and
//! message, a secret-free excerpt of the body, what to do); the SDK error is their `source()`.
//!
//! The SDK's own retries are off: the transaction retries throttling and transient errors
//! itself (`rollback_core::wait::RetryPolicy`) and reports each retry as an event.

mod arn;
pub mod cloudwatch;
pub mod codepipeline;
mod config;
pub mod ecs;
mod error;
pub mod handover;
pub mod lambda;
pub mod rds;
mod sdk;
pub mod secrets;

pub use cloudwatch::{AlarmCheck, CloudWatchSource};
pub use codepipeline::PipelineTransition;
pub use config::{Aws, AwsConfig};
pub use ecs::{EcsDesiredCount, EcsService};
pub use handover::ConnectionHandover;
pub use lambda::LambdaAlias;
pub use rds::RdsInstance;
pub use secrets::SecretVersion;

use rollback_core::Registry;

/// Registers this crate's target kinds (`lambda-alias`, `ecs-service`, `secret-version`) so
/// a journal naming them can be resumed.
pub fn register(registry: &mut Registry) {
    lambda::register(registry);
    rds::register(registry);
    handover::register(registry);
    codepipeline::register(registry);
    ecs::register(registry);
    secrets::register(registry);
}

/// A registry that knows the core kinds and this crate's.
pub fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    register(&mut r);
    r
}
