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

use async_trait::async_trait;
use aws_sdk_codepipeline::types::StageTransitionType;
use aws_sdk_codepipeline::Client;
use rollback_core::{
    ApplyOutcome, Change, Error, Result, Revision, RollbackTarget, Selector, Stability, TargetId,
    TargetSpec,
};
use serde::{Deserialize, Serialize};

use crate::config::{Aws, AwsConfig};
use crate::error::{check_name, sdk_error};
use crate::target::{self, aws_target};

/// The target kind.
pub const KIND: &str = "pipeline-transition";
/// The revision of an open transition.
pub const ENABLED: &str = "enabled";
/// The revision of a frozen transition.
pub const DISABLED: &str = "disabled";

/// A [`PipelineTransition`] as data (what the journal records, beside the AWS settings).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Params {
    pipeline: String,
    stage: String,
}

/// The inbound transition of one pipeline stage; see the [module docs](self).
#[derive(Clone)]
pub struct PipelineTransition {
    pipeline: String,
    stage: String,
    aws: AwsConfig,
    client: Client,
    id: TargetId,
}

aws_target!(
    PipelineTransition,
    KIND,
    Params { pipeline, stage },
    |aws, p| Self::new(aws, p.pipeline, p.stage)
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
            aws: aws.config().clone(),
            client: aws.client(Client::new),
            id,
        })
    }

    async fn enabled(&self) -> Result<(bool, Option<String>)> {
        let out = self
            .client
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

    /// One GetPipelineState serves the current state, the selected one and the change.
    async fn prepare(&self, selector: &Selector) -> Result<Change> {
        let current = self.current().await?;
        let to = self.select(&current, selector)?;
        Ok(Change::new(self.id.clone(), current, to))
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let (enabled, _) = self.enabled().await?;
        let now = Self::revision(enabled).id;
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
        if change.to.id == DISABLED {
            self.client
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
                .enable_stage_transition()
                .pipeline_name(&self.pipeline)
                .stage_name(&self.stage)
                .transition_type(StageTransitionType::Inbound)
                .send()
                .await
                .map_err(|e| sdk_error(&self.id, "EnableStageTransition", e))?;
        }
        Ok(ApplyOutcome::Applied)
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        let (enabled, reason) = self.enabled().await?;
        let now = Self::revision(enabled).id;
        // Disable/EnableStageTransition take effect at once: after our apply, the other
        // state means someone else flipped it, and waiting will not flip it back.
        Ok(if now == revision.id {
            Stability::Stable
        } else {
            Stability::Failed(format!(
                "the transition is {now}{}, not {}; someone else changed it",
                reason.map(|r| format!(" ({r})")).unwrap_or_default(),
                revision.id
            ))
        })
    }
}
