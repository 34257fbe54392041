//! The append-only journal: one JSON line per transition, flushed to disk before and after
//! every mutation, so a crashed run can be resumed and every run audited.
//!
//! The journal holds revision ids, facts and redacted diffs, never secret values.
//!
//! A journal path must be a regular file or not exist yet: a device (`/dev/zero`), a named
//! pipe or a directory is refused with [`Error::Journal`] before it is opened for reading
//! (a named pipe would block, `/dev/zero` never ends). Reads are bounded: a journal larger
//! than [`MAX_JOURNAL_BYTES`] or with a line longer than [`MAX_LINE_BYTES`] is refused.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorRecord, Result};
use crate::events::EventKind;
use crate::lock::{Holder, LockSpec};
use crate::revision::Change;
use crate::selector::Selector;
use crate::target::{ApplyOutcome, TargetId, TargetSpec};
use crate::transaction::{Attention, FailurePolicy, Outcome};
use crate::verify::CheckSpec;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1, 2, 3... within the file.
    pub seq: u64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// The transaction id.
    pub transaction: String,
    /// What happened.
    #[serde(flatten)]
    pub entry: Entry,
}

/// A step as it was asked for, before preflight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// The step index (the order steps were added).
    pub step: usize,
    /// The stage it belongs to.
    pub stage: usize,
    /// The target.
    pub target: TargetId,
    /// The target as data.
    pub spec: TargetSpec,
    /// The selector asked for.
    pub selector: Selector,
    /// Whether a target already at the revision is accepted (skipped).
    pub allow_current: bool,
    /// Whether the step is put back once the stages are done.
    #[serde(default)]
    pub temporary: bool,
    /// The step's checks.
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// How long to wait for stability, in milliseconds.
    pub timeout_ms: u64,
}

