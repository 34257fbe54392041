//! Where the AWS targets get their configuration: the standard AWS environment
//! (`AWS_REGION`, credentials, profiles, `AWS_ENDPOINT_URL`), or the same set in code.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use rollback_core::{Result, TargetId};
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

    /// Settings resolved (credentials chain included) at their first use: making one, and
    /// every target made from it, sends nothing and reads no file; the first call a target
    /// makes resolves them, once for all of its clones.
    pub fn lazy(self) -> Aws {
        Aws::new(self, tokio::sync::OnceCell::new())
    }

    /// Resolves the settings (credentials chain included) now, into a loaded [`Aws`]: for
    /// a person who wants a configuration problem to show before any target is made.
    pub async fn load(self) -> Aws {
        let sdk = self.resolve().await;
        Aws::new(self, tokio::sync::OnceCell::new_with(Some(sdk)))
    }

    async fn resolve(&self) -> SdkConfig {
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
        loader.load().await
    }
}

/// AWS settings, shared by the targets made from them, with one SDK client per service:
/// every target made from one `Aws` (or its clones) shares its clients, their connection
/// pools and the state that goes with them (the ECS stability poller that batches
/// DescribeServices, say). Building a client is not free (about 190 KB each), so a fleet of
/// a thousand targets builds one per service, not one per target.
///
/// The settings are resolved at most once: up front ([`AwsConfig::load`],
/// [`Aws::from_env`]), or at their first use ([`AwsConfig::lazy`]), which is what
/// constructors that must not block (Python's, an event loop's) are given.
#[derive(Clone)]
pub struct Aws {
    config: AwsConfig,
    inner: Arc<Shared>,
}

struct Shared {
    sdk: tokio::sync::OnceCell<SdkConfig>,
    made: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl fmt::Debug for Aws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aws")
            .field("config", &self.config)
            .field("sdk", &self.inner.sdk.get())
            .finish_non_exhaustive()
    }
}

impl Aws {
    /// Loads the standard AWS environment now.
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
        Aws::new(config, tokio::sync::OnceCell::new_with(Some(sdk)))
    }

    fn new(config: AwsConfig, sdk: tokio::sync::OnceCell<SdkConfig>) -> Aws {
        Aws {
            config,
            inner: Arc::new(Shared {
                sdk,
                made: Mutex::default(),
            }),
        }
    }

    /// The one `T` of these settings (a client with state of its own, say), made by `make`
    /// at its first use and shared by every clone of this `Aws`.
    pub(crate) fn shared<T, F>(&self, make: F) -> Arc<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> T,
    {
        let key = TypeId::of::<T>();
        let Ok(mut map) = self.inner.made.lock() else {
            // A panic elsewhere while holding the lock: one of its own still works.
            return Arc::new(make());
        };
        if let Some(found) = map.get(&key).and_then(|v| v.clone().downcast::<T>().ok()) {
            return found;
        }
        let made = Arc::new(make());
        map.insert(key, made.clone());
        made
    }

    /// The SDK client of one service, built once for these settings (by `new`, e.g.
    /// `aws.client(aws_sdk_lambda::Client::new)`, resolving them first if they are not
    /// yet) and shared by every target made from them; one per client type.
    pub async fn client<C>(&self, new: fn(&SdkConfig) -> C) -> C
    where
        C: Clone + Send + Sync + 'static,
    {
        let sdk = self.sdk_config().await;
        (*self.shared(|| new(sdk))).clone()
    }

    /// A handle on one service's client that builds it at its first use.
    pub(crate) fn lazy_client<C>(&self, new: fn(&SdkConfig) -> C) -> LazyClient<C> {
        LazyClient {
            aws: self.clone(),
            new,
            pin: None,
        }
    }

    /// The settings as data.
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// Whether the settings are resolved (a lazy `Aws` is until its first use).
    pub fn is_resolved(&self) -> bool {
        self.inner.sdk.initialized()
    }

    /// The region the clients send to, if known without resolving anything: the one given,
    /// else the resolved settings' (`None` until a lazy `Aws` is first used).
    pub fn known_region(&self) -> Option<String> {
        self.config.region.clone().or_else(|| {
            self.inner
                .sdk
                .get()
                .and_then(|s| s.region().map(|r| r.as_ref().to_string()))
        })
    }

    /// Resolves the settings now (if they are not yet) and checks that they can be used:
    /// they name a region and the credentials chain yields credentials (which may mean a
    /// call to an identity provider). For a person who wants a configuration problem to
    /// show before anything else; a target does not need it.
    pub async fn ensure_ready(&self) -> Result<()> {
        use aws_credential_types::provider::ProvideCredentials;
        let sdk = self.sdk_config().await;
        if sdk.region().is_none() {
            return Err(rollback_core::Error::invalid(
                "aws",
                "no AWS region is configured; set AWS_REGION, a profile's region, or AwsConfig::region",
            ));
        }
        let Some(provider) = sdk.credentials_provider() else {
            return Err(rollback_core::Error::invalid(
                "aws",
                "no AWS credentials provider is configured; set AWS credentials (environment, profile, SSO or an instance role)",
            ));
        };
        match provider.provide_credentials().await {
            Ok(_) => Ok(()),
            Err(e) => Err(rollback_core::Error::invalid(
                "aws",
                "no AWS credentials could be loaded; set AWS credentials (environment, profile, SSO or an instance role), or check the profile named",
            )
            .with_source(e)),
        }
    }

    /// The SDK configuration (resolved now if it is not yet), for clients of your own.
    pub async fn sdk_config(&self) -> &SdkConfig {
        self.inner.sdk.get_or_init(|| self.config.resolve()).await
    }
}

