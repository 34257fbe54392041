//! The cache invalidation after a rollback (runbook 002 "Cache Invalidation"): a CloudFront
//! invalidation as an on-success action, so viewers get the rolled-back release rather
//! than the bad one from the edge caches.
//!
//! ```no_run
//! # async fn demo(aws: &rollback_aws::Aws, b: rollback_core::TransactionBuilder) -> rollback_core::Result<()> {
//! use std::sync::Arc;
//! use rollback_aws::CloudFrontInvalidation;
//! let b = b.on_success(Arc::new(CloudFrontInvalidation::new(aws, "E2QWRUHAPOMQZL", ["/*"])?));
//! # Ok(()) }
//! ```
//!
//! Preflight (dry runs included) checks the paths (each starts with `/`, at most 4,000
//! characters, a `*` only at the end; at most 3,000 paths, 15 of them wildcards: the most
//! CloudFront lets be in progress at once) and reads the distribution (GetDistribution), so
//! a wrong id stops the run before anything changes. After the run succeeded,
//! CreateInvalidation is sent with a CallerReference made of the transaction id and the
//! paths: a resume sending it again gets the same invalidation back, never a second one.
//! The action then waits (bounded, [`CloudFrontInvalidation::timeout`], 20 minutes by
//! default) until GetInvalidation says `Completed`, and reports the invalidation id.
//!
//! The journal records its parameters ([`AfterAction::spec`]), so a resume (`rollback
//! resume` included) rebuilds it from a registry that knows this crate's kinds.
//!
//! Runbook files name it under `on_success:` as
//! `cloudfront_invalidation: {distribution: E2QWRUHAPOMQZL, paths: ["/*"]}` (registry
//! action kind `cloudfront-invalidation`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use aws_sdk_cloudfront::Client;
use rollback_core::transaction::{ActionRun, AfterAction};
use rollback_core::wait::{poll_until, PollSchedule, RetryPolicy};
use rollback_core::{Error, Progress, Registry, Result, Stability, TargetId, TargetSpec};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{Aws, AwsCache, AwsConfig};
use crate::error::{check_name, sdk_error};

/// The registry action kind (runbook `cloudfront_invalidation:`).
pub const KIND: &str = "cloudfront-invalidation";
/// The most paths of one batch: CloudFront lets 3,000 files be invalidated at once per
/// distribution.
pub const MAX_PATHS: usize = 3000;
/// The most wildcard paths (`/images/*`) of one batch: CloudFront lets 15 be in progress at
/// once per distribution.
pub const MAX_WILDCARD_PATHS: usize = 15;
/// The longest path CloudFront takes, in characters.
pub const MAX_PATH_CHARS: usize = 4000;
/// How long an invalidation is waited for by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// A CloudFront invalidation of some paths of one distribution, run as an on-success (or
/// on-failure) action; see the [module docs](self).
#[derive(Clone)]
pub struct CloudFrontInvalidation {
    distribution: String,
    paths: Vec<String>,
    timeout: Duration,
    aws: AwsConfig,
    client: crate::config::LazyClient<Client>,
    id: TargetId,
}

impl std::fmt::Debug for CloudFrontInvalidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudFrontInvalidation")
            .field("distribution", &self.distribution)
            .field("paths", &self.paths)
            .field("timeout", &self.timeout)
            .field("aws", &self.aws)
            .finish()
    }
}

/// Its runbook parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    distribution: String,
    paths: Vec<String>,
    /// How long it is waited for, in milliseconds (a runbook's `timeout: 20m`).
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    aws: AwsConfig,
}

impl CloudFrontInvalidation {
    /// An invalidation of `paths` (`"/*"`, `"/index.html"`) of the distribution whose id is
    /// `distribution` (`E2QWRUHAPOMQZL`, not its domain name or ARN). The id and the paths
    /// are checked here, before anything is sent.
    pub fn new<P: Into<String>>(
        aws: &Aws,
        distribution: impl Into<String>,
        paths: impl IntoIterator<Item = P>,
    ) -> Result<Self> {
        let distribution = distribution.into();
        let action = CloudFrontInvalidation {
            id: TargetId::new("cloudfront-distribution", &distribution),
            distribution,
            paths: paths.into_iter().map(Into::into).collect(),
            timeout: DEFAULT_TIMEOUT,
            aws: aws.config().clone(),
            client: aws.lazy_client(Client::new),
        };
        action.check()?;
        Ok(action)
    }

