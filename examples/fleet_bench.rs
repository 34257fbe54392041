//! Fleet benchmark (issue 12): N ECS services (one cluster) and N Lambda aliases, each
//! rolled back to its previous revision, by three methods measured in the same run on the
//! same endpoint, re-seeded before every repetition:
//!
//! - `rollback`: one transaction of this library (`EcsService` / `LambdaAlias` steps with
//!   `Selector::Previous`), at the library's default concurrency unless `--concurrency` is
//!   given; a fresh journal and `FileLocks` directory per repetition.
//! - `hand-written SDK loop`: what a careful engineer writes in an afternoon with
//!   aws-sdk-rust: one client per service, 16 targets at a time (`buffer_unordered`). ECS:
//!   DescribeServices (task definition `family:N`), UpdateService to `family:N-1`, then
//!   DescribeServices every 0.25 s until one deployment has runningCount == desiredCount.
//!   Lambda: GetAlias (version N), UpdateAlias to N-1, then GetFunctionConfiguration of that
//!   version every 0.25 s until it is Active. No retries, no checks.
//! - `runbook script`: runbook 001's `rollback-all.sh` with the real `aws` CLI, one process
//!   per call, in sequence: per service `aws ecs list-task-definitions --family-prefix`
//!   (the previous revision picked with `--query`, as the script does) and `aws ecs
//!   update-service`; then one `aws ecs wait services-stable` per 10 services (the API's
//!   limit per DescribeServices); then runbook 000's Lambda step 2, per alias `aws lambda
//!   update-alias` to the previous version. Runbook 000 also lists the versions first (step 1,
//!   `list-versions-by-function`) and reads the alias back (step 3, `get-alias`); only step
//!   2 is modelled by default, as rollback-all.sh has no Lambda part and no read-back;
//!   `--cli-list-versions` adds step 1.
//!
//! Per method and N it prints the wall time (median of the repetitions, and min/max), the
//! time relative to `rollback`, the API calls per target (count / 2N) in all and by
//! operation, as the endpoint counted them, and the process's peak RSS (VmHWM, reset before
//! each repetition through /proc/self/clear_refs; for the runbook script also the largest
//! `aws` process, sampled from /proc every 20 ms: getrusage would need `unsafe`, which the
//! workspace forbids). Then a scale table: 1,000 in-memory targets (`FakeTarget`, 400 ms
//! convergence) in one transaction: wall time, and the engine's own overhead = wall - 0.4 s;
//! and the memory added by 1,000 AWS targets (500 ECS + 500 Lambda): RSS after building them
//! and their transaction, and after its dry run, minus RSS before, measured in a child process
//! (this program again, with `--memory-probe`) after a warm-up dry run of two targets, so that
//! neither code pages nor the fleet runs' heap are counted. Everything is printed at the end,
//! with the context (endpoint, convergence, concurrency as the journal records it, CLI
//! version, load average); progress goes to stderr.
//!
//! Run: `bash scripts/bench.sh -- --n 50,200` (it sets up `.venv` with the emulator and the
//! `aws` CLI), or with those present
//! `cargo run -p rollback-examples --example fleet_bench -- --n 50,200`. Options:
//!
//! - `--n LIST`: targets of each kind, comma-separated (default 50): a row per method per N.
//! - `--reps R`: repetitions per method and N (default 3).
//! - `--concurrency C`: the library's steps at once (default: the library's own default).
//! - `--convergence-ms M`: how long an ECS deployment takes after UpdateService (default 400).
//! - `--endpoint URL`: an AWS-compatible endpoint this program did not start. If it serves
//!   our emulator's control API (`python -m rollback_emulator --port 4566`), it is seeded and
//!   counted through it (and reset each time: its state is lost). Otherwise (a plain moto
//!   server, LocalStack) it is seeded through the SDK under fresh names per repetition and
//!   counted by a small proxy in front of it, through which all three methods go; its ECS
//!   deployments converge as that endpoint makes them (a plain moto server never does, so
//!   there every method waits until `--timeout`). Credentials and region come from
//!   `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
//!   `AWS_DEFAULT_REGION` (default `testing` / `testing` / `us-east-1`). Without
//!   `--endpoint` the benchmark starts our emulator (moto with the project's patches).
//! - `--no-control-api`: treat `--endpoint` as plain even if it is our emulator (checks the
//!   proxy's counts against the emulator's).
//! - `--timeout S`: a `rollback` or SDK-loop repetition that takes longer fails the benchmark
//!   (default 600; the script's `aws ecs wait` gives up by itself after 40 polls 15 s apart).
//! - `--skip-cli`: leave out the runbook script (no `aws` CLI needed).
//! - `--cli-list-versions`: the runbook script also runs runbook 000's
//!   `aws lambda list-versions-by-function` before each update-alias.
//! - `--scale`: only the scale table; `--no-scale`: only the fleet table.
//! - `--shared-state`: also the library with its leases in a DynamoDB table on the same
//!   endpoint (`DynamoDbLocks`, the table made before each repetition's clock starts), as a
//!   row `rollback, DynamoDB locks`, and a table of one lease's acquire / renew / release
//!   latency (median of 100 targets, one call after another) for file and DynamoDB leases.
//!
//! It exits non-zero with a message when a method fails or a library run does not succeed.
//! The endpoint, seeding, counting proxy and `aws` runner are in `fleet_bench/harness.rs`.

