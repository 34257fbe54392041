//! # The AWS emulator
//!
//! [`AwsEmulator`] starts the AWS emulator (moto in-process, with schedulers that move ECS
//! deployments and RDS instance / snapshot statuses like AWS does, CloudWatch over the Smithy
//! RPC v2 CBOR protocol aws-sdk-cloudwatch speaks, CodePipeline stage transitions, fault
//! injection and a control API; see `rollback-testkit/python/rollback_emulator`) as a child
//! process on a free loopback port, and stops it when dropped. The real AWS SDK talks to
//! [`AwsEmulator::endpoint`]. [`AwsEmulator::connect`] attaches to one already running
//! (started by hand with `python -m rollback_emulator`) instead.
//!
//! The emulator needs Python with the packages of `rollback-testkit/python/requirements.txt`
//! in the project virtualenv (`.venv`): `bash scripts/setup-python.sh` installs them, and
//! the README's commands run it. Set `ROLLBACK_PYTHON` to use another interpreter.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{control_call, TestkitError};

/// The repository root (where `.venv` and `scripts/` are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The Python interpreter that has the emulator's packages.
pub fn python() -> PathBuf {
    std::env::var_os("ROLLBACK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv").join("bin").join("python"))
}

/// A running AWS emulator; stopped when dropped if [`AwsEmulator::start`] started it.
#[derive(Debug)]
pub struct AwsEmulator {
    /// `None` when attached with [`AwsEmulator::connect`].
    child: Option<Child>,
    endpoint: String,
    http: reqwest::Client,
}

