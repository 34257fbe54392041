//! Freezing a pipeline (runbook 003, steps 1 and 5): the inbound transition of a CodePipeline
//! stage as a target whose revisions are `enabled` and `disabled`.
//!
//! Used as a [temporary](rollback_core::Step::temporary) step, it disables the transition
//! before the rollback (so the pipeline cannot redeploy the bad release meanwhile) and
//! enables it again after, or on compensation:
//!
//! ```no_run
//! # async fn demo(aws: &rollback_aws::Aws) -> rollback_core::Result<()> {
//! use std::sync::Arc;
//! use rollback_aws::codepipeline::PipelineTransition;
//! use rollback_core::{Selector, Step};
//! let freeze = Step::new(Arc::new(PipelineTransition::new(aws, "Apgms", "Deploy")?), Selector::exact("disabled"))
//!     .temporary();
//! # Ok(()) }
//! ```
//!
//! The freeze can also stop the execution in flight ([`PipelineTransition::stop_in_flight`],
//! runbook key `stop_in_flight: finish | abandon`, default `leave`): the plan reads the
//! pipeline's executions and names those InProgress in the change (facts `stop_in_flight`
//! and `stops`), apply disables the transition and then sends StopPipelineExecution for each
//! (with `abandon` as chosen and a reason). The step is stable once each is Stopped (or has
//! ended otherwise): with `finish` that waits for its actions in progress to finish, so
//! nothing of the bad release runs on while the rollback does; a Stopping execution is
//! still waited for. A resumed run stops only those still InProgress (never twice), and
//! executions started after the plan are not stopped (the transition holds them). Undoing
//! the freeze (enable) restarts nothing.
//!
//! [`PipelineExecution`] (kind `pipeline-execution`, runbook 003 step 3) re-runs the pipeline
//! for the source commit of an earlier successful execution.

mod execution;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use aws_sdk_codepipeline::types::{
    PipelineExecutionStatus, PipelineExecutionSummary, StageTransitionType,
};
use aws_sdk_codepipeline::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rollback_core::{
    ApplyOutcome, Change, Error, Result, Revision, RollbackTarget, Selector, Stability, TargetId,
    TargetSpec,
};
use serde::{Deserialize, Serialize};

use crate::config::{Aws, AwsConfig};
use crate::error::{check_name, sdk_error};
use crate::target::{self, aws_target};

pub use execution::{PipelineExecution, EXECUTION_KIND};

/// The target kind.
pub const KIND: &str = "pipeline-transition";
/// The revision of an open transition.
pub const ENABLED: &str = "enabled";
/// The revision of a frozen transition.
pub const DISABLED: &str = "disabled";

/// The fact of a freeze's change naming how it stops the executions in flight.
const STOP_FACT: &str = "stop_in_flight";
/// The fact of a freeze's change listing the executions it stops (comma-separated ids).
const STOPS_FACT: &str = "stops";
/// The reason sent with StopPipelineExecution (AWS takes up to 200 characters).
const STOP_REASON: &str = "stopped by rollback: the pipeline is frozen while a rollback runs";

/// What a freeze does with the pipeline's executions in flight
/// ([`PipelineTransition::stop_in_flight`]); runbook values `leave`, `finish`, `abandon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopInFlight {
    /// Leave them running (only the transition is disabled): the default.
    #[default]
    Leave,
    /// StopPipelineExecution: the actions in progress finish, nothing new starts.
    Finish,
    /// StopPipelineExecution with `abandon`: the pipeline stops tracking its actions in
    /// progress at once (what they were doing goes on in their own services).
    Abandon,
}

impl StopInFlight {
    /// Its runbook name: `leave`, `finish` or `abandon`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopInFlight::Leave => "leave",
            StopInFlight::Finish => "finish",
            StopInFlight::Abandon => "abandon",
        }
    }
}

