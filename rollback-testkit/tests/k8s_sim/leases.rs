//! `coordination.k8s.io/v1` Leases: the optimistic-concurrency rules a lock store relies on
//! (create races, stale and missing resourceVersions, create on update), validation, list,
//! delete, watch, and discovery that the real kubectl reads.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, Patch, PostParams, WatchEvent, WatchParams};
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::common::{api_error, patch, Cluster, NS, WAIT};

fn lease(name: &str, holder: &str) -> Lease {
    serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "test"}},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "leaseTransitions": 1,
            "acquireTime": "2026-01-02T03:04:05.123456Z",
            "renewTime": "2026-01-02T03:04:05.123456Z"
        }
    }))
    .unwrap()
}

/// The Status a refused create of `l` answers.
async fn create_refused(api: &Api<Lease>, l: &Lease) -> Box<kube::core::Status> {
    api_error(api.create(&PostParams::default(), l).await.unwrap_err())
}

/// The Status a refused update of `l` answers.
async fn replace_refused(api: &Api<Lease>, l: &Lease) -> Box<kube::core::Status> {
    api_error(
        api.replace(&l.name_any(), &PostParams::default(), l)
            .await
            .unwrap_err(),
    )
}

/// The names of the Leases `lp` lists.
async fn names(api: &Api<Lease>, lp: &ListParams) -> Vec<String> {
    api.list(lp)
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect()
}

fn holder_of(l: &Lease) -> Option<String> {
    l.spec.as_ref().and_then(|s| s.holder_identity.clone())
}

