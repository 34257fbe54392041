//! Placeholder replaced by the in-memory target.
/// The in-memory target.
#[derive(Debug, Clone)]
pub struct InMemoryTarget;
pub(crate) fn register(_r: &mut crate::Registry) {}
