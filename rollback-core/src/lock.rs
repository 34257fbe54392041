//! Expiring leases, one per target, so two people never roll back the same thing at once,
//! and a crashed run never leaves a lock that sticks forever.
//!
//! A lease names its holder's journal ([`Holder::journal`]). A run that dies after its
//! `end` record but before giving its leases back leaves them behind; another run finding
//! such a lease reads the end of that journal (64 KiB at most) and takes it over at once
//! instead of waiting out the TTL, and [`crate::resume`] of that journal releases them.
//!
//! Fencing: a run renews each target's lease right before it changes that target (and
//! every third of the TTL in the background). A lease another run has taken over, one
//! given back, or one the store could not renew before it lapsed stops the run before its
//! next change ([`Error::LeaseLost`]): it puts nothing back, runs no on-failure action, and
//! reports the targets it had changed as needing a person. [`Lease::token`] grows with
//! every acquisition, so a store can tell an old holder from the new one.
//!
//! What each manager protects:
//!
//! | manager | shared by | protects against |
//! | --- | --- | --- |
//! | [`FileLocks`] (the default) | the processes of one machine that use the same folder | two runs on one bastion host or CI runner; not two laptops, not runners on different machines, not a folder on a network file system whose locks are advisory |
//! | `rollback_aws::DynamoDbLocks` | every run, on any machine, that uses the same table (account and region) | two engineers on two laptops, CI runners, a deploy bot's replicas; conditional writes decide every race |
//! | `rollback_k8s::LeaseLocks` | every run, on any machine that can reach the cluster, that uses the same namespace | the same, for teams whose shared store is the cluster: `coordination.k8s.io/v1` Leases updated with `resourceVersion` preconditions |
//!
//! Every manager's expiry is read against the clock of the machine asking: machines that
//! share a store need clocks within a small part of the TTL of each other (NTP). The
//! engine stops trusting its lease a tenth of the TTL before it lapses.

use std::fmt;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::target::TargetId;

/// Who asks for a lease: a person-readable name and the transaction id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@host (pid N)` or any name a person recognises.
    pub name: String,
    /// The transaction that holds it; the same transaction may take its own lease again
    /// (that is how [`crate::resume`] continues a crashed run).
    pub transaction: String,
    /// Where the transaction's journal is, so that another run finding the lease can see
    /// whether that run has ended (and died before giving its leases back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<PathBuf>,
}

impl Holder {
    /// `user@host (pid N)` for this process and the given transaction.
    pub fn current(transaction: impl Into<String>) -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .ok()
            .or_else(user_from_passwd)
            .unwrap_or_else(|| "unknown".into());
        let host = fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".into());
        Holder {
            name: format!("{user}@{host} (pid {})", std::process::id()),
            transaction: transaction.into(),
            journal: None,
        }
    }

    /// The same holder, naming its journal (made absolute, so that a process in another
    /// directory finds it).
    pub fn with_journal(mut self, journal: impl AsRef<Path>) -> Self {
        let j = journal.as_ref();
        self.journal = Some(std::path::absolute(j).unwrap_or_else(|_| j.to_path_buf()));
        self
    }

    /// Whether this holder's journal says its run has ended: then its leases are leftovers
    /// of a process that died between the end of the run and giving them back.
    pub fn run_ended(&self) -> bool {
        self.journal
            .as_ref()
            .and_then(|j| crate::journal::ended(j, &self.transaction))
            .unwrap_or(false)
    }
}

/// The login name of this process's user from `/proc/self/status` and `/etc/passwd`, for
/// when `USER` is not set (containers, CI runners).
fn user_from_passwd() -> Option<String> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid).then(|| name.to_string())
        })
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [transaction {}]", self.name, self.transaction)
    }
}

/// A lease on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The target.
    pub target: TargetId,
    /// Who holds it.
    pub holder: Holder,
    /// When it was first taken.
    pub acquired_at: DateTime<Utc>,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
    /// The fencing token: it grows with every acquisition by another transaction (a new
    /// lease, a lease taken over, a lease taken after it was given back), so a holder whose
    /// token is no longer the store's knows that someone else has had the target since. The
    /// same transaction taking its own lease again (a resume) keeps it. Leases written
    /// before tokens existed read as 0.
    #[serde(default)]
    pub token: u64,
}

