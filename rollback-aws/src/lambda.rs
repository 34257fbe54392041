//! [`LambdaAlias`]: a Lambda alias rolled back to one of its function's published versions.
//!
//! By hand (runbook 000) this is `list-versions-by-function`, `update-alias
//! --function-version N`, `get-alias`. Here the same calls become a target that:
//!
//! - lists every published version (never `$LATEST`), newest first by version number;
//! - reads the alias's `RevisionId` in preflight and sends it with `UpdateAlias`, so a
//!   concurrent change to the alias is refused (`412`) instead of overwritten;
//! - clears canary routing (`RoutingConfig.AdditionalVersionWeights`) when it moves the
//!   alias, which is runbook 002's "canary to 0": rolling a canary alias back to its own
//!   primary version is a real change, not a no-op;
//! - applies with that one call: the alias is read again only when Lambda refuses it (412),
//!   to tell a repeated apply (already there) from someone else's change (a conflict);
//! - waits for the version's `State` to be `Active`, botocore's `PublishedVersionActive`,
//!   and fails at once if the alias was moved elsewhere after the apply;
//! - takes a version ARN (`...:function:NAME:7`) for `Exact` only if it is this function's,
//!   in this region and account.
//!
//! A canary split is shown as the fact `canary` (`"2=10%"`) of the alias's current
//! revision, so a plan lists the weights it clears. A change whose `to` revision carries
//! that fact (a compensation puts the captured revision back) restores those weights.
//!
//! ```no_run
//! use rollback_aws::{Aws, LambdaAlias};
//! use rollback_core::{RollbackTarget, Selector};
//!
//! # async fn demo() -> rollback_core::Result<()> {
//! let aws = Aws::from_env().await;
//! let live = LambdaAlias::new(&aws, "agentcore-mcp-s3-tools-prod", "live")?;
//! let previous = live.resolve(&Selector::Previous).await?;
//! let change = live.plan(&previous).await?;
//! println!("{change}");
//! live.apply(&change).await?;
//! # Ok(()) }
//! ```

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, FunctionConfiguration, State};
use chrono::{DateTime, NaiveDateTime, Utc};
use rollback_core::{
    ApplyOutcome, Change, Error, ErrorKind, Result, Revision, RollbackTarget, Selector, Stability,
    TargetId, TargetSpec,
};
use serde::{Deserialize, Serialize};

use crate::arn::{self, Arn};
use crate::config::{Aws, AwsConfig};
use crate::error::{check_name, sdk_error};
use crate::sdk::{all_pages, all_pages_refused, MAX_PAGES};
use crate::target::{self, aws_target};

/// The kind of [`LambdaAlias`] targets: `"lambda-alias"`.
pub const KIND: &str = "lambda-alias";

/// The revision fact with a version's code SHA-256; a revision that has it was described
/// by Lambda, so its version exists.
const CODE_FACT: &str = "code_sha256";

/// The revision fact that shows an alias's canary routing weights, e.g. `"2=10%"`.
pub const CANARY_FACT: &str = "canary";

/// A [`LambdaAlias`] as data (what the journal records, beside the AWS settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Params {
    function: String,
    alias: String,
}

/// A Lambda alias whose revisions are its function's published versions.
///
/// Its [`TargetId`] is `lambda-alias/<function>:<alias>`. Selectors use the shared rules:
/// `Previous` is the version before the one the alias points at, in version-number order.
#[derive(Clone)]
pub struct LambdaAlias {
    function: String,
    alias: String,
    aws: AwsConfig,
    client: crate::config::LazyClient<aws_sdk_lambda::Client>,
    id: TargetId,
    /// Versions seen `Active` by this target, and when: a wait for one of them needs only
    /// the alias read (a version's state rarely changes within a rollback).
    active: Arc<Mutex<HashMap<String, Instant>>>,
}

/// How long a version seen `Active` is taken to still be.
const ACTIVE_FOR: Duration = Duration::from_secs(300);

aws_target!(LambdaAlias, KIND, Params { function, alias }, |aws, p| {
    Self::new(aws, p.function, p.alias)
});

/// What `GetAlias` says, reduced to what a rollback needs.
#[derive(Debug, Clone, PartialEq)]
struct AliasState {
    /// The primary version.
    version: String,
    /// Canary weights of other versions, sorted by version.
    weights: Vec<(String, f64)>,
    /// The alias's RevisionId, Lambda's optimistic-concurrency token.
    revision_id: Option<String>,
    /// The alias's ARN: the function's partition, region, account and name, for checking
    /// version ARNs without another call.
    arn: Option<String>,
}

