//! ECS services: roll a service back to a task-definition revision of its family.
//!
//! Revisions are the ACTIVE task-definition revisions of the family the service runs (the
//! one in use is included even if it was deregistered), sorted and paged here because
//! ListTaskDefinitions' order and paging are not to be trusted. Task definitions are
//! immutable, so each is described once per target and cached. `Exact` takes `N`,
//! `family:N` or a task-definition ARN; an ARN of another account, region or partition, or
//! a revision of another family, is refused as invalid input (checked against the service's
//! own ARN, no extra call) instead of being read as this family's `family:N`.
//!
//! Stability follows botocore's `ServicesStable` waiter: MISSING, DRAINING and INACTIVE
//! fail; one deployment with `runningCount == desiredCount` succeeds. A primary deployment
//! whose `rolloutState` is FAILED (the deployment circuit breaker) fails at once instead of
//! waiting out the deadline.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_ecs::types::{ContainerDefinition, Deployment, Service, TaskDefinitionStatus};
use aws_sdk_ecs::Client;
use futures::stream::{self, StreamExt};
use rollback_core::revision::{DiffBuilder, DiffSection};
use rollback_core::{
    ApplyOutcome, Change, Error, Result, Revision, RollbackTarget, Selector, Stability, TargetId,
    TargetSpec,
};
use serde::{Deserialize, Serialize};

use crate::arn::{self, Arn};
use crate::config::{Aws, AwsConfig};
use crate::error::{check_name, sdk_error};
use crate::sdk::{all_pages, chrono_time};
use crate::target::{self, aws_target, debug_as_target, AwsTarget};

/// The target kind.
pub const KIND: &str = "ecs-service";

/// An [`EcsService`] or [`EcsDesiredCount`] as data (what the journal records, beside the
/// AWS settings).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Params {
    cluster: String,
    service: String,
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
    client: Client,
    id: TargetId,
    cache: Arc<Mutex<HashMap<String, TaskDef>>>,
}

aws_target!(EcsService, KIND, Params { cluster, service }, |aws, p| {
    Self::new(aws, p.cluster, p.service)
});

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
        Ok(EcsService {
            cluster,
            service,
            aws: aws.config().clone(),
            client: aws.client(Client::new),
            id,
            cache: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// A service target configured from the standard AWS environment.
    pub async fn from_env(cluster: impl Into<String>, service: impl Into<String>) -> Result<Self> {
        Self::new(&Aws::from_env().await, cluster, service)
    }

    /// The SDK client, for calls of your own.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The service as ECS describes it now.
    pub async fn describe(&self) -> Result<Service> {
        let out = self
            .client
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.service)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "DescribeServices", e))?;
        if let Some(svc) = out.services().iter().find(|s| {
            s.service_name() == Some(self.service.as_str())
                || s.service_arn()
                    .is_some_and(|a| a.ends_with(&format!("/{}", self.service)))
        }) {
            return Ok(svc.clone());
        }
        let reason = out
            .failures()
            .first()
            .and_then(|f| f.reason())
            .unwrap_or("MISSING")
            .to_string();
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
        const INSTEAD: &str = "`family:N`, N, or this account's task-definition ARN";
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
}

#[async_trait]
impl RollbackTarget for EcsService {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    async fn current(&self) -> Result<Revision> {
        let svc = self.describe().await?;
        let (family, rev) = self.current_td(&svc)?;
        Ok(self.task_def(&family, rev).await?.revision)
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let svc = self.describe().await?;
        let (family, current) = self.current_td(&svc)?;
        self.family_history(&family, current).await
    }

