//! [`PodsReady`]: the check `kubectl get pods -n production -l app=backend-rust` stands
//! for in runbook 004: the pods matching a selector exist and are all Ready.

use std::fmt;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use rollback_core::verify::{CheckOutcome, Verifier};
use rollback_core::{Error, Result, TargetId};

use serde::{Deserialize, Serialize};

use crate::client::{check_name, kube_error, K8s, K8sConfig, NameRule, Op};
use crate::workload::{selector_query, Workload, WorkloadKind};

/// Where the label selector comes from.
#[derive(Clone)]
enum Source {
    Labels(String),
    Workload {
        read: std::sync::Arc<
            dyn Fn() -> futures::future::BoxFuture<'static, Result<String>> + Send + Sync,
        >,
        name: String,
        /// The workload as data: its target kind (`k8s-deployment`) and name.
        of: WorkloadRef,
    },
}

/// A workload named in a journal: its target kind and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WorkloadRef {
    kind: String,
    name: String,
}

/// A [`PodsReady`] as data: what a journal records of it as the check between the steps
/// of a gradual scale-up, so that a resumed scale-up runs it too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PodsReadyParams {
    namespace: String,
    /// The label selector given, or none for a workload's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    selector: Option<String>,
    /// The workload whose selector is read when the check runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workload: Option<WorkloadRef>,
    min: usize,
    #[serde(default)]
    pub(crate) k8s: K8sConfig,
}

/// Passes when at least [`min`](Self::min) pods match the selector and every one of them
/// is Ready (its `Ready` condition is `True`) and not being deleted. The evidence counts
/// them and names the pods that are not ready, with the reason their containers give
/// (`CrashLoopBackOff`, `ImagePullBackOff`...).
#[derive(Clone)]
pub struct PodsReady {
    k8s: K8s,
    namespace: String,
    source: Source,
    min: usize,
    id: TargetId,
}

impl fmt::Debug for PodsReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodsReady")
            .field("namespace", &self.namespace)
            .field("selector", &self.selector_name())
            .field("min", &self.min)
            .finish()
    }
}

impl PodsReady {
    /// Pods in `namespace` matching `selector` (`app=frontend,tier!=canary`, as
    /// `kubectl get pods -l`).
    pub fn new(
        k8s: &K8s,
        namespace: impl Into<String>,
        selector: impl Into<String>,
    ) -> Result<Self> {
        let (namespace, selector) = (namespace.into(), selector.into());
        let id = TargetId::new("k8s-pods", format!("{namespace}/{selector}"));
        check_name(&id, "namespace", &namespace, NameRule::Label)?;
        if selector.trim().is_empty() {
            return Err(Error::invalid(
                id.to_string(),
                "give a label selector such as app=frontend (an empty one would match every pod in the namespace)",
            ));
        }
        check_selector(&selector).map_err(|why| bad_selector(&id, &selector, &why))?;
        Ok(PodsReady {
            k8s: k8s.clone(),
            namespace,
            source: Source::Labels(selector),
            min: 1,
            id,
        })
    }

    /// The pods of a workload, by its own label selector (read when the check runs).
    pub fn of<W: WorkloadKind>(workload: &Workload<W>) -> Self {
        let w = workload.clone();
        let read = std::sync::Arc::new(move || {
            let w = w.clone();
            Box::pin(async move {
                let object = w.object().await?;
                Ok(object.selector().map(selector_query).unwrap_or_default())
            }) as futures::future::BoxFuture<'static, Result<String>>
        });
        PodsReady {
            k8s: workload.k8s.clone(),
            namespace: workload.namespace.clone(),
            source: Source::Workload {
                read,
                name: format!("{} {}", W::NOUN, workload.name),
                of: WorkloadRef {
                    kind: W::KIND.into(),
                    name: workload.name.clone(),
                },
            },
            min: 1,
            id: TargetId::new("k8s-pods", workload.id.name.clone()),
        }
    }

    /// At least this many pods must match (default 1; 0 lets "no pods" pass).
    pub fn min(mut self, n: usize) -> Self {
        self.min = n;
        self
    }

