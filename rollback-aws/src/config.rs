//! Where the AWS targets get their configuration: the standard AWS environment
//! (`AWS_REGION`, credentials, profiles, `AWS_ENDPOINT_URL`), or the same set in code.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::{Deserialize, Serialize};

/// AWS settings as data: what a journal records so that a resumed run talks to the same
/// account, region and endpoint. Unset fields come from the standard AWS environment.
/// Credentials are never part of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsConfig {
    /// The region (else `AWS_REGION` / the profile's region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A custom endpoint, e.g. an emulator (else `AWS_ENDPOINT_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// A named profile of the shared config files (else `AWS_PROFILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl AwsConfig {
    /// Everything from the standard AWS environment.
    pub fn from_env() -> Self {
        Self::default()
    }

    /// Sets the region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets a custom endpoint (an emulator, a VPC endpoint).
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Sets the profile.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// Resolves the settings (credentials chain included) into a loaded [`Aws`].
    pub async fn load(self) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            // The transaction retries throttling and transient errors itself, with events a
            // person can see; the SDK's own retries would hide them and multiply attempts.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile.clone());
        }
        let sdk = loader.load().await;
        Aws { config: self, sdk }
    }
}

/// Loaded AWS settings, shared by the targets made from them.
#[derive(Debug, Clone)]
pub struct Aws {
    config: AwsConfig,
    sdk: SdkConfig,
}

impl Aws {
    /// Loads the standard AWS environment.
    pub async fn from_env() -> Aws {
        AwsConfig::from_env().load().await
    }

    /// Settings from an SDK configuration of your own (credentials, an HTTP client, a
    /// region and endpoint), as `rollback_k8s::K8s::from_client` takes a kube client.
    ///
    /// It is used as given, except that the SDK's own retries are turned off: the
    /// transaction retries throttling and transient errors itself, and reports each retry.
    /// What a journal records of it ([`Aws::config`]) is its region and endpoint; to
    /// resume with this very configuration (its credentials included), give it to
    /// [`register_with`](crate::register_with).
    pub fn from_sdk_config(sdk: &SdkConfig) -> Aws {
        let config = AwsConfig {
            region: sdk.region().map(|r| r.as_ref().to_string()),
            endpoint_url: sdk.endpoint_url().map(str::to_string),
            profile: None,
        };
        let sdk = sdk
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        Aws { config, sdk }
    }

    /// The settings as data.
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// The SDK configuration, for clients of your own.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }
}
