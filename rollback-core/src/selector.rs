//! Which revision to roll back to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::revision::Revision;
use crate::target::TargetId;

/// Chooses a revision from a target's history.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Selector {
    /// The revision before the one in use now (not "newest minus one": after a rollback the
    /// one in use is not the newest).
    Previous,
    /// A revision by the backend's id (`"7"`, `"family:14"`, a version id...).
    Exact(String),
    /// `n` revisions before the one in use; `StepsBack(1)` is `Previous`.
    StepsBack(u32),
    /// The newest revision whose images carry this tag (or digest).
    ImageTag(String),
    /// The newest revision of the target that a past transaction verified healthy (it
    /// succeeded and its checks passed), from the transaction's
    /// [`KnownGoodStore`](crate::known_good::KnownGoodStore). A transaction resolves it in
    /// preflight; without a record it is an error, never another revision.
    LastKnownGood,
}

impl Selector {
    /// [`Selector::Exact`] from anything string-like.
    pub fn exact(id: impl Into<String>) -> Self {
        Selector::Exact(id.into())
    }

    /// [`Selector::ImageTag`] from anything string-like.
    pub fn image_tag(tag: impl Into<String>) -> Self {
        Selector::ImageTag(tag.into())
    }

    /// Picks the revision from `history` (newest first) given the id of the revision in use.
    ///
    /// This is the shared rule every backend uses unless it knows better (an ECS service
    /// also accepts `14` and the full ARN for `Exact`, say). Errors name the target and
    /// what the history does hold.
    pub fn resolve(
        &self,
        target: &TargetId,
        history: &[Revision],
        current_id: &str,
    ) -> Result<Revision> {
        let ids = || {
            let mut s = history
                .iter()
                .take(10)
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if history.len() > 10 {
                s.push_str(", ...");
            }
            if s.is_empty() {
                s.push_str("none");
            }
            s
        };
        match self {
            Selector::Previous => Selector::StepsBack(1).resolve(target, history, current_id),
            Selector::StepsBack(0) => Err(Error::invalid(
                target.to_string(),
                "StepsBack(0) is the revision in use; ask for 1 or more steps back",
            )),
            Selector::StepsBack(n) => {
                let pos = history
                    .iter()
                    .position(|r| r.id == current_id)
                    .ok_or_else(|| {
                        Error::not_found(
                            target.to_string(),
                            format!("the revision in use ({current_id}) in the history"),
                            format!("the history holds {}; choose one with Exact", ids()),
                        )
                    })?;
                let want = pos + *n as usize;
                history.get(want).cloned().ok_or_else(|| {
                    Error::not_found(
                        target.to_string(),
                        format!("a revision {n} step(s) before {current_id}"),
                        format!(
                            "only {} older revision(s) exist (history: {})",
                            history.len() - pos - 1,
                            ids()
                        ),
                    )
                })
            }
            Selector::Exact(id) => history
                .iter()
                .find(|r| &r.id == id)
                .cloned()
                .ok_or_else(|| {
                    Error::not_found(
                        target.to_string(),
                        format!("revision {id:?}"),
                        format!("the history holds {}", ids()),
                    )
                }),
            Selector::LastKnownGood => Err(Error::invalid(
                target.to_string(),
                "LastKnownGood is chosen by a transaction from its known-good store (TransactionBuilder::known_good); run it in a transaction, or name the revision with Exact",
            )),
            Selector::ImageTag(tag) => {
                if tag.is_empty() {
                    return Err(Error::invalid(
                        target.to_string(),
                        "ImageTag needs a non-empty tag",
                    ));
                }
                history
                    .iter()
                    .find(|r| r.has_image_tag(tag))
                    .cloned()
                    .ok_or_else(|| {
                        Error::not_found(
                            target.to_string(),
                            format!("a revision with an image tagged {tag:?}"),
                            format!("no image in the history ({}) carries that tag", ids()),
                        )
                    })
            }
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Previous => f.write_str("previous"),
            Selector::Exact(id) => write!(f, "exact {id}"),
            Selector::StepsBack(n) => write!(f, "{n} step(s) back"),
            Selector::ImageTag(tag) => write!(f, "image tag {tag}"),
            Selector::LastKnownGood => f.write_str("last known good"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn history() -> Vec<Revision> {
        vec![
            Revision::new("5").image("api:bad"),
            Revision::new("4").image("api:good"),
            Revision::new("3").image("api:good"),
            Revision::new("2").image("api:old"),
        ]
    }

    fn t() -> TargetId {
        TargetId::new("memory", "api")
    }

    #[test]
    fn previous_is_before_the_one_in_use_not_newest_minus_one() {
        // After a rollback from 5 to 3, Previous is 2, not 4.
        let r = Selector::Previous.resolve(&t(), &history(), "3").unwrap();
        assert_eq!(r.id, "2");
        let r = Selector::Previous.resolve(&t(), &history(), "5").unwrap();
        assert_eq!(r.id, "4");
    }

    #[test]
    fn steps_back_and_bounds() {
        assert_eq!(
            Selector::StepsBack(2)
                .resolve(&t(), &history(), "5")
                .unwrap()
                .id,
            "3"
        );
        let e = Selector::StepsBack(4)
            .resolve(&t(), &history(), "5")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("only 3 older"), "{e}");
        let e = Selector::StepsBack(0)
            .resolve(&t(), &history(), "5")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = Selector::Previous
            .resolve(&t(), &history(), "9")
            .unwrap_err();
        assert!(e.to_string().contains("memory/api"), "{e}");
    }

    #[test]
    fn exact_and_image_tag() {
        assert_eq!(
            Selector::exact("2")
                .resolve(&t(), &history(), "5")
                .unwrap()
                .id,
            "2"
        );
        let e = Selector::exact("7")
            .resolve(&t(), &history(), "5")
            .unwrap_err();
        assert!(e.to_string().contains("5, 4, 3, 2"), "{e}");
        // newest revision carrying the tag
        assert_eq!(
            Selector::image_tag("good")
                .resolve(&t(), &history(), "5")
                .unwrap()
                .id,
            "4"
        );
        assert_eq!(
            Selector::image_tag("nope")
                .resolve(&t(), &history(), "5")
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn serde_shape() {
        let s = serde_json::to_string(&Selector::StepsBack(2)).unwrap();
        assert_eq!(s, r#"{"steps_back":2}"#);
        let p: Selector = serde_json::from_str(r#""previous""#).unwrap();
        assert_eq!(p, Selector::Previous);
    }
}