/// One service's SDK client of an [`Aws`], built (the settings resolved) at its first use.
#[derive(Clone)]
pub(crate) struct LazyClient<C> {
    aws: Aws,
    new: fn(&SdkConfig) -> C,
    pin: Option<Arc<RegionPin>>,
}

/// The region of an ARN a target was given, still to be checked against the region the
/// client sends to (unknown until the settings are resolved).
struct RegionPin {
    target: TargetId,
    what: &'static str,
    region: String,
}

impl<C: Clone + Send + Sync + 'static> LazyClient<C> {
    /// This client, refusing to send anything for `target` unless it sends to `region` (the
    /// region of the `what` ARN the target was given, if it was): checked now when the
    /// region is known, else at the first [`get`](Self::get).
    pub(crate) fn pinned(
        mut self,
        target: &TargetId,
        what: &'static str,
        region: Option<&str>,
    ) -> Result<Self> {
        let Some(region) = region.filter(|r| !r.is_empty()) else {
            return Ok(self);
        };
        match self.aws.known_region() {
            Some(known) => crate::arn::check_region(target, what, region, Some(&known))?,
            None => {
                self.pin = Some(Arc::new(RegionPin {
                    target: target.clone(),
                    what,
                    region: region.to_string(),
                }))
            }
        }
        Ok(self)
    }

    /// The settings it is built from.
    pub(crate) fn aws(&self) -> &Aws {
        &self.aws
    }

    /// The ARN of `resource` of `service` in the region this client sends to (`*` when it
    /// is not known yet), account `*`: for `permissions`.
    pub(crate) fn arn(&self, service: &str, resource: &str) -> String {
        rollback_core::permission::aws_arn(service, self.aws.known_region().as_deref(), resource)
    }

    /// The client; an error only when the target was given an ARN of another region.
    pub(crate) async fn get(&self) -> Result<C> {
        if let Some(pin) = &self.pin {
            let sdk = self.aws.sdk_config().await;
            let region = sdk.region().map(|r| r.as_ref());
            crate::arn::check_region(&pin.target, pin.what, &pin.region, region)?;
        }
        Ok(self.aws.client(self.new).await)
    }
}