impl LambdaAlias {
    /// The alias `alias` of `function` (a name or ARN), with the given AWS settings.
    ///
    /// Fails with [`Error::InvalidInput`] when a name is empty or holds whitespace, or the
    /// function is given as an ARN that is not a Lambda function's (without qualifier) in
    /// the configured region; nothing is sent to AWS until the target is used.
    pub fn new(aws: &Aws, function: impl Into<String>, alias: impl Into<String>) -> Result<Self> {
        let function = function.into();
        let alias = alias.into();
        let id = TargetId::new(KIND, format!("{function}:{alias}"));
        check_name(&id, "function", &function, "the function's name or ARN")?;
        check_name(
            &id,
            "alias",
            &alias,
            "the alias that serves traffic, e.g. `live`",
        )?;
        let mut arn_region = None;
        if arn::is_arn(&function) {
            let instead = "the function's name or its ARN without a qualifier (arn:aws:lambda:REGION:ACCOUNT:function:NAME), and the alias separately";
            let (given, name) = arn::parse_as(
                &id,
                "Lambda function",
                &function,
                "lambda",
                "function:",
                instead,
            )?;
            if name.contains(':') {
                return Err(Error::invalid(
                    id.to_string(),
                    format!("the function ARN {function:?} carries a qualifier; give {instead}"),
                ));
            }
            arn_region = Some(given.region.to_string());
        }
        Ok(LambdaAlias {
            function,
            alias,
            aws: aws.config().clone(),
            client: aws.lazy_client(aws_sdk_lambda::Client::new).pinned(
                &id,
                "function",
                arn_region.as_deref(),
            )?,
            id,
            active: Arc::default(),
        })
    }

    /// The alias with settings from the standard AWS environment.
    pub async fn from_env(function: impl Into<String>, alias: impl Into<String>) -> Result<Self> {
        let aws = Aws::from_env().await;
        Self::new(&aws, function, alias)
    }

    /// The Lambda client, for calls of your own (the AWS settings resolved first if they
    /// are not yet).
    pub async fn client(&self) -> Result<aws_sdk_lambda::Client> {
        self.client.get().await
    }