impl Lease {
    /// Whether the lease has lapsed at `now`.
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// When a lease taken or renewed at `now` for `ttl` lapses.
    pub fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
        now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(365))
    }
}

/// The rule every [`LockManager::acquire`] follows, given what its store holds: `held`
/// (the lease there, if one is held) and `last_token` (the token of the last lease there,
/// held or given back; 0 if none ever was). Returns the new lease's token and when it was
/// first taken:
///
/// - held by `holder`'s own transaction: its lease again (same token, first taken then);
/// - held by another transaction, unexpired: [`Error::Locked`] naming that holder, unless
///   `ended` says that run has ended (its process died before giving the lease back);
/// - expired, a leftover of an ended run, given back, or never taken: a new lease with
///   token `last_token + 1`, taken `now`.
pub fn claim(
    target: &TargetId,
    held: Option<&Lease>,
    last_token: u64,
    holder: &Holder,
    now: DateTime<Utc>,
    ended: impl FnOnce(&Holder) -> bool,
) -> Result<(u64, DateTime<Utc>)> {
    match held {
        Some(l) if l.holder.transaction == holder.transaction => Ok((l.token, l.acquired_at)),
        Some(l) if !l.expired_at(now) && !ended(&l.holder) => Err(Error::locked(
            target.to_string(),
            l.holder.to_string(),
            l.expires_at,
        )),
        Some(l) => {
            let why = if l.expired_at(now) {
                "taking over an expired lease"
            } else {
                "taking over the lease of a run that ended without giving it back"
            };
            tracing::warn!(target_id = %target, previous = %l.holder, "{why}");
            Ok((last_token + 1, now))
        }
        None => Ok((last_token + 1, now)),
    }
}

/// A lock manager as data: its kind and parameters, recorded in the journal's `begin`
/// record so that [`crate::resume`] locks in the same place (rebuilt through
/// [`crate::Registry::build_locks`]). Never holds credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockSpec {
    /// The kind (`"file"` for [`FileLocks`]).
    pub kind: String,
    /// Kind-specific parameters (`{"dir": ...}` for [`FileLocks`]).
    #[serde(default)]
    pub params: serde_json::Value,
}

/// Hands out expiring leases on targets.
///
/// A lease whose holder's journal says the run ended ([`Holder::run_ended`]) is a leftover
/// of a process that died before giving it back; managers should take it over at once.
#[async_trait]
pub trait LockManager: Send + Sync + fmt::Debug {
    /// This manager as data, for the journal (see [`LockSpec`]); `None` (the default) when
    /// it cannot be rebuilt from data, and then a resume uses its caller's or the default.
    fn spec(&self) -> Option<LockSpec> {
        None
    }

    /// The cloud permissions its calls need ([`Permission`](crate::permission::Permission)),
    /// for `rollback policy`; `None` (the default) when it does not say, and then a policy
    /// generated for a run that holds it says it is incomplete.
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        None
    }

    /// Takes the lease on `target` for `ttl`. Fails at once with [`Error::Locked`] naming the
    /// holder when another transaction holds an unexpired lease; takes over an expired one
    /// (with a greater [`Lease::token`]); gives the same transaction its own lease again
    /// (same token, longer expiry).
    async fn acquire(&self, target: &TargetId, holder: &Holder, ttl: Duration) -> Result<Lease>;

    /// Extends a lease we hold (same holder transaction, same token); [`Error::Locked`]
    /// naming the new holder if someone else has taken it over, [`Error::LeaseLost`] if it is
    /// no longer in the store (given back, removed). Any other error means the store could
    /// not be asked; the engine tries again, and stops the run before the lease lapses.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease>;

    /// The lease on `target` as the store holds it now (expired or not), `None` when there
    /// is none: for a person asking who holds a target, and for the conformance suite.
    async fn current(&self, target: &TargetId) -> Result<Option<Lease>>;

    /// Gives the lease back (nothing happens if another transaction holds it now). Matches
    /// on the holder's transaction, not the token, so that a resume can give back the
    /// leases a dead run of the same transaction left.
    async fn release(&self, lease: &Lease) -> Result<()>;
}

