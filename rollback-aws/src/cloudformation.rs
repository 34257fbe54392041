//! [`CloudFormationStack`]: a stack rolled back to an earlier version of its template
//! artifact in a versioned S3 bucket (runbook 003 step 3, "deploy the previous CloudFormation
//! template artifact from S3 ... monitor the stack events until status is UPDATE_COMPLETE").
//!
//! - **Revisions** are the S3 object versions of the template key (ListObjectVersions),
//!   newest first; the id is the version id, the description the upload time.
//! - **Current** is the version whose content matches the stack's template (GetTemplate),
//!   compared normalised (JSON parsed and re-serialised, other text with its line endings and
//!   trailing blanks dropped) by SHA-256, reading versions newest first until one matches.
//!   When none does (someone ran `cdk deploy` or `aws cloudformation deploy` by hand), the
//!   current revision is `live:<sha256 prefix>`, the template **captured**: its body is kept
//!   in the revision (fact `template_body`) so a compensation can put it back exactly. That
//!   body is journaled, so it is captured only when it holds nothing secret-looking (a
//!   NoEcho parameter's `Default`, a literal value under a secret-looking key) and fits
//!   UpdateStack's TemplateBody (51,200 bytes); otherwise preflight refuses, saying to upload
//!   the live template to the bucket first (it then is a version, and is matched). Parameter
//!   values are never read into a revision: only their names (fact `parameters`).
//! - **Apply** is UpdateStack with `TemplateURL` pinned to the version (`?versionId=`), every
//!   parameter the stack has and the template declares passed as `UsePreviousValue` (or only
//!   those given to [`CloudFormationStack::keep_parameters`]), with the capabilities given.
//!   "No updates are to be performed" is [`ApplyOutcome::AlreadyCurrent`]. The stack's
//!   `LastUpdatedTime` read in preflight is the precondition: when it moved, the template is
//!   read again and a stack neither at `from` nor at `to` is a conflict. A stack in any
//!   `*_IN_PROGRESS` state is someone else's operation: a conflict, nothing sent; one that
//!   CloudFormation is rolling back itself (`UPDATE_ROLLBACK_IN_PROGRESS`) is waited for
//!   first, so a compensation after a failed update finds the stack at rest.
//! - **Stable**: `UPDATE_COMPLETE` (or another `*_COMPLETE` at rest) with the revision's
//!   template; `UPDATE_IN_PROGRESS` / `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS` wait;
//!   `UPDATE_ROLLBACK_*` and `*_FAILED` fail at once with the failing events of the latest
//!   update (DescribeStackEvents back to its `UPDATE_IN_PROGRESS`, the `ResourceStatusReason`
//!   of every `*_FAILED` resource event).
//! - **Plan**: a line diff of the two templates (normalised, values under secret-looking keys
//!   and NoEcho defaults redacted, at most [`DIFF_LINES`] lines), beside the parameter names.
//!   A change set would show resource actions only, and moto's cover few resource types.
//!
//! ```no_run
//! # async fn demo(aws: &rollback_aws::Aws) -> rollback_core::Result<()> {
//! use rollback_aws::CloudFormationStack;
//! use rollback_core::{RollbackTarget, Selector};
//! let stack = CloudFormationStack::new(aws, "apgms-staging", "s3://apgms-templates/staging/template.json")?
//!     .capabilities(["CAPABILITY_IAM"])?;
//! let change = stack.prepare(&Selector::Previous).await?;
//! println!("{change}");
//! # Ok(()) }
//! ```

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus, TemplateStage};
use aws_sdk_cloudformation::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rollback_core::redact::excerpt;
use rollback_core::revision::{is_secret_key, REDACTED};
use rollback_core::wait::{poll_until, PollSchedule};
use rollback_core::{
    ApplyOutcome, Change, Diff, DiffBuilder, DiffEntry, DiffSection, Error, Progress, Result,
    Revision, RollbackTarget, Selector, Stability, TargetId, TargetSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{Aws, AwsConfig};
use crate::error::{check_name, sdk_error};
use crate::s3::{check_bucket, s3_client};
use crate::sdk::{all_pages_refused, chrono_time, MAX_PAGES};
use crate::target::{self, aws_target};

/// The target kind.
pub const KIND: &str = "cloudformation-stack";
/// The fact with the SHA-256 of a revision's normalised template.
pub const SHA_FACT: &str = "template_sha256";
/// The fact with the names of the parameters a revision's template declares.
pub const PARAMETERS_FACT: &str = "parameters";
/// The fact holding a captured live template (a stack whose template is no bucket version).
pub const BODY_FACT: &str = "template_body";
/// The most template lines a plan shows.
pub const DIFF_LINES: usize = 60;
/// UpdateStack's limit for TemplateBody.
const BODY_LIMIT: usize = 51_200;
/// How many versions are compared with the live template, newest first.
const COMPARED: usize = 50;
/// How long an apply waits for a rollback CloudFormation makes itself.
const SETTLE: Duration = Duration::from_secs(600);
const CAPABILITIES: [&str; 3] = [
    "CAPABILITY_IAM",
    "CAPABILITY_NAMED_IAM",
    "CAPABILITY_AUTO_EXPAND",
];

/// A [`CloudFormationStack`] as data (what the journal records, beside the AWS settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Params {
    stack: String,
    template: String,
    #[serde(default)]
    keep_parameters: Vec<String>,
    #[serde(default)]
    capabilities: Vec<String>,
}