    /// Waits at most `timeout` for the invalidation to be Completed (default 20 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The distribution's id.
    pub fn distribution(&self) -> &str {
        &self.distribution
    }

    /// The paths invalidated.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Teaches `registry` the action kind `cloudfront-invalidation` (parameters
    /// `distribution`, `paths`, optional `timeout_ms` and `aws`), built with the AWS settings
    /// from `cache`.
    pub fn register(registry: &mut Registry, cache: &AwsCache) {
        let cache = cache.clone();
        registry.register_action(KIND, move |params| {
            let cache = cache.clone();
            async move {
                let p: Params = serde_json::from_value(params).map_err(|e| {
                    Error::invalid(
                        KIND,
                        format!("{e}; give distribution: (its id, E...) and paths: [\"/*\"]"),
                    )
                })?;
                let aws = cache.get(&p.aws).await;
                let action = Self::new(&aws, p.distribution, p.paths)?;
                Ok(std::sync::Arc::new(match p.timeout_ms {
                    Some(ms) => action.timeout(Duration::from_millis(ms)),
                    None => action,
                }) as std::sync::Arc<dyn AfterAction>)
            }
        });
    }

    fn target(&self) -> String {
        self.id.to_string()
    }

    /// Refuses an id or paths CloudFront would refuse, saying what to pass.
    fn check(&self) -> Result<()> {
        let expected =
            "the distribution's id, e.g. `E2QWRUHAPOMQZL` (aws cloudfront list-distributions)";
        check_name(&self.id, "distribution", &self.distribution, expected)?;
        if !self.distribution.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid(
                self.target(),
                format!(
                    "{:?} is not a distribution id (a domain name or ARN?); pass {expected}",
                    rollback_core::redact::truncate(&self.distribution, 80)
                ),
            ));
        }
        let invalid = |message: String| Err(Error::invalid(self.target(), message));
        if self.paths.is_empty() {
            return invalid("no paths to invalidate; pass at least one, e.g. \"/*\"".into());
        }
        if self.paths.len() > MAX_PATHS {
            return invalid(format!(
                "{} paths to invalidate, more than CloudFront's {MAX_PATHS} at a time; invalidate a wildcard (\"/assets/*\") instead",
                self.paths.len()
            ));
        }
        for p in &self.paths {
            let shown = rollback_core::redact::truncate(p, 80);
            if !p.starts_with('/') {
                return invalid(format!(
                    "the path {shown:?} does not start with /; paths are from the distribution's root, e.g. \"/index.html\""
                ));
            }
            if p.chars().count() > MAX_PATH_CHARS {
                return invalid(format!(
                    "the path {shown:?} is longer than CloudFront's {MAX_PATH_CHARS} characters; invalidate a wildcard instead"
                ));
            }
            if p.chars().any(char::is_control) || p.trim_end_matches('*').contains('*') {
                return invalid(format!(
                    "the path {shown:?} has a control character or a * before its end; CloudFront takes a * only as the last character, e.g. \"/images/*\""
                ));
            }
        }
        let wildcards = self.paths.iter().filter(|p| p.ends_with('*')).count();
        if wildcards > MAX_WILDCARD_PATHS {
            return invalid(format!(
                "{wildcards} wildcard paths, more than CloudFront's {MAX_WILDCARD_PATHS} in progress at once; use fewer, wider ones (\"/*\")"
            ));
        }
        Ok(())
    }

    /// The CallerReference of this invalidation in transaction `transaction`: the same on
    /// every resume of the run, so CloudFront returns the invalidation it made rather than
    /// making another, and another for other paths of the same distribution.
    fn caller_reference(&self, run: &ActionRun) -> String {
        let mut digest = Sha256::new();
        for p in &self.paths {
            digest.update(p.as_bytes());
            digest.update([0]);
        }
        let hex: String = digest.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("rollback-{}-{}-{hex}", run.transaction, run.when)
    }

    /// CreateInvalidation, idempotent by its CallerReference; the invalidation's id.
    async fn create(&self, run: &ActionRun) -> Result<String> {
        let paths = Paths::builder()
            .quantity(self.paths.len() as i32)
            .set_items(Some(self.paths.clone()))
            .build()
            .map_err(|e| Error::invalid(self.target(), e.to_string()))?;
        let batch = InvalidationBatch::builder()
            .paths(paths)
            .caller_reference(self.caller_reference(run))
            .build()
            .map_err(|e| Error::invalid(self.target(), e.to_string()))?;
        let out = self
            .client
            .get()
            .await?
            .create_invalidation()
            .distribution_id(&self.distribution)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "CreateInvalidation", e))?;
        out.invalidation()
            .map(|i| i.id().to_string())
            .ok_or_else(|| {
                Error::backend(
                    self.target(),
                    "CreateInvalidation answered without an invalidation; check that the endpoint is AWS",
                    false,
                )
            })
    }

    /// Waits until invalidation `id` is Completed.
    async fn completed(&self, id: &str) -> Result<()> {
        let what = format!("invalidation {id} to complete");
        poll_until(
            &self.target(),
            &what,
            self.timeout,
            // An invalidation is never done at once.
            PollSchedule::stability().first_look(Duration::from_millis(250)),
            &Progress::none(),
            || async {
                let out = self
                    .client
                    .get()
                    .await?
                    .get_invalidation()
                    .distribution_id(&self.distribution)
                    .id(id)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.id, "GetInvalidation", e))?;
                let status = out.invalidation().map(|i| i.status()).unwrap_or("");
                Ok(if status.eq_ignore_ascii_case("completed") {
                    Stability::Stable
                } else {
                    Stability::Waiting(format!("invalidation {id} is {status}"))
                })
            },
        )
        .await
    }
}

