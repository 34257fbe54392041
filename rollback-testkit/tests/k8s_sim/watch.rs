//! Watches: from a resourceVersion with a timeout, 410 Gone after compaction, and
//! kube-runtime's watcher with streaming lists and bookmarks.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{DeleteParams, ListParams, Patch, WatchEvent, WatchParams};
use kube::runtime::watcher;
use kube::ResourceExt;
use rollback_testkit::k8s::SimConfig;
use serde_json::json;

use crate::common::{deployment, patch, Cluster, WAIT};

#[tokio::test]
async fn watch_from_a_resource_version_ends_after_its_timeout() {
    let c = Cluster::paused().await;
    let api = c.api::<Deployment>();
    c.create(&deployment("w", "w:1", 1)).await;
    c.create(&deployment("other", "w:1", 1)).await;
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    // Changes after `rv`: one to a watched object, one to another, a delete.
    let three = Patch::Merge(json!({"spec": {"replicas": 3}}));
    patch(&api, "w", &three).await;
    patch(&api, "other", &three).await;
    let started = std::time::Instant::now();
    let wp = WatchParams::default().labels("app=w").timeout(2);
    let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
    let mut seen = Vec::new();
    let mut deleted = false;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        match ev {
            WatchEvent::Modified(d) => seen.push(d.spec.unwrap().replicas.unwrap()),
            WatchEvent::Deleted(d) => {
                assert_eq!(d.name_any(), "w");
                deleted = true;
            }
            // kube asks for bookmarks by default.
            WatchEvent::Bookmark(b) => assert!(b.metadata.resource_version.parse::<u64>().is_ok()),
            other => panic!("unexpected {other:?}"),
        }
        if seen.len() == 1 && !deleted {
            api.delete("w", &DeleteParams::default()).await.unwrap();
        }
    }
    assert_eq!(seen, [3]);
    assert!(deleted);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(8),
        "{elapsed:?}"
    );
    // No resourceVersion: the current state as synthetic ADDED events.
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(
        matches!(first, WatchEvent::Added(ref d) if d.name_any() == "other"),
        "{first:?}"
    );
}

#[tokio::test]
async fn expired_resource_version_is_gone() {
    let c = Cluster::paused().await;
    let api = c.api::<Deployment>();
    let d = c.create(&deployment("g", "g:1", 1)).await;
    let old = d.resource_version().unwrap();
    patch(&api, "g", &Patch::Merge(json!({"spec": {"replicas": 2}}))).await;
    c.sim.compact().await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &old)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
    // The current resourceVersion still works.
    let now = api.get("g").await.unwrap().resource_version().unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &now)
        .await
        .unwrap()
        .boxed();
    patch(&api, "g", &Patch::Merge(json!({"spec": {"replicas": 3}}))).await;
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Modified(_)
    ));
}

#[tokio::test]
async fn kube_watcher_with_streaming_lists_and_bookmarks() {
    let c = Cluster::with(SimConfig::new().bookmark_interval(Duration::from_millis(50))).await;
    let api = c.api::<Deployment>();
    c.create(&deployment("one", "x:1", 1)).await;
    let cfg = watcher::Config::default()
        .streaming_lists()
        .labels("app in (one,two)");
    let mut events = watcher(api.clone(), cfg).boxed();
    let mut init = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::Init => {}
            watcher::Event::InitApply(d) => init.push(d.name_any()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(init, ["one"]);
    c.create(&deployment("two", "x:1", 1)).await;
    let applied = tokio::time::timeout(WAIT, async {
        loop {
            if let watcher::Event::Apply(d) = events.try_next().await.unwrap().unwrap() {
                if d.name_any() == "two" {
                    return d;
                }
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(applied.name_any(), "two");
}