/// What a journal line records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
#[non_exhaustive]
// `Begin` is the large one, and there is one per run: entries are made, written and read
// one at a time, never held by the thousand, so boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Entry {
    /// The transaction as asked for.
    Begin {
        /// The journal format this transaction's records follow, `major.minor` ([`FORMAT`];
        /// `1.0` in journals written before it was recorded). A reader refuses a major
        /// version newer than its own instead of misreading it.
        #[serde(default = "format_before_versions")]
        format: String,
        /// Its name.
        name: String,
        /// Why it runs.
        reason: Option<String>,
        /// Who runs it.
        holder: Holder,
        /// The failure policy.
        policy: FailurePolicy,
        /// Whether this is a dry run.
        dry_run: bool,
        /// Steps in a stage run at most this many at once.
        concurrency: usize,
        /// The steps.
        steps: Vec<StepSpec>,
        /// The transaction's own checks.
        checks: Vec<CheckSpec>,
        /// The names of the on-failure actions.
        on_failure: Vec<String>,
        /// The names of the on-success actions (absent before format 1.3).
        #[serde(default)]
        on_success: Vec<String>,
        /// How a resume rebuilds the actions that can describe themselves
        /// ([`AfterAction::spec`](crate::transaction::AfterAction::spec): a registered
        /// action kind and its parameters, never secrets), by name: those run on failure,
        /// then those run on success. Absent before format 1.3 and when none can.
        #[serde(default, skip_serializing_if = "ActionSpecs::is_empty")]
        action_specs: ActionSpecs,
        /// The lock manager the run used (from [`crate::LockManager::spec`]; never
        /// credentials), so that a resume locks in the same place. Absent in older journals
        /// and for lock managers that cannot describe themselves.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        locks: Option<LockSpec>,
    },
    /// Preflight passed; one change per step (a skipped step's change is a no-op).
    Planned {
        /// The changes, by step index.
        changes: Vec<Change>,
        /// Steps whose target already was at the revision.
        skipped: Vec<usize>,
    },
    /// Every target's lease is held.
    Locked {
        /// The targets.
        targets: Vec<TargetId>,
    },
    /// A resumed run took over.
    Resumed {
        /// Who resumed it.
        holder: Holder,
    },
    /// About to apply (written and flushed before the backend call).
    Intent {
        /// The step.
        step: usize,
        /// The target.
        target: TargetId,
        /// From revision id.
        from: String,
        /// To revision id.
        to: String,
    },
    /// The backend call returned (written and flushed right after).
    Applied {
        /// The step.
        step: usize,
        /// The target.
        target: TargetId,
        /// Whether anything was sent.
        outcome: ApplyOutcome,
        /// How long the call took.
        duration_ms: u64,
    },
    /// The target is stable at the revision.
    Stable {
        /// The step.
        step: usize,
        /// The target.
        target: TargetId,
        /// How long the wait took.
        duration_ms: u64,
    },
    /// A check finished (step-level when `step` is set, else transaction-level).
    Checked {
        /// The step, if a step check.
        step: Option<usize>,
        /// The check's name.
        check: String,
        /// Whether it passed.
        passed: bool,
        /// Attempts made.
        attempts: u32,
        /// What it saw.
        evidence: String,
    },
    /// Every check of a step passed: the step is done.
    StepVerified {
        /// The step.
        step: usize,
        /// The target.
        target: TargetId,
    },
    /// About to put a temporary step's target back (written before the backend call).
    RevertIntent {
        /// The step.
        step: usize,
        /// The target.
        target: TargetId,
        /// From revision id.
        from: String,
        /// To revision id (the captured one).
        to: String,
    },
    /// A temporary step's target is back at its captured revision and stable.
    Reverted {
        /// The step.
        step: usize,
        /// The target.
        target: TargetId,
        /// Whether anything was sent.
        outcome: ApplyOutcome,
        /// How long it took.
        duration_ms: u64,
    },
    /// A step failed.
    StepFailed {
        /// The step.
        step: usize,
        /// The target.
        target: TargetId,
        /// Whether the target may have been changed by this step.
        maybe_applied: bool,
        /// The error.
        error: ErrorRecord,
    },
    /// The transaction's own checks failed.
    ChecksFailed {
        /// The error.
        error: ErrorRecord,
    },
    /// About to put a target back (written before the backend call).
    CompensateIntent {
        /// The step.
        step: usize,
        /// The target.
        target: TargetId,
        /// From revision id.
        from: String,
        /// To revision id (the captured one).
        to: String,
    },
    /// The target is back at its captured revision and stable.
    Compensated {
        /// The step.
        step: usize,
        /// The target.
        target: TargetId,
        /// Whether anything was sent.
        outcome: ApplyOutcome,
        /// How long it took.
        duration_ms: u64,
    },
    /// Putting the target back failed.
    CompensationFailed {
        /// The step.
        step: usize,
        /// The target.
        target: TargetId,
        /// The error.
        error: ErrorRecord,
    },
    /// An on-failure or on-success action is about to run (written before it runs; its
    /// outcome is the `action` record that follows). A resume runs again an action whose
    /// intent has no outcome, and never one whose outcome is journaled.
    ActionIntent {
        /// Its name.
        name: String,
        /// Why it runs.
        when: crate::transaction::ActionWhen,
    },
    /// An action ran (an on-failure or on-success action, after its `action_intent`), or a
    /// notification was sent.
    Action {
        /// Its name.
        name: String,
        /// Whether it succeeded.
        ok: bool,
        /// What it said.
        message: String,
    },
    /// The transaction ended.
    End {
        /// The outcome.
        outcome: Outcome,
        /// The error that ended it, if any.
        error: Option<ErrorRecord>,
        /// What a person must look at.
        needs_attention: Vec<Attention>,
        /// How long the whole run took.
        duration_ms: u64,
    },
    /// The run stopped on request ([`crate::Interrupt`]) before it ended: steps not yet
    /// started were left alone, nothing was put back. A resume goes on from here.
    Interrupted {
        /// How long the run had taken.
        duration_ms: u64,
    },
    /// The leases were given back after the end (a journal that ended without this record
    /// may still hold leases; [`crate::resume`] releases them).
    Released {
        /// The targets whose leases were given back.
        targets: Vec<TargetId>,
    },
}