impl fmt::Display for StopInFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StopInFlight {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "leave" => Ok(StopInFlight::Leave),
            "finish" => Ok(StopInFlight::Finish),
            "abandon" => Ok(StopInFlight::Abandon),
            other => Err(Error::invalid(
                KIND,
                format!(
                    "stop_in_flight {:?} is not one of leave, finish, abandon",
                    rollback_core::redact::truncate(other, 40)
                ),
            )),
        }
    }
}

/// A [`PipelineTransition`] as data (what the journal records, beside the AWS settings).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Params {
    pipeline: String,
    stage: String,
    #[serde(default)]
    stop_in_flight: StopInFlight,
}

/// The inbound transition of one pipeline stage; see the [module docs](self).
#[derive(Clone)]
pub struct PipelineTransition {
    pipeline: String,
    stage: String,
    stop_in_flight: StopInFlight,
    aws: AwsConfig,
    client: crate::config::LazyClient<Client>,
    id: TargetId,
}

aws_target!(
    PipelineTransition,
    KIND,
    Params {
        pipeline,
        stage,
        stop_in_flight
    },
    |aws, p| Ok(Self::new(aws, p.pipeline, p.stage)?.stop_in_flight(p.stop_in_flight))
);

impl PipelineTransition {
    /// The pipeline.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The stage whose inbound transition this is.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// Also stop the pipeline's executions in flight when freezing (see the [module
    /// docs](self)); [`StopInFlight::Leave`] (the default) leaves them running.
    pub fn stop_in_flight(mut self, mode: StopInFlight) -> Self {
        self.stop_in_flight = mode;
        self
    }

    /// What freezing does with the executions in flight.
    pub fn stop_mode(&self) -> StopInFlight {
        self.stop_in_flight
    }

    /// The inbound transition of `stage` in `pipeline`.
    pub fn new(aws: &Aws, pipeline: impl Into<String>, stage: impl Into<String>) -> Result<Self> {
        let (pipeline, stage) = (pipeline.into(), stage.into());
        let id = TargetId::new(KIND, format!("{pipeline}/{stage}"));
        check_name(
            &id,
            "pipeline",
            &pipeline,
            "the pipeline's name, e.g. `Apgms`",
        )?;
        check_name(
            &id,
            "stage",
            &stage,
            "the stage whose inbound transition to freeze, e.g. `Deploy`",
        )?;
        Ok(PipelineTransition {
            pipeline,
            stage,
            stop_in_flight: StopInFlight::Leave,
            aws: aws.config().clone(),
            client: aws.lazy_client(Client::new),
            id,
        })
    }

    async fn enabled(&self) -> Result<(bool, Option<String>)> {
        let out = self
            .client
            .get()
            .await?
            .get_pipeline_state()
            .name(&self.pipeline)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "GetPipelineState", e))?;
        let stage = out
            .stage_states()
            .iter()
            .find(|s| s.stage_name() == Some(self.stage.as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = out
                    .stage_states()
                    .iter()
                    .filter_map(|s| s.stage_name())
                    .collect();
                Error::not_found(
                    self.id.to_string(),
                    format!("stage {:?} of pipeline {:?}", self.stage, self.pipeline),
                    format!("the pipeline's stages are {}", names.join(", ")),
                )
            })?;
        let t = stage.inbound_transition_state();
        Ok((
            t.map(|t| t.enabled()).unwrap_or(true),
            t.and_then(|t| t.disabled_reason()).map(str::to_string),
        ))
    }

    fn select(&self, current: &Revision, selector: &Selector) -> Result<Revision> {
        match selector {
            Selector::Exact(s) if s == ENABLED || s == DISABLED => Ok(Self::revision(s == ENABLED)),
            other => other.resolve(&self.id, std::slice::from_ref(current), &current.id),
        }
    }

    fn revision(enabled: bool) -> Revision {
        if enabled {
            Revision::new(ENABLED).description("deployments flow into the stage")
        } else {
            Revision::new(DISABLED).description("frozen: nothing enters the stage")
        }
    }
}

