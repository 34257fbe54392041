//! [`SecretVersion`]: a Secrets Manager secret rolled back by moving its `AWSCURRENT` label.
//!
//! By hand (runbook 001, "Configuration Rollback / Secrets Manager") this is
//! `list-secret-version-ids` then `update-secret-version-stage --version-stage AWSCURRENT
//! --move-to-version-id PREVIOUS --remove-from-version-id CURRENT`. Runbook 002 does it
//! by reading the old value and writing it back, which puts the secret on the command
//! line and in shell history; moving the label needs no value at all.
//!
//! This target never calls `GetSecretValue`: revisions are version ids, their creation
//! time and their staging labels, and no secret value appears in a revision, plan, error,
//! journal or `Debug` output.
//!
//! Moving `AWSCURRENT` is atomic, and Secrets Manager moves `AWSPREVIOUS` to the version
//! it came from, so a second rollback undoes the first.
//!
//! ## Consumers
//!
//! Services that read the secret at start-up (ECS tasks with `secrets` in their task
//! definition) keep the old value until they restart, so a secret rolled back alone changes
//! nothing they do. Name them with [`SecretVersion::consumers`]: once `AWSCURRENT` has
//! moved, each gets a new deployment (UpdateService with forceNewDeployment, as runbook 001
//! does by hand), and the step is stable when the secret is and every consumer runs its
//! new deployment to the end (botocore's `ServicesStable`: one deployment, every task
//! running; a FAILED rollout fails the step, and the transaction puts the secret back).
//! Putting the secret back (compensation, or a temporary step's end) restarts them again,
//! so none keeps the rolled-back value. The plan lists the consumers it restarts.
//!
//! A resumed run does not restart a consumer twice: a consumer whose PRIMARY deployment
//! was created after the run journaled its intent ([`Change::since`]) was restarted by the
//! run that crashed. (That compares ECS's clock with this machine's: keep it synchronised.)
//!
//! Kubernetes workloads (and any other backend's) are consumers too, given as their restart
//! target with [`SecretVersion::consumer`]: `rollback_k8s::Deployment::restart()` is
//! kubectl's `rollout restart`, waited for by kubectl's rules. In a runbook file, or a
//! journal, such a consumer is its target as data (`{kind: k8s-deployment-restart,
//! namespace, name}`), built through the registry the secret is built from, so register
//! both crates' kinds (`rollback_aws::register`, `rollback_k8s::register`). A restart made
//! at or after the second of the intent counts as made on resume.
//!
//! ```no_run
//! use rollback_aws::{Aws, SecretVersion};
//! use rollback_core::{RollbackTarget, Selector};
//!
//! # async fn demo() -> rollback_core::Result<()> {
//! let aws = Aws::from_env().await;
//! let jwt = SecretVersion::new(&aws, "agentauri/production/jwt-secret")?;
//! let previous = jwt.resolve(&Selector::Previous).await?; // the AWSPREVIOUS version
//! let change = jwt.plan(&previous).await?;
//! jwt.apply(&change).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::types::SecretVersionsListEntry;
use chrono::{DateTime, SubsecRound, Utc};
use rollback_core::{
    ApplyOutcome, Change, Diff, DiffBuilder, DiffSection, Error, ErrorKind, Progress, Result,
    Revision, RollbackTarget, Selector, Stability, TargetId, TargetSpec,
};
use serde::{Deserialize, Serialize};

use crate::arn;
use crate::config::{Aws, AwsConfig};
use crate::ecs::EcsService;
use crate::error::{check_name, sdk_error};
use crate::sdk::{all_pages, chrono_time};
use crate::target::{self, debug_as_target, AwsTarget};

/// The kind of [`SecretVersion`] targets: `"secret-version"`.
pub const KIND: &str = "secret-version";

/// The staging label of the version in use.
pub const AWSCURRENT: &str = "AWSCURRENT";

/// The staging label Secrets Manager moves to the version `AWSCURRENT` left.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// The revision fact listing a version's staging labels, e.g. `"AWSCURRENT"`.
pub const STAGES_FACT: &str = "stages";

/// A [`SecretVersion`] as data (what the journal records, beside the AWS settings); never
/// values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Params {
    secret_id: String,
    /// The consumers restarted after `AWSCURRENT` moves.
    #[serde(default)]
    consumers: Vec<ConsumerParams>,
}

