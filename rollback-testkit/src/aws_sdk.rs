//! The AWS SDK configuration for an emulator: what tests and examples give
//! `rollback_aws::Aws::from_sdk_config` (this crate does not depend on rollback-aws).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use crate::AwsEmulator;

/// The region every emulator configuration uses.
pub const EMULATOR_REGION: &str = "us-east-1";

/// An SDK configuration for an AWS emulator (moto, LocalStack) at `endpoint`: region
/// `us-east-1`, fixed fake credentials `testing` / `testing`, the SDK's retries off,
/// nothing read from the environment.
pub async fn emulator_sdk_config(endpoint: impl Into<String>) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .region(Region::new(EMULATOR_REGION))
        .endpoint_url(endpoint.into())
        .credentials_provider(Credentials::new(
            "testing", "testing", None, None, "emulator",
        ))
        .load()
        .await
}

impl AwsEmulator {
    /// The SDK configuration for this emulator ([`emulator_sdk_config`] of its endpoint).
    pub async fn sdk_config(&self) -> SdkConfig {
        emulator_sdk_config(self.endpoint()).await
    }
}
