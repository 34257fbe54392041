//! [`EcsRestart`]: a forced new deployment of an ECS service as a step (runbook 001's and
//! 002's `aws ecs update-service --force-new-deployment`), and the restart of a secret's
//! consumers ([`crate::SecretVersion::consumers`]).
//!
//! Its revisions are deployments. The one in use is the service's PRIMARY deployment (its
//! id, creation time and task definition, as DescribeServices gives them); a restart is
//! the revision `after:<that id>`, "a newer deployment than this one", since ECS names the
//! new deployment only once it is made. The wait reports the new deployment's id and
//! creation time, read back from ECS.
//!
//! A resumed run does not restart twice: if the PRIMARY deployment is no longer the one
//! the plan saw and was created after the run journaled its intent
//! ([`Change::since`]), that is the restart the crashed run made. A deployment created by
//! someone else between the plan and the intent is a conflict.
//!
//! A restart cannot be undone (there is no going back to a deployment): putting it back
//! sends nothing, and the report says so.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::types::{Deployment, Service};
use chrono::{DateTime, SecondsFormat, Utc};
use rollback_core::{
    ApplyOutcome, Change, Error, ErrorKind, Progress, Result, Revision, RollbackTarget, Selector,
    Stability, TargetId, TargetSpec,
};

use super::{parse_task_definition, EcsService, Params};
use crate::config::{Aws, AwsConfig};
use crate::error::sdk_error;
use crate::sdk::chrono_time;
use crate::target;

/// The target kind of [`EcsRestart`].
pub const RESTART_KIND: &str = "ecs-restart";

/// The prefix of a restart's revision id: `after:<deployment id>`.
const AFTER: &str = "after:";

super::service_aspect!(
    /// An ECS service's forced new deployment as a target (see the module docs).
    EcsRestart,
    RESTART_KIND,
    restart,
    "This service's forced new deployment as a target (`--force-new-deployment`).",
    "The forced new deployment of `cluster/service`."
);

impl EcsService {
    /// Waits until the service runs a restart to the end ([`restart_stability`], the
    /// deployment replaced not known), looking on the poller's grid; errors name `id`.
    pub(crate) async fn wait_restarted(
        &self,
        id: &TargetId,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<()> {
        let what = format!(
            "{}/{} to run its new deployment",
            self.cluster, self.service
        );
        self.poller
            .wait(
                id,
                &self.cluster,
                &self.service,
                &what,
                timeout,
                progress,
                |s| restart_stability(s, None),
            )
            .await
    }

    /// Forces a new deployment (UpdateService with forceNewDeployment, nothing else).
    pub(crate) async fn force_restart(&self, id: &TargetId) -> Result<()> {
        self.client
            .get()
            .await?
            .update_service()
            .cluster(&self.cluster)
            .service(&self.service)
            .force_new_deployment(true)
            .send()
            .await
            .map_err(|e| sdk_error(id, "UpdateService", e))?;
        Ok(())
    }
}

/// The PRIMARY deployment of a described service.
pub(crate) fn primary(svc: &Service) -> Option<&Deployment> {
    svc.deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
}

/// When a deployment was created.
pub(crate) fn created(d: &Deployment) -> Option<DateTime<Utc>> {
    d.created_at().and_then(chrono_time)
}

/// Whether the service's PRIMARY deployment was created at or after `since`: the restart a
/// run that journaled its intent at `since` made.
pub(crate) fn restarted_since(svc: &Service, since: DateTime<Utc>) -> bool {
    primary(svc).and_then(created).is_some_and(|at| at >= since)
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| "at an unknown time".into())
}

/// Whether a restarted service is done: not DRAINING or INACTIVE, its PRIMARY deployment
/// not failed (the circuit breaker) and, as botocore's `ServicesStable` says, one
/// deployment with every task running. `after` is the deployment the restart replaces
/// (still PRIMARY: no restart yet).
pub(crate) fn restart_stability(svc: &Service, after: Option<&str>) -> Stability {
    let status = svc.status().unwrap_or_default();
    if matches!(status, "DRAINING" | "INACTIVE") {
        return Stability::Failed(format!("the service is {status}"));
    }
    let Some(p) = primary(svc) else {
        return Stability::Waiting("no PRIMARY deployment yet".into());
    };
    let pid = p.id().unwrap_or_default();
    if after == Some(pid) {
        return Stability::Waiting(format!("deployment {pid} is still the PRIMARY one"));
    }
    if p.rollout_state().map(|s| s.as_str()) == Some("FAILED") {
        return Stability::Failed(format!(
            "the new deployment {pid} failed: {}",
            p.rollout_state_reason().unwrap_or("rolloutState FAILED")
        ));
    }
    let (running, desired, n) = (
        svc.running_count(),
        svc.desired_count(),
        svc.deployments().len(),
    );
    if n == 1 && running == desired {
        return Stability::Stable;
    }
    Stability::Waiting(format!(
        "deployment {pid} (created {}): {n} deployment(s); {running} of {desired} tasks running",
        when(created(p))
    ))
}