/// A consumer as data: an ECS service by its names (`{cluster, service}`), or any restart
/// target as a runbook names it (`{kind: k8s-deployment-restart, namespace, name}`), built
/// through the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum ConsumerParams {
    /// A restart target of any backend.
    Target {
        kind: String,
        #[serde(flatten)]
        params: serde_json::Map<String, serde_json::Value>,
    },
    /// An ECS service.
    Ecs(crate::ecs::Params),
}

/// The suffix of the kinds a consumer may be: restart targets (`ecs-restart`,
/// `k8s-deployment-restart`, `k8s-statefulset-restart`, `k8s-daemonset-restart`).
pub const RESTART_SUFFIX: &str = "-restart";

/// A Secrets Manager secret whose revisions are its labelled versions.
///
/// Its [`TargetId`] is `secret-version/<secret id>`. `Previous` is the version labelled
/// `AWSPREVIOUS` (what Secrets Manager itself calls the previous value); the other
/// selectors use the shared rules over the history, newest first by creation date.
#[derive(Clone)]
pub struct SecretVersion {
    secret_id: String,
    aws: AwsConfig,
    client: crate::config::LazyClient<aws_sdk_secretsmanager::Client>,
    id: TargetId,
    consumers: Vec<EcsService>,
    /// Consumers of other kinds: restart targets ([`SecretVersion::consumer`]).
    restarts: Vec<Arc<dyn RollbackTarget>>,
    /// The settings the consumers are made with.
    shared: Aws,
}

debug_as_target!(SecretVersion);

impl AwsTarget for SecretVersion {
    const KIND: &'static str = KIND;
    type Params = Params;

    fn params(&self) -> Params {
        Params {
            secret_id: self.secret_id.clone(),
            consumers: self
                .consumers
                .iter()
                .map(|c| ConsumerParams::Ecs(c.names()))
                .chain(self.restarts.iter().map(|t| restart_params(t.as_ref())))
                .collect(),
        }
    }

    fn aws(&self) -> &AwsConfig {
        &self.aws
    }

    /// Without a registry to build them, consumers of other kinds are refused (the
    /// registry's factory, [`register`], builds them).
    fn from_params(aws: &Aws, p: Params) -> Result<Self> {
        let (secret, others) = Self::with_services(aws, p)?;
        match others.first() {
            None => Ok(secret),
            Some(other) => Err(Error::invalid(
                secret.target(),
                format!(
                    "consumer of kind {:?} needs a registry to be built from",
                    other.kind
                ),
            )),
        }
    }
}

impl SecretVersion {
    /// The secret of `p` with its ECS consumers, and the specs of its other consumers.
    fn with_services(aws: &Aws, p: Params) -> Result<(Self, Vec<TargetSpec>)> {
        let (mut services, mut others) = (Vec::new(), Vec::new());
        for c in p.consumers {
            match c {
                ConsumerParams::Ecs(c) => services.push((c.cluster, c.service)),
                ConsumerParams::Target { kind, params } => others.push(TargetSpec {
                    kind,
                    params: serde_json::Value::Object(params),
                }),
            }
        }
        Ok((Self::new(aws, p.secret_id)?.consumers(services)?, others))
    }
}

/// A consumer's stability as the secret's, named, or `None` when it is stable.
fn of_consumer(name: &str, s: Stability) -> Option<Stability> {
    match s {
        Stability::Stable => None,
        Stability::Waiting(m) => Some(Stability::Waiting(format!("consumer {name}: {m}"))),
        Stability::Failed(m) => Some(Stability::Failed(format!("consumer {name}: {m}"))),
    }
}

/// `progress` with each message prefixed by consumer `name`.
fn consumer_progress(progress: &Progress, name: String) -> Progress {
    let progress = progress.clone();
    Progress::new(move |m: &str| progress.report(&format!("consumer {name}: {m}")))
}

/// A restart target's spec as a consumer's parameters: its kind beside its own parameters.
fn restart_params(t: &dyn RollbackTarget) -> ConsumerParams {
    let spec = t.spec();
    let params = match spec.params {
        serde_json::Value::Object(m) => m,
        // SecretVersion::consumer takes only targets whose parameters are a map.
        _ => serde_json::Map::new(),
    };
    ConsumerParams::Target {
        kind: spec.kind,
        params,
    }
}

