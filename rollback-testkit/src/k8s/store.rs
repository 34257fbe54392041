//! The object store: objects by (resource, namespace, name), one global resourceVersion
//! counter, and the event log watches are served from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::watch;

use super::resources::{name_of, namespace_of, owned_by, uid_of, Kind};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One write, as watches see it.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) rv: u64,
    pub(crate) kind: Kind,
    pub(crate) etype: EventType,
    /// The object after the write (for DELETED: the last state, with the deletion's
    /// resourceVersion).
    pub(crate) object: Value,
    /// The object before the write (MODIFIED only): lets a watch with a selector turn a
    /// change into ADDED / DELETED when the object starts / stops matching.
    pub(crate) prev: Option<Value>,
}

type Key = (Kind, String, String);

/// Objects, the resourceVersion counter and the event log.
#[derive(Debug)]
pub(crate) struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    events: VecDeque<Arc<Event>>,
    /// Events with a resourceVersion up to this one were dropped from the log.
    compacted: u64,
    capacity: usize,
    notify: watch::Sender<u64>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    pub(crate) fn new(capacity: usize) -> Store {
        let (notify, _) = watch::channel(1);
        Store {
            objects: BTreeMap::new(),
            rv: 1,
            events: VecDeque::new(),
            compacted: 0,
            capacity: capacity.max(1),
            notify,
        }
    }

    /// A receiver that is told about every write (the new resourceVersion).
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    /// The current resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// Events with a resourceVersion up to this one are gone from the log.
    pub(crate) fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Sets how many events the log keeps.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.trim();
    }

    /// Drops the whole event log (as etcd compaction does): watches from an older
    /// resourceVersion then get 410 Gone.
    pub(crate) fn compact(&mut self) {
        self.events.clear();
        self.compacted = self.rv;
    }

    fn trim(&mut self) {
        while self.events.len() > self.capacity {
            if let Some(e) = self.events.pop_front() {
                self.compacted = e.rv;
            }
        }
    }

    fn key(kind: Kind, ns: &str, name: &str) -> Key {
        (kind, ns.to_string(), name.to_string())
    }

    pub(crate) fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&Self::key(kind, ns, name))
    }

    /// Objects of `kind`, in namespace `ns` (all when `None`), sorted by namespace and name.
    pub(crate) fn list<'a>(
        &'a self,
        kind: Kind,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        let start = (kind, ns.unwrap_or("").to_string(), String::new());
        self.objects
            .range(start..)
            .take_while(move |((k, n, _), _)| *k == kind && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v)
    }

    /// Owned copies of the objects of `kind` in `ns` whose controller is `uid`.
    pub(crate) fn owned(&self, kind: Kind, ns: &str, uid: &str) -> Vec<Value> {
        self.list(kind, Some(ns))
            .filter(|o| super::resources::controller_uid(o) == Some(uid))
            .cloned()
            .collect()
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn log(&mut self, kind: Kind, etype: EventType, object: Value, prev: Option<Value>) {
        let rv = self.rv;
        self.events.push_back(Arc::new(Event {
            rv,
            kind,
            etype,
            object,
            prev,
        }));
        self.trim();
        self.notify.send_replace(rv);
    }

    /// Stores a new object: sets uid, creationTimestamp, generation, resourceVersion,
    /// kind and apiVersion. The caller has checked the name is free.
    pub(crate) fn create(&mut self, kind: Kind, mut obj: Value) -> Value {
        let rv = self.next_rv();
        obj["kind"] = json!(kind.kind());
        obj["apiVersion"] = json!(kind.api_version());
        let meta = &mut obj["metadata"];
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["creationTimestamp"] = json!(now());
        meta["resourceVersion"] = json!(rv.to_string());
        if kind.has_generation() {
            meta["generation"] = json!(1);
        }
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        let key = Self::key(kind, namespace_of(&obj), name_of(&obj));
        self.objects.insert(key, obj.clone());
        self.log(kind, EventType::Added, obj.clone(), None);
        obj
    }

    /// Replaces a stored object: keeps uid and creationTimestamp, bumps generation when the
    /// spec (or a ControllerRevision's data) changed, sets a new resourceVersion. Returns the
    /// stored object, or `None` when nothing changed (no write, no event).
    pub(crate) fn update(&mut self, kind: Kind, mut obj: Value) -> Option<Value> {
        let key = Self::key(kind, namespace_of(&obj), name_of(&obj));
        let old = self.objects.get(&key)?.clone();
        obj["kind"] = json!(kind.kind());
        obj["apiVersion"] = json!(kind.api_version());
        obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
        obj["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if kind.has_generation() {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            let bump = old["spec"] != obj["spec"];
            obj["metadata"]["generation"] = json!(generation + i64::from(bump));
        }
        if obj == old {
            return None;
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects.insert(key, obj.clone());
        self.log(kind, EventType::Modified, obj.clone(), Some(old));
        Some(obj)
    }

    /// Removes one object (no cascade); returns it with the deletion's resourceVersion.
    pub(crate) fn remove(&mut self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self.objects.remove(&Self::key(kind, ns, name))?;
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.log(kind, EventType::Deleted, obj.clone(), None);
        Some(obj)
    }

    /// Removes an object and, as the garbage collector does in the background, everything
    /// it owns (recursively). With `orphan`, dependents lose the owner reference instead.
    pub(crate) fn remove_cascade(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        orphan: bool,
    ) -> Option<Value> {
        let obj = self.remove(kind, ns, name)?;
        let uid = uid_of(&obj).to_string();
        let dependents: Vec<(Kind, String)> = Kind::ALL
            .iter()
            .flat_map(|k| {
                self.list(*k, Some(ns))
                    .filter(|o| owned_by(o, &uid))
                    .map(|o| (*k, name_of(o).to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (k, n) in dependents {
            if orphan {
                if let Some(mut d) = self.get(k, ns, &n).cloned() {
                    if let Some(refs) = d["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
                    }
                    self.update(k, d);
                }
            } else {
                self.remove_cascade(k, ns, &n, false);
            }
        }
        Some(obj)
    }

    /// Removes every object (emitting DELETED events).
    pub(crate) fn clear(&mut self) {
        let keys: Vec<Key> = self.objects.keys().cloned().collect();
        for (k, ns, n) in keys {
            self.remove(k, &ns, &n);
        }
    }

    /// The events after `rv`, or `Err(compacted)` when some of them were dropped.
    pub(crate) fn events_after(&self, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        if rv < self.compacted {
            return Err(self.compacted);
        }
        let start = self.events.partition_point(|e| e.rv <= rv);
        Ok(self.events.range(start..).cloned().collect())
    }

    /// Every namespace that holds an object.
    pub(crate) fn namespaces(&self) -> Vec<String> {
        let mut ns: Vec<String> = self.objects.keys().map(|(_, n, _)| n.clone()).collect();
        ns.sort();
        ns.dedup();
        ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"replicas": 1}})
    }

    #[test]
    fn versions_generations_and_events() {
        let mut s = Store::new(100);
        let a = s.create(Kind::Deployment, dep("a"));
        assert_eq!(a["metadata"]["generation"], 1);
        let rv1: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            s.update(Kind::Deployment, a.clone()).is_none(),
            "no-op write"
        );
        let mut changed = a.clone();
        changed["spec"]["replicas"] = json!(2);
        let b = s.update(Kind::Deployment, changed).unwrap();
        assert_eq!(b["metadata"]["generation"], 2);
        let mut meta_only = b.clone();
        meta_only["metadata"]["labels"] = json!({"x": "y"});
        let c = s.update(Kind::Deployment, meta_only).unwrap();
        assert_eq!(c["metadata"]["generation"], 2);
        let events = s.events_after(rv1).unwrap();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.etype == EventType::Modified));
        s.compact();
        assert!(s.events_after(rv1).is_err());
        assert!(s.events_after(s.rv()).unwrap().is_empty());
    }

    #[test]
    fn list_is_scoped_and_cascade_deletes() {
        let mut s = Store::new(2);
        let a = s.create(Kind::Deployment, dep("a"));
        s.create(
            Kind::Deployment,
            json!({"metadata": {"name": "b", "namespace": "other"}}),
        );
        let mut rs = dep("a-1");
        rs["metadata"]["ownerReferences"] = json!([{"uid": uid_of(&a), "controller": true}]);
        s.create(Kind::ReplicaSet, rs);
        assert_eq!(s.list(Kind::Deployment, Some("ns")).count(), 1);
        assert_eq!(s.list(Kind::Deployment, None).count(), 2);
        assert_eq!(s.owned(Kind::ReplicaSet, "ns", uid_of(&a)).len(), 1);
        s.remove_cascade(Kind::Deployment, "ns", "a", false);
        assert_eq!(s.list(Kind::ReplicaSet, None).count(), 0);
        assert!(s.compacted() > 0, "capacity 2 dropped old events");
    }
}
