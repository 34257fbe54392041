use crate::{Registry, Report, Result};
use std::path::Path;
/// Options for resume.
#[derive(Debug, Default)]
pub struct ResumeOptions {}
/// Resume.
pub async fn resume(_journal: impl AsRef<Path>) -> Result<Report> {
    Err(crate::Error::invalid(
        "transaction",
        "resume not written yet",
    ))
}
/// Resume with a registry.
pub async fn resume_with(
    _journal: impl AsRef<Path>,
    _r: &Registry,
    _o: ResumeOptions,
) -> Result<Report> {
    Err(crate::Error::invalid(
        "transaction",
        "resume not written yet",
    ))
}