/// Registers kind [`KIND`]: the secret from its parameters, and its consumers of other
/// kinds (Kubernetes workloads' restarts, say) built by the registry it is built from, so
/// the crate that registers those kinds may register them before or after this one.
pub(crate) fn register(registry: &mut rollback_core::Registry, cache: &crate::config::AwsCache) {
    let cache = cache.clone();
    registry.register_nested(KIND, move |spec: TargetSpec, registry| {
        let cache = cache.clone();
        async move {
            let spec: target::Spec<Params> = spec.params()?;
            let aws = cache.get(&spec.aws).await;
            let (mut secret, others) = SecretVersion::with_services(&aws, spec.params)?;
            for other in others {
                let id = TargetId::new(&other.kind, format!("consumer of {}", secret.id.name));
                let built = registry.build(&id, &other).await.map_err(|e| {
                    Error::invalid(secret.target(), format!("consumer: {e}")).with_source(e)
                })?;
                secret = secret.consumer(built)?;
            }
            Ok(Arc::new(secret) as Arc<dyn RollbackTarget>)
        }
    });
}

impl SecretVersion {
    /// The secret `secret_id` (a name or ARN), with the given AWS settings.
    ///
    /// Fails with [`Error::InvalidInput`] when the id is empty or holds whitespace, or is
    /// an ARN that is not a Secrets Manager secret's in the configured region; nothing is
    /// sent to AWS until the target is used.
    pub fn new(aws: &Aws, secret_id: impl Into<String>) -> Result<Self> {
        let secret_id = secret_id.into();
        let id = TargetId::new(KIND, secret_id.clone());
        check_name(
            &id,
            "secret",
            &secret_id,
            "the secret's name or ARN, e.g. `production/api/jwt-secret`",
        )?;
        let region = check_secret_arn(&id, &secret_id)?;
        let client = aws
            .lazy_client(aws_sdk_secretsmanager::Client::new)
            .pinned(&id, "secret", region)?;
        Ok(SecretVersion {
            secret_id,
            aws: aws.config().clone(),
            client,
            id,
            consumers: Vec::new(),
            restarts: Vec::new(),
            shared: aws.clone(),
        })
    }

    /// The ECS services (`(cluster, service)`) that read this secret when their tasks
    /// start: each gets a new deployment once `AWSCURRENT` has moved, and again when it is
    /// put back (see the module docs). Names are checked here, before anything is sent; a
    /// service named twice is refused.
    pub fn consumers<C, S>(mut self, services: impl IntoIterator<Item = (C, S)>) -> Result<Self>
    where
        C: Into<String>,
        S: Into<String>,
    {
        let mut consumers: Vec<EcsService> = Vec::new();
        for (cluster, service) in services {
            let svc = EcsService::new(&self.shared, cluster, service).map_err(|e| {
                Error::invalid(self.target(), format!("consumer: {e}")).with_source(e)
            })?;
            if consumers.iter().any(|c| c.names() == svc.names()) {
                return Err(Error::invalid(
                    self.target(),
                    format!(
                        "consumer {}/{} is named twice; name each service once",
                        svc.cluster(),
                        svc.service()
                    ),
                ));
            }
            consumers.push(svc);
        }
        self.consumers = consumers;
        Ok(self)
    }

    /// The consumer services ([`consumers`](Self::consumers)).
    pub fn consumer_services(&self) -> &[EcsService] {
        &self.consumers
    }

