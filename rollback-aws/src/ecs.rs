//! ECS services: roll a service back to a task-definition revision of its family.
//!
//! Calls per `Previous` step before waiting: 6. Preflight describes the service once, reads
//! one ListTaskDefinitions page (DESC; more only if the selector needs them, none for
//! `Exact`) and the two task definitions it compares; apply re-reads the service, then calls
//! UpdateService. Waits look on one 400 ms grid per [`Aws`] (1.6 s after 10 s, the first look
//! 250 ms in at the earliest): the services of a cluster due at one tick are described
//! together, ten per DescribeServices call (how, without a task of its own: `ecs/poll.rs`).
//!
//! Revisions are the ACTIVE task-definition revisions of the family the service runs (the
//! one in use is included even if it was deregistered). ListTaskDefinitions' DESC order is
//! trusted but checked: a page out of order makes the listing read every page and sort them.
//! Task definitions are immutable, so each is described once per target and cached (its
//! status too: a target does not see a revision deregistered after it read it). `Exact`
//! takes `N`, `family:N` or a task-definition ARN; an ARN of another account, region or
//! partition, or a revision of another family, is refused as invalid input (checked against
//! the service's own ARN, no extra call) instead of being read as this family's `family:N`.
//!
//! Stability follows botocore's `ServicesStable` waiter: MISSING, DRAINING and INACTIVE
//! fail; one deployment with `runningCount == desiredCount` succeeds. A primary deployment
//! whose `rolloutState` is FAILED (the deployment circuit breaker) fails at once instead of
//! waiting out the deadline.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::operation::list_task_definitions::{
    ListTaskDefinitionsError, ListTaskDefinitionsOutput,
};
use aws_sdk_ecs::types::{
    ContainerDefinition, Deployment, Service, SortOrder, TaskDefinitionStatus,
};
use aws_sdk_ecs::Client;
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use futures::stream::{self, StreamExt};
use rollback_core::revision::{Diff, DiffBuilder, DiffSection};
use rollback_core::{
    ApplyOutcome, Change, Error, ErrorKind, Progress, Result, Revision, RollbackTarget, Selector,
    Stability, TargetId, TargetSpec,
};
use serde::{Deserialize, Serialize};

use crate::arn::{self, Arn};
use crate::config::{Aws, AwsConfig};
use crate::error::{check_name, sdk_error};
use crate::sdk::{all_pages, all_pages_refused, chrono_time, MAX_PAGES};
use crate::target::{self, aws_target};

mod images;
mod poll;
mod restart;

use poll::Poller;
pub(crate) use restart::{restart_stability, restarted_since};

/// A target that is one aspect of an ECS service (its desired count, its restart): the
/// struct (the service and the id), its [`AwsTarget`] on the service's names, `Debug`, the
/// `EcsService` method that makes it, `new`, and the name getters.
macro_rules! service_aspect {
    ($(#[$attr:meta])* $t:ident, $kind:expr, $method:ident, $method_doc:literal, $new_doc:literal) => {
        $(#[$attr])*
        #[derive(Clone)]
        pub struct $t {
            svc: EcsService,
            id: TargetId,
        }

        crate::target::debug_as_target!($t);

        impl crate::target::AwsTarget for $t {
            const KIND: &'static str = $kind;
            type Params = Params;

            fn params(&self) -> Params {
                self.svc.names()
            }

            fn aws(&self) -> &AwsConfig {
                &self.svc.aws
            }

            fn from_params(aws: &Aws, p: Params) -> Result<Self> {
                Self::new(aws, p.cluster, p.service)
            }
        }

        impl EcsService {
            #[doc = $method_doc]
            pub fn $method(&self) -> $t {
                $t {
                    id: TargetId::new($kind, self.id.name.clone()),
                    svc: self.clone(),
                }
            }
        }

        impl $t {
            #[doc = $new_doc]
            pub fn new(
                aws: &Aws,
                cluster: impl Into<String>,
                service: impl Into<String>,
            ) -> Result<Self> {
                Ok(EcsService::new(aws, cluster, service)?.$method())
            }

            /// The cluster name.
            pub fn cluster(&self) -> &str {
                self.svc.cluster()
            }

            /// The service name.
            pub fn service(&self) -> &str {
                self.svc.service()
            }
        }
    };
}
pub use restart::{EcsRestart, RESTART_KIND};
use service_aspect;

/// The target kind.
pub const KIND: &str = "ecs-service";

/// An [`EcsDesiredCount`] or [`EcsRestart`] (or a secret's consumer) as data (what the
/// journal records, beside the AWS settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Params {
    pub(crate) cluster: String,
    pub(crate) service: String,
}

/// An [`EcsService`] as data: its names and whether its rollback forces a new deployment.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ServiceParams {
    cluster: String,
    service: String,
    #[serde(default)]
    force_new_deployment: bool,
    #[serde(default = "yes")]
    check_images: bool,
}

fn yes() -> bool {
    true
}

/// One container of a task definition, with environment values (kept only to compute the
/// plan's diff, where secret-looking values are redacted; never put in a revision).
#[derive(Clone)]
struct Container {
    name: String,
    image: String,
    env: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
}

#[derive(Clone)]
struct TaskDef {
    revision: Revision,
    containers: Vec<Container>,
}

