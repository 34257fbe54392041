//! The team stores a runbook file can name, registered by [`crate::register_with`]:
//! `journal_store: {kind: s3, bucket, prefix}`, `known_good: {kind: s3, bucket, prefix}` or
//! `{kind: dynamodb, table}`. Each may carry `aws:` settings (region, endpoint, profile) as
//! targets do; they are built offline (nothing is called until the run writes).

use std::sync::Arc;

use rollback_core::journal::JournalStore;
use rollback_core::{Error, KnownGoodStore, Registry, Result, StoreSpec};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::{AwsCache, AwsConfig, DynamoDbKnownGood, S3Journals, S3KnownGood};

/// `bucket` and `prefix` (default none) of an S3 store.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InBucket {
    bucket: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    aws: AwsConfig,
}

/// `table` of a DynamoDB store.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InTable {
    table: String,
    #[serde(default)]
    aws: AwsConfig,
}

/// The parameters of `spec`, or an error about `what` saying which it takes.
fn params<T: DeserializeOwned>(spec: &StoreSpec, what: &str, takes: &str) -> Result<T> {
    serde_json::from_value(spec.params.clone())
        .map_err(|e| Error::invalid(what, format!("a {} {what} takes {takes} ({e})", spec.kind)))
}

pub(crate) fn register(registry: &mut Registry, cache: &AwsCache) {
    let c = cache.clone();
    registry.register_journal_store("s3", move |spec| {
        let c = c.clone();
        async move {
            let p: InBucket = params(&spec, "journal store", "bucket, prefix and aws")?;
            let aws = c.get(&p.aws).await;
            Ok(Arc::new(S3Journals::new(&aws, p.bucket, p.prefix)?) as Arc<dyn JournalStore>)
        }
    });
    let c = cache.clone();
    registry.register_known_good("s3", move |spec| {
        let c = c.clone();
        async move {
            let p: InBucket = params(&spec, "known-good store", "bucket, prefix and aws")?;
            let aws = c.get(&p.aws).await;
            Ok(Arc::new(S3KnownGood::new(&aws, p.bucket, p.prefix)?) as Arc<dyn KnownGoodStore>)
        }
    });
    let c = cache.clone();
    registry.register_known_good("dynamodb", move |spec| {
        let c = c.clone();
        async move {
            let p: InTable = params(&spec, "known-good store", "table and aws")?;
            let aws = c.get(&p.aws).await;
            Ok(Arc::new(DynamoDbKnownGood::new(&aws, p.table)?) as Arc<dyn KnownGoodStore>)
        }
    });
}
