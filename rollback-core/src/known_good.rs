//! Last known good: the revisions past transactions verified healthy, so that the next
//! incident can ask for [`Selector::LastKnownGood`](crate::Selector::LastKnownGood).
//!
//! After a run succeeds (every step stable and verified, the transaction's checks passed),
//! the engine records, for every step it moved and verified (temporary steps excepted: they
//! were put back), the revision it moved to, the transaction, and the checks that passed.
//! A run with no checks at all verified nothing but stability and records nothing; a
//! failed or compensated run records nothing. Records live in a [`KnownGoodStore`]: the
//! local folder ([`FileKnownGood`], the default, for one machine) or a store the team
//! shares (`rollback_aws::DynamoDbKnownGood`).
//!
//! A step asking for `LastKnownGood` reads the newest record of its target in preflight and
//! moves to that revision (as [`Selector::Exact`](crate::Selector::Exact)); the plan says
//! where the choice came from ([`Change::origin`](crate::Change::origin)). No record is a
//! typed error ([`Error::NotFound`]) that says so; it never falls back to another revision.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::target::TargetId;

/// One target's revision, verified healthy by a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownGood {
    /// The target.
    pub target: TargetId,
    /// The revision id (as [`Selector::Exact`](crate::Selector::Exact) takes it).
    pub revision: String,
    /// When the transaction verified it.
    pub verified_at: DateTime<Utc>,
    /// The transaction id.
    pub transaction: String,
    /// The transaction's name.
    pub name: String,
    /// The checks that passed (the step's, then the transaction's).
    pub checks: Vec<String>,
}

impl KnownGood {
    /// Where a plan's choice came from, for the plan and the report.
    pub fn origin(&self) -> String {
        format!(
            "last known good: verified by transaction {} ({:?}) at {}; checks passed: {}",
            self.transaction,
            self.name,
            self.verified_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.checks.join(", ")
        )
    }
}

/// Where verified-good records are kept. A store keeps the newest record per target: a
/// record older than the one it holds is ignored.
#[async_trait]
pub trait KnownGoodStore: Send + Sync + fmt::Debug {
    /// Where the records are, for errors and plans (`folder .rollback/known-good`,
    /// `DynamoDB table rollback-known-good`).
    fn describe(&self) -> String;

    /// The cloud permissions its calls need ([`Permission`](crate::permission::Permission)),
    /// for `rollback policy`; `None` (the default) when it does not say, and then a policy
    /// generated for a run that holds it says it is incomplete.
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        None
    }

    /// Keeps `good` unless the store holds a newer record for its target.
    async fn record(&self, good: &KnownGood) -> Result<()>;

    /// The newest record of `target`, if any.
    async fn latest(&self, target: &TargetId) -> Result<Option<KnownGood>>;
}

/// Records as small JSON files in a folder, one per target, each replaced atomically (a
/// new file renamed over the old). For one machine: another machine's runs neither see
/// these records nor add to them; a team shares a store instead.
#[derive(Debug, Clone)]
pub struct FileKnownGood {
    dir: PathBuf,
}

impl FileKnownGood {
    /// Records under `dir` (created when needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileKnownGood { dir: dir.into() }
    }

    /// Records under `$ROLLBACK_KNOWN_GOOD_DIR`, or `.rollback/known-good` under the current
    /// directory (beside the default journal folder).
    pub fn from_env() -> Self {
        let dir = std::env::var_os("ROLLBACK_KNOWN_GOOD_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".rollback").join("known-good"));
        FileKnownGood::new(dir)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, target: &TargetId) -> PathBuf {
        self.dir
            .join(format!("{}.json", crate::lock::file_stem(target)))
    }
}

#[async_trait]
impl KnownGoodStore for FileKnownGood {
    /// Local files: no cloud permission.
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        Some(Vec::new())
    }
    fn describe(&self) -> String {
        format!("folder {}", self.dir.display())
    }

    async fn record(&self, good: &KnownGood) -> Result<()> {
        let held = self.latest(&good.target).await?;
        if held.is_some_and(|h| h.verified_at > good.verified_at) {
            return Ok(());
        }
        let (path, dir) = (self.path_for(&good.target), self.dir.clone());
        let body = serde_json::to_string_pretty(good).unwrap_or_default();
        let target = good.target.to_string();
        tokio::task::spawn_blocking(move || {
            let io = |what: &str, e: std::io::Error| {
                Error::backend(
                    target.clone(),
                    format!("known-good record {}: {what}: {e}", path.display()),
                    false,
                )
            };
            fs::create_dir_all(&dir).map_err(|e| io("create directory", e))?;
            let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
            fs::write(&tmp, body).map_err(|e| io("write", e))?;
            fs::rename(&tmp, &path).map_err(|e| io("rename", e))
        })
        .await
        .map_err(|e| Error::backend("known-good", format!("record task failed: {e}"), false))?
    }

    async fn latest(&self, target: &TargetId) -> Result<Option<KnownGood>> {
        let path = self.path_for(target);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                Error::backend(
                    target.to_string(),
                    format!(
                        "known-good record {} is not one ({e}); remove it or record a new one",
                        path.display()
                    ),
                    false,
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::backend(
                target.to_string(),
                format!("known-good record {}: {e}", path.display()),
                false,
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn good(rev: &str, at: i64) -> KnownGood {
        KnownGood {
            target: TargetId::new("memory", "api"),
            revision: rev.into(),
            verified_at: DateTime::from_timestamp(at, 0).unwrap(),
            transaction: format!("tx-{rev}"),
            name: "incident".into(),
            checks: vec!["health".into()],
        }
    }

    #[tokio::test]
    async fn the_newest_record_wins_and_an_older_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileKnownGood::new(dir.path().join("kg"));
        let t = TargetId::new("memory", "api");
        assert_eq!(store.latest(&t).await.unwrap(), None);
        store.record(&good("14", 100)).await.unwrap();
        store.record(&good("15", 200)).await.unwrap();
        store.record(&good("13", 50)).await.unwrap();
        let got = store.latest(&t).await.unwrap().unwrap();
        assert_eq!(got.revision, "15");
        assert!(got.origin().contains("tx-15") && got.origin().contains("health"));
        assert_eq!(
            store
                .latest(&TargetId::new("memory", "other"))
                .await
                .unwrap(),
            None
        );
    }
}