/// An ECS service (`cluster/service`) whose task-definition revision can be rolled back.
#[derive(Clone)]
pub struct EcsService {
    cluster: String,
    service: String,
    aws: AwsConfig,
    client: crate::config::LazyClient<Client>,
    poller: Arc<Poller>,
    id: TargetId,
    cache: Arc<Mutex<HashMap<String, TaskDef>>>,
    force_new_deployment: bool,
    check_images: bool,
    ecr: crate::config::LazyClient<aws_sdk_ecr::Client>,
}

aws_target!(
    EcsService,
    KIND,
    ServiceParams {
        cluster,
        service,
        force_new_deployment,
        check_images
    },
    |aws, p| Ok(Self::new(aws, p.cluster, p.service)?
        .force_new_deployment(p.force_new_deployment)
        .check_images(p.check_images))
);

/// `family:14` from `family:14`, `arn:aws:ecs:...:task-definition/family:14`; `None` if
/// there is no revision number.
pub fn parse_task_definition(s: &str) -> Option<(String, u32)> {
    let tail = s
        .rsplit_once("task-definition/")
        .map(|(_, t)| t)
        .unwrap_or(s);
    let (family, rev) = tail.rsplit_once(':')?;
    if family.is_empty() || family.contains('/') {
        return None;
    }
    Some((family.to_string(), rev.parse().ok()?))
}

