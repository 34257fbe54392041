//! What the campaigns share: the emulator set up for them, seeding, reading the emulator's
//! state with a client of its own, a target wrapper with hooks around `apply`, and the
//! pause protocol between a parent test and a child process (this test binary, re-run).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use rollback_aws::Aws;
use rollback_core::journal::read_journal;
use rollback_core::{
    ApplyOutcome, Change, Progress, Result, Revision, RollbackTarget, Selector, Stability,
    TargetId, TargetSpec,
};
use rollback_testkit::AwsEmulator;
use serde_json::{json, Value};

/// The ECS cluster every campaign's services live in.
pub const CLUSTER: &str = "campaign";

/// The emulator, with ECS deployments converging in 300 ms so campaigns stay short.
pub async fn emulator() -> AwsEmulator {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    emu.set_ecs_convergence(Duration::from_millis(300))
        .await
        .unwrap();
    emu
}

/// One Lambda alias, one ECS service and one secret, each with three revisions and at the
/// third: what a campaign transaction rolls back (to the second; the first is there for
/// someone else's change).
#[derive(Debug, Clone)]
pub struct Trio {
    pub function: String,
    pub service: String,
    pub family: String,
    pub secret: String,
    /// The secret's version ids, oldest first.
    pub secret_versions: Vec<String>,
}

impl Trio {
    pub fn names(tag: &str) -> Trio {
        Trio {
            function: format!("campaign-fn-{tag}"),
            service: format!("campaign-svc-{tag}"),
            family: format!("campaign-fam-{tag}"),
            secret: format!("campaign/{tag}/token"),
            secret_versions: Vec::new(),
        }
    }

    /// The `lambda` / `ecs` / `secrets` seed entries for these names.
    fn spec(&self) -> (Value, Value, Value) {
        let image = |t: &str| format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/campaign:{t}");
        (
            json!({"function": self.function, "alias": "live",
                   "versions": ["release 1", "release 2", "release 3"], "alias_version": "3"}),
            json!({"cluster": CLUSTER, "service": self.service, "family": self.family,
                   "desired_count": 1,
                   "revisions": [{"image": image("v1"), "environment": {"LOG_LEVEL": "info"}},
                                 {"image": image("v2"), "environment": {"LOG_LEVEL": "debug"}},
                                 {"image": image("v3"), "environment": {"LOG_LEVEL": "debug"}}],
                   "current": 3}),
            json!({"name": self.secret, "values": (1..=3).map(|n| format!("{}-value-{n}", self.function)).collect::<Vec<_>>()}),
        )
    }

    /// The ECS revision id (`family:N`).
    pub fn td(&self, n: u32) -> String {
        format!("{}:{n}", self.family)
    }
}

/// Seeds every trio in one call; fills in their secret version ids.
pub async fn seed(emu: &AwsEmulator, trios: &mut [Trio]) {
    let (mut lambda, mut ecs, mut secrets) = (Vec::new(), Vec::new(), Vec::new());
    for t in trios.iter() {
        let (l, e, s) = t.spec();
        lambda.push(l);
        ecs.push(e);
        secrets.push(s);
    }
    let out = emu
        .seed(json!({"lambda": lambda, "ecs": ecs, "secrets": secrets}))
        .await
        .unwrap();
    for (t, s) in trios.iter_mut().zip(out["secrets"].as_array().unwrap()) {
        t.secret_versions = s["version_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
    }
}

/// Reads the emulator's state with SDK clients of its own (not the targets').
pub struct Reader {
    lambda: aws_sdk_lambda::Client,
    ecs: aws_sdk_ecs::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

impl Reader {
    pub async fn new(endpoint: &str) -> Reader {
        let aws = Aws::from_sdk_config(&rollback_testkit::emulator_sdk_config(endpoint).await);
        Reader {
            lambda: aws_sdk_lambda::Client::new(aws.sdk_config().await),
            ecs: aws_sdk_ecs::Client::new(aws.sdk_config().await),
            secrets: aws_sdk_secretsmanager::Client::new(aws.sdk_config().await),
        }
    }

    /// The alias's version; panics on canary weights left on it.
    pub async fn alias_version(&self, function: &str) -> String {
        let out = self
            .lambda
            .get_alias()
            .function_name(function)
            .name("live")
            .send()
            .await
            .unwrap();
        let weights = out
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .map(|w| w.len())
            .unwrap_or(0);
        assert_eq!(weights, 0, "{function}:live has canary weights");
        out.function_version().unwrap().to_string()
    }

    /// The service's task definition as `family:N`.
    pub async fn service_td(&self, service: &str) -> String {
        let out = self
            .ecs
            .describe_services()
            .cluster(CLUSTER)
            .services(service)
            .send()
            .await
            .unwrap();
        let arn = out.services()[0].task_definition().unwrap().to_string();
        arn.rsplit('/').next().unwrap().to_string()
    }

    /// The version id holding AWSCURRENT.
    pub async fn secret_current(&self, secret: &str) -> String {
        let out = self
            .secrets
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .unwrap();
        out.version_ids_to_stages()
            .unwrap()
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == "AWSCURRENT"))
            .map(|(v, _)| v.clone())
            .unwrap()
    }

    pub fn lambda(&self) -> &aws_sdk_lambda::Client {
        &self.lambda
    }

    pub fn ecs(&self) -> &aws_sdk_ecs::Client {
        &self.ecs
    }

    pub fn secrets(&self) -> &aws_sdk_secretsmanager::Client {
        &self.secrets
    }
}

