//! RDS instances: restore a snapshot (or a point in time) to a NEW instance, never touching
//! the original, and hand its endpoint to later steps.
//!
//! The revisions of an [`RdsInstance`] are `live` (the instance as it is, always the
//! current revision) followed by its `available` DB snapshots, manual and automated, newest
//! first. `Previous` is the newest snapshot; `Exact` takes a snapshot id, or an RFC 3339
//! time for a point-in-time restore (checked against the restorable window in preflight),
//! or `latest` for the latest restorable time.
//!
//! Apply restores to the instance named by [`RdsInstance::restore_identifier`] (default
//! `<id>-rollback-<YYYYmmdd-HHMMSS>`, fixed when the target is made, so a resumed run finds
//! the instance it started), copying class, subnet group, security groups, parameter group,
//! port and multi-AZ from the original (what runbook 001 passes by hand). Stable follows
//! botocore's `DBInstanceAvailable` waiter. Compensation never deletes data: the restored
//! instance is kept and reported for a person to keep or remove. [`ConnectionHandover`]
//! (crate::handover) writes the restored endpoint into the connection secret.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};
use aws_sdk_rds::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use rollback_core::wait::{poll_until, PollSchedule};
use rollback_core::{
    ApplyOutcome, Change, Error, Progress, Result, Revision, RollbackTarget, Selector, Stability,
    TargetId, TargetSpec,
};
use serde::{Deserialize, Serialize};

use crate::arn::{self, Arn};
use crate::config::{Aws, AwsConfig};
use crate::error::{check_name, sdk_error};
use crate::sdk::{all_pages, chrono_time, smithy_time};
use crate::target::{self, aws_target};

/// The target kind.
pub const KIND: &str = "rds-instance";
/// The id of the current revision: the instance as it is.
pub const LIVE: &str = "live";
/// The tag a restored instance carries: where it was restored from.
pub const SOURCE_TAG: &str = "rollback:restored-from";

/// An [`RdsInstance`] as data (what the journal records, beside the AWS settings).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Params {
    db_instance_id: String,
    restore_as: String,
}

/// An RDS DB instance whose data can be rolled back by restoring a snapshot or a point in
/// time to a new instance. See the [module docs](self).
#[derive(Clone)]
pub struct RdsInstance {
    db_instance_id: String,
    restore_as: String,
    aws: AwsConfig,
    client: crate::config::LazyClient<Client>,
    id: TargetId,
}

aws_target!(
    RdsInstance,
    KIND,
    Params {
        db_instance_id,
        restore_as
    },
    |aws, p| Self::new(aws, p.db_instance_id)?.restore_as(p.restore_as)
);

/// botocore's `DBInstanceAvailable` rules for one status.
pub fn instance_stability(instance: &str, status: &str) -> Stability {
    match status {
        "available" => Stability::Stable,
        "deleted" | "deleting" | "failed" | "incompatible-restore" | "incompatible-parameters" => {
            Stability::Failed(format!("instance {instance} is {status}"))
        }
        other => Stability::Waiting(format!("instance {instance} is {other}")),
    }
}

fn snapshot_revision(s: &DbSnapshot) -> Option<Revision> {
    let id = s.db_snapshot_identifier()?;
    let mut r = Revision::new(id);
    r.created_at = s.snapshot_create_time().and_then(chrono_time);
    if let Some(t) = s.snapshot_type() {
        r.facts.insert("type".into(), t.to_string());
    }
    if let Some(st) = s.status() {
        r.facts.insert("status".into(), st.to_string());
    }
    if let Some(v) = s.engine_version() {
        r.facts.insert("engine_version".into(), v.to_string());
    }
    r.description = Some(format!("{} snapshot", s.snapshot_type().unwrap_or("db")));
    Some(r)
}

/// The window a point-in-time restore may use: from the later of the instance's creation
/// and `now - retention`, to the latest restorable time.
pub fn restorable_window(
    created: Option<DateTime<Utc>>,
    retention_days: i32,
    latest: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let latest = latest?;
    if retention_days <= 0 {
        return None;
    }
    let by_retention = now - chrono::Duration::days(retention_days as i64);
    let earliest = created.map_or(by_retention, |c| c.max(by_retention));
    (earliest <= latest).then_some((earliest, latest))
}

/// The longest DB instance identifier RDS accepts.
pub const MAX_INSTANCE_ID: usize = 63;
/// The longest DB snapshot identifier RDS accepts.
pub const MAX_SNAPSHOT_ID: usize = 255;