    /// The function name or ARN.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The alias name.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    fn target(&self) -> String {
        self.id.to_string()
    }

    async fn alias_state(&self) -> Result<AliasState> {
        let out = self
            .client
            .get()
            .await?
            .get_alias()
            .function_name(&self.function)
            .name(&self.alias)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "GetAlias", e))?;
        let version = out
            .function_version()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Error::backend(self.target(), "GetAlias returned no FunctionVersion", false)
            })?;
        Ok(AliasState {
            version: version.to_string(),
            weights: canary_weights(
                out.routing_config()
                    .and_then(AliasRoutingConfiguration::additional_version_weights),
            ),
            revision_id: out.revision_id().map(str::to_string),
            arn: out.alias_arn().map(str::to_string),
        })
    }

    /// The version an `Exact` id names: a version number, or a version ARN
    /// (`arn:aws:lambda:REGION:ACCOUNT:function:NAME:N`) of this very function, region and
    /// account, checked against the alias's own ARN. Anything else is passed on (and refused
    /// by [`check_published`] or not found in the history).
    fn exact_version(&self, alias: &AliasState, id: &str) -> Result<String> {
        if !arn::is_arn(id) {
            return Ok(id.to_string());
        }
        const INSTEAD: &str =
            "a version number such as \"7\", or this function's version ARN (...:function:NAME:7)";
        let (given, rest) = arn::parse_as(
            &self.id,
            "Lambda version",
            id,
            "lambda",
            "function:",
            INSTEAD,
        )?;
        let own = alias.arn.as_deref().and_then(Arn::parse);
        if let Some(own) = &own {
            arn::check_same_place(
                &self.id,
                "the version",
                &given,
                own,
                "the function",
                INSTEAD,
            )?;
        }
        let (name, qualifier) = rest.split_once(':').ok_or_else(|| {
            Error::invalid(
                self.target(),
                format!("{id:?} is a function ARN without a version; give {INSTEAD}"),
            )
        })?;
        let own_name = own
            .and_then(|a| a.resource_after("function:"))
            .and_then(|r| r.split(':').next())
            .unwrap_or(&self.function);
        if name != own_name {
            return Err(Error::invalid(
                self.target(),
                format!(
                    "{id:?} is a version of function {name}, not of {own_name} (whose alias {} this is); give {INSTEAD}",
                    self.alias
                ),
            ));
        }
        if version_number(qualifier).is_none() {
            return Err(Error::invalid(
                self.target(),
                format!(
                    "{id:?} ends in {qualifier:?}, not a published version number; give {INSTEAD}"
                ),
            ));
        }
        Ok(qualifier.to_string())
    }

    /// One version as a revision (`GetFunctionConfiguration` with the version as qualifier).
    async fn version(&self, version: &str) -> Result<Revision> {
        Ok(self.configuration(version).await?.0)
    }

    /// One version as a revision, and its state (`Active`, `Pending`...) as Lambda's
    /// stability rule reads it; a version seen `Active` is remembered for the wait.
    async fn configuration(&self, version: &str) -> Result<(Revision, Stability)> {
        let out = self
            .client
            .get()
            .await?
            .get_function_configuration()
            .function_name(&self.function)
            .qualifier(version)
            .send()
            .await
            .map_err(|e| {
                self.version_error(version, sdk_error(&self.id, "GetFunctionConfiguration", e))
            })?;
        let state = version_stability(version, out.state(), out.state_reason());
        if state == Stability::Stable {
            if let Ok(mut seen) = self.active.lock() {
                seen.insert(version.to_string(), Instant::now());
            }
        }
        let revision = version_revision(
            out.version().unwrap_or(version),
            out.last_modified(),
            out.description(),
            out.code_sha256(),
            out.runtime().map(|r| r.as_str()),
        );
        Ok((revision, state))
    }

    /// The version a rollback moves the alias to, described; one that cannot take traffic
    /// (`Failed`, `Inactive`) is refused before anything changes.
    async fn destination(&self, version: &str) -> Result<Revision> {
        let (revision, state) = self.configuration(version).await?;
        match state {
            Stability::Failed(why) => Err(Error::invalid(
                self.target(),
                format!("{why}: it cannot take the alias's traffic; choose another version"),
            )),
            _ => Ok(revision),
        }
    }

    fn known_active(&self, version: &str) -> bool {
        self.active
            .lock()
            .ok()
            .and_then(|seen| seen.get(version).map(|at| at.elapsed() < ACTIVE_FOR))
            .unwrap_or(false)
    }

    /// The revision in use and the one `selector` picks from the listing (read only as far
    /// as the selector needs), the latter described.
    async fn listed(
        &self,
        selector: &Selector,
        in_use: &str,
        current: Option<Revision>,
    ) -> Result<(Revision, Revision)> {
        let history = self.versions_for(selector, in_use).await?;
        let chosen = selector.resolve(&self.id, &history, in_use)?;
        let current = match current.or_else(|| history.iter().find(|r| r.id == in_use).cloned()) {
            Some(r) => r,
            None => self.version(in_use).await?,
        };
        if chosen.id == current.id {
            return Ok((current.clone(), current));
        }
        Ok((current, self.destination(&chosen.id).await?))
    }

    /// The published versions, newest first, read a page at a time (Lambda lists them
    /// oldest first) until the one the alias points at is seen, when the selector needs
    /// nothing newer (`Previous`, `StepsBack`); every page otherwise, or when a page is
    /// not in ascending order after all.
    async fn versions_for(&self, selector: &Selector, current: &str) -> Result<Vec<Revision>> {
        let stop_at_current = matches!(selector, Selector::Previous | Selector::StepsBack(_));
        let mut pages = self
            .client
            .get()
            .await?
            .list_versions_by_function()
            .function_name(&self.function)
            .into_paginator()
            .send();
        let mut revisions: Vec<Revision> = Vec::new();
        let mut read = 0;
        let mut ascending = true;
        while let Some(page) = pages.next().await {
            read += 1;
            if read > MAX_PAGES {
                return all_pages_refused(&self.id, "ListVersionsByFunction");
            }
            let page = page.map_err(|e| sdk_error(&self.id, "ListVersionsByFunction", e))?;
            for r in page.versions().iter().filter_map(config_revision) {
                let n = version_number(&r.id);
                ascending &= revisions.last().is_none_or(|p| version_number(&p.id) < n);
                revisions.push(r);
            }
            if stop_at_current && ascending && revisions.iter().any(|r| r.id == current) {
                break;
            }
        }
        sort_versions(&mut revisions);
        revisions.dedup_by(|a, b| a.id == b.id);
        Ok(revisions)
    }

    /// Says which version was not found: the function itself was just read.
    fn version_error(&self, version: &str, e: Error) -> Error {
        match e {
            Error::NotFound { source, .. } => Error::NotFound {
                target: self.target(),
                what: format!("version {version:?} of function {}", self.function),
                hint: "choose a published version from the history (ListVersionsByFunction)".into(),
                source,
            },
            other => other,
        }
    }

    /// What the alias as read now says about `change`: `Some(AlreadyCurrent)` when it is
    /// there already, a conflict when it is neither at `from` nor at `to`, `None` when it is
    /// still at `from` and may be moved.
    fn check_before_update(
        &self,
        change: &Change,
        want: &[(String, f64)],
        alias: &AliasState,
    ) -> Result<Option<ApplyOutcome>> {
        let to = &change.to.id;
        if &alias.version == to && canary_fact(&alias.weights) == canary_fact(want) {
            return Ok(Some(ApplyOutcome::AlreadyCurrent));
        }
        if alias.version != change.from.id && &alias.version != to {
            return Err(Error::conflict(
                self.target(),
                change.from.id.clone(),
                alias.version.clone(),
            ));
        }
        Ok(None)
    }

    /// UpdateAlias to `to` with the canary weights `want` (none clears them) and the
    /// RevisionId precondition; the answer must show the alias at `to`.
    async fn update_alias(
        &self,
        to: &str,
        want: &[(String, f64)],
        revision_id: Option<String>,
    ) -> Result<ApplyOutcome> {
        let routing = AliasRoutingConfiguration::builder()
            // An empty map, not a missing one: that is what clears the weights.
            .set_additional_version_weights(Some(want.iter().cloned().collect::<HashMap<_, _>>()))
            .build();
        let out = self
            .client
            .get()
            .await?
            .update_alias()
            .function_name(&self.function)
            .name(&self.alias)
            .function_version(to)
            .routing_config(routing)
            .set_revision_id(revision_id)
            .send()
            .await
            .map_err(|e| self.version_error(to, sdk_error(&self.id, "UpdateAlias", e)))?;
        // Trust, but verify: an answer that does not show the alias at `to` did not move it.
        match out.function_version() {
            Some(v) if v == to => Ok(ApplyOutcome::Applied),
            found => Err(Error::backend(
                self.target(),
                format!(
                    "UpdateAlias answered without moving the alias to version {to} (it reports {}); read the alias and plan again",
                    found.unwrap_or("no version")
                ),
                false,
            )),
        }
    }

    /// The alias's primary version as a revision, with its canary split as a fact.
    async fn revision_of(&self, alias: &AliasState) -> Result<Revision> {
        let mut rev = self.version(&alias.version).await?;
        if let Some(canary) = canary_fact(&alias.weights) {
            rev.facts.insert(CANARY_FACT.to_string(), canary);
        }
        Ok(rev)
    }
}