    /// This check as data.
    pub(crate) fn params(&self) -> PodsReadyParams {
        let (selector, workload) = match &self.source {
            Source::Labels(s) => (Some(s.clone()), None),
            Source::Workload { of, .. } => (None, Some(of.clone())),
        };
        PodsReadyParams {
            namespace: self.namespace.clone(),
            selector,
            workload,
            min: self.min,
            k8s: self.k8s.config.clone(),
        }
    }

    /// The check `params` describe, on `k8s`; refused as it would be when made in code.
    pub(crate) fn from_params(k8s: &K8s, p: PodsReadyParams) -> Result<Self> {
        use k8s_openapi::api::apps::v1 as apps;
        let check = match (p.selector, p.workload) {
            (Some(selector), _) => PodsReady::new(k8s, p.namespace, selector)?,
            (None, Some(w)) => {
                let kinds = [
                    <apps::Deployment as WorkloadKind>::KIND,
                    <apps::StatefulSet as WorkloadKind>::KIND,
                    <apps::DaemonSet as WorkloadKind>::KIND,
                ];
                match w.kind.as_str() {
                    k if k == kinds[0] => {
                        PodsReady::of(&Workload::<apps::Deployment>::new(k8s, p.namespace, w.name)?)
                    }
                    k if k == kinds[1] => PodsReady::of(&Workload::<apps::StatefulSet>::new(
                        k8s,
                        p.namespace,
                        w.name,
                    )?),
                    k if k == kinds[2] => {
                        PodsReady::of(&Workload::<apps::DaemonSet>::new(k8s, p.namespace, w.name)?)
                    }
                    other => {
                        return Err(Error::invalid(
                            "k8s-pods",
                            format!(
                                "the journal names the pods of a {other:?}, which is not a workload kind ({}); correct the journal",
                                kinds.join(", ")
                            ),
                        ))
                    }
                }
            }
            (None, None) => {
                return Err(Error::invalid(
                    format!("k8s-pods/{}", p.namespace),
                    "the journal gives neither a label selector nor a workload for the pods; correct the journal",
                ))
            }
        };
        Ok(check.min(p.min))
    }

    fn selector_name(&self) -> String {
        match &self.source {
            Source::Labels(s) => s.clone(),
            Source::Workload { name, .. } => format!("the pods of {name}"),
        }
    }
}

/// The error for a label selector the API server would refuse (it would answer 400 only
/// when the check first runs, after the rollback).
fn bad_selector(id: &TargetId, selector: &str, why: &str) -> Error {
    Error::invalid(
        id.to_string(),
        format!(
            "the label selector {:?} is not valid ({why}); give one as kubectl get pods -l takes it, e.g. app=frontend,tier!=canary",
            rollback_core::redact::truncate(selector, 80)
        ),
    )
}

/// Checks a label selector's syntax as the API server parses it (`k=v`, `k==v`, `k!=v`,
/// `k in (a,b)`, `k notin (a)`, `k`, `!k`, `k>1`, `k<1`, joined by commas; keys and values
/// as label keys and values are), saying what is wrong.
fn check_selector(selector: &str) -> std::result::Result<(), String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("a ')' without its '('")?,
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("a '(' without its ')'".into());
    }
    parts.push(&selector[start..]);
    parts.into_iter().try_for_each(check_requirement)
}

