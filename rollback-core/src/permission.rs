//! The least privilege a run needs: every part of a transaction (its targets, checks,
//! stores and actions) says which cloud permissions its calls take, and
//! [`Permissions`] renders them as an AWS IAM policy and Kubernetes RBAC Roles
//! (`rollback policy`).
//!
//! A part that does not say ([`None`] from its `permissions`) is listed in
//! [`Permissions::undeclared`], so that a generated policy never looks complete when it is
//! not. Resources are as exact as the part can name them: an AWS ARN carries `*` for what
//! is not known without asking AWS (the account; the region when it comes from the
//! environment), which [`Permissions::iam_policy`] fills in when told.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

/// One permission a call of the library needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Permission {
    /// An AWS IAM action (`lambda:UpdateAlias`) on a resource (an ARN, `*` for an action
    /// IAM grants on no resource).
    Aws {
        /// `service:Action`.
        action: String,
        /// The resource ARN (fields not known are `*`).
        resource: String,
    },
    /// A Kubernetes RBAC verb on a resource of an API group (`""` the core group) in a
    /// namespace, narrowed to one object where RBAC can (`get`, `update`, `patch`, `delete`
    /// by name; never `list`, `watch` or `create`).
    Kubernetes {
        /// The API group (`apps`, `coordination.k8s.io`, `""`).
        group: String,
        /// The resource (plural): `deployments`, `replicasets`, `leases`.
        resource: String,
        /// The verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`.
        verb: String,
        /// The namespace.
        namespace: String,
        /// The object's name, where the verb can be narrowed to it.
        name: Option<String>,
    },
}

impl Permission {
    /// `action` on `resource`.
    pub fn aws(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Permission::Aws {
            action: action.into(),
            resource: resource.into(),
        }
    }

    /// Each of `actions` on `resource`.
    pub fn aws_all(actions: &[&str], resource: &str) -> Vec<Self> {
        actions.iter().map(|a| Self::aws(*a, resource)).collect()
    }

    /// Each of `verbs` on `resource` of `group` in `namespace`; narrowed to `name` for the
    /// verbs RBAC narrows by name.
    pub fn kubernetes(
        group: &str,
        resource: &str,
        verbs: &[&str],
        namespace: &str,
        name: Option<&str>,
    ) -> Vec<Self> {
        verbs
            .iter()
            .map(|verb| Permission::Kubernetes {
                group: group.to_string(),
                resource: resource.to_string(),
                verb: verb.to_string(),
                namespace: namespace.to_string(),
                name: name
                    .filter(|_| matches!(*verb, "get" | "update" | "patch" | "delete"))
                    .map(str::to_string),
            })
            .collect()
    }
}

/// The permissions of a whole transaction, with the parts that declared none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Permissions {
    /// Every permission, once.
    pub needs: BTreeSet<Permission>,
    /// The parts (`target ecs-service/c/s`, `check GET https://...`) that do not declare
    /// theirs: the policy does not cover them.
    pub undeclared: Vec<String>,
}

impl Permissions {
    /// Adds what `part` (named for [`undeclared`](Self::undeclared)) declared.
    pub fn add(&mut self, part: impl Into<String>, declared: Option<Vec<Permission>>) {
        match declared {
            Some(perms) => self.needs.extend(perms),
            None => {
                let part = part.into();
                if !self.undeclared.contains(&part) {
                    self.undeclared.push(part);
                }
            }
        }
    }

    /// Whether no AWS permission is needed.
    pub fn aws_is_empty(&self) -> bool {
        !self
            .needs
            .iter()
            .any(|p| matches!(p, Permission::Aws { .. }))
    }

    /// The IAM actions needed, sorted.
    pub fn aws_actions(&self) -> BTreeSet<String> {
        self.needs
            .iter()
            .filter_map(|p| match p {
                Permission::Aws { action, .. } => Some(action.clone()),
                Permission::Kubernetes { .. } => None,
            })
            .collect()
    }

    /// An IAM policy document (version 2012-10-17) allowing exactly the AWS permissions:
    /// one statement per set of actions shared by a set of resources. `account` (12
    /// digits) and `region` replace the `*` account and region of the ARNs the parts could
    /// not complete.
    pub fn iam_policy(&self, account: Option<&str>, region: Option<&str>) -> Value {
        let mut by_resource: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in &self.needs {
            if let Permission::Aws { action, resource } = p {
                by_resource
                    .entry(completed(resource, account, region))
                    .or_default()
                    .insert(action.clone());
            }
        }
        let mut by_actions: BTreeMap<BTreeSet<String>, Vec<String>> = BTreeMap::new();
        for (resource, actions) in by_resource {
            by_actions.entry(actions).or_default().push(resource);
        }
        let statements: Vec<Value> = by_actions
            .into_iter()
            .enumerate()
            .map(|(i, (actions, resources))| {
                json!({
                    "Sid": format!("Rollback{}", i + 1),
                    "Effect": "Allow",
                    "Action": actions.into_iter().collect::<Vec<_>>(),
                    "Resource": resources,
                })
            })
            .collect();
        json!({ "Version": "2012-10-17", "Statement": statements })
    }