impl Entry {
    /// The record's name as written in the journal (`begin`, `intent`, `applied`...).
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("record").and_then(|r| r.as_str()).map(str::to_string))
            .unwrap_or_default()
    }

    /// The step a record is about, if any (a transaction-level check's `checked` is about
    /// none).
    pub fn step(&self) -> Option<usize> {
        match self {
            Entry::Intent { step, .. }
            | Entry::Applied { step, .. }
            | Entry::Stable { step, .. }
            | Entry::StepVerified { step, .. }
            | Entry::RevertIntent { step, .. }
            | Entry::Reverted { step, .. }
            | Entry::StepFailed { step, .. }
            | Entry::CompensateIntent { step, .. }
            | Entry::Compensated { step, .. }
            | Entry::CompensationFailed { step, .. } => Some(*step),
            Entry::Checked { step, .. } => *step,
            _ => None,
        }
    }

    /// The [`Event`](crate::Event) a run raises when it records this entry, if any: each
    /// transition is journaled first, then announced with this kind (see the
    /// [`transaction`](crate::transaction) module). `intent` and `released` raise none (a
    /// step's start is the progress event `step_started`), and a failed `checked` none (its
    /// attempts were `check_failed` progress events); `planned` raises one `planned` event
    /// per step.
    pub fn event_kind(&self) -> Option<EventKind> {
        Some(match self {
            Entry::Begin { .. } | Entry::Resumed { .. } => EventKind::Started,
            Entry::Planned { .. } => EventKind::Planned,
            Entry::Locked { .. } => EventKind::Locked,
            Entry::Intent { .. } | Entry::Released { .. } => return None,
            Entry::Applied { .. } => EventKind::Applied,
            Entry::Stable { .. } => EventKind::Stable,
            Entry::Checked { passed, .. } => {
                if !passed {
                    return None;
                }
                EventKind::CheckPassed
            }
            Entry::StepVerified { .. } => EventKind::Verified,
            Entry::RevertIntent { .. } => EventKind::Reverting,
            Entry::Reverted { .. } => EventKind::Reverted,
            Entry::StepFailed { .. }
            | Entry::ChecksFailed { .. }
            | Entry::CompensationFailed { .. } => EventKind::Failed,
            Entry::CompensateIntent { .. } => EventKind::Compensating,
            Entry::Compensated { .. } => EventKind::Compensated,
            Entry::ActionIntent { .. } => EventKind::ActionStarted,
            Entry::Action { .. } => EventKind::Action,
            Entry::Interrupted { .. } => EventKind::Interrupted,
            Entry::End { .. } => EventKind::Finished,
        })
    }
}

/// Appends records to a journal file; [`append`](Self::append) returns once its record is
/// on disk (written and synced).
///
/// Records appended while a sync is under way are written together by the next one (group
/// commit): a thousand steps recording their transitions at once cost a few syncs, not a
/// thousand, and the file still holds every record in sequence order.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    transaction: String,
    /// Where every batch is also written before its appenders hear it is durable.
    store: Option<Arc<dyn JournalStore>>,
    state: Arc<Mutex<Pending>>,
    /// Held by whoever writes and syncs a batch, until the sync is done (even when the
    /// appender that started it is cancelled), so batches land in order.
    flush: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Default)]
struct Pending {
    file: Option<Arc<File>>,
    /// The last sequence number handed out.
    seq: u64,
    /// Encoded records not written yet, in sequence order.
    lines: Vec<u8>,
    /// Every record up to this sequence number is on disk.
    durable: u64,
    /// Batches whose write failed: their first and last sequence numbers, and why.
    lost: Vec<(u64, u64, String)>,
    /// How many batches were written and synced.
    syncs: u64,
}