fn check_requirement(part: &str) -> std::result::Result<(), String> {
    let part = part.trim();
    if part.is_empty() {
        return Err("an empty requirement between commas".into());
    }
    if let Some(key) = part.strip_prefix('!') {
        return check_label_key(key.trim());
    }
    if let Some(open) = part.find('(') {
        let head: Vec<&str> = part[..open].split_whitespace().collect();
        let Some(values) = part[open + 1..].strip_suffix(')') else {
            return Err(format!("{part:?} has text after its ')'"));
        };
        match head.as_slice() {
            [key, "in" | "notin"] => {
                check_label_key(key)?;
                let values: Vec<&str> = values.split(',').map(str::trim).collect();
                if values.iter().all(|v| v.is_empty()) {
                    return Err(format!("{part:?} lists no values"));
                }
                return values.into_iter().try_for_each(check_label_value);
            }
            _ => {
                return Err(format!(
                    "{part:?} is not `key in (a,b)` or `key notin (a,b)`"
                ))
            }
        }
    }
    for op in ["!=", "==", "=", ">", "<"] {
        if let Some((key, value)) = part.split_once(op) {
            check_label_key(key.trim())?;
            let value = value.trim();
            if op == ">" || op == "<" {
                return value
                    .parse::<i64>()
                    .map(|_| ())
                    .map_err(|_| format!("{part:?} compares with {value:?}, not a whole number"));
            }
            return check_label_value(value);
        }
    }
    check_label_key(part)
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
fn check_label_key(key: &str) -> std::result::Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(format!("the key prefix {p:?} is not a DNS subdomain"));
        }
    }
    if name.is_empty() {
        return Err(format!("the key {key:?} has no name"));
    }
    label_text(name).map_err(|f| format!("the key {key:?} {f}"))
}

/// A label value: empty, or at most 63 letters, digits, `-`, `_` and `.`, starting and
/// ending with a letter or digit.
fn check_label_value(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    label_text(value).map_err(|f| format!("the value {value:?} {f}"))
}

fn label_text(text: &str) -> std::result::Result<(), &'static str> {
    if text.len() > 63 {
        return Err("is over 63 characters");
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err("has characters other than letters, digits, '-', '_' and '.'");
    }
    let ends = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !ends(text.bytes().next()) || !ends(text.bytes().last()) {
        return Err("does not start and end with a letter or digit");
    }
    Ok(())
}

/// Why a pod is not ready: its containers' waiting or terminated reasons, else its phase.
fn not_ready_reason(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    let reasons: Vec<String> = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let state = c.state.as_ref()?;
            state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .or_else(|| state.terminated.as_ref().and_then(|t| t.reason.clone()))
        })
        .collect();
    if !reasons.is_empty() {
        return reasons.join(", ");
    }
    status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "no status".into())
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[async_trait]
impl Verifier for PodsReady {
    fn name(&self) -> String {
        format!("pods ready: {} in {}", self.selector_name(), self.namespace)
    }

    /// The pods listed; for a workload's own selector, the workload read by name.
    fn permissions(&self) -> Option<Vec<rollback_core::Permission>> {
        let mut p =
            rollback_core::Permission::kubernetes("", "pods", &["list"], &self.namespace, None);
        if let Source::Workload { of, .. } = &self.source {
            let plural = match of.kind.as_str() {
                "k8s-deployment" => "deployments",
                "k8s-statefulset" => "statefulsets",
                "k8s-daemonset" => "daemonsets",
                _ => return None,
            };
            p.extend(rollback_core::Permission::kubernetes(
                "apps",
                plural,
                &["get"],
                &self.namespace,
                Some(&of.name),
            ));
        }
        Some(p)
    }

    /// The namespace and a given label selector, as the API server would take them; a
    /// workload's own selector is read when the check runs. Calls nothing.
    fn validate(&self) -> Result<()> {
        check_name(&self.id, "namespace", &self.namespace, NameRule::Label)?;
        match &self.source {
            Source::Labels(s) => check_selector(s).map_err(|why| bad_selector(&self.id, s, &why)),
            Source::Workload { .. } => Ok(()),
        }
    }

    async fn check(&self) -> Result<CheckOutcome> {
        let selector = match &self.source {
            Source::Labels(s) => s.clone(),
            Source::Workload { read, .. } => read().await?,
        };
        let pods: Api<Pod> = Api::namespaced(self.k8s.client.clone(), &self.namespace);
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| kube_error(&self.id, &Op::of::<Pod>("list", &self.namespace, None), e))?;
        let total = list.items.len();
        let mut not_ready: Vec<String> = list
            .items
            .iter()
            .filter(|p| !is_ready(p))
            .map(|p| {
                format!(
                    "{} ({})",
                    p.metadata.name.as_deref().unwrap_or("?"),
                    not_ready_reason(p)
                )
            })
            .collect();
        not_ready.sort();
        let ready = total - not_ready.len();
        let summary = format!("{ready} of {total} pod(s) ready ({selector})");
        Ok(if total < self.min {
            CheckOutcome::fail(format!("{summary}; at least {} expected", self.min))
        } else if not_ready.is_empty() {
            CheckOutcome::pass(summary)
        } else {
            CheckOutcome::fail(format!("{summary}; not ready: {}", not_ready.join(", ")))
        })
    }
}