    /// Adds a consumer of any kind as its restart target: a Kubernetes workload's
    /// (`rollback_k8s::Deployment::restart()`, kubectl's `rollout restart`), or any target
    /// of a kind ending in `-restart` that restarts on `Selector::Previous` and whose current
    /// revision carries the time of its last restart ([`Revision::created_at`]). It is
    /// restarted and waited for with the ECS consumers, and not restarted again on resume
    /// if it restarted at or after the second the intent was journaled. Another kind, or a
    /// target added twice, is refused.
    pub fn consumer(mut self, restart: Arc<dyn RollbackTarget>) -> Result<Self> {
        let id = restart.id();
        if !id.kind.ends_with(RESTART_SUFFIX) {
            return Err(Error::invalid(
                self.target(),
                format!(
                    "consumer {id} is not a restart target; give the workload's restart (e.g. Deployment::restart()), a target of a kind ending in {RESTART_SUFFIX:?}"
                ),
            ));
        }
        if !restart.spec().params.is_object() {
            return Err(Error::invalid(
                self.target(),
                format!("consumer {id}: its parameters are not a map, so a journal or runbook cannot name it"),
            ));
        }
        if self.restarts.iter().any(|t| t.id() == id) {
            return Err(Error::invalid(
                self.target(),
                format!("consumer {id} is named twice; name each consumer once"),
            ));
        }
        self.restarts.push(restart);
        Ok(self)
    }

    /// The consumers of other kinds ([`consumer`](Self::consumer)).
    pub fn consumer_targets(&self) -> &[Arc<dyn RollbackTarget>] {
        &self.restarts
    }

    /// A new deployment of each consumer not restarted since `since` (all of them without
    /// a time), one at a time; how many were restarted.
    async fn restart_consumers(&self, since: Option<DateTime<Utc>>) -> Result<usize> {
        let mut restarted = 0;
        for c in &self.consumers {
            if let Some(since) = since {
                let svc = c.describe().await.map_err(|e| self.consumer_error(c, e))?;
                if crate::ecs::restarted_since(&svc, since) {
                    tracing::debug!(target = %self.id, consumer = %c.id(), "already restarted since the intent");
                    continue;
                }
            }
            c.force_restart(&self.id)
                .await
                .map_err(|e| self.consumer_error(c, e))?;
            restarted += 1;
        }
        for t in &self.restarts {
            let fail = |e: Error| self.restart_error(&t.id().to_string(), e);
            if let Some(since) = since {
                // Restart times may be whole seconds (kubectl's annotation is).
                let since = since.trunc_subsecs(0);
                let last = t.current().await.map_err(fail)?.created_at;
                if last.is_some_and(|at| at >= since) {
                    tracing::debug!(target = %self.id, consumer = %t.id(), "already restarted since the intent");
                    continue;
                }
            }
            let change = t.prepare(&Selector::Previous).await.map_err(fail)?;
            t.apply(&change).await.map_err(fail)?;
            restarted += 1;
        }
        Ok(restarted)
    }

    /// An error restarting consumer `c`, once `AWSCURRENT` may have moved: always a
    /// backend error (retryable as the cause is), never one of the kinds that tell the
    /// engine nothing was changed, so a failure here is compensated.
    fn consumer_error(&self, c: &EcsService, e: Error) -> Error {
        self.restart_error(&format!("{}/{}", c.cluster(), c.service()), e)
    }

    /// [`consumer_error`](Self::consumer_error) for the consumer called `name`.
    fn restart_error(&self, name: &str, e: Error) -> Error {
        let message = format!(
            "could not restart consumer {name} ({e}); AWSCURRENT has moved, so the run puts it back or a resume finishes it"
        );
        let retryable = e.is_retryable();
        Error::backend(self.target(), message, retryable).with_source(e)
    }

    /// Preflight's check of the consumers: each exists (described once), so a wrong name
    /// is refused before anything changes.
    async fn check_consumers(&self) -> Result<()> {
        for c in &self.consumers {
            c.describe().await.map_err(|e| {
                let name = format!("{}/{}", c.cluster(), c.service());
                self.refused_consumer(&name, "the ECS services", e)
            })?;
        }
        for t in &self.restarts {
            // What a restart checks before it is made (the workload exists, is not paused).
            t.resolve(&Selector::Previous)
                .await
                .map_err(|e| self.refused_consumer(&t.id().to_string(), "the workloads", e))?;
        }
        Ok(())
    }

    /// Preflight's error for consumer `name`: a wrong one (not found, or refused as
    /// invalid) is bad input telling to name `what` that read the secret; others are the
    /// backend's.
    fn refused_consumer(&self, name: &str, what: &str, e: Error) -> Error {
        let message = format!("consumer {name}: {e}");
        match e.kind() {
            ErrorKind::NotFound | ErrorKind::InvalidInput => Error::invalid(
                self.target(),
                format!("{message}; name {what} that read this secret"),
            ),
            _ => Error::backend(self.target(), message, e.is_retryable()),
        }
        .with_source(e)
    }