/// Refuses a name RDS would refuse (`InvalidParameterValue`), before anything is sent:
/// RDS identifiers are 1 to `max` ASCII letters, digits and hyphens, start with a letter,
/// and neither end with a hyphen nor contain two consecutive hyphens.
pub(crate) fn check_identifier(
    target: &TargetId,
    what: &str,
    name: &str,
    max: usize,
) -> Result<()> {
    let len = name.chars().count();
    let problem = if len == 0 {
        "is empty".to_string()
    } else if len > max {
        format!("is {len} characters long")
    } else if let Some(c) = name
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
    {
        format!("contains {c:?}")
    } else if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        "does not start with a letter".to_string()
    } else if name.ends_with('-') {
        "ends with a hyphen".to_string()
    } else if name.contains("--") {
        "contains two consecutive hyphens".to_string()
    } else {
        return Ok(());
    };
    Err(Error::invalid(
        target.to_string(),
        format!(
            "the {what} identifier {name:?} {problem}; RDS identifiers are 1 to {max} ASCII letters, digits and hyphens, start with a letter, and neither end with a hyphen nor contain two consecutive hyphens"
        ),
    ))
}

/// An instance given by ARN must be an RDS DB instance's (`arn:aws:rds:REGION:ACCOUNT:db:NAME`)
/// (its region is checked against the client's by [`LazyClient::pinned`]); its name and
/// region are returned (the name itself and `None` otherwise).
pub(crate) fn check_instance_arn<'a>(
    target: &TargetId,
    instance: &'a str,
) -> Result<(&'a str, Option<&'a str>)> {
    if !arn::is_arn(instance) {
        return Ok((instance, None));
    }
    let (given, name) = arn::parse_as(
        target,
        "DB instance",
        instance,
        "rds",
        "db:",
        "the DB instance identifier or its ARN (arn:aws:rds:REGION:ACCOUNT:db:NAME)",
    )?;
    Ok((name, Some(given.region)))
}