#[path = "fleet_bench/harness.rs"]
mod harness;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{stream, StreamExt, TryStreamExt};
use harness::{
    load, print_table, proc_kb, reset_peak, Backend, Cli, Fleet, Method, Rep, Row, NO_CLI,
};
use rollback_aws::{Aws, DynamoDbLocks, EcsService, LambdaAlias};
use rollback_core::{
    FakeTarget, FileKnownGood, FileLocks, Holder, LockManager, Outcome, Revision, RollbackTarget,
    Selector, Step, TargetId, Transaction, TransactionBuilder,
};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, Error>;

const CLUSTER: &str = "bench";
/// The hand-written loop's targets at a time, and its poll interval.
const SDK_AT_ONCE: usize = 16;
const SDK_POLL: Duration = Duration::from_millis(250);
/// The scale figures' sizes.
const SCALE_FAKE: usize = 1000;
const SCALE_AWS_EACH: usize = 500;
const FAKE_CONVERGENCE: Duration = Duration::from_millis(400);
/// `--shared-state`: the DynamoDB lock table, and the leases timed one after another.
const LOCK_TABLE: &str = "rollback-bench-locks";
const LOCK_SAMPLES: usize = 100;

/// One lease's acquire, renew and release, `LOCK_SAMPLES` times on distinct targets, one
/// call after another: the median of each, in milliseconds.
async fn lock_latency(locks: &dyn LockManager) -> Res<(f64, f64, f64)> {
    let holder = Holder::current(format!("bench-{}", std::process::id()));
    let ttl = Duration::from_secs(60);
    let (mut acq, mut renew, mut rel) = (Vec::new(), Vec::new(), Vec::new());
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    for i in 0..LOCK_SAMPLES {
        let target = TargetId::new("bench", format!("lease-{i}"));
        let t = Instant::now();
        let lease = locks.acquire(&target, &holder, ttl).await?;
        acq.push(ms(t));
        let t = Instant::now();
        let lease = locks.renew(&lease, ttl).await?;
        renew.push(ms(t));
        let t = Instant::now();
        locks.release(&lease).await?;
        rel.push(ms(t));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(acq), median(renew), median(rel)))
}

