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

impl AwsEmulator {
    /// The environment a child process (the `rollback` command, a script) needs to use this
    /// emulator through the standard AWS variables: endpoint, region, test credentials, no
    /// instance metadata lookups.
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint().to_string()),
            ("AWS_REGION", EMULATOR_REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    }
}
