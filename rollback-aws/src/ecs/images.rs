//! Never roll back to an image that is gone (runbook 003 step 2): before a task-definition
//! revision is planned, each of its images that lives in ECR (in the region the target talks
//! to) is looked up with DescribeImages, one call per repository, and a missing image or
//! repository refuses the plan, naming the image. The plan shows the digest behind each tag.
//!
//! Images of other registries (Docker Hub, GHCR, ECR in another region) are not checked.
//! Turn the check off with [`EcsService::check_images`] when the role cannot call
//! `ecr:DescribeImages` on the repositories.

use std::collections::BTreeMap;

use aws_sdk_ecr::types::ImageIdentifier;
use rollback_core::revision::{DiffBuilder, DiffSection};
use rollback_core::{Diff, Error, Result};

use super::{EcsService, TaskDef};
use crate::error::sdk_error;

/// An image reference in ECR: `<registry>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>` or
/// `...@sha256:...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EcrImage {
    pub(super) registry: String,
    pub(super) region: String,
    pub(super) repository: String,
    /// The tag, or the digest (`sha256:...`).
    pub(super) reference: Reference,
}

/// An image to confirm: (container, image, reference), by (registry, repository).
type Wanted = (String, String, Reference);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reference {
    Tag(String),
    Digest(String),
}

/// The ECR parts of `image`, if it is an ECR image.
pub(super) fn parse_ecr(image: &str) -> Option<EcrImage> {
    let (host, rest) = image.split_once('/')?;
    let mut parts = host.split('.');
    let registry = parts.next()?;
    if registry.len() != 12 || !registry.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if (parts.next()?, parts.next()?) != ("dkr", "ecr") {
        return None;
    }
    let region = parts.next()?;
    let domain: Vec<&str> = parts.collect();
    if !(domain == ["amazonaws", "com"] || domain == ["amazonaws", "com", "cn"]) {
        return None;
    }
    let (repository, reference) = if let Some((repo, digest)) = rest.split_once('@') {
        (repo, Reference::Digest(digest.to_string()))
    } else if let Some((repo, tag)) = rest.rsplit_once(':') {
        (repo, Reference::Tag(tag.to_string()))
    } else {
        (rest, Reference::Tag("latest".into()))
    };
    if repository.is_empty() {
        return None;
    }
    Some(EcrImage {
        registry: registry.into(),
        region: region.into(),
        repository: repository.into(),
        reference,
    })
}

impl EcsService {
    /// Whether the plan confirms that the chosen revision's ECR images still exist (the
    /// default: yes). See the module docs of `ecs/images.rs`, in this crate's docs under
    /// [`EcsService`].
    pub fn check_images(mut self, check: bool) -> Self {
        self.check_images = check;
        self
    }

    /// Confirms that every ECR image of `def` (in this client's region) exists: one
    /// DescribeImages per repository. Gives each image's digest, by container, for the
    /// plan.
    pub(super) async fn confirm_images(&self, def: &TaskDef) -> Result<Diff> {
        let mut d = DiffBuilder::default();
        if !self.check_images {
            return Ok(d.build());
        }
        let region = self
            .ecr
            .get()
            .await?
            .config()
            .region()
            .map(|r| r.as_ref().to_string());
        let mut repos: BTreeMap<(String, String), Vec<Wanted>> = BTreeMap::new();
        for c in &def.containers {
            let Some(img) = parse_ecr(&c.image) else {
                continue;
            };
            if region.as_deref() != Some(img.region.as_str()) {
                continue;
            }
            repos
                .entry((img.registry, img.repository))
                .or_default()
                .push((c.name.clone(), c.image.clone(), img.reference));
        }
        let several = def.containers.len() > 1;
        for ((registry, repository), images) in repos {
            let digests = self
                .describe_images(def, &registry, &repository, &images)
                .await?;
            for ((container, _, _), digest) in images.iter().zip(digests) {
                let key = if several {
                    format!("{container} digest")
                } else {
                    "digest".to_string()
                };
                d.entry(DiffSection::Image, &key, None, digest);
            }
        }
        Ok(d.build())
    }

    /// The digests of `images` of one repository, in their order; a missing one refuses
    /// the plan naming it.
    async fn describe_images(
        &self,
        def: &TaskDef,
        registry: &str,
        repository: &str,
        images: &[Wanted],
    ) -> Result<Vec<Option<String>>> {
        let ids: Vec<ImageIdentifier> = images
            .iter()
            .map(|(_, _, r)| match r {
                Reference::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
                Reference::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
            })
            .collect();
        let sent = self
            .ecr
            .get()
            .await?
            .describe_images()
            .registry_id(registry)
            .repository_name(repository)
            .set_image_ids(Some(ids))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                let gone = e.as_service_error().is_some_and(|s| {
                    s.is_image_not_found_exception() || s.is_repository_not_found_exception()
                });
                if !gone {
                    return Err(sdk_error(&self.id, "DescribeImages", e));
                }
                // Which one: the only one, or each in turn (a rare path).
                let missing = if images.len() == 1 {
                    images[0].1.clone()
                } else {
                    let mut missing = images[0].1.clone();
                    for (i, one) in images.iter().enumerate() {
                        if Box::pin(self.describe_images(def, registry, repository, &images[i..=i]))
                            .await
                            .is_err()
                        {
                            missing = one.1.clone();
                            break;
                        }
                    }
                    missing
                };
                return Err(Error::not_found(
                    self.id.to_string(),
                    format!("image {missing} of revision {}", def.revision.id),
                    "it is no longer in ECR (DescribeImages found no such image or repository), so that revision cannot start; roll back to a revision whose images still exist (`rollback history` lists them) or push the image again",
                )
                .with_source(sdk_error(&self.id, "DescribeImages", e)));
            }
        };
        Ok(images
            .iter()
            .map(|(_, _, r)| {
                out.image_details()
                    .iter()
                    .find(|d| match r {
                        Reference::Tag(t) => d.image_tags().iter().any(|x| x == t),
                        Reference::Digest(g) => d.image_digest() == Some(g.as_str()),
                    })
                    .and_then(|d| d.image_digest())
                    .map(str::to_string)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_images_are_recognised() {
        let img = parse_ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/api:1.8.0").unwrap();
        assert_eq!(
            (
                img.registry.as_str(),
                img.region.as_str(),
                img.repository.as_str()
            ),
            ("123456789012", "us-east-1", "team/api")
        );
        assert_eq!(img.reference, Reference::Tag("1.8.0".into()));
        let by_digest =
            parse_ecr("123456789012.dkr.ecr.eu-west-1.amazonaws.com/api@sha256:abc").unwrap();
        assert_eq!(by_digest.reference, Reference::Digest("sha256:abc".into()));
        assert_eq!(
            parse_ecr("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/api")
                .unwrap()
                .reference,
            Reference::Tag("latest".into())
        );
        for other in [
            "nginx:1.25",
            "ghcr.io/org/app:1",
            "registry:5000/app:1",
            "12345.dkr.ecr.us-east-1.amazonaws.com/api:1",
            "123456789012.dkr.ecr.us-east-1.example.com/api:1",
        ] {
            assert_eq!(parse_ecr(other), None, "{other}");
        }
    }
}
