//! Fleet benchmark: roll back N ECS services and N Lambda aliases to their previous
//! revisions against the emulated AWS, once with this library (one transaction) and once
//! the runbook way (the `aws` CLI called in a sequential loop, as runbook 001's
//! rollback-all.sh and runbook 000 do), and print wall time and API calls per target.
//!
//! Run: `bash scripts/bench.sh` or, with `.venv` set up,
//! `cargo run -p rollback-examples --example fleet_bench -- --n 50 --concurrency 16`.
//! Options: `--n N` (targets of each kind, default 50), `--concurrency C` (steps at once,
//! default 16), `--convergence-ms M` (how long an ECS deployment takes, default 1000),
//! `--skip-cli` (library only).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_aws::{Aws, EcsService, LambdaAlias};
use rollback_core::{Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_testkit::AwsEmulator;
use serde_json::{json, Value};

const CLUSTER: &str = "bench";

struct Args {
    n: usize,
    concurrency: usize,
    convergence_ms: u64,
    skip_cli: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        n: 50,
        concurrency: 16,
        convergence_ms: 1000,
        skip_cli: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a whole number"))
        };
        match flag.as_str() {
            "--n" => a.n = value("--n")? as usize,
            "--concurrency" => a.concurrency = value("--concurrency")? as usize,
            "--convergence-ms" => a.convergence_ms = value("--convergence-ms")?,
            "--skip-cli" => a.skip_cli = true,
            other => {
                return Err(format!(
                    "unknown option {other}; see the file's doc comment"
                ))
            }
        }
    }
    if a.n == 0 || a.concurrency == 0 {
        return Err("--n and --concurrency must be at least 1".into());
    }
    Ok(a)
}

fn svc(i: usize) -> (String, String) {
    (format!("svc-{i:03}"), format!("fam-{i:03}"))
}

fn func(i: usize) -> String {
    format!("fn-{i:03}")
}

async fn seed(
    emu: &AwsEmulator,
    n: usize,
    convergence_ms: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    emu.control("POST", "reset", None).await?;
    emu.set_ecs_convergence(Duration::from_millis(convergence_ms))
        .await?;
    let ecs: Vec<Value> = (0..n)
        .map(|i| {
            let (service, family) = svc(i);
            json!({"cluster": CLUSTER, "service": service, "family": family, "desired_count": 2,
                   "revisions": [{"image": format!("repo/{service}:good")}, {"image": format!("repo/{service}:bad")}],
                   "current": 2})
        })
        .collect();
    let lambda: Vec<Value> = (0..n)
        .map(|i| json!({"function": func(i), "alias": "live", "versions": ["good", "bad"], "alias_version": "2"}))
        .collect();
    emu.seed(json!({"ecs": ecs, "lambda": lambda})).await?;
    emu.control("DELETE", "calls", None).await?;
    Ok(())
}

async fn calls(emu: &AwsEmulator) -> Result<u64, Box<dyn std::error::Error>> {
    Ok(emu.calls().await?["total"].as_u64().unwrap_or(0))
}

/// The runbook way: one `aws` process per call, in a sequential loop.
fn runbook_way(endpoint: &str, n: usize) -> Result<(), String> {
    let aws = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("aws")
            .args(args)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .map_err(|e| format!("cannot run the aws CLI ({e}); install it with `pip install awscli` or pass --skip-cli"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "aws {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    // Runbook 001, rollback-all.sh: find the revision, update the service; then wait.
    for i in 0..n {
        let (service, family) = svc(i);
        aws(&["ecs", "list-task-definitions", "--family-prefix", &family])?;
        aws(&[
            "ecs",
            "update-service",
            "--cluster",
            CLUSTER,
            "--service",
            &service,
            "--task-definition",
            &format!("{family}:1"),
        ])?;
    }
    // `aws ecs wait services-stable` takes at most 10 services per call (DescribeServices).
    let names: Vec<String> = (0..n).map(|i| svc(i).0).collect();
    for chunk in names.chunks(10) {
        let mut args = vec![
            "ecs",
            "wait",
            "services-stable",
            "--cluster",
            CLUSTER,
            "--services",
        ];
        args.extend(chunk.iter().map(String::as_str));
        aws(&args)?;
    }
    // Runbook 000: list versions, update the alias, verify it.
    for i in 0..n {
        let f = func(i);
        aws(&["lambda", "list-versions-by-function", "--function-name", &f])?;
        aws(&[
            "lambda",
            "update-alias",
            "--function-name",
            &f,
            "--name",
            "live",
            "--function-version",
            "1",
        ])?;
        aws(&[
            "lambda",
            "get-alias",
            "--function-name",
            &f,
            "--name",
            "live",
        ])?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let emu = AwsEmulator::start().await?;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let targets = 2 * a.n;
    println!(
        "fleet: {} ECS services + {} Lambda aliases, ECS deployments converge in {} ms",
        a.n, a.n, a.convergence_ms
    );

    seed(&emu, a.n, a.convergence_ms).await?;
    let journal = std::env::temp_dir().join(format!("rollback-bench-{}.jsonl", std::process::id()));
    let mut b = Transaction::builder("fleet rollback")
        .reason("benchmark")
        .journal(&journal)
        .concurrency(a.concurrency)
        .locks(Arc::new(rollback_core::FileLocks::new(
            std::env::temp_dir().join("rollback-bench-locks"),
        )));
    for i in 0..a.n {
        let (service, _) = svc(i);
        b = b.step(Step::new(
            Arc::new(EcsService::new(&aws, CLUSTER, service)?) as Arc<dyn RollbackTarget>,
            Selector::Previous,
        ));
        b = b.step(Step::new(
            Arc::new(LambdaAlias::new(&aws, func(i), "live")?),
            Selector::Previous,
        ));
    }
    let tx = b.build()?;
    let start = Instant::now();
    let report = tx.run().await?;
    let lib_time = start.elapsed();
    let lib_calls = calls(&emu).await?;
    if report.outcome != Outcome::Succeeded {
        return Err(format!("library run did not succeed:\n{report}").into());
    }
    let _ = std::fs::remove_file(&journal);

    let mut rows = vec![(
        format!("rollback (one transaction, concurrency {})", a.concurrency),
        lib_time,
        lib_calls,
    )];
    if !a.skip_cli {
        seed(&emu, a.n, a.convergence_ms).await?;
        let endpoint = emu.endpoint().to_string();
        let n = a.n;
        let start = Instant::now();
        tokio::task::spawn_blocking(move || runbook_way(&endpoint, n)).await??;
        rows.push((
            "runbook way (aws CLI, sequential loop)".into(),
            start.elapsed(),
            calls(&emu).await?,
        ));
    }
    println!(
        "\n{:<48} {:>12} {:>12} {:>16}",
        "method", "wall time", "API calls", "calls per target"
    );
    for (name, time, calls) in &rows {
        println!(
            "{name:<48} {:>11.1}s {calls:>12} {:>16.1}",
            time.as_secs_f64(),
            *calls as f64 / targets as f64
        );
    }
    if rows.len() == 2 {
        println!(
            "\nspeed-up: {:.1}x",
            rows[1].1.as_secs_f64() / rows[0].1.as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