/// The DB instance `identifier` as RDS describes it, or `None` if it does not exist.
pub(crate) async fn describe_db_instance(
    client: &Client,
    target: &TargetId,
    identifier: &str,
) -> Result<Option<DbInstance>> {
    match client
        .describe_db_instances()
        .db_instance_identifier(identifier)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(e) => {
            let err = sdk_error(target, "DescribeDBInstances", e);
            if err.kind() == rollback_core::ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

impl RdsInstance {
    /// A target for instance `db_instance_id`; restores go to
    /// `<id>-rollback-<YYYYmmdd-HHMMSS>` (now, UTC) unless [`restore_as`](Self::restore_as)
    /// says otherwise.
    pub fn new(aws: &Aws, db_instance_id: impl Into<String>) -> Result<Self> {
        let db_instance_id = db_instance_id.into();
        let id = TargetId::new(KIND, db_instance_id.clone());
        check_name(
            &id,
            "DB instance",
            &db_instance_id,
            "the DB instance identifier, e.g. `agentauri-production`",
        )?;
        let (name, region) = check_instance_arn(&id, &db_instance_id)?;
        let client = aws
            .lazy_client(Client::new)
            .pinned(&id, "DB instance", region)?;
        // The default must itself be a valid identifier: the original's name is cut so that
        // the suffix fits in 63 characters.
        let suffix = format!("-rollback-{}", Utc::now().format("%Y%m%d-%H%M%S"));
        let keep = MAX_INSTANCE_ID.saturating_sub(suffix.len());
        let stem: String = name.chars().take(keep).collect();
        let restore_as = format!("{}{suffix}", stem.trim_end_matches('-'));
        Ok(RdsInstance {
            db_instance_id,
            restore_as,
            aws: aws.config().clone(),
            client,
            id,
        })
    }

    /// A target configured from the standard AWS environment.
    pub async fn from_env(db_instance_id: impl Into<String>) -> Result<Self> {
        Self::new(&Aws::from_env().await, db_instance_id)
    }

    /// Restores go to an instance with this identifier.
    pub fn restore_as(mut self, identifier: impl Into<String>) -> Result<Self> {
        let identifier = identifier.into();
        check_name(
            &self.id,
            "restored DB instance",
            &identifier,
            "a new DB instance identifier, e.g. `agentauri-production-rollback`",
        )?;
        if identifier == self.db_instance_id {
            return Err(Error::invalid(
                self.id.to_string(),
                "a restore never overwrites the original instance; give the restored one another identifier",
            ));
        }
        check_identifier(
            &self.id,
            "restored DB instance",
            &identifier,
            MAX_INSTANCE_ID,
        )?;
        self.restore_as = identifier;
        Ok(self)
    }

    /// The identifier the restored instance gets.
    pub fn restore_identifier(&self) -> &str {
        &self.restore_as
    }

    /// The original instance's identifier.
    pub fn db_instance_id(&self) -> &str {
        &self.db_instance_id
    }

    /// The SDK client, for calls of your own (the AWS settings resolved first if they
    /// are not yet).
    pub async fn client(&self) -> Result<Client> {
        self.client.get().await
    }

    async fn describe_instance(&self, identifier: &str) -> Result<Option<DbInstance>> {
        describe_db_instance(&self.client.get().await?, &self.id, identifier).await
    }

    async fn source(&self) -> Result<DbInstance> {
        self.describe_instance(&self.db_instance_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    self.id.to_string(),
                    format!("DB instance {:?}", self.db_instance_id),
                    "check the identifier and the region",
                )
            })
    }

    /// The restored instance's endpoint (`host`, `port`) once it has one.
    pub async fn restored_endpoint(&self) -> Result<Option<(String, i32)>> {
        Ok(self
            .describe_instance(&self.restore_as)
            .await?
            .and_then(|i| {
                let e = i.endpoint()?;
                Some((e.address()?.to_string(), e.port()?))
            }))
    }

    async fn snapshots(&self) -> Result<Vec<Revision>> {
        let pages = self
            .client
            .get()
            .await?
            .describe_db_snapshots()
            .db_instance_identifier(&self.db_instance_id)
            .into_paginator()
            .send();
        let mut out: Vec<Revision> = all_pages(&self.id, "DescribeDBSnapshots", pages)
            .await?
            .iter()
            .flat_map(|p| p.db_snapshots())
            .filter(|s| s.status() == Some("available"))
            .filter_map(snapshot_revision)
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        out.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }

    fn live(&self, instance: &DbInstance) -> Revision {
        let mut r = Revision::new(LIVE);
        r.description = Some(format!("{} as it is now", self.db_instance_id));
        // No date: `live` is "now", newer than every snapshot (its creation time is older).
        if let Some(t) = instance.instance_create_time() {
            r.facts.insert("created".into(), t.to_string());
        }
        if let Some(s) = instance.db_instance_status() {
            r.facts.insert("status".into(), s.to_string());
        }
        if let Some(c) = instance.db_instance_class() {
            r.facts.insert("class".into(), c.to_string());
        }
        if let Some(e) = instance.endpoint().and_then(|e| e.address()) {
            r.facts.insert("endpoint".into(), e.to_string());
        }
        r
    }

    /// A point-in-time revision for `spec` (RFC 3339 or `latest`), checked against the
    /// instance's restorable window.
    fn point_in_time(&self, instance: &DbInstance, spec: &str) -> Result<Revision> {
        let window = restorable_window(
            instance.instance_create_time().and_then(chrono_time),
            instance.backup_retention_period().unwrap_or(0),
            instance.latest_restorable_time().and_then(chrono_time),
            Utc::now(),
        )
        .ok_or_else(|| {
            Error::invalid(
                self.id.to_string(),
                "no point-in-time restore is possible: automated backups are off (retention 0) or there is no latest restorable time; restore a snapshot instead",
            )
        })?;
        let at = if spec == "latest" {
            window.1
        } else {
            let t = DateTime::parse_from_rfc3339(spec)
                .map_err(|e| {
                    Error::invalid(
                        self.id.to_string(),
                        format!("{spec:?} is neither a snapshot id nor an RFC 3339 time ({e}); e.g. 2026-11-22T10:00:00Z"),
                    )
                })?
                .with_timezone(&Utc);
            if t < window.0 || t > window.1 {
                return Err(Error::invalid(
                    self.id.to_string(),
                    format!(
                        "{} is outside the restorable window {} .. {}; choose a time inside it",
                        t.to_rfc3339_opts(SecondsFormat::Secs, true),
                        window.0.to_rfc3339_opts(SecondsFormat::Secs, true),
                        window.1.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ),
                ));
            }
            t
        };
        let mut r = Revision::new(if spec == "latest" {
            "latest".to_string()
        } else {
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        });
        r.created_at = Some(at);
        r.description = Some("point in time".into());
        r.facts.insert("type".into(), "point-in-time".into());
        Ok(r)
    }

    /// Snapshots the instance (runbook 001, "Before Running Migrations") as `name`, or
    /// `pre-migration-YYYYmmdd-HHMMSS`, and waits until the snapshot is available.
    pub async fn snapshot(
        &self,
        name: Option<&str>,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<Revision> {
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| format!("pre-migration-{}", Utc::now().format("%Y%m%d-%H%M%S")));
        check_name(
            &self.id,
            "snapshot",
            &name,
            "a snapshot identifier, e.g. `pre-migration-20251228-143000`",
        )?;
        check_identifier(&self.id, "DB snapshot", &name, MAX_SNAPSHOT_ID)?;
        self.client
            .get()
            .await?
            .create_db_snapshot()
            .db_instance_identifier(&self.db_instance_id)
            .db_snapshot_identifier(&name)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "CreateDBSnapshot", e))?;
        let target = self.id.to_string();
        poll_until(
            &target,
            &format!("snapshot {name} to be available"),
            timeout,
            PollSchedule::stability(),
            progress,
            || async {
                let out = self
                    .client
                    .get()
                    .await?
                    .describe_db_snapshots()
                    .db_snapshot_identifier(&name)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.id, "DescribeDBSnapshots", e))?;
                let status = out
                    .db_snapshots()
                    .first()
                    .and_then(|s| s.status())
                    .unwrap_or("missing")
                    .to_string();
                // botocore's DBSnapshotAvailable waiter.
                Ok(match status.as_str() {
                    "available" => Stability::Stable,
                    "deleted"
                    | "deleting"
                    | "failed"
                    | "incompatible-restore"
                    | "incompatible-parameters" => {
                        Stability::Failed(format!("snapshot {name} is {status}"))
                    }
                    other => Stability::Waiting(format!("snapshot {name} is {other}")),
                })
            },
        )
        .await?;
        let out = self
            .client
            .get()
            .await?
            .describe_db_snapshots()
            .db_snapshot_identifier(&name)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "DescribeDBSnapshots", e))?;
        out.db_snapshots()
            .first()
            .and_then(snapshot_revision)
            .ok_or_else(|| {
                Error::backend(
                    self.id.to_string(),
                    format!("snapshot {name} vanished"),
                    false,
                )
            })
    }

    /// The snapshot id an `Exact` id means: the id itself, or the name in a DB snapshot ARN
    /// (`arn:aws:rds:REGION:ACCOUNT:snapshot:NAME`) of the instance's own partition, region
    /// and account (read from the instance's ARN, described already).
    fn exact_snapshot(&self, instance: &DbInstance, id: &str) -> Result<String> {
        if !arn::is_arn(id) {
            return Ok(id.to_string());
        }
        const INSTEAD: &str = "the snapshot identifier, or this account's DB snapshot ARN (arn:aws:rds:REGION:ACCOUNT:snapshot:NAME)";
        let (given, name) =
            arn::parse_as(&self.id, "DB snapshot", id, "rds", "snapshot:", INSTEAD)?;
        if let Some(own) = instance.db_instance_arn().and_then(Arn::parse) {
            arn::check_same_place(
                &self.id,
                "DB snapshot",
                &given,
                &own,
                "the instance",
                INSTEAD,
            )?;
        }
        Ok(name.to_string())
    }

    fn source_of(instance: &DbInstance) -> Option<String> {
        instance
            .tag_list()
            .iter()
            .find(|t| t.key() == Some(SOURCE_TAG))
            .and_then(|t| t.value().map(str::to_string))
    }
}

