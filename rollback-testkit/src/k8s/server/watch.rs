//! Watches: one JSON event per line from a resourceVersion (or from the current state as
//! synthetic ADDED events), bookmarks, `sendInitialEvents`, `timeoutSeconds`, and 410 Gone
//! for a compacted resourceVersion.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::super::errors::ApiError;
use super::super::resources::{namespace_of, Kind};
use super::super::selector::{FieldSelector, Selector};
use super::super::state::Sim;
use super::super::store::{EventType, Store};
use super::http::{Body, Req, Resp};
use super::read::selectors;

struct WatchSpec {
    kind: Kind,
    ns: Option<String>,
    label: Selector,
    field: FieldSelector,
}

impl WatchSpec {
    fn matches(&self, obj: &Value) -> bool {
        self.ns.as_deref().is_none_or(|ns| ns == namespace_of(obj))
            && self.label.matches_object(obj)
            && self.field.matches(obj)
    }
}

fn event_line(etype: &str, obj: &Value) -> Bytes {
    let mut s = json!({"type": etype, "object": obj}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(kind: Kind, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": kind.kind(), "apiVersion": kind.api_version(), "metadata": meta}),
    )
}

/// Starts a watch: the answer streams one JSON event per line.
pub(super) fn start_watch(
    sim: &Arc<Sim>,
    req: &Req,
    kind: Kind,
    ns: Option<String>,
    name: Option<String>,
) -> Result<Resp, ApiError> {
    let (label, mut field) = selectors(req, kind)?;
    if let Some(name) = name {
        field = FieldSelector::name(&name);
    }
    let from = match req.param("resourceVersion").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: \"{v}\": must be a non-negative integer"
            ))
        })?),
    }
    .filter(|rv| *rv != 0);
    let send_initial = req.flag("sendInitialEvents");
    let bookmarks = req.flag("allowWatchBookmarks");
    let timeout = req
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(1800);
    let spec = WatchSpec {
        kind,
        ns,
        label,
        field,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    tokio::spawn(run_watch(
        sim.clone(),
        spec,
        from,
        send_initial,
        bookmarks,
        Duration::from_secs(timeout),
        tx,
    ));
    let mut r = Response::new(Body::Stream(rx));
    if let Ok(v) = "application/json".parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    Ok(r)
}

/// The lines of the events after `cursor` that this watch sees; moves the cursor to the
/// store's current resourceVersion. `Err` when the events were compacted away.
fn drain(store: &Store, spec: &WatchSpec, cursor: &mut u64) -> Result<Vec<Bytes>, ApiError> {
    let events = store
        .events_after(*cursor)
        .map_err(|oldest| ApiError::gone(*cursor, oldest))?;
    let mut lines = Vec::new();
    for ev in events {
        if ev.kind != spec.kind {
            continue;
        }
        let now = spec.matches(&ev.object);
        let before = ev.prev.as_ref().is_some_and(|p| spec.matches(p));
        let etype = match (ev.etype, before, now) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Deleted, _, true) => "DELETED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            _ => continue,
        };
        lines.push(event_line(etype, &ev.object));
    }
    *cursor = store.rv();
    Ok(lines)
}

async fn run_watch(
    sim: Arc<Sim>,
    spec: WatchSpec,
    from: Option<u64>,
    send_initial: bool,
    bookmarks: bool,
    timeout: Duration,
    tx: mpsc::Sender<Bytes>,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let (mut notify, mut cursor, initial, bookmark_every) = {
        let st = sim.lock();
        let notify = st.store.subscribe();
        let mut initial = Vec::new();
        let cursor = match from {
            Some(rv) if !send_initial => rv,
            _ => {
                // Synthetic ADDED events for the current state ("start at most recent").
                for o in st.store.list(spec.kind, spec.ns.as_deref()) {
                    if spec.matches(o) {
                        initial.push(event_line("ADDED", o));
                    }
                }
                if send_initial {
                    initial.push(bookmark(spec.kind, st.store.rv(), true));
                }
                st.store.rv()
            }
        };
        (notify, cursor, initial, st.config.bookmark_ms.max(10))
    };
    for line in initial {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    let mut ticker = tokio::time::interval(Duration::from_millis(bookmark_every));
    ticker.tick().await;
    loop {
        let lines = {
            let st = sim.lock();
            drain(&st.store, &spec, &mut cursor)
        };
        match lines {
            Ok(lines) => {
                for line in lines {
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(event_line("ERROR", &e.status())).await;
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return,
            changed = notify.changed() => if changed.is_err() { return },
            _ = ticker.tick(), if bookmarks => {
                if tx.send(bookmark(spec.kind, cursor, false)).await.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}