    /// One RBAC `Role` per namespace (named `name`), allowing exactly the Kubernetes
    /// permissions: one rule per group, resource and object name.
    pub fn rbac_roles(&self, name: &str) -> Vec<Value> {
        type Rule = (String, String, Option<String>);
        let mut by_ns: BTreeMap<String, BTreeMap<Rule, BTreeSet<String>>> = BTreeMap::new();
        for p in &self.needs {
            if let Permission::Kubernetes {
                group,
                resource,
                verb,
                namespace,
                name,
            } = p
            {
                by_ns
                    .entry(namespace.clone())
                    .or_default()
                    .entry((group.clone(), resource.clone(), name.clone()))
                    .or_default()
                    .insert(verb.clone());
            }
        }
        by_ns
            .into_iter()
            .map(|(namespace, rules)| {
                let rules: Vec<Value> = rules
                    .into_iter()
                    .map(|((group, resource, object), verbs)| {
                        let mut rule = json!({
                            "apiGroups": [group],
                            "resources": [resource],
                            "verbs": verbs.into_iter().collect::<Vec<_>>(),
                        });
                        if let Some(object) = object {
                            rule["resourceNames"] = json!([object]);
                        }
                        rule
                    })
                    .collect();
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": { "name": name, "namespace": namespace },
                    "rules": rules,
                })
            })
            .collect()
    }
}

/// `arn:partition:service:region:account:rest` with a `*` region and account filled in
/// (a service without regions, such as CloudFront, keeps its empty region).
fn completed(resource: &str, account: Option<&str>, region: Option<&str>) -> String {
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return resource.to_string();
    }
    let fill = |field: &str, with: Option<&str>| match with {
        Some(w) if field == "*" => w.to_string(),
        _ => field.to_string(),
    };
    format!(
        "arn:{}:{}:{}:{}:{}",
        parts[1],
        parts[2],
        fill(parts[3], region),
        fill(parts[4], account),
        parts[5]
    )
}

/// Refuses an AWS account id that is not 12 digits (what [`Permissions::iam_policy`]
/// writes into ARNs), naming `what` gave it.
pub fn check_account(what: &str, account: &str) -> crate::Result<()> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(crate::Error::invalid(
            "policy",
            format!("{what} {account:?} is not an AWS account id; give its 12 digits"),
        ))
    }
}

/// The ARN of an AWS resource in `region` (`*` when it is not known), account `*`.
pub fn aws_arn(service: &str, region: Option<&str>, resource: &str) -> String {
    format!("arn:aws:{service}:{}:*:{resource}", region.unwrap_or("*"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_groups_resources_by_their_actions_and_fills_in_the_account() {
        let mut p = Permissions::default();
        let f = aws_arn("lambda", Some("eu-west-1"), "function:f");
        let g = aws_arn("lambda", Some("eu-west-1"), "function:g");
        for r in [&f, &g] {
            p.add(
                "target",
                Some(Permission::aws_all(
                    &["lambda:GetAlias", "lambda:UpdateAlias"],
                    r,
                )),
            );
        }
        p.add(
            "check",
            Some(vec![Permission::aws("cloudwatch:DescribeAlarms", "*")]),
        );
        p.add("check GET http://x", None);
        let doc = p.iam_policy(Some("123456789012"), Some("us-east-1"));
        let st = doc["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 2, "{doc:#}");
        let lambda = st
            .iter()
            .find(|s| s["Action"][0] == "lambda:GetAlias")
            .unwrap();
        assert_eq!(
            lambda["Resource"],
            json!([
                "arn:aws:lambda:eu-west-1:123456789012:function:f",
                "arn:aws:lambda:eu-west-1:123456789012:function:g"
            ])
        );
        assert_eq!(p.undeclared, vec!["check GET http://x".to_string()]);
        assert_eq!(p.aws_actions().len(), 3);
    }

    #[test]
    fn rbac_narrows_by_name_only_where_it_can() {
        let mut p = Permissions::default();
        p.add(
            "deployment",
            Some(Permission::kubernetes(
                "apps",
                "deployments",
                &["get", "patch", "list"],
                "prod",
                Some("web"),
            )),
        );
        let roles = p.rbac_roles("rollback");
        assert_eq!(roles.len(), 1);
        let rules = roles[0]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2, "{rules:#?}");
        let named = rules
            .iter()
            .find(|r| r.get("resourceNames").is_some())
            .unwrap();
        assert_eq!(named["verbs"], json!(["get", "patch"]));
        assert_eq!(roles[0]["metadata"]["namespace"], "prod");
    }
}
