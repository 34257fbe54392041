//! [`PodsReady`]: the check `kubectl get pods -n production -l app=backend-rust` stands
//! for in runbook 004: the pods matching a selector exist and are all Ready.

use std::fmt;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use rollback_core::verify::{CheckOutcome, Verifier};
use rollback_core::{Error, Result, TargetId};

use crate::client::{check_name, kube_error, K8s};
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
    },
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
        check_name(&id, "namespace", &namespace)?;
        if selector.trim().is_empty() {
            return Err(Error::invalid(
                id.to_string(),
                "give a label selector such as app=frontend (an empty one would match every pod in the namespace)",
            ));
        }
        check_selector(&selector).map_err(|why| Error::invalid(id.to_string(), why))?;
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

    fn selector_name(&self) -> String {
        match &self.source {
            Source::Labels(s) => s.clone(),
            Source::Workload { name, .. } => format!("the pods of {name}"),
        }
    }
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

/// Checks `selector` against the label selector grammar of the API server
/// (`apimachinery/pkg/labels`): comma-separated `key`, `!key`, `key=value`, `key==value`,
/// `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key>1`, `key<1`, with keys
/// `[prefix/]name` and values of at most 63 characters. The server would answer 400 only
/// when the check first runs, after the rollback.
fn check_selector(selector: &str) -> std::result::Result<(), String> {
    let mut depth = 0i32;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&selector[start..]);
    parts
        .into_iter()
        .try_for_each(requirement)
        .map_err(|why| format!("label selector {selector:?}: {why}; write it as kubectl get pods -l takes it, e.g. app=frontend,tier!=canary"))
}

/// One requirement of a label selector.
fn requirement(r: &str) -> std::result::Result<(), String> {
    let r = r.trim();
    if r.is_empty() {
        return Err("it has an empty requirement (a stray comma?)".into());
    }
    if let Some(key) = r.strip_prefix('!') {
        return label_key(key.trim());
    }
    let end = r
        .find(|c: char| "=!<>(".contains(c) || c.is_whitespace())
        .unwrap_or(r.len());
    let (key, rest) = (&r[..end], r[end..].trim_start());
    label_key(key)?;
    if rest.is_empty() {
        return Ok(());
    }
    for op in ["!=", "==", "=", ">", "<"] {
        if let Some(value) = rest.strip_prefix(op) {
            let value = value.trim();
            if op == ">" || op == "<" {
                return value
                    .parse::<i64>()
                    .map(|_| ())
                    .map_err(|_| format!("{key}{op} needs a whole number, not {value:?}"));
            }
            return label_value(value);
        }
    }
    for op in ["notin", "in"] {
        let Some(after) = rest.strip_prefix(op) else {
            continue;
        };
        let set = after.trim();
        let Some(inner) = set.strip_prefix('(').and_then(|s| s.strip_suffix(')')) else {
            return Err(format!(
                "{key} {op} needs a set of values in parentheses, e.g. (a,b)"
            ));
        };
        if inner.trim().is_empty() {
            return Err(format!("{key} {op} () has no values"));
        }
        return inner.split(',').try_for_each(|v| label_value(v.trim()));
    }
    Err(format!("{r:?} is not a requirement"))
}

/// `[prefix/]name`: a DNS subdomain prefix and a name as [`label_value`], not empty.
fn label_key(key: &str) -> std::result::Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !ok {
            return Err(format!("the prefix of key {key:?} is not a DNS subdomain"));
        }
    }
    if name.is_empty() {
        return Err(format!("key {key:?} has no name"));
    }
    label_value(name).map_err(|_| format!("key {key:?} is not a label name"))
}

/// At most 63 characters, alphanumeric at both ends, `-`, `_`, `.` between; may be empty.
fn label_value(v: &str) -> std::result::Result<(), String> {
    let alnum = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    let ok = v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && alnum(v.chars().next())
        && alnum(v.chars().last());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{v:?} is not a label value (at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit)"
        ))
    }
}

#[async_trait]
impl Verifier for PodsReady {
    fn name(&self) -> String {
        format!("pods ready: {} in {}", self.selector_name(), self.namespace)
    }

    /// The namespace and a given label selector, as the API server would take them; a
    /// workload's own selector is read when the check runs. Calls nothing.
    fn validate(&self) -> Result<()> {
        check_name(&self.id, "namespace", &self.namespace)?;
        match &self.source {
            Source::Labels(s) => {
                check_selector(s).map_err(|why| Error::invalid(self.id.to_string(), why))
            }
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
            .map_err(|e| kube_error(&self.id, "list pods", e))?;
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
            ("app=front end", "not a label value"),
            ("app=-frontend", "not a label value"),
            ("App_/x=1", "not a DNS subdomain"),
            ("=frontend", "has no name"),
            ("env in prod", "in parentheses"),
            ("env in ()", "no values"),
            ("generation>three", "whole number"),
            ("app~frontend", "not a label name"),
        ] {
            let err = check_selector(bad).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
            assert!(err.contains("e.g. app=frontend"), "{err}");
        }
    }
}
