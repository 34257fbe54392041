//! Telling people (runbook 004 "Communication", runbook 000 "Post-Rollback"): a
//! [`Notifier`] hears a run start (its locks held, before the first change) and end (its
//! outcome, time to recover and what needs a person), and a [`Webhook`] posts both to
//! Slack (or anything that takes JSON).
//!
//! A notification never decides a run: one that fails is journaled as an action that did
//! not succeed and listed in the report's `needs_attention` (someone should tell the team
//! by hand), and the rollback goes on. Notices carry what the report shows (names, revision
//! ids, the reason, the outcome), never a secret value; nothing else is sent.

use std::fmt;
#[cfg(feature = "http")]
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;
use crate::transaction::{Outcome, Report};

/// When a notice is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The run holds its locks and is about to change the first target.
    Started,
    /// The run ended (or stopped on request): the outcome is known.
    Ended,
}

/// One target of a notice: where the run found it and where it moves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeTarget {
    /// `kind/name`.
    pub target: String,
    /// The revision it was at.
    pub from: Option<String>,
    /// The revision it goes to.
    pub to: Option<String>,
}

/// What a notifier is told.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// Started or ended.
    pub event: NoticeKind,
    /// The transaction id (what `rollback status` takes).
    pub transaction: String,
    /// The transaction's name.
    pub name: String,
    /// Why it runs.
    pub reason: Option<String>,
    /// The targets it changes (skipped ones left out).
    pub targets: Vec<NoticeTarget>,
    /// The outcome, once it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// From the start of the run to its end, once it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_recover_ms: Option<u64>,
    /// What needs a person, once it ended.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs_attention: Vec<String>,
}

impl Notice {
    /// The notice of an ended run, from its report.
    pub fn ended(report: &Report) -> Notice {
        Notice {
            event: NoticeKind::Ended,
            transaction: report.transaction.clone(),
            name: report.name.clone(),
            reason: report.reason.clone(),
            targets: report
                .steps
                .iter()
                .filter(|s| s.status != crate::transaction::StepStatus::Skipped)
                .map(|s| NoticeTarget {
                    target: s.target.to_string(),
                    from: s.from.as_ref().map(|r| r.id.clone()),
                    to: s.to.as_ref().map(|r| r.id.clone()),
                })
                .collect(),
            outcome: Some(report.outcome),
            time_to_recover_ms: Some(
                u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
            ),
            needs_attention: report
                .needs_attention
                .iter()
                .map(|a| match &a.target {
                    Some(t) => format!("{t}: {}", a.message),
                    None => a.message.clone(),
                })
                .collect(),
        }
    }

    /// The notice as text, a line per fact (what a chat message shows).
    pub fn text(&self) -> String {
        let mut lines = Vec::new();
        let head = match (self.event, self.outcome) {
            (NoticeKind::Started, _) => format!("rollback started: {}", self.name),
            (NoticeKind::Ended, Some(o)) => format!("rollback {o}: {}", self.name),
            (NoticeKind::Ended, None) => format!("rollback ended: {}", self.name),
        };
        lines.push(head);
        if let Some(r) = &self.reason {
            lines.push(format!("reason: {r}"));
        }
        for t in &self.targets {
            lines.push(format!(
                "- {}: {} -> {}",
                t.target,
                t.from.as_deref().unwrap_or("?"),
                t.to.as_deref().unwrap_or("?")
            ));
        }
        if let Some(ms) = self.time_to_recover_ms {
            lines.push(format!("time to recover: {:.1} s", ms as f64 / 1000.0));
        }
        for a in &self.needs_attention {
            lines.push(format!("needs a person: {a}"));
        }
        lines.push(format!("transaction {}", self.transaction));
        lines.join("\n")
    }
}

/// Hears a run start and end.
#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// A short name for reports (`webhook hooks.slack.com`).
    fn name(&self) -> String;

    /// Refuses a notifier that cannot work, in preflight (before anything changes).
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Sends one notice; an error is reported, never fails the run.
    async fn notify(&self, notice: &Notice) -> Result<()>;
}

/// What a [`Webhook`] posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// `{"text": "..."}`: what Slack's (and Mattermost's, Teams' workflow) incoming
    /// webhooks take.
    #[default]
    Slack,
    /// The [`Notice`] as JSON, for anything else.
    Json,
}

/// Posts notices to a URL (see the module docs). The URL is a secret of sorts (Slack's
/// incoming-webhook URLs are credentials): reports and `Debug` show its host only.
#[cfg(feature = "http")]
#[derive(Clone)]
pub struct Webhook {
    url: String,
    format: WebhookFormat,
    timeout: Duration,
}

#[cfg(feature = "http")]
impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("host", &self.host())
            .field("format", &self.format)
            .finish()
    }
}

#[cfg(feature = "http")]
impl Webhook {
    /// Posts to `url` (http or https) in Slack's format, waiting at most 10 s.
    pub fn new(url: impl Into<String>) -> Webhook {
        Webhook {
            url: url.into(),
            format: WebhookFormat::Slack,
            timeout: Duration::from_secs(10),
        }
    }

    /// What it posts.
    pub fn format(mut self, format: WebhookFormat) -> Webhook {
        self.format = format;
        self
    }

    /// How long a post may take.
    pub fn timeout(mut self, timeout: Duration) -> Webhook {
        self.timeout = timeout;
        self
    }

    fn host(&self) -> String {
        reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "(no host)".into())
    }
}

#[cfg(feature = "http")]
#[async_trait]
impl Notifier for Webhook {
    fn name(&self) -> String {
        format!("webhook {}", self.host())
    }

    fn validate(&self) -> Result<()> {
        let bad = |why: &str| {
            crate::Error::invalid(
                "webhook",
                format!("{why}; give the incoming webhook's http(s) URL, e.g. https://hooks.slack.com/services/..."),
            )
        };
        let url = reqwest::Url::parse(&self.url).map_err(|_| bad("the URL does not parse"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("the URL is not http(s) with a host"));
        }
        if self.timeout.is_zero() {
            return Err(crate::Error::invalid(
                "webhook",
                "a zero timeout would never let a post through; give a timeout of at least 1s",
            ));
        }
        Ok(())
    }

    async fn notify(&self, notice: &Notice) -> Result<()> {
        let name = self.name();
        let body = match self.format {
            WebhookFormat::Slack => serde_json::json!({ "text": notice.text() }),
            WebhookFormat::Json => serde_json::to_value(notice).unwrap_or_default(),
        };
        let sent = crate::net::client(&name)?
            .post(&self.url)
            .timeout(self.timeout)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                crate::Error::backend(
                    &name,
                    format!(
                        "the post did not go through ({})",
                        crate::net::error_chain(&e).replace(&self.url, &self.host())
                    ),
                    true,
                )
            })?;
        let status = sent.status();
        if !status.is_success() {
            return Err(crate::Error::backend(
                &name,
                format!("the webhook answered HTTP {status}"),
                status.is_server_error(),
            ));
        }
        Ok(())
    }
}
