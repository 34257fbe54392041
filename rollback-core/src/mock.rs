//! Placeholder replaced by the mocks.
