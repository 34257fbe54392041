#![allow(clippy::unwrap_used)]
//! The Kubernetes API simulator, driven by the real kube-rs client: one test binary, one
//! file per subject, shared fixtures in `common.rs`. (One binary rather than one per file:
//! kube is linked once, and the subjects' tests run in parallel with each other.)

mod common;
mod control;
mod core_objects;
mod deployments;
mod leases;
mod objects;
mod statefulsets_daemonsets;
mod watch;
