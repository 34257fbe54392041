//! [`DynamoDbKnownGood`]: the revisions past transactions verified healthy, in a DynamoDB
//! table a team shares, for [`Selector::LastKnownGood`](rollback_core::Selector::LastKnownGood)
//! (see [`rollback_core::known_good`]).
//!
//! One item per target, keyed by the target id (`target`, S, the partition key, as for the
//! lock table: [`DynamoDbKnownGood::create_table`] makes one): `revision` (S),
//! `verified_at` (N, milliseconds since the Unix epoch), `transaction` (S), `name` (S),
//! `checks` (L of S). A record is written on the condition that the item holds no newer
//! one, so two runs finishing together keep the newer. IAM: `dynamodb:GetItem`,
//! `dynamodb:PutItem` on the table.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{TimeZone, Utc};
use rollback_core::{KnownGood, KnownGoodStore, Result, TargetId};

use crate::locks::{create_keyed_table, lost_race, read_item, table_error, table_name};
use crate::Aws;

/// Verified-good records in a DynamoDB table.
#[derive(Clone)]
pub struct DynamoDbKnownGood {
    client: Client,
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
            client: aws.client(Client::new),
            table: table_name("known-good", table.into())?,
        })
    }

    /// Creates the table (partition key `target`, on-demand billing) unless it exists, and
    /// waits until it is active.
    pub async fn create_table(aws: &Aws, table: impl Into<String>) -> Result<Self> {
        let store = Self::new(aws, table)?;
        create_keyed_table(&store.client, &store.table).await?;
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
    fn describe(&self) -> String {
        format!("DynamoDB table {}", self.table)
    }

    async fn record(&self, good: &KnownGood) -> Result<()> {
        let out = self
            .client
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
        let Some(a) = read_item(&self.client, &self.table, "known-good", target, target).await?
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
