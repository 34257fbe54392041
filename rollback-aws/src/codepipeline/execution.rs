//! [`PipelineExecution`]: re-running a pipeline for an earlier commit (runbook 003 step 3,
//! `aws codepipeline start-pipeline-execution --source-revisions commitId=<sha>`).
//!
//! Its revisions are the source revisions (commits; image digests for an ECR source, S3
//! version ids for an S3 one) of the pipeline's past **successful** executions, newest
//! first, each commit once (its newest successful execution's id is the fact `execution`).
//! The one in use is the commit of the latest successful execution: what the pipeline last
//! deployed to the end. An execution that failed or was stopped is not in use, so after a
//! failed deploy of `A` the pipeline is still at the commit before it. `Previous` is the
//! successful commit before that one; `Exact` takes a commit (or a unique prefix of 7 or
//! more characters).
//!
//! Apply is one StartPipelineExecution pinned to the commit (`sourceRevisions`, the type the
//! source action's provider takes: COMMIT_ID for CodeCommit and CodeStarSourceConnection
//! (GitHub, GitLab, Bitbucket), IMAGE_DIGEST for ECR, S3_OBJECT_VERSION_ID for S3; the
//! preflight refuses other providers, such as GitHub version 1, which take no override).
//! The wait watches that execution: stable when it Succeeded; failed when it Failed, was
//! Stopped, Superseded or Cancelled, with its status summary. Compensation starts an
//! execution pinned to the commit that was in use.
//!
//! A resumed run does not start a second execution: an execution pinned to the commit that
//! started after the run journaled its intent ([`Change::since`]) is the one the crashed run
//! started, and is watched instead. A target whose newest execution already deployed the
//! commit successfully sends nothing. If another commit was deployed successfully since the
//! plan, apply is a conflict.
//!
//! On AWS, a disabled inbound transition ([`PipelineTransition`](super::PipelineTransition)'s
//! freeze) holds this execution before that stage too: stop the in-flight execution with the
//! freeze (`stop_in_flight`) and open the transition before re-running. RollbackStage is not
//! used (it needs a V2 pipeline and rolls back one stage only).
//!
//! Calls: preflight GetPipeline and one ListPipelineExecutions page per 100 executions read
//! (the newest 500 at most); apply one ListPipelineExecutions page and
//! StartPipelineExecution; one GetPipelineExecution per look while waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_codepipeline::types::{
    PipelineExecutionStatus, PipelineExecutionSummary, SourceRevisionOverride, SourceRevisionType,
};
use aws_sdk_codepipeline::Client;
use rollback_core::redact::truncate;
use rollback_core::{
    ApplyOutcome, Change, Error, Result, Revision, RollbackTarget, Selector, Stability, TargetId,
    TargetSpec,
};
use serde::{Deserialize, Serialize};

use super::list_executions;
use crate::config::{Aws, AwsConfig};
use crate::error::{check_name, sdk_error};
use crate::sdk::chrono_time;
use crate::target::{self, aws_target};

/// The target kind of [`PipelineExecution`].
pub const EXECUTION_KIND: &str = "pipeline-execution";

/// Pages of 100 executions the history reads at most.
const HISTORY_PAGES: usize = 5;
/// The fact naming a revision's newest successful execution.
const EXECUTION_FACT: &str = "execution";
/// The fact naming the source action the revision is of.
const ACTION_FACT: &str = "source_action";
/// The fact naming the override type StartPipelineExecution is given.
const TYPE_FACT: &str = "revision_type";

/// A [`PipelineExecution`] as data (what the journal records, beside the AWS settings).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ExecutionParams {
    pipeline: String,
    #[serde(default)]
    source_action: Option<String>,
}

/// A pipeline re-run for an earlier commit; see the [module docs](self).
#[derive(Clone)]
pub struct PipelineExecution {
    pipeline: String,
    source_action: Option<String>,
    aws: AwsConfig,
    client: crate::config::LazyClient<Client>,
    id: TargetId,
    /// Commit -> the execution apply started (or found started) for it, which the wait
    /// watches.
    started: Arc<Mutex<HashMap<String, String>>>,
}

aws_target!(
    PipelineExecution,
    EXECUTION_KIND,
    ExecutionParams {
        pipeline,
        source_action
    },
    |aws, p| {
        let t = Self::new(aws, p.pipeline)?;
        match p.source_action {
            Some(a) => t.source_action(a),
            None => Ok(t),
        }
    }
);

/// The pipeline's source action whose revisions these are.
struct Source {
    action: String,
    revision_type: SourceRevisionType,
}