/// Settings by the [`AwsConfig`] they come from: each distinct configuration is resolved
/// (credentials chain included) once, at its first use, however many targets use it. What
/// a [`Registry`](rollback_core::Registry) filled by [`register`](crate::register) or
/// [`register_with`](crate::register_with) rebuilds a journal's targets with.
///
/// A configuration is resolved against the standard AWS environment, so the `AWS_*`
/// variables when it is asked for are part of what it is cached by: a changed environment
/// is resolved anew. An [`Aws`] given with [`AwsCache::with`] serves its own configuration
/// ([`Aws::config`]) whatever the environment, credentials and all.
///
/// Clones share the cache.
#[derive(Clone, Default)]
pub struct AwsCache {
    given: Option<Aws>,
    loaded: Arc<Mutex<HashMap<(AwsConfig, EnvKey), Aws>>>,
}

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

    /// The settings for `config`, without resolving anything: the given [`Aws`] if it is
    /// its configuration, else the one `Aws` of this cache for `config` (per environment),
    /// resolved at its first use ([`AwsConfig::lazy`]).
    pub fn lazy(&self, config: &AwsConfig) -> Aws {
        if let Some(aws) = self.given.as_ref().filter(|a| a.config() == config) {
            return aws.clone();
        }
        let mut env: EnvKey = std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_"))
            .collect();
        env.sort();
        match self.loaded.lock() {
            Ok(mut m) => m
                .entry((config.clone(), env))
                .or_insert_with(|| config.clone().lazy())
                .clone(),
            // A panic elsewhere while holding the lock: settings of its own.
            Err(_) => config.clone().lazy(),
        }
    }

    /// The settings for `config` as [`lazy`](Self::lazy) gives them, resolved now.
    pub async fn get(&self, config: &AwsConfig) -> Aws {
        let aws = self.lazy(config);
        aws.sdk_config().await;
        aws
    }

    /// How many configurations were resolved (the given [`Aws`] not counted).
    pub fn resolved(&self) -> usize {
        self.loaded
            .lock()
            .map(|m| m.values().filter(|a| a.is_resolved()).count())
            .unwrap_or(0)
    }
}

impl From<Aws> for AwsCache {
    fn from(aws: Aws) -> Self {
        AwsCache::with(aws)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
        let first = a.shared(|| made.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let again = a
            .clone()
            .shared(|| made.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(made.into_inner(), 1);
        // What the cache hands out again is the same loaded configuration, clients and all.
        let b = cache.get(&config).await;
        assert!(Arc::ptr_eq(&first, &b.shared(|| 7usize)));

        let given = config.clone().load().await;
        let cache = AwsCache::from(given);
        assert_eq!(cache.get(&config).await.config(), &config);
        assert_eq!(cache.resolved(), 0);
    }

    #[tokio::test]
    async fn lazy_settings_are_resolved_once_at_the_first_client() {
        let cache = AwsCache::new();
        let config = AwsConfig::default()
            .region("eu-west-1")
            .endpoint_url("http://127.0.0.1:9");
        let a = cache.lazy(&config);
        let b = cache.lazy(&config);
        assert!(!a.is_resolved() && cache.resolved() == 0);
        // A target made from it sends nothing and resolves nothing.
        let alias = crate::LambdaAlias::new(&a, "f", "live").unwrap();
        assert!(!b.is_resolved(), "{alias:?}");
        let (x, y) = tokio::join!(
            a.client(aws_sdk_lambda::Client::new),
            b.client(aws_sdk_lambda::Client::new)
        );
        assert!(a.is_resolved() && b.is_resolved());
        assert_eq!(cache.resolved(), 1);
        assert_eq!(x.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(x.config().region(), y.config().region());
    }

    #[tokio::test]
    async fn an_arn_of_another_region_is_refused_at_once_or_at_the_first_call() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:f";
        let known = AwsConfig::default().region("us-east-1").lazy();
        let err = crate::LambdaAlias::new(&known, arn, "live").unwrap_err();
        assert!(err.to_string().contains("region eu-west-1"), "{err}");
        assert!(!known.is_resolved());
        // The region is not known until the settings are resolved: the first call refuses,
        // before it sends anything.
        let later = AwsConfig::default().lazy();
        let alias = crate::LambdaAlias::new(&later, arn, "live").unwrap();
        let resolved = SdkConfig::builder()
            .region(Region::new("us-east-1"))
            .build();
        later.inner.sdk.set(resolved).unwrap();
        let err = rollback_core::RollbackTarget::current(&alias)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), rollback_core::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("region eu-west-1"), "{err}");
    }
}
