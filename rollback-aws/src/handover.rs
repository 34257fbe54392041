//! Connection handover: point the application's database secret at a restored instance.
//!
//! [`ConnectionHandover`] writes the endpoint of a DB instance (the one an
//! [`RdsInstance`](crate::RdsInstance) restore made) into the secret that holds the
//! connection string, as a new secret version, keeping everything else in the value. Two
//! forms are understood: a URL (`postgres://user:pass@host:5432/db?sslmode=require`) and
//! JSON (`{"host": ..., "port": ..., ...}`, as RDS-managed secrets have). The value is read
//! and written, never printed, returned, journaled or put in an error.
//!
//! As a target its current revision is the secret's AWSCURRENT version, and it goes to one
//! revision, `Exact(handover.revision_id())` (`handover:<instance>`: the version it writes). The write is idempotent: its ClientRequestToken is derived
//! from the secret, the instance and the version it replaces, so a resumed run does not
//! make a second version. Compensation moves AWSCURRENT back to the version in use before.

use async_trait::async_trait;
use aws_sdk_rds::Client as RdsClient;
use aws_sdk_secretsmanager::Client;
use rollback_core::revision::{DiffBuilder, DiffSection};
use rollback_core::{
    ApplyOutcome, Change, Error, Result, Revision, RollbackTarget, Selector, Stability, TargetId,
    TargetSpec,
};
use serde::{Deserialize, Serialize};

use crate::config::{Aws, AwsConfig};
use crate::error::{check_name, sdk_error};
use crate::rds::describe_db_instance;
use crate::sdk::all_pages;
use crate::target::{self, aws_target};

/// The target kind.
pub const KIND: &str = "connection-handover";
const AWSCURRENT: &str = "AWSCURRENT";

/// A [`ConnectionHandover`] as data (what the journal records, beside the AWS settings).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Params {
    secret_id: String,
    db_instance_id: String,
}

/// Writes a DB instance's endpoint into a connection secret; see the [module docs](self).
#[derive(Clone)]
pub struct ConnectionHandover {
    secret_id: String,
    db_instance_id: String,
    aws: AwsConfig,
    secrets: crate::config::LazyClient<Client>,
    rds: crate::config::LazyClient<RdsClient>,
    id: TargetId,
}

aws_target!(
    ConnectionHandover,
    KIND,
    Params {
        secret_id,
        db_instance_id
    },
    |aws, p| Self::new(aws, p.secret_id, p.db_instance_id)
);

/// Which form a connection secret has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretForm {
    /// `scheme://user:pass@host:port/db?params`.
    Url,
    /// A JSON object with `host` (and usually `port`).
    Json,
}