struct Args {
    ns: Vec<usize>,
    reps: usize,
    concurrency: Option<usize>,
    convergence_ms: u64,
    endpoint: Option<String>,
    skip_cli: bool,
    cli_list_versions: bool,
    fleet: bool,
    scale: bool,
    memory_probe: bool,
    timeout: Duration,
    plain: bool,
    shared: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        ns: vec![50],
        reps: 3,
        concurrency: None,
        convergence_ms: 400,
        endpoint: None,
        skip_cli: false,
        cli_list_versions: false,
        fleet: true,
        scale: true,
        memory_probe: false,
        timeout: Duration::from_secs(600),
        plain: false,
        shared: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let whole = |v: &str| -> Res<usize> {
            let n = v
                .trim()
                .parse()
                .map_err(|_| format!("{flag} takes whole numbers, not {v:?}"))?;
            Ok(n)
        };
        match flag.as_str() {
            "--n" => a.ns = value()?.split(',').map(whole).collect::<Res<_>>()?,
            "--reps" => a.reps = whole(&value()?)?,
            "--concurrency" => a.concurrency = Some(whole(&value()?)?),
            "--convergence-ms" => a.convergence_ms = whole(&value()?)? as u64,
            "--endpoint" => a.endpoint = Some(value()?),
            "--skip-cli" => a.skip_cli = true,
            "--cli-list-versions" => a.cli_list_versions = true,
            "--scale" => a.fleet = false,
            "--no-scale" => a.scale = false,
            "--memory-probe" => a.memory_probe = true,
            "--timeout" => a.timeout = Duration::from_secs(whole(&value()?)? as u64),
            "--no-control-api" => a.plain = true,
            "--shared-state" => a.shared = true,
            "--" => {}
            other => {
                return Err(format!("unknown option {other}; see examples/fleet_bench.rs").into())
            }
        }
    }
    if a.ns.is_empty() || a.ns.iter().any(|&n| n == 0 || n > 9999) {
        return Err("--n takes numbers from 1 to 9999".into());
    }
    if a.reps == 0 || a.concurrency == Some(0) {
        return Err("--reps and --concurrency must be at least 1".into());
    }
    if a.plain && a.endpoint.is_none() {
        return Err("--no-control-api needs --endpoint".into());
    }
    if !a.fleet && !a.scale {
        return Err("--scale and --no-scale together leave nothing to run".into());
    }
    Ok(a)
}

// ---------------------------------------------------------------------------------------
// The three methods.

fn fleet_transaction(
    aws: &Aws,
    fleet: &Fleet,
    conc: Option<usize>,
    dir: &Path,
    locks: Option<Arc<dyn LockManager>>,
) -> Res<TransactionBuilder> {
    std::fs::create_dir_all(dir)?;
    let locks = locks.unwrap_or_else(|| Arc::new(FileLocks::new(dir.join("locks"))));
    let mut b = Transaction::builder("fleet rollback")
        .reason("issue 12 fleet benchmark")
        .journal(dir.join("journal.jsonl"))
        .known_good(Arc::new(FileKnownGood::new(dir.join("known-good"))))
        .locks(locks);
    if let Some(c) = conc {
        b = b.concurrency(c);
    }
    for i in 0..fleet.n {
        let ecs: Arc<dyn RollbackTarget> =
            Arc::new(EcsService::new(aws, CLUSTER, fleet.service(i))?);
        b = b.step(Step::new(ecs, Selector::Previous));
        let alias = LambdaAlias::new(aws, fleet.function(i), "live")?;
        b = b.step(Step::new(Arc::new(alias), Selector::Previous));
    }
    Ok(b)
}

async fn run_rollback(
    aws: &Aws,
    fleet: &Fleet,
    conc: Option<usize>,
    dir: &Path,
    locks: Option<Arc<dyn LockManager>>,
) -> Res<()> {
    let tx = fleet_transaction(aws, fleet, conc, dir, locks)?.build()?;
    let report = tx.run().await?;
    if report.outcome != Outcome::Succeeded {
        let text = report.to_string();
        let head: Vec<&str> = text.lines().take(40).collect();
        let journal = tx.journal_path().display();
        return Err(format!(
            "the run ended {} (journal {journal}):\n{}",
            report.outcome,
            head.join("\n")
        )
        .into());
    }
    Ok(())
}