#[async_trait]
impl AfterAction for CloudFrontInvalidation {
    /// The distribution read, an invalidation made and read until it completes.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let distribution = format!("arn:aws:cloudfront::*:distribution/{}", self.distribution);
        Some(rollback_core::Permission::aws_all(
            &[
                "cloudfront:GetDistribution",
                "cloudfront:CreateInvalidation",
                "cloudfront:GetInvalidation",
            ],
            &distribution,
        ))
    }

    fn name(&self) -> String {
        format!(
            "invalidate CloudFront {} {}",
            self.distribution,
            self.paths.join(" ")
        )
    }

    /// Outside a transaction (no run to key the request on): a CallerReference of its own
    /// for each call.
    async fn run(&self) -> Result<String> {
        let run = ActionRun::new(
            uuid::Uuid::new_v4().to_string(),
            rollback_core::transaction::ActionWhen::OnSuccess,
        );
        self.run_in(&run).await
    }

    async fn run_in(&self, run: &ActionRun) -> Result<String> {
        // Idempotent by its CallerReference, so throttling (TooManyInvalidationsInProgress
        // included) and transient errors are retried.
        let id = RetryPolicy::default()
            .run(|| self.create(run), |_, _, _| {})
            .await?;
        self.completed(&id).await?;
        Ok(format!(
            "invalidation {id} of {} path(s) Completed",
            self.paths.len()
        ))
    }

    fn validate(&self) -> Result<()> {
        self.check()
    }

    /// Its parameters and AWS settings (never credentials), so that a resume rebuilds it
    /// from the journal (`rollback resume`).
    fn spec(&self) -> Option<TargetSpec> {
        Some(TargetSpec::new(
            KIND,
            serde_json::json!({
                "distribution": self.distribution,
                "paths": self.paths,
                "timeout_ms": self.timeout.as_millis() as u64,
                "aws": self.aws,
            }),
        ))
    }

    async fn preflight(&self) -> Result<()> {
        self.client
            .get()
            .await?
            .get_distribution()
            .id(&self.distribution)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&self.id, "GetDistribution", e))
    }
}
