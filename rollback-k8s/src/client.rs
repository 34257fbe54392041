//! The Kubernetes client the targets share: where it comes from, and how its errors become
//! [`rollback_core::Error`]s.

use std::fmt;
use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use rollback_core::{Error, Result, TargetId};
use serde::{Deserialize, Serialize};

/// Where the client's configuration comes from, as data (what a journal records, so that a
/// resumed run talks to the same cluster). Never credentials: those stay in the kubeconfig
/// or the pod's service account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct K8sConfig {
    /// A kubeconfig file; `None` uses `KUBECONFIG` / `~/.kube/config`, or the in-cluster
    /// service account when there is no kubeconfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `None` uses the current context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// An API server URL to talk to without credentials (`kubectl proxy`'s
    /// `http://127.0.0.1:8001`, or the test simulator). Overrides the other two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl K8sConfig {
    /// The client this configuration describes.
    ///
    /// Errors are [`Error::InvalidInput`] naming the kubeconfig, context or URL at fault.
    pub async fn load(&self) -> Result<K8s> {
        let what = "kubernetes";
        let config = if let Some(url) = &self.url {
            let uri: http::Uri = url.parse().map_err(|e| {
                Error::invalid(
                    what,
                    format!("{url:?} is not an API server URL ({e}); give one like http://127.0.0.1:8001"),
                )
            })?;
            kube::Config::new(uri)
        } else {
            let options = KubeConfigOptions {
                context: self.context.clone(),
                ..KubeConfigOptions::default()
            };
            match &self.kubeconfig {
                Some(path) => {
                    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                        Error::invalid(
                            what,
                            format!("cannot read kubeconfig {}: {e}", path.display()),
                        )
                    })?;
                    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                        .await
                        .map_err(|e| {
                            Error::invalid(
                                what,
                                format!("kubeconfig {}: {e}", path.display()),
                            )
                        })?
                }
                None if self.context.is_some() => kube::Config::from_kubeconfig(&options)
                    .await
                    .map_err(|e| {
                        Error::invalid(
                            what,
                            format!("kubeconfig context {:?}: {e}", self.context),
                        )
                    })?,
                None => kube::Config::infer().await.map_err(|e| {
                    Error::invalid(
                        what,
                        format!("no Kubernetes configuration found ({e}); set KUBECONFIG, run in a pod, or pass a client"),
                    )
                })?,
            }
        };
        let client = kube::Client::try_from(config)
            .map_err(|e| Error::invalid(what, format!("cannot build a Kubernetes client: {e}")))?;
        Ok(K8s {
            client,
            config: self.clone(),
        })
    }
}

/// A Kubernetes client and the configuration it came from; cheap to clone, shared by the
/// targets made from it.
#[derive(Clone)]
pub struct K8s {
    pub(crate) client: kube::Client,
    pub(crate) config: K8sConfig,
}

impl fmt::Debug for K8s {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("K8s").field("config", &self.config).finish()
    }
}

impl K8s {
    /// The client kubectl would use: `KUBECONFIG` (or `~/.kube/config`) and its current
    /// context, else the in-cluster service account.
    pub async fn from_env() -> Result<K8s> {
        K8sConfig::default().load().await
    }

    /// A client for an API server that needs no credentials (`kubectl proxy`, the test
    /// simulator). Must be called inside a Tokio runtime.
    pub fn from_url(url: impl Into<String>) -> Result<K8s> {
        let url = url.into();
        let uri: http::Uri = url.parse().map_err(|e| {
            Error::invalid(
                "kubernetes",
                format!("{url:?} is not an API server URL ({e})"),
            )
        })?;
        let client = kube::Client::try_from(kube::Config::new(uri)).map_err(|e| {
            Error::invalid(
                "kubernetes",
                format!("cannot build a Kubernetes client: {e}"),
            )
        })?;
        Ok(K8s {
            client,
            config: K8sConfig {
                url: Some(url),
                ..K8sConfig::default()
            },
        })
    }

    /// Targets on a client you built yourself (your own config, a `tower_test` mock...).
    ///
    /// A journal cannot record a client: a run resumed from it uses
    /// [`K8sConfig::default`] (`KUBECONFIG` or in-cluster) unless the target is passed to
    /// the resume again; use [`with_config`](Self::with_config) to say what to record.
    pub fn from_client(client: kube::Client) -> K8s {
        K8s {
            client,
            config: K8sConfig::default(),
        }
    }

    /// The same client, recording `config` in journals.
    pub fn with_config(mut self, config: K8sConfig) -> K8s {
        self.config = config;
        self
    }

    /// The kube-rs client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The configuration journals record.
    pub fn config(&self) -> &K8sConfig {
        &self.config
    }
}

/// Checks a namespace or object name as the API server would (a DNS label or subdomain:
/// lower-case alphanumerics, `-` and `.`, at most 253 characters), so bad input is refused
/// before any request.
pub(crate) fn check_name(target: &TargetId, what: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            target.to_string(),
            format!(
                "{what} {value:?} is not a valid Kubernetes name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
            ),
        ))
    }
}

/// Maps a kube-rs error to the error kinds of the transaction: 404 not found, 409 conflict,
/// 429 throttled, 5xx and connection failures retryable, 401/403 with a hint about RBAC.
pub(crate) fn kube_error(target: &TargetId, doing: &str, e: kube::Error) -> Error {
    let id = target.to_string();
    match e {
        kube::Error::Api(status) => {
            let code = status.code;
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match code {
                404 => Error::not_found(
                    id,
                    format!("{doing}: {message}"),
                    "check the namespace and name (kubectl get -n <namespace> ...)",
                ),
                409 => Error::Conflict {
                    target: id,
                    expected: "the object as read".into(),
                    found: format!("a newer version ({message})"),
                },
                429 => Error::Throttled {
                    target: id,
                    message: format!("{doing}: {message}"),
                    retry_after: None,
                },
                401 | 403 => Error::backend(
                    id,
                    format!(
                        "{doing}: {message} (HTTP {code}); the credentials in use may not {doing}: check the RBAC rules for this namespace"
                    ),
                    false,
                ),
                400 | 422 => Error::invalid(id, format!("{doing}: {message} (HTTP {code})")),
                c if c >= 500 => Error::backend(id, format!("{doing}: {message} (HTTP {code})"), true),
                _ => Error::backend(id, format!("{doing}: {message} (HTTP {code})"), false),
            }
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            Error::Backend {
                target: id,
                message: format!("{doing}: cannot reach the API server: {e}"),
                retryable: true,
                source: Some(Box::new(e)),
            }
        }
        other => Error::Backend {
            target: id,
            message: format!("{doing}: {other}"),
            retryable: false,
            source: Some(Box::new(other)),
        },
    }
}
