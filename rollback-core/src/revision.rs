//! Revisions, changes and the reviewable diff between two revisions.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::target::TargetId;

/// One revision of a target: the backend's own id and the facts a person needs to choose.
///
/// Never holds a secret value: environment variables appear by name only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Revision {
    /// The backend's id as a string: Lambda `"7"`, ECS `"family:14"`, a secret version id,
    /// a snapshot id, Kubernetes `"3"`.
    pub id: String,
    /// When the revision was created, if the backend says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Container images (or code artifacts) of the revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Names of the environment variables (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_keys: Vec<String>,
    /// Description or change-cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other facts worth showing (stages, annotations, snapshot type...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, String>,
    /// What the revision is, where the backend renumbers revisions: Kubernetes gives a
    /// ReplicaSet the next revision number when a rollback reuses it, so revision `"2"`
    /// becomes `"4"` once rolled back to, while its key (the ReplicaSet's name) stays.
    /// Two revisions with keys are the same revision when their keys are equal (see
    /// [`same_as`](Self::same_as)); backends with stable ids leave it `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Revision {
    /// A revision with only an id.
    pub fn new(id: impl Into<String>) -> Self {
        Revision {
            id: id.into(),
            ..Default::default()
        }
    }

    /// Sets the creation time.
    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Adds an image.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.images.push(image.into());
        self
    }

    /// Sets the description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Adds a fact.
    pub fn fact(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.facts.insert(key.into(), value.into());
        self
    }

    /// Whether `self` and `other` are the same revision: equal [`key`](Self::key)s when both
    /// have one, else equal ids.
    pub fn same_as(&self, other: &Revision) -> bool {
        match (&self.key, &other.key) {
            (Some(a), Some(b)) => a == b,
            _ => self.id == other.id,
        }
    }

    /// Whether a target at `self` already is at `other`: the same revision
    /// ([`same_as`](Self::same_as)) with the same [`facts`](Self::facts). Facts count
    /// because some targets keep state beside the revision id there: a Lambda alias at
    /// version 3 with a canary split (the fact `canary`) is not at a clean version 3, and
    /// moving it there clears the split. The one rule for "nothing to do": the engine's
    /// preflight skips (or refuses) a step whose current and selected revisions are in the
    /// same state, and [`Change::is_noop`] asks it of a plan.
    pub fn same_state_as(&self, other: &Revision) -> bool {
        self.same_as(other) && self.facts == other.facts
    }

    /// Whether one of the revision's images carries `tag` (`repo:tag`, or the digest
    /// `repo@sha256:...` when `tag` is that digest).
    pub fn has_image_tag(&self, tag: &str) -> bool {
        self.images
            .iter()
            .any(|image| image_tag(image) == Some(tag))
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// The tag (or digest) of an image reference: `repo/app:1.2` -> `1.2`,
/// `repo/app@sha256:ab` -> `sha256:ab`, `registry:5000/app` -> none.
pub fn image_tag(image: &str) -> Option<&str> {
    if let Some((_, digest)) = image.split_once('@') {
        return Some(digest);
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

/// What a step will do: move a target from one revision to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The target.
    pub target: TargetId,
    /// The revision in use at preflight.
    pub from: Revision,
    /// The revision to move to.
    pub to: Revision,
    /// What differs, for review.
    pub diff: Diff,
    /// A backend precondition captured at preflight (Lambda alias RevisionId, Kubernetes
    /// resourceVersion) that apply sends so the backend refuses a concurrent change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precondition: Option<String>,
    /// Where the choice of `to` came from, when a person should know (`last known good:
    /// verified by transaction ... at ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// When the run first journaled its intent to make this change (its `intent`, or the
    /// `compensate_intent` / `revert_intent` of a change put back), set by the engine on
    /// the change it passes to [`apply`](crate::RollbackTarget::apply); `None` outside a
    /// run. A target whose apply makes several calls compares what it finds with this to
    /// tell the calls a crashed run already made (a deployment created since) from those it
    /// still has to make, so a resumed run does not make them twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

impl Change {
    /// A change with the diff computed from the two revisions' facts.
    pub fn new(target: TargetId, from: Revision, to: Revision) -> Self {
        let diff = Diff::between(&from, &to);
        Change {
            target,
            from,
            to,
            diff,
            precondition: None,
            origin: None,
            since: None,
        }
    }

    /// The change that undoes this one (to -> from).
    pub fn reverse(&self) -> Change {
        Change {
            target: self.target.clone(),
            from: self.to.clone(),
            to: self.from.clone(),
            diff: self.diff.reverse(),
            precondition: None,
            origin: None,
            since: None,
        }
    }

    /// Whether the change does nothing: `from` and `to` are in the same state
    /// ([`Revision::same_state_as`], facts included). The target's
    /// [`plan`](crate::RollbackTarget::plan) decides it by the revisions it puts in the
    /// change: Lambda's plan from an alias with a canary split has the split as a fact of
    /// `from` and none in `to`, so that change is not a no-op, as the engine sees it too.
    pub fn is_noop(&self) -> bool {
        self.from.same_state_as(&self.to)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {} -> {}", self.target, self.from.id, self.to.id)?;
        if let Some(origin) = &self.origin {
            writeln!(f, "  chosen as {origin}")?;
        }
        write!(f, "{}", self.diff)
    }
}

/// Which part of a target a diff line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffSection {
    /// A container image.
    Image,
    /// An environment variable.
    Env,
    /// An annotation, label or other fact.
    Fact,
    /// The description / change-cause.
    Description,
}

/// One line of a diff. Values of secret-looking keys are already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffEntry {
    /// Which part of the target.
    pub section: DiffSection,
    /// The key (container name, variable name, fact name).
    pub key: String,
    /// The value before, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The value after, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl DiffEntry {
    fn reverse(&self) -> DiffEntry {
        DiffEntry {
            section: self.section,
            key: self.key.clone(),
            from: self.to.clone(),
            to: self.from.clone(),
        }
    }
}

/// The text shown instead of a secret value.
pub const REDACTED: &str = "<redacted>";

/// Whether a key's value should never be shown (passwords, tokens, keys, connection strings).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "pwd",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "private",
        "credential",
        "auth",
        "database_url",
        "dsn",
        "connection",
        "session_key",
        "signing",
        "access_key",
        "cert",
    ]
    .iter()
    .any(|needle| k.contains(needle))
        || k.ends_with("_key")
        || k == "key"
}