    /// The plan's lines for the consumers: each restarted.
    fn consumer_diff(&self, change: &mut Change) {
        if self.consumers.is_empty() && self.restarts.is_empty() {
            return;
        }
        let mut d = DiffBuilder::default();
        for c in &self.consumers {
            d.entry(
                DiffSection::Fact,
                &format!("consumer {}/{}", c.cluster(), c.service()),
                None,
                Some("new deployment".to_string()),
            );
        }
        for t in &self.restarts {
            d.entry(
                DiffSection::Fact,
                &format!("consumer {}", t.id()),
                None,
                Some("restarted".to_string()),
            );
        }
        change.diff.entries.extend(d.build().entries);
    }

    /// The secret with settings from the standard AWS environment.
    pub async fn from_env(secret_id: impl Into<String>) -> Result<Self> {
        let aws = Aws::from_env().await;
        Self::new(&aws, secret_id)
    }

    /// The Secrets Manager client, for calls of your own (the AWS settings resolved first if they
    /// are not yet).
    pub async fn client(&self) -> Result<aws_sdk_secretsmanager::Client> {
        self.client.get().await
    }

    /// The secret's name or ARN.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    fn target(&self) -> String {
        self.id.to_string()
    }

    /// The labelled versions, newest first (`ListSecretVersionIds`, every page).
    async fn versions(&self) -> Result<Vec<Revision>> {
        let pages = self
            .client
            .get()
            .await?
            .list_secret_version_ids()
            .secret_id(&self.secret_id)
            .include_deprecated(false)
            .into_paginator()
            .send();
        let mut revisions: Vec<Revision> = all_pages(&self.id, "ListSecretVersionIds", pages)
            .await?
            .iter()
            .flat_map(|p| p.versions().iter().filter_map(entry_revision))
            .collect();
        sort_newest_first(&mut revisions);
        Ok(revisions)
    }

    /// The version labelled `AWSCURRENT` in `history`.
    fn current_in(&self, history: &[Revision]) -> Result<Revision> {
        with_stage(history, AWSCURRENT).cloned().ok_or_else(|| {
            Error::not_found(
                self.target(),
                format!("a version labelled {AWSCURRENT}"),
                format!(
                    "the secret's labelled versions are {}; a secret without a value has nothing to roll back",
                    list_ids(history)
                ),
            )
        })
    }

    /// The version `selector` picks in `history`.
    fn select(&self, history: &[Revision], selector: &Selector) -> Result<Revision> {
        let current = self.current_in(history)?;
        if *selector == Selector::Previous {
            if let Some(previous) = with_stage(history, AWSPREVIOUS).filter(|r| r.id != current.id)
            {
                return Ok(previous.clone());
            }
        }
        selector.resolve(&self.id, history, &current.id)
    }

    /// The change from the `AWSCURRENT` version of `history` to version `to` of it.
    fn change_in(&self, history: &[Revision], to: &str) -> Result<Change> {
        let from = self.current_in(history)?;
        let to = self.revision_in(history, to)?;
        let diff = label_diff(&from, &to);
        let mut change = Change::new(self.id.clone(), from, to);
        change.diff = diff;
        Ok(change)
    }

    fn revision_in(&self, history: &[Revision], id: &str) -> Result<Revision> {
        history.iter().find(|r| r.id == id).cloned().ok_or_else(|| {
            Error::not_found(
                self.target(),
                format!("version {id:?}"),
                format!(
                    "the secret's labelled versions are {}; choose one of them",
                    list_ids(history)
                ),
            )
        })
    }
}

