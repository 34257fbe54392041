//! The controllers: a kubelet that makes pods ready (or crash-looping), and the
//! ReplicaSet, Deployment, StatefulSet and DaemonSet controllers.
//!
//! One tick (every `step_ms` of simulated time) runs, in order: the kubelet, the
//! ReplicaSet controller (status), the Deployment controller (new ReplicaSets, revision
//! annotations, one rollout step), the ReplicaSet controller again (pods for the new
//! replica counts), the Deployment status, then the StatefulSet and DaemonSet controllers.
//! A tick holds the lock, so watches see its writes in order and never a half-done tick.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::hash::{hash_value, normalize, random_suffix, template_without_label};
use super::resources::{controller_ref, labels_of, name_of, namespace_of, object_at, uid_of, Kind};
use super::state::{Sim, State};

/// The label the Deployment controller adds to its ReplicaSets and their pods.
pub(crate) const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The label of StatefulSet / DaemonSet pods naming their revision.
pub(crate) const REVISION_HASH: &str = "controller-revision-hash";
/// The label the StatefulSet controller puts on its ControllerRevisions.
const CR_HASH: &str = "controller.kubernetes.io/hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";
/// Deployment annotations the controller does not copy to ReplicaSets.
const SKIP_COPY: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX,
    "deprecated.deployment.rollback.to",
];

/// Runs ticks forever, every `step_ms` (re-read each time), while the controller runs.
pub(crate) async fn run(sim: Arc<Sim>) {
    loop {
        let step = sim.lock().config.step_ms.max(1);
        tokio::time::sleep(Duration::from_millis(step)).await;
        let mut st = sim.lock();
        if st.running {
            tick(&mut st);
        }
    }
}

/// One controller step.
pub(crate) fn tick(st: &mut State) {
    st.memory.ticks += 1;
    st.memory.sim_ms += st.config.step_ms;
    kubelet(st);
    sync_replicasets(st);
    let deployments: Vec<Value> = st.store.list(Kind::Deployment, None).cloned().collect();
    let mut created = Vec::new();
    for d in &deployments {
        if let Some(uid) = sync_deployment(st, d) {
            created.push(uid);
        }
    }
    sync_replicasets(st);
    for d in &deployments {
        deployment_status(st, d, created.contains(&uid_of(d).to_string()));
    }
    let sets: Vec<Value> = st.store.list(Kind::StatefulSet, None).cloned().collect();
    for s in &sets {
        sync_statefulset(st, s);
    }
    let daemons: Vec<Value> = st.store.list(Kind::DaemonSet, None).cloned().collect();
    for d in &daemons {
        sync_daemonset(st, d);
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// An int-or-percent value (`2`, `"25%"`) scaled to `total`.
fn int_or_percent(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%') {
            Some(p) => {
                let p: i64 = p.trim().parse().unwrap_or(0);
                if round_up {
                    (total * p + 99) / 100
                } else {
                    total * p / 100
                }
            }
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// Inserts a status counter, omitting zeros as the real API does for `omitempty` fields.
fn counter(m: &mut Map<String, Value>, key: &str, n: i64) {
    if n != 0 {
        m.insert(key.into(), json!(n));
    }
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

fn set_annotation(obj: &mut Value, key: &str, value: String) {
    let meta = object_at(obj, "metadata");
    if !meta.get("annotations").is_some_and(Value::is_object) {
        meta.insert("annotations".into(), json!({}));
    }
    if let Some(Value::Object(a)) = meta.get_mut("annotations") {
        a.insert(key.into(), json!(value));
    }
}

fn revision_of(rs: &Value) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == json!("Ready") && c["status"] == json!("True"))
    })
}

/// Sets (or replaces) a condition as the real controllers do: unchanged when status and
/// reason are the same (unless `force`); lastTransitionTime kept when the status is; the
/// updated condition moves to the end of the list.
fn set_condition(
    conditions: &mut Vec<Value>,
    ctype: &str,
    status: &str,
    reason: &str,
    message: String,
    force: bool,
) {
    let now = now();
    let existing = conditions
        .iter()
        .position(|c| c["type"].as_str() == Some(ctype));
    let mut transition = now.clone();
    if let Some(i) = existing {
        let c = &conditions[i];
        if c["status"].as_str() == Some(status) {
            if c["reason"].as_str() == Some(reason) && !force {
                return;
            }
            transition = c["lastTransitionTime"].as_str().unwrap_or(&now).to_string();
        }
        conditions.remove(i);
    }
    conditions.push(json!({
        "type": ctype,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }));
}

