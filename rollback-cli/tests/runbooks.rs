//! The example runbook files of runbooks 001, 002 and 003 (`examples/runbooks/00[123]-*.yaml`)
//! run through the `rollback` binary against the AWS emulator: each linted, planned (exit 2,
//! the from/to revisions in the JSON report) and applied to its outcome, with the change and
//! its AWS calls read back from the emulator. Failing checks compensate (exit 1) and leave
//! every target as it was.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::{example, rollback, text};
use rollback_aws::{Aws, EcsService, PipelineTransition};
use rollback_core::RollbackTarget;
use rollback_testkit::{gained, mutations_in, AwsEmulator};
use serde_json::{json, Value};

const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
/// Runbook 001's cluster (`agentauri-${ENV}` with ENV=production) and the services of its
/// rollback-all.sh.
const CLUSTER_001: &str = "agentauri-production";
const SERVICES_001: [&str; 3] = ["api-gateway-v2", "event-processor", "action-workers"];

/// A started emulator, deployments converging in 200 ms. Panics (the test fails, it does
/// not skip) when the emulator cannot start.
async fn emulator() -> AwsEmulator {
    let emu = AwsEmulator::start()
        .await
        .unwrap_or_else(|e| panic!("the AWS emulator must run for these tests: {e}"));
    emu.set_ecs_convergence(Duration::from_millis(200))
        .await
        .unwrap();
    emu
}

/// `POST /_emulator/<path>` with `body`, from synchronous code (a test's `Runbook` runs the
/// binary synchronously): the JSON answer.
fn control(emu: &AwsEmulator, path: &str, body: &Value) -> Value {
    use std::io::{Read, Write};
    let host = emu
        .endpoint()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    let body = body.to_string();
    write!(
        conn,
        "POST /_emulator/{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "{path}: {response}"
    );
    serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap()
}

/// What the emulator's AWS looks like through the SDK (for reading state back).
async fn aws(emu: &AwsEmulator) -> Aws {
    Aws::from_sdk_config(&emu.sdk_config().await)
}

/// One ECS service as the seed takes it: revisions 1..n of `family` with these image tags,
/// running the last.
fn service(cluster: &str, service: &str, family: &str, tags: &[&str], desired: u32) -> Value {
    let repo = service.trim_end_matches("-v2");
    let revisions: Vec<Value> = tags
        .iter()
        .map(
            |t| json!({"image": format!("{ECR}/{repo}:{t}"), "environment": {"LOG_LEVEL": "info"}}),
        )
        .collect();
    json!({"cluster": cluster, "service": service, "family": family,
           "desired_count": desired, "revisions": revisions})
}

/// The task definition (`family:N`) and desired count the service has now.
async fn ecs_state(aws: &Aws, cluster: &str, name: &str) -> (String, i32) {
    let svc = EcsService::new(aws, cluster, name)
        .unwrap()
        .describe()
        .await
        .unwrap();
    let (family, n) =
        rollback_aws::ecs::parse_task_definition(svc.task_definition().unwrap()).unwrap();
    (format!("{family}:{n}"), svc.desired_count())
}

/// How many calls of `op` were made between two call counts.
fn made(before: &Value, after: &Value, op: &str) -> u64 {
    gained(before, after).get(op).copied().unwrap_or(0)
}

/// An applied run: exit code, the events (JSON lines) and the report (the last line).
struct Applied {
    code: Option<i32>,
    events: Vec<Value>,
    report: Value,
    stdout: String,
}

impl Applied {
    /// The index of the first event of `kind` about a target of kind `target_kind`.
    fn event(&self, kind: &str, target_kind: &str) -> usize {
        self.events
            .iter()
            .position(|e| e["kind"] == kind && e["target"]["kind"] == target_kind)
            .unwrap_or_else(|| panic!("no {kind} event for {target_kind} in {:#?}", self.events))
    }

    /// Each step's status, in step order.
    fn statuses(&self) -> Vec<&str> {
        self.report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect()
    }
}

/// One runbook file with its variables, run in its own temporary directory (journal,
/// leases, known-good store, and the working directory of the child).
struct Runbook<'a> {
    emu: &'a AwsEmulator,
    dir: tempfile::TempDir,
    file: PathBuf,
    vars: Vec<String>,
}

impl<'a> Runbook<'a> {
    fn new(emu: &'a AwsEmulator, name: &str, vars: &[(&str, &str)]) -> Self {
        Runbook {
            emu,
            dir: tempfile::tempdir().unwrap(),
            file: example(name),
            vars: vars.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        }
    }

    /// The same file with `from` replaced by `to` (a shorter check policy for a test that
    /// waits for a check to fail), written into the run's directory.
    fn edited(mut self, from: &str, to: &str) -> Self {
        let body = std::fs::read_to_string(&self.file).unwrap();
        assert!(
            body.contains(from),
            "{} has no {from:?}",
            self.file.display()
        );
        let copy = self.dir.path().join(self.file.file_name().unwrap());
        std::fs::write(&copy, body.replace(from, to)).unwrap();
        self.file = copy;
        self
    }

    /// `rollback <cmd...> FILE --var ...`.
    fn run(&self, cmd: &[&str]) -> Output {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push(self.file.to_str().unwrap());
        for v in &self.vars {
            args.extend(["--var", v.as_str()]);
        }
        rollback(Some(self.emu), self.dir.path(), &args)
    }

    /// `rollback <cmd...> FILE --var ...` with the AWS credentials `key` (id, secret).
    fn run_as(&self, key: &(String, String), cmd: &[&str]) -> Output {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push(self.file.to_str().unwrap());
        for v in &self.vars {
            args.extend(["--var", v.as_str()]);
        }
        common::command(Some(self.emu), self.dir.path(), &args)
            .env("AWS_ACCESS_KEY_ID", &key.0)
            .env("AWS_SECRET_ACCESS_KEY", &key.1)
            .output()
            .unwrap()
    }