impl AwsEmulator {
    /// Starts the emulator on a free loopback port and waits until it answers.
    ///
    /// Fails with a message naming what is missing (the virtualenv, moto) and the command
    /// that installs it; never silently skips.
    pub async fn start() -> Result<Self, TestkitError> {
        let py = python();
        if !py.exists() {
            return Err(TestkitError::Start(format!(
                "{} does not exist; run `bash scripts/setup-python.sh` (the README's commands do) or set ROLLBACK_PYTHON",
                py.display()
            )));
        }
        let mut child = Command::new(&py)
            .args([
                "-m",
                "rollback_emulator",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ])
            .env(
                "PYTHONPATH",
                repo_root().join("rollback-testkit").join("python"),
            )
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::Start(format!("cannot run {}: {e}", py.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| TestkitError::Start("no stdout from the emulator".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(90), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("READY ") {
                    return Some(url.trim().to_string());
                }
            }
            None
        })
        .await;
        let endpoint = match ready {
            Ok(Some(url)) => url,
            other => {
                let _ = child.start_kill();
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        stderr.read_to_string(&mut err),
                    )
                    .await;
                }
                let why = if other.is_err() {
                    "it did not report READY within 90 s"
                } else {
                    "it exited before reporting READY"
                };
                let tail: String = err
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(TestkitError::Start(format!(
                    "{why}; if moto is missing run `bash scripts/setup-python.sh`. Its stderr:\n{tail}"
                )));
            }
        };
        // Keep draining stdout/stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(_)) = lines.next_line().await {}
            });
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| TestkitError::Start(format!("http client: {e}")))?;
        Ok(AwsEmulator {
            child: Some(child),
            endpoint,
            http,
        })
    }

    /// Attaches to an emulator already running at `endpoint` (for example one started by
    /// hand with `python -m rollback_emulator --port 4566`) without owning its process:
    /// dropping the handle leaves it running. Fails unless its control API answers
    /// `GET /_emulator/ping`, so a plain moto server or LocalStack is refused.
    pub async fn connect(endpoint: impl Into<String>) -> Result<Self, TestkitError> {
        let endpoint = endpoint.into().trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| TestkitError::Start(format!("http client: {e}")))?;
        let emu = AwsEmulator {
            child: None,
            endpoint,
            http,
        };
        let ping = emu.control("GET", "ping", None).await?;
        if ping["ok"] != json!(true) {
            return Err(TestkitError::Start(format!(
                "{} answered GET /_emulator/ping with {ping}, not {{\"ok\": true}}",
                emu.endpoint
            )));
        }
        Ok(emu)
    }

    /// The endpoint URL for `AWS_ENDPOINT_URL` / `AwsConfig::endpoint_url`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The emulator's process id (`None` when attached with [`AwsEmulator::connect`]).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Calls the control API (`/_emulator/...`) and returns its JSON answer.
    pub async fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, TestkitError> {
        let url = format!(
            "{}/_emulator/{}",
            self.endpoint,
            path.trim_start_matches('/')
        );
        // The health endpoint answers 503 with its report when the application is unhealthy.
        let ok_503 = path.starts_with("health");
        control_call(
            &self.http,
            method,
            &url,
            body,
            format!("{method} {path}"),
            ok_503,
        )
        .await
    }

    /// Creates Lambda functions and aliases, ECS clusters, task definitions and services,
    /// secrets, RDS instances with their snapshots, CloudWatch alarms and metrics, and
    /// CodePipeline pipelines (see the emulator's README for the shape); returns what was created.
    pub async fn seed(&self, spec: Value) -> Result<Value, TestkitError> {
        self.control("POST", "seed", Some(spec)).await
    }

    /// Marks a revision bad: the emulator's `/health` fails while it is live.
    /// `kind` is `lambda` (name `function:alias`, revision version), `ecs` (name
    /// `cluster/service`, revision `family:N`), `secret` (name secret id, revision version id)
    /// or `secret-endpoint` (name secret id, revision DB instance id: health fails while the
    /// secret's AWSCURRENT value does not name that instance's endpoint address).
    pub async fn mark_bad(
        &self,
        kind: &str,
        name: &str,
        revision: &str,
    ) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "bad",
            Some(json!({"kind": kind, "name": name, "revision": revision})),
        )
        .await
        .map(|_| ())
    }

    /// Creates the IAM user `name` allowed exactly `actions` (on every resource: moto
    /// matches a request's resource as `*`, so resource scoping is not enforced) and
    /// returns its access key id and secret, for a run under least privilege once
    /// [`enforce_iam`](Self::enforce_iam) is on. Create users and seed before enforcing.
    pub async fn iam_user(
        &self,
        name: &str,
        actions: &[String],
    ) -> Result<(String, String), TestkitError> {
        let v = self
            .control(
                "POST",
                "iam/users",
                Some(json!({"name": name, "actions": actions})),
            )
            .await?;
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Ok((field("access_key_id"), field("secret_access_key")))
    }

    /// Turns moto's IAM enforcement on (each later AWS request is authenticated and its
    /// action authorized against its caller's policies; the control API is not) or off.
    /// The emulator's reset (`POST /_emulator/reset`) turns it off.
    pub async fn enforce_iam(&self, enabled: bool) -> Result<(), TestkitError> {
        self.control("POST", "iam/enforce", Some(json!({"enabled": enabled})))
            .await
            .map(|_| ())
    }

    /// Whether the emulated application's health endpoint passes now.
    pub async fn healthy(&self) -> Result<bool, TestkitError> {
        Ok(self.control("GET", "health", None).await?["healthy"] == json!(true))
    }

    /// The URL of the emulated application's health endpoint (200 / 503).
    pub fn health_url(&self) -> String {
        format!("{}/_emulator/health", self.endpoint)
    }

    /// Makes deployments of a task definition (`family:N`) end in rolloutState FAILED.
    pub async fn fail_task_definition(&self, task_definition: &str) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "ecs/fail",
            Some(json!({"task_definition": task_definition})),
        )
        .await
        .map(|_| ())
    }

    /// Sets how long an ECS deployment takes to converge.
    pub async fn set_ecs_convergence(&self, delay: Duration) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "ecs/config",
            Some(json!({"convergence_ms": delay.as_millis() as u64})),
        )
        .await
        .map(|_| ())
    }

    /// Sets how long RDS creates, restores (`creating` then `backing-up`), snapshots
    /// (`creating`) and modifications (`modifying`) take before they are `available`;
    /// zero finishes them inside the call. The default is 1.5 s.
    pub async fn set_rds_delay(&self, delay: Duration) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "rds/config",
            Some(json!({"delay_ms": delay.as_millis() as u64})),
        )
        .await
        .map(|_| ())
    }

    /// Sets how long CloudFront invalidations created from now on stay `InProgress` before
    /// they are `Completed`; zero completes them inside CreateInvalidation. The default is 1 s.
    pub async fn set_cloudfront_delay(&self, delay: Duration) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "cloudfront/config",
            Some(json!({"delay_ms": delay.as_millis() as u64})),
        )
        .await
        .map(|_| ())
    }

    /// Makes restores from a DB snapshot end in `status` (`incompatible-restore`,
    /// `incompatible-parameters` or `failed`) instead of `available`.
    pub async fn fail_restore(&self, snapshot: &str, status: &str) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "rds/fail",
            Some(json!({"snapshot": snapshot, "status": status})),
        )
        .await
        .map(|_| ())
    }

    /// Makes point-in-time restores of a DB instance end in `status` (`incompatible-restore`,
    /// `incompatible-parameters` or `failed`) instead of `available`.
    pub async fn fail_point_in_time_restore(
        &self,
        source: &str,
        status: &str,
    ) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "rds/fail",
            Some(json!({"source": source, "status": status})),
        )
        .await
        .map(|_| ())
    }

    /// Makes CodePipeline executions started for `commit` (a source revision id) end Failed.
    pub async fn fail_pipeline_commit(&self, commit: &str) -> Result<(), TestkitError> {
        self.control("POST", "codepipeline/fail", Some(json!({"commit": commit})))
            .await
            .map(|_| ())
    }

    /// Sets how long a started CodePipeline execution runs before it ends (Succeeded, or
    /// Failed for a failing commit), and how long Stopping lasts; the default is 1 s.
    pub async fn set_pipeline_delay(&self, delay: Duration) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "codepipeline/config",
            Some(json!({"delay_ms": delay.as_millis() as u64})),
        )
        .await
        .map(|_| ())
    }

    /// Finishes every RDS status transition in progress now; returns how many there were.
    pub async fn advance_rds(&self) -> Result<u64, TestkitError> {
        Ok(self.control("POST", "rds/advance", None).await?["finished"]
            .as_u64()
            .unwrap_or(0))
    }

    /// Sets a CloudWatch alarm's state (`ALARM`, `OK` or `INSUFFICIENT_DATA`), as
    /// SetAlarmState does.
    pub async fn set_alarm(&self, name: &str, state: &str) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "cloudwatch/alarm",
            Some(json!({"name": name, "state": state})),
        )
        .await
        .map(|_| ())
    }

    /// Injects a fault on the next `count` calls of an operation (e.g. `UpdateService`):
    /// `kind` is `throttle`, `5xx`, `reset` or `latency` (with `latency_ms`).
    pub async fn inject(
        &self,
        operation: &str,
        kind: &str,
        count: u32,
        latency_ms: u64,
    ) -> Result<(), TestkitError> {
        self.control(
            "POST",
            "faults",
            Some(json!({"operation": operation, "kind": kind, "count": count, "latency_ms": latency_ms})),
        )
        .await
        .map(|_| ())
    }

    /// Faults a seeded share (`rate`, 0 < rate <= 1) of every AWS call (of `service` only,
    /// e.g. `ecs`, when given) until [`AwsEmulator::clear_faults`]: each faulted call gets
    /// one of `kinds` (`throttle`, `5xx`, `reset`). The same seed and the same sequence of
    /// calls meet the same faults. Control calls and seeding are never faulted; what was
    /// injected is counted under `faults_injected` in [`AwsEmulator::calls`].
    pub async fn inject_rate(
        &self,
        rate: f64,
        kinds: &[&str],
        seed: u64,
        service: Option<&str>,
    ) -> Result<(), TestkitError> {
        let mut body = json!({"operation": "*", "rate": rate, "kinds": kinds, "seed": seed});
        if let Some(service) = service {
            body["service"] = json!(service);
        }
        self.control("POST", "faults", Some(body)).await.map(|_| ())
    }

    /// Drops every pending fault (counted and rate); returns how many there were.
    pub async fn clear_faults(&self) -> Result<u64, TestkitError> {
        Ok(self.control("DELETE", "faults", None).await?["cleared"]
            .as_u64()
            .unwrap_or(0))
    }

    /// Resets the call counts (and the tallies of injected faults).
    pub async fn reset_calls(&self) -> Result<(), TestkitError> {
        self.control("DELETE", "calls", None).await.map(|_| ())
    }

    /// How many times each operation was called since the start or the last reset.
    pub async fn calls(&self) -> Result<Value, TestkitError> {
        self.control("GET", "calls", None).await
    }

    /// How many times `operation` (e.g. `UpdateService`) was called so far.
    pub async fn call_count(&self, operation: &str) -> Result<u64, TestkitError> {
        Ok(count_in(&self.calls().await?, operation))
    }
}