#[async_trait]
impl RollbackTarget for SecretVersion {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The secret's versions listed and its staging labels moved (never its value); and
    /// what its consumers need to be restarted.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let secret = if arn::is_arn(&self.secret_id) {
            self.secret_id.clone()
        } else {
            // Secret ARNs end in `-` and six random characters.
            self.client.arn(
                "secretsmanager",
                &format!("secret:{}-??????", self.secret_id),
            )
        };
        let mut p = rollback_core::Permission::aws_all(
            &[
                "secretsmanager:ListSecretVersionIds",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            &secret,
        );
        for c in &self.consumers {
            p.extend(c.restart_permissions());
        }
        for r in &self.restarts {
            p.extend(r.permissions()?);
        }
        Some(p)
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    async fn current(&self) -> Result<Revision> {
        let history = self.versions().await?;
        self.current_in(&history)
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        self.versions().await
    }

    /// `Previous` is the `AWSPREVIOUS` version when there is one; everything else (and
    /// `Previous` without `AWSPREVIOUS`) follows [`Selector::resolve`].
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        if let Selector::Exact(v) = selector {
            check_version_id(&self.id, v)?;
        }
        let history = self.versions().await?;
        self.select(&history, selector)
    }

    /// The change from the `AWSCURRENT` version to `to`, both read in one listing; an
    /// unknown version fails here, before anything changes.
    async fn plan(&self, to: &Revision) -> Result<Change> {
        let history = self.versions().await?;
        let mut change = self.change_in(&history, &to.id)?;
        self.check_consumers().await?;
        self.consumer_diff(&mut change);
        Ok(change)
    }

    /// Current, selected and the change from one listing.
    async fn prepare(&self, selector: &Selector) -> Result<Change> {
        if let Selector::Exact(v) = selector {
            check_version_id(&self.id, v)?;
        }
        let history = self.versions().await?;
        let to = self.select(&history, selector)?;
        let mut change = self.change_in(&history, &to.id)?;
        self.check_consumers().await?;
        if !change.is_noop() {
            self.consumer_diff(&mut change);
        }
        Ok(change)
    }

    /// Moves `AWSCURRENT` to `change.to` with `RemoveFromVersionId` set to the version
    /// holding it now. Secrets Manager has no revision token, but that parameter acts as
    /// one: it is refused if the label moved since the listing, and that is a conflict.
    /// Then restarts the consumers not restarted since [`Change::since`].
    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let moved = self.move_label(change).await?;
        let restarted = self.restart_consumers(change.since).await?;
        Ok(if restarted > 0 {
            ApplyOutcome::Applied
        } else {
            moved
        })
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        let history = self.versions().await?;
        let label = stage_stability(&history, &revision.id);
        if label != Stability::Stable {
            return Ok(label);
        }
        for c in &self.consumers {
            let svc = c.describe().await?;
            let name = format!("{}/{}", c.cluster(), c.service());
            if let Some(s) = of_consumer(&name, crate::ecs::restart_stability(&svc, None)) {
                return Ok(s);
            }
        }
        for t in &self.restarts {
            let now = t.current().await?;
            if let Some(s) = of_consumer(&t.id().to_string(), t.check_stable(&now).await?) {
                return Ok(s);
            }
        }
        Ok(Stability::Stable)
    }

    /// The label at once (one listing), then every consumer's new deployment, all waited
    /// for together within `timeout` on the ECS poller's grid.
    async fn wait_stable(
        &self,
        revision: &Revision,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<()> {
        let t0 = tokio::time::Instant::now();
        match stage_stability(&self.versions().await?, &revision.id) {
            Stability::Stable => {}
            Stability::Failed(m) | Stability::Waiting(m) => {
                return Err(Error::rollout_failed(self.target(), m))
            }
        }
        let left = timeout.saturating_sub(t0.elapsed());
        let waits = self.consumers.iter().map(|c| {
            let progress = consumer_progress(progress, format!("{}/{}", c.cluster(), c.service()));
            async move { c.wait_restarted(&self.id, left, &progress).await }
        });
        let others = self.restarts.iter().map(|t| {
            let progress = consumer_progress(progress, t.id().to_string());
            async move {
                // The restart in use: ours, or (resumed) the one the crashed run made.
                let now = t.current().await?;
                t.wait_stable(&now, left, &progress).await
            }
        });
        futures::future::try_join(
            futures::future::try_join_all(waits),
            futures::future::try_join_all(others),
        )
        .await?;
        Ok(())
    }
}