/// Leases as small JSON files in a directory, one per target, guarded by an OS file lock
/// while they are read and written. Good for one machine (a bastion host, a CI runner):
/// two people on two machines, or a deploy bot on three replicas, each have their own
/// folder and both proceed; they need a lock store they share (DynamoDB, Kubernetes Leases).
/// A lease given back leaves the file holding its token, so tokens keep growing.
#[derive(Debug, Clone)]
pub struct FileLocks {
    dir: PathBuf,
}

impl FileLocks {
    /// The [`LockSpec::kind`] of file leases.
    pub const KIND: &'static str = "file";

    /// Leases under `dir` (created when needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileLocks { dir: dir.into() }
    }

    /// Rebuilds file leases from their [`LockSpec`].
    pub fn from_spec(spec: &LockSpec) -> Result<Self> {
        #[derive(Deserialize)]
        struct Params {
            dir: PathBuf,
        }
        if spec.kind != Self::KIND {
            return Err(Error::invalid(
                "locks",
                format!("lock kind {:?} is not file leases", spec.kind),
            ));
        }
        let p: Params = serde_json::from_value(spec.params.clone()).map_err(|e| {
            Error::invalid("locks", format!("file lock parameters need a \"dir\": {e}"))
        })?;
        Ok(FileLocks::new(p.dir))
    }

    /// Leases under `$ROLLBACK_LOCK_DIR`, or `rollback-locks` in the system temp directory.
    pub fn from_env() -> Self {
        let dir = std::env::var_os("ROLLBACK_LOCK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("rollback-locks"));
        FileLocks::new(dir)
    }

    /// The directory holding the lease files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of one target's lease.
    pub fn path_for(&self, target: &TargetId) -> PathBuf {
        self.dir.join(format!("{}.lease", file_stem(target)))
    }

    /// Runs `f` on the lease file's current content while holding the OS lock; `f` returns
    /// what to write and a result. A write that takes or gives back a lease is synced; a
    /// renewal is not (a crash that loses one leaves the earlier, shorter expiry).
    async fn with_file<T: Send + 'static>(
        &self,
        target: &TargetId,
        f: impl FnOnce(Stored) -> Result<(Update, T)> + Send + 'static,
    ) -> Result<T> {
        let path = self.path_for(target);
        let dir = self.dir.clone();
        let tid = target.to_string();
        tokio::task::spawn_blocking(move || {
            let io = |what: &str, e: std::io::Error| {
                Error::backend(
                    tid.clone(),
                    format!("lock file {}: {what}: {e}", path.display()),
                    false,
                )
            };
            fs::create_dir_all(&dir).map_err(|e| io("create directory", e))?;
            let mut file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io("open", e))?;
            file.lock().map_err(|e| io("lock", e))?;
            let mut text = String::new();
            file.read_to_string(&mut text).map_err(|e| io("read", e))?;
            // An unreadable lease file (torn write) counts as no lease.
            let current =
                serde_json::from_str(&text).unwrap_or(Stored::Released { released_token: 0 });
            let (write, out) = f(current)?;
            let (body, sync) = match write {
                Update::Keep => (None, false),
                Update::Renewed(l) => (Some(Stored::Held(l)), false),
                Update::Taken(l) => (Some(Stored::Held(l)), true),
                Update::Released(token) => (
                    Some(Stored::Released {
                        released_token: token,
                    }),
                    true,
                ),
            };
            if let Some(body) = body {
                let body = serde_json::to_string_pretty(&body).unwrap_or_default();
                file.set_len(0).map_err(|e| io("truncate", e))?;
                file.seek(SeekFrom::Start(0)).map_err(|e| io("seek", e))?;
                file.write_all(body.as_bytes())
                    .map_err(|e| io("write", e))?;
                if sync {
                    file.sync_data().map_err(|e| io("sync", e))?;
                }
            }
            file.unlock().map_err(|e| io("unlock", e))?;
            Ok(out)
        })
        .await
        .map_err(|e| Error::backend(target.to_string(), format!("lock task failed: {e}"), false))?
    }
}

