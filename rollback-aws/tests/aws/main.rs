//! The integration tests of rollback-aws, one binary (each file is a module): every backend
//! through the real AWS SDK against the AWS emulator. One binary links the SDK once, instead of
//! once per file (a 100 MB link each).
#![allow(clippy::unwrap_used)]

mod call_counts;
mod cloudformation;
mod cloudfront;
mod consumers;
mod dynamodb_locks;
mod ecs;
mod hardening;
mod incident;
mod known_good_stores;
mod lambda;
mod pipeline_execution;
mod rds;
mod s3_journals;
mod secrets;
mod verification;