/// An SDK error with its causes (its own Display says only "service error").
fn sdk_error<E: std::error::Error>(e: E) -> Error {
    aws_sdk_ecs::error::DisplayErrorContext(e)
        .to_string()
        .into()
}

async fn sdk_ecs(ecs: &aws_sdk_ecs::Client, service: String) -> Res<()> {
    let describe = || async {
        let out = ecs
            .describe_services()
            .cluster(CLUSTER)
            .services(&service)
            .send()
            .await;
        out.map_err(sdk_error)?
            .services
            .unwrap_or_default()
            .pop()
            .ok_or_else(|| Error::from(format!("no service {service}")))
    };
    let arn = describe()
        .await?
        .task_definition
        .ok_or(format!("{service} has no task definition"))?;
    // arn:aws:ecs:<region>:<account>:task-definition/<family>:<N>
    let td = arn.rsplit('/').next().unwrap_or(&arn);
    let (family, rev) = td.rsplit_once(':').ok_or(format!("no revision in {arn}"))?;
    let previous = rev
        .parse::<u32>()?
        .checked_sub(1)
        .ok_or(format!("{arn} has no previous"))?;
    let previous = format!("{family}:{previous}");
    let update = ecs
        .update_service()
        .cluster(CLUSTER)
        .service(&service)
        .task_definition(previous);
    update.send().await.map_err(sdk_error)?;
    loop {
        if let [d] = describe().await?.deployments() {
            if d.running_count() == d.desired_count() {
                return Ok(());
            }
        }
        tokio::time::sleep(SDK_POLL).await;
    }
}

async fn sdk_lambda(lambda: &aws_sdk_lambda::Client, function: String) -> Res<()> {
    let alias = lambda
        .get_alias()
        .function_name(&function)
        .name("live")
        .send()
        .await
        .map_err(sdk_error)?;
    let version = alias
        .function_version()
        .ok_or(format!("{function}:live has no version"))?;
    let previous = version
        .parse::<u32>()?
        .checked_sub(1)
        .ok_or("version 0 has no previous")?;
    let previous = previous.to_string();
    let update = lambda
        .update_alias()
        .function_name(&function)
        .name("live")
        .function_version(&previous);
    update.send().await.map_err(sdk_error)?;
    loop {
        let get = lambda
            .get_function_configuration()
            .function_name(&function)
            .qualifier(&previous);
        let config = get.send().await.map_err(sdk_error)?;
        if config.state() == Some(&aws_sdk_lambda::types::State::Active) {
            return Ok(());
        }
        tokio::time::sleep(SDK_POLL).await;
    }
}