impl JournalWriter {
    /// Opens (or creates) the journal file for appending; `seq` continues after the last
    /// record already in the file.
    pub fn open(path: impl AsRef<Path>, transaction: impl Into<String>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| journal_err(&path, "create directory", e))?;
        }
        let seq = if check_path(&path)? {
            read_journal(&path)?.last().map(|r| r.seq).unwrap_or(0)
        } else {
            0
        };
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        let file = open_regular(&path, &mut options)?;
        Ok(Self::with(
            path,
            transaction.into(),
            Pending {
                file: Some(Arc::new(file)),
                seq,
                durable: seq,
                ..Pending::default()
            },
        ))
    }

    /// A writer that keeps nothing (dry runs): records are numbered but not written.
    pub fn disabled(path: impl Into<PathBuf>, transaction: impl Into<String>) -> Self {
        Self::with(path.into(), transaction.into(), Pending::default())
    }

    fn with(path: PathBuf, transaction: String, pending: Pending) -> Self {
        JournalWriter {
            path,
            transaction,
            store: None,
            state: Arc::new(Mutex::new(pending)),
            flush: Arc::default(),
        }
    }

    /// The same writer, also writing every batch of records to `store` (as one object
    /// named by its first sequence number, written only if none of that name exists)
    /// before an append returns: a record is durable once it is in the file and the store.
    pub fn with_store(mut self, store: Arc<dyn JournalStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, Pending>> {
        self.state.lock().map_err(|_| {
            Error::journal(
                self.path.display().to_string(),
                "journal lock poisoned by a panic",
            )
        })
    }

    /// Appends one record and returns once it is synced to disk (with any others appended
    /// meanwhile).
    pub async fn append(&self, entry: Entry) -> Result<Record> {
        let (record, mine) = {
            let mut st = self.state()?;
            let record = Record {
                seq: st.seq + 1,
                at: Utc::now(),
                transaction: self.transaction.clone(),
                entry,
            };
            let mut line = serde_json::to_string(&record).map_err(|e| Error::Journal {
                path: self.path.display().to_string(),
                message: format!("cannot encode record: {e}"),
                source: Some(Box::new(e)),
            })?;
            line.push('\n');
            st.seq = record.seq;
            if st.file.is_none() {
                return Ok(record);
            }
            st.lines.extend_from_slice(line.as_bytes());
            let mine = record.seq;
            (record, mine)
        };
        let turn = self.flush.clone().lock_owned().await;
        let (file, batch, upto, from) = {
            let st = &mut *self.state()?;
            if let Some((_, _, why)) = st.lost.iter().find(|(a, b, _)| (*a..=*b).contains(&mine)) {
                return Err(Error::journal(
                    self.path.display().to_string(),
                    format!("cannot write: {why}"),
                ));
            }
            if st.durable >= mine {
                return Ok(record);
            }
            let Some(file) = st.file.clone() else {
                return Ok(record);
            };
            (file, std::mem::take(&mut st.lines), st.seq, st.durable + 1)
        };
        let state = self.state.clone();
        let store = self.store.clone();
        let (tx, path) = (self.transaction.clone(), self.path.clone());
        // The batch is written off the async threads, then to the store if there is one;
        // the turn is given back when both are done, whether or not this appender is still
        // waiting for it.
        let written = tokio::spawn(async move {
            let local = batch.clone();
            let mut result = tokio::task::spawn_blocking(move || {
                (&*file)
                    .write_all(&local)
                    .and_then(|_| file.sync_data())
                    .map_err(|e| journal_err(&path, "write", e))
            })
            .await
            .unwrap_or_else(|e| {
                Err(Error::journal(
                    "journal",
                    format!("the write was cancelled: {e}"),
                ))
            });
            if let (Ok(()), Some(store)) = (&result, &store) {
                result = put_in_store(&**store, &tx, from, &batch).await;
            }
            if let Ok(mut st) = state.lock() {
                match &result {
                    Ok(()) => st.syncs += 1,
                    // What went wrong, without the journal's name (the error carries it).
                    Err(Error::Journal { message, .. }) => {
                        st.lost.push((from, upto, message.clone()))
                    }
                    Err(e) => st.lost.push((from, upto, e.to_string())),
                }
                st.durable = upto;
            }
            drop(turn);
            result
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(record),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(Error::journal(
                self.path.display().to_string(),
                format!("the write was cancelled: {e}"),
            )),
        }
    }
}

/// Writes a batch to the store, trying again with backoff while the store fails
/// transiently; another writer's object under the same sequence number is an error
/// (two processes are writing this transaction).
async fn put_in_store(store: &dyn JournalStore, tx: &str, from: u64, batch: &[u8]) -> Result<()> {
    let put = || async {
        match store.put(tx, from, batch).await? {
            true => Ok(()),
            false => Err(Error::journal(
                store.describe(),
                format!(
                    "record {from} of transaction {tx} is already there: another process is writing this transaction's journal; stop one of them"
                ),
            )),
        }
    };
    crate::wait::RetryPolicy::default()
        .run(put, |n, e, d| {
            tracing::warn!(error = %e, attempt = n + 1, "journal store write failed; trying again in {d:.1?}")
        })
        .await
}

/// Where journals are kept beyond the machine that runs (S3: `rollback_aws::S3Journals`),
/// so that a run whose machine died is finished from another
/// ([`crate::transaction::resume_from_store`]). Each transaction's records are kept as
/// objects named by the sequence number of their first record, each holding JSON lines
/// exactly as the journal file does; reading them in order gives the file back.
#[async_trait::async_trait]
pub trait JournalStore: Send + Sync + std::fmt::Debug {
    /// Where it is, for people (`s3://bucket/prefix`).
    fn describe(&self) -> String;

    /// The cloud permissions its calls need ([`Permission`](crate::permission::Permission)),
    /// for `rollback policy`; `None` (the default) when it does not say, and then a policy
    /// generated for a run that holds it says it is incomplete.
    fn permissions(&self) -> Option<Vec<crate::permission::Permission>> {
        None
    }

    /// Writes records `from`.. of `transaction` (JSON lines) as one object, only if no
    /// object for `from` exists: `Ok(false)` when one does (another writer got there first).
    async fn put(&self, transaction: &str, from: u64, lines: &[u8]) -> Result<bool>;

    /// Every record of `transaction`, as the journal file's bytes (empty if it has none).
    async fn read(&self, transaction: &str) -> Result<Vec<u8>>;

    /// The ids of the transactions it holds.
    async fn transactions(&self) -> Result<Vec<String>>;
}

fn journal_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Journal {
        path: path.display().to_string(),
        message: format!("cannot {what}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// The specs of a run's self-describing actions, by name ([`Entry::Begin`]'s
/// `action_specs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionSpecs {
    /// The on-failure actions'.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on_failure: BTreeMap<String, TargetSpec>,
    /// The on-success actions'.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on_success: BTreeMap<String, TargetSpec>,
}

impl ActionSpecs {
    /// No spec at all.
    pub fn is_empty(&self) -> bool {
        self.on_failure.is_empty() && self.on_success.is_empty()
    }
}

/// The journal format this version writes: `major.minor`. A minor version adds what older
/// readers may ignore; a major version changes what records mean, and readers of an older
/// major refuse it ([`read_journal`]); records of a kind a reader does not know are skipped
/// (readers before 1.2 refuse them). 1.1 recorded the format and the lock manager; 1.2
/// added `interrupted`; 1.3 added `action_intent` and `begin`'s `on_success` and
/// `action_specs`.
pub const FORMAT: &str = "1.3";

fn format_before_versions() -> String {
    "1.0".into()
}

/// The major version of a `major.minor` format.
fn major(format: &str) -> Option<u64> {
    format.split('.').next()?.trim().parse().ok()
}

/// Why a `begin` record of format `found` cannot be read by this version, if it cannot.
fn unreadable_format(found: &str) -> Option<String> {
    let ours = major(FORMAT).unwrap_or(1);
    match major(found) {
        Some(m) if m <= ours => None,
        Some(_) => Some(format!(
            "it was written in journal format {found} by a newer rollback, and this one reads format {ours}.x; read it with that newer version"
        )),
        None => Some(format!("its journal format {found:?} is not a version (major.minor)")),
    }
}

/// The format of a line that is a `begin` record, read without reading the rest of it.
fn begin_format(line: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        record: Option<String>,
        format: Option<String>,
    }
    if !line.windows(7).any(|w| w == b"\"begin\"") {
        return None;
    }
    let p: Probe = serde_json::from_slice(line).ok()?;
    (p.record.as_deref() == Some("begin")).then(|| p.format.unwrap_or_else(format_before_versions))
}

/// The largest journal [`read_journal`] reads: 64 MiB (a run of a hundred steps writes a
/// few hundred KiB).
pub const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// The longest journal line [`read_journal`] accepts: 1 MiB.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// How much of the end of a journal [`ended`] reads: 64 KiB.
const TAIL_BYTES: u64 = 64 * 1024;

fn not_regular(path: &Path, what: &str) -> Error {
    Error::journal(
        path.display().to_string(),
        format!(
            "is {what}, not a regular file; give the path of a journal file (or of one to create)"
        ),
    )
}

fn describe(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a named pipe";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else {
        "something else"
    }
}