/// A stack whose revisions are the versions of its template in S3; see the [module docs](self).
#[derive(Clone)]
pub struct CloudFormationStack {
    stack: String,
    template: String,
    keep_parameters: Vec<String>,
    capabilities: Vec<String>,
    bucket: String,
    key: String,
    aws: AwsConfig,
    client: crate::config::LazyClient<Client>,
    s3: crate::config::LazyClient<aws_sdk_s3::Client>,
    id: TargetId,
}

aws_target!(
    CloudFormationStack,
    KIND,
    Params {
        stack,
        template,
        keep_parameters,
        capabilities
    },
    |aws, p| Self::new(aws, p.stack, p.template)?
        .keep_parameters(p.keep_parameters)?
        .capabilities(p.capabilities)
);

/// What DescribeStacks says, reduced to what a rollback needs.
struct StackState {
    status: String,
    /// LastUpdatedTime (else CreationTime): the precondition.
    marker: Option<String>,
    parameters: Vec<String>,
}

/// One version of the template key.
struct Version {
    id: String,
    revision: Revision,
}

impl CloudFormationStack {
    /// The stack `stack` (name or id) with its template at `template`, `s3://bucket/key` of a
    /// versioned bucket. Names are checked here; that the stack, the bucket (versioned) and
    /// the key exist is checked in preflight.
    pub fn new(aws: &Aws, stack: impl Into<String>, template: impl Into<String>) -> Result<Self> {
        let (stack, template) = (stack.into(), template.into());
        let id = TargetId::new(KIND, &stack);
        check_name(
            &id,
            "stack",
            &stack,
            "the stack's name, e.g. `apgms-staging`",
        )?;
        let (bucket, key) = parse_s3_url(&template).ok_or_else(|| {
            Error::invalid(
                id.to_string(),
                format!("the template location {template:?} is not s3://BUCKET/KEY; give the S3 URL of the template artifact in a versioned bucket, e.g. s3://apgms-templates/staging/template.json"),
            )
        })?;
        check_bucket(&id.to_string(), &bucket)?;
        Ok(CloudFormationStack {
            stack,
            template,
            keep_parameters: Vec::new(),
            capabilities: Vec::new(),
            bucket,
            key,
            aws: aws.config().clone(),
            client: aws.lazy_client(Client::new),
            s3: aws.lazy_client(s3_client),
            id,
        })
    }