#[async_trait]
impl RollbackTarget for PipelineTransition {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The pipeline's state read and the stage's inbound transition disabled and enabled;
    /// unless in-flight executions are left, those listed and stopped.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let pipeline = self.client.arn("codepipeline", &self.pipeline);
        let stage = format!("{pipeline}/{}", self.stage);
        let mut p =
            rollback_core::Permission::aws_all(&["codepipeline:GetPipelineState"], &pipeline);
        p.extend(rollback_core::Permission::aws_all(
            &[
                "codepipeline:DisableStageTransition",
                "codepipeline:EnableStageTransition",
            ],
            &stage,
        ));
        if !matches!(self.stop_in_flight, StopInFlight::Leave) {
            p.extend(rollback_core::Permission::aws_all(
                &[
                    "codepipeline:ListPipelineExecutions",
                    "codepipeline:StopPipelineExecution",
                ],
                &pipeline,
            ));
        }
        Some(p)
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    async fn current(&self) -> Result<Revision> {
        Ok(Self::revision(self.enabled().await?.0))
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        Ok(vec![self.current().await?])
    }

    /// `Exact("disabled")` or `Exact("enabled")`; other selectors follow the shared rules
    /// over the one state in use.
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        let current = self.current().await?;
        self.select(&current, selector)
    }

    /// One GetPipelineState serves the current state, the selected one and the change; a
    /// freeze that stops the executions in flight also reads one page of executions and
    /// names those InProgress in the change.
    async fn prepare(&self, selector: &Selector) -> Result<Change> {
        let current = self.current().await?;
        let mut to = self.select(&current, selector)?;
        if to.id == DISABLED && self.stop_in_flight != StopInFlight::Leave {
            let running: Vec<String> = in_flight(
                &list_executions(&self.client.get().await?, &self.id, &self.pipeline, 1).await?,
            )
            .map(str::to_string)
            .collect();
            if !running.is_empty() {
                to = to
                    .description(format!(
                        "frozen: nothing enters the stage; execution(s) {} stopped ({})",
                        running.join(", "),
                        self.stop_in_flight
                    ))
                    .fact(STOP_FACT, self.stop_in_flight.as_str())
                    .fact(STOPS_FACT, running.join(","));
            }
        }
        Ok(Change::new(self.id.clone(), current, to))
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let (enabled, _) = self.enabled().await?;
        let now = Self::revision(enabled).id;
        let stops = planned_stops(&change.to);
        if now == change.to.id && stops.is_none() {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        if now != change.from.id && now != change.to.id {
            return Err(Error::conflict(
                self.id.to_string(),
                change.from.id.clone(),
                now,
            ));
        }
        let mut sent = false;
        if now != change.to.id {
            self.flip(&change.to.id).await?;
            sent = true;
        }
        if let Some((mode, ids)) = stops {
            sent |= self.stop(mode, &ids).await?;
        }
        Ok(if sent {
            ApplyOutcome::Applied
        } else {
            ApplyOutcome::AlreadyCurrent
        })
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        let (enabled, reason) = self.enabled().await?;
        let now = Self::revision(enabled).id;
        // Disable/EnableStageTransition take effect at once: after our apply, the other
        // state means someone else flipped it, and waiting will not flip it back.
        if now != revision.id {
            return Ok(Stability::Failed(format!(
                "the transition is {now}{}, not {}; someone else changed it",
                reason.map(|r| format!(" ({r})")).unwrap_or_default(),
                revision.id
            )));
        }
        let Some((_, ids)) = planned_stops(revision) else {
            return Ok(Stability::Stable);
        };
        let summaries =
            list_executions(&self.client.get().await?, &self.id, &self.pipeline, 1).await?;
        let waiting: Vec<String> = summaries
            .iter()
            .filter(|e| {
                e.pipeline_execution_id()
                    .is_some_and(|i| ids.iter().any(|x| x == i))
            })
            .filter(|e| {
                matches!(
                    e.status(),
                    Some(PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping)
                )
            })
            .map(|e| {
                format!(
                    "execution {} is {}",
                    e.pipeline_execution_id().unwrap_or_default(),
                    e.status().map(|s| s.as_str()).unwrap_or("InProgress")
                )
            })
            .collect();
        Ok(if waiting.is_empty() {
            Stability::Stable
        } else {
            Stability::Waiting(format!(
                "{} (waiting for it to be Stopped)",
                waiting.join(", ")
            ))
        })
    }
}