impl EcsRestart {
    fn deployment(&self, svc: &Service) -> Result<Revision> {
        let p = primary(svc).ok_or_else(|| {
            Error::backend(
                self.id.to_string(),
                "the service has no PRIMARY deployment; check it with aws ecs describe-services",
                false,
            )
        })?;
        let id = p.id().unwrap_or_default();
        let td = p
            .task_definition()
            .or(svc.task_definition())
            .and_then(parse_task_definition)
            .map(|(f, r)| format!("{f}:{r}"))
            .unwrap_or_default();
        let mut r = Revision::new(id)
            .description(format!("deployment {id} of {td}"))
            .fact("task_definition", td);
        r.created_at = created(p);
        Ok(r)
    }
}

fn restart_of(current: &Revision) -> Revision {
    let td = current
        .facts
        .get("task_definition")
        .cloned()
        .unwrap_or_default();
    Revision::new(format!("{AFTER}{}", current.id))
        .description(format!(
            "a new deployment of {td}, replacing deployment {}",
            current.id
        ))
        .fact("task_definition", td)
}

#[async_trait]
impl RollbackTarget for EcsRestart {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The service described and given a new deployment.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        Some(self.svc.restart_permissions())
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    async fn current(&self) -> Result<Revision> {
        self.deployment(&self.svc.describe().await?)
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        Ok(vec![self.current().await?])
    }

    /// Any selector but `Exact` asks for a restart now; `Exact` names only the deployment
    /// in use (nothing to do): ECS cannot go back to another deployment.
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        let current = self.current().await?;
        match selector {
            Selector::Exact(id) if *id == current.id => Ok(current),
            Selector::Exact(id) => Err(Error::invalid(
                self.id.to_string(),
                format!(
                    "{:?} is not the deployment in use ({}), and ECS cannot go back to a deployment; write `to: previous` to force a new deployment",
                    rollback_core::redact::truncate(id, 60),
                    current.id
                ),
            )),
            _ => Ok(restart_of(&current)),
        }
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let Some(replaced) = change.to.id.strip_prefix(AFTER) else {
            // Putting a restart back: there is no deployment to go back to.
            return Ok(ApplyOutcome::AlreadyCurrent);
        };
        let svc = self.svc.describe().await?;
        let now = self.deployment(&svc)?;
        if now.id != replaced {
            return match change.since {
                Some(since) if restarted_since(&svc, since) => Ok(ApplyOutcome::AlreadyCurrent),
                _ => Err(Error::conflict(
                    self.id.to_string(),
                    replaced.to_string(),
                    now.id,
                )),
            };
        }
        self.svc.force_restart(&self.id).await?;
        Ok(ApplyOutcome::Applied)
    }

    fn compensation_note(&self, _change: &Change) -> Option<String> {
        Some(format!(
            "{} was restarted and a restart cannot be undone: it runs a new deployment of the same task definition",
            self.id
        ))
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        match self.svc.describe().await {
            Ok(svc) => Ok(restart_stability(&svc, revision.id.strip_prefix(AFTER))),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Ok(Stability::Failed("the service is MISSING".into()))
            }
            Err(e) => Err(e),
        }
    }

    /// Looks on the poller's grid, batched with the cluster's other waiters.
    async fn wait_stable(
        &self,
        revision: &Revision,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<()> {
        let after = revision.id.strip_prefix(AFTER);
        let what = match after {
            Some(old) => format!("a new deployment replacing {old} to be stable"),
            None => format!("deployment {} to be stable", revision.id),
        };
        let svc = &self.svc;
        svc.poller
            .wait(
                &self.id,
                &svc.cluster,
                &svc.service,
                &what,
                timeout,
                progress,
                |s| restart_stability(s, after),
            )
            .await
    }
}
