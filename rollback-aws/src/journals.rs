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
//! (`AWS_ENDPOINT_URL`: an emulator, MinIO) requests are path-style. The same bucket can
//! hold the team's verified-good history ([`S3KnownGood`](crate::S3KnownGood)) under
//! another prefix.
//!
//! IAM: `s3:PutObject`, `s3:GetObject`, `s3:ListBucket` on the bucket (and the prefix).
//! Turn on versioning or an object lock if the audit trail must survive a delete.

use async_trait::async_trait;
use rollback_core::journal::JournalStore;
use rollback_core::{Result, TargetId};

use crate::s3::S3Folder;
use crate::Aws;

/// Journals in an S3 bucket under a prefix (see the [module docs](self)).
#[derive(Clone)]
pub struct S3Journals {
    folder: S3Folder,
}

impl std::fmt::Debug for S3Journals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Journals")
            .field("bucket", &self.folder.bucket)
            .field("prefix", &self.folder.prefix)
            .finish_non_exhaustive()
    }
}

impl S3Journals {
    /// Journals in `bucket` under `prefix` (`""`, or a folder such as `rollback/journals`;
    /// a `/` is added). The bucket name is checked here; that it exists, at the first write.
    pub fn new(aws: &Aws, bucket: impl Into<String>, prefix: impl Into<String>) -> Result<Self> {
        Ok(S3Journals {
            folder: S3Folder::new(aws, "journal", bucket.into(), prefix.into())?,
        })
    }

    /// Journals as [`S3Journals::new`], creating the bucket unless this account has it (in
    /// the configured region; no versioning or lifecycle set: add what your audit needs).
    pub async fn create_bucket(
        aws: &Aws,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Result<Self> {
        let store = Self::new(aws, bucket, prefix)?;
        store.folder.create_bucket(&store.about("")).await?;
        Ok(store)
    }

    fn about(&self, transaction: &str) -> TargetId {
        TargetId::new("journal", format!("{}{transaction}", self.describe()))
    }
}

#[async_trait]
impl JournalStore for S3Journals {
    /// Objects under the prefix read, written and listed.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        Some(self.folder.permissions())
    }

    fn describe(&self) -> String {
        self.folder.describe()
    }

    async fn put(&self, transaction: &str, from: u64, lines: &[u8]) -> Result<bool> {
        let key = format!("{transaction}/{from:012}.jsonl");
        self.folder
            .put_if_absent(
                &key,
                "application/x-ndjson",
                lines.to_vec(),
                &self.about(transaction),
            )
            .await
    }

    async fn read(&self, transaction: &str) -> Result<Vec<u8>> {
        let about = self.about(transaction);
        let (mut keys, _) = self
            .folder
            .list(&format!("{transaction}/"), false, None, &about)
            .await?;
        keys.sort();
        let mut bytes = Vec::new();
        for key in keys {
            bytes.extend(self.folder.get(&key, &about).await?);
        }
        Ok(bytes)
    }

    async fn transactions(&self) -> Result<Vec<String>> {
        let (_, mut dirs) = self.folder.list("", true, None, &self.about("")).await?;
        dirs.sort();
        Ok(dirs
            .iter()
            .filter_map(|d| d.strip_prefix(&self.folder.prefix))
            .map(|d| d.trim_end_matches('/').to_string())
            .collect())
    }
}