#[tokio::test]
async fn of_two_creates_of_one_lease_the_second_is_already_exists() {
    let c = Cluster::start();
    let api = c.api::<Lease>();
    let first = c.create(&lease("lock", "alice")).await;
    assert_eq!(first.metadata.namespace.as_deref(), Some(NS));
    assert!(first.metadata.uid.is_some() && first.metadata.resource_version.is_some());
    assert_eq!(first.metadata.generation, None, "Leases have no generation");
    assert_eq!(
        first.spec.as_ref().unwrap().renew_time,
        lease("lock", "alice").spec.unwrap().renew_time,
        "MicroTime kept to the microsecond"
    );
    let err = create_refused(&api, &lease("lock", "bob")).await;
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(
        err.message,
        "leases.coordination.k8s.io \"lock\" already exists"
    );
    let details = err.details.unwrap();
    assert_eq!(
        (details.group.as_str(), details.kind.as_str()),
        ("coordination.k8s.io", "leases")
    );
    assert_eq!(
        holder_of(&api.get("lock").await.unwrap()).as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn an_update_needs_the_stored_resource_version() {
    let c = Cluster::start();
    let api = c.api::<Lease>();
    let read = c.create(&lease("lock", "alice")).await;
    // Someone else writes first: the update decided on the old version is a conflict.
    let mut theirs = read.clone();
    theirs.spec.as_mut().unwrap().holder_identity = Some("bob".into());
    let theirs = api
        .replace("lock", &PostParams::default(), &theirs)
        .await
        .unwrap();
    assert_ne!(theirs.resource_version(), read.resource_version());
    let mut mine = read.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("carol".into());
    let err = replace_refused(&api, &mine).await;
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"lock\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // Without a resourceVersion a Lease update is refused (no unconditional updates).
    mine.metadata.resource_version = None;
    let err = replace_refused(&api, &mine).await;
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        "leases.coordination.k8s.io \"lock\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    );
    let now = api.get("lock").await.unwrap();
    assert_eq!(holder_of(&now).as_deref(), Some("bob"));
    assert_eq!(now.resource_version(), theirs.resource_version());
    // A patch applies to the stored version, so it needs none.
    let patched = patch(
        &api,
        "lock",
        &Patch::Merge(json!({"spec": {"holderIdentity": null}})),
    )
    .await;
    assert_eq!(holder_of(&patched), None);
    assert_eq!(patched.spec.unwrap().lease_transitions, Some(1));
}

#[tokio::test]
async fn a_put_to_a_lease_that_does_not_exist_creates_it() {
    let c = Cluster::start();
    let api = c.api::<Lease>();
    let mut l = lease("fresh", "alice");
    // A resourceVersion the client read before someone deleted the Lease is dropped.
    l.metadata.resource_version = Some("12345".into());
    let created = api
        .replace("fresh", &PostParams::default(), &l)
        .await
        .unwrap();
    assert_eq!(holder_of(&created).as_deref(), Some("alice"));
    assert_ne!(created.resource_version().as_deref(), Some("12345"));
    let calls = c.sim.calls().await.unwrap();
    assert_eq!(calls[0]["method"], "PUT");
    assert_eq!(calls[0]["status"], 201);
}

#[tokio::test]
async fn lease_specs_are_validated_as_the_api_server_does() {
    let c = Cluster::start();
    let api = c.api::<Lease>();
    let mut l = lease("bad", "alice");
    l.spec.as_mut().unwrap().lease_duration_seconds = Some(0);
    let err = create_refused(&api, &l).await;
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        "Lease.coordination.k8s.io \"bad\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    );
    let mut l = lease("bad", "alice");
    l.spec.as_mut().unwrap().lease_transitions = Some(-1);
    let err = create_refused(&api, &l).await;
    assert!(
        err.message.ends_with(
            "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"
        ),
        "{}",
        err.message
    );
    let mut l = lease("Bad", "alice");
    l.spec = None;
    let err = create_refused(&api, &l).await;
    assert_eq!(err.code, 422, "{}", err.message);
    assert!(names(&api, &ListParams::default()).await.is_empty());
}

#[tokio::test]
async fn leases_are_listed_watched_and_deleted() {
    let c = Cluster::start();
    let api = c.api::<Lease>();
    let mut other: Lease = lease("b", "bob");
    other.metadata.labels = None;
    // The watch below starts after this write.
    let start = c.create(&other).await.resource_version().unwrap();
    let a = c.create(&lease("a", "alice")).await;
    let managed = ListParams::default().labels("app.kubernetes.io/managed-by=test");
    assert_eq!(names(&api, &managed).await, ["a"]);
    let mut changed = a.clone();
    changed.spec.as_mut().unwrap().holder_identity = Some("carol".into());
    api.replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    let gone = api.delete("a", &DeleteParams::default()).await.unwrap();
    let status = gone
        .right()
        .expect("a Status, as for every resource but pods");
    assert_eq!(
        status.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    let err = api_error(api.get("a").await.unwrap_err());
    assert_eq!(err.message, "leases.coordination.k8s.io \"a\" not found");

    let wp = WatchParams::default().fields("metadata.name=a").timeout(1);
    let mut stream = api.watch(&wp, &start).await.unwrap().boxed();
    let mut seen = Vec::new();
    while let Some(ev) = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        match ev {
            WatchEvent::Added(l) => seen.push(format!("added {}", holder_of(&l).unwrap())),
            WatchEvent::Modified(l) => seen.push(format!("modified {}", holder_of(&l).unwrap())),
            WatchEvent::Deleted(l) => seen.push(format!("deleted {}", l.name_any())),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["added alice", "modified carol", "deleted a"]);
}

#[tokio::test]
async fn discovery_serves_the_coordination_group_and_kubectl_reads_leases() {
    let c = Cluster::start();
    let get = |path: &str| {
        let url = format!("{}{path}", c.sim.url());
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let groups = get("/apis").await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["apps", "coordination.k8s.io"]);
    let group = get("/apis/coordination.k8s.io").await;
    assert_eq!(
        group["preferredVersion"]["groupVersion"],
        "coordination.k8s.io/v1"
    );
    let resources = get("/apis/coordination.k8s.io/v1").await;
    assert_eq!(resources["groupVersion"], "coordination.k8s.io/v1");
    assert_eq!(resources["resources"][0]["name"], "leases");
    assert_eq!(resources["resources"][0]["kind"], "Lease");
    assert_eq!(
        resources["resources"].as_array().unwrap().len(),
        1,
        "no subresources"
    );

    c.create(&lease("seen-by-kubectl", "alice")).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    c.sim.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let table = kubectl(&["get", "leases", "-n", NS]);
    assert!(table.contains("seen-by-kubectl"), "{table}");
    let one: Value = serde_json::from_str(&kubectl(&[
        "get",
        "lease",
        "seen-by-kubectl",
        "-n",
        NS,
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(one["spec"]["holderIdentity"], "alice");
    let holder = kubectl(&[
        "get",
        "leases.coordination.k8s.io",
        "-n",
        NS,
        "-o",
        "jsonpath={.items[*].spec.holderIdentity}",
    ]);
    assert_eq!(holder, "alice");
}