fn condition_reason<'a>(obj: &'a Value, ctype: &str) -> Option<&'a str> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(ctype))?["reason"]
        .as_str()
}

// ---------------------------------------------------------------------------------------
// Pods and the kubelet

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodState {
    Pending,
    Ready,
    CrashLoop,
}

fn pod_state(pod: &Value) -> PodState {
    if pod_ready(pod) {
        return PodState::Ready;
    }
    let crash = pod["status"]["containerStatuses"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["state"]["waiting"]["reason"] == json!("CrashLoopBackOff"))
        });
    if crash {
        PodState::CrashLoop
    } else {
        PodState::Pending
    }
}

fn pod_status(pod: &Value, state: PodState) -> Value {
    let now = now();
    let name = name_of(pod);
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let bytes = uuid::Uuid::parse_str(super::resources::uid_of(pod))
        .map(|u| *u.as_bytes())
        .unwrap_or_default();
    let pod_ip = format!("10.244.{}.{}", bytes[0], bytes[1].max(2));
    let cond = |t: &str, ok: bool| {
        let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
        if !ok && matches!(t, "Ready" | "ContainersReady") {
            let names: Vec<&str> = containers
                .iter()
                .filter_map(|c| c["name"].as_str())
                .collect();
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(format!(
                "containers with unready status: [{}]",
                names.join(" ")
            ));
        }
        c
    };
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let cname = c["name"].as_str().unwrap_or("");
            let image = c["image"].clone();
            match state {
                PodState::Ready => json!({
                    "name": cname, "image": image, "imageID": format!("sim://{}", image.as_str().unwrap_or("")),
                    "ready": true, "started": true, "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }),
                PodState::CrashLoop => json!({
                    "name": cname, "image": image, "imageID": "", "ready": false, "started": false, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 40s restarting failed container={cname} pod={name}")}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}},
                }),
                PodState::Pending => json!({
                    "name": cname, "image": image, "imageID": "", "ready": false, "started": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }),
            }
        })
        .collect();
    let ready = state == PodState::Ready;
    let running = state != PodState::Pending;
    json!({
        "phase": if running { "Running" } else { "Pending" },
        "conditions": [
            cond("PodReadyToStartContainers", running),
            cond("Initialized", true),
            cond("Ready", ready),
            cond("ContainersReady", ready),
            cond("PodScheduled", true),
        ],
        "hostIP": "10.0.0.1",
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": pod["metadata"]["creationTimestamp"],
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    })
}

/// Moves every pod that is not where its images take it: Ready, or CrashLoopBackOff for a
/// failing image. Pods created in this tick are handled at the next one.
fn kubelet(st: &mut State) {
    let pods: Vec<Value> = st.store.list(Kind::Pod, None).cloned().collect();
    for pod in pods {
        let want = if st.spec_fails(&pod["spec"]) {
            PodState::CrashLoop
        } else {
            PodState::Ready
        };
        if pod_state(&pod) != want {
            let mut p = pod.clone();
            p["status"] = pod_status(&pod, want);
            st.store.update(Kind::Pod, p);
        }
    }
}

fn node_name(i: usize) -> String {
    format!("sim-node-{}", i + 1)
}