impl PipelineTransition {
    /// Disables (`to` is [`DISABLED`]) or enables the transition.
    async fn flip(&self, to: &str) -> Result<()> {
        if to == DISABLED {
            self.client
                .get()
                .await?
                .disable_stage_transition()
                .pipeline_name(&self.pipeline)
                .stage_name(&self.stage)
                .transition_type(StageTransitionType::Inbound)
                .reason("frozen by rollback while a rollback runs (runbook 003)")
                .send()
                .await
                .map_err(|e| sdk_error(&self.id, "DisableStageTransition", e))?;
        } else {
            self.client
                .get()
                .await?
                .enable_stage_transition()
                .pipeline_name(&self.pipeline)
                .stage_name(&self.stage)
                .transition_type(StageTransitionType::Inbound)
                .send()
                .await
                .map_err(|e| sdk_error(&self.id, "EnableStageTransition", e))?;
        }
        Ok(())
    }

    /// Stops the planned executions still InProgress (one page of executions read first,
    /// so a resumed run does not stop them twice); whether any StopPipelineExecution was sent.
    async fn stop(&self, mode: StopInFlight, ids: &[String]) -> Result<bool> {
        let summaries =
            list_executions(&self.client.get().await?, &self.id, &self.pipeline, 1).await?;
        let running: Vec<&str> = in_flight(&summaries)
            .filter(|id| ids.iter().any(|x| x == id))
            .collect();
        let mut sent = false;
        for execution in running {
            let out = self
                .client
                .get()
                .await?
                .stop_pipeline_execution()
                .pipeline_name(&self.pipeline)
                .pipeline_execution_id(execution)
                .abandon(mode == StopInFlight::Abandon)
                .reason(STOP_REASON)
                .send()
                .await;
            match out {
                Ok(_) => sent = true,
                // Stopped or ended meanwhile: what this call was for.
                Err(e)
                    if matches!(
                        e.code(),
                        Some(
                            "DuplicatedStopRequestException"
                                | "PipelineExecutionNotStoppableException"
                        )
                    ) =>
                {
                    tracing::debug!(target = %self.id, execution, "already stopped or ended");
                }
                Err(e) => return Err(sdk_error(&self.id, "StopPipelineExecution", e)),
            }
        }
        Ok(sent)
    }
}

/// The stops a freeze's revision plans: its mode and the executions, if it has any.
fn planned_stops(revision: &Revision) -> Option<(StopInFlight, Vec<String>)> {
    let mode = revision.facts.get(STOP_FACT)?.parse().ok()?;
    let ids: Vec<String> = revision
        .facts
        .get(STOPS_FACT)?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (mode != StopInFlight::Leave && !ids.is_empty()).then_some((mode, ids))
}

/// The ids of the executions InProgress.
fn in_flight(summaries: &[PipelineExecutionSummary]) -> impl Iterator<Item = &str> {
    summaries
        .iter()
        .filter(|e| e.status() == Some(&PipelineExecutionStatus::InProgress))
        .filter_map(|e| e.pipeline_execution_id())
}

/// How many executions a page of ListPipelineExecutions holds (AWS's most).
const PAGE: i32 = 100;

/// The newest executions of `pipeline`, newest first: up to `pages` pages of [`PAGE`].
pub(crate) async fn list_executions(
    client: &Client,
    id: &TargetId,
    pipeline: &str,
    pages: usize,
) -> Result<Vec<PipelineExecutionSummary>> {
    let mut stream = client
        .list_pipeline_executions()
        .pipeline_name(pipeline)
        .max_results(PAGE)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    for _ in 0..pages {
        match stream.next().await {
            Some(page) => out.extend(
                page.map_err(|e| sdk_error(id, "ListPipelineExecutions", e))?
                    .pipeline_execution_summaries()
                    .iter()
                    .cloned(),
            ),
            None => break,
        }
    }
    Ok(out)
}
