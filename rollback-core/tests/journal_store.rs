//! A journal kept in a store beside its file: every record there before the run goes on,
//! a run finished from the store on another machine without applying anything twice, two
//! writers of one transaction stopped, and transactions listed from the store.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rollback_core::journal::{list_store, parse_records, read_journal, Entry, JournalStore};
use rollback_core::{
    resume_from_store, FakeTarget, FileLocks, Outcome, Registry, Result, ResumeOptions, Revision,
    Selector, Step, Transaction,
};

/// Objects in memory, written only if absent, as S3 with `If-None-Match: *`.
#[derive(Debug, Default)]
struct MemoryStore {
    objects: Mutex<BTreeMap<(String, u64), Vec<u8>>>,
}

#[async_trait]
impl JournalStore for MemoryStore {
    fn describe(&self) -> String {
        "memory store".into()
    }
    async fn put(&self, transaction: &str, from: u64, lines: &[u8]) -> Result<bool> {
        let mut o = self.objects.lock().unwrap();
        let key = (transaction.to_string(), from);
        if o.contains_key(&key) {
            return Ok(false);
        }
        o.insert(key, lines.to_vec());
        Ok(true)
    }
    async fn read(&self, transaction: &str) -> Result<Vec<u8>> {
        let o = self.objects.lock().unwrap();
        Ok(o.iter()
            .filter(|((t, _), _)| t == transaction)
            .flat_map(|(_, v)| v.clone())
            .collect())
    }
    async fn transactions(&self) -> Result<Vec<String>> {
        let o = self.objects.lock().unwrap();
        let mut ids: Vec<String> = o.keys().map(|(t, _)| t.clone()).collect();
        ids.dedup();
        Ok(ids)
    }
}

fn target(dir: &std::path::Path) -> FakeTarget {
    FakeTarget::builder("api")
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .state_file(dir.join("api.json"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_store_holds_every_record_the_file_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let t = target(dir.path());
    let tx = Transaction::builder("stored")
        .reason("journal store test")
        .journal(dir.path().join("j.jsonl"))
        .journal_store(store.clone())
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .step(Step::new(Arc::new(t.clone()), Selector::Previous))
        .build()
        .unwrap();
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let file = std::fs::read(dir.path().join("j.jsonl")).unwrap();
    assert_eq!(
        store.read(tx.id()).await.unwrap(),
        file,
        "the same bytes, in order"
    );
    let listed = list_store(&*store).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, tx.id());
    assert_eq!(listed[0].name, "stored");
    assert_eq!(listed[0].reason.as_deref(), Some("journal store test"));
    assert_eq!(listed[0].outcome, Some(Outcome::Succeeded));
    // The local folder lists the same way.
    let local = rollback_core::journal::list_dir(dir.path()).unwrap();
    assert_eq!(local, listed);
}

#[tokio::test]
async fn a_run_whose_machine_died_is_finished_from_the_store_without_applying_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let t = target(dir.path());
    // The run on the dead machine got as far as its apply: its records up to `applied`
    // are in the store; its own file is gone with the machine.
    let tx = Transaction::builder("died")
        .reason("journal store test")
        .journal(dir.path().join("dead-machine.jsonl"))
        .journal_store(store.clone())
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .step(Step::new(Arc::new(t.clone()), Selector::Previous))
        .build()
        .unwrap();
    tx.run().await.unwrap();
    let all = parse_records("memory", &store.read(tx.id()).await.unwrap()).unwrap();
    let applied = all
        .iter()
        .position(|r| matches!(r.entry, Entry::Applied { .. }))
        .unwrap();
    {
        let mut o = store.objects.lock().unwrap();
        o.retain(|(_, seq), _| *seq <= all[applied].seq);
        assert!(o.values().all(|v| !v.is_empty()));
    }
    std::fs::remove_file(dir.path().join("dead-machine.jsonl")).unwrap();
    assert_eq!(t.apply_count(), 1);

    let local = dir.path().join("laptop").join("resumed.jsonl");
    let report = resume_from_store(
        store.clone(),
        tx.id(),
        &local,
        ResumeOptions {
            registry: Registry::with_builtins(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(t.apply_count(), 1, "nothing applied twice");
    // The store got the resumed run's records too, after the dead run's.
    let stored = parse_records("memory", &store.read(tx.id()).await.unwrap()).unwrap();
    assert_eq!(stored, read_journal(&local).unwrap());
    assert!(stored.len() > applied + 1);
    assert!(matches!(
        stored.last().unwrap().entry,
        Entry::Released { .. } | Entry::End { .. }
    ));

    // An unknown transaction is named in the error.
    let e = resume_from_store(
        store,
        "no-such-tx",
        dir.path().join("x.jsonl"),
        ResumeOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no-such-tx"), "{e}");
}

#[tokio::test]
async fn a_second_writer_of_one_transaction_is_stopped_at_its_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let tx = "tx-two-writers";
    let a = rollback_core::journal::JournalWriter::open(dir.path().join("a.jsonl"), tx)
        .unwrap()
        .with_store(store.clone());
    let b = rollback_core::journal::JournalWriter::open(dir.path().join("b.jsonl"), tx)
        .unwrap()
        .with_store(store.clone());
    let entry = || Entry::Resumed {
        holder: rollback_core::Holder::current(tx),
    };
    a.append(entry()).await.unwrap();
    let e = b.append(entry()).await.unwrap_err();
    assert!(e.to_string().contains("another process"), "{e}");
    assert_eq!(store.objects.lock().unwrap().len(), 1);
}