async fn run_sdk(
    ecs: &aws_sdk_ecs::Client,
    lambda: &aws_sdk_lambda::Client,
    fleet: &Fleet,
) -> Res<()> {
    let jobs = (0..fleet.n).flat_map(|i| [(true, fleet.service(i)), (false, fleet.function(i))]);
    stream::iter(jobs)
        .map(|(is_ecs, name)| async move {
            match is_ecs {
                true => sdk_ecs(ecs, name).await,
                false => sdk_lambda(lambda, name).await,
            }
        })
        .buffer_unordered(SDK_AT_ONCE)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Runbook 001's rollback-all.sh, then runbook 000's update-alias per alias.
fn runbook(cli: &Cli, fleet: &Fleet, list_versions: bool) -> Res<()> {
    for i in 0..fleet.n {
        let (service, family) = (fleet.service(i), fleet.family(i));
        // The script's --query picks the known-good tag's revision; here, the previous one.
        let query = "--query taskDefinitionArns[-2] --output text";
        let revision = cli.aws(&format!(
            "ecs list-task-definitions --family-prefix {family} {query}"
        ))?;
        if revision.is_empty() || revision == "None" {
            return Err(format!("no previous revision found for {family}").into());
        }
        let to = format!("--task-definition {revision}");
        cli.aws(&format!(
            "ecs update-service --cluster {CLUSTER} --service {service} {to}"
        ))?;
    }
    let services: Vec<String> = (0..fleet.n).map(|i| fleet.service(i)).collect();
    for ten in services.chunks(10) {
        cli.aws(&format!(
            "ecs wait services-stable --cluster {CLUSTER} --services {}",
            ten.join(" ")
        ))?;
    }
    for i in 0..fleet.n {
        let f = fleet.function(i);
        let mut version = "1".to_string();
        if list_versions {
            let query = "--query Versions[-2].Version --output text";
            version = cli.aws(&format!(
                "lambda list-versions-by-function --function-name {f} {query}"
            ))?;
        }
        let to = format!("--function-version {version}");
        cli.aws(&format!(
            "lambda update-alias --function-name {f} --name live {to}"
        ))?;
    }
    Ok(())
}
// ---------------------------------------------------------------------------------------
// Measuring and printing.

/// 1,000 in-memory targets rolled back in one transaction: the wall time.
async fn scale_fake(conc: Option<usize>, dir: &Path) -> Res<Duration> {
    std::fs::create_dir_all(dir)?;
    let mut b = Transaction::builder("scale: in-memory fleet")
        .reason("issue 12 scale figure")
        .journal(dir.join("journal.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))));
    if let Some(c) = conc {
        b = b.concurrency(c);
    }
    for i in 0..SCALE_FAKE {
        let t = FakeTarget::builder(format!("fake-{i:04}"))
            .revision(Revision::new("1").image(format!("repo/fake-{i}:good")))
            .revision(Revision::new("2").image(format!("repo/fake-{i}:bad")))
            .convergence(FAKE_CONVERGENCE)
            .build()?;
        b = b.step(Step::new(Arc::new(t), Selector::Previous));
    }
    let tx = b.build()?;
    let start = Instant::now();
    let report = tx.run().await?;
    let wall = start.elapsed();
    if report.outcome != Outcome::Succeeded {
        let journal = tx.journal_path().display();
        return Err(format!(
            "the in-memory scale run ended {} (journal {journal})",
            report.outcome
        )
        .into());
    }
    Ok(wall)
}

/// `--memory-probe` (run in a fresh process, so that neither the fleet runs' heap nor this
/// one's distorts the other): seeds 500 + 500 targets, warms up with a dry run of two, then
/// prints the RSS added by building 1,000 targets and their transaction, and by its dry run
/// (its report still held).
async fn memory_probe(backend: &Backend, conc: Option<usize>, dir: &Path) -> Res<()> {
    let fleet = backend.seed(SCALE_AWS_EACH).await?;
    // Straight to the endpoint, not through this process's proxy (if any): only ours counts.
    let aws = Aws::from_sdk_config(&harness::sdk_config(&backend.attach, &backend.creds).await);
    let warm = Fleet {
        n: 1,
        prefix: fleet.prefix.clone(),
    };
    fleet_transaction(&aws, &warm, conc, &dir.join("warm"), None)?
        .build()?
        .dry_run()
        .await?;
    let rss = || {
        proc_kb("self", "VmRSS")
            .map(|k| k as i64)
            .ok_or("cannot read /proc/self/status")
    };
    let before = rss()?;
    let tx = fleet_transaction(&aws, &fleet, conc, &dir.join("memory"), None)?.build()?;
    let built = rss()?;
    let report = tx.dry_run().await?;
    let planned = rss()?;
    if report.outcome != Outcome::Planned {
        return Err(format!("the dry run of 1,000 AWS targets ended {}", report.outcome).into());
    }
    println!("memory-probe {} {}", built - before, planned - before);
    Ok(())
}

/// Runs [`memory_probe`] in a child process: (kB after building, kB after the dry run).
fn memory_in_child(backend: &Backend, conc: Option<usize>) -> Res<(f64, f64)> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--memory-probe", "--endpoint", &backend.attach]);
    if !backend.emulator() {
        cmd.arg("--no-control-api");
    }
    if let Some(c) = conc {
        cmd.args(["--concurrency", &c.to_string()]);
    }
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("memory-probe "));
    let kb: Vec<f64> = line
        .unwrap_or("")
        .split(' ')
        .filter_map(|v| v.parse().ok())
        .collect();
    match kb[..] {
        [built, planned] if out.status.success() => Ok((built, planned)),
        _ => Err(format!("the memory probe ({}) failed: {text}", out.status).into()),
    }
}

/// `run`, or the error `late` if it takes longer than `limit`.
async fn within(
    limit: Duration,
    late: String,
    run: impl std::future::Future<Output = Res<()>>,
) -> Res<()> {
    tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| Err(late.into()))
}