/// Checks that a journal path is usable without opening it: `Ok(true)` for a regular file,
/// `Ok(false)` when nothing is there yet, [`Error::Journal`] for anything else (a device, a
/// named pipe, a directory). Symbolic links are followed.
pub fn check_path(path: impl AsRef<Path>) -> Result<bool> {
    let path = path.as_ref();
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(true),
        Ok(m) => Err(not_regular(path, describe(m.file_type()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(journal_err(path, "inspect", e)),
    }
}

/// Opens a journal path with `options` only if it is a regular file (or is created as one):
/// checked before opening, opened non-blocking (a named pipe swapped in meanwhile cannot
/// block the open), and checked again on the open file.
/// Appends `line` and a newline to the JSON-lines file at `path` (its folder made if
/// missing), synced before it returns; a path that is not a regular file (a device, a named
/// pipe) is refused as the journal's is. The decision log of a watch and the drill history
/// are written with it.
pub(crate) fn append_line(path: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| journal_err(path, "create directory", e))?;
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    let mut file = open_regular(path, &mut options)?;
    writeln!(file, "{line}")
        .and_then(|()| file.sync_data())
        .map_err(|e| journal_err(path, "append", e))
}

/// The text of the JSON-lines file at `path`, `None` when there is none; refused as
/// [`append_line`] refuses.
pub(crate) fn read_lines(path: &Path) -> Result<Option<String>> {
    if !check_path(path)? {
        return Ok(None);
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| journal_err(path, "read", e))
}

fn open_regular(path: &Path, options: &mut OpenOptions) -> Result<File> {
    check_path(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| journal_err(path, "open", e))?;
    let meta = file
        .metadata()
        .map_err(|e| journal_err(path, "inspect", e))?;
    if !meta.is_file() {
        return Err(not_regular(path, describe(meta.file_type())));
    }
    Ok(file)
}

/// Opens a journal for reading and reads at most [`MAX_JOURNAL_BYTES`] from `from`.
fn read_bounded(path: &Path, from: Option<u64>) -> Result<(Vec<u8>, u64)> {
    let mut file = open_regular(path, OpenOptions::new().read(true))?;
    let len = file
        .metadata()
        .map_err(|e| journal_err(path, "inspect", e))?
        .len();
    let start = match from {
        Some(tail) => len.saturating_sub(tail),
        None if len > MAX_JOURNAL_BYTES => {
            return Err(Error::journal(
                path.display().to_string(),
                format!(
                    "is larger than {MAX_JOURNAL_BYTES} bytes ({len}); it is not a rollback journal"
                ),
            ))
        }
        None => 0,
    };
    file.seek(SeekFrom::Start(start))
        .map_err(|e| journal_err(path, "seek", e))?;
    let mut bytes = Vec::new();
    // The file may grow while it is read; never read more than the cap.
    file.take(from.unwrap_or(MAX_JOURNAL_BYTES))
        .read_to_end(&mut bytes)
        .map_err(|e| journal_err(path, "read", e))?;
    Ok((bytes, start))
}

/// Reads every record of a journal file. A torn last line (the process died while writing
/// it) is ignored; a bad line elsewhere is an error naming its line number, as is a line
/// longer than [`MAX_LINE_BYTES`]. The path must be a regular file of at most
/// [`MAX_JOURNAL_BYTES`].
pub fn read_journal(path: impl AsRef<Path>) -> Result<Vec<Record>> {
    let path = path.as_ref();
    let (bytes, _) = read_bounded(path, None)?;
    parse_records(&path.display().to_string(), &bytes)
}

/// The records of a journal's bytes read from `source` (a file's path, a store's
/// location), as [`read_journal`] reads a file: every line a record, a newer major format
/// refused, a torn last line skipped.
pub fn parse_records(source: &str, bytes: &[u8]) -> Result<Vec<Record>> {
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // `split` yields an empty piece after a final newline.
    let last = lines
        .iter()
        .rposition(|l| !l.trim_ascii().is_empty())
        .map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate().take(last) {
        let bad = |message: String, cause: Option<Box<dyn std::error::Error + Send + Sync>>| {
            Error::Journal {
                path: source.to_string(),
                message,
                source: cause,
            }
        };
        if line.len() > MAX_LINE_BYTES {
            return Err(bad(
                format!(
                    "line {} is longer than {MAX_LINE_BYTES} bytes; it is not a journal record",
                    i + 1
                ),
                None,
            ));
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        let parsed = serde_json::from_slice::<Record>(line);
        if let Some(why) = begin_format(line).as_deref().and_then(unreadable_format) {
            return Err(bad(format!("line {}: {why}", i + 1), None));
        }
        match parsed {
            Ok(r) => out.push(r),
            // Only a record cut short counts as torn, not a last line of something else.
            Err(e) if i + 1 == last && e.is_eof() && line.starts_with(b"{") => {
                tracing::warn!(journal = %source, "ignoring a torn last journal line");
            }
            // A record a newer minor format added: ours have not changed, so it is skipped.
            Err(e) if e.to_string().starts_with("unknown variant") => {
                tracing::warn!(journal = %source, line = i + 1, "skipping a record this version does not know ({e})");
            }
            Err(e) => {
                let what = if std::str::from_utf8(line).is_err() {
                    "is not text".to_string()
                } else {
                    format!("is not a journal record ({e})")
                };
                return Err(bad(format!("line {} {what}", i + 1), Some(Box::new(e))));
            }
        }
    }
    Ok(out)
}

/// Whether the journal at `path` says that `transaction` has ended (its last record is an
/// `end` or `released` record), reading at most its last 64 KiB. `None` when that cannot be
/// told: no such file, not a regular file, unreadable, or no record of the transaction in
/// the tail. Lock managers use it to take over the leases of a run that ended but died
/// before giving them back.
pub fn ended(path: impl AsRef<Path>, transaction: &str) -> Option<bool> {
    let path = path.as_ref();
    let (bytes, start) = read_bounded(path, Some(TAIL_BYTES)).ok()?;
    let mut lines = bytes.split(|b| *b == b'\n');
    if start > 0 {
        // The first piece is the end of a line that began before the tail.
        lines.next();
    }
    let last = lines
        .rev()
        .filter_map(|l| serde_json::from_slice::<Record>(l).ok())
        .find(|r| r.transaction == transaction)?;
    Some(matches!(
        last.entry,
        Entry::End { .. } | Entry::Released { .. }
    ))
}

/// One transaction as a listing shows it: who ran what, why, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionSummary {
    /// The transaction id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Why it ran.
    pub reason: Option<String>,
    /// Who ran it (the holder's name).
    pub who: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// How it ended (`interrupted`: stopped on request, resume it); `None` while it runs,
    /// or if its process died (resume it).
    pub outcome: Option<crate::transaction::Outcome>,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// How long it took, once it ended (or stopped on request).
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// The summary of every transaction in `records` (a journal file may hold several), in
/// the order they began.
pub fn summarize(records: &[Record]) -> Vec<TransactionSummary> {
    let mut out: Vec<TransactionSummary> = Vec::new();
    for r in records {
        match &r.entry {
            Entry::Begin {
                name,
                reason,
                holder,
                dry_run,
                ..
            } => out.push(TransactionSummary {
                id: r.transaction.clone(),
                name: name.clone(),
                reason: reason.clone(),
                who: holder.name.clone(),
                started_at: r.at,
                outcome: None,
                dry_run: *dry_run,
                duration_ms: None,
            }),
            Entry::End {
                outcome,
                duration_ms,
                ..
            } => {
                if let Some(s) = out.iter_mut().rev().find(|s| s.id == r.transaction) {
                    s.outcome = Some(*outcome);
                    s.duration_ms = Some(*duration_ms);
                }
            }
            // Stopped on request until a resume goes on.
            Entry::Interrupted { .. } | Entry::Resumed { .. } => {
                if let Some(s) = out.iter_mut().rev().find(|s| s.id == r.transaction) {
                    (s.outcome, s.duration_ms) = match r.entry {
                        Entry::Interrupted { duration_ms } => {
                            (Some(crate::Outcome::Interrupted), Some(duration_ms))
                        }
                        _ => (None, None),
                    };
                }
            }
            _ => {}
        }
    }
    out
}

/// The transactions of every journal file (`*.jsonl`) in `dir`, newest first; files that
/// are not journals are skipped with a warning.
pub fn list_dir(dir: impl AsRef<Path>) -> Result<Vec<TransactionSummary>> {
    let dir = dir.as_ref();
    let entries = std::fs::read_dir(dir).map_err(|e| journal_err(dir, "list", e))?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        match read_journal(&path) {
            Ok(records) => out.extend(summarize(&records)),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "not a journal; skipped")
            }
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.started_at));
    Ok(out)
}

