//! The Kubernetes client the targets share: where it comes from, and how its errors become
//! [`rollback_core::Error`]s.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use rollback_core::redact::{excerpt, EXCERPT_CHARS};
use rollback_core::{Error, Result, TargetId};
use serde::{Deserialize, Serialize};

/// Where the client's configuration comes from, as data (what a journal records, so that a
/// resumed run talks to the same cluster). Never credentials: those stay in the kubeconfig
/// or the pod's service account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
            kube::Config::new(server_url(url)?)
        } else {
            let options = KubeConfigOptions {
                context: self.context.clone(),
                ..KubeConfigOptions::default()
            };
            let kubeconfig = match &self.kubeconfig {
                Some(path) => Some(Kubeconfig::read_from(path).map_err(|e| {
                    Error::invalid(
                        what,
                        format!(
                            "cannot read kubeconfig {} ({}); give a readable kubeconfig file",
                            path.display(),
                            excerpt(&e.to_string(), EXCERPT_CHARS)
                        ),
                    )
                    .with_source(e)
                })?),
                None if self.context.is_some() => Some(Kubeconfig::read().map_err(|e| {
                    Error::invalid(
                        what,
                        format!(
                            "context {:?} was asked for, but no kubeconfig could be read ({}); set KUBECONFIG",
                            self.context.as_deref().unwrap_or_default(),
                            excerpt(&e.to_string(), EXCERPT_CHARS)
                        ),
                    )
                    .with_source(e)
                })?),
                None => None,
            };
            match kubeconfig {
                Some(kubeconfig) => {
                    if let Some(context) = &self.context {
                        check_context(&kubeconfig, context)?;
                    }
                    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                        .await
                        .map_err(|e| {
                            Error::invalid(
                                what,
                                format!(
                                    "the kubeconfig does not give a usable client ({}); check it with kubectl config view",
                                    excerpt(&e.to_string(), EXCERPT_CHARS)
                                ),
                            )
                            .with_source(e)
                        })?
                }
                None => kube::Config::infer().await.map_err(|e| {
                    Error::invalid(
                        what,
                        format!(
                            "no Kubernetes configuration found ({}); set KUBECONFIG, run in a pod, or pass a client",
                            excerpt(&e.to_string(), EXCERPT_CHARS)
                        ),
                    )
                    .with_source(e)
                })?,
            }
        };
        let client = kube::Client::try_from(config).map_err(|e| {
            Error::invalid(what, format!("cannot build a Kubernetes client: {e}")).with_source(e)
        })?;
        Ok(K8s {
            client,
            config: self.clone(),
        })
    }
}

/// What a runbook entry or a history name may leave out, filled in when [`register`]'s
/// registry builds a target or a `k8s-pods-ready` check: the kubeconfig context and the
/// namespace. [`register`] reads them from [`CONTEXT_VAR`] and [`NAMESPACE_VAR`] (what the
/// command line's `--context` and `--namespace` set). What the entry gives wins, and what
/// is filled in is recorded in the target's spec, so a resumed run goes to the same place.
///
/// [`register`]: crate::register
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K8sDefaults {
    /// The context for targets and checks whose `k8s` settings name neither a context nor
    /// a URL; `None`: the kubeconfig's current context.
    pub context: Option<String>,
    /// The namespace for targets and checks that give none; `None`: they must give one.
    pub namespace: Option<String>,
}

/// The environment variable naming the default kubeconfig context ([`K8sDefaults`]).
pub const CONTEXT_VAR: &str = "ROLLBACK_KUBE_CONTEXT";
/// The environment variable naming the default namespace ([`K8sDefaults`]).
pub const NAMESPACE_VAR: &str = "ROLLBACK_KUBE_NAMESPACE";

impl K8sDefaults {
    /// [`CONTEXT_VAR`] and [`NAMESPACE_VAR`]; unset or empty is no default.
    pub fn from_env() -> K8sDefaults {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        K8sDefaults {
            context: var(CONTEXT_VAR),
            namespace: var(NAMESPACE_VAR),
        }
    }