    /// `Exact` accepts `14`, `family:14` and the service's own task-definition ARN.
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        let svc = self.describe().await?;
        let (family, current) = self.current_td(&svc)?;
        // Checked before the history is read: bad input costs one call and changes nothing.
        let selector = match selector {
            Selector::Exact(id) => Selector::Exact(self.exact_id(&svc, &family, id)?),
            other => other.clone(),
        };
        let history = self.family_history(&family, current).await?;
        selector.resolve(&self.id, &history, &format!("{family}:{current}"))
    }

    /// The image and environment diff between the two revisions, per container, with the
    /// values of secret-looking keys redacted.
    async fn plan(&self, to: &Revision) -> Result<Change> {
        let svc = self.describe().await?;
        let (family, rev) = self.current_td(&svc)?;
        let current = self.task_def(&family, rev).await?.revision;
        // A revision made by hand (not by `resolve`) gets the same checks as `Exact`.
        let mut to = to.clone();
        to.id = self.exact_id(&svc, &family, &to.id)?;
        let (from_def, to_def) = match (
            parse_task_definition(&current.id),
            parse_task_definition(&to.id),
        ) {
            (Some((ff, fr)), Some((tf, tr))) => {
                (self.task_def(&ff, fr).await?, self.task_def(&tf, tr).await?)
            }
            _ => {
                return Err(Error::invalid(
                    self.id.to_string(),
                    format!("{:?} is not a family:revision", to.id),
                ))
            }
        };
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
        Ok(Change {
            target: self.id.clone(),
            from: current,
            to,
            diff: d.build(),
            precondition: None,
        })
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
            .update_service()
            .cluster(&self.cluster)
            .service(&self.service)
            .task_definition(&change.to.id)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "UpdateService", e))?;
        Ok(ApplyOutcome::Applied)
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        match self.describe().await {
            Ok(svc) => Ok(stability(&svc, &revision.id)),
            Err(e) if e.kind() == rollback_core::ErrorKind::NotFound => {
                Ok(Stability::Failed("the service is MISSING".into()))
            }
            Err(e) => Err(e),
        }
    }
}

/// The target kind of [`EcsDesiredCount`].
pub const DESIRED_COUNT_KIND: &str = "ecs-desired-count";

/// An ECS service's desired count as a target: stop a service (`Exact("0")`) for the length
/// of a database restore and start it again with a new deployment, so its tasks read the
/// connection secret anew (runbook 001, "Option 2", steps 1 and 6). Usually a
/// [temporary](rollback_core::Step::temporary) step: put back to the captured count once
/// the stages are done.
///
/// Revisions are counts (`"0"`, `"2"`); only `Exact` selects one.
#[derive(Clone)]
pub struct EcsDesiredCount {
    svc: EcsService,
    id: TargetId,
}

debug_as_target!(EcsDesiredCount);

impl AwsTarget for EcsDesiredCount {
    const KIND: &'static str = DESIRED_COUNT_KIND;
    type Params = Params;

    fn params(&self) -> Params {
        self.svc.params()
    }

    fn aws(&self) -> &AwsConfig {
        &self.svc.aws
    }

    fn from_params(aws: &Aws, p: Params) -> Result<Self> {
        Self::new(aws, p.cluster, p.service)
    }
}

impl EcsService {
    /// This service's desired count as a target.
    pub fn desired_count(&self) -> EcsDesiredCount {
        EcsDesiredCount {
            id: TargetId::new(DESIRED_COUNT_KIND, self.id.name.clone()),
            svc: self.clone(),
        }
    }
}

impl EcsDesiredCount {
    /// The desired count of `cluster/service`.
    pub fn new(aws: &Aws, cluster: impl Into<String>, service: impl Into<String>) -> Result<Self> {
        Ok(EcsService::new(aws, cluster, service)?.desired_count())
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        self.svc.cluster()
    }

    /// The service name.
    pub fn service(&self) -> &str {
        self.svc.service()
    }

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
        let svc = match self.svc.describe().await {
            Ok(s) => s,
            Err(e) if e.kind() == rollback_core::ErrorKind::NotFound => {
                return Ok(Stability::Failed("the service is MISSING".into()))
            }
            Err(e) => return Err(e),
        };
        let status = svc.status().unwrap_or_default();
        if matches!(status, "DRAINING" | "INACTIVE") {
            return Ok(Stability::Failed(format!("the service is {status}")));
        }
        let desired = svc.desired_count().to_string();
        if desired != revision.id {
            return Ok(Stability::Failed(format!(
                "the desired count is now {desired}, not {}; someone else changed it",
                revision.id
            )));
        }
        let (running, n) = (svc.running_count(), svc.deployments().len());
        Ok(if n == 1 && running == svc.desired_count() {
            Stability::Stable
        } else {
            Stability::Waiting(format!(
                "{n} deployment(s); {running} of {desired} tasks running"
            ))
        })
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
}
