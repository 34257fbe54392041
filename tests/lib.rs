//! Cross-crate scenario tests: see `scenarios.rs` and `mocks.rs` beside this file.