#[async_trait]
impl RollbackTarget for RdsInstance {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The instance and its snapshots described, a snapshot taken before a restore, and
    /// the restore (from a snapshot or to a point in time) to the new instance, with the
    /// copied tags (RDS checks `rds:AddTagsToResource` on a restore that tags).
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let name = check_instance_arn(&self.id, &self.db_instance_id).ok()?.0;
        let db = self.client.arn("rds", &format!("db:{name}"));
        let restored = self.client.arn("rds", &format!("db:{}", self.restore_as));
        let snapshots = self.client.arn("rds", "snapshot:*");
        let mut p = rollback_core::Permission::aws_all(&["rds:DescribeDBInstances"], &db);
        p.extend(rollback_core::Permission::aws_all(
            &["rds:DescribeDBInstances"],
            &restored,
        ));
        p.extend(rollback_core::Permission::aws_all(
            &["rds:DescribeDBSnapshots", "rds:CreateDBSnapshot"],
            &db,
        ));
        p.extend(rollback_core::Permission::aws_all(
            &[
                "rds:DescribeDBSnapshots",
                "rds:CreateDBSnapshot",
                "rds:RestoreDBInstanceFromDBSnapshot",
            ],
            &snapshots,
        ));
        p.extend(rollback_core::Permission::aws_all(
            &["rds:RestoreDBInstanceToPointInTime"],
            &db,
        ));
        p.extend(rollback_core::Permission::aws_all(
            &[
                "rds:RestoreDBInstanceFromDBSnapshot",
                "rds:RestoreDBInstanceToPointInTime",
                "rds:AddTagsToResource",
            ],
            &restored,
        ));
        Some(p)
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    async fn current(&self) -> Result<Revision> {
        Ok(self.live(&self.source().await?))
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let live = self.current().await?;
        let mut h = vec![live];
        h.extend(self.snapshots().await?);
        Ok(h)
    }

    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        let instance = self.source().await?;
        let mut history = vec![self.live(&instance)];
        // A snapshot ARN names this instance's region and account, or is refused.
        let selector = match selector {
            Selector::Exact(id) => Selector::Exact(self.exact_snapshot(&instance, id.trim())?),
            other => other.clone(),
        };
        history.extend(self.snapshots().await?);
        if let Selector::Exact(id) = &selector {
            if !history.iter().any(|r| &r.id == id)
                && (id == "latest" || id.chars().next().is_some_and(|c| c.is_ascii_digit()))
            {
                return self.point_in_time(&instance, id);
            }
        }
        selector.resolve(&self.id, &history, LIVE)
    }

    async fn plan(&self, to: &Revision) -> Result<Change> {
        // The name may come from a journal or the default: checked here, in preflight,
        // rather than refused by RestoreDBInstanceFromDBSnapshot after other steps ran.
        check_identifier(
            &self.id,
            "restored DB instance",
            &self.restore_as,
            MAX_INSTANCE_ID,
        )?;
        let instance = self.source().await?;
        let from = self.live(&instance);
        let mut to = to.clone();
        // A revision made by hand gets the same ARN check as `Exact`: RDS would restore a
        // snapshot ARN of another account if it is shared.
        to.id = self.exact_snapshot(&instance, &to.id)?;
        to.facts
            .insert("restore_to".into(), self.restore_as.clone());
        if let Some(c) = instance.db_instance_class() {
            to.facts.insert("class".into(), c.to_string());
        }
        to.facts.insert("status".into(), "new instance".into());
        if self
            .describe_instance(&self.restore_as)
            .await?
            .is_some_and(|i| Self::source_of(&i).as_deref() != Some(to.id.as_str()))
        {
            return Err(Error::invalid(
                self.id.to_string(),
                format!(
                    "an instance named {} already exists and was not restored from {}; choose another name with restore_as",
                    self.restore_as, to.id
                ),
            ));
        }
        // What a person reviews: where the data comes from and where it goes; the original
        // instance is not changed, so its facts are not a diff.
        let mut d = rollback_core::DiffBuilder::default();
        d.entry(
            rollback_core::DiffSection::Fact,
            "restore_from",
            None,
            Some(format!(
                "{} ({})",
                to.id,
                to.description.clone().unwrap_or_default()
            )),
        );
        d.entry(
            rollback_core::DiffSection::Fact,
            "restore_to",
            None,
            Some(format!("new instance {}", self.restore_as)),
        );
        if let Some(c) = instance.db_instance_class() {
            d.entry(
                rollback_core::DiffSection::Fact,
                "class",
                None,
                Some(c.to_string()),
            );
        }
        Ok(Change {
            target: self.id.clone(),
            from,
            to,
            diff: d.build(),
            precondition: None,
            origin: None,
            since: None,
        })
    }

    /// Restores to the new instance; a restore already made (a resumed run) is
    /// `AlreadyCurrent`. The reverse change (compensation) sends nothing: the original was
    /// never changed and the restored instance is kept (see `compensation_note`).
    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        if change.to.id == LIVE {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        if let Some(existing) = self.describe_instance(&self.restore_as).await? {
            return match Self::source_of(&existing) {
                Some(src) if src == change.to.id => Ok(ApplyOutcome::AlreadyCurrent),
                other => Err(Error::conflict(
                    self.id.to_string(),
                    format!("no instance named {}", self.restore_as),
                    format!(
                        "one restored from {}",
                        other.unwrap_or_else(|| "somewhere else".into())
                    ),
                )),
            };
        }
        let src = self.source().await?;
        let tag = Tag::builder().key(SOURCE_TAG).value(&change.to.id).build();
        let sgs: Vec<String> = src
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
            .collect();
        let subnet = src
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_string);
        let params = src
            .db_parameter_groups()
            .first()
            .and_then(|p| p.db_parameter_group_name())
            .map(str::to_string);
        let class = src.db_instance_class().map(str::to_string);
        let port = src.endpoint().and_then(|e| e.port());
        let multi_az = src.multi_az();
        if change.to.facts.get("type").map(String::as_str) == Some("point-in-time") {
            let mut req = self
                .client
                .get()
                .await?
                .restore_db_instance_to_point_in_time()
                .source_db_instance_identifier(&self.db_instance_id)
                .target_db_instance_identifier(&self.restore_as)
                .set_db_instance_class(class)
                .set_db_subnet_group_name(subnet)
                .set_vpc_security_group_ids((!sgs.is_empty()).then_some(sgs))
                .set_db_parameter_group_name(params)
                .set_port(port)
                .set_multi_az(multi_az)
                .tags(tag);
            req = if change.to.id == "latest" {
                req.use_latest_restorable_time(true)
            } else {
                let at = change.to.created_at.ok_or_else(|| {
                    Error::invalid(
                        self.id.to_string(),
                        "the point-in-time revision has no time",
                    )
                })?;
                req.restore_time(smithy_time(at))
            };
            req.send()
                .await
                .map_err(|e| sdk_error(&self.id, "RestoreDBInstanceToPointInTime", e))?;
        } else {
            self.client
                .get()
                .await?
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(&self.restore_as)
                .db_snapshot_identifier(&change.to.id)
                .set_db_instance_class(class)
                .set_db_subnet_group_name(subnet)
                .set_vpc_security_group_ids((!sgs.is_empty()).then_some(sgs))
                .set_db_parameter_group_name(params)
                .set_port(port)
                .set_multi_az(multi_az)
                .tags(tag)
                .send()
                .await
                .map_err(|e| sdk_error(&self.id, "RestoreDBInstanceFromDBSnapshot", e))?;
        }
        Ok(ApplyOutcome::Applied)
    }

    fn compensation_note(&self, change: &Change) -> Option<String> {
        // `change` is the forward change (live -> snapshot) that was compensated.
        (change.to.id != LIVE).then(|| {
            format!(
                "the instance {} restored from {} was kept (compensation never deletes data) and nothing points at it any more; the original {} was never changed; delete {} by hand if it is not needed",
                self.restore_as, change.to.id, self.db_instance_id, self.restore_as
            )
        })
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        let (name, instance) = if revision.id == LIVE {
            (
                &self.db_instance_id,
                self.describe_instance(&self.db_instance_id).await?,
            )
        } else {
            (
                &self.restore_as,
                self.describe_instance(&self.restore_as).await?,
            )
        };
        Ok(match instance {
            None => Stability::Waiting(format!("instance {name} does not exist yet")),
            Some(i) => instance_stability(name, i.db_instance_status().unwrap_or("unknown")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_instance_available_rules() {
        assert_eq!(instance_stability("db", "available"), Stability::Stable);
        for s in [
            "deleted",
            "deleting",
            "failed",
            "incompatible-restore",
            "incompatible-parameters",
        ] {
            assert!(matches!(instance_stability("db", s), Stability::Failed(m) if m.contains(s)));
        }
        for s in ["creating", "backing-up", "modifying"] {
            assert!(matches!(instance_stability("db", s), Stability::Waiting(m) if m.contains(s)));
        }
    }

    #[test]
    fn restorable_window_rules() {
        let now = Utc::now();
        let latest = now - chrono::Duration::minutes(5);
        let (earliest, l) = restorable_window(None, 7, Some(latest), now).unwrap();
        assert_eq!(l, latest);
        assert_eq!(earliest, now - chrono::Duration::days(7));
        let created = now - chrono::Duration::days(2);
        assert_eq!(
            restorable_window(Some(created), 7, Some(latest), now)
                .unwrap()
                .0,
            created
        );
        assert!(restorable_window(None, 0, Some(latest), now).is_none());
        assert!(restorable_window(None, 7, None, now).is_none());
    }
}