/// The mutating operations among an emulator calls answer, by name.
pub fn mutations_by_op(calls: &Value) -> BTreeMap<String, u64> {
    let all = calls["operations"].as_object().cloned().unwrap_or_default();
    all.into_iter()
        .filter(|(op, n)| {
            rollback_testkit::mutations_in(&json!({"operations": {op.clone(): n.clone()}})) > 0
        })
        .map(|(op, n)| (op, n.as_u64().unwrap_or(0)))
        .collect()
}

/// An async hook run around a wrapped target's `apply`.
pub type Hook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A target that runs hooks right before and right after its inner target's `apply`;
/// everything else (its id and spec included, so journals name the real target) is the
/// inner target's.
#[derive(Clone)]
pub struct Hooked {
    pub inner: Arc<dyn RollbackTarget>,
    pub before_apply: Option<Hook>,
    pub after_apply: Option<Hook>,
}

impl fmt::Debug for Hooked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooked")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RollbackTarget for Hooked {
    fn id(&self) -> TargetId {
        self.inner.id()
    }
    fn spec(&self) -> TargetSpec {
        self.inner.spec()
    }
    async fn current(&self) -> Result<Revision> {
        self.inner.current().await
    }
    async fn history(&self) -> Result<Vec<Revision>> {
        self.inner.history().await
    }
    async fn resolve(&self, selector: &Selector) -> Result<Revision> {
        self.inner.resolve(selector).await
    }
    async fn plan(&self, to: &Revision) -> Result<Change> {
        self.inner.plan(to).await
    }
    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        if let Some(h) = &self.before_apply {
            h().await;
        }
        let out = self.inner.apply(change).await;
        if let Some(h) = &self.after_apply {
            h().await;
        }
        out
    }
    fn compensation_note(&self, change: &Change) -> Option<String> {
        self.inner.compensation_note(change)
    }
    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        self.inner.check_stable(revision).await
    }
    async fn wait_stable(
        &self,
        revision: &Revision,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<()> {
        self.inner.wait_stable(revision, timeout, progress).await
    }
}

// -- the pause protocol -------------------------------------------------------------------

/// In the child: says `PAUSE <what>` on stdout and blocks until the parent answers a line
/// on stdin. On a current-thread runtime this freezes the whole run at that point, so the
/// journal's last record is the one just written.
pub fn pause(what: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "PAUSE {what}").unwrap();
    out.flush().unwrap();
    drop(out);
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
        // The parent is gone: nobody will answer.
        std::process::exit(3);
    }
}

/// A hook pausing the child before an apply call (the record just written is an intent).
pub fn pause_hook(what: &'static str) -> Hook {
    Arc::new(move || {
        pause(what);
        Box::pin(async {})
    })
}

/// In the parent: a child process (this test binary running one ignored test) that pauses.
pub struct Paused {
    child: Child,
    stdin: ChildStdin,
    lines: std::io::Lines<BufReader<ChildStdout>>,
    /// Every line the child printed that was not a pause.
    pub said: Vec<String>,
}

impl Paused {
    /// Runs `test` of this binary with `env`.
    pub fn spawn(test: &str, env: &[(&str, String)]) -> Paused {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Paused {
            child,
            stdin,
            lines,
            said: Vec::new(),
        }
    }

    /// The next pause (`Some(what)`), or `None` when the child ended.
    pub fn next_pause(&mut self) -> Option<String> {
        for line in self.lines.by_ref() {
            let line = line.ok()?;
            // The test harness's "test name ... " may come first on the line.
            if let Some((_, what)) = line.split_once("PAUSE ") {
                return Some(what.to_string());
            }
            self.said.push(line);
        }
        None
    }

    /// Lets the child go on.
    pub fn go(&mut self) {
        let _ = writeln!(self.stdin, "go");
        let _ = self.stdin.flush();
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Lets the child run to its end, answering every pause from the next one on (answer a
    /// pause already seen with [`Paused::go`] first); returns what it said.
    pub fn finish(mut self) -> Vec<String> {
        while self.next_pause().is_some() {
            self.go();
        }
        drop(self.stdin);
        self.child.wait().unwrap();
        self.said
    }
}

/// What the child said after `RESULT ` (its last words before it ends).
pub fn result_line(said: &[String]) -> Option<&str> {
    said.iter()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
}

/// The record kinds of a journal, in order.
pub fn kinds(journal: &Path) -> Vec<String> {
    read_journal(journal)
        .unwrap_or_else(|e| panic!("cannot read the journal {}: {e}", journal.display()))
        .iter()
        .map(|r| r.entry.name())
        .collect()
}
