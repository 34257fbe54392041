//! Notifications (runbook 004 "Communication"): a webhook told when a run starts and how it
//! ended, against a real HTTP server on a local port; a webhook that fails never fails the
//! rollback; a bad one is refused before anything changes; the runbook key `notify`.
#![allow(clippy::unwrap_used)]
#![cfg(all(feature = "http", feature = "testing", feature = "runbook"))]

use std::path::Path;
use std::sync::{Arc, Mutex};

use rollback_core::journal::{read_journal, Entry};
use rollback_core::notify::{Webhook, WebhookFormat};
use rollback_core::runbook::{Runbook, Vars};
use rollback_core::verify::{check_bool, Policy};
use rollback_core::{
    Check, ErrorKind, FakeTarget, FileLocks, Outcome, Registry, Revision, Selector, Step,
    Transaction, TransactionBuilder,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A local HTTP server answering every POST with `status`, keeping the bodies.
struct Hook {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn hook(status: u16) -> Hook {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hooks/T000/B000/secret-token",
        listener.local_addr().unwrap()
    );
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Headers, then Content-Length bytes of body.
            let body = loop {
                let n = conn.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break Some(
                            String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string(),
                        );
                    }
                }
            };
            if let Some(b) = body {
                kept.lock().unwrap().push(b);
            }
            let answer =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = conn.write_all(answer.as_bytes()).await;
        }
    });
    Hook { url, bodies }
}

fn target() -> FakeTarget {
    FakeTarget::builder("api")
        .revision(Revision::new("1").image("registry/api:v1"))
        .revision(Revision::new("2").image("registry/api:v2"))
        .build()
        .unwrap()
}

fn tx(dir: &Path, t: &FakeTarget) -> TransactionBuilder {
    Transaction::builder("api back")
        .reason("5xx after 2")
        .journal(dir.join("j.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .step(Step::new(Arc::new(t.clone()), Selector::Previous))
}

fn actions(dir: &Path) -> Vec<(String, bool)> {
    read_journal(dir.join("j.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.entry {
            Entry::Action { name, ok, .. } => Some((name, ok)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_team_is_told_when_a_rollback_starts_and_how_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let (json, slack) = (hook(200).await, hook(200).await);
    let t = target();
    let report = tx(dir.path(), &t)
        .notify(Arc::new(
            Webhook::new(&json.url).format(WebhookFormat::Json),
        ))
        .notify(Arc::new(Webhook::new(&slack.url)))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let bodies: Vec<Value> = json
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["event"], "started");
    assert_eq!(bodies[0]["reason"], "5xx after 2");
    assert_eq!(bodies[0]["targets"][0]["from"], "2");
    assert_eq!(bodies[0]["targets"][0]["to"], "1");
    assert!(bodies[0].get("outcome").is_none(), "{}", bodies[0]);
    assert_eq!(bodies[1]["event"], "ended");
    assert_eq!(bodies[1]["outcome"], "succeeded");
    assert_eq!(bodies[1]["transaction"], report.transaction.as_str());
    assert!(bodies[1]["time_to_recover_ms"].is_u64(), "{}", bodies[1]);

    let texts: Vec<Value> = slack
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let end = texts[1]["text"].as_str().unwrap();
    assert!(end.starts_with("rollback succeeded: api back"), "{end}");
    assert!(
        end.contains("memory/api: 2 -> 1") && end.contains("time to recover"),
        "{end}"
    );

    let recorded = actions(dir.path());
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    assert!(recorded
        .iter()
        .all(|(n, ok)| *ok && n.starts_with("notify webhook 127.0.0.1")));
    // The webhook's path (Slack's is its credential) is shown nowhere.
    let journal = std::fs::read_to_string(dir.path().join("j.jsonl")).unwrap();
    assert!(!journal.contains("secret-token") && !format!("{report}").contains("secret-token"));
}

#[tokio::test]
async fn a_webhook_that_fails_never_fails_the_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let broken = hook(500).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/gone", l.local_addr().unwrap())
    };
    let t = target();
    let report = tx(dir.path(), &t)
        .notify(Arc::new(Webhook::new(&broken.url)))
        .notify(Arc::new(Webhook::new(&closed)))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(t.current_id(), "1");
    let attention: Vec<&str> = report
        .needs_attention
        .iter()
        .map(|a| a.message.as_str())
        .collect();
    assert_eq!(
        attention.len(),
        4,
        "both hooks, at start and end: {attention:?}"
    );
    assert!(
        attention[0].contains("HTTP 500") && attention[0].contains("team was not told"),
        "{attention:?}"
    );
    assert!(actions(dir.path()).iter().all(|(_, ok)| !ok));
    assert!(
        !format!("{report}").contains("/gone"),
        "no URL path in the report"
    );
}

#[tokio::test]
async fn a_failed_rollback_is_told_as_compensated() {
    let dir = tempfile::tempdir().unwrap();
    let json = hook(200).await;
    let t = target();
    let report = tx(dir.path(), &t)
        .verify(Check::new(check_bool("healthy", || async { false })).policy(Policy::once()))
        .notify(Arc::new(
            Webhook::new(&json.url).format(WebhookFormat::Json),
        ))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let end: Value = serde_json::from_str(&json.bodies.lock().unwrap()[1]).unwrap();
    assert_eq!(end["outcome"], "compensated", "{end}");
}

#[tokio::test]
async fn a_bad_webhook_is_refused_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let t = target();
    for bad in ["ftp://hooks.example/x", "not a url"] {
        let err = tx(dir.path(), &t)
            .notify(Arc::new(Webhook::new(bad)))
            .build()
            .unwrap()
            .run()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("webhook"), "{err}");
    }
    assert_eq!(t.apply_count(), 0);
}

#[tokio::test]
async fn runbook_files_name_their_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let json = hook(200).await;
    let state = dir.path().join("api.json");
    let t = FakeTarget::builder("api")
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .state_file(&state)
        .build()
        .unwrap();
    let text = format!(
        "name: x\nreason: r\njournal: j.jsonl\nlocks: {{kind: file, dir: locks}}\nsteps:\n  - target: {{kind: memory, name: api, state_file: {state:?}}}\nnotify:\n  - webhook: {{url: \"{}\", format: json, timeout: 5s}}\n",
        json.url
    );
    let report = Runbook::parse("x.yaml", dir.path(), &text, &Vars::new())
        .unwrap()
        .build(&Registry::with_builtins())
        .await
        .unwrap()
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(t.current_id(), "1");
    let events: Vec<String> = json
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap()["event"].to_string())
        .collect();
    assert_eq!(events, ["\"started\"", "\"ended\""]);

    let bad = "name: x\nsteps:\n  - target: {kind: memory, name: api}\nnotify:\n  - webhook: {url: \"https://hooks.example/x\", format: teams}\n  - webhook: {url: \"ftp://x\"}\n";
    let err = Runbook::parse("bad.yaml", dir.path(), bad, &Vars::new())
        .unwrap()
        .build(&Registry::with_builtins())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.yaml:5:") && err.contains("write slack or json"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:6:") && err.contains("http(s)"),
        "{err}"
    );
}