/// What a lease file holds: a lease, or the token of the last one given back (so that
/// tokens keep growing across holders).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Held(Lease),
    Released { released_token: u64 },
}

impl Stored {
    fn last_token(&self) -> u64 {
        match self {
            Stored::Held(l) => l.token,
            Stored::Released { released_token } => *released_token,
        }
    }
}

/// What to write back to a lease file.
enum Update {
    Keep,
    Taken(Lease),
    Renewed(Lease),
    Released(u64),
}

/// A file name (or object key segment) for `target`: its id with anything but letters,
/// digits, `-` and `.` made `_`, and a short hash that keeps distinct ids with the same
/// sanitized form apart. Stable across versions: stores key their records by it.
pub fn file_stem(target: &TargetId) -> String {
    let safe: String = target
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // A short hash keeps distinct ids with the same sanitized form apart.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in target.to_string().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    format!("{safe}-{h:016x}")
}

#[async_trait]
impl LockManager for FileLocks {
    /// Local files: no cloud permission.
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        Some(Vec::new())
    }
    fn spec(&self) -> Option<LockSpec> {
        let dir = std::path::absolute(&self.dir).unwrap_or_else(|_| self.dir.clone());
        Some(LockSpec {
            kind: Self::KIND.into(),
            params: serde_json::json!({ "dir": dir }),
        })
    }

    async fn acquire(&self, target: &TargetId, holder: &Holder, ttl: Duration) -> Result<Lease> {
        let t = target.clone();
        let h = holder.clone();
        self.with_file(target, move |current| {
            let now = Utc::now();
            let held = match &current {
                Stored::Held(l) => Some(l),
                Stored::Released { .. } => None,
            };
            let (token, acquired_at) =
                claim(&t, held, current.last_token(), &h, now, Holder::run_ended)?;
            let lease = Lease {
                target: t,
                holder: h,
                acquired_at,
                expires_at: Lease::expiry(now, ttl),
                token,
            };
            Ok((Update::Taken(lease.clone()), lease))
        })
        .await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        let mine = lease.clone();
        self.with_file(&lease.target, move |current| match current {
            Stored::Held(l)
                if l.holder.transaction == mine.holder.transaction && l.token == mine.token =>
            {
                let renewed = Lease {
                    expires_at: Lease::expiry(Utc::now(), ttl),
                    ..l
                };
                Ok((Update::Renewed(renewed.clone()), renewed))
            }
            Stored::Held(l) => Err(Error::locked(
                mine.target.to_string(),
                l.holder.to_string(),
                l.expires_at,
            )),
            Stored::Released { .. } => Err(Error::lease_lost(
                mine.target.to_string(),
                "its lease file no longer holds it (given back or removed)",
            )),
        })
        .await
    }

    async fn current(&self, target: &TargetId) -> Result<Option<Lease>> {
        self.with_file(target, |current| {
            let held = match current {
                Stored::Held(l) => Some(l),
                Stored::Released { .. } => None,
            };
            Ok((Update::Keep, held))
        })
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let mine = lease.clone();
        self.with_file(&lease.target, move |current| match current {
            Stored::Held(l) if l.holder.transaction == mine.holder.transaction => {
                Ok((Update::Released(l.token), ()))
            }
            _ => Ok((Update::Keep, ())),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn holder_names_a_user_even_without_user_env() {
        let h = Holder::current("tx");
        assert!(
            h.name.contains(&format!("(pid {})", std::process::id())),
            "{h}"
        );
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(user_from_passwd().is_some());
        }
    }

    #[tokio::test]
    async fn second_holder_is_refused_with_the_holders_name() {
        let dir = tempfile::tempdir().unwrap();
        let locks = FileLocks::new(dir.path());
        let t = TargetId::new("memory", "api");
        let a = Holder {
            name: "alice@bastion".into(),
            transaction: "tx-a".into(),
            journal: None,
        };
        let b = Holder {
            name: "bob@laptop".into(),
            transaction: "tx-b".into(),
            journal: None,
        };
        let lease = locks
            .acquire(&t, &a, Duration::from_secs(60))
            .await
            .unwrap();
        let e = locks
            .acquire(&t, &b, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Locked);
        assert!(e.to_string().contains("alice@bastion"), "{e}");
        // the same transaction may take its own lease again (resume)
        locks
            .acquire(&t, &a, Duration::from_secs(60))
            .await
            .unwrap();
        locks.release(&lease).await.unwrap();
        locks
            .acquire(&t, &b, Duration::from_secs(60))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn expired_lease_is_taken_over_and_old_holder_cannot_renew() {
        let dir = tempfile::tempdir().unwrap();
        let locks = FileLocks::new(dir.path());
        let t = TargetId::new("memory", "api");
        let a = Holder::current("tx-a");
        let b = Holder::current("tx-b");
        let old = locks.acquire(&t, &a, Duration::ZERO).await.unwrap();
        let new = locks
            .acquire(&t, &b, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(new.holder.transaction, "tx-b");
        let e = locks
            .renew(&old, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Locked);
        // releasing a lease that is no longer ours leaves the new holder's alone
        locks.release(&old).await.unwrap();
        let e = locks
            .acquire(&t, &a, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Locked);
        let renewed = locks.renew(&new, Duration::from_secs(120)).await.unwrap();
        assert!(renewed.expires_at > new.expires_at);
    }

    #[tokio::test]
    async fn lease_of_a_run_whose_journal_ended_is_taken_over_at_once() {
        use crate::journal::{Entry, JournalWriter};
        use crate::transaction::Outcome;
        let dir = tempfile::tempdir().unwrap();
        let locks = FileLocks::new(dir.path().join("locks"));
        let t = TargetId::new("memory", "api");
        let journal = dir.path().join("a.jsonl");
        let a = Holder::current("tx-a").with_journal(&journal);
        let b = Holder::current("tx-b");
        let ttl = Duration::from_secs(300);
        locks.acquire(&t, &a, ttl).await.unwrap();
        // No journal yet: nothing says the run ended, so the lease holds.
        let e = locks.acquire(&t, &b, ttl).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Locked);
        // A run still going on keeps its lease.
        let w = JournalWriter::open(&journal, "tx-a").unwrap();
        w.append(Entry::Intent {
            step: 0,
            target: t.clone(),
            from: "2".into(),
            to: "1".into(),
        })
        .await
        .unwrap();
        let e = locks.acquire(&t, &b, ttl).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Locked);
        // Another transaction's end in the same file is not this run's end.
        JournalWriter::open(&journal, "tx-other")
            .unwrap()
            .append(Entry::End {
                outcome: Outcome::Succeeded,
                error: None,
                needs_attention: Vec::new(),
                duration_ms: 1,
            })
            .await
            .unwrap();
        let e = locks.acquire(&t, &b, ttl).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Locked);
        // Its end record is written: the lease is a leftover and is taken over.
        w.append(Entry::End {
            outcome: Outcome::Succeeded,
            error: None,
            needs_attention: Vec::new(),
            duration_ms: 1,
        })
        .await
        .unwrap();
        let lease = locks.acquire(&t, &b, ttl).await.unwrap();
        assert_eq!(lease.holder.transaction, "tx-b");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_holder_journal_that_is_a_named_pipe_neither_blocks_nor_frees_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("pipe");
        let st = std::process::Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap();
        assert!(st.success());
        let locks = FileLocks::new(dir.path().join("locks"));
        let t = TargetId::new("memory", "api");
        let a = Holder::current("tx-a").with_journal(&pipe);
        let ttl = Duration::from_secs(300);
        locks.acquire(&t, &a, ttl).await.unwrap();
        let e = locks
            .acquire(&t, &Holder::current("tx-b"), ttl)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Locked);
    }

    #[test]
    fn file_locks_round_trip_through_their_spec() {
        let locks = FileLocks::new("relative/locks");
        let spec = locks.spec().unwrap();
        assert_eq!(spec.kind, "file");
        let back = FileLocks::from_spec(&spec).unwrap();
        assert!(back.dir().is_absolute(), "{:?}", back.dir());
        assert!(back.dir().ends_with("relative/locks"));
        let e = FileLocks::from_spec(&LockSpec {
            kind: "file".into(),
            params: serde_json::json!({}),
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