#[async_trait]
impl RollbackTarget for LambdaAlias {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The alias read and moved, the versions read: on the function and its qualified ARNs.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let function = if arn::is_arn(&self.function) {
            self.function.clone()
        } else {
            self.client
                .arn("lambda", &format!("function:{}", self.function))
        };
        let mut p =
            rollback_core::Permission::aws_all(&["lambda:ListVersionsByFunction"], &function);
        let qualified = format!("{function}:*");
        p.extend(rollback_core::Permission::aws_all(
            &[
                "lambda:GetAlias",
                "lambda:UpdateAlias",
                "lambda:GetFunctionConfiguration",
            ],
            &qualified,
        ));
        Some(p)
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    async fn current(&self) -> Result<Revision> {
        let alias = self.alias_state().await?;
        self.revision_of(&alias).await
    }

    /// `Exact` also takes this function's version ARN; checked before the history is read.
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        let alias = self.alias_state().await?;
        let selector = match selector {
            Selector::Exact(id) => Selector::Exact(self.exact_version(&alias, id.trim())?),
            other => other.clone(),
        };
        let history = self.history().await?;
        selector.resolve(&self.id, &history, &alias.version)
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let pages = self
            .client
            .get()
            .await?
            .list_versions_by_function()
            .function_name(&self.function)
            .into_paginator()
            .send();
        let mut revisions: Vec<Revision> = all_pages(&self.id, "ListVersionsByFunction", pages)
            .await?
            .iter()
            .flat_map(|p| p.versions().iter().filter_map(config_revision))
            .collect();
        sort_versions(&mut revisions);
        revisions.dedup_by(|a, b| a.id == b.id);
        Ok(revisions)
    }

    /// The change from the alias's version to `to`, with the alias `RevisionId` as the
    /// precondition. `to` is read again so the diff shows its real facts, and an unknown
    /// version fails here, before anything changes.
    async fn plan(&self, to: &Revision) -> Result<Change> {
        check_published(&self.id, &to.id)?;
        let alias = self.alias_state().await?;
        let (from, mut target) =
            futures::try_join!(self.revision_of(&alias), self.destination(&to.id))?;
        // A rollback sends all traffic to `to`: the canary split is cleared, and the diff
        // shows it as a removed fact.
        target.facts.remove(CANARY_FACT);
        let mut change = Change::new(self.id(), from, target);
        change.precondition = alias.revision_id;
        Ok(change)
    }

    /// Preflight in three calls, however many versions the function has: GetAlias (the
    /// version N, canary split and RevisionId), then GetFunctionConfiguration of N and of
    /// the chosen version (it exists and can take traffic: a `Failed` or `Inactive`
    /// version is refused here). `Previous` is N-1 when it exists; the listing is read,
    /// and only as far as needed, when it was deleted and for `StepsBack` and `ImageTag`.
    async fn prepare(&self, selector: &Selector) -> Result<Change> {
        let alias = self.alias_state().await?;
        let (mut from, to) = match selector {
            Selector::Exact(id) => {
                let version = self.exact_version(&alias, id.trim())?;
                check_published(&self.id, &version)?;
                if version == alias.version {
                    let current = self.version(&version).await?;
                    (current.clone(), current)
                } else {
                    futures::try_join!(self.version(&alias.version), self.destination(&version))?
                }
            }
            // Versions are numbered in order, so the one before N is N-1 unless it was
            // deleted: asked for directly, whatever the number of versions.
            Selector::Previous if version_number(&alias.version).is_some_and(|n| n > 1) => {
                let below = version_number(&alias.version)
                    .map(|n| (n - 1).to_string())
                    .unwrap_or_default();
                match futures::join!(self.version(&alias.version), self.destination(&below)) {
                    (Ok(current), Ok(to)) => (current, to),
                    (Ok(current), Err(e)) if e.kind() == ErrorKind::NotFound => {
                        self.listed(selector, &alias.version, Some(current)).await?
                    }
                    (Err(e), _) | (_, Err(e)) => return Err(e),
                }
            }
            other => self.listed(other, &alias.version, None).await?,
        };
        if let Some(canary) = canary_fact(&alias.weights) {
            from.facts.insert(CANARY_FACT.to_string(), canary);
        }
        let mut change = Change::new(self.id(), from, to);
        change.precondition = alias.revision_id;
        Ok(change)
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let to = &change.to.id;
        check_published(&self.id, to)?;
        let want = match change.to.facts.get(CANARY_FACT) {
            Some(fact) => parse_canary(fact).map_err(|e| {
                Error::invalid(
                    self.target(),
                    format!("the {CANARY_FACT} fact {fact:?} of revision {to} is not a weight list: {e}"),
                )
            })?,
            None => Vec::new(),
        };
        let planned_noop = change.from.id == *to
            && change.from.facts.get(CANARY_FACT) == canary_fact(&want).as_ref();
        // One call when the plan read the alias (its RevisionId is the precondition) and
        // the version (a revision Lambda described carries its code's SHA-256): the
        // UpdateAlias itself. Lambda refuses it (412) if the alias changed since, and only
        // then is the alias read, to tell "already there" (a resumed or retried apply)
        // from someone else's change. Otherwise (a compensation, a change made by hand, a
        // plan that saw nothing to do) the alias and the version are read first, so that
        // a conflict or an unknown version sends nothing.
        let described = change.to.facts.contains_key(CODE_FACT);
        let revision_id = match &change.precondition {
            Some(r) if described && !planned_noop => r.clone(),
            _ => {
                let (alias, _) = futures::try_join!(self.alias_state(), self.version(to))?;
                if let Some(done) = self.check_before_update(change, &want, &alias)? {
                    return Ok(done);
                }
                match alias.revision_id {
                    Some(r) => r,
                    None => return self.update_alias(to, &want, None).await,
                }
            }
        };
        match self.update_alias(to, &want, Some(revision_id)).await {
            Err(e) if e.kind() == ErrorKind::Conflict => {
                let alias = self.alias_state().await?;
                if let Some(done) = self.check_before_update(change, &want, &alias)? {
                    return Ok(done);
                }
                // Still at `from`, yet the RevisionId moved: someone changed something else
                // on the alias (its description, say) since the plan. Lambda's refusal is
                // the source.
                Err(Error::conflict(
                    self.target(),
                    format!("{} as planned", change.from.id),
                    format!("{} changed since the plan (new RevisionId)", alias.version),
                )
                .with_source(e))
            }
            other => other,
        }
    }

    /// Stable when the version is `Active` and the alias sends it all traffic (or the
    /// canary split the revision describes); an alias pointing elsewhere has been moved by
    /// someone else and fails at once. One call per look: GetFunctionConfiguration until
    /// the version is seen `Active` (preflight usually saw it), then GetAlias.
    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        check_published(&self.id, &revision.id)?;
        if !self.known_active(&revision.id) {
            let (_, state) = self.configuration(&revision.id).await?;
            return Ok(match state {
                Stability::Stable => Stability::Waiting(format!(
                    "version {} is Active; the alias is read next",
                    revision.id
                )),
                other => other,
            });
        }
        let alias = self.alias_state().await?;
        // UpdateAlias moves the alias at once: after our apply it is at `revision`, so an
        // alias elsewhere was moved by someone else, and waiting will not bring it back.
        if alias.version != revision.id {
            return Ok(Stability::Failed(format!(
                "alias {} points at version {}, not {}; someone else changed it",
                self.alias, alias.version, revision.id
            )));
        }
        let want = revision.facts.get(CANARY_FACT).cloned();
        let have = canary_fact(&alias.weights);
        if have != want {
            return Ok(Stability::Failed(format!(
                "alias {} routes {} beside version {}, expected {}; someone else changed it",
                self.alias,
                have.as_deref().unwrap_or("nothing"),
                revision.id,
                want.as_deref().unwrap_or("nothing"),
            )));
        }
        Ok(Stability::Stable)
    }
}