/// Registers check kind `k8s-pods-ready`, as a runbook file names it: `namespace` (else the
/// registry's default, [`K8sDefaults`](crate::K8sDefaults)) and one of
/// `deployment`, `statefulset`, `daemonset` (that workload's own pods) or `selector`
/// (`app=frontend`); `min` pods at least (default 1); optional `k8s` settings (context,
/// kubeconfig). Built offline: nothing is read before the check runs.
pub(crate) fn register_check(
    r: &mut rollback_core::Registry,
    clients: &crate::client::Clients,
    defaults: &crate::client::K8sDefaults,
) {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        namespace: String,
        #[serde(default)]
        selector: Option<String>,
        #[serde(default)]
        deployment: Option<String>,
        #[serde(default)]
        statefulset: Option<String>,
        #[serde(default)]
        daemonset: Option<String>,
        #[serde(default = "one")]
        min: usize,
        #[serde(default)]
        k8s: K8sConfig,
    }
    fn one() -> usize {
        1
    }
    let (clients, defaults) = (clients.clone(), defaults.clone());
    r.register_check("k8s-pods-ready", move |params| {
        let clients = clients.clone();
        let params = defaults.fill("k8s-pods-ready", params);
        async move {
            let what = "k8s-pods-ready";
            let p: Params = serde_json::from_value(params?).map_err(|e| {
                Error::invalid(
                    what,
                    format!("{e}; give namespace and one of deployment, statefulset, daemonset or selector"),
                )
            })?;
            let k8s = clients.load(&p.k8s).await?;
            use k8s_openapi::api::apps::v1 as apps;
            let check = match (p.selector, p.deployment, p.statefulset, p.daemonset) {
                (Some(s), None, None, None) => PodsReady::new(&k8s, p.namespace, s)?,
                (None, Some(n), None, None) => {
                    PodsReady::of(&Workload::<apps::Deployment>::new(&k8s, p.namespace, n)?)
                }
                (None, None, Some(n), None) => {
                    PodsReady::of(&Workload::<apps::StatefulSet>::new(&k8s, p.namespace, n)?)
                }
                (None, None, None, Some(n)) => {
                    PodsReady::of(&Workload::<apps::DaemonSet>::new(&k8s, p.namespace, n)?)
                }
                _ => {
                    return Err(Error::invalid(
                        what,
                        "give exactly one of deployment, statefulset, daemonset or selector",
                    ))
                }
            };
            Ok(std::sync::Arc::new(check.min(p.min)) as std::sync::Arc<dyn Verifier>)
        }
    });
}

#[cfg(test)]
mod tests {
    use super::check_selector;

    #[test]
    fn label_selectors_as_the_api_server_parses_them() {
        for ok in [
            "app=frontend",
            "app==frontend,tier!=canary",
            "app.kubernetes.io/name=api",
            "!canary",
            "tier",
            "env in (prod, staging),tier notin (canary)",
            "env in(prod)",
            "generation>3",
            "app=",
        ] {
            assert!(check_selector(ok).is_ok(), "{ok}: {:?}", check_selector(ok));
        }
        for (bad, want) in [
            ("app=frontend,,tier=web", "empty requirement"),
            ("app=frontend,", "empty requirement"),
            ("app=front end", "the value \"front end\""),
            ("app=-frontend", "start and end with a letter or digit"),
            ("App_/x=1", "not a DNS subdomain"),
            ("=frontend", "has no name"),
            ("env in prod", "the key \"env in prod\""),
            ("env in ()", "lists no values"),
            ("generation>three", "whole number"),
            ("app~frontend", "the key \"app~frontend\""),
        ] {
            let err = check_selector(bad).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