    /// Passes only these parameters as `UsePreviousValue` (the others get the template's
    /// defaults); by default every parameter the stack has and the template declares.
    pub fn keep_parameters<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        for n in &names {
            check_name(&self.id, "parameter", n, "a parameter name of the stack")?;
        }
        self.keep_parameters = names;
        Ok(self)
    }

    /// The capabilities UpdateStack acknowledges (`CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM`,
    /// `CAPABILITY_AUTO_EXPAND`).
    pub fn capabilities<S: Into<String>>(
        mut self,
        caps: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        let caps: Vec<String> = caps.into_iter().map(Into::into).collect();
        if let Some(bad) = caps.iter().find(|c| !CAPABILITIES.contains(&c.as_str())) {
            return Err(Error::invalid(
                self.id.to_string(),
                format!(
                    "{bad:?} is not a CloudFormation capability; give any of {}",
                    CAPABILITIES.join(", ")
                ),
            ));
        }
        self.capabilities = caps;
        Ok(self)
    }

    /// The stack name.
    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// The template location, `s3://bucket/key`.
    pub fn template(&self) -> &str {
        &self.template
    }

    fn target(&self) -> String {
        self.id.to_string()
    }

    async fn describe(&self) -> Result<StackState> {
        let out = self
            .client
            .get()
            .await?
            .describe_stacks()
            .stack_name(&self.stack)
            .send()
            .await
            .map_err(|e| self.stack_error(sdk_error(&self.id, "DescribeStacks", e)))?;
        let s = out.stacks().first().ok_or_else(|| self.missing())?;
        let marker = s
            .last_updated_time()
            .or(s.creation_time())
            .and_then(chrono_time)
            .map(|t| t.to_rfc3339());
        Ok(StackState {
            status: s
                .stack_status()
                .map(|st| st.as_str().to_string())
                .unwrap_or_default(),
            marker,
            parameters: s
                .parameters()
                .iter()
                .filter_map(|p| p.parameter_key().map(str::to_string))
                .collect(),
        })
    }

    fn missing(&self) -> Error {
        Error::not_found(
            self.target(),
            format!("stack {:?}", self.stack),
            "check the stack name, region and account (aws cloudformation describe-stacks)",
        )
    }

    /// CloudFormation says "Stack with id X does not exist" as a ValidationError.
    fn stack_error(&self, e: Error) -> Error {
        if e.to_string().contains("does not exist") {
            return self.missing();
        }
        e
    }

    async fn live_template(&self) -> Result<String> {
        let out = self
            .client
            .get()
            .await?
            .get_template()
            .stack_name(&self.stack)
            .template_stage(TemplateStage::Original)
            .send()
            .await
            .map_err(|e| self.stack_error(sdk_error(&self.id, "GetTemplate", e)))?;
        Ok(out.template_body().unwrap_or_default().to_string())
    }

    async fn check_versioned(&self) -> Result<()> {
        let out = self
            .s3
            .get()
            .await?
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "GetBucketVersioning", e))?;
        match out.status().map(|s| s.as_str()) {
            Some("Enabled") => Ok(()),
            other => Err(Error::invalid(
                self.target(),
                format!(
                    "bucket {} is not versioned ({}), so its template versions cannot be rolled back to; enable versioning (aws s3api put-bucket-versioning --versioning-configuration Status=Enabled) and upload the template again",
                    self.bucket,
                    other.unwrap_or("versioning never enabled")
                ),
            )),
        }
    }

    /// The versions of the template key, newest first (S3's order).
    async fn versions(&self) -> Result<Vec<Version>> {
        let (mut key_marker, mut version_marker) = (None, None);
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self
                .s3
                .get()
                .await?
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(&self.key)
                .set_key_marker(key_marker)
                .set_version_id_marker(version_marker)
                .send()
                .await
                .map_err(|e| sdk_error(&self.id, "ListObjectVersions", e))?;
            for v in page.versions() {
                let (Some(key), Some(id)) = (v.key(), v.version_id()) else {
                    continue;
                };
                if key != self.key || id == "null" {
                    continue;
                }
                let when = v.last_modified().and_then(chrono_time);
                let mut revision = Revision::new(id).description(format!(
                    "s3://{}/{} uploaded {}{}",
                    self.bucket,
                    self.key,
                    when.map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "(time unknown)".into()),
                    if v.is_latest() == Some(true) {
                        " (latest)"
                    } else {
                        ""
                    }
                ));
                revision.created_at = when;
                out.push(Version {
                    id: id.to_string(),
                    revision,
                });
            }
            if page.is_truncated() != Some(true) {
                return Ok(out);
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        all_pages_refused(&self.id, "ListObjectVersions")
    }

    async fn version_body(&self, version: &str) -> Result<String> {
        let out = self
            .s3
            .get()
            .await?
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .version_id(version)
            .send()
            .await
            .map_err(|e| {
                let e = sdk_error(&self.id, "GetObject", e);
                if e.kind() == rollback_core::ErrorKind::NotFound
                    || e.to_string().contains("InvalidArgument")
                {
                    Error::not_found(
                        self.target(),
                        format!("version {version:?} of {}", self.template),
                        "choose a version from the history (aws s3api list-object-versions)",
                    )
                } else {
                    e
                }
            })?;
        let bytes = out.body.collect().await.map_err(|e| {
            Error::backend(
                self.target(),
                format!("GetObject {}: the body was cut short: {e}", self.template),
                true,
            )
        })?;
        Ok(String::from_utf8_lossy(&bytes.into_bytes()).into_owned())
    }

    /// A version revision with its fingerprint and parameter names.
    fn read_revision(base: &Revision, body: &str) -> Revision {
        let mut r = base.clone();
        r.facts.insert(SHA_FACT.into(), fingerprint(body));
        r.facts
            .insert(PARAMETERS_FACT.into(), declared_parameters(body).join(","));
        r
    }

    /// The live template as a revision, captured when that is safe.
    fn live_revision(&self, body: &str) -> Result<Revision> {
        let sha = fingerprint(body);
        let why = if body.len() > BODY_LIMIT {
            Some(format!(
                "it is {} bytes, more than UpdateStack's TemplateBody takes ({BODY_LIMIT})",
                body.len()
            ))
        } else if holds_secrets(body) {
            Some("it holds secret-looking values (a NoEcho parameter's Default, or a literal under a secret-looking key), which are never journaled".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Error::invalid(
                self.target(),
                format!(
                    "the stack's template is none of the versions of {} and cannot be kept for compensation: {why}; upload the live template to the bucket (aws cloudformation get-template, then aws s3 cp) and plan again",
                    self.template
                ),
            ));
        }
        Ok(Revision::new(format!("live:{}", &sha[..12]))
            .description(format!(
                "the stack's live template (not a version of {})",
                self.template
            ))
            .fact(SHA_FACT, sha)
            .fact(PARAMETERS_FACT, declared_parameters(body).join(","))
            .fact(BODY_FACT, body))
    }

    /// Preflight: the stack, its template, the bucket's versions; the current revision (with
    /// its body), the whole history and the stack state.
    async fn read(&self) -> Result<(StackState, Revision, String, Vec<Version>)> {
        let (state, live, (), versions) = futures::try_join!(
            self.describe(),
            self.live_template(),
            self.check_versioned(),
            self.versions()
        )?;
        if state.status.ends_with("_IN_PROGRESS") {
            return Err(self.busy(&state.status));
        }
        if versions.is_empty() {
            return Err(Error::not_found(
                self.target(),
                format!("template {}", self.template),
                "the key has no versions; upload the template artifact there, or check the location",
            ));
        }
        let want = fingerprint(&live);
        for v in versions.iter().take(COMPARED) {
            let body = self.version_body(&v.id).await?;
            if fingerprint(&body) == want {
                let current = Self::read_revision(&v.revision, &body);
                return Ok((state, current, body, versions));
            }
        }
        let current = self.live_revision(&live)?;
        Ok((state, current, live, versions))
    }

    fn busy(&self, status: &str) -> Error {
        Error::conflict(
            self.target(),
            "a stack at rest",
            format!("stack {} in {status}: another operation is running on it; wait for it to finish and plan again", self.stack),
        )
    }

    fn history_of(current: &Revision, versions: &[Version]) -> Vec<Revision> {
        let mut h: Vec<Revision> = Vec::new();
        if !versions.iter().any(|v| v.id == current.id) {
            h.push(current.clone());
        }
        h.extend(versions.iter().map(|v| {
            if v.id == current.id {
                current.clone()
            } else {
                v.revision.clone()
            }
        }));
        h
    }

    async fn change_to(&self, selector: &Selector) -> Result<Change> {
        let (state, current, from_body, versions) = self.read().await?;
        let history = Self::history_of(&current, &versions);
        let chosen = selector.resolve(&self.id, &history, &current.id)?;
        let (to, to_body) = if chosen.id == current.id {
            (current.clone(), from_body.clone())
        } else {
            let body = self.version_body(&chosen.id).await?;
            (Self::read_revision(&chosen, &body), body)
        };
        let mut change = Change::new(self.id.clone(), current, to);
        change.diff = template_diff(&change.from, &change.to, &from_body, &to_body);
        change.precondition = state.marker;
        Ok(change)
    }

    /// The fingerprint of a revision's template, reading the version when the revision does
    /// not carry it.
    async fn sha_of(&self, r: &Revision) -> Result<String> {
        if let Some(sha) = r.facts.get(SHA_FACT) {
            return Ok(sha.clone());
        }
        Ok(fingerprint(&self.version_body(&r.id).await?))
    }

    /// `https://BUCKET.s3.REGION.amazonaws.com/KEY?versionId=V`, or path-style on a custom
    /// endpoint.
    async fn template_url(&self, version: &str) -> String {
        let key = encode(&self.key, true);
        let v = encode(version, false);
        let sdk = self.s3.aws().sdk_config().await;
        match sdk.endpoint_url() {
            Some(e) => format!(
                "{}/{}/{key}?versionId={v}",
                e.trim_end_matches('/'),
                self.bucket
            ),
            None => format!(
                "https://{}.s3.{}.amazonaws.com/{key}?versionId={v}",
                self.bucket,
                sdk.region().map(|r| r.as_ref()).unwrap_or("us-east-1")
            ),
        }
    }

    /// Waits while CloudFormation rolls an update back on its own.
    async fn settled(&self) -> Result<StackState> {
        let state = self.describe().await?;
        if !rolling_back(&state.status) {
            return Ok(state);
        }
        poll_until(
            &self.target(),
            "CloudFormation's own rollback to finish",
            SETTLE,
            PollSchedule::stability(),
            &Progress::none(),
            || async {
                let s = self.describe().await?;
                Ok(if rolling_back(&s.status) {
                    Stability::Waiting(format!("stack {} is {}", self.stack, s.status))
                } else {
                    Stability::Stable
                })
            },
        )
        .await?;
        self.describe().await
    }

    /// The `*_FAILED` resource events of the latest update, oldest first, as one sentence.
    async fn failures(&self) -> String {
        let mut failed: Vec<String> = Vec::new();
        let Ok(client) = self.client.get().await else {
            return "no resource event could be read".into();
        };
        let mut pages = client
            .describe_stack_events()
            .stack_name(&self.stack)
            .into_paginator()
            .send();
        'pages: for _ in 0..10 {
            let Some(Ok(page)) = pages.next().await else {
                break;
            };
            for e in page.stack_events() {
                let status = e.resource_status().map(|s| s.as_str()).unwrap_or("");
                let own = e.resource_type() == Some("AWS::CloudFormation::Stack")
                    && e.logical_resource_id() == Some(self.stack.as_str());
                if own && status == "UPDATE_IN_PROGRESS" {
                    break 'pages;
                }
                if status.ends_with("_FAILED") && !own {
                    failed.push(format!(
                        "{} ({}) {status}: {}",
                        e.logical_resource_id().unwrap_or("?"),
                        e.resource_type().unwrap_or("?"),
                        excerpt(e.resource_status_reason().unwrap_or("no reason given"), 200)
                    ));
                }
            }
        }
        failed.reverse();
        failed.dedup();
        if failed.is_empty() {
            "no resource event says why (aws cloudformation describe-stack-events)".into()
        } else {
            format!(
                "failed: {}",
                failed.into_iter().take(5).collect::<Vec<_>>().join("; ")
            )
        }
    }
}