/// Only published versions are revisions: `$LATEST` changes under you.
fn check_published(id: &TargetId, version: &str) -> Result<()> {
    if version_number(version).is_some() {
        return Ok(());
    }
    Err(Error::invalid(
        id.to_string(),
        format!(
            "{version:?} is not a published version; an alias rolls back to a version number such as \"7\" (never $LATEST)"
        ),
    ))
}

/// The number of a published version (`"7"` -> 7); `None` for `$LATEST` and anything else.
fn version_number(version: &str) -> Option<u64> {
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    version.parse().ok()
}

/// Newest first by version number (Lambda lists them oldest first, as strings).
fn sort_versions(revisions: &mut [Revision]) {
    revisions.sort_by(
        |a, b| match (version_number(&a.id), version_number(&b.id)) {
            (Some(x), Some(y)) => y.cmp(&x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.id.cmp(&b.id),
        },
    );
}

/// A listed version as a revision; `None` for `$LATEST` (not a revision) and entries
/// without a version.
fn config_revision(c: &FunctionConfiguration) -> Option<Revision> {
    let version = c.version()?;
    version_number(version)?;
    Some(version_revision(
        version,
        c.last_modified(),
        c.description(),
        c.code_sha256(),
        c.runtime().map(|r| r.as_str()),
    ))
}

/// The revision of one version from the fields Lambda reports about it.
fn version_revision(
    version: &str,
    last_modified: Option<&str>,
    description: Option<&str>,
    code_sha256: Option<&str>,
    runtime: Option<&str>,
) -> Revision {
    let mut rev = Revision::new(version);
    rev.created_at = last_modified.and_then(parse_last_modified);
    rev.description = description
        .filter(|d| !d.trim().is_empty())
        .map(str::to_string);
    if let Some(sha) = code_sha256.filter(|s| !s.is_empty()) {
        rev.facts.insert(CODE_FACT.into(), sha.to_string());
    }
    if let Some(runtime) = runtime.filter(|s| !s.is_empty()) {
        rev.facts.insert("runtime".into(), runtime.to_string());
    }
    rev
}

/// Lambda's `LastModified`: `2024-01-01T12:00:00.000+0000`; RFC 3339 (`...Z`) is accepted
/// too, as emulators write it.
fn parse_last_modified(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

/// The canary weights of an alias, sorted by version, zero weights dropped.
fn canary_weights(weights: Option<&HashMap<String, f64>>) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = weights
        .into_iter()
        .flatten()
        .filter(|(_, w)| **w > 0.0)
        .map(|(v, w)| (v.clone(), *w))
        .collect();
    out.sort_by(|a, b| {
        version_number(&a.0)
            .cmp(&version_number(&b.0))
            .then_with(|| a.0.cmp(&b.0))
    });
    out
}

/// The canary fact for weights: `"2=10%"`, several joined by `,`; `None` without weights.
fn canary_fact(weights: &[(String, f64)]) -> Option<String> {
    if weights.is_empty() {
        return None;
    }
    Some(
        weights
            .iter()
            .map(|(v, w)| format!("{v}={}%", percent(*w)))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// A weight as a percentage without float noise: 0.1 -> `10`, 0.025 -> `2.5`.
fn percent(weight: f64) -> String {
    let s = format!("{:.4}", weight * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// The weights a canary fact describes (the inverse of [`canary_fact`]).
fn parse_canary(fact: &str) -> std::result::Result<Vec<(String, f64)>, String> {
    let mut out = Vec::new();
    for part in fact.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (version, pct) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not version=percent%"))?;
        let version = version.trim();
        if version_number(version).is_none() {
            return Err(format!("{version:?} is not a version number"));
        }
        let pct: f64 = pct
            .trim()
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("{part:?} has no percentage"))?;
        if !(0.0..100.0).contains(&pct) {
            return Err(format!("{part:?} is not between 0% and 100%"));
        }
        out.push((version.to_string(), pct / 100.0));
    }
    Ok(canary_weights(Some(&out.into_iter().collect())))
}

/// What a version's `State` means for a rollback (botocore `PublishedVersionActive`:
/// `Active` succeeds, `Failed` fails, `Pending` waits). `Inactive` does not become
/// `Active` by waiting, so it fails too, saying so.
fn version_stability(version: &str, state: Option<&State>, reason: Option<&str>) -> Stability {
    let why = reason
        .filter(|r| !r.is_empty())
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    match state {
        None | Some(State::Active) => Stability::Stable,
        Some(State::Pending) => Stability::Waiting(format!("version {version} is Pending{why}")),
        Some(State::Failed) => Stability::Failed(format!("version {version} is Failed{why}")),
        Some(State::Inactive) => Stability::Failed(format!(
            "version {version} is Inactive{why}; invoke it to activate it, then try again"
        )),
        Some(other) => Stability::Waiting(format!("version {version} is {}{why}", other.as_str())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::target::Spec;

    fn ids(revs: &[Revision]) -> Vec<&str> {
        revs.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn versions_sort_numerically_newest_first() {
        let mut revs: Vec<Revision> = ["1", "10", "2", "9", "100"]
            .into_iter()
            .map(Revision::new)
            .collect();
        sort_versions(&mut revs);
        assert_eq!(ids(&revs), ["100", "10", "9", "2", "1"]);
    }

    #[test]
    fn latest_is_never_a_revision() {
        let latest = FunctionConfiguration::builder().version("$LATEST").build();
        assert!(config_revision(&latest).is_none());
        assert!(version_number("$LATEST").is_none());
        assert!(version_number("").is_none());
        assert!(version_number("+3").is_none());
        assert_eq!(version_number("7"), Some(7));
        let id = TargetId::new(KIND, "f:live");
        let e = check_published(&id, "$LATEST").unwrap_err();
        assert!(e.to_string().contains("lambda-alias/f:live"), "{e}");
    }

    #[test]
    fn listed_versions_become_revisions() {
        let c = FunctionConfiguration::builder()
            .version("7")
            .last_modified("2024-01-01T12:00:00.000+0000")
            .description("release 7")
            .code_sha256("abc=")
            .runtime(aws_sdk_lambda::types::Runtime::Python312)
            .build();
        let r = config_revision(&c).unwrap();
        assert_eq!(r.id, "7");
        assert_eq!(
            r.created_at.unwrap().to_rfc3339(),
            "2024-01-01T12:00:00+00:00"
        );
        assert_eq!(r.description.as_deref(), Some("release 7"));
        assert_eq!(r.facts["code_sha256"], "abc=");
        assert_eq!(r.facts["runtime"], "python3.12");
        let bare = version_revision("3", None, Some(""), None, None);
        assert_eq!(bare, Revision::new("3"));
    }

    #[test]
    fn last_modified_formats() {
        let want = "2024-01-01T12:00:00.123+00:00";
        for s in [
            "2024-01-01T12:00:00.123+0000",
            "2024-01-01T13:00:00.123+0100",
            "2024-01-01T12:00:00.123000000Z",
            "2024-01-01T12:00:00.123+00:00",
            "2024-01-01T12:00:00.123",
        ] {
            let d = parse_last_modified(s).unwrap_or_else(|| panic!("{s} did not parse"));
            assert_eq!(
                d.to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
                want,
                "{s}"
            );
        }
        assert!(parse_last_modified("yesterday").is_none());
    }

    #[test]
    fn canary_facts() {
        let w: HashMap<String, f64> = [("10".to_string(), 0.025), ("2".to_string(), 0.1)].into();
        let weights = canary_weights(Some(&w));
        assert_eq!(weights[0].0, "2");
        assert_eq!(canary_fact(&weights).as_deref(), Some("2=10%,10=2.5%"));
        assert_eq!(canary_fact(&canary_weights(None)), None);
        let zero: HashMap<String, f64> = [("2".to_string(), 0.0)].into();
        assert_eq!(canary_fact(&canary_weights(Some(&zero))), None);
        assert_eq!(percent(0.07), "7");
        assert_eq!(percent(1.0 / 3.0), "33.3333");
    }

    #[test]
    fn canary_facts_parse_back() {
        let weights = parse_canary("2=10%,10=2.5%").unwrap();
        assert_eq!(canary_fact(&weights).as_deref(), Some("2=10%,10=2.5%"));
        assert!((weights[0].1 - 0.1).abs() < 1e-12);
        assert!(parse_canary("").unwrap().is_empty());
        assert!(parse_canary("2").is_err());
        assert!(parse_canary("$LATEST=5%").is_err());
        assert!(parse_canary("2=lots").is_err());
        assert!(parse_canary("2=150%").is_err());
    }

    #[test]
    fn states_follow_published_version_active() {
        assert_eq!(
            version_stability("3", Some(&State::Active), None),
            Stability::Stable
        );
        assert_eq!(
            version_stability("3", Some(&State::Pending), Some("Creating")),
            Stability::Waiting("version 3 is Pending: Creating".into())
        );
        assert_eq!(
            version_stability("3", Some(&State::Failed), Some("bad zip")),
            Stability::Failed("version 3 is Failed: bad zip".into())
        );
        assert!(matches!(
            version_stability("3", Some(&State::Inactive), None),
            Stability::Failed(m) if m.contains("Inactive")
        ));
    }

    #[test]
    fn empty_and_spaced_names_are_refused_naming_the_target() {
        let id = TargetId::new(KIND, " :live");
        let e = check_name(&id, "function", " ", "the function's name").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("lambda-alias/ :live"), "{s}");
        assert!(s.contains("function name is empty"), "{s}");
        assert!(check_name(&id, "alias", "li ve", "x").is_err());
        assert!(check_name(&id, "alias", "live", "x").is_ok());
    }

    #[test]
    fn params_round_trip() {
        let p = Spec {
            params: Params {
                function: "f".into(),
                alias: "live".into(),
            },
            aws: AwsConfig::default().region("eu-west-1"),
        };
        let spec = TargetSpec::new(KIND, &p);
        // The journal's form: the target's parameters and `aws` side by side.
        assert_eq!(
            spec.params,
            serde_json::json!({"function": "f", "alias": "live", "aws": {"region": "eu-west-1"}})
        );
        assert_eq!(spec.params::<Spec<Params>>().unwrap(), p);
        let bare: Spec<Params> =
            serde_json::from_value(serde_json::json!({"function": "f", "alias": "a"})).unwrap();
        assert_eq!(bare.aws, AwsConfig::default());
    }
}