/// Builds and stores a pod from a template.
fn create_pod(
    st: &mut State,
    ns: &str,
    name: String,
    template: &Value,
    extra_labels: &[(&str, String)],
    owner: Value,
    node: String,
) -> Value {
    let mut labels = labels_of(template);
    for (k, v) in extra_labels {
        labels.insert((*k).to_string(), json!(v));
    }
    let mut meta = json!({
        "name": name,
        "namespace": ns,
        "labels": labels,
        "ownerReferences": [owner],
    });
    if let Some(a) = template["metadata"]["annotations"].as_object() {
        if !a.is_empty() {
            meta["annotations"] = json!(a);
        }
    }
    let mut spec = template["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    spec["nodeName"] = json!(node);
    let mut pod = json!({"metadata": meta, "spec": spec});
    pod["status"] = pod_status(&pod, PodState::Pending);
    pod["status"]["startTime"] = json!(now());
    st.store.create(Kind::Pod, pod)
}

fn delete_pod(st: &mut State, pod: &Value) {
    st.store
        .remove_cascade(Kind::Pod, namespace_of(pod), name_of(pod), false);
}

// ---------------------------------------------------------------------------------------
// ReplicaSets

fn sync_replicasets(st: &mut State) {
    let nodes = st.config.nodes.max(1) as usize;
    let rss: Vec<Value> = st.store.list(Kind::ReplicaSet, None).cloned().collect();
    for rs in rss {
        let ns = namespace_of(&rs).to_string();
        let uid = uid_of(&rs).to_string();
        let desired = int(&rs["spec"]["replicas"]).max(0) as usize;
        let mut pods = st.store.owned(Kind::Pod, &ns, &uid);
        if pods.len() < desired {
            let owner = controller_ref(Kind::ReplicaSet, &rs);
            for i in pods.len()..desired {
                let name = format!("{}-{}", name_of(&rs), random_suffix(5));
                let mut pod = create_pod(
                    st,
                    &ns,
                    name,
                    &rs["spec"]["template"],
                    &[],
                    owner.clone(),
                    node_name(i % nodes),
                );
                pod["metadata"]["generateName"] = json!(format!("{}-", name_of(&rs)));
                st.store.update(Kind::Pod, pod);
            }
        } else if pods.len() > desired {
            // Not-ready pods first, then the newest.
            pods.sort_by(|a, b| {
                pod_ready(a).cmp(&pod_ready(b)).then_with(|| {
                    let ka = (a["metadata"]["creationTimestamp"].as_str(), name_of(a));
                    let kb = (b["metadata"]["creationTimestamp"].as_str(), name_of(b));
                    kb.cmp(&ka)
                })
            });
            for pod in &pods[..pods.len() - desired] {
                delete_pod(st, pod);
            }
        }
        let pods = st.store.owned(Kind::Pod, &ns, &uid);
        let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let mut status = Map::new();
        status.insert("replicas".into(), json!(pods.len()));
        counter(&mut status, "fullyLabeledReplicas", pods.len() as i64);
        counter(&mut status, "readyReplicas", ready);
        counter(&mut status, "availableReplicas", ready);
        status.insert(
            "observedGeneration".into(),
            rs["metadata"]["generation"].clone(),
        );
        if let Some(current) = st.store.get(Kind::ReplicaSet, &ns, name_of(&rs)) {
            let mut updated = current.clone();
            updated["status"] = Value::Object(status);
            st.store.update(Kind::ReplicaSet, updated);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Deployments

/// maxSurge and maxUnavailable of a Deployment, resolved against its replicas.
fn rolling_params(spec: &Value, replicas: i64) -> (i64, i64) {
    let ru = &spec["strategy"]["rollingUpdate"];
    if spec["strategy"]["type"] == json!("Recreate") {
        return (0, replicas);
    }
    let surge = int_or_percent(&ru["maxSurge"], replicas, true);
    let mut unavailable = int_or_percent(&ru["maxUnavailable"], replicas, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable.min(replicas))
}

/// The owned ReplicaSets of a Deployment sorted by revision, and the index of the one whose
/// template matches the Deployment's (ignoring the hash label).
fn replicasets_of(st: &State, d: &Value) -> (Vec<Value>, Option<usize>) {
    let mut rss = st.store.owned(Kind::ReplicaSet, namespace_of(d), uid_of(d));
    rss.sort_by(|a, b| {
        revision_of(a).cmp(&revision_of(b)).then_with(|| {
            a["metadata"]["creationTimestamp"]
                .as_str()
                .cmp(&b["metadata"]["creationTimestamp"].as_str())
        })
    });
    let want = template_without_label(&d["spec"]["template"], POD_TEMPLATE_HASH);
    let new = rss
        .iter()
        .position(|rs| template_without_label(&rs["spec"]["template"], POD_TEMPLATE_HASH) == want);
    (rss, new)
}

fn set_replicas_annotations(rs: &mut Value, d: &Value) {
    let replicas = int(&d["spec"]["replicas"]);
    let (surge, _) = rolling_params(&d["spec"], replicas);
    set_annotation(rs, DESIRED, replicas.to_string());
    set_annotation(rs, MAX, (replicas + surge).to_string());
}

fn copy_annotations(rs: &mut Value, d: &Value) {
    if let Some(a) = d["metadata"]["annotations"].as_object() {
        for (k, v) in a {
            if !SKIP_COPY.contains(&k.as_str()) {
                if let Some(v) = v.as_str() {
                    set_annotation(rs, k, v.to_string());
                }
            }
        }
    }
}

/// Finds or creates the new ReplicaSet, keeps revision annotations, takes one rollout
/// step and cleans up old ReplicaSets. Returns the Deployment's uid when it created a
/// ReplicaSet in this tick.
fn sync_deployment(st: &mut State, d: &Value) -> Option<String> {
    let ns = namespace_of(d).to_string();
    let dname = name_of(d).to_string();
    let uid = uid_of(d).to_string();
    let spec = &d["spec"];
    let replicas = int(&spec["replicas"]).max(0);
    let paused = spec["paused"] == json!(true);
    let sim_ms = st.memory.sim_ms;
    let (rss, new_idx) = replicasets_of(st, d);
    let max_old = rss
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_idx)
        .map(|(_, rs)| revision_of(rs))
        .max()
        .unwrap_or(0);
    let mut olds: Vec<Value> = rss
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_idx)
        .map(|(_, rs)| rs.clone())
        .collect();
    let mut created = None;
    let mut new_rs = match new_idx {
        Some(i) => {
            let mut rs = rss[i].clone();
            let old_rev = revision_of(&rs);
            if old_rev < max_old + 1 {
                set_annotation(&mut rs, REVISION, (max_old + 1).to_string());
                if old_rev > 0 {
                    let mut history: Vec<String> = annotation(&rs, REVISION_HISTORY)
                        .map(|h| {
                            h.split(',')
                                .filter(|s| !s.is_empty())
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default();
                    history.push(old_rev.to_string());
                    set_annotation(&mut rs, REVISION_HISTORY, history.join(","));
                }
                st.memory.progress.insert(uid.clone(), sim_ms);
            }
            copy_annotations(&mut rs, d);
            Some(rs)
        }
        None if !paused => {
            let template = &spec["template"];
            let hash = hash_value(&template_without_label(template, POD_TEMPLATE_HASH));
            let mut name = format!("{dname}-{hash}");
            let mut n = 1;
            while st.store.get(Kind::ReplicaSet, &ns, &name).is_some() {
                name = format!("{dname}-{hash}{n}");
                n += 1;
            }
            let mut tmpl = template.clone();
            if !tmpl.is_object() {
                tmpl = json!({});
            }
            let labels = object_at(&mut tmpl, "metadata")
                .entry("labels")
                .or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            labels[POD_TEMPLATE_HASH] = json!(hash);
            let mut selector = spec["selector"].clone();
            selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
            let mut rs = json!({
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": tmpl["metadata"]["labels"].clone(),
                    "ownerReferences": [controller_ref(Kind::Deployment, d)],
                },
                "spec": {
                    "replicas": 0,
                    "selector": selector,
                    "template": tmpl,
                },
            });
            if let Some(m) = spec["minReadySeconds"].as_i64().filter(|m| *m > 0) {
                rs["spec"]["minReadySeconds"] = json!(m);
            }
            copy_annotations(&mut rs, d);
            set_annotation(&mut rs, REVISION, (max_old + 1).to_string());
            set_replicas_annotations(&mut rs, d);
            let rs = st.store.create(Kind::ReplicaSet, rs);
            st.memory.progress.insert(uid.clone(), sim_ms);
            created = Some(uid.clone());
            Some(rs)
        }
        None => None,
    };
    if paused {
        st.memory.progress.insert(uid.clone(), sim_ms);
    }

    // One rollout step.
    if let Some(new) = new_rs.as_mut() {
        let old_active = olds
            .iter()
            .any(|o| int(&o["spec"]["replicas"]) > 0 || int(&o["status"]["replicas"]) > 0);
        let set = |rs: &mut Value, n: i64| {
            if int(&rs["spec"]["replicas"]) != n {
                rs["spec"]["replicas"] = json!(n);
                set_replicas_annotations(rs, d);
            }
        };
        if !old_active {
            set(new, replicas);
        } else if paused {
            // A paused Deployment does not roll out.
        } else if spec["strategy"]["type"] == json!("Recreate") {
            if olds.iter().any(|o| int(&o["spec"]["replicas"]) > 0) {
                for o in olds.iter_mut() {
                    set(o, 0);
                }
            }
        } else {
            let (surge, unavailable) = rolling_params(spec, replicas);
            // Old replicas that are not available go first: removing them costs nothing.
            for o in olds.iter_mut() {
                let avail = int(&o["status"]["availableReplicas"]);
                if int(&o["spec"]["replicas"]) > avail {
                    set(o, avail);
                }
            }
            let available: i64 = olds
                .iter()
                .chain(std::iter::once(&*new))
                .map(|rs| int(&rs["status"]["availableReplicas"]).min(int(&rs["spec"]["replicas"])))
                .sum();
            if available > replicas - unavailable {
                if let Some(o) = olds.iter_mut().find(|o| int(&o["spec"]["replicas"]) > 0) {
                    let n = int(&o["spec"]["replicas"]) - 1;
                    set(o, n);
                }
            }
            let total: i64 = olds
                .iter()
                .chain(std::iter::once(&*new))
                .map(|rs| int(&rs["spec"]["replicas"]))
                .sum();
            let new_count = int(&new["spec"]["replicas"]);
            if new_count < replicas && total < replicas + surge {
                set(new, new_count + 1);
            } else if new_count > replicas {
                set(new, replicas);
            }
        }
        if annotation(new, DESIRED).is_none() {
            set_replicas_annotations(new, d);
        }
        st.store.update(Kind::ReplicaSet, new.clone());
        for o in &olds {
            st.store.update(Kind::ReplicaSet, o.clone());
        }
        // The Deployment's revision is its new ReplicaSet's.
        let rev = revision_of(new).to_string();
        if annotation(d, REVISION) != Some(rev.as_str()) {
            if let Some(current) = st.store.get(Kind::Deployment, &ns, &dname) {
                let mut updated = current.clone();
                set_annotation(&mut updated, REVISION, rev);
                st.store.update(Kind::Deployment, updated);
            }
        }
    }

    // Clean up old ReplicaSets beyond revisionHistoryLimit, oldest first, only empty ones.
    let limit = spec["revisionHistoryLimit"].as_i64().unwrap_or(10).max(0) as usize;
    let olds: Vec<Value> = olds
        .iter()
        .filter_map(|o| st.store.get(Kind::ReplicaSet, &ns, name_of(o)).cloned())
        .collect();
    if olds.len() > limit {
        let excess = olds.len() - limit;
        for o in olds.iter().take(excess) {
            if int(&o["spec"]["replicas"]) == 0 && int(&o["status"]["replicas"]) == 0 {
                st.store
                    .remove_cascade(Kind::ReplicaSet, &ns, name_of(o), false);
            }
        }
    }
    created
}

/// Computes a Deployment's status from its ReplicaSets, with the Available and
/// Progressing conditions.
fn deployment_status(st: &mut State, d: &Value, created_now: bool) {
    let Some(d) = st
        .store
        .get(Kind::Deployment, namespace_of(d), name_of(d))
        .cloned()
    else {
        return;
    };
    let uid = uid_of(&d).to_string();
    let spec = &d["spec"];
    let replicas = int(&spec["replicas"]).max(0);
    let paused = spec["paused"] == json!(true);
    let (rss, new_idx) = replicasets_of(st, &d);
    let sum = |field: &str| -> i64 { rss.iter().map(|rs| int(&rs["status"][field])).sum() };
    let total_spec: i64 = rss.iter().map(|rs| int(&rs["spec"]["replicas"])).sum();
    let actual = sum("replicas");
    let ready = sum("readyReplicas");
    let available = sum("availableReplicas");
    let updated = new_idx.map_or(0, |i| int(&rss[i]["status"]["replicas"]));
    let unavailable = (total_spec - available).max(0);
    let old = &d["status"];
    let old_updated = int(&old["updatedReplicas"]);
    let old_old_replicas = int(&old["replicas"]) - old_updated;

    let mut conditions: Vec<Value> = old["conditions"].as_array().cloned().unwrap_or_default();
    let (_, max_unavailable) = rolling_params(spec, replicas);
    if available >= replicas - max_unavailable {
        set_condition(
            &mut conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            false,
        );
    } else {
        set_condition(
            &mut conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            false,
        );
    }
    let sim_ms = st.memory.sim_ms;
    if paused {
        set_condition(
            &mut conditions,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".into(),
            false,
        );
    } else if let Some(i) = new_idx {
        let rs_name = name_of(&rss[i]).to_string();
        let complete = updated == replicas && actual == replicas && available == replicas;
        let progressed = updated > old_updated
            || (actual - updated) < old_old_replicas
            || ready > int(&old["readyReplicas"])
            || available > int(&old["availableReplicas"]);
        if progressed {
            st.memory.progress.insert(uid.clone(), sim_ms);
        }
        let last = *st.memory.progress.entry(uid.clone()).or_insert(sim_ms);
        let reason = condition_reason(&d, "Progressing");
        if created_now {
            set_condition(
                &mut conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                format!("Created new replica set \"{rs_name}\""),
                true,
            );
        } else if complete {
            set_condition(
                &mut conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                false,
            );
        } else if progressed || reason.is_none() || reason == Some("DeploymentPaused") {
            set_condition(
                &mut conditions,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{rs_name}\" is progressing."),
                true,
            );
        } else if sim_ms.saturating_sub(last) >= st.config.deadline_ms {
            set_condition(
                &mut conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                false,
            );
        }
    }
    let mut status = Map::new();
    status.insert(
        "observedGeneration".into(),
        d["metadata"]["generation"].clone(),
    );
    counter(&mut status, "replicas", actual);
    counter(&mut status, "updatedReplicas", updated);
    counter(&mut status, "readyReplicas", ready);
    counter(&mut status, "availableReplicas", available);
    counter(&mut status, "unavailableReplicas", unavailable);
    if !conditions.is_empty() {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    let mut updated_d = d.clone();
    updated_d["status"] = Value::Object(status);
    st.store.update(Kind::Deployment, updated_d);
}

// ---------------------------------------------------------------------------------------
// ControllerRevisions (StatefulSets and DaemonSets)

/// What a ControllerRevision stores: a strategic merge patch that puts the template back.
fn revision_data(template: &Value) -> Value {
    let mut t = template.clone();
    if !t.is_object() {
        t = json!({});
    }
    t["$patch"] = json!("replace");
    json!({"spec": {"template": t}})
}

/// Finds or creates the revision of `owner`'s current template: an equal revision is
/// reused (its `revision` raised to max + 1 unless it is already the newest). Returns the
/// update revision.
fn sync_revision(st: &mut State, kind: Kind, owner: &Value) -> Value {
    let ns = namespace_of(owner).to_string();
    let template = &owner["spec"]["template"];
    let data = revision_data(template);
    let wanted = normalize(&data);
    let revs = st.store.owned(Kind::ControllerRevision, &ns, uid_of(owner));
    let max = revs.iter().map(|r| int(&r["revision"])).max().unwrap_or(0);
    let equal = revs
        .iter()
        .filter(|r| normalize(&r["data"]) == wanted)
        .max_by_key(|r| int(&r["revision"]));
    if let Some(r) = equal {
        if int(&r["revision"]) < max {
            let mut bumped = r.clone();
            bumped["revision"] = json!(max + 1);
            if let Some(stored) = st.store.update(Kind::ControllerRevision, bumped) {
                return stored;
            }
        }
        return r.clone();
    }
    let hash = if kind == Kind::DaemonSet {
        hash_value(&normalize(template))
    } else {
        hash_value(&wanted)
    };
    let mut name = format!("{}-{hash}", name_of(owner));
    let mut n = 1;
    while st.store.get(Kind::ControllerRevision, &ns, &name).is_some() {
        name = format!("{}-{hash}{n}", name_of(owner));
        n += 1;
    }
    let mut labels = labels_of(template);
    labels.insert(REVISION_HASH.into(), json!(hash));
    if kind == Kind::StatefulSet {
        labels.insert(CR_HASH.into(), json!(hash));
    }
    let mut meta = json!({
        "name": name,
        "namespace": ns,
        "labels": labels,
        "ownerReferences": [controller_ref(kind, owner)],
    });
    if let Some(a) = owner["metadata"]["annotations"].as_object() {
        let a: Map<String, Value> = a
            .iter()
            .filter(|(k, _)| *k != SKIP_COPY[0])
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !a.is_empty() {
            meta["annotations"] = Value::Object(a);
        }
    }
    st.store.create(
        Kind::ControllerRevision,
        json!({"metadata": meta, "data": data, "revision": max + 1}),
    )
}

/// The pod template a revision stores.
fn revision_template(cr: &Value) -> Value {
    let mut t = cr["data"]["spec"]["template"].clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    t
}

/// Deletes the oldest revisions not in `live` beyond the owner's revisionHistoryLimit.
fn truncate_history(st: &mut State, owner: &Value, live: &[String]) {
    let ns = namespace_of(owner).to_string();
    let limit = owner["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(10)
        .max(0) as usize;
    let mut old: Vec<Value> = st
        .store
        .owned(Kind::ControllerRevision, &ns, uid_of(owner))
        .into_iter()
        .filter(|r| !live.iter().any(|l| l == name_of(r)))
        .collect();
    old.sort_by_key(|r| int(&r["revision"]));
    if old.len() > limit {
        let excess = old.len() - limit;
        for r in old.iter().take(excess) {
            st.store
                .remove_cascade(Kind::ControllerRevision, &ns, name_of(r), false);
        }
    }
}

// ---------------------------------------------------------------------------------------
// StatefulSets

fn ordinal(set_name: &str, pod: &Value) -> Option<i64> {
    name_of(pod)
        .strip_prefix(set_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

fn sync_statefulset(st: &mut State, set: &Value) {
    let ns = namespace_of(set).to_string();
    let sname = name_of(set).to_string();
    let spec = &set["spec"];
    let replicas = int(&spec["replicas"]).max(0);
    let rolling = spec["updateStrategy"]["type"] != json!("OnDelete");
    let partition = if rolling {
        int(&spec["updateStrategy"]["rollingUpdate"]["partition"]).max(0)
    } else {
        0
    };
    let update = sync_revision(st, Kind::StatefulSet, set);
    let update_name = name_of(&update).to_string();
    let mut current_name = set["status"]["currentRevision"]
        .as_str()
        .filter(|c| !c.is_empty())
        .unwrap_or(&update_name)
        .to_string();
    let current = st
        .store
        .get(Kind::ControllerRevision, &ns, &current_name)
        .cloned();
    if current.is_none() {
        current_name = update_name.clone();
    }
    let mut pods: Vec<(i64, Value)> = st
        .store
        .owned(Kind::Pod, &ns, uid_of(set))
        .into_iter()
        .filter_map(|p| ordinal(&sname, &p).map(|o| (o, p)))
        .collect();
    pods.sort_by_key(|(o, _)| *o);
    let revision_label = |p: &Value| {
        p["metadata"]["labels"][REVISION_HASH]
            .as_str()
            .map(String::from)
    };

    // One action per tick, as OrderedReady does.
    if let Some((_, p)) = pods.iter().rev().find(|(o, _)| *o >= replicas) {
        delete_pod(st, p);
    } else if let Some(missing) = (0..replicas).find(|o| !pods.iter().any(|(po, _)| po == o)) {
        let lower_ready = pods
            .iter()
            .filter(|(o, _)| *o < missing)
            .all(|(_, p)| pod_ready(p));
        let ordered = spec["podManagementPolicy"] != json!("Parallel");
        if lower_ready || !ordered {
            let (rev_name, template) = if rolling && missing < partition {
                match &current {
                    Some(c) => (current_name.clone(), revision_template(c)),
                    None => (update_name.clone(), spec["template"].clone()),
                }
            } else {
                (update_name.clone(), spec["template"].clone())
            };
            let pod_name = format!("{sname}-{missing}");
            let mut tmpl = template;
            if let Some(s) = tmpl["spec"].as_object_mut() {
                s.insert("hostname".into(), json!(pod_name));
                if let Some(svc) = spec["serviceName"].as_str() {
                    s.insert("subdomain".into(), json!(svc));
                }
            }
            create_pod(
                st,
                &ns,
                pod_name.clone(),
                &tmpl,
                &[
                    (REVISION_HASH, rev_name),
                    ("statefulset.kubernetes.io/pod-name", pod_name),
                    ("apps.kubernetes.io/pod-index", missing.to_string()),
                ],
                controller_ref(Kind::StatefulSet, set),
                node_name(missing as usize % st.config.nodes.max(1) as usize),
            );
        }
    } else if rolling && pods.iter().all(|(_, p)| pod_ready(p)) {
        if let Some((_, p)) = pods
            .iter()
            .rev()
            .find(|(o, p)| *o >= partition && revision_label(p).as_deref() != Some(&update_name))
        {
            delete_pod(st, p);
        }
    }

    let pods = st.store.owned(Kind::Pod, &ns, uid_of(set));
    let count = |rev: &str| {
        pods.iter()
            .filter(|p| revision_label(p).as_deref() == Some(rev))
            .count() as i64
    };
    let total = pods.len() as i64;
    let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
    let updated = count(&update_name);
    let mut current_replicas = count(&current_name);
    if rolling && updated == total && ready == total {
        current_name = update_name.clone();
        current_replicas = updated;
    }
    let mut status = Map::new();
    status.insert(
        "observedGeneration".into(),
        set["metadata"]["generation"].clone(),
    );
    status.insert("replicas".into(), json!(total));
    counter(&mut status, "readyReplicas", ready);
    counter(&mut status, "currentReplicas", current_replicas);
    counter(&mut status, "updatedReplicas", updated);
    status.insert("availableReplicas".into(), json!(ready));
    status.insert("currentRevision".into(), json!(current_name));
    status.insert("updateRevision".into(), json!(update_name));
    status.insert("collisionCount".into(), json!(0));
    if let Some(stored) = st.store.get(Kind::StatefulSet, &ns, &sname) {
        let mut s = stored.clone();
        s["status"] = Value::Object(status);
        st.store.update(Kind::StatefulSet, s);
    }
    let mut live: Vec<String> = pods.iter().filter_map(revision_label).collect();
    live.push(update_name);
    live.push(current_name);
    truncate_history(st, set, &live);
}

// ---------------------------------------------------------------------------------------
// DaemonSets

fn sync_daemonset(st: &mut State, ds: &Value) {
    let ns = namespace_of(ds).to_string();
    let dname = name_of(ds).to_string();
    let spec = &ds["spec"];
    let nodes: Vec<String> = (0..st.config.nodes as usize).map(node_name).collect();
    let desired = nodes.len() as i64;
    let update = sync_revision(st, Kind::DaemonSet, ds);
    let hash = update["metadata"]["labels"][REVISION_HASH]
        .as_str()
        .unwrap_or("")
        .to_string();
    let generation = ds["metadata"]["generation"].as_i64().unwrap_or(1);
    let owner = controller_ref(Kind::DaemonSet, ds);
    let node_of = |p: &Value| p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
    let hash_of = |p: &Value| {
        p["metadata"]["labels"][REVISION_HASH]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    let pods = st.store.owned(Kind::Pod, &ns, uid_of(ds));
    // Pods on nodes that do not exist, and duplicates on a node, go.
    let mut seen = Vec::new();
    for p in &pods {
        let node = node_of(p);
        if !nodes.contains(&node) || seen.contains(&node) {
            delete_pod(st, p);
        } else {
            seen.push(node);
        }
    }
    for node in nodes.iter().filter(|n| !seen.contains(n)) {
        create_pod(
            st,
            &ns,
            format!("{dname}-{}", random_suffix(5)),
            &spec["template"],
            &[
                (REVISION_HASH, hash.clone()),
                ("pod-template-generation", generation.to_string()),
            ],
            owner.clone(),
            node.clone(),
        );
    }
    if spec["updateStrategy"]["type"] != json!("OnDelete") {
        let pods = st.store.owned(Kind::Pod, &ns, uid_of(ds));
        let old: Vec<&Value> = pods.iter().filter(|p| hash_of(p) != hash).collect();
        for p in old.iter().filter(|p| !pod_ready(p)) {
            delete_pod(st, p);
        }
        let ru = &spec["updateStrategy"]["rollingUpdate"];
        let max_unavailable = int_or_percent(&ru["maxUnavailable"], desired, true).max(1);
        let available = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let unavailable = desired - available;
        if unavailable < max_unavailable {
            if let Some(p) = old.iter().find(|p| pod_ready(p)) {
                delete_pod(st, p);
            }
        }
    }

    let pods = st.store.owned(Kind::Pod, &ns, uid_of(ds));
    let scheduled = pods.len() as i64;
    let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
    let updated = pods.iter().filter(|p| hash_of(p) == hash).count() as i64;
    let mut status = Map::new();
    status.insert("currentNumberScheduled".into(), json!(scheduled));
    status.insert("numberMisscheduled".into(), json!(0));
    status.insert("desiredNumberScheduled".into(), json!(desired));
    status.insert("numberReady".into(), json!(ready));
    status.insert("observedGeneration".into(), json!(generation));
    counter(&mut status, "updatedNumberScheduled", updated);
    counter(&mut status, "numberAvailable", ready);
    counter(&mut status, "numberUnavailable", (desired - ready).max(0));
    if let Some(stored) = st.store.get(Kind::DaemonSet, &ns, &dname) {
        let mut s = stored.clone();
        s["status"] = Value::Object(status);
        st.store.update(Kind::DaemonSet, s);
    }
    let mut live: Vec<String> = st
        .store
        .owned(Kind::ControllerRevision, &ns, uid_of(ds))
        .iter()
        .filter(|r| {
            let h = r["metadata"]["labels"][REVISION_HASH]
                .as_str()
                .unwrap_or("");
            pods.iter().any(|p| hash_of(p) == h)
        })
        .map(|r| name_of(r).to_string())
        .collect();
    live.push(name_of(&update).to_string());
    truncate_history(st, ds, &live);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(int_or_percent(&json!("25%"), 3, true), 1);
        assert_eq!(int_or_percent(&json!("25%"), 3, false), 0);
        assert_eq!(int_or_percent(&json!(2), 3, false), 2);
        assert_eq!(rolling_params(&json!({}), 1), (0, 1));
        let spec = json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}});
        assert_eq!(rolling_params(&spec, 4), (1, 1));
        assert_eq!(rolling_params(&spec, 1), (1, 0));
    }

    #[test]
    fn revision_data_is_a_replace_patch() {
        let d = revision_data(
            &json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        );
        assert_eq!(
            d.to_string(),
            r#"{"spec":{"template":{"$patch":"replace","metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"image":"i","name":"c"}]}}}}"#
        );
    }
}