    /// `params` of a `kind` target or check with what they leave out filled in; a
    /// namespace neither they nor the defaults give is refused, saying how to give one.
    pub(crate) fn fill(&self, kind: &str, params: serde_json::Value) -> Result<serde_json::Value> {
        use serde_json::Value;
        let Value::Object(mut map) = params else {
            return Ok(params);
        };
        if map.get("namespace").is_none_or(Value::is_null) {
            let Some(namespace) = &self.namespace else {
                return Err(Error::invalid(
                    kind,
                    format!(
                        "no namespace: give it one (namespace: ...), or a default one with `rollback --namespace` or {NAMESPACE_VAR}"
                    ),
                ));
            };
            map.insert("namespace".into(), Value::from(namespace.as_str()));
        }
        if let Some(context) = &self.context {
            let k8s = map
                .entry("k8s")
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if k8s.is_null() {
                *k8s = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(k8s) = k8s {
                let set = |k: &str| k8s.get(k).is_some_and(|v| !v.is_null());
                if !set("context") && !set("url") {
                    k8s.insert("context".into(), Value::from(context.as_str()));
                }
            }
        }
        Ok(Value::Object(map))
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
        let client = kube::Client::try_from(kube::Config::new(server_url(&url)?)).map_err(|e| {
            Error::invalid(
                "kubernetes",
                format!("cannot build a Kubernetes client: {e}"),
            )
            .with_source(e)
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

/// Where the targets a [`Registry`](rollback_core::Registry) rebuilds get their client:
/// the one given to [`register_with`](crate::register_with), or each configuration a journal
/// recorded, loaded once and shared by every target (and check) that recorded it.
#[derive(Clone)]
pub(crate) enum Clients {
    /// Every target on this client.
    Given(K8s),
    /// Each recorded configuration loaded once.
    Resolved(Arc<tokio::sync::Mutex<HashMap<K8sConfig, K8s>>>),
    /// No cluster: every target on a client whose calls go nowhere ([`crate::register_offline`]).
    Offline,
}

/// Where [`Clients::Offline`]'s client points: a name that never resolves (RFC 2606).
const OFFLINE_URL: &str = "http://offline.invalid";

impl Clients {
    /// Each recorded configuration loaded once.
    pub(crate) fn resolved() -> Clients {
        Clients::Resolved(Arc::default())
    }

    /// The client for `config`: the given one, or `config` loaded once and shared.
    pub(crate) async fn load(&self, config: &K8sConfig) -> Result<K8s> {
        match self {
            Clients::Given(k8s) => Ok(k8s.clone()),
            Clients::Offline => {
                if let Some(url) = &config.url {
                    server_url(url)?;
                }
                K8sConfig {
                    url: Some(OFFLINE_URL.into()),
                    ..K8sConfig::default()
                }
                .load()
                .await
            }
            Clients::Resolved(cache) => {
                let mut cache = cache.lock().await;
                match cache.get(config) {
                    Some(k8s) => Ok(k8s.clone()),
                    None => config.load().await.inspect(|k8s| {
                        cache.insert(config.clone(), k8s.clone());
                    }),
                }
            }
        }
    }

    /// The client for a target rebuilt from its spec, which recorded `config`; a bad
    /// configuration is refused naming the target (`kind/namespace/name`) it was for.
    pub(crate) async fn for_target(
        &self,
        config: &K8sConfig,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<K8s> {
        self.load(config).await.map_err(|e| match e {
            Error::InvalidInput {
                message, source, ..
            } => Error::InvalidInput {
                target: TargetId::new(kind, format!("{namespace}/{name}")).to_string(),
                message,
                source,
            },
            other => other,
        })
    }
}

/// An API server URL: `http` or `https` with a host.
fn server_url(url: &str) -> Result<http::Uri> {
    let refuse = |why: String| {
        Error::invalid(
            "kubernetes",
            format!(
                "{:?} is not an API server URL ({why}); give one like http://127.0.0.1:8001",
                rollback_core::redact::truncate(url, 80)
            ),
        )
    };
    let uri: http::Uri = url.parse().map_err(|e| refuse(format!("{e}")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(uri),
        (Some("http" | "https"), _) => Err(refuse("no host".into())),
        _ => Err(refuse("not http or https".into())),
    }
}

/// Refuses a context the kubeconfig does not have, naming the ones it has (kube-rs would
/// only say it failed to load the context data).
fn check_context(kubeconfig: &Kubeconfig, context: &str) -> Result<()> {
    if kubeconfig.contexts.iter().any(|c| c.name == context) {
        return Ok(());
    }
    let mut names: Vec<&str> = kubeconfig
        .contexts
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    names.sort_unstable();
    Err(Error::invalid(
        "kubernetes",
        format!(
            "the kubeconfig has no context {:?} (it has: {}); choose one of them (kubectl config get-contexts)",
            rollback_core::redact::truncate(context, 80),
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ),
    ))
}

/// Which of the API server's name rules a kind's names follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 label: namespaces, StatefulSets (their pods' host names are labels).
    Label,
    /// A DNS-1123 subdomain: Deployments, DaemonSets.
    Subdomain,
}

/// Why `value` breaks the DNS-1123 label rule, if it does.
fn label_fault(value: &str, max: usize) -> Option<String> {
    if value.is_empty() {
        return Some("it is empty".into());
    }
    if value.len() > max {
        return Some(format!("it is {} characters long, over {max}", value.len()));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(if c.is_ascii_uppercase() {
            format!("it has the upper-case letter {c:?}")
        } else {
            format!("it has the character {c:?}")
        });
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Some("it starts or ends with '-'".into());
    }
    None
}

/// Checks a namespace or object name as the API server would (`rule`: a DNS-1123 label of
/// at most 63 characters, or a subdomain of at most 253: dot-separated labels), so bad
/// input is refused before any request, saying what is wrong with it.
pub(crate) fn check_name(target: &TargetId, what: &str, value: &str, rule: NameRule) -> Result<()> {
    let fault = match rule {
        NameRule::Label => label_fault(value, 63),
        NameRule::Subdomain if value.len() > 253 => {
            Some(format!("it is {} characters long, over 253", value.len()))
        }
        NameRule::Subdomain => value.split('.').find_map(|part| {
            label_fault(part, 253).map(|f| {
                if value.contains('.') && part.is_empty() {
                    "it has an empty part between dots".to_string()
                } else {
                    f
                }
            })
        }),
    };
    let Some(fault) = fault else {
        return Ok(());
    };
    let shown = rollback_core::redact::truncate(value, 80);
    let rule = match rule {
        NameRule::Label => {
            "at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
        }
        NameRule::Subdomain => {
            "at most 253 characters of lower-case letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit"
        }
    };
    Err(Error::invalid(
        target.to_string(),
        format!("{what} {shown:?} is not a valid Kubernetes {what} ({fault}); give {rule}"),
    ))
}

/// One API request, as error messages name it: the verb, the kind and where
/// (`patch deployment production/frontend`, `list replicasets in namespace production`).
#[derive(Debug, Clone)]
pub(crate) struct Op {
    verb: &'static str,
    kind: String,
    plural: String,
    namespace: String,
    name: Option<String>,
}

impl Op {
    /// `verb` on objects of `K` in `namespace` (`name`, or the collection when `None`).
    pub(crate) fn of<K: kube::Resource<DynamicType = ()>>(
        verb: &'static str,
        namespace: &str,
        name: Option<&str>,
    ) -> Op {
        Op {
            verb,
            kind: K::kind(&()).to_ascii_lowercase(),
            plural: K::plural(&()).into_owned(),
            namespace: namespace.to_string(),
            name: name.map(str::to_string),
        }
    }

    /// `verb` on the object `name` of a kind known only at run time (`configmap`,
    /// `configmaps`) in `namespace`.
    pub(crate) fn named(
        verb: &'static str,
        (kind, plural): (&str, &str),
        namespace: &str,
        name: &str,
    ) -> Op {
        Op {
            verb,
            kind: kind.to_string(),
            plural: plural.to_string(),
            namespace: namespace.to_string(),
            name: Some(name.to_string()),
        }
    }

    /// `kubectl get ...` for the object or collection: what a person runs to look.
    fn kubectl_get(&self) -> String {
        match &self.name {
            Some(name) => format!("kubectl get {} {name} -n {}", self.kind, self.namespace),
            None => format!("kubectl get {} -n {}", self.plural, self.namespace),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} {} {}/{name}", self.verb, self.kind, self.namespace),
            None => write!(
                f,
                "{} {} in namespace {}",
                self.verb, self.plural, self.namespace
            ),
        }
    }
}

/// The reason kube-rs gives a Status it made up from an answer that was not a Status (an
/// HTML page from a proxy, plain text).
const UNPARSED_REASON: &str = "Failed to parse error data";

/// The HTTP status, the API's reason and a short, secret-free excerpt of its message (or of
/// the body, when the answer was not a Kubernetes `Status`).
pub(crate) fn describe_status(status: &kube::core::Status) -> String {
    let code = if status.code == 0 {
        "an error".to_string()
    } else {
        format!("HTTP {}", status.code)
    };
    let excerpt = |text: &str| excerpt(text, EXCERPT_CHARS);
    if status.reason == UNPARSED_REASON {
        return format!(
            "{code} with an answer that is not a Kubernetes Status: \"{}\"",
            excerpt(&status.message)
        );
    }
    let reason = excerpt(&status.reason);
    let message = excerpt(&status.message);
    match (reason.is_empty(), message.is_empty()) {
        (true, true) => code,
        (false, true) => format!("{code} ({reason})"),
        (true, false) => format!("{code}: {message}"),
        (false, false) => format!("{code} ({reason}): {message}"),
    }
}

/// The innermost cause of an error (`Connection refused (os error 111)`), which says what
/// happened without the wrapper types' names.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    excerpt(&cause.to_string(), EXCERPT_CHARS)
}

/// Maps a kube-rs error from `op` to the error kinds of the transaction, as one or two
/// sentences a person can act on: the operation, the HTTP status, the API's reason and
/// message (or a secret-checked excerpt of a body that was not a Kubernetes Status), and
/// what to do (RBAC for 403, retry for 5xx and 429, the name, namespace and context for
/// 404). The kube error itself is the `source()` of every kind, never in the message: its
/// `Display` is a `Debug` dump.
pub(crate) fn kube_error(target: &TargetId, op: &Op, e: kube::Error) -> Error {
    let id = target.to_string();
    let status = match e {
        kube::Error::Api(status) => status,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            let cause = root_cause(&e);
            return Error::backend(
                id,
                format!(
                    "{op}: cannot reach the API server ({cause}). Check the server URL of the kubeconfig context and that the API server is up; calls are retried with backoff"
                ),
                true,
            )
            .with_source(e);
        }
        kube::Error::SerdeError(ref inner) => {
            let cause = excerpt(&inner.to_string(), EXCERPT_CHARS);
            return Error::backend(
                id,
                format!(
                    "{op}: the API server's answer is not a Kubernetes {} ({cause}). Check that the kubeconfig context points at a Kubernetes API server, not a proxy or a login page",
                    op.kind
                ),
                false,
            )
            .with_source(e);
        }
        other => {
            let cause = root_cause(&other);
            return Error::backend(id, format!("{op} failed: {cause}"), false).with_source(other);
        }
    };
    let what = describe_status(&status);
    let error = match status.code {
        404 => Error::not_found(
            id,
            match &op.name {
                Some(name) => format!("{} {name:?} in namespace {:?}", op.kind, op.namespace),
                None => format!("{} in namespace {:?}", op.plural, op.namespace),
            },
            format!(
                "{op} answered {what}; check the name, the namespace and the kubeconfig context ({})",
                op.kubectl_get()
            ),
        ),
        409 => Error::conflict(
            id,
            "the object as read",
            format!("a newer version ({op} answered {what})"),
        ),
        429 => Error::throttled(
            id,
            format!("{op} answered {what}; the API server is overloaded, try again in a moment"),
            status
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0)
                .map(|s| std::time::Duration::from_secs(u64::from(s))),
        ),
        401 => Error::backend(
            id,
            format!(
                "{op} answered {what}. The API server did not accept the credentials: log in again, or check the user of the kubeconfig context"
            ),
            false,
        ),
        403 => Error::permission_denied(
            id,
            format!("{} {}", op.verb, op.plural),
            match &op.name {
                Some(name) => format!("{}/{name}", op.namespace),
                None => format!("namespace {}", op.namespace),
            },
            format!(
                "{op} answered {what}. Check the RBAC rules (kubectl auth can-i {} {} -n {}); `rollback policy --format rbac` prints the Role a runbook needs",
                op.verb, op.plural, op.namespace
            ),
        ),
        400 | 422 => Error::invalid(
            id,
            format!("{op} was refused as invalid: {what}; correct the input and plan again"),
        ),
        c if c >= 500 => Error::backend(
            id,
            format!(
                "{op} answered {what}. The API server failed; try again (calls are retried with backoff)"
            ),
            true,
        ),
        _ => Error::backend(id, format!("{op} answered {what}"), false),
    };
    error.with_source(kube::Error::Api(status))
}

/// A watch error as a progress line (the watch resumes by itself): what failed, without
/// kube-rs's `Debug` dump of the API's answer.
pub(crate) fn watch_problem(e: &kube::runtime::watcher::Error) -> String {
    use kube::runtime::watcher::Error as W;
    let what = match e {
        W::InitialListFailed(k) | W::WatchStartFailed(k) | W::WatchFailed(k) => match k {
            kube::Error::Api(status) => describe_status(status),
            other => root_cause(other),
        },
        W::WatchError(status) => describe_status(status),
        W::NoResourceVersion => "an answer without metadata.resourceVersion".into(),
    };
    format!("watch interrupted ({what}), resuming")
}
