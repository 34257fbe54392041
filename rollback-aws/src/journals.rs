//! [`S3Journals`]: transactions' journals in an S3 bucket, so that a run whose machine died
//! (a CI runner, a laptop) is finished from another with
//! [`rollback_core::resume_from_store`], and a team lists what ran
//! ([`rollback_core::journal::list_store`]).
//!
//! Each batch of records is one object, `<prefix><transaction>/<first seq, 12 digits>.jsonl`,
//! holding JSON lines exactly as the journal file does, written with `If-None-Match: *`:
//! two writers of one transaction can never both write the record after the same one (the
//! second is told another process is writing it, and stops). Reading lists the
//! transaction's objects and concatenates them in order. With a custom endpoint
//! (`AWS_ENDPOINT_URL`: an emulator, MinIO) requests are path-style.
//!
//! IAM: `s3:PutObject`, `s3:GetObject`, `s3:ListBucket` on the bucket (and the prefix).
//! Turn on versioning or an object lock if the audit trail must survive a delete.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use rollback_core::journal::JournalStore;
use rollback_core::{Error, Result, TargetId};

use crate::error::sdk_error;
use crate::Aws;

/// Journals in an S3 bucket under a prefix (see the [module docs](self)).
#[derive(Clone)]
pub struct S3Journals {
    client: Client,
    bucket: String,
    prefix: String,
}

impl std::fmt::Debug for S3Journals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Journals")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The S3 client of these settings: path-style when the endpoint is a custom one.
fn s3_client(sdk: &SdkConfig) -> Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    Client::from_conf(config)
}

impl S3Journals {
    /// Journals in `bucket` under `prefix` (`""`, or a folder such as `rollback/journals`;
    /// a `/` is added). The bucket name is checked here; that it exists, at the first write.
    pub fn new(aws: &Aws, bucket: impl Into<String>, prefix: impl Into<String>) -> Result<Self> {
        let bucket = bucket.into();
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'));
        if !valid {
            return Err(Error::invalid(
                "journal",
                format!("{bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, '.' or '-')"),
            ));
        }
        let mut prefix = prefix.into().trim_matches('/').to_string();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        Ok(S3Journals {
            client: aws.client(s3_client),
            bucket,
            prefix,
        })
    }

    fn folder(&self, transaction: &str) -> String {
        format!("{}{transaction}/", self.prefix)
    }

    fn about(&self, transaction: &str) -> TargetId {
        TargetId::new("journal", format!("{}{transaction}", self.describe()))
    }

    /// Every key under `prefix` and, with `folders`, every folder (common prefix) right
    /// under it instead of the keys below those: all pages, sorted.
    async fn list(
        &self,
        prefix: &str,
        folders: bool,
        about: &TargetId,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let (mut keys, mut dirs) = (Vec::new(), Vec::new());
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(folders.then(|| "/".to_string()))
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(about, "ListObjectsV2", e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            dirs.extend(
                out.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            token = out.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        dirs.sort();
        Ok((keys, dirs))
    }
}

#[async_trait]
impl JournalStore for S3Journals {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn put(&self, transaction: &str, from: u64, lines: &[u8]) -> Result<bool> {
        let key = format!("{}{from:012}.jsonl", self.folder(transaction));
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .content_type("application/x-ndjson")
            .body(ByteStream::from(lines.to_vec()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e)
                if e.raw_response().map(|r| r.status().as_u16()) == Some(412)
                    || aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&e)
                        == Some("PreconditionFailed") =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(&self.about(transaction), "PutObject", e)),
        }
    }

    async fn read(&self, transaction: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let (keys, _) = self
            .list(&self.folder(transaction), false, &self.about(transaction))
            .await?;
        for key in keys {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| sdk_error(&self.about(transaction), "GetObject", e))?;
            let body = out.body.collect().await.map_err(|e| {
                Error::backend(
                    self.about(transaction).to_string(),
                    format!("GetObject {key}: the body was cut short: {e}"),
                    true,
                )
            })?;
            bytes.extend_from_slice(&body.into_bytes());
        }
        Ok(bytes)
    }

    async fn transactions(&self) -> Result<Vec<String>> {
        let (_, dirs) = self.list(&self.prefix, true, &self.about("")).await?;
        Ok(dirs
            .iter()
            .filter_map(|d| d.strip_prefix(&self.prefix))
            .map(|d| d.trim_end_matches('/').to_string())
            .collect())
    }
}