    /// `lint` passes and counts the steps and stages.
    fn lint(&self, steps: usize, stages: usize) {
        let out = self.run(&["lint"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let want = format!("{steps} step(s) in {stages} stage(s)");
        assert!(text(&out.stdout).contains(&want), "{}", text(&out.stdout));
    }

    /// `plan --output json`: exit 2 (changes planned) and the report.
    fn plan(&self) -> Value {
        let out = self.run(&["plan", "--output", "json"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "changes planned: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["outcome"], "planned", "{report}");
        report
    }

    /// `apply --yes --reason REASON --output json`, under least privilege: with credentials
    /// holding only the actions `rollback policy` generates for the runbook, the emulator
    /// enforcing IAM for the length of the run.
    fn apply(&self, reason: &str) -> Applied {
        let actions: Vec<String> = self.policy_actions().into_iter().collect();
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let user = format!(
            "ci-{run}-{}",
            self.dir
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        let key = control(
            self.emu,
            "iam/users",
            &json!({"name": user, "actions": actions}),
        );
        let key = (
            key["access_key_id"].as_str().unwrap().to_string(),
            key["secret_access_key"].as_str().unwrap().to_string(),
        );
        control(self.emu, "iam/enforce", &json!({"enabled": true}));
        let out = self.run_as(
            &key,
            &["apply", "--yes", "--reason", reason, "--output", "json"],
        );
        control(self.emu, "iam/enforce", &json!({"enabled": false}));
        let stdout = text(&out.stdout);
        let mut lines: Vec<Value> = stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("not JSON ({e}): {l}\nstderr: {}", text(&out.stderr))
                })
            })
            .collect();
        let report = lines
            .pop()
            .unwrap_or_else(|| panic!("no report; stderr: {}", text(&out.stderr)));
        assert_eq!(report["reason"], reason, "{report}");
        Applied {
            code: out.status.code(),
            events: lines,
            report,
            stdout,
        }
    }
    /// The IAM actions of `rollback policy` for the runbook.
    fn policy_actions(&self) -> BTreeSet<String> {
        let out = self.run(&["policy", "--format", "iam"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|st| st["Action"].as_array().unwrap().clone())
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    /// The runbook's generated IAM policy is exact for the calls made between `before` and
    /// `after`: every call's action is in it, and each of its actions was called (but
    /// `spare`, actions of paths this run did not take).
    fn assert_policy_exact(&self, before: &Value, after: &Value, spare: &[&str]) {
        let policy = self.policy_actions();
        // Each call, as the IAM actions that may allow it (S3's names differ from its
        // operations': GetObject of a version is s3:GetObjectVersion).
        let mut calls: Vec<Vec<String>> = Vec::new();
        for (service, ops) in after["by_service"].as_object().unwrap() {
            for (op, n) in ops.as_object().unwrap() {
                let was = before["by_service"][service][op].as_u64().unwrap_or(0);
                if n.as_u64().unwrap() > was {
                    calls.push(match (service.as_str(), op.as_str()) {
                        ("s3", "ListObjectVersions") => vec!["s3:ListBucketVersions".into()],
                        ("s3", "ListObjectsV2") => vec!["s3:ListBucket".into()],
                        ("s3", "GetObject") => {
                            vec!["s3:GetObject".into(), "s3:GetObjectVersion".into()]
                        }
                        ("monitoring", op) => vec![format!("cloudwatch:{op}")],
                        (s, op) => vec![format!("{s}:{op}")],
                    });
                }
            }
        }
        let missing: Vec<_> = calls
            .iter()
            .filter(|c| !c.iter().any(|a| policy.contains(a)))
            .collect();
        assert!(
            missing.is_empty(),
            "called but not in the policy: {missing:?} (policy {policy:?})"
        );
        let unused: Vec<_> = policy
            .iter()
            .filter(|a| !calls.iter().flatten().any(|c| c == *a))
            .filter(|a| !spare.contains(&a.as_str()))
            .collect();
        assert!(
            unused.is_empty(),
            "in the policy but never called: {unused:?} (called {calls:?})"
        );
    }

    /// [`Runbook::apply`] that must succeed (exit 0, outcome `succeeded`).
    fn apply_ok(&self, reason: &str) -> Applied {
        let run = self.apply(reason);
        assert_eq!(run.code, Some(0), "{}", run.stdout);
        assert_eq!(run.report["outcome"], "succeeded", "{}", run.report);
        run
    }
}

/// `(target name, from, to)` of each step of a report, in step order.
fn moves(report: &Value) -> Vec<(String, String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["target"]["name"].as_str().unwrap().to_string(),
                s["from"]["id"].as_str().unwrap_or("?").to_string(),
                s["to"]["id"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

fn moved(name: &str, from: &str, to: &str) -> (String, String, String) {
    (name.into(), from.into(), to.into())
}

const FAMILY_001: &str = "agentauri-production-api-gateway";

/// Runbook 001's one-service incident: api-gateway-v2 on task definition 3 (1.9.0, whose
/// health check fails), 1 and 2 before it; the runbook file that rolls it back.
async fn one_service_001(emu: &AwsEmulator) -> Runbook<'_> {
    let family = FAMILY_001;
    emu.seed(json!({"ecs": [service(CLUSTER_001, "api-gateway-v2", family, &["1.7.0", "1.8.0", "1.9.0"], 2)]}))
        .await
        .unwrap();
    emu.mark_bad(
        "ecs",
        "agentauri-production/api-gateway-v2",
        &format!("{family}:3"),
    )
    .await
    .unwrap();
    let health = emu.health_url();
    Runbook::new(
        emu,
        "001-ecs-service.yaml",
        &[
            ("ENV", "production"),
            ("SERVICE", "api-gateway-v2"),
            ("HEALTH_URL", &health),
        ],
    )
}

#[tokio::test]
async fn runbook_001_one_service_goes_back_to_its_previous_task_definition() {
    let emu = emulator().await;
    let family = FAMILY_001;
    let rb = one_service_001(&emu).await;
    rb.lint(1, 1);
    let before = emu.calls().await.unwrap();
    let plan = rb.plan();
    assert_eq!(
        moves(&plan),
        [moved(
            "agentauri-production/api-gateway-v2",
            &format!("{family}:3"),
            &format!("{family}:2")
        )]
    );
    // The plan shows what changes between the two revisions: the image.
    let diff = plan["steps"][0]["diff"].to_string();
    assert!(diff.contains("1.9.0") && diff.contains("1.8.0"), "{diff}");
    assert_eq!(
        made(&before, &emu.calls().await.unwrap(), "UpdateService"),
        0
    );
    assert!(!emu.healthy().await.unwrap());

    let run = rb.apply_ok("5xx after the 1.9.0 deploy");
    assert_eq!(run.statuses(), ["succeeded"]);
    assert!(
        run.report["steps"][0]["verdicts"][0]["passed"] == true,
        "{}",
        run.report
    );
    assert!(run.event("applied", "ecs-service") < run.event("stable", "ecs-service"));
    let after = emu.calls().await.unwrap();
    assert_eq!(
        made(&before, &after, "UpdateService"),
        1,
        "{:?}",
        gained(&before, &after)
    );
    let aws = aws(&emu).await;
    assert_eq!(
        ecs_state(&aws, CLUSTER_001, "api-gateway-v2").await,
        (format!("{family}:2"), 2)
    );
    assert!(emu.healthy().await.unwrap());
    rb.assert_policy_exact(&before, &after, &[]);
}

#[tokio::test]
async fn runbook_001_all_services_go_to_the_known_good_tag_not_the_previous_revision() {
    let emu = emulator().await;
    // abc123 is two releases back: `previous` would pick def456.
    let ecs: Vec<Value> = SERVICES_001
        .iter()
        .map(|s| {
            let family = format!("agentauri-production-{}", s.trim_end_matches("-v2"));
            service(CLUSTER_001, s, &family, &["abc123", "def456", "0f1e2d"], 2)
        })
        .collect();
    emu.seed(json!({ "ecs": ecs })).await.unwrap();
    for s in SERVICES_001 {
        let family = format!("agentauri-production-{}", s.trim_end_matches("-v2"));
        emu.mark_bad("ecs", &format!("{CLUSTER_001}/{s}"), &format!("{family}:3"))
            .await
            .unwrap();
        // The release in between is bad too.
        emu.mark_bad("ecs", &format!("{CLUSTER_001}/{s}"), &format!("{family}:2"))
            .await
            .unwrap();
    }
    let health = emu.health_url();
    let vars = |tag: &'static str| {
        [
            ("ENV", "production"),
            ("GOOD_TAG", tag),
            ("HEALTH_URL", health.as_str()),
        ]
    };
    let file = "001-all-services-known-good-tag.yaml";
    let before = emu.calls().await.unwrap();

    // A tag no revision carries: the plan fails naming it, and nothing is changed.
    let missing = Runbook::new(&emu, file, &vars("deadbeef"));
    let out = missing.run(&["plan", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("deadbeef"),
        "{}",
        text(&out.stderr)
    );

    let rb = Runbook::new(&emu, file, &vars("abc123"));
    rb.lint(3, 1);
    let plan = rb.plan();
    let want: Vec<_> = SERVICES_001
        .iter()
        .map(|s| {
            let family = format!("agentauri-production-{}", s.trim_end_matches("-v2"));
            moved(
                &format!("{CLUSTER_001}/{s}"),
                &format!("{family}:3"),
                &format!("{family}:1"),
            )
        })
        .collect();
    assert_eq!(moves(&plan), want);
    assert!(plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["stage"] == 0));
    assert_eq!(
        made(&before, &emu.calls().await.unwrap(), "UpdateService"),
        0
    );

    let run = rb.apply_ok("back to abc123 after the failed release");
    assert_eq!(run.statuses(), ["succeeded"; 3]);
    assert_eq!(run.report["checks"][0]["passed"], true, "{}", run.report);
    let after = emu.calls().await.unwrap();
    assert_eq!(
        made(&before, &after, "UpdateService"),
        3,
        "{:?}",
        gained(&before, &after)
    );
    let aws = aws(&emu).await;
    for s in SERVICES_001 {
        let family = format!("agentauri-production-{}", s.trim_end_matches("-v2"));
        assert_eq!(
            ecs_state(&aws, CLUSTER_001, s).await,
            (format!("{family}:1"), 2),
            "{s}"
        );
    }
    assert!(emu.healthy().await.unwrap());
}

#[tokio::test]
async fn runbook_001_secret_moves_awscurrent_back_without_showing_a_value() {
    const SECRET: &str = "agentauri/production/jwt-secret";
    const OLD: &str = "jwt-old-Qm4Zr8Tx2Lw6";
    const NEW: &str = "jwt-new-Hv7Kc3Np9Ys1";
    let emu = emulator().await;
    let consumers = &SERVICES_001[..2];
    let ecs: Vec<Value> = consumers
        .iter()
        .map(|s| service(CLUSTER_001, s, s, &["1.9.0"], 2))
        .collect();
    let seeded = emu
        .seed(json!({"secrets": [{"name": SECRET, "values": [OLD, NEW]}], "ecs": ecs}))
        .await
        .unwrap();
    let versions: Vec<String> = seeded["secrets"][0]["version_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    emu.mark_bad("secret", SECRET, &versions[1]).await.unwrap();
    let health = emu.health_url();
    let rb = Runbook::new(
        &emu,
        "001-secret.yaml",
        &[
            ("ENV", "production"),
            ("SECRET", "jwt-secret"),
            ("HEALTH_URL", &health),
        ],
    );
    rb.lint(1, 1);
    let before = emu.calls().await.unwrap();
    let plan = rb.plan();
    assert_eq!(moves(&plan), [moved(SECRET, &versions[1], &versions[0])]);

    let run = rb.apply_ok("bad JWT secret rotation");
    let after = emu.calls().await.unwrap();
    assert_eq!(
        made(&before, &after, "UpdateSecretVersionStage"),
        1,
        "{:?}",
        gained(&before, &after)
    );
    assert_eq!(made(&before, &after, "GetSecretValue"), 0, "no value read");
    assert_eq!(
        made(&before, &after, "UpdateService"),
        2,
        "a new deployment of each consumer"
    );
    assert!(
        plan.to_string()
            .contains(&format!("consumer {CLUSTER_001}/{}", consumers[0])),
        "the plan lists the consumers: {plan}"
    );
    // Read back with DescribeSecret: AWSCURRENT on the old version, AWSPREVIOUS on the new.
    let aws = aws(&emu).await;
    let secret = rollback_aws::SecretVersion::new(&aws, SECRET).unwrap();
    let described = secret
        .client()
        .await
        .unwrap()
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap();
    let stages = described.version_ids_to_stages().unwrap();
    let holder = |stage: &str| {
        stages
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == stage))
            .map(|(v, _)| v.clone())
    };
    assert_eq!(holder("AWSCURRENT").as_deref(), Some(versions[0].as_str()));
    assert_eq!(holder("AWSPREVIOUS").as_deref(), Some(versions[1].as_str()));
    assert!(emu.healthy().await.unwrap());
    // No value in the output or the journal.
    let journal = std::fs::read_to_string(run.report["journal_path"].as_str().unwrap()).unwrap();
    for v in [OLD, NEW] {
        assert!(
            !run.stdout.contains(v) && !journal.contains(v),
            "{v} leaked"
        );
    }
    rb.assert_policy_exact(&before, &after, &[]);
}

#[tokio::test]
async fn runbook_001_database_restore_stops_writes_restores_hands_over_and_restarts() {
    const DB: &str = "agentauri-production";
    const RESTORED: &str = "agentauri-production-rollback";
    const SECRET: &str = "agentauri/production/database-url";
    const SNAPSHOT: &str = "pre-migration-20251228-143000";
    const PASSWORD: &str = "pw-5d8e2a9c71";
    let emu = emulator().await;
    emu.set_rds_delay(Duration::from_millis(300)).await.unwrap();
    let ecs: Vec<Value> = SERVICES_001
        .iter()
        .map(|s| {
            let family = format!("agentauri-production-{}", s.trim_end_matches("-v2"));
            service(CLUSTER_001, s, &family, &["1.9.0"], 2)
        })
        .collect();
    let seeded = emu
        .seed(json!({
            "rds": [{"db_instance_id": DB, "engine": "postgres", "class": "db.t3.micro",
                     "subnet_group": "agentauri-production", "security_groups": ["sg-0abc"], "port": 5432,
                     "snapshots": [{"id": SNAPSHOT, "type": "manual", "created": "2025-12-28T14:30:00Z"}]}],
            "ecs": ecs
        }))
        .await
        .unwrap();
    let host = seeded["rds"][0]["endpoint"]["address"].as_str().unwrap();
    let url = format!("postgres://app:{PASSWORD}@{host}:5432/agentauri_backend?sslmode=require");
    let secret = emu
        .seed(json!({"secrets": [{"name": SECRET, "values": [url]}]}))
        .await
        .unwrap();
    let version = secret["secrets"][0]["current"]
        .as_str()
        .unwrap()
        .to_string();
    // The migration broke queries: healthy again once the secret names the restored instance.
    emu.mark_bad("secret-endpoint", SECRET, RESTORED)
        .await
        .unwrap();
    let health = emu.health_url();
    let rb = Runbook::new(
        &emu,
        "001-database-restore.yaml",
        &[
            ("ENV", "production"),
            ("SNAPSHOT", SNAPSHOT),
            ("HEALTH_URL", &health),
        ],
    );
    rb.lint(5, 3);
    let before = emu.calls().await.unwrap();
    let plan = rb.plan();
    let mut want: Vec<_> = SERVICES_001
        .iter()
        .map(|s| moved(&format!("{CLUSTER_001}/{s}"), "2", "0"))
        .collect();
    want.push(moved(DB, "live", SNAPSHOT));
    want.push(moved(
        &format!("{SECRET}->{RESTORED}"),
        &version,
        &format!("handover:{RESTORED}"),
    ));
    assert_eq!(moves(&plan), want);
    let stages: Vec<&Value> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["stage"])
        .collect();
    assert_eq!(stages, [0, 0, 0, 1, 2]);
    let planned = emu.calls().await.unwrap();
    for op in [
        "UpdateService",
        "RestoreDBInstanceFromDBSnapshot",
        "PutSecretValue",
    ] {
        assert_eq!(made(&before, &planned, op), 0, "{op} in a plan");
    }

    let run = rb.apply_ok("migration 20251228000001 broke queries");
    // The stops were temporary: put back once the stages were done.
    assert_eq!(
        run.statuses(),
        ["reverted", "reverted", "reverted", "succeeded", "succeeded"]
    );
    // Writes were stopped before the restore started, and the services started again
    // only after the handover.
    assert!(run.event("stable", "ecs-desired-count") < run.event("step_started", "rds-instance"));
    assert!(
        run.event("stable", "connection-handover") < run.event("reverting", "ecs-desired-count")
    );
    let after = emu.calls().await.unwrap();
    let calls = gained(&before, &after);
    assert_eq!(
        made(&before, &after, "RestoreDBInstanceFromDBSnapshot"),
        1,
        "{calls:?}"
    );
    // Three stops and three starts.
    assert_eq!(made(&before, &after, "UpdateService"), 6, "{calls:?}");
    let aws = aws(&emu).await;
    for s in SERVICES_001 {
        assert_eq!(ecs_state(&aws, CLUSTER_001, s).await.1, 2, "{s} runs again");
    }
    // The secret names the restored instance now, with the same user and password.
    let (restored_host, _) = rollback_aws::RdsInstance::new(&aws, DB)
        .unwrap()
        .restore_as(RESTORED)
        .unwrap()
        .restored_endpoint()
        .await
        .unwrap()
        .unwrap();
    let value = rollback_aws::SecretVersion::new(&aws, SECRET)
        .unwrap()
        .client()
        .await
        .unwrap()
        .get_secret_value()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_string();
    assert_eq!(
        value,
        format!("postgres://app:{PASSWORD}@{restored_host}:5432/agentauri_backend?sslmode=require")
    );
    assert!(emu.healthy().await.unwrap());
    assert!(!run.stdout.contains(PASSWORD), "the password leaked");
    // Paths this run did not take: a snapshot of the live instance, a point-in-time
    // restore, the handover's undo; and the tags a restore copies, which RDS authorizes
    // (the emulator does not).
    rb.assert_policy_exact(
        &before,
        &after,
        &[
            "rds:CreateDBSnapshot",
            "rds:RestoreDBInstanceToPointInTime",
            "secretsmanager:UpdateSecretVersionStage",
            "rds:AddTagsToResource",
        ],
    );
}

/// Runbook 002's cluster: the API service on release 42 (bad) with 41 before it, and a
/// canary service taking some of the traffic.
async fn seed_002(emu: &AwsEmulator) {
    emu.seed(json!({"ecs": [
        service("claude-proxy", "api-service", "claude-proxy-api", &["r41", "r42"], 2),
        service("claude-proxy", "api-service-canary", "claude-proxy-api-canary", &["r42"], 1),
    ]}))
    .await
    .unwrap();
    emu.mark_bad("ecs", "claude-proxy/api-service", "claude-proxy-api:2")
        .await
        .unwrap();
}

/// `./infra/scripts/smoke_test.sh --url URL` under `dir`: GET URL/_emulator/health must
/// answer 2xx (with the emulator's Python, which the tests need anyway), or, when
/// `broken`, a critical flow fails whatever the health says.
fn smoke_test(dir: &std::path::Path, broken: bool) {
    use std::os::unix::fs::PermissionsExt;
    let scripts = dir.join("infra/scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let body = if broken {
        "#!/bin/sh\necho \"smoke test: POST /v1/messages answered 500\" >&2\nexit 1\n".to_string()
    } else {
        format!(
            "#!/bin/sh\n[ \"$1\" = --url ] || exit 2\nexec '{}' -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + \"/_emulator/health\", timeout=5)' \"$2\"\n",
            rollback_testkit::python().display()
        )
    };
    let path = scripts.join("smoke_test.sh");
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn runbook_002<'a>(emu: &'a AwsEmulator, health: &'a str) -> Runbook<'a> {
    Runbook::new(
        emu,
        "002-ecs-canary.yaml",
        &[
            ("CLUSTER", "claude-proxy"),
            ("BASE_URL", emu.endpoint()),
            ("HEALTH_URL", health),
        ],
    )
}

#[tokio::test]
async fn runbook_002_service_back_canary_out_and_the_smoke_test_passes() {
    let emu = emulator().await;
    seed_002(&emu).await;
    let health = emu.health_url();
    let rb = runbook_002(&emu, &health);
    smoke_test(rb.dir.path(), false);
    rb.lint(2, 1);
    let before = emu.calls().await.unwrap();
    let plan = rb.plan();
    assert_eq!(
        moves(&plan),
        [
            moved(
                "claude-proxy/api-service",
                "claude-proxy-api:2",
                "claude-proxy-api:1"
            ),
            moved("claude-proxy/api-service-canary", "1", "0"),
        ]
    );

    let run = rb.apply_ok("5xx from release 42");
    assert_eq!(run.statuses(), ["succeeded", "succeeded"]);
    let smoke = &run.report["checks"][0];
    assert_eq!(smoke["passed"], true, "{}", run.report);
    assert!(
        smoke["name"].as_str().unwrap().contains("smoke_test.sh"),
        "{smoke}"
    );
    let after = emu.calls().await.unwrap();
    assert_eq!(
        made(&before, &after, "UpdateService"),
        2,
        "{:?}",
        gained(&before, &after)
    );
    let aws = aws(&emu).await;
    assert_eq!(
        ecs_state(&aws, "claude-proxy", "api-service").await,
        ("claude-proxy-api:1".into(), 2)
    );
    assert_eq!(
        ecs_state(&aws, "claude-proxy", "api-service-canary")
            .await
            .1,
        0
    );
    let canary = EcsService::new(&aws, "claude-proxy", "api-service-canary")
        .unwrap()
        .describe()
        .await
        .unwrap();
    assert_eq!(canary.running_count(), 0, "the canary's tasks are gone");
    assert!(emu.healthy().await.unwrap());
    rb.assert_policy_exact(&before, &after, &[]);
}

#[tokio::test]
async fn runbook_002_a_failing_smoke_test_puts_service_and_canary_back() {
    let emu = emulator().await;
    seed_002(&emu).await;
    let health = emu.health_url();
    let rb = runbook_002(&emu, &health).edited(
        "policy: {attempts: 3, interval: 5s}",
        "policy: {attempts: 2, interval: 100ms}",
    );
    smoke_test(rb.dir.path(), true);
    rb.lint(2, 1);
    let before = emu.calls().await.unwrap();
    let run = rb.apply("5xx from release 42");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert_eq!(run.report["outcome"], "compensated", "{}", run.report);
    assert_eq!(run.statuses(), ["compensated", "compensated"]);
    let smoke = &run.report["checks"][0];
    assert_eq!(smoke["passed"], false, "{}", run.report);
    assert_eq!(smoke["attempts"], 2, "{smoke}");
    assert!(
        smoke["evidence"].as_str().unwrap().contains("answered 500"),
        "{smoke}"
    );
    // Two changes, two compensations.
    let after = emu.calls().await.unwrap();
    assert_eq!(
        made(&before, &after, "UpdateService"),
        4,
        "{:?}",
        gained(&before, &after)
    );
    let aws = aws(&emu).await;
    assert_eq!(
        ecs_state(&aws, "claude-proxy", "api-service").await,
        ("claude-proxy-api:2".into(), 2)
    );
    assert_eq!(
        ecs_state(&aws, "claude-proxy", "api-service-canary")
            .await
            .1,
        1
    );
}

const ALARM_003: &str = "apgms-api-5xx";

/// Runbook 003's pipeline, service (revision 2 bad) and alarms; `alarm` is the state of
/// the application's 5xx alarm. An alarm of another application is in ALARM throughout.
async fn seed_003(emu: &AwsEmulator, alarm: &str) {
    emu.seed(json!({
        "codepipeline": [{"name": "Apgms", "stages": ["Source", "Build", "Deploy"]}],
        "ecs": [service("apgms", "apgms-api", "apgms-api", &["7d2c9e1", "e5a0b44"], 2)],
        "cloudwatch": {"alarms": [
            {"name": ALARM_003, "state": alarm, "reason": "5xx above threshold"},
            {"name": "apgms-db-cpu", "state": "OK", "metric": "CPUUtilization", "namespace": "AWS/RDS"},
            {"name": "billing-estimate", "state": "ALARM", "metric": "EstimatedCharges", "namespace": "AWS/Billing"}
        ]}
    }))
    .await
    .unwrap();
    emu.mark_bad("ecs", "apgms/apgms-api", "apgms-api:2")
        .await
        .unwrap();
}

fn runbook_003<'a>(emu: &'a AwsEmulator, health: &'a str) -> Runbook<'a> {
    Runbook::new(
        emu,
        "003-pipeline-freeze.yaml",
        &[
            ("PIPELINE", "Apgms"),
            ("CLUSTER", "apgms"),
            ("HEALTH_URL", health),
        ],
    )
}

async fn transition(aws: &Aws) -> String {
    PipelineTransition::new(aws, "Apgms", "Deploy")
        .unwrap()
        .current()
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn runbook_003_reverts_with_the_pipeline_frozen_and_opens_it_again() {
    let emu = emulator().await;
    seed_003(&emu, "OK").await;
    let health = emu.health_url();
    let rb = runbook_003(&emu, &health);
    rb.lint(2, 2);
    let before = emu.calls().await.unwrap();
    let plan = rb.plan();
    assert_eq!(
        moves(&plan),
        [
            moved("Apgms/Deploy", "enabled", "disabled"),
            moved("apgms/apgms-api", "apgms-api:2", "apgms-api:1"),
        ]
    );
    assert_eq!(plan["steps"][1]["stage"], 1);
    let planned = emu.calls().await.unwrap();
    assert_eq!(made(&before, &planned, "DisableStageTransition"), 0);

    let run = rb.apply_ok("INC-0412 5xx after pipeline execution 3f9c");
    assert_eq!(run.statuses(), ["reverted", "succeeded"]);
    // Frozen before the service moved, opened again after it was verified, and the alarms
    // looked at last (billing-estimate, in ALARM, is not the application's).
    assert!(run.event("applied", "pipeline-transition") < run.event("step_started", "ecs-service"));
    assert!(run.event("verified", "ecs-service") < run.event("reverted", "pipeline-transition"));
    let alarms = &run.report["checks"][0];
    assert_eq!(alarms["passed"], true, "{}", run.report);
    assert!(!alarms.to_string().contains("billing-estimate"), "{alarms}");
    let after = emu.calls().await.unwrap();
    let calls = gained(&before, &after);
    assert_eq!(
        made(&before, &after, "DisableStageTransition"),
        1,
        "{calls:?}"
    );
    assert_eq!(
        made(&before, &after, "EnableStageTransition"),
        1,
        "{calls:?}"
    );
    assert_eq!(made(&before, &after, "UpdateService"), 1, "{calls:?}");
    let aws = aws(&emu).await;
    assert_eq!(transition(&aws).await, "enabled");
    assert_eq!(
        ecs_state(&aws, "apgms", "apgms-api").await,
        ("apgms-api:1".into(), 2)
    );
    assert!(emu.healthy().await.unwrap());
    // No execution was in flight to stop.
    rb.assert_policy_exact(&before, &after, &["codepipeline:StopPipelineExecution"]);
}

#[tokio::test]
async fn runbook_003_re_runs_the_last_good_commit() {
    let (good, bad) = (
        "1111111111111111111111111111111111111111",
        "2222222222222222222222222222222222222222",
    );
    let emu = emulator().await;
    emu.seed(json!({"codepipeline": [{"name": "Apgms", "stages": ["Source", "Build", "Deploy"], "source": "github",
        "executions": [{"commit": good, "summary": "1.8"}, {"commit": bad, "summary": "1.9"}]}]}))
        .await
        .unwrap();
    emu.set_pipeline_delay(Duration::from_millis(300))
        .await
        .unwrap();
    let health = emu.health_url();
    let rb = Runbook::new(
        &emu,
        "003-pipeline-rerun.yaml",
        &[("PIPELINE", "Apgms"), ("HEALTH_URL", &health)],
    );
    rb.lint(1, 1);
    let plan = rb.plan();
    assert_eq!(moves(&plan), [moved("Apgms", bad, good)]);
    let before = emu.calls().await.unwrap();
    rb.apply_ok("INC-0412 5xx after 1.9");
    let after = emu.calls().await.unwrap();
    assert_eq!(made(&before, &after, "StartPipelineExecution"), 1);
    rb.assert_policy_exact(&before, &after, &[]);
}

#[tokio::test]
async fn runbook_003_an_alarm_still_firing_compensates_and_the_pipeline_is_open_again() {
    let emu = emulator().await;
    seed_003(&emu, "ALARM").await;
    let health = emu.health_url();
    let rb = runbook_003(&emu, &health).edited(
        "policy: {attempts: 20, interval: 15s, deadline: 5m}",
        "policy: {attempts: 3, interval: 100ms}",
    );
    rb.lint(2, 2);
    let before = emu.calls().await.unwrap();
    let run = rb.apply("INC-0412 5xx after pipeline execution 3f9c");
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert_eq!(run.report["outcome"], "compensated", "{}", run.report);
    let alarms = &run.report["checks"][0];
    assert_eq!(alarms["passed"], false, "{}", run.report);
    assert_eq!(alarms["attempts"], 3, "{alarms}");
    assert!(
        alarms["evidence"].as_str().unwrap().contains(ALARM_003),
        "{alarms}"
    );
    assert_eq!(
        run.report["error"]["kind"], "verification_failed",
        "{}",
        run.report
    );
    let after = emu.calls().await.unwrap();
    let calls = gained(&before, &after);
    // The revert and its compensation; the freeze and its end, once each.
    assert_eq!(made(&before, &after, "UpdateService"), 2, "{calls:?}");
    assert_eq!(
        made(&before, &after, "DisableStageTransition"),
        1,
        "{calls:?}"
    );
    assert_eq!(
        made(&before, &after, "EnableStageTransition"),
        1,
        "{calls:?}"
    );
    let aws = aws(&emu).await;
    assert_eq!(transition(&aws).await, "enabled");
    assert_eq!(
        ecs_state(&aws, "apgms", "apgms-api").await,
        ("apgms-api:2".into(), 2)
    );
}

#[tokio::test]
async fn runbook_002_the_cache_is_invalidated_once_after_the_lambda_rollback() {
    let emu = emulator().await;
    let function = "agentcore-mcp-s3-tools-prod";
    let seeded = emu
        .seed(json!({
            "lambda": [{"function": function, "alias": "live", "versions": ["1.4.0", "1.5.0"], "alias_version": "2"}],
            "cloudfront": [{"name": "mcp", "origin": "mcp.example.com"}],
        }))
        .await
        .unwrap();
    let distribution = seeded["cloudfront"][0]["id"].as_str().unwrap().to_string();
    emu.set_cloudfront_delay(Duration::from_millis(500))
        .await
        .unwrap();
    emu.mark_bad("lambda", &format!("{function}:live"), "2")
        .await
        .unwrap();
    let health = emu.health_url();
    let rb = Runbook::new(
        &emu,
        "002-cache-invalidation.yaml",
        &[
            ("ENV", "prod"),
            ("HEALTH_URL", &health),
            ("DISTRIBUTION", &distribution),
        ],
    );
    rb.lint(1, 1);
    let before = emu.calls().await.unwrap();
    rb.plan();
    let planned = emu.calls().await.unwrap();
    assert_eq!(
        made(&before, &planned, "GetDistribution"),
        1,
        "read in preflight"
    );
    assert_eq!(made(&before, &planned, "CreateInvalidation"), 0);

    let run = rb.apply("MCP tool bug in 1.5.0");
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.report["outcome"], "succeeded", "{}", run.report);
    let done = &run.report["on_success"][0];
    assert_eq!(done["ok"], true, "{}", run.report);
    assert!(
        done["message"]
            .as_str()
            .unwrap()
            .ends_with("of 1 path(s) Completed"),
        "{done}"
    );
    assert!(
        run.events.iter().any(|e| e["kind"] == "action_started"),
        "{:#?}",
        run.events
    );
    let after = emu.calls().await.unwrap();
    assert_eq!(made(&planned, &after, "CreateInvalidation"), 1);
    assert!(made(&planned, &after, "GetInvalidation") >= 2, "waited");

    // The same runbook pointing at a distribution that does not exist is refused in
    // preflight: exit 1, nothing changed.
    let wrong = Runbook::new(
        &emu,
        "002-cache-invalidation.yaml",
        &[
            ("ENV", "prod"),
            ("HEALTH_URL", &health),
            ("DISTRIBUTION", "E0000000000000"),
        ],
    );
    let out = wrong.run(&["plan", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("E0000000000000"),
        "{}",
        text(&out.stderr)
    );
    let end = emu.calls().await.unwrap();
    assert_eq!(made(&after, &end, "UpdateAlias"), 0);
    assert_eq!(made(&after, &end, "CreateInvalidation"), 0);
    // The previous version was found without listing the function's versions.
    rb.assert_policy_exact(&before, &after, &["lambda:ListVersionsByFunction"]);
}

#[tokio::test]
async fn runbook_003_cloudformation_previous_template_with_the_pipeline_frozen() {
    let emu = emulator().await;
    let template = |visibility: u32| {
        json!({"Parameters": {"Stage": {"Type": "String", "Default": "prod"}},
               "Resources": {"Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": visibility}}}})
    };
    let seeded = emu
        .seed(json!({
            "codepipeline": [{"name": "Apgms", "stages": ["Source", "Build", "Deploy"], "source": "github",
                "executions": [{"commit": "1".repeat(40)}, {"commit": "2".repeat(40), "status": "InProgress"}]}],
            "cloudformation": [{"stack": "apgms-prod", "bucket": "apgms-templates", "key": "prod/template.json",
                "versioned": true, "templates": [template(30), template(60), template(5)],
                "parameters": {"Stage": "prod"}}]
        }))
        .await
        .unwrap();
    let versions: Vec<String> = seeded["cloudformation"][0]["version_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let rb = Runbook::new(
        &emu,
        "003-cloudformation.yaml",
        &[
            ("PIPELINE", "Apgms"),
            ("STACK", "apgms-prod"),
            ("TEMPLATE", "s3://apgms-templates/prod/template.json"),
        ],
    );
    rb.lint(2, 2);
    let before = emu.calls().await.unwrap();
    let plan = rb.plan();
    assert_eq!(
        moves(&plan),
        [
            moved("Apgms/Deploy", "enabled", "disabled"),
            moved("apgms-prod", &versions[2], &versions[1]),
        ]
    );
    assert_eq!(
        mutations_in(&emu.calls().await.unwrap()),
        mutations_in(&before)
    );

    // An update CloudFormation rolls back: failed with the resource's reason, compensated
    // (the stack stays on its version, the pipeline is open again).
    emu.control(
        "POST",
        "cloudformation/fail",
        Some(json!({"stack": "apgms-prod", "resource": "Jobs", "reason": "VisibilityTimeout is out of range"})),
    )
    .await
    .unwrap();
    let failed = rb.apply("INC-0412 jobs redelivered since 1.9");
    assert_eq!(failed.code, Some(1), "{}", failed.stdout);
    assert_eq!(failed.report["outcome"], "compensated", "{}", failed.report);
    assert!(
        failed.report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("VisibilityTimeout is out of range"),
        "{}",
        failed.report
    );
    let aws = aws(&emu).await;
    assert_eq!(transition(&aws).await, "enabled");

    rb.apply_ok("INC-0412 jobs redelivered since 1.9");
    let after = emu.calls().await.unwrap();
    // The failed update and its rollback by CloudFormation, then the successful one; the
    // in-flight execution stopped by the first freeze only.
    assert_eq!(
        made(&before, &after, "UpdateStack"),
        2,
        "{:?}",
        gained(&before, &after)
    );
    assert_eq!(made(&before, &after, "StopPipelineExecution"), 1);
    assert_eq!(made(&before, &after, "DisableStageTransition"), 2);
    assert_eq!(transition(&aws).await, "enabled");
    let stack = rollback_aws::CloudFormationStack::new(
        &aws,
        "apgms-prod",
        "s3://apgms-templates/prod/template.json",
    )
    .unwrap();
    assert_eq!(stack.current().await.unwrap().id, versions[1]);
    rb.assert_policy_exact(&before, &after, &[]);
}

/// Least privilege, both ways, under moto's IAM enforcement: runbook 001's ECS rollback
/// runs with credentials holding only the actions `rollback policy` generates, and without
/// any one of them it is refused naming that action, changing nothing. (moto matches a
/// request's resource as `*`, so the users hold the actions on every resource; the ARNs
/// are checked against the calls by `assert_policy_exact`'s tests.)
#[tokio::test]
async fn runbook_001_runs_with_only_its_generated_iam_policy_and_not_without_any_action() {
    let emu = emulator().await;
    let family = FAMILY_001;
    let rb = one_service_001(&emu).await;
    let actions: Vec<String> = rb.policy_actions().into_iter().collect();
    assert!(
        actions.contains(&"ecs:UpdateService".to_string()),
        "{actions:?}"
    );
    let full = emu.iam_user("ci", &actions).await.unwrap();
    let mut without = Vec::new();
    for (i, missing) in actions.iter().enumerate() {
        let mut fewer = actions.clone();
        fewer.remove(i);
        let key = emu.iam_user(&format!("ci-{i}"), &fewer).await.unwrap();
        without.push((missing.clone(), key));
    }
    let nobody = emu.iam_user("nobody", &[]).await.unwrap();
    emu.enforce_iam(true).await.unwrap();

    // Enforced: a user with no permissions is refused at the first call.
    let out = rb.run_as(&nobody, &["plan", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("permission denied"),
        "{}",
        text(&out.stderr)
    );

    for (missing, key) in &without {
        let out = rb.run_as(
            key,
            &[
                "apply",
                "--yes",
                "--reason",
                "least privilege",
                "--output",
                "json",
            ],
        );
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "without {missing}: {all}");
        assert!(
            all.contains(missing.as_str()),
            "without {missing}, the error names it: {all}"
        );
        assert!(all.contains("rollback policy"), "without {missing}: {all}");
    }
    // Nothing changed: every denial came before UpdateService, or was UpdateService's own.
    emu.enforce_iam(false).await.unwrap();
    let aws = aws(&emu).await;
    assert_eq!(
        ecs_state(&aws, CLUSTER_001, "api-gateway-v2").await,
        (format!("{family}:3"), 2)
    );
    emu.enforce_iam(true).await.unwrap();

    let out = rb.run_as(
        &full,
        &[
            "apply",
            "--yes",
            "--reason",
            "least privilege",
            "--output",
            "json",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["outcome"], "succeeded", "{report}");
    emu.enforce_iam(false).await.unwrap();
    assert_eq!(
        ecs_state(&aws, CLUSTER_001, "api-gateway-v2").await,
        (format!("{family}:2"), 2)
    );
}

/// `rollback drill` of an ECS service on staging: broken to the bad task definition, the
/// health endpoint seen failing, rolled back, left on the task definition it was found on.
#[tokio::test]
async fn drill_of_the_ecs_runbook_measures_and_leaves_the_service_as_found() {
    let emu = emulator().await;
    let family = "agentauri-staging-api-gateway";
    emu.seed(json!({"ecs": [service("agentauri-staging", "api-gateway-v2", family, &["1.7.0", "1.8.0", "1.9.0"], 2)]}))
        .await
        .unwrap();
    emu.mark_bad(
        "ecs",
        "agentauri-staging/api-gateway-v2",
        &format!("{family}:3"),
    )
    .await
    .unwrap();
    let health = emu.health_url();
    let vars = [
        ("SERVICE", "api-gateway-v2"),
        ("HEALTH_URL", health.as_str()),
    ];
    // Staging after its last incident: back on 2, the bad 3 the newest.
    let aws = aws(&emu).await;
    let svc = EcsService::new(&aws, "agentauri-staging", "api-gateway-v2").unwrap();
    let change = svc
        .prepare(&rollback_core::Selector::Previous)
        .await
        .unwrap();
    svc.apply(&change).await.unwrap();
    let drill = Runbook::new(&emu, "001-ecs-drill-staging.yaml", &vars);
    let before = emu.calls().await.unwrap();
    let out = drill.run(&["drill", "--environment", "staging", "--output", "json"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], true, "{report:#}");
    let t = &report["targets"][0];
    assert_eq!(t["found"]["id"], format!("{family}:2"), "{report:#}");
    assert_eq!(t["broken_to"]["id"], format!("{family}:3"), "{report:#}");
    assert_eq!(
        t["rolled_back_to"]["id"],
        format!("{family}:2"),
        "{report:#}"
    );
    assert!(
        report["detected_by"].as_str().unwrap().contains("200"),
        "{report:#}"
    );
    let (ttd, ttr) = (
        report["time_to_detect"].as_u64().unwrap(),
        report["time_to_recover"].as_u64().unwrap(),
    );
    assert!(ttr <= 300_000 && ttd <= 120_000, "{report:#}");
    assert!(t["rollback_time"].as_u64().unwrap() > 0, "{report:#}");
    // Exactly as found, with two UpdateService calls: the break and the rollback (no
    // restore was needed).
    assert_eq!(
        ecs_state(&aws, "agentauri-staging", "api-gateway-v2").await,
        (format!("{family}:2"), 2)
    );
    assert_eq!(
        made(&before, &emu.calls().await.unwrap(), "UpdateService"),
        2
    );
    assert!(emu.healthy().await.unwrap());
}
