//! The revisions past transactions verified healthy, in a store a team shares, for
//! [`Selector::LastKnownGood`](rollback_core::Selector::LastKnownGood) (see
//! [`rollback_core::known_good`]): [`DynamoDbKnownGood`] (a table) or [`S3KnownGood`] (a
//! bucket, beside the journals).
//!
//! DynamoDB: one item per target, keyed by the target id (`target`, S, the partition key, as for the
//! lock table: [`DynamoDbKnownGood::create_table`] makes one): `revision` (S),
//! `verified_at` (N, milliseconds since the Unix epoch), `transaction` (S), `name` (S),
//! `checks` (L of S). A record is written on the condition that the item holds no newer
//! one, so two runs finishing together keep the newer. IAM: `dynamodb:GetItem`,
//! `dynamodb:PutItem` on the table.
//!
//! S3: every record is kept, one object per record,
//! `<prefix><target>/<inverted time>-<transaction>.json` (the target's id made key-safe as
//! [`rollback_core::lock::file_stem`] does; the time counts down so the newest record is
//! the first S3 lists), the [`KnownGood`] as JSON, written only if absent. Recording is one
//! PutObject; reading the newest is one ListObjectsV2 (one key) and one GetObject. The
//! objects are the target's verified history, an audit trail: a lifecycle rule may expire
//! old ones. IAM: `s3:PutObject`, `s3:GetObject`, `s3:ListBucket`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{TimeZone, Utc};
use rollback_core::lock::file_stem;
use rollback_core::{Error, KnownGood, KnownGoodStore, Result, TargetId};

use crate::locks::{create_keyed_table, lost_race, read_item, table_error, table_name};
use crate::s3::S3Folder;
use crate::Aws;

/// Verified-good records in a DynamoDB table.
#[derive(Clone)]
pub struct DynamoDbKnownGood {
    client: crate::config::LazyClient<Client>,
    table: String,
}

impl std::fmt::Debug for DynamoDbKnownGood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDbKnownGood")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl DynamoDbKnownGood {
    /// Records in `table` (its name checked here; that it exists, at first use).
    pub fn new(aws: &Aws, table: impl Into<String>) -> Result<Self> {
        Ok(DynamoDbKnownGood {
            client: aws.lazy_client(Client::new),
            table: table_name("known-good", table.into())?,
        })
    }

    /// Creates the table (partition key `target`, on-demand billing) unless it exists, and
    /// waits until it is active.
    pub async fn create_table(aws: &Aws, table: impl Into<String>) -> Result<Self> {
        let store = Self::new(aws, table)?;
        create_keyed_table(&store.client.get().await?, &store.table).await?;
        Ok(store)
    }
}

fn item(good: &KnownGood) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_string());
    HashMap::from([
        ("target".to_string(), s(&good.target.to_string())),
        ("revision".to_string(), s(&good.revision)),
        (
            "verified_at".to_string(),
            AttributeValue::N(good.verified_at.timestamp_millis().to_string()),
        ),
        ("transaction".to_string(), s(&good.transaction)),
        ("name".to_string(), s(&good.name)),
        (
            "checks".to_string(),
            AttributeValue::L(good.checks.iter().map(|c| s(c)).collect()),
        ),
    ])
}

