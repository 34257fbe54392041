//! The one error type of the library, by what went wrong.
//!
//! Every variant names the target it is about (`kind/name`, or `transaction` when the
//! problem is not about one target) and reads as a sentence a person can act on.
//! Backends convert their private errors into these variants; the original error is kept
//! as the `source` where there is one.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A boxed error from a backend, kept as the `source` of [`Error::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a rollback, by what went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target, or the revision asked for, does not exist.
    #[error("{target}: {what} not found; {hint}")]
    NotFound {
        /// The target (`kind/name`).
        target: String,
        /// What was looked for, e.g. `revision "17"`.
        what: String,
        /// What the user can do about it.
        hint: String,
    },
    /// The request cannot be carried out as given; nothing was changed.
    #[error("{target}: invalid input: {message}")]
    InvalidInput {
        /// The target (`kind/name`).
        target: String,
        /// What is wrong and what to do instead.
        message: String,
    },
    /// The target changed under us (between preflight and apply, or during compensation).
    #[error("{target}: conflict: expected revision {expected:?} but found {found:?}; someone else changed it, review the target and plan again")]
    Conflict {
        /// The target (`kind/name`).
        target: String,
        /// The revision we planned from.
        expected: String,
        /// The revision found.
        found: String,
    },
    /// Another transaction holds the target's lease.
    #[error("{target}: locked by {holder} until {expires_at}; wait for it to finish or for the lease to expire")]
    Locked {
        /// The target (`kind/name`).
        target: String,
        /// Who holds the lease.
        holder: String,
        /// When the lease expires unless renewed.
        expires_at: DateTime<Utc>,
    },
    /// The backend asked us to slow down. Retryable.
    #[error("{target}: throttled by the backend: {message}")]
    Throttled {
        /// The target (`kind/name`).
        target: String,
        /// The backend's message.
        message: String,
        /// How long the backend asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// A wait did not finish within its deadline.
    #[error("{target}: timed out after {waited:?} waiting for {what}; last seen: {last}")]
    Timeout {
        /// The target (`kind/name`).
        target: String,
        /// What we were waiting for.
        what: String,
        /// How long we waited.
        waited: Duration,
        /// The last progress message seen.
        last: String,
    },
    /// The target reached a state it will not recover from by waiting
    /// (ECS circuit breaker, Kubernetes progress deadline, RDS incompatible-restore).
    #[error("{target}: rollout failed: {message}")]
    RolloutFailed {
        /// The target (`kind/name`).
        target: String,
        /// What the backend reported.
        message: String,
    },
    /// A verifier did not pass.
    #[error("{target}: verification {check:?} failed: {evidence}")]
    VerificationFailed {
        /// The target (`kind/name`), or `transaction` for transaction-level checks.
        target: String,
        /// The check's name.
        check: String,
        /// What the check saw.
        evidence: String,
    },
    /// The backend failed in a way not covered above.
    #[error("{target}: backend error: {message}")]
    Backend {
        /// The target (`kind/name`).
        target: String,
        /// The backend's message.
        message: String,
        /// Whether trying again may help (5xx, connection reset).
        retryable: bool,
        /// The backend's own error.
        #[source]
        source: Option<BoxError>,
    },
    /// The journal could not be written or read.
    #[error("journal {path}: {message}")]
    Journal {
        /// The journal file.
        path: String,
        /// What went wrong.
        message: String,
        /// The I/O or parse error.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// Whether the operation may succeed if tried again (throttling, transient backend failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Throttled { .. } => true,
            Error::Backend { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The target this error is about (`kind/name`), or the journal path.
    pub fn target(&self) -> &str {
        match self {
            Error::NotFound { target, .. }
            | Error::InvalidInput { target, .. }
            | Error::Conflict { target, .. }
            | Error::Locked { target, .. }
            | Error::Throttled { target, .. }
            | Error::Timeout { target, .. }
            | Error::RolloutFailed { target, .. }
            | Error::VerificationFailed { target, .. }
            | Error::Backend { target, .. } => target,
            Error::Journal { path, .. } => path,
        }
    }

    /// A short stable name of the variant, used in journals, events and bindings.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Locked { .. } => ErrorKind::Locked,
            Error::Throttled { .. } => ErrorKind::Throttled,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::RolloutFailed { .. } => ErrorKind::RolloutFailed,
            Error::VerificationFailed { .. } => ErrorKind::VerificationFailed,
            Error::Backend { .. } => ErrorKind::Backend,
            Error::Journal { .. } => ErrorKind::Journal,
        }
    }

    /// How long the backend asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(
        target: impl Into<String>,
        what: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::NotFound {
            target: target.into(),
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(target: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            target: target.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Backend`] without a source.
    pub fn backend(target: impl Into<String>, message: impl Into<String>, retryable: bool) -> Self {
        Error::Backend {
            target: target.into(),
            message: message.into(),
            retryable,
            source: None,
        }
    }

    /// A plain-data copy of this error for journals, reports and events.
    pub fn record(&self) -> ErrorRecord {
        ErrorRecord {
            kind: self.kind(),
            target: self.target().to_string(),
            message: self.to_string(),
            retryable: self.is_retryable(),
        }
    }

    /// Rebuilds an error from its journal record (the source error is not kept).
    pub fn from_record(record: &ErrorRecord) -> Self {
        let target = record.target.clone();
        let message = record.message.clone();
        match record.kind {
            ErrorKind::NotFound => Error::not_found(target, message, "see the journal"),
            ErrorKind::InvalidInput => Error::invalid(target, message),
            ErrorKind::Conflict => Error::Conflict {
                target,
                expected: String::new(),
                found: message,
            },
            ErrorKind::Timeout => Error::Timeout {
                target,
                what: "a state recorded in the journal".into(),
                waited: Duration::ZERO,
                last: message,
            },
            ErrorKind::RolloutFailed => Error::RolloutFailed { target, message },
            ErrorKind::VerificationFailed => Error::VerificationFailed {
                target,
                check: "recorded".into(),
                evidence: message,
            },
            ErrorKind::Journal => Error::Journal {
                path: target,
                message,
                source: None,
            },
            _ => Error::backend(target, message, record.retryable),
        }
    }
}

/// The variant of an [`Error`] as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::InvalidInput`].
    InvalidInput,
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::Locked`].
    Locked,
    /// See [`Error::Throttled`].
    Throttled,
    /// See [`Error::Timeout`].
    Timeout,
    /// See [`Error::RolloutFailed`].
    RolloutFailed,
    /// See [`Error::VerificationFailed`].
    VerificationFailed,
    /// See [`Error::Backend`].
    Backend,
    /// See [`Error::Journal`].
    Journal,
}

/// An error as plain data: what journals, reports and events carry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorRecord {
    /// Which variant.
    pub kind: ErrorKind,
    /// The target (`kind/name`).
    pub target: String,
    /// The full message.
    pub message: String,
    /// Whether it was retryable.
    pub retryable: bool,
}

impl std::fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_only_for_throttling_and_transient_backend_errors() {
        assert!(Error::Throttled {
            target: "t".into(),
            message: "slow down".into(),
            retry_after: None
        }
        .is_retryable());
        assert!(Error::backend("t", "503", true).is_retryable());
        assert!(!Error::backend("t", "400", false).is_retryable());
        assert!(!Error::invalid("t", "bad").is_retryable());
        assert!(!Error::not_found("t", "x", "y").is_retryable());
    }

    #[test]
    fn messages_name_the_target_and_what_to_do() {
        let e = Error::Locked {
            target: "memory/api".into(),
            holder: "alice@host".into(),
            expires_at: Utc::now(),
        };
        let s = e.to_string();
        assert!(s.starts_with("memory/api: locked by alice@host"), "{s}");
        assert!(s.contains("wait for it"), "{s}");
        assert_eq!(e.record().kind, ErrorKind::Locked);
        assert_eq!(e.target(), "memory/api");
    }
}