impl PipelineExecution {
    /// Re-runs of `pipeline` (its name).
    pub fn new(aws: &Aws, pipeline: impl Into<String>) -> Result<Self> {
        let pipeline = pipeline.into();
        let id = TargetId::new(EXECUTION_KIND, pipeline.clone());
        check_name(
            &id,
            "pipeline",
            &pipeline,
            "the pipeline's name, e.g. `Apgms`",
        )?;
        Ok(PipelineExecution {
            pipeline,
            source_action: None,
            aws: aws.config().clone(),
            client: aws.lazy_client(Client::new),
            id,
            started: Arc::default(),
        })
    }

    /// The source action whose revision is pinned, for a pipeline with several (one with a
    /// single source action needs none).
    pub fn source_action(mut self, action: impl Into<String>) -> Result<Self> {
        let action = action.into();
        check_name(
            &self.id,
            "source action",
            &action,
            "the name of the pipeline's source action, e.g. `Source`",
        )?;
        self.source_action = Some(action);
        Ok(self)
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The source action given, if any.
    pub fn source_action_name(&self) -> Option<&str> {
        self.source_action.as_deref()
    }

    /// The source action (GetPipeline), refused when its provider takes no override.
    async fn source(&self) -> Result<Source> {
        let out = self
            .client
            .get()
            .await?
            .get_pipeline()
            .name(&self.pipeline)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "GetPipeline", e))?;
        let actions: Vec<(String, String)> = out
            .pipeline()
            .map(|p| p.stages())
            .unwrap_or_default()
            .iter()
            .flat_map(|s| s.actions())
            .filter_map(|a| {
                let t = a.action_type_id()?;
                (t.category().as_str() == "Source")
                    .then(|| (a.name().to_string(), t.provider().to_string()))
            })
            .collect();
        let names = || {
            actions
                .iter()
                .map(|(n, p)| format!("{n} ({p})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (action, provider) = match &self.source_action {
            Some(want) => actions.iter().find(|(n, _)| n == want).ok_or_else(|| {
                Error::not_found(
                    self.id.to_string(),
                    format!("source action {want:?} of pipeline {:?}", self.pipeline),
                    format!("its source actions are {}", names()),
                )
            })?,
            None => match actions.as_slice() {
                [one] => one,
                [] => {
                    return Err(Error::invalid(
                        self.id.to_string(),
                        format!(
                            "pipeline {:?} has no source action, so it has no commit to re-run",
                            self.pipeline
                        ),
                    ))
                }
                _ => {
                    return Err(Error::invalid(
                        self.id.to_string(),
                        format!(
                            "pipeline {:?} has several source actions ({}); name the one to pin with source_action",
                            self.pipeline,
                            names()
                        ),
                    ))
                }
            },
        };
        let revision_type = match provider.as_str() {
            "CodeCommit" | "CodeStarSourceConnection" => SourceRevisionType::CommitId,
            "ECR" => SourceRevisionType::ImageDigest,
            "S3" => SourceRevisionType::S3ObjectVersionId,
            other => {
                return Err(Error::invalid(
                    self.id.to_string(),
                    format!(
                        "the source action {action:?} of pipeline {:?} (provider {other}) takes no sourceRevisions override, so no execution can be pinned to a commit; CodeCommit, CodeStarSourceConnection (GitHub, GitLab, Bitbucket), ECR and S3 sources do",
                        self.pipeline
                    ),
                ))
            }
        };
        Ok(Source {
            action: action.clone(),
            revision_type,
        })
    }

    /// The commits of the successful executions among `summaries`, newest first, each once.
    fn revisions(&self, source: &Source, summaries: &[PipelineExecutionSummary]) -> Vec<Revision> {
        let mut out: Vec<Revision> = Vec::new();
        for e in summaries {
            if e.status() != Some(&PipelineExecutionStatus::Succeeded) {
                continue;
            }
            let Some(rev) = source_revision(e, &source.action) else {
                continue;
            };
            if out.iter().any(|r| r.id == rev.0) {
                continue;
            }
            let execution = e.pipeline_execution_id().unwrap_or_default();
            let mut r = Revision::new(rev.0)
                .description(match rev.1 {
                    Some(summary) => format!(
                        "{} (execution {execution} Succeeded)",
                        truncate(summary.lines().next().unwrap_or_default(), 100)
                    ),
                    None => format!("execution {execution} Succeeded"),
                })
                .fact(EXECUTION_FACT, execution)
                .fact(ACTION_FACT, source.action.clone())
                .fact(TYPE_FACT, source.revision_type.as_str());
            r.created_at = e.start_time().and_then(chrono_time);
            out.push(r);
        }
        out
    }

    /// The source, the revisions and the newest executions, in two calls.
    async fn read(&self) -> Result<(Source, Vec<Revision>, Vec<PipelineExecutionSummary>)> {
        let client = self.client.get().await?;
        let (source, summaries) = futures::try_join!(
            self.source(),
            list_executions(&client, &self.id, &self.pipeline, HISTORY_PAGES)
        )?;
        let revisions = self.revisions(&source, &summaries);
        if revisions.is_empty() {
            let newest: Vec<String> = summaries
                .iter()
                .take(5)
                .map(|e| {
                    format!(
                        "{} ({})",
                        e.pipeline_execution_id().unwrap_or_default(),
                        e.status().map(|s| s.as_str()).unwrap_or("unknown")
                    )
                })
                .collect();
            return Err(Error::not_found(
                self.id.to_string(),
                format!("a successful execution of pipeline {:?}", self.pipeline),
                if newest.is_empty() {
                    "the pipeline has no executions, so no commit to go back to".to_string()
                } else {
                    format!(
                        "its newest executions are {}; there is no commit to go back to",
                        newest.join(", ")
                    )
                },
            ));
        }
        Ok((source, revisions, summaries))
    }

    fn select(&self, revisions: &[Revision], selector: &Selector) -> Result<Revision> {
        let current = &revisions[0];
        let Selector::Exact(want) = selector else {
            return selector.resolve(&self.id, revisions, &current.id);
        };
        if let Some(r) = revisions.iter().find(|r| &r.id == want) {
            return Ok(r.clone());
        }
        let by_prefix: Vec<&Revision> = if want.chars().count() >= 7 {
            revisions
                .iter()
                .filter(|r| r.id.starts_with(want.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        if let [one] = by_prefix.as_slice() {
            return Ok((*one).clone());
        }
        let commits: Vec<&str> = revisions.iter().take(10).map(|r| r.id.as_str()).collect();
        Err(Error::not_found(
            self.id.to_string(),
            format!(
                "commit {:?} among the successful executions of pipeline {:?}",
                truncate(want, 60),
                self.pipeline
            ),
            format!(
                "their commits are {}{} (newest first); choose one of them",
                commits.join(", "),
                if revisions.len() > 10 { ", ..." } else { "" }
            ),
        ))
    }

    fn remember(&self, commit: &str, execution: &str) {
        if let Ok(mut started) = self.started.lock() {
            started.insert(commit.to_string(), execution.to_string());
        }
    }

    fn remembered(&self, commit: &str) -> Option<String> {
        self.started.lock().ok()?.get(commit).cloned()
    }
}

/// The revision id and summary of `action` in an execution.
fn source_revision<'a>(
    e: &'a PipelineExecutionSummary,
    action: &str,
) -> Option<(&'a str, Option<&'a str>)> {
    e.source_revisions()
        .iter()
        .find(|r| r.action_name() == action)
        .and_then(|r| Some((r.revision_id()?, r.revision_summary())))
}

/// Whether `e` was StartPipelineExecution's.
fn started_by_hand(e: &PipelineExecutionSummary) -> bool {
    e.trigger()
        .and_then(|t| t.trigger_type())
        .is_some_and(|t| t.as_str() == "StartPipelineExecution")
}

/// Where an execution is, as a stability.
fn stability(
    execution: &str,
    commit: &str,
    status: Option<&PipelineExecutionStatus>,
    summary: Option<&str>,
) -> Stability {
    let status = status.map(|s| s.as_str()).unwrap_or("unknown");
    let summary = summary
        .filter(|s| !s.is_empty())
        .map(|s| format!(": {}", truncate(s, 200)))
        .unwrap_or_default();
    match status {
        "Succeeded" => Stability::Stable,
        "InProgress" => Stability::Waiting(format!(
            "execution {execution} of {commit} is InProgress{summary}"
        )),
        other => Stability::Failed(format!(
            "execution {execution} of {commit} ended {other}{summary}"
        )),
    }
}

#[async_trait]
impl RollbackTarget for PipelineExecution {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The pipeline and its executions read, one started pinned to a commit.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let pipeline = self.client.arn("codepipeline", &self.pipeline);
        Some(rollback_core::Permission::aws_all(
            &[
                "codepipeline:GetPipeline",
                "codepipeline:ListPipelineExecutions",
                "codepipeline:GetPipelineExecution",
                "codepipeline:StartPipelineExecution",
            ],
            &pipeline,
        ))
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    /// The commit of the latest successful execution.
    async fn current(&self) -> Result<Revision> {
        Ok(self.read().await?.1.remove(0))
    }

    /// The commits of the successful executions (the newest 500 executions read), newest
    /// first, each once.
    async fn history(&self) -> Result<Vec<Revision>> {
        Ok(self.read().await?.1)
    }

    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        let (_, revisions, _) = self.read().await?;
        self.select(&revisions, selector)
    }

    /// One GetPipeline and the executions' pages serve the current commit, the selected
    /// one and the change; the source action's provider is checked here.
    async fn prepare(&self, selector: &Selector) -> Result<Change> {
        let (_, revisions, _) = self.read().await?;
        let to = self.select(&revisions, selector)?;
        Ok(Change::new(
            self.id.clone(),
            revisions.into_iter().next().unwrap_or_default(),
            to,
        ))
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let commit = change.to.id.as_str();
        let source = match (
            change.to.facts.get(ACTION_FACT),
            change.to.facts.get(TYPE_FACT),
        ) {
            (Some(action), Some(t)) => Source {
                action: action.clone(),
                revision_type: SourceRevisionType::from(t.as_str()),
            },
            _ => self.source().await?,
        };
        let summaries =
            list_executions(&self.client.get().await?, &self.id, &self.pipeline, 1).await?;
        let pinned = |e: &&PipelineExecutionSummary| {
            source_revision(e, &source.action).is_some_and(|(r, _)| r == commit)
        };
        // A crashed run's execution: started by hand after its intent, pinned to the commit.
        if let Some(since) = change.since {
            let ours = summaries.iter().filter(pinned).find(|e| {
                started_by_hand(e)
                    && e.start_time()
                        .and_then(chrono_time)
                        .is_some_and(|at| at >= since)
            });
            if let Some(e) = ours.and_then(|e| e.pipeline_execution_id()) {
                self.remember(commit, e);
                return Ok(ApplyOutcome::AlreadyCurrent);
            }
        }
        if let Some(newest) = summaries.first() {
            if pinned(&newest) && newest.status() == Some(&PipelineExecutionStatus::Succeeded) {
                self.remember(commit, newest.pipeline_execution_id().unwrap_or_default());
                return Ok(ApplyOutcome::AlreadyCurrent);
            }
        }
        let latest = summaries
            .iter()
            .filter(|e| e.status() == Some(&PipelineExecutionStatus::Succeeded))
            .find_map(|e| source_revision(e, &source.action))
            .map(|(r, _)| r);
        if let Some(latest) = latest {
            if latest != change.from.id && latest != commit {
                return Err(Error::conflict(
                    self.id.to_string(),
                    change.from.id.clone(),
                    latest.to_string(),
                ));
            }
        }
        let pin = SourceRevisionOverride::builder()
            .action_name(&source.action)
            .revision_type(source.revision_type.clone())
            .revision_value(commit)
            .build()
            .map_err(|e| {
                Error::invalid(
                    self.id.to_string(),
                    format!("the source revision override could not be built: {e}"),
                )
            })?;
        let out = self
            .client
            .get()
            .await?
            .start_pipeline_execution()
            .name(&self.pipeline)
            .source_revisions(pin)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "StartPipelineExecution", e))?;
        let execution = out.pipeline_execution_id().unwrap_or_default();
        tracing::info!(target = %self.id, execution, commit, "started a pinned execution");
        self.remember(commit, execution);
        Ok(ApplyOutcome::Applied)
    }