/// The concurrency a run used, from its journal's `begin` record.
fn journal_concurrency(journal: &Path) -> Option<usize> {
    let records = rollback_core::journal::read_journal(journal).ok()?;
    records.into_iter().find_map(|r| match r.entry {
        rollback_core::journal::Entry::Begin { concurrency, .. } => Some(concurrency),
        _ => None,
    })
}

fn aws_version() -> Res<String> {
    let out = Command::new("aws").arg("--version").output();
    let out = out.map_err(|e| format!("cannot run the aws CLI ({e}); {NO_CLI}"))?;
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    Ok(format!("{o}{e}").trim().to_string())
}

// ---------------------------------------------------------------------------------------

/// What [`measure`] found.
struct Measured {
    rows: Vec<Row>,
    /// Whether every VmHWM reset worked.
    peak_reset: bool,
    /// The concurrency the library's runs used, from a journal.
    used_conc: Option<usize>,
    /// The in-memory run's wall time; kB added by 1,000 AWS targets, built and planned.
    scale: Option<(Duration, (f64, f64))>,
    /// `--shared-state`: (store, acquire, renew, release medians in ms).
    leases: Vec<(&'static str, (f64, f64, f64))>,
}

/// Every method at every N, then the scale figures.
async fn measure(a: &Args, backend: &Backend, dir: &Path, run_cli: bool) -> Res<Measured> {
    let aws = Aws::from_sdk_config(&backend.sdk);
    let ecs = aws_sdk_ecs::Client::new(&backend.sdk);
    let lambda = aws_sdk_lambda::Client::new(&backend.sdk);
    let cli = Arc::new(Cli::new(&backend.endpoint, &backend.creds));
    let mut methods = vec![Method::Rollback, Method::Sdk];
    if a.shared {
        methods.insert(1, Method::RollbackShared);
    }
    if run_cli {
        methods.push(Method::Cli);
    }
    let mut m = Measured {
        rows: Vec::new(),
        peak_reset: true,
        used_conc: None,
        scale: None,
        leases: Vec::new(),
    };
    if a.shared {
        eprintln!("  shared state: lease latency, file and DynamoDB");
        let file = FileLocks::new(dir.join("latency-locks"));
        m.leases
            .push(("file (FileLocks)", lock_latency(&file).await?));
        backend.seed(1).await?;
        let table = DynamoDbLocks::create_table(&aws, LOCK_TABLE).await?;
        m.leases
            .push(("DynamoDB (DynamoDbLocks)", lock_latency(&table).await?));
    }
    for &n in a.ns.iter().filter(|_| a.fleet) {
        let mut rows: Vec<Row> = methods
            .iter()
            .map(|&method| Row {
                method,
                n,
                reps: Vec::new(),
                child_kb: None,
            })
            .collect();
        // Repetitions interleave the methods (A B C A B C ...), so that a machine whose
        // speed drifts during the run slows every method alike.
        for rep in 1..=a.reps {
            for row in rows.iter_mut() {
                let method = row.method;
                let fleet = backend.seed(n).await?;
                // Seeding resets the emulator: the lock table is made again, off the clock.
                let shared: Option<Arc<dyn LockManager>> = if method == Method::RollbackShared {
                    Some(Arc::new(
                        DynamoDbLocks::create_table(&aws, LOCK_TABLE).await?,
                    ))
                } else {
                    None
                };
                let rep_dir = dir.join(format!("n{n}-{rep}-{}", method as u8));
                let late = format!(
                    "did not finish within {} s (--timeout){}",
                    a.timeout.as_secs(),
                    backend.stall_hint()
                );
                m.peak_reset &= reset_peak();
                cli.peak_kb.store(0, Ordering::Relaxed);
                let start = Instant::now();
                let done = match method {
                    Method::Rollback => {
                        within(
                            a.timeout,
                            late,
                            run_rollback(&aws, &fleet, a.concurrency, &rep_dir, None),
                        )
                        .await
                    }
                    Method::RollbackShared => {
                        within(
                            a.timeout,
                            late,
                            run_rollback(&aws, &fleet, a.concurrency, &rep_dir, shared),
                        )
                        .await
                    }
                    Method::Sdk => within(a.timeout, late, run_sdk(&ecs, &lambda, &fleet)).await,
                    Method::Cli => {
                        let (cli, list_versions) = (cli.clone(), a.cli_list_versions);
                        tokio::task::spawn_blocking(move || runbook(&cli, &fleet, list_versions))
                            .await?
                    }
                };
                let wall = start.elapsed();
                done.map_err(|e| {
                    format!("{} failed (N {n}, repetition {rep}): {e}", method.name())
                })?;
                let calls = backend.calls().await?;
                let peak_kb = proc_kb("self", "VmHWM").unwrap_or(0);
                if method == Method::Cli {
                    row.child_kb = row.child_kb.max(Some(cli.peak_kb.load(Ordering::Relaxed)));
                }
                m.used_conc = m
                    .used_conc
                    .or_else(|| journal_concurrency(&rep_dir.join("journal.jsonl")));
                let (total, secs) = (calls.values().sum::<u64>(), wall.as_secs_f64());
                eprintln!(
                    "  N {n}, {}, repetition {rep}/{}: {secs:.2} s, {total} calls",
                    method.name(),
                    a.reps
                );
                row.reps.push(Rep {
                    number: rep,
                    wall,
                    calls,
                    peak_kb,
                });
            }
        }
        for mut row in rows {
            row.reps.sort_by_key(|r| r.wall);
            m.rows.push(row);
        }
    }
    if a.scale {
        eprintln!(
            "  scale: RSS of {} AWS targets (in a child process)",
            2 * SCALE_AWS_EACH
        );
        let memory = memory_in_child(backend, a.concurrency)?;
        eprintln!("  scale: {SCALE_FAKE} in-memory targets");
        let wall = scale_fake(a.concurrency, &dir.join("fake")).await?;
        m.used_conc = m
            .used_conc
            .or_else(|| journal_concurrency(&dir.join("fake").join("journal.jsonl")));
        m.scale = Some((wall, memory));
    }
    Ok(m)
}

/// The report: enough context that a pasted table stands on its own, the table, the scale.
fn report(
    a: &Args,
    backend: &Backend,
    m: &Measured,
    cli_version: Option<&str>,
    load_at_start: &str,
) {
    let conc = match (a.concurrency, m.used_conc) {
        (Some(c), _) => format!("{c} (--concurrency)"),
        (None, Some(c)) => format!("{c} (the library's default, as its journal records)"),
        (None, None) => "the library's default".to_string(),
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut context = vec![
        ("fleet", format!("N ECS services (cluster {CLUSTER}, 2 tasks each) + N Lambda aliases (live), each rolled back to its previous revision")),
        ("endpoint", backend.description.clone()),
    ];
    if backend.emulator() {
        context.push((
            "ECS",
            format!(
                "a deployment converges {} ms after UpdateService",
                a.convergence_ms
            ),
        ));
    }
    context.push(("rollback", format!("one transaction, concurrency {conc}")));
    if a.fleet {
        let poll = SDK_POLL.as_secs_f64();
        context.push((
            "SDK loop",
            format!(
                "aws-sdk-rust, {SDK_AT_ONCE} targets at a time, polls every {poll} s, no retries"
            ),
        ));
    }
    if let Some(version) = cli_version {
        let lambda = if a.cli_list_versions {
            "list-versions-by-function + update-alias"
        } else {
            "update-alias"
        };
        context.push(("script", format!("{version}; one process per call, in sequence: rollback-all.sh, then {lambda} per alias")));
    }
    let load_now = load();
    context.push(("machine", format!("{cpus} CPUs; 1-minute load average {load_at_start} at the start, {load_now} at the end")));
    println!();
    for (what, text) in context {
        println!("{:<13} {text}", format!("{what}:"));
    }
    if !m.rows.is_empty() {
        print_table(&m.rows);
        let counter = if backend.emulator() {
            "the emulator's own counter"
        } else {
            "the proxy"
        };
        let peak = if m.peak_reset {
            "reset before each repetition"
        } else {
            "since the start: /proc/self/clear_refs was refused"
        };
        println!("wall: median of {} repetitions (each on a freshly seeded fleet), and min - max; vs rollback: wall / rollback's at that N", a.reps);
        println!("calls: counted by {counter}; per target = count / 2N (the count in brackets), of the median repetition");
        println!("peak RSS: this process's VmHWM ({peak}); `+ aws`: the largest aws process (sampled every 20 ms)");
    }
    if !m.leases.is_empty() {
        println!(
            "\n{:<28} {:>12} {:>12} {:>12}",
            "lease store", "acquire", "renew", "release"
        );
        for (store, (acq, renew, rel)) in &m.leases {
            println!("{store:<28} {acq:>9.2} ms {renew:>9.2} ms {rel:>9.2} ms");
        }
        println!(
            "(median of {LOCK_SAMPLES} leases, one call after another, on the endpoint above)"
        );
    }
    if let Some((wall, (built, planned))) = m.scale {
        let wall = wall.as_secs_f64();
        let overhead = wall - FAKE_CONVERGENCE.as_secs_f64();
        let (built, planned) = (built / 1024.0, planned / 1024.0);
        println!(
            "\n{:<62} result",
            "scale (one transaction each, the concurrency above)"
        );
        println!(
            "{:<62} wall {wall:.2} s; engine overhead {overhead:.2} s (wall - 0.4 s)",
            "1,000 in-memory targets (FakeTarget, 400 ms convergence)"
        );
        println!("{:<62} {built:+.1} MB built (with the transaction), {planned:+.1} MB after its dry run", "RSS added by 1,000 AWS targets (500 ECS + 500 Lambda)");
    }
}

async fn bench(a: Args) -> Res<()> {
    let backend = Backend::open(a.endpoint.as_deref(), a.plain, a.convergence_ms).await?;
    let dir = std::env::temp_dir().join(format!("rollback-fleet-bench-{}", std::process::id()));
    if a.memory_probe {
        let probed = memory_probe(&backend, a.concurrency, &dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        return probed;
    }
    let run_cli = a.fleet && !a.skip_cli;
    let cli_version = if run_cli { Some(aws_version()?) } else { None };
    let load_at_start = load();
    // On failure the directory stays: it holds the failed run's journal.
    let measured = measure(&a, &backend, &dir, run_cli).await?;
    let _ = std::fs::remove_dir_all(&dir);
    report(
        &a,
        &backend,
        &measured,
        cli_version.as_deref(),
        &load_at_start,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match parse_args() {
        Ok(a) => bench(a).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet_bench: {e}");
            // Now: an `aws` process may still be running on a blocking thread.
            std::process::exit(1)
        }
    }
}