/// A reviewable list of differences between two revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Diff {
    /// The differences, in section then key order.
    pub entries: Vec<DiffEntry>,
}

impl Diff {
    /// The diff of two revisions' images, environment names, facts and descriptions.
    pub fn between(from: &Revision, to: &Revision) -> Diff {
        let mut d = DiffBuilder::default();
        let images = |r: &Revision| -> BTreeMap<String, String> {
            r.images
                .iter()
                .enumerate()
                .map(|(i, image)| (image_key(image, i), image.clone()))
                .collect()
        };
        d.maps(DiffSection::Image, &images(from), &images(to));
        let keys = |r: &Revision| -> BTreeMap<String, String> {
            r.env_keys
                .iter()
                .map(|k| (k.clone(), "set".to_string()))
                .collect()
        };
        d.maps(DiffSection::Env, &keys(from), &keys(to));
        d.maps(DiffSection::Fact, &from.facts, &to.facts);
        if from.description != to.description {
            d.entry(
                DiffSection::Description,
                "description",
                from.description.clone(),
                to.description.clone(),
            );
        }
        d.build()
    }

    /// The diff the other way round.
    pub fn reverse(&self) -> Diff {
        Diff {
            entries: self.entries.iter().map(DiffEntry::reverse).collect(),
        }
    }

    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn image_key(image: &str, index: usize) -> String {
    let repo = image.split('@').next().unwrap_or(image);
    let name = repo.rsplit('/').next().unwrap_or(repo);
    let name = name.split(':').next().unwrap_or(name);
    format!("{index}:{name}")
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            let section = match e.section {
                DiffSection::Image => "image",
                DiffSection::Env => "env",
                DiffSection::Fact => "fact",
                DiffSection::Description => "description",
            };
            if e.section == DiffSection::Description {
                let from = e.from.as_deref().unwrap_or("(none)");
                let to = e.to.as_deref().unwrap_or("(none)");
                writeln!(f, "  ~ description: {from} -> {to}")?;
                continue;
            }
            match (&e.from, &e.to) {
                (None, Some(to)) => writeln!(f, "  + {section} {}: {to}", e.key)?,
                (Some(from), None) => writeln!(f, "  - {section} {}: {from}", e.key)?,
                (Some(from), Some(to)) => writeln!(f, "  ~ {section} {}: {from} -> {to}", e.key)?,
                (None, None) => writeln!(f, "  ~ {section} {}", e.key)?,
            }
        }
        Ok(())
    }
}