#[async_trait]
impl RollbackTarget for CloudFormationStack {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The stack described (its events too), its template read and updated; the template
    /// artifact's bucket versioning and versions read. UpdateStack also needs whatever the
    /// template's resources need (or a service role): not known from the runbook, and
    /// so not in the policy.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let stack = self
            .client
            .arn("cloudformation", &format!("stack/{}/*", self.stack));
        let mut p = rollback_core::Permission::aws_all(
            &[
                "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackEvents",
                "cloudformation:GetTemplate",
                "cloudformation:UpdateStack",
            ],
            &stack,
        );
        let bucket = format!("arn:aws:s3:::{}", self.bucket);
        p.extend(rollback_core::Permission::aws_all(
            &["s3:GetBucketVersioning", "s3:ListBucketVersions"],
            &bucket,
        ));
        p.push(rollback_core::Permission::aws(
            "s3:GetObjectVersion",
            format!("{bucket}/{}", self.key),
        ));
        Some(p)
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    async fn current(&self) -> Result<Revision> {
        Ok(self.read().await?.1)
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let (_, current, _, versions) = self.read().await?;
        Ok(Self::history_of(&current, &versions))
    }

    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        Ok(self.change_to(selector).await?.to)
    }

    async fn plan(&self, to: &Revision) -> Result<Change> {
        self.change_to(&Selector::exact(to.id.clone())).await
    }

    /// DescribeStacks, GetTemplate, GetBucketVersioning and ListObjectVersions at once, then
    /// GetObject of the versions newest first until the live template's, and of the one
    /// chosen (for the diff).
    async fn prepare(&self, selector: &Selector) -> Result<Change> {
        self.change_to(selector).await
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let state = self.settled().await?;
        if state.status.ends_with("_IN_PROGRESS") {
            return Err(self.busy(&state.status));
        }
        let unchanged = change.precondition.is_some() && change.precondition == state.marker;
        if !unchanged || change.from.same_as(&change.to) {
            let live = fingerprint(&self.live_template().await?);
            if live == self.sha_of(&change.to).await? {
                return Ok(ApplyOutcome::AlreadyCurrent);
            }
            if live != self.sha_of(&change.from).await? {
                return Err(Error::conflict(
                    self.target(),
                    format!("the template of {} as planned", change.from.id),
                    format!(
                        "another template (sha256 {}); someone updated the stack since",
                        &live[..12]
                    ),
                ));
            }
        }
        let declared: Option<Vec<&str>> = change
            .to
            .facts
            .get(PARAMETERS_FACT)
            .map(|p| p.split(',').filter(|s| !s.is_empty()).collect());
        if let Some(missing) = self
            .keep_parameters
            .iter()
            .find(|k| !state.parameters.contains(k))
        {
            return Err(Error::invalid(
                self.target(),
                format!(
                    "the stack has no parameter {missing:?} to keep; its parameters are {}",
                    state.parameters.join(", ")
                ),
            ));
        }
        let params: Vec<Parameter> = state
            .parameters
            .iter()
            .filter(|p| self.keep_parameters.is_empty() || self.keep_parameters.contains(p))
            .filter(|p| declared.as_ref().is_none_or(|d| d.contains(&p.as_str())))
            .map(|p| {
                Parameter::builder()
                    .parameter_key(p)
                    .use_previous_value(true)
                    .build()
            })
            .collect();
        let mut update = self
            .client
            .get()
            .await?
            .update_stack()
            .stack_name(&self.stack)
            .set_parameters(Some(params))
            .set_capabilities(Some(
                self.capabilities
                    .iter()
                    .map(|c| Capability::from(c.as_str()))
                    .collect(),
            ));
        update = match change.to.facts.get(BODY_FACT) {
            Some(body) => update.template_body(body),
            None => update.template_url(self.template_url(&change.to.id).await),
        };
        match update.send().await {
            Ok(_) => Ok(ApplyOutcome::Applied),
            Err(e)
                if e.message()
                    .is_some_and(|m| m.contains("No updates are to be performed")) =>
            {
                Ok(ApplyOutcome::AlreadyCurrent)
            }
            Err(e) => Err(sdk_error(&self.id, "UpdateStack", e)),
        }
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        let state = self.describe().await?;
        let status = state.status.as_str();
        let name = &self.stack;
        if status == StackStatus::UpdateRollbackFailed.as_str() {
            return Ok(Stability::Failed(format!(
                "stack {name} is UPDATE_ROLLBACK_FAILED: {}; fix the resources and continue the rollback (aws cloudformation continue-update-rollback)",
                self.failures().await
            )));
        }
        if rolling_back(status)
            || status.ends_with("_FAILED")
            || status.starts_with("DELETE")
            || status.starts_with("ROLLBACK")
        {
            return Ok(Stability::Failed(format!(
                "stack {name} is {status}: the update was refused and rolled back; {}",
                self.failures().await
            )));
        }
        if status.ends_with("_IN_PROGRESS") {
            return Ok(Stability::Waiting(format!("stack {name} is {status}")));
        }
        let live = fingerprint(&self.live_template().await?);
        if live == self.sha_of(revision).await? {
            return Ok(Stability::Stable);
        }
        Ok(Stability::Failed(if status == "UPDATE_ROLLBACK_COMPLETE" {
            format!(
                "stack {name} is UPDATE_ROLLBACK_COMPLETE: the update to {} was rolled back; {}",
                revision.id,
                self.failures().await
            )
        } else {
            format!(
                "stack {name} is {status} with another template than {}; someone else changed it",
                revision.id
            )
        }))
    }
}