#[async_trait]
impl KnownGoodStore for DynamoDbKnownGood {
    /// Items read and written (conditionally) in the table.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let table = self
            .client
            .arn("dynamodb", &format!("table/{}", self.table));
        Some(rollback_core::Permission::aws_all(
            &["dynamodb:GetItem", "dynamodb:PutItem"],
            &table,
        ))
    }

    fn describe(&self) -> String {
        format!("DynamoDB table {}", self.table)
    }

    async fn record(&self, good: &KnownGood) -> Result<()> {
        let out = self
            .client
            .get()
            .await?
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(good)))
            .condition_expression("attribute_not_exists(#target) OR verified_at < :at")
            .expression_attribute_names("#target", "target")
            .expression_attribute_values(
                ":at",
                AttributeValue::N(good.verified_at.timestamp_millis().to_string()),
            )
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            // It holds a newer record: that one stays.
            Err(e) if lost_race(&e) => Ok(()),
            Err(e) => Err(table_error(
                &self.table,
                "known-good",
                &good.target,
                "PutItem",
                e,
            )),
        }
    }

    async fn latest(&self, target: &TargetId) -> Result<Option<KnownGood>> {
        let Some(a) = read_item(
            &self.client.get().await?,
            &self.table,
            "known-good",
            target,
            target,
        )
        .await?
        else {
            return Ok(None);
        };
        let s = |k: &str| a.get(k).and_then(|v| v.as_s().ok()).cloned();
        let at = a
            .get("verified_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        let (Some(revision), Some(verified_at)) = (s("revision"), at) else {
            return Ok(None);
        };
        let checks = a
            .get("checks")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|c| c.as_s().ok().cloned()).collect())
            .unwrap_or_default();
        Ok(Some(KnownGood {
            target: target.clone(),
            revision,
            verified_at,
            transaction: s("transaction").unwrap_or_default(),
            name: s("name").unwrap_or_default(),
            checks,
        }))
    }
}

/// Verified-good records in an S3 bucket under a prefix, every one kept (see the
/// [module docs](self)).
#[derive(Clone)]
pub struct S3KnownGood {
    folder: S3Folder,
}

impl std::fmt::Debug for S3KnownGood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3KnownGood")
            .field("bucket", &self.folder.bucket)
            .field("prefix", &self.folder.prefix)
            .finish_non_exhaustive()
    }
}

/// Milliseconds counted down from the year 2286, zero-padded, so that S3's ascending
/// listing puts the newest first.
fn countdown(at: chrono::DateTime<Utc>) -> String {
    const END: i64 = 9_999_999_999_999;
    format!("{:013}", END - at.timestamp_millis().clamp(0, END))
}

impl S3KnownGood {
    /// Records in `bucket` under `prefix` (`""`, or a folder such as
    /// `rollback/known-good`). The bucket name is checked here; that it exists, at first use.
    pub fn new(aws: &Aws, bucket: impl Into<String>, prefix: impl Into<String>) -> Result<Self> {
        Ok(S3KnownGood {
            folder: S3Folder::new(aws, "known-good", bucket.into(), prefix.into())?,
        })
    }

    /// Records as [`S3KnownGood::new`], creating the bucket unless this account has it.
    pub async fn create_bucket(
        aws: &Aws,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Result<Self> {
        let store = Self::new(aws, bucket, prefix)?;
        let about = TargetId::new("known-good", store.describe());
        store.folder.create_bucket(&about).await?;
        Ok(store)
    }
}

#[async_trait]
impl KnownGoodStore for S3KnownGood {
    /// Objects under the prefix read, written and listed.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        Some(self.folder.permissions())
    }

    fn describe(&self) -> String {
        self.folder.describe()
    }

    async fn record(&self, good: &KnownGood) -> Result<()> {
        let key = format!(
            "{}/{}-{}.json",
            file_stem(&good.target),
            countdown(good.verified_at),
            good.transaction
        );
        let body = serde_json::to_vec_pretty(good).unwrap_or_default();
        // Already there: this very record (same transaction, same instant) was written.
        self.folder
            .put_if_absent(&key, "application/json", body, &good.target)
            .await
            .map(|_| ())
    }

    async fn latest(&self, target: &TargetId) -> Result<Option<KnownGood>> {
        let under = format!("{}/", file_stem(target));
        let (keys, _) = self.folder.list(&under, false, Some(1), target).await?;
        let Some(key) = keys.first() else {
            return Ok(None);
        };
        let body = self.folder.get(key, target).await?;
        serde_json::from_slice(&body).map(Some).map_err(|e| {
            Error::backend(
                target.to_string(),
                format!(
                    "known-good record s3://{}/{key} is not one ({e}); delete it or record a new one",
                    self.folder.bucket
                ),
                false,
            )
        })
    }
}
