//! Placeholder replaced by the command check.
use serde::{Deserialize, Serialize};

/// Runs a program; passes on exit 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandCheck {
    /// Program and arguments.
    pub argv: Vec<String>,
}

#[async_trait::async_trait]
impl super::Verifier for CommandCheck {
    fn name(&self) -> String {
        self.argv.join(" ")
    }
    async fn check(&self) -> crate::Result<super::CheckOutcome> {
        Ok(super::CheckOutcome::fail("placeholder"))
    }
}
