//! [`DynamoDbLocks`]: the targets' leases in a DynamoDB table, shared by everyone who can
//! reach it (two on-call engineers on two laptops, CI runners, a deploy bot's replicas).
//!
//! # The table
//!
//! One item per target, keyed by the target id:
//!
//! | attribute | type | what |
//! | --- | --- | --- |
//! | `target` | S (partition key) | the target id, `kind/name` |
//! | `holder_tx` | S | the holding transaction; absent once the lease is given back |
//! | `holder` | S | who holds it, as a person reads it (`user@host (pid N)`) |
//! | `journal` | S | where the holder's journal is, when it said |
//! | `acquired_at`, `expires_at` | N | milliseconds since the Unix epoch |
//! | `token` | N | the fencing token: it grows with every acquisition by another transaction |
//!
//! [`DynamoDbLocks::create_table`] makes it (on-demand billing); a table of your own needs
//! only the partition key `target` (S). Do not turn on DynamoDB's TTL on it: an item it
//! deletes takes its token with it.
//!
//! # Calls
//!
//! Acquiring reads the item (a consistent read) and writes it back on the condition that
//! nobody wrote it in between (its `token` and `expires_at` are still the ones read, or it
//! still does not exist); a race is read again and decided again. Renewing is one
//! conditional update (still our transaction and token); giving back is one conditional
//! update that removes the holder and keeps the token. The IAM actions:
//! `dynamodb:GetItem`, `dynamodb:PutItem`, `dynamodb:UpdateItem` on the table
//! (`dynamodb:CreateTable`, `dynamodb:DescribeTable` for the helper).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, TimeZone, Utc};
use rollback_core::lock::{claim, LockSpec};
use rollback_core::{Error, ErrorKind, Holder, Lease, LockManager, Registry, Result, TargetId};
use serde::{Deserialize, Serialize};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::sdk_error;
use crate::{Aws, AwsCache, AwsConfig};

/// How many times a write that lost a race is read and decided again.
const RACES: usize = 8;

/// Leases in a DynamoDB table (see the [module docs](self) for its schema and calls).
#[derive(Clone)]
pub struct DynamoDbLocks {
    client: crate::config::LazyClient<Client>,
    table: String,
    aws: AwsConfig,
}

impl std::fmt::Debug for DynamoDbLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDbLocks")
            .field("table", &self.table)
            .field("aws", &self.aws)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Params {
    table: String,
    #[serde(default)]
    aws: AwsConfig,
}

impl DynamoDbLocks {
    /// The [`LockSpec::kind`] of DynamoDB leases.
    pub const KIND: &'static str = "dynamodb";

    /// Leases in `table`, through `aws`'s DynamoDB client. The table name is checked
    /// here (3 to 255 of `a-z A-Z 0-9 _ - .`); that the table exists is checked by the
    /// first acquire, before anything is changed.
    pub fn new(aws: &Aws, table: impl Into<String>) -> Result<Self> {
        let table = table_name("locks", table.into())?;
        Ok(DynamoDbLocks {
            client: aws.lazy_client(Client::new),
            table,
            aws: aws.config().clone(),
        })
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (partition key `target`, on-demand billing) unless it exists, and
    /// waits until it is active.
    pub async fn create_table(aws: &Aws, table: impl Into<String>) -> Result<Self> {
        let locks = Self::new(aws, table)?;
        create_keyed_table(&locks.client.get().await?, &locks.table).await?;
        Ok(locks)
    }

    /// Rebuilds DynamoDB leases from their [`LockSpec`] with `cache`'s AWS settings.
    pub async fn from_spec(spec: &LockSpec, cache: &AwsCache) -> Result<Self> {
        if spec.kind != Self::KIND {
            return Err(Error::invalid(
                "locks",
                format!("lock kind {:?} is not DynamoDB leases", spec.kind),
            ));
        }
        let p: Params = serde_json::from_value(spec.params.clone()).map_err(|e| {
            Error::invalid(
                "locks",
                format!("DynamoDB lock parameters need a \"table\": {e}"),
            )
        })?;
        let aws = cache.get(&p.aws).await;
        Self::new(&aws, p.table)
    }

    /// Registers the `dynamodb` lock kind, so that a resume rebuilds the leases a journal
    /// names (done by [`crate::register_with`]).
    pub fn register(registry: &mut Registry, cache: &AwsCache) {
        let cache = cache.clone();
        registry.register_locks(Self::KIND, move |spec| {
            let cache = cache.clone();
            async move {
                Ok(std::sync::Arc::new(Self::from_spec(&spec, &cache).await?)
                    as std::sync::Arc<dyn LockManager>)
            }
        });
    }

    /// Who the errors are about: the target, in the lock table.
    fn about(&self, target: &TargetId) -> TargetId {
        TargetId::new(
            target.kind.clone(),
            format!("{} (lock table {})", target.name, self.table),
        )
    }

    fn failed<E>(&self, target: &TargetId, op: &str, e: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        table_error(&self.table, "lock", &self.about(target), op, e)
    }

    async fn read(&self, target: &TargetId) -> Result<Option<Item>> {
        let item = read_item(
            &self.client.get().await?,
            &self.table,
            "lock",
            target,
            &self.about(target),
        )
        .await?;
        Ok(item.map(|a| Item::from_attributes(target, &a)))
    }

    /// Writes `lease` as the item, on the condition that the item is still `seen`.
    /// `Ok(false)`: someone wrote it in between.
    async fn write(&self, lease: &Lease, seen: Option<&Item>) -> Result<bool> {
        let mut put = self
            .client
            .get()
            .await?
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes(lease)));
        put = match seen {
            None => put
                .condition_expression("attribute_not_exists(#target)")
                .expression_attribute_names("#target", "target"),
            Some(item) => put
                .condition_expression("#token = :token AND #exp = :exp")
                .expression_attribute_names("#token", "token")
                .expression_attribute_names("#exp", "expires_at")
                .expression_attribute_values(":token", number(item.token))
                .expression_attribute_values(":exp", number(item.expires_ms)),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if lost_race(&e) => Ok(false),
            Err(e) => Err(self.failed(&lease.target, "PutItem", e)),
        }
    }

    /// The error for `mine` when the item says someone else has it, or nobody.
    async fn lost(&self, mine: &Lease) -> Error {
        match self.read(&mine.target).await {
            Ok(Some(Item { lease: Some(l), .. }))
                if l.holder.transaction != mine.holder.transaction || l.token != mine.token =>
            {
                Error::locked(mine.target.to_string(), l.holder.to_string(), l.expires_at)
            }
            Ok(_) => Error::lease_lost(
                mine.target.to_string(),
                format!(
                    "the lock table {:?} no longer holds it (given back or removed)",
                    self.table
                ),
            ),
            Err(e) => e,
        }
    }
}

