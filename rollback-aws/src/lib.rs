//! # rollback-aws
//!
//! [`RollbackTarget`](rollback_core::RollbackTarget)s on the official AWS SDK:
//!
//! | target | revision | rollback |
//! | --- | --- | --- |
//! | [`LambdaAlias`] | published version (`"7"`) | one UpdateAlias to the version, canary weights cleared, with the alias RevisionId read in preflight |
//! | [`EcsService`] | task-definition revision (`"family:14"`) | UpdateService(taskDefinition), optionally with forceNewDeployment; wait for the ServicesStable rules, fail fast on a FAILED rollout |
//! | [`EcsRestart`] | the PRIMARY deployment (`"ecs-svc/..."`) | UpdateService(forceNewDeployment) (`--force-new-deployment` as a step); never made twice on resume |
//! | [`SecretVersion`] | version id | UpdateSecretVersionStage(AWSCURRENT), then a new deployment of each consumer ECS service, waited for; never reads a secret value |
//! | [`RdsInstance`] | `live`, then DB snapshots; or a point in time | restore to a NEW instance (the original is never touched); DBInstanceAvailable |
//! | [`ConnectionHandover`] | the secret's AWSCURRENT version | a new secret version pointing at the restored instance; compensation moves AWSCURRENT back |
//! | [`EcsDesiredCount`] | the desired count (`"2"`) | UpdateService(desiredCount), a new deployment when scaling up from 0 |
//! | [`CloudFormationStack`] | S3 version id of the template artifact | UpdateStack to the pinned version (runbook 003 step 3); UPDATE_COMPLETE, fails with the failing stack events |
//! | [`PipelineTransition`] | `enabled` / `disabled` | Disable/EnableStageTransition (freeze the pipeline, runbook 003), optionally StopPipelineExecution of the executions in flight |
//! | [`PipelineExecution`] | the source commit of a past successful execution | StartPipelineExecution pinned to the commit (sourceRevisions); stable when that execution Succeeded (runbook 003's re-run) |
//!
//! After the run: [`CloudFrontInvalidation`], an on-success action (CreateInvalidation of
//! some paths, idempotent per run, waited for until Completed; runbook 002).
//!
//! Verification from CloudWatch: [`AlarmCheck`] (no alarm matching a prefix in ALARM) and
//! [`CloudWatchSource`] (GetMetricData for `rollback_core::metrics` threshold checks and
//! runbook 004's decision).
//!
//! Configuration comes from the standard AWS environment (`AWS_REGION`, credentials,
//! profiles, `AWS_ENDPOINT_URL`), from [`AwsConfig`], or from an SDK configuration of your
//! own ([`Aws::from_sdk_config`], as `rollback_k8s::K8s::from_client` takes a kube client;
//! tests give it the emulator's, `rollback_testkit::emulator_sdk_config`). Targets made
//! from one [`Aws`] share it. [`register_with`] teaches a
//! [`Registry`](rollback_core::Registry) to rebuild these targets from a journal with an
//! [`Aws`] of yours; [`register`] resolves each journaled configuration from the
//! environment, once, lazily ([`AwsCache`]: N targets on resume, one resolution).
//!
//! ## The shape of a target
//!
//! Every target follows one pattern, so adding one is one small file plus a line:
//!
//! - a struct holding its names, its [`AwsConfig`], its SDK client(s) and its
//!   [`TargetId`](rollback_core::TargetId), with `new(&Aws, names...) -> Result<Self>` that
//!   checks the names (and ARNs) before anything is sent;
//! - a `Params` struct (the names a journal records) and one `aws_target!(Type, KIND,
//!   Params { fields }, |aws, p| Type::new(..))` line, which implements the crate-private
//!   `AwsTarget` trait (`target.rs`: `KIND`, `params`, `aws`, `from_params`) and `Debug`;
//!   the journaled spec (`Params` flat beside `aws`) and the registry factory come from
//!   the trait, written once (a target of another shape, `EcsDesiredCount`, implements
//!   the trait by hand);
//! - its `impl RollbackTarget`, with `spec` as `target::spec(self)`;
//! - a line `target::register::<NewTarget>(registry, &cache)` in [`register_with`], and
//!   one `aws_target!` invocation in rollback-py's `aws.rs`.
//!
//! A trait rather than rollback-k8s's generic `Workload<W>`: the k8s kinds share their
//! logic (`kubectl rollout undo` for three kinds), the AWS targets share only their
//! plumbing (each talks to another service with other rules), so the shared part is the
//! trait's provided pieces, not a generic type. Listings go through the SDK's paginators
//! (`into_paginator()`, one helper with one explicit page limit that fails saying so);
//! SDK times convert in one place (`sdk.rs`).
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
pub mod cloudformation;
pub mod cloudfront;
pub mod cloudwatch;
pub mod codepipeline;
mod config;
pub mod ecs;
mod error;
pub mod handover;
pub mod journals;
pub mod known_good;
pub mod lambda;
pub mod locks;
pub mod rds;
mod s3;
mod sdk;
pub mod secrets;
pub mod stores;
mod target;

pub use cloudformation::CloudFormationStack;
pub use cloudfront::CloudFrontInvalidation;
pub use cloudwatch::{AlarmCheck, CloudWatchSource};
pub use codepipeline::{PipelineExecution, PipelineTransition, StopInFlight};
pub use config::{Aws, AwsCache, AwsConfig};
pub use ecs::{EcsDesiredCount, EcsRestart, EcsService};
pub use handover::ConnectionHandover;
pub use journals::S3Journals;
pub use known_good::{DynamoDbKnownGood, S3KnownGood};
pub use lambda::LambdaAlias;
pub use locks::DynamoDbLocks;
pub use rds::RdsInstance;
pub use secrets::SecretVersion;

use rollback_core::Registry;

/// Registers this crate's target kinds (and its lock kind, [`DynamoDbLocks`]) so a journal
/// naming them can be resumed. The AWS
/// settings a journal records are resolved once per distinct configuration, lazily, when
/// the first target needing them is rebuilt (see [`AwsCache`]), with the standard
/// environment's credentials. To rebuild targets with settings of your own (credentials
/// included), use [`register_with`].
pub fn register(registry: &mut Registry) {
    register_with(registry, AwsCache::new());
}

/// Registers this crate's target kinds, rebuilding them with `aws` (an [`Aws`], or an
/// [`AwsCache`] to share): a target whose journaled settings are `aws`'s own
/// ([`Aws::config`]) gets `aws` itself; any other configuration is resolved once, at its
/// first use. All the factories share the one cache, so N targets on resume cost one
/// resolution, not N.
pub fn register_with(registry: &mut Registry, aws: impl Into<AwsCache>) {
    let cache = aws.into();
    target::register::<LambdaAlias>(registry, &cache);
    target::register::<EcsService>(registry, &cache);
    target::register::<EcsDesiredCount>(registry, &cache);
    target::register::<EcsRestart>(registry, &cache);
    secrets::register(registry, &cache);
    target::register::<RdsInstance>(registry, &cache);
    target::register::<ConnectionHandover>(registry, &cache);
    target::register::<PipelineTransition>(registry, &cache);
    target::register::<CloudFormationStack>(registry, &cache);
    target::register::<PipelineExecution>(registry, &cache);
    DynamoDbLocks::register(registry, &cache);
    AlarmCheck::register(registry, &cache);
    CloudWatchSource::register(registry, &cache);
    CloudFrontInvalidation::register(registry, &cache);
    stores::register(registry, &cache);
}

/// A registry that knows the core kinds and this crate's.
pub fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    register(&mut r);
    r
}
