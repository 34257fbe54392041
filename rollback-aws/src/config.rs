//! Where the AWS targets get their configuration: the standard AWS environment
//! (`AWS_REGION`, credentials, profiles, `AWS_ENDPOINT_URL`), or the same set in code.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::{Deserialize, Serialize};
use std::fmt;

/// AWS settings as data: what a journal records so that a resumed run talks to the same
/// account, region and endpoint. Unset fields come from the standard AWS environment.
/// Credentials are never part of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
        Aws::new(self, sdk)
    }
}

/// Loaded AWS settings, shared by the targets made from them, with one SDK client per
/// service: every target made from one `Aws` (or its clones) shares its clients, their
/// connection pools and the state that goes with them (the ECS stability poller that
/// batches DescribeServices, say). Building a client is not free (about 190 KB each), so a
/// fleet of a thousand targets builds one per service, not one per target.
#[derive(Clone)]
pub struct Aws {
    config: AwsConfig,
    sdk: SdkConfig,
    shared: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
}

impl fmt::Debug for Aws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aws")
            .field("config", &self.config)
            .field("sdk", &self.sdk)
            .finish_non_exhaustive()
    }
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
        Aws::new(config, sdk)
    }

    fn new(config: AwsConfig, sdk: SdkConfig) -> Aws {
        Aws {
            config,
            sdk,
            shared: Arc::default(),
        }
    }

    /// The one `T` of these settings (a service's client, or a client with state of its
    /// own), made by `make` at its first use and shared by every clone of this `Aws`.
    pub(crate) fn shared<T, F>(&self, make: F) -> Arc<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce(&SdkConfig) -> T,
    {
        let key = TypeId::of::<T>();
        let Ok(mut map) = self.shared.lock() else {
            // A panic elsewhere while holding the lock: a client of its own still works.
            return Arc::new(make(&self.sdk));
        };
        if let Some(found) = map.get(&key).and_then(|v| v.clone().downcast::<T>().ok()) {
            return found;
        }
        let made = Arc::new(make(&self.sdk));
        map.insert(key, made.clone());
        made
    }

    /// The SDK client of one service, built once for these settings (by `new`, e.g.
    /// `aws.client(aws_sdk_lambda::Client::new)`) and shared by every target made from
    /// them; one per client type.
    pub fn client<C>(&self, new: fn(&SdkConfig) -> C) -> C
    where
        C: Clone + Send + Sync + 'static,
    {
        (*self.shared(new)).clone()
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

/// Loaded AWS settings by the [`AwsConfig`] they come from: each distinct configuration is
/// resolved (credentials chain included) once, at its first use, however many targets use
/// it. What a [`Registry`](rollback_core::Registry) filled by [`register`](crate::register)
/// or [`register_with`](crate::register_with) rebuilds a journal's targets with.
///
/// A configuration is resolved against the standard AWS environment, so the `AWS_*`
/// variables at the time are part of what it is cached by: a changed environment is
/// resolved anew. An [`Aws`] given with [`AwsCache::with`] serves its own configuration
/// ([`Aws::config`]) whatever the environment, credentials and all.
///
/// Clones share the cache.
#[derive(Clone, Default)]
pub struct AwsCache {
    given: Option<Aws>,
    loaded: Arc<Mutex<HashMap<(AwsConfig, EnvKey), Slot>>>,
}

/// One configuration's settings, resolved by the first caller, awaited by the others.
type Slot = Arc<tokio::sync::OnceCell<Aws>>;

/// The `AWS_*` variables, sorted.
type EnvKey = Vec<(String, String)>;

impl fmt::Debug for AwsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCache")
            .field("given", &self.given.as_ref().map(Aws::config))
            .field("loaded", &self.loaded.lock().map(|m| m.len()).unwrap_or(0))
            .finish()
    }
}

impl AwsCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache in which `aws` serves its own configuration (and any other is resolved
    /// once, at its first use).
    pub fn with(aws: Aws) -> Self {
        AwsCache {
            given: Some(aws),
            ..Self::default()
        }
    }

    /// The loaded settings for `config`: the given [`Aws`] if it is its configuration,
    /// else `config` resolved once (per environment).
    pub async fn get(&self, config: &AwsConfig) -> Aws {
        if let Some(aws) = self.given.as_ref().filter(|a| a.config() == config) {
            return aws.clone();
        }
        let mut env: EnvKey = std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_"))
            .collect();
        env.sort();
        let cell = match self.loaded.lock() {
            Ok(mut m) => m.entry((config.clone(), env)).or_default().clone(),
            // A panic elsewhere while holding the lock: resolve without caching.
            Err(_) => Arc::default(),
        };
        cell.get_or_init(|| config.clone().load()).await.clone()
    }

    /// How many configurations were resolved (the given [`Aws`] not counted).
    pub fn resolved(&self) -> usize {
        self.loaded
            .lock()
            .map(|m| m.values().filter(|c| c.initialized()).count())
            .unwrap_or(0)
    }
}

impl From<Aws> for AwsCache {
    fn from(aws: Aws) -> Self {
        AwsCache::with(aws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_configuration_is_resolved_once_and_a_given_one_never() {
        let cache = AwsCache::new();
        let config = AwsConfig::default()
            .region("eu-west-1")
            .endpoint_url("http://127.0.0.1:9");
        let (a, b) = tokio::join!(cache.get(&config), cache.get(&config));
        cache.get(&config).await;
        assert_eq!(cache.resolved(), 1);
        assert_eq!(a.config(), &config);
        assert_eq!(b.config(), &config);
        cache.get(&config.clone().region("us-west-2")).await;
        assert_eq!(cache.resolved(), 2);

        // A loaded configuration builds each client once, shared by its clones.
        let made = std::sync::atomic::AtomicUsize::new(0);
        let first = a.shared(|_| made.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let again = a
            .clone()
            .shared(|_| made.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(made.into_inner(), 1);
        // What the cache hands out again is the same loaded configuration, clients and all.
        let b = cache.get(&config).await;
        assert!(Arc::ptr_eq(&first, &b.shared(|_| 7usize)));

        let given = config.clone().load().await;
        let cache = AwsCache::from(given);
        assert_eq!(cache.get(&config).await.config(), &config);
        assert_eq!(cache.resolved(), 0);
    }
}
