//! An incident on two in-memory services: a failing health check, the compensation, then a
//! verified rollback. Needs nothing but Rust.
//!
//! Release 1.9.0 of `checkout` and `payments-worker` throws 5xx. The on-call engineer first
//! rolls both back to image tag `1.8.1`; the worker's 1.8.1 turns out to be broken too, its
//! health check fails, and the transaction compensates: both services go back to where they
//! were, so nothing is left half rolled back. The second try, to tag `1.8.0`, is reviewed in
//! a dry run, then applied and verified.
//!
//! The health checks are real HTTP checks against a small server that answers for each
//! service from the revision it runs now.
//!
//! Run: `cargo run -p rollback-examples --example in_memory`

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_core::verify::{HttpCheck, Policy};
use rollback_core::{
    Check, FakeTarget, Outcome, Revision, RollbackTarget, Selector, Step, Transaction,
};
use rollback_examples::{init_logging, progress_printer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn service(name: &str, first_rev: u32) -> rollback_core::Result<FakeTarget> {
    let mut b = FakeTarget::builder(name).convergence(Duration::from_millis(400));
    for (i, version) in ["1.8.0", "1.8.1", "1.9.0"].iter().enumerate() {
        b = b.revision(
            Revision::new((first_rev + i as u32).to_string())
                .image(format!("registry.example/{name}:{version}"))
                .description(format!("release {version}")),
        );
    }
    b.build()
}

/// Answers `GET /health/<service>` with 200 when the service runs a healthy revision, 503
/// otherwise: what a load balancer's health endpoint would say.
async fn health_server(
    services: Vec<FakeTarget>,
    broken: HashSet<(String, String)>,
) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let services = services.clone();
            let broken = broken.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req.split_whitespace().nth(1).unwrap_or("/");
                let name = path.trim_start_matches("/health/");
                let (status, body) = match services.iter().find(|s| s.id().name == name) {
                    Some(s) => {
                        let rev = s.current_id();
                        if broken.contains(&(name.to_string(), rev.clone())) {
                            (
                                "503 Service Unavailable",
                                format!("{{\"status\":\"error\",\"revision\":\"{rev}\"}}"),
                            )
                        } else {
                            (
                                "200 OK",
                                format!("{{\"status\":\"ok\",\"revision\":\"{rev}\"}}"),
                            )
                        }
                    }
                    None => ("404 Not Found", "{}".to_string()),
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    Ok(format!("http://{addr}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let checkout = service("checkout", 41)?;
    let worker = service("payments-worker", 17)?;
    // 1.9.0 is the bad release; the worker's 1.8.1 has the same bug.
    let broken: HashSet<(String, String)> = [
        ("checkout".to_string(), "43".to_string()),
        ("payments-worker".to_string(), "19".to_string()),
        ("payments-worker".to_string(), "18".to_string()),
    ]
    .into();
    let base = health_server(vec![checkout.clone(), worker.clone()], broken).await?;
    let journal_dir =
        std::env::temp_dir().join(format!("rollback-incident-{}", std::process::id()));
    let locks = Arc::new(rollback_core::FileLocks::new(journal_dir.join("locks")));
    let health = |name: &str| {
        Check::new(HttpCheck::new(format!("{base}/health/{name}")).body_contains("\"ok\"")).policy(
            Policy::default()
                .attempts(3)
                .interval(Duration::from_millis(200)),
        )
    };
    let start = Instant::now();
    let targets = || -> [Arc<dyn RollbackTarget>; 2] {
        [Arc::new(checkout.clone()), Arc::new(worker.clone())]
    };

    println!(
        "== incident: release 1.9.0 throws 5xx; checkout at {}, payments-worker at {}",
        checkout.current_id(),
        worker.current_id()
    );
    println!("\n== attempt 1: roll both back to image tag 1.8.1");
    let [c, w] = targets();
    let first = Transaction::builder("rollback to 1.8.1")
        .reason("INC-2041: 5xx on checkout after release 1.9.0")
        .journal(journal_dir.join("attempt-1.jsonl"))
        .locks(locks.clone())
        .on_event(progress_printer(start))
        .step(Step::new(c, Selector::image_tag("1.8.1")).verify(health("checkout")))
        .stage()
        .step(Step::new(w, Selector::image_tag("1.8.1")).verify(health("payments-worker")))
        .build()?
        .run()
        .await?;
    println!("\n{first}");
    assert_eq!(first.outcome, Outcome::Compensated);
    println!(
        "-> compensated: checkout back at {}, payments-worker back at {} (nothing left half rolled back)",
        checkout.current_id(),
        worker.current_id()
    );

    println!("\n== attempt 2: review the plan for image tag 1.8.0 (dry run, nothing changes)");
    let [c, w] = targets();
    let second = Transaction::builder("rollback to 1.8.0")
        .reason("INC-2041: 1.8.1 of payments-worker is broken too; going to 1.8.0")
        .journal(journal_dir.join("attempt-2.jsonl"))
        .locks(locks)
        .on_event(progress_printer(start))
        .step(Step::new(c, Selector::image_tag("1.8.0")).verify(health("checkout")))
        .step(Step::new(w, Selector::image_tag("1.8.0")).verify(health("payments-worker")))
        .build()?;
    let plan = second.dry_run().await?;
    println!("\n{plan}");
    println!("\n== attempt 2: apply");
    let done = second.run().await?;
    println!("\n{done}");
    assert_eq!(done.outcome, Outcome::Succeeded);
    println!(
        "\n== resolved in {:.1?}: checkout at {}, payments-worker at {}; journals in {}",
        start.elapsed(),
        checkout.current_id(),
        worker.current_id(),
        journal_dir.display()
    );
    Ok(())
}
