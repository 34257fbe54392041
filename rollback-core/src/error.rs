//! The one error type of the library, by what went wrong.
//!
//! Every variant names the target it is about (`kind/name`, or `transaction` when the
//! problem is not about one target) and reads as a sentence a person can act on.
//! Every variant has a `source`: backends convert their private errors into these variants
//! and keep the SDK's or client's error there ([`Error::with_source`]), so the message stays
//! one sentence and the details stay reachable through [`std::error::Error::source`].
//! [`ErrorRecord`] is the plain-data form journals, reports and events carry; it keeps the
//! variant's fields, so [`Error::from_record`] rebuilds every kind exactly.

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
        /// The backend's own error, or what the journal recorded, if there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The request cannot be carried out as given; nothing was changed.
    #[error("{target}: invalid input: {message}")]
    InvalidInput {
        /// The target (`kind/name`).
        target: String,
        /// What is wrong and what to do instead.
        message: String,
        /// The backend's own error, or what the journal recorded, if there is one.
        #[source]
        source: Option<BoxError>,
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
        /// The backend's own error, or what the journal recorded, if there is one.
        #[source]
        source: Option<BoxError>,
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
        /// The backend's own error, or what the journal recorded, if there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The run's lease on the target was lost (taken over by another run, or not renewed
    /// before it lapsed): the run stopped before changing anything more. Never retried.
    #[error("{target}: this run's lease on it was lost ({reason}); the run stopped before changing anything more: check what it had changed (the report lists it) before rolling back again")]
    LeaseLost {
        /// The target (`kind/name`).
        target: String,
        /// Why: `taken over by ...`, or `not renewed since ...: <the store's error>`.
        reason: String,
        /// The lock store's error, or what the journal recorded, if there is one.
        #[source]
        source: Option<BoxError>,
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
        /// The backend's own error, or what the journal recorded, if there is one.
        #[source]
        source: Option<BoxError>,
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
        /// The backend's own error, or what the journal recorded, if there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The target reached a state it will not recover from by waiting
    /// (ECS circuit breaker, Kubernetes progress deadline, RDS incompatible-restore).
    #[error("{target}: rollout failed: {message}")]
    RolloutFailed {
        /// The target (`kind/name`).
        target: String,
        /// What the backend reported.
        message: String,
        /// The backend's own error, or what the journal recorded, if there is one.
        #[source]
        source: Option<BoxError>,
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
        /// The backend's own error, or what the journal recorded, if there is one.
        #[source]
        source: Option<BoxError>,
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
    /// The backend refused a call for want of a permission (AWS AccessDenied, Kubernetes
    /// 403 Forbidden).
    #[error("{target}: permission denied: {action} on {resource}; {hint}")]
    PermissionDenied {
        /// The target (`kind/name`).
        target: String,
        /// The permission missing: an IAM action (`lambda:UpdateAlias`) or an RBAC verb
        /// and resource (`patch deployments.apps`).
        action: String,
        /// The resource it was denied on (an ARN, `namespace/name`), as far as known.
        resource: String,
        /// What to do: the backend's words and how to grant it (`rollback policy` prints
        /// every permission a runbook needs).
        hint: String,
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
            | Error::LeaseLost { target, .. }
            | Error::Throttled { target, .. }
            | Error::Timeout { target, .. }
            | Error::RolloutFailed { target, .. }
            | Error::VerificationFailed { target, .. }
            | Error::Backend { target, .. }
            | Error::PermissionDenied { target, .. } => target,
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
            Error::LeaseLost { .. } => ErrorKind::LeaseLost,
            Error::Throttled { .. } => ErrorKind::Throttled,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::RolloutFailed { .. } => ErrorKind::RolloutFailed,
            Error::VerificationFailed { .. } => ErrorKind::VerificationFailed,
            Error::Backend { .. } => ErrorKind::Backend,
            Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
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

    /// Shorthand for [`Error::NotFound`]; add the backend's error with [`Error::with_source`].
    pub fn not_found(
        target: impl Into<String>,
        what: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::NotFound {
            target: target.into(),
            what: what.into(),
            hint: hint.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(target: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            target: target.into(),
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Conflict`].
    pub fn conflict(
        target: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Error::Conflict {
            target: target.into(),
            expected: expected.into(),
            found: found.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Locked`].
    pub fn locked(
        target: impl Into<String>,
        holder: impl Into<String>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Error::Locked {
            target: target.into(),
            holder: holder.into(),
            expires_at,
            source: None,
        }
    }

    /// Shorthand for [`Error::LeaseLost`].
    pub fn lease_lost(target: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::LeaseLost {
            target: target.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Throttled`].
    pub fn throttled(
        target: impl Into<String>,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        Error::Throttled {
            target: target.into(),
            message: message.into(),
            retry_after,
            source: None,
        }
    }

    /// Shorthand for [`Error::Timeout`].
    pub fn timeout(
        target: impl Into<String>,
        what: impl Into<String>,
        waited: Duration,
        last: impl Into<String>,
    ) -> Self {
        Error::Timeout {
            target: target.into(),
            what: what.into(),
            waited,
            last: last.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::RolloutFailed`].
    pub fn rollout_failed(target: impl Into<String>, message: impl Into<String>) -> Self {
        Error::RolloutFailed {
            target: target.into(),
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::VerificationFailed`].
    pub fn verification_failed(
        target: impl Into<String>,
        check: impl Into<String>,
        evidence: impl Into<String>,
    ) -> Self {
        Error::VerificationFailed {
            target: target.into(),
            check: check.into(),
            evidence: evidence.into(),
            source: None,
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

    /// Shorthand for [`Error::PermissionDenied`].
    pub fn permission_denied(
        target: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::PermissionDenied {
            target: target.into(),
            action: action.into(),
            resource: resource.into(),
            hint: hint.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Journal`] without a source.
    pub fn journal(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Journal {
            path: path.into(),
            message: message.into(),
            source: None,
        }
    }

    /// The same error with `source` as its [`source()`](std::error::Error::source): the backend's
    /// own error, whose details do not belong in the one-sentence message.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        *self.source_slot() = Some(source.into());
        self
    }

    fn source_slot(&mut self) -> &mut Option<BoxError> {
        match self {
            Error::NotFound { source, .. }
            | Error::InvalidInput { source, .. }
            | Error::Conflict { source, .. }
            | Error::Locked { source, .. }
            | Error::LeaseLost { source, .. }
            | Error::Throttled { source, .. }
            | Error::Timeout { source, .. }
            | Error::RolloutFailed { source, .. }
            | Error::VerificationFailed { source, .. }
            | Error::Backend { source, .. }
            | Error::PermissionDenied { source, .. }
            | Error::Journal { source, .. } => source,
        }
    }

    /// A plain-data copy of this error for journals, reports and events.
    pub fn record(&self) -> ErrorRecord {
        let ms = |d: &Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).to_string();
        let fields: Vec<(&str, String)> = match self {
            Error::NotFound { what, hint, .. } => {
                vec![("what", what.clone()), ("hint", hint.clone())]
            }
            Error::InvalidInput { message, .. }
            | Error::RolloutFailed { message, .. }
            | Error::Backend { message, .. }
            | Error::Journal { message, .. } => vec![("message", message.clone())],
            Error::Conflict {
                expected, found, ..
            } => {
                vec![("expected", expected.clone()), ("found", found.clone())]
            }
            Error::Locked {
                holder, expires_at, ..
            } => vec![
                ("holder", holder.clone()),
                ("expires_at", expires_at.to_rfc3339()),
            ],
            Error::LeaseLost { reason, .. } => vec![("reason", reason.clone())],
            Error::PermissionDenied {
                action,
                resource,
                hint,
                ..
            } => vec![
                ("action", action.clone()),
                ("resource", resource.clone()),
                ("hint", hint.clone()),
            ],
            Error::Throttled {
                message,
                retry_after,
                ..
            } => {
                let mut f = vec![("message", message.clone())];
                f.extend(retry_after.as_ref().map(|d| ("retry_after_ms", ms(d))));
                f
            }
            Error::Timeout {
                what, waited, last, ..
            } => vec![
                ("what", what.clone()),
                ("waited_ms", ms(waited)),
                ("last", last.clone()),
            ],
            Error::VerificationFailed {
                check, evidence, ..
            } => vec![("check", check.clone()), ("evidence", evidence.clone())],
        };
        ErrorRecord {
            kind: self.kind(),
            target: self.target().to_string(),
            message: self.to_string(),
            retryable: self.is_retryable(),
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }

    /// Rebuilds an error of the recorded kind from its journal record.
    ///
    /// A record written by this version rebuilds exactly: `Error::from_record(&r).record() == r`
    /// for every kind. A record without the variant's fields (written before they were kept)
    /// rebuilds with the recorded message in the variant's text. Either way the rebuilt error's
    /// `source()` is the recorded message (the original source is not kept).
    pub fn from_record(record: &ErrorRecord) -> Self {
        let target = record.target.clone();
        let field = |k: &str| record.fields.get(k).cloned();
        let text = |k: &str| field(k).unwrap_or_else(|| record.message.clone());
        let recorded = |k: &str| field(k).unwrap_or_else(|| "recorded in the journal".into());
        let millis = |k: &str| {
            field(k)
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis)
        };
        let e = match record.kind {
            ErrorKind::NotFound => Error::not_found(target, text("what"), recorded("hint")),
            ErrorKind::InvalidInput => Error::invalid(target, text("message")),
            ErrorKind::Conflict => Error::conflict(target, recorded("expected"), text("found")),
            ErrorKind::Locked => Error::locked(
                target,
                text("holder"),
                field("expires_at")
                    .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
                    .map_or(DateTime::<Utc>::UNIX_EPOCH, |t| t.with_timezone(&Utc)),
            ),
            ErrorKind::LeaseLost => Error::lease_lost(target, text("reason")),
            ErrorKind::Throttled => {
                Error::throttled(target, text("message"), millis("retry_after_ms"))
            }
            ErrorKind::Timeout => Error::timeout(
                target,
                recorded("what"),
                millis("waited_ms").unwrap_or_default(),
                text("last"),
            ),
            ErrorKind::RolloutFailed => Error::rollout_failed(target, text("message")),
            ErrorKind::VerificationFailed => {
                Error::verification_failed(target, recorded("check"), text("evidence"))
            }
            ErrorKind::Journal => Error::journal(target, text("message")),
            ErrorKind::PermissionDenied => Error::permission_denied(
                target,
                text("action"),
                recorded("resource"),
                recorded("hint"),
            ),
            ErrorKind::Backend => Error::backend(target, text("message"), record.retryable),
        };
        e.with_source(Recorded(record.message.clone()))
    }
}

/// The message of an error rebuilt from a journal record, as its source.
#[derive(Debug)]
struct Recorded(String);

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Recorded {}

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
    /// See [`Error::LeaseLost`].
    LeaseLost,
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
    /// See [`Error::PermissionDenied`].
    PermissionDenied,
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
    /// The variant's own fields as text (`what`, `hint`, `expected`, `found`, `holder`,
    /// `expires_at`, `retry_after_ms`, ...), from which [`Error::from_record`] rebuilds it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fields: std::collections::BTreeMap<String, String>,
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
            retry_after: None,
            source: None
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
            source: None,
        };
        let s = e.to_string();
        assert!(s.starts_with("memory/api: locked by alice@host"), "{s}");
        assert!(s.contains("wait for it"), "{s}");
        assert_eq!(e.record().kind, ErrorKind::Locked);
        assert_eq!(e.target(), "memory/api");
    }

    fn one_of_each_kind() -> Vec<Error> {
        let io = std::io::Error::other("connection reset by peer");
        vec![
            Error::not_found("lambda/api", "version \"9\"", "publish it first").with_source(io),
            Error::invalid("ecs/web", "desired count must be a number"),
            Error::conflict("ecs/web", "api:4", "api:5"),
            Error::Locked {
                target: "memory/api".into(),
                holder: "alice@host".into(),
                expires_at: Utc::now(),
                source: None,
            },
            Error::lease_lost("memory/api", "taken over by bob@laptop [transaction t2]"),
            Error::throttled("rds/db", "Rate exceeded", Some(Duration::from_millis(1500))),
            Error::throttled("rds/db", "Rate exceeded", None),
            Error::timeout(
                "k8s/frontend",
                "rollout",
                Duration::from_secs(90),
                "1 of 3 updated",
            ),
            Error::rollout_failed("ecs/web", "circuit breaker tripped"),
            Error::verification_failed("transaction", "health", "HTTP 503"),
            Error::backend("secret/db", "HTTP 500", true),
            Error::journal("/tmp/j.jsonl", "disk full"),
            Error::permission_denied(
                "lambda-alias/f:live",
                "lambda:UpdateAlias",
                "arn:aws:lambda:us-east-1:123456789012:function:f:live",
                "grant it",
            ),
        ]
    }

    #[test]
    fn every_kind_round_trips_through_its_record() {
        for e in one_of_each_kind() {
            let r = e.record();
            let json = serde_json::to_string(&r).expect("serialize");
            let back: ErrorRecord = serde_json::from_str(&json).expect("deserialize");
            let rebuilt = Error::from_record(&back);
            assert_eq!(rebuilt.record(), r, "{e}");
            assert_eq!(rebuilt.kind(), e.kind());
            assert_eq!(rebuilt.to_string(), e.to_string());
            assert_eq!(rebuilt.retry_after(), e.retry_after());
            let source = std::error::Error::source(&rebuilt).map(ToString::to_string);
            assert_eq!(source.as_deref(), Some(r.message.as_str()));
        }
    }

    #[test]
    fn a_record_without_fields_keeps_its_kind_and_message() {
        for e in one_of_each_kind() {
            let mut r = e.record();
            r.fields.clear();
            let rebuilt = Error::from_record(&r);
            assert_eq!(rebuilt.kind(), r.kind);
            assert_eq!(rebuilt.target(), r.target);
            assert_eq!(rebuilt.is_retryable(), r.retryable);
            let source = std::error::Error::source(&rebuilt).map(ToString::to_string);
            assert_eq!(source.as_deref(), Some(r.message.as_str()));
        }
    }

    #[test]
    fn with_source_keeps_the_cause_out_of_the_message() {
        let e = Error::conflict("ecs/web", "api:4", "api:5")
            .with_source(std::io::Error::other("ETag mismatch 0xdeadbeef"));
        assert!(!e.to_string().contains("deadbeef"), "{e}");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("ETag mismatch 0xdeadbeef"));
    }
}
