//! Runbook scenarios on fake targets: what the backends' scenario suites will repeat
//! against emulators.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollback_core::{
    ErrorKind, Event, FakeTarget, FileLocks, Outcome, Report, Revision, RollbackTarget, Selector,
    Step, Transaction,
};

/// Runbook 001's services: each family has releases tagged by commit SHA.
fn service(name: &str, tags: &[&str]) -> FakeTarget {
    let mut b = FakeTarget::builder(name).convergence(Duration::from_millis(20));
    for (i, tag) in tags.iter().enumerate() {
        b = b.revision(
            Revision::new(format!("agentauri-production-{name}:{}", 12 + i)).image(format!(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:{tag}"
            )),
        );
    }
    b.build().expect("service")
}

fn rollback_all(
    dir: &std::path::Path,
    services: &[FakeTarget],
    tag: &str,
) -> rollback_core::TransactionBuilder {
    let mut b = Transaction::builder(format!("rollback all to {tag}"))
        .reason("migration broke queries")
        .journal(dir.join(format!("{tag}-{}.jsonl", services.len())))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))));
    for s in services {
        b = b.step(Step::new(
            Arc::new(s.clone()) as Arc<dyn RollbackTarget>,
            Selector::image_tag(tag),
        ));
    }
    b
}

#[tokio::test]
async fn rollback_all_services_to_a_known_good_image_tag() {
    let dir = tempfile::tempdir().unwrap();
    let services = [
        service("api-gateway", &["abc123", "def456", "bad999"]),
        service("event-processor", &["abc123", "bad999"]),
        service("action-workers", &["0aa000", "abc123", "f00f00", "bad999"]),
    ];
    let events = Arc::new(Mutex::new(Vec::<Event>::new()));
    let sink = events.clone();
    let report = rollback_all(dir.path(), &services, "abc123")
        .on_event(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    // The tag is matched on the images (the runbook's script searched the ARN and could
    // never match).
    assert_eq!(
        services[0].current_id(),
        "agentauri-production-api-gateway:12"
    );
    assert_eq!(
        services[1].current_id(),
        "agentauri-production-event-processor:12"
    );
    assert_eq!(
        services[2].current_id(),
        "agentauri-production-action-workers:13"
    );

    // Reports and events are data: an incident report and notifications can be made of them.
    let json = serde_json::to_string(&report).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    assert_eq!(back.steps.len(), 3);
    for e in events.lock().unwrap().iter() {
        let v = serde_json::to_value(e).unwrap();
        assert_eq!(v["transaction"], report.transaction.as_str());
    }
}

#[tokio::test]
async fn a_service_without_the_tag_stops_everything_before_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let services = [
        service("api-gateway", &["abc123", "bad999"]),
        service("event-processor", &["0aa000", "bad999"]),
    ];
    let err = rollback_all(dir.path(), &services, "abc123")
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let msg = err.to_string();
    assert!(msg.starts_with("memory/event-processor:"), "{msg}");
    assert!(msg.contains("abc123"), "{msg}");
    // Unlike the runbook's loop, which rolled back the services it could and printed a
    // warning for the rest, nothing changed.
    for s in &services {
        assert_eq!(s.apply_count(), 0);
    }
}