    /// The execution apply started (GetPipelineExecution); after a resume that did not
    /// apply, the newest execution pinned to the commit (ListPipelineExecutions).
    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        let commit = revision.id.as_str();
        if let Some(execution) = self.remembered(commit) {
            let out = self
                .client
                .get()
                .await?
                .get_pipeline_execution()
                .pipeline_name(&self.pipeline)
                .pipeline_execution_id(&execution)
                .send()
                .await
                .map_err(|e| sdk_error(&self.id, "GetPipelineExecution", e))?;
            let e = out.pipeline_execution();
            return Ok(stability(
                &execution,
                commit,
                e.and_then(|e| e.status()),
                e.and_then(|e| e.status_summary()),
            ));
        }
        let action = match revision.facts.get(ACTION_FACT) {
            Some(a) => a.clone(),
            None => self.source().await?.action,
        };
        let summaries =
            list_executions(&self.client.get().await?, &self.id, &self.pipeline, 1).await?;
        let found = summaries
            .iter()
            .find(|e| source_revision(e, &action).is_some_and(|(r, _)| r == commit));
        Ok(match found {
            Some(e) => {
                let execution = e.pipeline_execution_id().unwrap_or_default();
                self.remember(commit, execution);
                stability(execution, commit, e.status(), e.status_summary())
            }
            None => Stability::Failed(format!(
                "no execution of pipeline {:?} is pinned to {commit}; someone else's change replaced it",
                self.pipeline
            )),
        })
    }
}