/// Rewrites the host and port of a connection value, keeping everything else. The error
/// never contains the value.
pub fn rewrite_endpoint(
    value: &str,
    host: &str,
    port: i32,
) -> std::result::Result<(String, SecretForm), String> {
    let trimmed = value.trim();
    if trimmed.starts_with('{') {
        let mut v: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| {
            format!(
                "the secret looks like JSON but does not parse (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        let obj = v
            .as_object_mut()
            .ok_or("the secret is JSON but not an object")?;
        if !obj.contains_key("host") {
            return Err("the JSON secret has no \"host\" key".into());
        }
        obj.insert("host".into(), serde_json::Value::String(host.to_string()));
        match obj.get("port") {
            Some(serde_json::Value::String(_)) => {
                obj.insert("port".into(), serde_json::Value::String(port.to_string()));
            }
            _ => {
                obj.insert("port".into(), serde_json::Value::from(port));
            }
        }
        let out = serde_json::to_string(&v)
            .map_err(|_| "the JSON secret could not be written back".to_string())?;
        return Ok((out, SecretForm::Json));
    }
    let scheme_end = trimmed
        .find("://")
        .ok_or("the secret is neither a connection URL (scheme://user:pass@host:port/db) nor a JSON object")?;
    let rest_start = scheme_end + 3;
    let rest = &trimmed[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_start = authority.rfind('@').map(|i| i + 1).unwrap_or(0);
    let hostport = &authority[host_start..];
    if hostport.is_empty() {
        return Err("the connection URL has no host".into());
    }
    let mut out = String::with_capacity(trimmed.len() + host.len());
    out.push_str(&trimmed[..rest_start]);
    out.push_str(&authority[..host_start]);
    out.push_str(host);
    out.push(':');
    out.push_str(&port.to_string());
    out.push_str(&rest[authority_end..]);
    Ok((out, SecretForm::Url))
}

/// The host a connection value points at, if it has one (for the plan; hosts are not secret).
pub fn current_host(value: &str) -> Option<String> {
    rewrite_endpoint(value, "\u{0}", 0)
        .ok()
        .and_then(|(rewritten, form)| match form {
            SecretForm::Json => serde_json::from_str::<serde_json::Value>(value.trim())
                .ok()?
                .get("host")?
                .as_str()
                .map(str::to_string),
            SecretForm::Url => {
                let start = rewritten.find('\u{0}')?;
                let tail = &value.trim()[start..];
                let end = tail.find([':', '/', '?', '#']).unwrap_or(tail.len());
                Some(tail[..end].to_string())
            }
        })
}

impl ConnectionHandover {
    /// A handover writing `db_instance_id`'s endpoint into secret `secret_id`.
    pub fn new(
        aws: &Aws,
        secret_id: impl Into<String>,
        db_instance_id: impl Into<String>,
    ) -> Result<Self> {
        let (secret_id, db_instance_id) = (secret_id.into(), db_instance_id.into());
        let id = TargetId::new(KIND, format!("{secret_id}->{db_instance_id}"));
        check_name(
            &id,
            "secret",
            &secret_id,
            "the connection secret's name or ARN",
        )?;
        check_name(
            &id,
            "DB instance",
            &db_instance_id,
            "the restored instance's identifier (RdsInstance::restore_identifier)",
        )?;
        let secret_region = crate::secrets::check_secret_arn(&id, &secret_id)?;
        let (_, db_region) = crate::rds::check_instance_arn(&id, &db_instance_id)?;
        let secrets = aws
            .lazy_client(Client::new)
            .pinned(&id, "secret", secret_region)?;
        let rds = aws
            .lazy_client(RdsClient::new)
            .pinned(&id, "DB instance", db_region)?;
        Ok(ConnectionHandover {
            secret_id,
            db_instance_id,
            aws: aws.config().clone(),
            secrets,
            rds,
            id,
        })
    }

    /// The secret whose connection details are handed over.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The instance the connection is handed over to.
    pub fn db_instance_id(&self) -> &str {
        &self.db_instance_id
    }

    /// The id of the revision this handover goes to.
    pub fn revision_id(&self) -> String {
        format!("handover:{}", self.db_instance_id)
    }

    /// The ClientRequestToken (and so the version id) of the version written when replacing
    /// version `from`: the same on every attempt and on resume.
    fn token(&self, from: &str) -> String {
        let name = format!("{}|{}|{}", self.secret_id, self.db_instance_id, from);
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
    }

    async fn stages(&self) -> Result<Vec<(String, Vec<String>)>> {
        let pages = self
            .secrets
            .get()
            .await?
            .list_secret_version_ids()
            .secret_id(&self.secret_id)
            .into_paginator()
            .send();
        Ok(all_pages(&self.id, "ListSecretVersionIds", pages)
            .await?
            .iter()
            .flat_map(|p| p.versions())
            .filter_map(|v| Some((v.version_id()?.to_string(), v.version_stages().to_vec())))
            .collect())
    }

    async fn awscurrent(&self) -> Result<String> {
        self.stages()
            .await?
            .into_iter()
            .find(|(_, s)| s.iter().any(|x| x == AWSCURRENT))
            .map(|(v, _)| v)
            .ok_or_else(|| {
                Error::not_found(
                    self.id.to_string(),
                    "an AWSCURRENT version",
                    "the secret has no current value",
                )
            })
    }

    /// The AWSCURRENT value (never to be shown).
    async fn value(&self) -> Result<String> {
        let out = self
            .secrets
            .get()
            .await?
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(AWSCURRENT)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "GetSecretValue", e))?;
        out.secret_string().map(str::to_string).ok_or_else(|| {
            Error::invalid(
                self.id.to_string(),
                "the secret holds binary data, not a connection string",
            )
        })
    }

    /// The instance's endpoint once it is available.
    async fn endpoint(&self) -> Result<Option<(String, i32)>> {
        let instance =
            describe_db_instance(&self.rds.get().await?, &self.id, &self.db_instance_id).await?;
        Ok(instance.and_then(|i| {
            if i.db_instance_status() != Some("available") {
                return None;
            }
            let e = i.endpoint()?;
            Some((e.address()?.to_string(), e.port()?))
        }))
    }

    fn target_revision(&self) -> Revision {
        Revision::new(self.revision_id())
            .description(format!("connection pointing at {}", self.db_instance_id))
    }
}

#[async_trait]
impl RollbackTarget for ConnectionHandover {
    fn id(&self) -> TargetId {
        self.id.clone()
    }

    /// The secret's versions listed, its value read and a new version written and
    /// labelled; the restored instance described (for its endpoint).
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let secret = if crate::arn::is_arn(&self.secret_id) {
            self.secret_id.clone()
        } else {
            self.secrets.arn(
                "secretsmanager",
                &format!("secret:{}-??????", self.secret_id),
            )
        };
        let name = crate::rds::check_instance_arn(&self.id, &self.db_instance_id)
            .ok()?
            .0;
        let mut p = rollback_core::Permission::aws_all(
            &[
                "secretsmanager:ListSecretVersionIds",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            &secret,
        );
        p.push(rollback_core::Permission::aws(
            "rds:DescribeDBInstances",
            self.rds.arn("rds", &format!("db:{name}")),
        ));
        Some(p)
    }

    fn spec(&self) -> TargetSpec {
        target::spec(self)
    }

    async fn current(&self) -> Result<Revision> {
        let v = self.awscurrent().await?;
        let mut r = Revision::new(v);
        r.description = Some(format!("AWSCURRENT of {}", self.secret_id));
        Ok(r)
    }

    /// The version in use; the one a handover writes does not exist until it runs.
    async fn history(&self) -> Result<Vec<Revision>> {
        Ok(vec![self.current().await?])
    }

    /// `Exact(handover.revision_id())` picks the version this handover writes; other
    /// selectors follow the shared rules over the one version in use (so `Previous` is
    /// not found).
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        if let Selector::Exact(id) = selector {
            if *id == self.revision_id() {
                return Ok(self.target_revision());
            }
        }
        let current = self.current().await?;
        selector
            .resolve(&self.id, std::slice::from_ref(&current), &current.id)
            .map_err(|e| match e {
                Error::NotFound {
                    target,
                    what,
                    hint,
                    source,
                } => Error::NotFound {
                    target,
                    what,
                    hint: format!("{hint}; a handover goes to Exact({:?})", self.revision_id()),
                    source,
                },
                other => other,
            })
    }

    /// Checks the secret's form now (so a value that cannot be rewritten stops the
    /// transaction before anything changes) and shows the host that will change.
    async fn plan(&self, to: &Revision) -> Result<Change> {
        let from = self.current().await?;
        let value = self.value().await?;
        rewrite_endpoint(&value, "example.invalid", 5432).map_err(|why| {
            Error::invalid(
                self.id.to_string(),
                format!("{why}; the handover cannot rewrite it"),
            )
        })?;
        let mut d = DiffBuilder::default();
        d.entry(
            DiffSection::Fact,
            "host",
            current_host(&value),
            Some(format!(
                "endpoint of {} (known once it is available)",
                self.db_instance_id
            )),
        );
        let mut to = to.clone();
        to.facts.insert("version".into(), self.token(&from.id));
        Ok(Change {
            target: self.id.clone(),
            from,
            to,
            diff: d.build(),
            precondition: None,
            origin: None,
            since: None,
        })
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let current = self.awscurrent().await?;
        if change.to.id == self.revision_id() {
            // Forward: write the new version.
            let token = self.token(&change.from.id);
            if current == token {
                return Ok(ApplyOutcome::AlreadyCurrent);
            }
            if current != change.from.id {
                return Err(Error::conflict(
                    self.id.to_string(),
                    change.from.id.clone(),
                    current,
                ));
            }
            let (host, port) = self.endpoint().await?.ok_or_else(|| {
                Error::invalid(
                    self.id.to_string(),
                    format!("instance {} has no endpoint yet (not available); restore it in an earlier stage", self.db_instance_id),
                )
            })?;
            let value = self.value().await?;
            let (new_value, _) = rewrite_endpoint(&value, &host, port)
                .map_err(|why| Error::invalid(self.id.to_string(), why))?;
            self.secrets
                .get()
                .await?
                .put_secret_value()
                .secret_id(&self.secret_id)
                .client_request_token(token)
                .secret_string(new_value)
                .send()
                .await
                .map_err(|e| sdk_error(&self.id, "PutSecretValue", e))?;
            return Ok(ApplyOutcome::Applied);
        }
        // Back (compensation): AWSCURRENT to the version in use before.
        if current == change.to.id {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        let written = self.token(&change.to.id);
        if current != written {
            return Err(Error::conflict(self.id.to_string(), written, current));
        }
        self.secrets
            .get()
            .await?
            .update_secret_version_stage()
            .secret_id(&self.secret_id)
            .version_stage(AWSCURRENT)
            .move_to_version_id(&change.to.id)
            .remove_from_version_id(current)
            .send()
            .await
            .map_err(|e| sdk_error(&self.id, "UpdateSecretVersionStage", e))?;
        Ok(ApplyOutcome::Applied)
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        let current = self.awscurrent().await?;
        // The handover revision names the version it writes (set in `plan`).
        let want = revision.facts.get("version").unwrap_or(&revision.id);
        // Both directions move AWSCURRENT at once (a new version, or the label moved back):
        // once our apply returned, AWSCURRENT elsewhere means someone else changed it.
        Ok(if &current == want {
            Stability::Stable
        } else {
            Stability::Failed(format!(
                "AWSCURRENT is on {current}, not {want}; someone else changed the secret"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_form_keeps_everything_but_host_and_port() {
        let (v, f) = rewrite_endpoint(
            "postgres://app:s3cr%40t@old.db.internal:5432/agentauri_backend?sslmode=require",
            "new.rds.amazonaws.com",
            5433,
        )
        .unwrap();
        assert_eq!(f, SecretForm::Url);
        assert_eq!(
            v,
            "postgres://app:s3cr%40t@new.rds.amazonaws.com:5433/agentauri_backend?sslmode=require"
        );
        let (v, _) = rewrite_endpoint("postgres://old-host/db", "h", 5432).unwrap();
        assert_eq!(v, "postgres://h:5432/db");
        assert_eq!(
            current_host("postgres://u:p@old.db:5432/x").as_deref(),
            Some("old.db")
        );
    }

    #[test]
    fn json_form_keeps_other_keys_and_port_type() {
        let (v, f) = rewrite_endpoint(
            r#"{"username":"app","password":"hunter2","host":"old","port":5432,"dbname":"x"}"#,
            "new",
            6543,
        )
        .unwrap();
        assert_eq!(f, SecretForm::Json);
        let j: serde_json::Value = serde_json::from_str(&v).unwrap();
        assert_eq!(j["host"], "new");
        assert_eq!(j["port"], 6543);
        assert_eq!(j["password"], "hunter2");
        let (v, _) = rewrite_endpoint(r#"{"host":"old","port":"5432"}"#, "new", 1).unwrap();
        assert!(v.contains(r#""port":"1""#), "{v}");
        assert_eq!(current_host(r#"{"host":"old"}"#).as_deref(), Some("old"));
    }

    #[test]
    fn unknown_forms_are_refused_without_showing_the_value() {
        for bad in [
            "hunter2-plain-password",
            r#"{"password":"hunter2"}"#,
            r#"{"host": "x", "password": "hunter2""#,
            "postgres://hunter2@/db",
        ] {
            let e = rewrite_endpoint(bad, "h", 1).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