/// The transactions `store` holds, newest first.
pub async fn list_store(store: &dyn JournalStore) -> Result<Vec<TransactionSummary>> {
    let mut out = Vec::new();
    for tx in store.transactions().await? {
        let bytes = store.read(&tx).await?;
        out.extend(summarize(&parse_records(&store.describe(), &bytes)?));
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.started_at));
    Ok(out)
}

/// The default journal directory: `$ROLLBACK_JOURNAL_DIR`, or `.rollback/journal` under the
/// current directory.
pub fn default_dir() -> PathBuf {
    std::env::var_os("ROLLBACK_JOURNAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".rollback").join("journal"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn intent(step: usize) -> Entry {
        Entry::Intent {
            step,
            target: TargetId::new("memory", format!("t{step}")),
            from: "2".into(),
            to: "1".into(),
        }
    }

    #[tokio::test]
    async fn records_appended_together_share_a_sync_and_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let w = JournalWriter::open(&path, "tx").unwrap();
        let records = futures::future::join_all((0..200).map(|i| w.append(intent(i)))).await;
        let seqs: Vec<u64> = records.into_iter().map(|r| r.unwrap().seq).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
        // The first append syncs alone; the 199 queued behind it share the next sync.
        assert_eq!(w.state().unwrap().syncs, 2);
        let read: Vec<u64> = read_journal(&path).unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(read, seqs);
        // A writer opened again continues the sequence.
        let again = JournalWriter::open(&path, "tx").unwrap();
        assert_eq!(again.append(intent(0)).await.unwrap().seq, 201);
    }

    #[tokio::test]
    async fn a_disabled_writer_numbers_records_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dry.jsonl");
        let w = JournalWriter::disabled(&path, "tx");
        assert_eq!(w.append(intent(0)).await.unwrap().seq, 1);
        assert_eq!(w.append(intent(1)).await.unwrap().seq, 2);
        assert!(!path.exists());
    }
}
