//! ARNs given where a name or a revision id is expected, checked in one place.
//!
//! A user may name a revision by its ARN (an ECS task definition, a Lambda version, an RDS
//! snapshot) or a target by its ARN (a secret, a function). Keeping only the tail of such an
//! ARN silently swaps another account's or region's resource for this one's namesake, so an
//! ARN must be of the right service and resource type and name the target's own partition,
//! region and account; else it is refused as invalid input saying what differs.

use rollback_core::{Error, Result, TargetId};

/// `arn:partition:service:region:account:resource`, borrowed from the string it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    /// Everything after the account, e.g. `task-definition/api:14`, `function:f:7`.
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// The ARN in `s`, or `None` when `s` does not start with `arn:` or has fewer than six
    /// parts (callers that got `Some` from [`is_arn`] but `None` here refuse the input).
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut parts = s.splitn(6, ':');
        let (arn, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if arn != "arn" || partition.is_empty() || service.is_empty() || resource.is_empty() {
            return None;
        }
        Some(Arn {
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    /// The resource after `prefix` (`task-definition/`, `function:`, `snapshot:`), if the ARN
    /// is of that resource type.
    pub fn resource_after(&self, prefix: &str) -> Option<&'a str> {
        self.resource.strip_prefix(prefix).filter(|r| !r.is_empty())
    }
}

/// Whether `s` is meant as an ARN (and so must parse as one).
pub(crate) fn is_arn(s: &str) -> bool {
    s.starts_with("arn:")
}

/// The ARN `given` (a `what`, e.g. "task definition") as an ARN of `service` whose resource
/// starts with `prefix`, or invalid input naming what to give instead.
pub(crate) fn parse_as<'a>(
    target: &TargetId,
    what: &str,
    given: &'a str,
    service: &str,
    prefix: &str,
    instead: &str,
) -> Result<(Arn<'a>, &'a str)> {
    let arn = Arn::parse(given).ok_or_else(|| {
        Error::invalid(
            target.to_string(),
            format!("{given:?} is not a valid ARN (arn:partition:service:region:account:resource); give {instead}"),
        )
    })?;
    if arn.service != service {
        return Err(Error::invalid(
            target.to_string(),
            format!(
                "{given:?} is an ARN of service {:?}, not a {what} ARN ({service}); give {instead}",
                arn.service
            ),
        ));
    }
    let rest = arn.resource_after(prefix).ok_or_else(|| {
        Error::invalid(
            target.to_string(),
            format!(
                "{given:?} is not a {what} ARN (its resource should start with {prefix:?}); give {instead}"
            ),
        )
    })?;
    Ok((arn, rest))
}

/// Refuses `given` (the ARN of a `what`) unless its partition, region and account are those
/// of `own` (an ARN the backend itself reported for the target), naming the first field that
/// differs. `owner` says whose ARN `own` is, e.g. "the service".
pub(crate) fn check_same_place(
    target: &TargetId,
    what: &str,
    given: &Arn<'_>,
    own: &Arn<'_>,
    owner: &str,
    instead: &str,
) -> Result<()> {
    for (field, a, b) in [
        ("partition", given.partition, own.partition),
        ("account", given.account, own.account),
        ("region", given.region, own.region),
    ] {
        if a != b {
            return Err(Error::invalid(
                target.to_string(),
                format!("{what} ARN is in {field} {a} but {owner} is in {b}; give {instead}"),
            ));
        }
    }
    Ok(())
}

/// Refuses a target's own name given as an ARN of region `given` when that is not the
/// region the client sends to: AWS would look in the wrong region or fail with a confusing
/// answer.
pub(crate) fn check_region(
    target: &TargetId,
    what: &str,
    given: &str,
    region: Option<&str>,
) -> Result<()> {
    match region {
        Some(r) if !given.is_empty() && given != r => Err(Error::invalid(
            target.to_string(),
            format!(
                "the {what} ARN is in region {given} but the client is configured for {r}; set the region to {given} (AwsConfig::region or AWS_REGION) or give the name"
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_six_parts_keeping_colons_in_the_resource() {
        let a = Arn::parse("arn:aws:rds:us-east-1:123456789012:snapshot:rds:db-2024").unwrap();
        assert_eq!(a.service, "rds");
        assert_eq!(a.account, "123456789012");
        assert_eq!(a.resource_after("snapshot:"), Some("rds:db-2024"));
        assert_eq!(a.resource_after("cluster-snapshot:"), None);
        assert!(Arn::parse("arn:aws:ecs").is_none());
        assert!(Arn::parse("api:14").is_none());
        assert!(Arn::parse("arn::ecs:r:a:x").is_none());
    }

    #[test]
    fn names_the_field_that_differs() {
        let id = TargetId::new("ecs-service", "c/s");
        let own = Arn::parse("arn:aws:ecs:us-east-1:123456789012:service/c/s").unwrap();
        let other = Arn::parse("arn:aws:ecs:us-east-1:111111111111:task-definition/api:3").unwrap();
        let e = check_same_place(&id, "task definition", &other, &own, "the service", "N")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("account 111111111111 but the service is in 123456789012"),
            "{e}"
        );
        let west = Arn::parse("arn:aws:ecs:eu-west-1:123456789012:task-definition/api:3").unwrap();
        let e = check_same_place(&id, "task definition", &west, &own, "the service", "N")
            .unwrap_err()
            .to_string();
        assert!(e.contains("region eu-west-1"), "{e}");
        let same = Arn::parse("arn:aws:ecs:us-east-1:123456789012:task-definition/api:3").unwrap();
        assert!(check_same_place(&id, "x", &same, &own, "the service", "N").is_ok());
    }

    #[test]
    fn wrong_service_or_resource_is_refused() {
        let id = TargetId::new("ecs-service", "c/s");
        let lambda = "arn:aws:lambda:us-east-1:123456789012:function:f:3";
        let e = parse_as(
            &id,
            "task definition",
            lambda,
            "ecs",
            "task-definition/",
            "N",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("service \"lambda\""), "{e}");
        let svc = "arn:aws:ecs:us-east-1:123456789012:service/c/s";
        assert!(parse_as(&id, "task definition", svc, "ecs", "task-definition/", "N").is_err());
        let (_, rest) = parse_as(
            &id,
            "task definition",
            "arn:aws:ecs:us-east-1:1:task-definition/api:3",
            "ecs",
            "task-definition/",
            "N",
        )
        .unwrap();
        assert_eq!(rest, "api:3");
    }
}