/// `table` if it is a DynamoDB table name (3 to 255 of `a-z A-Z 0-9 _ - .`), else an
/// error about `what`.
pub(crate) fn table_name(what: &str, table: String) -> Result<String> {
    let valid = (3..=255).contains(&table.len())
        && table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(Error::invalid(
            what,
            format!("{table:?} is not a DynamoDB table name (3 to 255 letters, digits, '_', '-' or '.')"),
        ));
    }
    Ok(table)
}

/// The item of `target` in `table` (a consistent read), errors about `about` in the
/// `what` table.
pub(crate) async fn read_item(
    client: &Client,
    table: &str,
    what: &str,
    target: &TargetId,
    about: &TargetId,
) -> Result<Option<HashMap<String, AttributeValue>>> {
    let out = client
        .get_item()
        .table_name(table)
        .key("target", AttributeValue::S(target.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| table_error(table, what, about, "GetItem", e))?;
    Ok(out.item)
}

/// Whether a conditional write failed its condition: someone wrote the item first.
pub(crate) fn lost_race<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

/// An SDK error of `op` on `target`'s item in the `what` table; a missing table is input
/// to correct.
pub(crate) fn table_error<E>(
    table: &str,
    what: &str,
    target: &TargetId,
    op: &str,
    e: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let e = sdk_error(target, op, e);
    if e.kind() != ErrorKind::NotFound {
        return e;
    }
    Error::invalid(
        target.to_string(),
        format!(
            "the DynamoDB {what} table {table:?} does not exist in this account and region; create it with create_table, or name another"
        ),
    )
    .with_source(e)
}

/// Creates `table` (partition key `target` S, on-demand billing) unless it exists, and
/// waits until it is active.
pub(crate) async fn create_keyed_table(client: &Client, table: &str) -> Result<()> {
    let who = TargetId::new("dynamodb", table);
    let invalid =
        |e: aws_sdk_dynamodb::error::BuildError| Error::invalid(who.to_string(), e.to_string());
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("target")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(invalid)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("target")
                .key_type(KeyType::Hash)
                .build()
                .map_err(invalid)?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    if let Err(e) = created {
        let exists = e
            .as_service_error()
            .is_some_and(|s| s.is_resource_in_use_exception());
        if !exists {
            return Err(sdk_error(&who, "CreateTable", e));
        }
    }
    let mut pause = Duration::from_millis(100);
    for _ in 0..60 {
        let d = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(&who, "DescribeTable", e))?;
        if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    Err(Error::timeout(
        who.to_string(),
        "the table to be active",
        Duration::from_secs(60),
        "not active",
    ))
}

/// An item as read: the lease it holds (none once given back) and its version.
#[derive(Debug)]
struct Item {
    lease: Option<Lease>,
    token: u64,
    expires_ms: i64,
}

impl Item {
    fn from_attributes(target: &TargetId, a: &HashMap<String, AttributeValue>) -> Item {
        let s = |k: &str| a.get(k).and_then(|v| v.as_s().ok()).cloned();
        let n = |k: &str| {
            a.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let token = n("token").unwrap_or(0).max(0) as u64;
        let expires_ms = n("expires_at").unwrap_or(0);
        let lease = s("holder_tx").map(|transaction| Lease {
            target: target.clone(),
            holder: Holder {
                name: s("holder").unwrap_or_else(|| "unknown".into()),
                transaction,
                journal: s("journal").map(PathBuf::from),
            },
            acquired_at: time(n("acquired_at").unwrap_or(0)),
            expires_at: time(expires_ms),
            token,
        });
        Item {
            lease,
            token,
            expires_ms,
        }
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn attributes(l: &Lease) -> HashMap<String, AttributeValue> {
    let mut a = HashMap::from([
        (
            "target".to_string(),
            AttributeValue::S(l.target.to_string()),
        ),
        (
            "holder_tx".to_string(),
            AttributeValue::S(l.holder.transaction.clone()),
        ),
        (
            "holder".to_string(),
            AttributeValue::S(l.holder.name.clone()),
        ),
        (
            "acquired_at".to_string(),
            number(l.acquired_at.timestamp_millis()),
        ),
        (
            "expires_at".to_string(),
            number(l.expires_at.timestamp_millis()),
        ),
        ("token".to_string(), number(l.token)),
    ]);
    if let Some(j) = &l.holder.journal {
        a.insert(
            "journal".to_string(),
            AttributeValue::S(j.display().to_string()),
        );
    }
    a
}

#[async_trait]
impl LockManager for DynamoDbLocks {
    /// Items of the table read and written conditionally (and the table made, by
    /// `create_table`, which a run does not call).
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let table = self
            .client
            .arn("dynamodb", &format!("table/{}", self.table));
        Some(rollback_core::Permission::aws_all(
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
            &table,
        ))
    }

    fn spec(&self) -> Option<LockSpec> {
        let params = Params {
            table: self.table.clone(),
            aws: self.aws.clone(),
        };
        Some(LockSpec {
            kind: Self::KIND.into(),
            params: serde_json::to_value(params).unwrap_or_default(),
        })
    }

    async fn acquire(&self, target: &TargetId, holder: &Holder, ttl: Duration) -> Result<Lease> {
        for _ in 0..RACES {
            let seen = self.read(target).await?;
            let now = Utc::now();
            let held = seen.as_ref().and_then(|i| i.lease.as_ref());
            let last = seen.as_ref().map_or(0, |i| i.token);
            let (token, acquired_at) = claim(target, held, last, holder, now, Holder::run_ended)?;
            let lease = Lease {
                target: target.clone(),
                holder: holder.clone(),
                acquired_at,
                expires_at: Lease::expiry(now, ttl),
                token,
            };
            if self.write(&lease, seen.as_ref()).await? {
                return Ok(lease);
            }
        }
        Err(Error::backend(
            self.about(target).to_string(),
            format!("its lease changed under every one of {RACES} attempts to take it; try again"),
            true,
        ))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        let renewed = Lease {
            expires_at: Lease::expiry(Utc::now(), ttl),
            ..lease.clone()
        };
        let out = self
            .client
            .get()
            .await?
            .update_item()
            .table_name(&self.table)
            .key("target", AttributeValue::S(lease.target.to_string()))
            .update_expression("SET #exp = :exp")
            .condition_expression("holder_tx = :tx AND #token = :token")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":exp", number(renewed.expires_at.timestamp_millis()))
            .expression_attribute_values(":tx", AttributeValue::S(lease.holder.transaction.clone()))
            .expression_attribute_values(":token", number(lease.token))
            .send()
            .await;
        match out {
            Ok(_) => Ok(renewed),
            Err(e) if lost_race(&e) => Err(self.lost(lease).await),
            Err(e) => Err(self.failed(&lease.target, "UpdateItem", e)),
        }
    }

    async fn current(&self, target: &TargetId) -> Result<Option<Lease>> {
        Ok(self.read(target).await?.and_then(|i| i.lease))
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let out = self
            .client
            .get()
            .await?
            .update_item()
            .table_name(&self.table)
            .key("target", AttributeValue::S(lease.target.to_string()))
            .update_expression("SET #exp = :zero REMOVE holder_tx, holder, journal")
            .condition_expression("holder_tx = :tx")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":tx", AttributeValue::S(lease.holder.transaction.clone()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if lost_race(&e) => Ok(()),
            Err(e) => Err(self.failed(&lease.target, "UpdateItem", e)),
        }
    }
}