fn rolling_back(status: &str) -> bool {
    matches!(
        status,
        "UPDATE_ROLLBACK_IN_PROGRESS" | "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
    )
}

/// `s3://bucket/key` -> (bucket, key).
fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.trim().strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    if bucket.is_empty() || key.is_empty() || key.ends_with('/') || key.contains('?') {
        return None;
    }
    Some((bucket.to_string(), key.to_string()))
}

/// Percent-encoding of a URL path (`/` kept) or query value.
fn encode(s: &str, path: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b'/' if path => "/".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The template as compared and shown: JSON re-serialised (keys sorted), other text with
/// `\n` line endings and no trailing blanks.
fn normalize(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if v.is_object() {
            return serde_json::to_string_pretty(&v).unwrap_or_else(|_| body.to_string());
        }
    }
    let lines: Vec<&str> = body.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_string()
}

/// SHA-256 of the normalised template, in hex.
fn fingerprint(body: &str) -> String {
    Sha256::digest(normalize(body).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The parameter names a template declares: JSON's `Parameters` keys, or the keys under a
/// YAML template's top-level `Parameters:`.
fn declared_parameters(body: &str) -> Vec<String> {
    if let Ok(Value::Object(t)) = serde_json::from_str::<Value>(body) {
        return t
            .get("Parameters")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
    }
    let mut out = Vec::new();
    let (mut inside, mut indent) = (false, None);
    for line in body.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let depth = line.len() - trimmed.len();
        if depth == 0 {
            inside = trimmed.starts_with("Parameters:");
            continue;
        }
        if inside && *indent.get_or_insert(depth) == depth {
            if let Some((name, _)) = trimmed.split_once(':') {
                out.push(name.trim_matches(|c| c == '"' || c == '\'').to_string());
            }
        }
    }
    out
}

/// Whether a template holds values that must never be journaled.
fn holds_secrets(body: &str) -> bool {
    fn walk(v: &Value) -> bool {
        match v {
            Value::Object(m) => m
                .iter()
                .any(|(k, v)| (is_secret_key(k) && (v.is_string() || v.is_number())) || walk(v)),
            Value::Array(a) => a.iter().any(walk),
            _ => false,
        }
    }
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let noecho_default = v["Parameters"].as_object().is_some_and(|ps| {
            ps.values().any(|p| {
                p.get("Default").is_some() && matches!(p.get("NoEcho"), Some(Value::Bool(true)))
                    || p.get("NoEcho").and_then(Value::as_str) == Some("true")
            })
        });
        return noecho_default || walk(&v);
    }
    (body.contains("NoEcho") && body.contains("Default"))
        || body.lines().any(|l| redact_line(l) != l)
}

