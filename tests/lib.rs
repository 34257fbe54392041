//! Cross-crate scenario tests: rollback-core's engine with the AWS and Kubernetes targets
//! against the emulators (`mixed.rs`, the `campaign_*.rs` suites over `campaign/`). Tests
//! that use one crate only live in that crate's `tests/` (rollback-core's `mocks.rs` and
//! `scenarios.rs`).