impl SecretVersion {
    async fn move_label(&self, change: &Change) -> Result<ApplyOutcome> {
        let to = &change.to.id;
        let history = self.versions().await?;
        let holder = self.current_in(&history)?;
        if &holder.id == to {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        if holder.id != change.from.id {
            return Err(Error::conflict(
                self.target(),
                change.from.id.clone(),
                holder.id,
            ));
        }
        // Check before sending: an unknown version must change nothing.
        self.revision_in(&history, to)?;
        let sent = self
            .client
            .get()
            .await?
            .update_secret_version_stage()
            .secret_id(&self.secret_id)
            .version_stage(AWSCURRENT)
            .move_to_version_id(to)
            .remove_from_version_id(&holder.id)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "UpdateSecretVersionStage", e));
        match sent {
            Ok(_) => Ok(ApplyOutcome::Applied),
            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                // Refused: see whether AWSCURRENT moved under us.
                let now = self.current().await?;
                if now.id != holder.id {
                    Err(
                        Error::conflict(self.target(), change.from.id.clone(), now.id)
                            .with_source(e),
                    )
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// A listed version as a revision; `None` without an id or without labels (deprecated
/// versions, which some emulators list even when asked not to).
fn entry_revision(e: &SecretVersionsListEntry) -> Option<Revision> {
    let id = e.version_id().filter(|v| !v.is_empty())?;
    if e.version_stages().is_empty() {
        return None;
    }
    let created = e.created_date().and_then(chrono_time);
    Some(version_revision(id, created, e.version_stages()))
}

/// The revision of one version: id, creation time, and its labels as a fact.
fn version_revision(id: &str, created: Option<DateTime<Utc>>, stages: &[String]) -> Revision {
    let mut stages: Vec<&str> = stages.iter().map(String::as_str).collect();
    stages.sort_unstable();
    stages.dedup();
    let mut rev = Revision::new(id);
    rev.created_at = created;
    if !stages.is_empty() {
        rev.facts.insert(STAGES_FACT.into(), stages.join(","));
    }
    rev
}

/// Newest first by creation date; equal (or missing) dates keep the API's order, undated
/// versions last.
fn sort_newest_first(revisions: &mut [Revision]) {
    revisions.sort_by(|a, b| match (a.created_at, b.created_at) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// What a person reviews: where `AWSCURRENT` goes and how old that version is. (The
/// versions' labels as they are now would read as if they were about to change.)
fn label_diff(from: &Revision, to: &Revision) -> Diff {
    let date = |r: &Revision| {
        r.created_at
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    let mut d = DiffBuilder::default();
    d.entry(
        DiffSection::Fact,
        AWSCURRENT,
        Some(from.id.clone()),
        Some(to.id.clone()),
    );
    d.entry(DiffSection::Fact, "created", date(from), date(to));
    d.build()
}

/// The labels of a revision, from its fact.
fn stages(revision: &Revision) -> impl Iterator<Item = &str> {
    revision
        .facts
        .get(STAGES_FACT)
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
}

/// The first revision that carries `stage`.
fn with_stage<'a>(history: &'a [Revision], stage: &str) -> Option<&'a Revision> {
    history.iter().find(|r| stages(r).any(|s| s == stage))
}

/// Stable when `version` holds `AWSCURRENT`. Moving the label is atomic, so once our
/// apply returned, the label anywhere else means someone else moved it: that fails at once
/// instead of waiting out the step's timeout.
fn stage_stability(history: &[Revision], version: &str) -> Stability {
    match with_stage(history, AWSCURRENT) {
        Some(r) if r.id == version => Stability::Stable,
        Some(r) => Stability::Failed(format!(
            "{AWSCURRENT} is on {}, not {version}; someone else changed it",
            r.id
        )),
        None => Stability::Failed(format!(
            "no version holds {AWSCURRENT}, not even {version}; someone else changed the secret"
        )),
    }
}

/// A secret given by ARN must be a Secrets Manager secret's, in the region the client sends
/// to (another account's is allowed: cross-account secrets are named by their full ARN).
pub(crate) fn check_secret_arn<'a>(id: &TargetId, secret_id: &'a str) -> Result<Option<&'a str>> {
    if !arn::is_arn(secret_id) {
        return Ok(None);
    }
    let (given, _) = arn::parse_as(
        id,
        "Secrets Manager secret",
        secret_id,
        "secretsmanager",
        "secret:",
        "the secret's name or its ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx)",
    )?;
    Ok(Some(given.region))
}

/// A version is chosen by its version id; an ARN there (the secret's, or anything else's)
/// names no version and is refused before anything is read.
fn check_version_id(id: &TargetId, version: &str) -> Result<()> {
    if arn::is_arn(version) {
        return Err(Error::invalid(
            id.to_string(),
            format!(
                "{version:?} is an ARN, not a version id; a secret version is chosen by its version id (ListSecretVersionIds), or with Previous for the {AWSPREVIOUS} version"
            ),
        ));
    }
    Ok(())
}

fn list_ids(history: &[Revision]) -> String {
    if history.is_empty() {
        return "none".into();
    }
    history
        .iter()
        .map(|r| r.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(secs, 0)
    }

    fn rev(id: &str, secs: Option<i64>, stages: &[&str]) -> Revision {
        let stages: Vec<String> = stages.iter().map(|s| s.to_string()).collect();
        version_revision(id, secs.and_then(at), &stages)
    }

    #[test]
    fn stages_become_a_sorted_fact() {
        let r = rev("v2", Some(2), &["AWSPREVIOUS", "AWSCURRENT", "AWSCURRENT"]);
        assert_eq!(r.facts[STAGES_FACT], "AWSCURRENT,AWSPREVIOUS");
        assert_eq!(stages(&r).collect::<Vec<_>>(), [AWSCURRENT, AWSPREVIOUS]);
        assert_eq!(stages(&Revision::new("x")).count(), 0);
    }

    #[test]
    fn listed_entries_become_revisions_and_deprecated_ones_are_dropped() {
        let e = SecretVersionsListEntry::builder()
            .version_id("abc")
            .version_stages("AWSCURRENT")
            .created_date(aws_smithy_types::DateTime::from_millis(1_700_000_000_500))
            .build();
        let r = entry_revision(&e).unwrap();
        assert_eq!(r.id, "abc");
        assert_eq!(r.created_at.unwrap().timestamp_millis(), 1_700_000_000_500);
        assert_eq!(r.facts[STAGES_FACT], "AWSCURRENT");
        let deprecated = SecretVersionsListEntry::builder().version_id("old").build();
        assert!(entry_revision(&deprecated).is_none());
    }

    #[test]
    fn newest_first_and_ties_keep_api_order() {
        let mut h = vec![
            rev("a", Some(1), &["x"]),
            rev("b", Some(5), &["x"]),
            rev("c", Some(3), &["x"]),
            rev("d", Some(5), &["x"]),
            rev("e", None, &["x"]),
        ];
        sort_newest_first(&mut h);
        let ids: Vec<&str> = h.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["b", "d", "c", "a", "e"]);
    }

    #[test]
    fn stability_follows_awscurrent() {
        let h = vec![
            rev("v2", Some(2), &[AWSCURRENT]),
            rev("v1", Some(1), &[AWSPREVIOUS]),
        ];
        assert_eq!(stage_stability(&h, "v2"), Stability::Stable);
        assert_eq!(
            stage_stability(&h, "v1"),
            Stability::Failed("AWSCURRENT is on v2, not v1; someone else changed it".into())
        );
        assert_eq!(with_stage(&h, AWSPREVIOUS).unwrap().id, "v1");
        assert!(with_stage(&h, "AWSPENDING").is_none());
    }

    #[test]
    fn the_plan_diff_shows_where_awscurrent_goes() {
        let from = rev("v2", Some(1_700_000_100), &[AWSCURRENT]);
        let to = rev("v1", Some(1_700_000_000), &[AWSPREVIOUS]);
        let text = label_diff(&from, &to).to_string();
        assert!(text.contains("~ fact AWSCURRENT: v2 -> v1"), "{text}");
        assert!(
            text.contains("~ fact created: 2023-11-14T22:15:00Z -> 2023-11-14T22:13:20Z"),
            "{text}"
        );
        assert!(!text.contains("stages"), "{text}");
    }

    #[test]
    fn empty_and_spaced_ids_are_refused_naming_the_target() {
        let id = TargetId::new(KIND, "");
        let e = check_name(&id, "secret", "  ", "x").unwrap_err();
        assert!(e.to_string().starts_with("secret-version/"), "{e}");
        assert!(e.to_string().contains("secret name is empty"), "{e}");
        assert!(check_name(&id, "secret", "a b", "x").is_err());
        assert!(check_name(&id, "secret", "prod/jwt", "x").is_ok());
    }
}