/// A template line with the value under a secret-looking key redacted (`"DbPassword": "x"`,
/// `DbPassword: x`); references (`!Ref`, `{"Ref": ...}`) are kept.
fn redact_line(line: &str) -> String {
    let Some((key, value)) = line.split_once(':') else {
        return line.to_string();
    };
    let name = key
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '-')
        .trim();
    let v = value.trim().trim_end_matches(',');
    if !is_secret_key(name) || v.is_empty() || v.starts_with(['{', '[', '!']) {
        return line.to_string();
    }
    format!(
        "{key}: {}",
        if key.trim_start().starts_with('"') {
            format!("\"{REDACTED}\"")
        } else {
            REDACTED.to_string()
        }
    )
}

/// The plan's diff: parameter names, then the template lines that differ (`-` old line N,
/// `+` new line N, `~` a line replaced), at most [`DIFF_LINES`].
fn template_diff(from: &Revision, to: &Revision, from_body: &str, to_body: &str) -> Diff {
    let mut d = DiffBuilder::default();
    d.entry(
        DiffSection::Fact,
        PARAMETERS_FACT,
        from.facts.get(PARAMETERS_FACT).cloned(),
        to.facts.get(PARAMETERS_FACT).cloned(),
    );
    let mut entries = d.build().entries;
    let (a, b) = (normalize(from_body), normalize(to_body));
    let diff = similar::TextDiff::from_lines(&a, &b);
    let show = |s: &str| {
        let l = redact_line(s.trim_end_matches('\n'));
        rollback_core::redact::truncate(&l, 160)
    };
    let mut lines = 0usize;
    let mut more = 0usize;
    for op in diff.ops() {
        for change in diff.iter_changes(op) {
            let (old, new) = (change.old_index(), change.new_index());
            let entry = match change.tag() {
                similar::ChangeTag::Equal => continue,
                similar::ChangeTag::Delete => DiffEntry {
                    section: DiffSection::Fact,
                    key: format!("template:{}", old.map_or(0, |i| i + 1)),
                    from: Some(show(change.value())),
                    to: None,
                },
                similar::ChangeTag::Insert => DiffEntry {
                    section: DiffSection::Fact,
                    key: format!("template:{}", new.map_or(0, |i| i + 1)),
                    from: None,
                    to: Some(show(change.value())),
                },
            };
            lines += 1;
            if lines > DIFF_LINES {
                more += 1;
            } else {
                entries.push(entry);
            }
        }
    }
    if more > 0 {
        entries.push(DiffEntry {
            section: DiffSection::Fact,
            key: "template".into(),
            from: None,
            to: Some(format!("... and {more} more changed lines")),
        });
    }
    Diff { entries }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse_s3_url("s3://b-1/a/t.json"),
            Some(("b-1".into(), "a/t.json".into()))
        );
        for bad in [
            "https://b/k",
            "s3://b",
            "s3://b/",
            "s3:///k",
            "s3://b/k?versionId=1",
        ] {
            assert!(parse_s3_url(bad).is_none(), "{bad}");
        }
        assert_eq!(encode("a b/c+d", true), "a%20b/c%2Bd");
    }

    #[test]
    fn templates_normalise_and_declare_parameters() {
        assert_eq!(
            fingerprint("{\"a\": 1,\n \"b\": 2}"),
            fingerprint("{\"b\":2,\"a\":1}")
        );
        assert_eq!(fingerprint("A: 1  \r\nB: 2\n\n"), fingerprint("A: 1\nB: 2"));
        assert_ne!(fingerprint("A: 1"), fingerprint("A: 2"));
        let json = r#"{"Parameters": {"Stage": {"Type": "String"}, "Image": {}}, "Resources": {}}"#;
        assert_eq!(declared_parameters(json), ["Image", "Stage"]);
        let yaml = "Description: x\nParameters:\n  Stage:\n    Type: String\n  Image:\n    Type: String\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n";
        assert_eq!(declared_parameters(yaml), ["Stage", "Image"]);
    }

    #[test]
    fn secrets_are_never_captured_or_shown() {
        let noecho = r#"{"Parameters": {"DbPass": {"Type": "String", "NoEcho": true, "Default": "hunter2"}}}"#;
        assert!(holds_secrets(noecho));
        assert!(holds_secrets(
            r#"{"Resources": {"D": {"Properties": {"MasterUserPassword": "hunter2"}}}}"#
        ));
        assert!(!holds_secrets(
            r#"{"Resources": {"D": {"Properties": {"MasterUserPassword": {"Ref": "DbPass"}}}}}"#
        ));
        assert!(holds_secrets(
            "Resources:\n  D:\n    Properties:\n      MasterUserPassword: hunter2\n"
        ));
        assert!(!holds_secrets(
            "Resources:\n  D:\n    Properties:\n      MasterUserPassword: !Ref DbPass\n"
        ));
        assert_eq!(
            redact_line("    \"ApiToken\": \"abc\","),
            format!("    \"ApiToken\": \"{REDACTED}\"")
        );
        let from = Revision::new("1");
        let to = Revision::new("2");
        let d = template_diff(&from, &to, "A: 1\nApiToken: old\n", "A: 2\nApiToken: new\n");
        let text = d.to_string();
        assert!(text.contains("- fact template:1: A: 1"), "{text}");
        assert!(text.contains("+ fact template:1: A: 2"), "{text}");
        assert!(!text.contains("old") && !text.contains("new"), "{text}");
    }
}
