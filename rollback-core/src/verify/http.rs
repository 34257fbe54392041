//! Placeholder replaced by the HTTP check.
use serde::{Deserialize, Serialize};

/// An HTTP health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCheck {
    /// The URL.
    pub url: String,
}

#[async_trait::async_trait]
impl super::Verifier for HttpCheck {
    fn name(&self) -> String {
        self.url.clone()
    }
    async fn check(&self) -> crate::Result<super::CheckOutcome> {
        Ok(super::CheckOutcome::fail("placeholder"))
    }
}