/// How many times `operation` was called, from a [`AwsEmulator::calls`] answer
/// (`{"total": n, "operations": {"UpdateAlias": n, ...}, "by_service": {...}}`).
pub fn count_in(calls: &Value, operation: &str) -> u64 {
    calls["operations"][operation].as_u64().unwrap_or(0)
}

/// The calls each operation gained between two [`AwsEmulator::calls`] answers, by
/// operation (those that gained none left out): what the code between them cost.
pub fn gained(before: &Value, after: &Value) -> std::collections::BTreeMap<String, u64> {
    after["operations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(op, _)| {
            let n = count_in(after, op).saturating_sub(count_in(before, op));
            (n > 0).then(|| (op.clone(), n))
        })
        .collect()
}

/// How many faults were injected, by kind (`throttle`, `5xx`, `reset`, `latency`), from a
/// [`AwsEmulator::calls`] answer; `"total"` is their sum.
pub fn injected_in(calls: &Value, kind: &str) -> u64 {
    let injected = &calls["faults_injected"];
    if kind == "total" {
        injected["total"].as_u64().unwrap_or(0)
    } else {
        injected["by_kind"][kind].as_u64().unwrap_or(0)
    }
}

/// How many mutating calls (`Update*`, `Publish*`, `Create*`, `Delete*`, `Put*`,
/// `Register*`, `Deregister*`) a [`AwsEmulator::calls`] answer holds.
pub fn mutations_in(calls: &Value) -> u64 {
    const MUTATING: [&str; 7] = [
        "Update",
        "Publish",
        "Create",
        "Delete",
        "Put",
        "Register",
        "Deregister",
    ];
    calls["operations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(op, _)| MUTATING.iter().any(|p| op.starts_with(p)))
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum()
}