fn container(c: &ContainerDefinition) -> Container {
    Container {
        name: c.name().unwrap_or_default().to_string(),
        image: c.image().unwrap_or_default().to_string(),
        env: c
            .environment()
            .iter()
            .filter_map(|kv| {
                Some((
                    kv.name()?.to_string(),
                    kv.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        secrets: c
            .secrets()
            .iter()
            .map(|s| (s.name().to_string(), s.value_from().to_string()))
            .collect(),
    }
}

/// The environment names of a task definition: `KEY`, or `container/KEY` when it has
/// several containers.
fn env_keys(containers: &[Container]) -> Vec<String> {
    let several = containers.len() > 1;
    let mut keys: Vec<String> = containers
        .iter()
        .flat_map(|c| {
            c.env.keys().chain(c.secrets.keys()).map(move |k| {
                if several {
                    format!("{}/{k}", c.name)
                } else {
                    k.clone()
                }
            })
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// What `ServicesStable` (plus the circuit breaker) says about a described service and the
/// revision we wait for.
pub(crate) fn stability(svc: &Service, want: &str) -> Stability {
    let status = svc.status().unwrap_or_default();
    if matches!(status, "DRAINING" | "INACTIVE") {
        return Stability::Failed(format!("the service is {status}"));
    }
    let deployments = svc.deployments();
    let primary: Option<&Deployment> = deployments.iter().find(|d| d.status() == Some("PRIMARY"));
    let running_td = svc
        .task_definition()
        .and_then(parse_task_definition)
        .map(|(f, r)| format!("{f}:{r}"))
        .unwrap_or_default();
    if running_td != want {
        return Stability::Failed(format!(
            "the service now runs {running_td}, not {want}; someone else changed it"
        ));
    }
    if let Some(p) = primary {
        if p.rollout_state().map(|s| s.as_str()) == Some("FAILED") {
            return Stability::Failed(format!(
                "deployment of {want} failed: {}",
                p.rollout_state_reason().unwrap_or("rolloutState FAILED")
            ));
        }
    }
    let (running, desired) = (svc.running_count(), svc.desired_count());
    if deployments.len() == 1 && running == desired {
        return Stability::Stable;
    }
    let pending = svc.pending_count();
    let rollout = primary
        .and_then(|p| p.rollout_state())
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "no primary".into());
    Stability::Waiting(format!(
        "{} deployment(s); {running} of {desired} tasks running, {pending} pending; primary {want} {rollout}",
        deployments.len()
    ))
}

impl EcsService {
    /// A service target. Names must be non-empty.
    pub fn new(aws: &Aws, cluster: impl Into<String>, service: impl Into<String>) -> Result<Self> {
        let (cluster, service) = (cluster.into(), service.into());
        let id = TargetId::new(KIND, format!("{cluster}/{service}"));
        let example = "e.g. EcsService::new(&aws, \"agentauri-production\", \"api-gateway-v2\")";
        check_name(
            &id,
            "cluster",
            &cluster,
            &format!("the cluster's name or ARN, {example}"),
        )?;
        check_name(
            &id,
            "service",
            &service,
            &format!("the service's name, {example}"),
        )?;
        let client = aws.lazy_client(Client::new);
        let poller = aws.shared(|| Poller::new(client.clone()));
        Ok(EcsService {
            cluster,
            service,
            aws: aws.config().clone(),
            client,
            poller,
            id,
            cache: Arc::new(Mutex::new(HashMap::new())),
            force_new_deployment: false,
            check_images: true,
            ecr: aws.lazy_client(aws_sdk_ecr::Client::new),
        })
    }

    /// Whether the rollback (and its compensation) also forces a new deployment, as
    /// runbook 002's `aws ecs update-service --task-definition ... --force-new-deployment`
    /// does: every task is replaced, so tasks re-read their secrets and re-pull an image
    /// tag that was pushed again, even when the task definition did not change. A
    /// restart on its own is [`EcsService::restart`].
    pub fn force_new_deployment(mut self, force: bool) -> Self {
        self.force_new_deployment = force;
        self
    }

    /// Whether the rollback forces a new deployment ([`force_new_deployment`](Self::force_new_deployment)).
    pub fn forces_new_deployment(&self) -> bool {
        self.force_new_deployment
    }

    /// Its names as data (a secret consumer's or a sibling target's parameters).
    pub(crate) fn names(&self) -> Params {
        Params {
            cluster: self.cluster.clone(),
            service: self.service.clone(),
        }
    }

    /// A service target configured from the standard AWS environment.
    pub async fn from_env(cluster: impl Into<String>, service: impl Into<String>) -> Result<Self> {
        Self::new(&Aws::from_env().await, cluster, service)
    }

    /// The SDK client, for calls of your own (the AWS settings resolved first if they
    /// are not yet).
    pub async fn client(&self) -> Result<Client> {
        self.client.get().await
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The service as ECS describes it now. Calls made at the same moment for services of
    /// one cluster (a fleet's preflights and applies) share DescribeServices calls, ten
    /// services per call.
    pub async fn describe(&self) -> Result<Service> {
        let reason = match self.poller.describe_now(&self.cluster, &self.service).await {
            poll::Look::Found(svc) => return Ok(Arc::unwrap_or_clone(svc)),
            poll::Look::Failed(e) => return Err(poll::for_target(&e, &self.id)),
            poll::Look::Missing(reason) => reason,
        };
        Err(Error::not_found(
            self.id.to_string(),
            format!(
                "service {:?} in cluster {:?} ({reason})",
                self.service, self.cluster
            ),
            "check the cluster and service names and the region",
        ))
    }

    fn current_td(&self, svc: &Service) -> Result<(String, u32)> {
        svc.task_definition()
            .and_then(parse_task_definition)
            .ok_or_else(|| {
                Error::backend(
                    self.id.to_string(),
                    "the service has no task definition",
                    false,
                )
            })
    }

    async fn task_def(&self, family: &str, rev: u32) -> Result<TaskDef> {
        let key = format!("{family}:{rev}");
        if let Some(td) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(td);
        }
        let out = self
            .client
            .get()
            .await?
            .describe_task_definition()
            .task_definition(&key)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "DescribeTaskDefinition", e))?;
        let td = out.task_definition().ok_or_else(|| {
            Error::not_found(
                self.id.to_string(),
                format!("task definition {key}"),
                "check the family",
            )
        })?;
        let containers: Vec<Container> = td.container_definitions().iter().map(container).collect();
        let mut revision = Revision::new(key.clone());
        revision.created_at = td.registered_at().and_then(chrono_time);
        revision.images = containers.iter().map(|c| c.image.clone()).collect();
        revision.env_keys = env_keys(&containers);
        if let Some(status) = td.status() {
            revision
                .facts
                .insert("status".into(), status.as_str().to_string());
        }
        if let Some(arn) = td.task_definition_arn() {
            revision.facts.insert("arn".into(), arn.to_string());
        }
        if containers.len() > 1 {
            let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
            revision.facts.insert("containers".into(), names.join(","));
        }
        let def = TaskDef {
            revision,
            containers,
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, def.clone());
        }
        Ok(def)
    }

    /// Every ACTIVE revision number of `family`, every page.
    async fn active_revisions(&self, family: &str) -> Result<Vec<u32>> {
        let pages = self
            .client
            .get()
            .await?
            .list_task_definitions()
            .family_prefix(family)
            .status(TaskDefinitionStatus::Active)
            .into_paginator()
            .send();
        // familyPrefix is a prefix: "api" also lists "api-gateway"; keep the family only.
        let mut revs: Vec<u32> = all_pages(&self.id, "ListTaskDefinitions", pages)
            .await?
            .iter()
            .flat_map(|p| p.task_definition_arns())
            .filter_map(|a| parse_task_definition(a))
            .filter(|(f, _)| f == family)
            .map(|(_, r)| r)
            .collect();
        revs.sort_unstable_by(|a, b| b.cmp(a));
        revs.dedup();
        Ok(revs)
    }

    /// The family's ACTIVE revisions, newest first, plus the one in use if it was
    /// deregistered (so Previous still means something).
    async fn family_history(&self, family: &str, current: u32) -> Result<Vec<Revision>> {
        let mut revs = self.active_revisions(family).await?;
        if !revs.contains(&current) {
            revs.push(current);
            revs.sort_unstable_by(|a, b| b.cmp(a));
        }
        let lookups: Vec<_> = revs.iter().map(|r| self.task_def(family, *r)).collect();
        let defs: Vec<Result<TaskDef>> = stream::iter(lookups).buffered(8).collect().await;
        defs.into_iter().map(|d| d.map(|d| d.revision)).collect()
    }

    /// The `family:N` an `Exact` id means for a service of `family`: `N`, `family:N`, or a
    /// task-definition ARN of the service's own partition, region and account (read from
    /// the service's ARN, so no extra call). An ARN of another account, region or service,
    /// or a revision of another family, is refused rather than swapped for this family's
    /// namesake. Anything else is passed on, to be not found in the history.
    fn exact_id(&self, svc: &Service, family: &str, id: &str) -> Result<String> {
        let id = id.trim();
        let tail = if arn::is_arn(id) {
            let (given, rest) = arn::parse_as(
                &self.id,
                "task definition",
                id,
                "ecs",
                "task-definition/",
                INSTEAD,
            )?;
            if let Some(own) = svc
                .service_arn()
                .and_then(Arn::parse)
                .or_else(|| svc.task_definition().and_then(Arn::parse))
            {
                arn::check_same_place(
                    &self.id,
                    "task definition",
                    &given,
                    &own,
                    "the service",
                    INSTEAD,
                )?;
            }
            rest
        } else if let Ok(r) = id.parse::<u32>() {
            return Ok(format!("{family}:{r}"));
        } else {
            id
        };
        match parse_task_definition(tail) {
            Some((f, r)) if f == family => Ok(format!("{f}:{r}")),
            Some((f, _)) => Err(Error::invalid(
                self.id.to_string(),
                format!(
                    "task definition {id:?} is of family {f} but the service runs family {family}; give `{family}:N`, N, or this account's ARN of it"
                ),
            )),
            None if tail != id => Err(Error::invalid(
                self.id.to_string(),
                format!("{id:?} names no task-definition revision; give {INSTEAD}"),
            )),
            None => Ok(id.to_string()),
        }
    }

    /// The revision number `selector` picks for a service running `family:current`, read
    /// with as few calls as the selector needs: `Exact` describes the one revision it names
    /// (none if it is the one in use); `Previous` and `StepsBack(n)` list newest first until
    /// `n` revisions older than the one in use are seen; `ImageTag` describes revisions
    /// newest first until one carries the tag. Errors are the shared rules' (see
    /// [`Selector::resolve`]) over what was seen.
    async fn choose(
        &self,
        svc: &Service,
        family: &str,
        current: u32,
        selector: &Selector,
    ) -> Result<u32> {
        let current_id = format!("{family}:{current}");
        match selector {
            Selector::Exact(id) => self.exact(svc, family, current, id).await,
            Selector::Previous | Selector::StepsBack(_) => {
                let n = match selector {
                    Selector::StepsBack(n) => *n,
                    _ => 1,
                };
                if n == 0 {
                    return Err(self.no_pick(selector, family, &[], current));
                }
                let mut walk = Walk::new(self, &self.client.get().await?, family, current);
                let (mut seen, mut older) = (Vec::new(), 0u32);
                loop {
                    match walk.next().await? {
                        Next::Rev(r) => {
                            seen.push(r);
                            if r < current {
                                older += 1;
                                if older == n {
                                    return Ok(r);
                                }
                            }
                        }
                        Next::Restart => {
                            seen.clear();
                            older = 0;
                        }
                        Next::End => return Err(self.no_pick(selector, family, &seen, current)),
                    }
                }
            }
            Selector::ImageTag(tag) => {
                if tag.is_empty() {
                    return Err(self.no_pick(selector, family, &[], current));
                }
                let mut walk = Walk::new(self, &self.client.get().await?, family, current);
                let mut seen = Vec::new();
                loop {
                    match walk.next().await? {
                        Next::Rev(r) => {
                            seen.push(r);
                            if self.task_def(family, r).await?.revision.has_image_tag(tag) {
                                return Ok(r);
                            }
                        }
                        Next::Restart => seen.clear(),
                        Next::End => return Err(self.no_pick(selector, family, &seen, current)),
                    }
                }
            }
            // A selector of a newer core: the shared rules over the whole history.
            _ => {
                let history = self.family_history(family, current).await?;
                let picked = selector.resolve(&self.id, &history, &current_id)?;
                parse_task_definition(&picked.id)
                    .map(|(_, r)| r)
                    .ok_or_else(|| {
                        Error::invalid(
                            self.id.to_string(),
                            format!("{:?} is not a family:revision", picked.id),
                        )
                    })
            }
        }
    }

    /// The revision `Exact(id)` names, checked without listing: the one in use, or an
    /// ACTIVE revision of the family, described to know it exists.
    async fn exact(&self, svc: &Service, family: &str, current: u32, id: &str) -> Result<u32> {
        let key = self.exact_id(svc, family, id)?;
        let Some((_, n)) = parse_task_definition(&key) else {
            return Err(Error::not_found(
                self.id.to_string(),
                format!("revision {key:?}"),
                format!("give {INSTEAD}"),
            ));
        };
        if n == current {
            return Ok(n);
        }
        let missing = |why: &str| {
            Error::not_found(
                self.id.to_string(),
                format!("revision {key:?}"),
                format!("{why}; roll back to an ACTIVE revision of family {family} (history() lists them)"),
            )
        };
        match self.task_def(family, n).await {
            // DescribeTaskDefinition answers ClientException for a revision that does not exist.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput) => {
                Err(missing(&format!("family {family} has no revision {n}")).with_source(e))
            }
            Err(e) => Err(e),
            Ok(def) => match def.revision.facts.get("status").map(String::as_str) {
                Some(status) if status != "ACTIVE" => Err(missing(&format!(
                    "it is {status} (deregistered), and ECS deploys only ACTIVE revisions"
                ))),
                _ => Ok(n),
            },
        }
    }

    /// The shared rules' error for a selector that picked nothing among `seen` (newest
    /// first, the one in use included).
    fn no_pick(&self, selector: &Selector, family: &str, seen: &[u32], current: u32) -> Error {
        let history: Vec<Revision> = seen
            .iter()
            .map(|r| Revision::new(format!("{family}:{r}")))
            .collect();
        match selector.resolve(&self.id, &history, &format!("{family}:{current}")) {
            Err(e) => e,
            Ok(r) => Error::not_found(
                self.id.to_string(),
                format!("revision {} by {selector}", r.id),
                "it could not be read; try again",
            ),
        }
    }

    /// The change from `from` to `to` (`to` as given), with the image and environment diff
    /// of the two task definitions.
    fn change(&self, from: &TaskDef, to: Revision, to_def: &TaskDef) -> Change {
        Change {
            target: self.id.clone(),
            from: from.revision.clone(),
            to,
            diff: diff(from, to_def),
            precondition: None,
            origin: None,
            since: None,
        }
    }
}

/// `family:N`, N, or this account's task-definition ARN: what `Exact` takes.
const INSTEAD: &str = "`family:N`, N, or this account's task-definition ARN";

/// The image and environment diff between two task definitions, per container, with the
/// values of secret-looking keys redacted.
fn diff(from_def: &TaskDef, to_def: &TaskDef) -> Diff {
    let mut d = DiffBuilder::default();
    let names: std::collections::BTreeSet<&str> = from_def
        .containers
        .iter()
        .chain(&to_def.containers)
        .map(|c| c.name.as_str())
        .collect();
    let several = names.len() > 1;
    for name in names {
        let a = from_def.containers.iter().find(|c| c.name == name);
        let b = to_def.containers.iter().find(|c| c.name == name);
        d.entry(
            DiffSection::Image,
            name,
            a.map(|c| c.image.clone()),
            b.map(|c| c.image.clone()),
        );
        let prefix = |k: &String| {
            if several {
                format!("{name}/{k}")
            } else {
                k.clone()
            }
        };
        let env = |c: Option<&Container>| -> BTreeMap<String, String> {
            c.map(|c| c.env.iter().map(|(k, v)| (prefix(k), v.clone())).collect())
                .unwrap_or_default()
        };
        d.maps(DiffSection::Env, &env(a), &env(b));
        // Secrets come from Secrets Manager or SSM: show the reference as redacted.
        let secrets = |c: Option<&Container>| -> BTreeMap<String, String> {
            c.map(|c| {
                c.secrets
                    .iter()
                    .map(|(k, v)| (prefix(k), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
        };
        let (sa, sb) = (secrets(a), secrets(b));
        for key in sa
            .keys()
            .chain(sb.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (x, y) = (sa.get(key), sb.get(key));
            if x != y {
                d.entry(
                    DiffSection::Env,
                    &format!("{key} (secret)"),
                    x.map(|_| rollback_core::revision::REDACTED.to_string()),
                    y.map(|_| format!("{} (changed)", rollback_core::revision::REDACTED)),
                );
            }
        }
    }
    d.build()
}

/// A family's revision numbers newest first, from listed pages that should be in strictly
/// descending order, with the revision in use merged in at its place (ListTaskDefinitions
/// lists it only while it is ACTIVE).
#[derive(Debug)]
struct NewestFirst {
    current: u32,
    /// Listed, not yet given out, newest first.
    ahead: VecDeque<u32>,
    /// The last number listed, to check the order of the next.
    last: Option<u32>,
    /// Whether the revision in use was given out.
    current_out: bool,
}

impl NewestFirst {
    fn new(current: u32) -> Self {
        NewestFirst {
            current,
            ahead: VecDeque::new(),
            last: None,
            current_out: false,
        }
    }

    /// Takes a listed page; `false` (taking nothing) if it is not strictly below everything
    /// listed before it and strictly descending itself.
    fn page(&mut self, revs: &[u32]) -> bool {
        let mut last = self.last;
        for &r in revs {
            if last.is_some_and(|l| r >= l) {
                return false;
            }
            last = Some(r);
        }
        self.ahead.extend(revs);
        self.last = last;
        true
    }

    /// Starts again over every revision, in any order (sorted here).
    fn restart(&mut self, mut revs: Vec<u32>) {
        revs.sort_unstable_by(|a, b| b.cmp(a));
        revs.dedup();
        *self = NewestFirst {
            ahead: revs.into(),
            ..NewestFirst::new(self.current)
        };
    }

    /// The next revision, newest first; `None` when another page is needed or, at the
    /// `end` of the listing, when every revision was given out.
    fn next(&mut self, end: bool) -> Option<u32> {
        match self.ahead.front().copied() {
            Some(r) if !self.current_out && self.current > r => {
                self.current_out = true;
                Some(self.current)
            }
            Some(r) => {
                self.ahead.pop_front();
                self.current_out |= r == self.current;
                Some(r)
            }
            None if end && !self.current_out => {
                self.current_out = true;
                Some(self.current)
            }
            None => None,
        }
    }
}

/// What [`Walk::next`] gives.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The next revision number, newest first.
    Rev(u32),
    /// The listing was not newest first after all: every page was read and sorted, and
    /// the walk starts again from the newest (forget what was given out).
    Restart,
    /// Every revision was given out.
    End,
}

type TaskDefinitionPages = PaginationStream<
    std::result::Result<
        ListTaskDefinitionsOutput,
        SdkError<ListTaskDefinitionsError, HttpResponse>,
    >,
>;

/// A family's revisions newest first, read from ListTaskDefinitions (ACTIVE, sorted DESC)
/// one page at a time, only as far as the caller asks.
struct Walk<'a> {
    target: &'a EcsService,
    family: &'a str,
    pages: Option<TaskDefinitionPages>,
    read: usize,
    order: NewestFirst,
}

impl<'a> Walk<'a> {
    fn new(target: &'a EcsService, client: &Client, family: &'a str, current: u32) -> Self {
        let pages = client
            .list_task_definitions()
            .family_prefix(family)
            .status(TaskDefinitionStatus::Active)
            .sort(SortOrder::Desc)
            .max_results(100)
            .into_paginator()
            .send();
        Walk {
            target,
            family,
            pages: Some(pages),
            read: 0,
            order: NewestFirst::new(current),
        }
    }

    async fn next(&mut self) -> Result<Next> {
        loop {
            let Some(pages) = self.pages.as_mut() else {
                return Ok(self.order.next(true).map_or(Next::End, Next::Rev));
            };
            if let Some(r) = self.order.next(false) {
                return Ok(Next::Rev(r));
            }
            let Some(page) = pages.next().await else {
                self.pages = None;
                continue;
            };
            let id = &self.target.id;
            if self.read == MAX_PAGES {
                return all_pages_refused(id, "ListTaskDefinitions");
            }
            self.read += 1;
            let page = page.map_err(|e| sdk_error(id, "ListTaskDefinitions", e))?;
            // familyPrefix is a prefix: "api" also lists "api-gateway"; keep the family only.
            let revs: Vec<u32> = page
                .task_definition_arns()
                .iter()
                .filter_map(|a| parse_task_definition(a))
                .filter(|(f, _)| f == self.family)
                .map(|(_, r)| r)
                .collect();
            if !self.order.page(&revs) {
                tracing::debug!(target = %id, "ListTaskDefinitions is not newest first; reading every page");
                self.pages = None;
                let all = self.target.active_revisions(self.family).await?;
                self.order.restart(all);
                return Ok(Next::Restart);
            }
        }
    }
}

impl EcsService {
    /// The service's ARN (account `*`).
    fn service_arn(&self) -> String {
        let cluster = self
            .cluster
            .rsplit_once("cluster/")
            .map_or(self.cluster.as_str(), |(_, name)| name);
        self.client
            .arn("ecs", &format!("service/{cluster}/{}", self.service))
    }

    /// What a new deployment of the service (a secret's consumer restarted) needs: the
    /// service described and updated.
    pub(crate) fn restart_permissions(&self) -> Vec<rollback_core::Permission> {
        rollback_core::Permission::aws_all(
            &["ecs:DescribeServices", "ecs:UpdateService"],
            &self.service_arn(),
        )
    }
}

#[async_trait]
impl RollbackTarget for EcsService {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The service read and updated; task definitions read (IAM takes no resource for
    /// them); with the image check, the images described in any ECR repository (the
    /// repositories are known only from the task definitions).
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let mut p = self.restart_permissions();
        p.extend(rollback_core::Permission::aws_all(
            &["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"],
            "*",
        ));
        if self.check_images {
            p.push(rollback_core::Permission::aws(
                "ecr:DescribeImages",
                self.ecr.arn("ecr", "repository/*"),
            ));
        }
        Some(p)
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    async fn current(&self) -> Result<Revision> {
        let svc = self.describe().await?;
        let (family, rev) = self.current_td(&svc)?;
        Ok(self.task_def(&family, rev).await?.revision)
    }

    /// Every revision, each described (what a person choosing one wants to see).
    async fn history(&self) -> Result<Vec<Revision>> {
        let svc = self.describe().await?;
        let (family, current) = self.current_td(&svc)?;
        self.family_history(&family, current).await
    }

    /// `Exact` accepts `14`, `family:14` and the service's own task-definition ARN.
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        let svc = self.describe().await?;
        let (family, current) = self.current_td(&svc)?;
        let picked = self.choose(&svc, &family, current, selector).await?;
        Ok(self.task_def(&family, picked).await?.revision)
    }

    /// One DescribeServices serving current, resolve and plan; the revisions listed only as
    /// far as the selector needs; the two task definitions compared described once each.
    async fn prepare(&self, selector: &Selector) -> Result<Change> {
        let svc = self.describe().await?;
        let (family, current) = self.current_td(&svc)?;
        let (from, picked) = if matches!(selector, Selector::ImageTag(_)) {
            // The tag walk may describe the revision in use: once, not twice at once.
            let from = self.task_def(&family, current).await?;
            (
                Ok(from),
                self.choose(&svc, &family, current, selector).await,
            )
        } else {
            // Both run to the end (no call left half made), so the calls are the same
            // whichever fails.
            futures::join!(
                self.task_def(&family, current),
                self.choose(&svc, &family, current, selector)
            )
        };
        let (from, picked) = (from?, picked?);
        if picked == current {
            return Ok(Change::new(
                self.id.clone(),
                from.revision.clone(),
                from.revision,
            ));
        }
        let to = self.task_def(&family, picked).await?;
        let digests = self.confirm_images(&to).await?;
        let mut change = self.change(&from, to.revision.clone(), &to);
        change.diff.entries.extend(digests.entries);
        Ok(change)
    }

    /// The image and environment diff between the two revisions, per container, with the
    /// values of secret-looking keys redacted.
    async fn plan(&self, to: &Revision) -> Result<Change> {
        let svc = self.describe().await?;
        let (family, rev) = self.current_td(&svc)?;
        // A revision made by hand (not by `resolve`) gets the same checks as `Exact`.
        let mut to = to.clone();
        to.id = self.exact_id(&svc, &family, &to.id)?;
        let Some((tf, tr)) = parse_task_definition(&to.id) else {
            return Err(Error::invalid(
                self.id.to_string(),
                format!("{:?} is not a family:revision", to.id),
            ));
        };
        let from = self.task_def(&family, rev).await?;
        let to_def = self.task_def(&tf, tr).await?;
        let digests = self.confirm_images(&to_def).await?;
        let mut change = self.change(&from, to, &to_def);
        change.diff.entries.extend(digests.entries);
        Ok(change)
    }

    /// UpdateService(taskDefinition), after re-reading the service: ECS has no
    /// precondition, so a service changed since preflight is a conflict.
    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let svc = self.describe().await?;
        let (family, rev) = self.current_td(&svc)?;
        let now = format!("{family}:{rev}");
        if now == change.to.id {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        if now != change.from.id {
            return Err(Error::conflict(
                self.id.to_string(),
                change.from.id.clone(),
                now,
            ));
        }
        self.client
            .get()
            .await?
            .update_service()
            .cluster(&self.cluster)
            .service(&self.service)
            .task_definition(&change.to.id)
            .force_new_deployment(self.force_new_deployment)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "UpdateService", e))?;
        Ok(ApplyOutcome::Applied)
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        match self.describe().await {
            Ok(svc) => Ok(stability(&svc, &revision.id)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Ok(Stability::Failed("the service is MISSING".into()))
            }
            Err(e) => Err(e),
        }
    }

    /// Looks on the poller's grid, with the other services of the cluster due at the same
    /// tick (see the module docs): at most one DescribeServices per 10 services per tick.
    async fn wait_stable(
        &self,
        revision: &Revision,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<()> {
        let what = format!("revision {} to be stable", revision.id);
        self.poller
            .wait(
                &self.id,
                &self.cluster,
                &self.service,
                &what,
                timeout,
                progress,
                |svc| stability(svc, &revision.id),
            )
            .await
    }
}

/// The target kind of [`EcsDesiredCount`].
pub const DESIRED_COUNT_KIND: &str = "ecs-desired-count";

service_aspect!(
    /// An ECS service's desired count as a target: stop a service (`Exact("0")`) for the length
    /// of a database restore and start it again with a new deployment, so its tasks read the
    /// connection secret anew (runbook 001, "Option 2", steps 1 and 6). Usually a
    /// [temporary](rollback_core::Step::temporary) step: put back to the captured count once
    /// the stages are done.
    ///
    /// Revisions are counts (`"0"`, `"2"`); only `Exact` selects one.
    EcsDesiredCount,
    DESIRED_COUNT_KIND,
    desired_count,
    "This service's desired count as a target.",
    "The desired count of `cluster/service`."
);

impl EcsDesiredCount {
    fn count(&self, svc: &Service) -> Revision {
        let n = svc.desired_count();
        Revision::new(n.to_string()).description(format!("{n} task(s) desired"))
    }
}

#[async_trait]
impl RollbackTarget for EcsDesiredCount {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The service described and its desired count updated.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        Some(self.svc.restart_permissions())
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    async fn current(&self) -> Result<Revision> {
        Ok(self.count(&self.svc.describe().await?))
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        Ok(vec![self.current().await?])
    }

    /// `Exact("N")` picks a count; other selectors follow the shared rules over the one
    /// count in use (so `Previous` is not found).
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        let current = self.current().await?;
        if let Selector::Exact(n) = selector {
            if let Ok(n) = n.trim().parse::<u32>() {
                return Ok(Revision::new(n.to_string()).description(format!("{n} task(s) desired")));
            }
        }
        selector
            .resolve(&self.id, std::slice::from_ref(&current), &current.id)
            .map_err(|e| match e {
                Error::NotFound { target, what, hint, source } => Error::NotFound {
                    target,
                    what,
                    hint: format!("{hint}; a desired count is chosen with Exact(\"N\"), e.g. Exact(\"0\") to stop the service"),
                    source,
                },
                other => other,
            })
    }

    /// UpdateService(desiredCount); scaling up from 0 forces a new deployment so the tasks
    /// start afresh (and read their secrets again).
    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let svc = self.svc.describe().await?;
        let now = svc.desired_count().to_string();
        if now == change.to.id {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        if now != change.from.id {
            return Err(Error::conflict(
                self.id.to_string(),
                change.from.id.clone(),
                now,
            ));
        }
        let to: i32 = change.to.id.parse().map_err(|_| {
            Error::invalid(
                self.id.to_string(),
                format!("{:?} is not a task count", change.to.id),
            )
        })?;
        self.svc
            .client
            .get()
            .await?
            .update_service()
            .cluster(&self.svc.cluster)
            .service(&self.svc.service)
            .desired_count(to)
            .force_new_deployment(change.from.id == "0" && to > 0)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "UpdateService", e))?;
        Ok(ApplyOutcome::Applied)
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        match self.svc.describe().await {
            Ok(svc) => Ok(count_stability(&svc, &revision.id)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Ok(Stability::Failed("the service is MISSING".into()))
            }
            Err(e) => Err(e),
        }
    }

    /// Looks on the poller's grid, batched with the cluster's other waiters (see the
    /// module docs).
    async fn wait_stable(
        &self,
        revision: &Revision,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<()> {
        let what = format!("desired count {} to be stable", revision.id);
        let svc = &self.svc;
        svc.poller
            .wait(
                &self.id,
                &svc.cluster,
                &svc.service,
                &what,
                timeout,
                progress,
                |s| count_stability(s, &revision.id),
            )
            .await
    }
}

/// Whether a described service runs `want` tasks, one deployment with all of them running.
fn count_stability(svc: &Service, want: &str) -> Stability {
    let status = svc.status().unwrap_or_default();
    if matches!(status, "DRAINING" | "INACTIVE") {
        return Stability::Failed(format!("the service is {status}"));
    }
    let desired = svc.desired_count().to_string();
    if desired != want {
        return Stability::Failed(format!(
            "the desired count is now {desired}, not {want}; someone else changed it"
        ));
    }
    let (running, n) = (svc.running_count(), svc.deployments().len());
    if n == 1 && running == svc.desired_count() {
        Stability::Stable
    } else {
        Stability::Waiting(format!(
            "{n} deployment(s); {running} of {desired} tasks running"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::DeploymentRolloutState;

    #[test]
    fn task_definition_ids() {
        assert_eq!(parse_task_definition("api:14"), Some(("api".into(), 14)));
        assert_eq!(
            parse_task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/agentauri-production-api-gateway:15"),
            Some(("agentauri-production-api-gateway".into(), 15))
        );
        assert_eq!(parse_task_definition("api"), None);
        assert_eq!(parse_task_definition("api:x"), None);
        assert_eq!(parse_task_definition(":3"), None);
    }

    fn svc(td: &str, deployments: Vec<Deployment>, running: i32, desired: i32) -> Service {
        Service::builder()
            .status("ACTIVE")
            .task_definition(format!("arn:aws:ecs:us-east-1:1:task-definition/{td}"))
            .set_deployments(Some(deployments))
            .running_count(running)
            .desired_count(desired)
            .build()
    }

    fn dep(status: &str, rollout: DeploymentRolloutState) -> Deployment {
        Deployment::builder()
            .status(status)
            .rollout_state(rollout)
            .rollout_state_reason("ECS deployment circuit breaker: tasks failed to start.")
            .build()
    }

    #[test]
    fn services_stable_rules() {
        let one = vec![dep("PRIMARY", DeploymentRolloutState::Completed)];
        assert_eq!(
            stability(&svc("api:3", one.clone(), 2, 2), "api:3"),
            Stability::Stable
        );
        assert!(
            matches!(stability(&svc("api:3", one.clone(), 1, 2), "api:3"), Stability::Waiting(m) if m.contains("1 of 2"))
        );
        let two = vec![
            dep("PRIMARY", DeploymentRolloutState::InProgress),
            dep("ACTIVE", DeploymentRolloutState::Completed),
        ];
        assert!(
            matches!(stability(&svc("api:3", two, 2, 2), "api:3"), Stability::Waiting(m) if m.contains("2 deployment"))
        );
        let failed = vec![
            dep("PRIMARY", DeploymentRolloutState::Failed),
            dep("ACTIVE", DeploymentRolloutState::Completed),
        ];
        assert!(
            matches!(stability(&svc("api:3", failed, 2, 2), "api:3"), Stability::Failed(m) if m.contains("circuit breaker"))
        );
        let draining = Service::builder().status("DRAINING").build();
        assert!(
            matches!(stability(&draining, "api:3"), Stability::Failed(m) if m.contains("DRAINING"))
        );
        assert!(
            matches!(stability(&svc("api:4", one, 2, 2), "api:3"), Stability::Failed(m) if m.contains("someone else"))
        );
    }

    #[test]
    fn env_keys_are_prefixed_only_with_several_containers() {
        let c = |name: &str, keys: &[&str]| Container {
            name: name.into(),
            image: "i".into(),
            env: keys
                .iter()
                .map(|k| (k.to_string(), "v".to_string()))
                .collect(),
            secrets: BTreeMap::new(),
        };
        assert_eq!(env_keys(&[c("api", &["B", "A"])]), ["A", "B"]);
        assert_eq!(
            env_keys(&[c("api", &["A"]), c("log", &["A"])]),
            ["api/A", "log/A"]
        );
    }

    /// Every number a walk gives, reading `pages` as needed (a restart lists `all`).
    fn walk(current: u32, pages: &[&[u32]], all: &[u32]) -> Vec<Next> {
        let mut order = NewestFirst::new(current);
        let mut pages = pages.iter();
        let mut out = Vec::new();
        let mut end = false;
        loop {
            if let Some(r) = order.next(end) {
                out.push(Next::Rev(r));
                continue;
            }
            if end {
                out.push(Next::End);
                return out;
            }
            match pages.next() {
                Some(p) if order.page(p) => {}
                Some(_) => {
                    order.restart(all.to_vec());
                    out.push(Next::Restart);
                    end = true;
                }
                None => end = true,
            }
        }
    }

    fn revs(rs: &[u32]) -> Vec<Next> {
        rs.iter().map(|r| Next::Rev(*r)).collect()
    }

    #[test]
    fn newest_first_merges_the_revision_in_use_and_checks_the_order() {
        // The one in use, listed.
        let mut want = revs(&[5, 4, 3, 2, 1]);
        want.push(Next::End);
        assert_eq!(walk(4, &[&[5, 4, 3], &[2, 1]], &[]), want);
        // Deregistered (not listed): in its place, newest first.
        assert_eq!(
            walk(4, &[&[6, 5], &[3, 1]], &[])[..5],
            revs(&[6, 5, 4, 3, 1])
        );
        assert_eq!(walk(9, &[&[6, 5]], &[])[..3], revs(&[9, 6, 5]));
        assert_eq!(walk(1, &[&[6, 5]], &[])[..3], revs(&[6, 5, 1]));
        assert_eq!(walk(1, &[], &[]), [Next::Rev(1), Next::End]);
        // Out of order within a page, or across pages: every page, sorted, from the start.
        let mut want = revs(&[5, 4]);
        want.push(Next::Restart);
        want.extend(revs(&[7, 5, 4, 3]));
        want.push(Next::End);
        assert_eq!(walk(4, &[&[5, 4], &[7, 3]], &[3, 7, 4, 5, 5]), want);
        assert_eq!(
            walk(4, &[&[5, 5, 4]], &[5, 4])[..3],
            [Next::Restart, Next::Rev(5), Next::Rev(4)]
        );
    }
}
