//! The append-only journal: one JSON line per transition, flushed to disk before and after
//! every mutation, so a crashed run can be resumed and every run audited.
//!
//! The journal holds revision ids, facts and redacted diffs, never secret values.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorRecord, Result};
use crate::lock::Holder;
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
pub enum Entry {
    /// The transaction as asked for.
    Begin {
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
    /// An on-failure action ran.
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
}

impl Entry {
    /// The record's name as written in the journal (`begin`, `intent`, `applied`...).
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("record").and_then(|r| r.as_str()).map(str::to_string))
            .unwrap_or_default()
    }
}

/// Appends records to a journal file, flushing and syncing each one.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    transaction: String,
    inner: Mutex<(Option<File>, u64)>,
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
        let seq = if path.exists() {
            read_journal(&path)?.last().map(|r| r.seq).unwrap_or(0)
        } else {
            0
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| journal_err(&path, "open", e))?;
        Ok(JournalWriter {
            path,
            transaction: transaction.into(),
            inner: Mutex::new((Some(file), seq)),
        })
    }

    /// A writer that keeps nothing (dry runs): records are numbered but not written.
    pub fn disabled(path: impl Into<PathBuf>, transaction: impl Into<String>) -> Self {
        JournalWriter {
            path: path.into(),
            transaction: transaction.into(),
            inner: Mutex::new((None, 0)),
        }
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it to disk before returning.
    pub fn append(&self, entry: Entry) -> Result<Record> {
        let mut guard = self.inner.lock().map_err(|_| Error::Journal {
            path: self.path.display().to_string(),
            message: "journal lock poisoned by a panic".into(),
            source: None,
        })?;
        let (file, seq) = &mut *guard;
        *seq += 1;
        let record = Record {
            seq: *seq,
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
        let Some(file) = file else {
            return Ok(record);
        };
        file.write_all(line.as_bytes())
            .and_then(|_| file.flush())
            .and_then(|_| file.sync_data())
            .map_err(|e| journal_err(&self.path, "write", e))?;
        Ok(record)
    }
}

fn journal_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Journal {
        path: path.display().to_string(),
        message: format!("cannot {what}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// Reads every record of a journal file. A torn last line (the process died while writing
/// it) is ignored; a bad line elsewhere is an error naming its line number.
pub fn read_journal(path: impl AsRef<Path>) -> Result<Vec<Record>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| journal_err(path, "open", e))?;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<std::io::Result<_>>()
        .map_err(|e| journal_err(path, "read", e))?;
    let mut out = Vec::with_capacity(lines.len());
    let last = lines.len();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == last => {
                tracing::warn!(path = %path.display(), "ignoring a torn last journal line");
            }
            Err(e) => {
                return Err(Error::Journal {
                    path: path.display().to_string(),
                    message: format!("line {} is not a journal record: {e}", i + 1),
                    source: Some(Box::new(e)),
                })
            }
        }
    }
    Ok(out)
}

/// The default journal directory: `$ROLLBACK_JOURNAL_DIR`, or `.rollback/journal` under the
/// current directory.
pub fn default_dir() -> PathBuf {
    std::env::var_os("ROLLBACK_JOURNAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".rollback").join("journal"))
}