/// Builds a [`Diff`], redacting the values of secret-looking keys as it goes.
///
/// Backends that know more than a [`Revision`] holds (an ECS service's environment values,
/// say) use it in [`crate::RollbackTarget::plan`].
#[derive(Debug, Default)]
pub struct DiffBuilder {
    entries: Vec<DiffEntry>,
}

impl DiffBuilder {
    /// Adds one entry; values of secret-looking keys are replaced by [`REDACTED`].
    pub fn entry(
        &mut self,
        section: DiffSection,
        key: &str,
        from: Option<String>,
        to: Option<String>,
    ) -> &mut Self {
        if from == to {
            return self;
        }
        let (from, to) = if is_secret_key(key) {
            (
                from.map(|_| REDACTED.to_string()),
                to.map(|_| REDACTED.to_string()),
            )
        } else {
            (from, to)
        };
        self.entries.push(DiffEntry {
            section,
            key: key.to_string(),
            from,
            to,
        });
        self
    }

    /// Adds the differences between two maps of one section.
    pub fn maps(
        &mut self,
        section: DiffSection,
        from: &BTreeMap<String, String>,
        to: &BTreeMap<String, String>,
    ) -> &mut Self {
        let keys: std::collections::BTreeSet<&String> = from.keys().chain(to.keys()).collect();
        for key in keys {
            self.entry(section, key, from.get(key).cloned(), to.get(key).cloned());
        }
        self
    }

    /// The finished diff.
    pub fn build(self) -> Diff {
        let mut entries = self.entries;
        entries.sort_by(|a, b| (a.section, &a.key).cmp(&(b.section, &b.key)));
        Diff { entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("repo/app:1.2"), Some("1.2"));
        assert_eq!(image_tag("registry:5000/app:abc123"), Some("abc123"));
        assert_eq!(image_tag("registry:5000/app"), None);
        assert_eq!(image_tag("app@sha256:ff"), Some("sha256:ff"));
        let r = Revision::new("1").image("registry:5000/team/api:abc123");
        assert!(r.has_image_tag("abc123"));
        assert!(!r.has_image_tag("abc"));
        assert!(!r.has_image_tag("5000"));
    }

    #[test]
    fn diff_redacts_secret_looking_keys() {
        let mut b = DiffBuilder::default();
        b.entry(
            DiffSection::Env,
            "DB_PASSWORD",
            Some("hunter2".into()),
            Some("hunter3".into()),
        );
        b.entry(
            DiffSection::Env,
            "LOG_LEVEL",
            Some("info".into()),
            Some("debug".into()),
        );
        b.entry(DiffSection::Env, "SAME", Some("x".into()), Some("x".into()));
        let d = b.build();
        let text = d.to_string();
        assert!(!text.contains("hunter"), "{text}");
        assert!(
            text.contains("DB_PASSWORD: <redacted> -> <redacted>"),
            "{text}"
        );
        assert!(text.contains("LOG_LEVEL: info -> debug"), "{text}");
        assert_eq!(d.entries.len(), 2);
    }

    #[test]
    fn a_change_is_a_noop_only_when_the_facts_agree_too() {
        let id = TargetId::new("lambda-alias", "f:live");
        let canary = Revision::new("3").fact("canary", "4=10%");
        let clean = Revision::new("3");
        assert!(Change::new(id.clone(), clean.clone(), clean.clone()).is_noop());
        // Clearing a canary split is a change, though the version stays.
        assert!(!Change::new(id.clone(), canary.clone(), clean.clone()).is_noop());
        assert!(!canary.same_state_as(&clean));
        // Same key, renumbered id (Kubernetes): the same revision, nothing to do.
        let mut a = Revision::new("2");
        a.key = Some("rs-abc".into());
        let mut b = Revision::new("4");
        b.key = Some("rs-abc".into());
        assert!(Change::new(id, a, b).is_noop());
    }

    #[test]
    fn diff_between_revisions() {
        let a = Revision::new("1")
            .image("repo/api:v1")
            .fact("owner", "team-a");
        let mut b = Revision::new("2").image("repo/api:v2");
        b.env_keys.push("NEW_FLAG".into());
        let d = Diff::between(&a, &b);
        let text = d.to_string();
        assert!(
            text.contains("~ image 0:api: repo/api:v1 -> repo/api:v2"),
            "{text}"
        );
        assert!(text.contains("+ env NEW_FLAG"), "{text}");
        assert!(text.contains("- fact owner: team-a"), "{text}");
        assert_eq!(d.reverse().reverse(), d);
    }
}
