//! A [`LockManager`] across processes: two transactions in two processes that share
//! nothing but the store, started together on one target, again and again (exactly one
//! proceeds each time, the other is refused naming the holder); and a holder killed with
//! SIGKILL, whose lease another run takes over once its time to live has passed, with a
//! greater fencing token.
//!
//! The processes are the test binary itself: an `#[ignore]`d test calls [`contender`]
//! with the store (it does nothing unless the process was started as a contender), and
//! the test under way starts it through [`Contenders`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use rollback_core::conformance::processes::{contender, Contenders};
//! use rollback_core::FileLocks;
//!
//! const DIR: &str = "MY_TEST_LOCK_DIR";
//!
//! #[tokio::test]
//! #[ignore = "run as a child process by the tests of this file"]
//! async fn contender_child() {
//!     if let Ok(dir) = std::env::var(DIR) {
//!         contender(Arc::new(FileLocks::new(dir))).await;
//!     }
//! }
//!
//! #[tokio::test]
//! async fn two_processes() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let locks = FileLocks::new(dir.path());
//!     Contenders::new("contender_child")
//!         .env(DIR, dir.path().to_str().unwrap())
//!         .assert_exactly_one_proceeds(50, &locks)
//!         .await;
//! }
//! ```
//!
//! Each contender runs one transaction on its own in-memory fake `api` (revisions 1 and
//! 2): its step's check prints `HOLDING` and waits for a line on stdin before it passes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::verify::{check_fn, CheckOutcome};
use crate::{
    ErrorKind, FakeTarget, Holder, LockManager, Outcome, Revision, RollbackTarget, Selector, Step,
    TargetId, Transaction,
};

/// Set in a contender's environment: the lease time to live, in seconds.
pub const CONTENDER_TTL_VAR: &str = "ROLLBACK_CONFORMANCE_CONTENDER_TTL";

/// The target every contender rolls back (each process its own, one id).
fn api() -> FakeTarget {
    #[allow(clippy::unwrap_used)] // two distinct revisions: always builds
    FakeTarget::builder("api")
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .build()
        .unwrap()
}

/// The id of the contenders' target.
pub fn contended_target() -> TargetId {
    api().id()
}

/// Runs one contender when this process was started as one by [`Contenders`] (and
/// returns at once otherwise): a transaction on the fake `api` locking with `locks`. It
/// prints `HOLDING` from its check and waits for a line on stdin before passing; then
/// `DONE <outcome>`. Refused: `LOCKED <message>`; any other error: `ERROR <message>`.
pub async fn contender(locks: Arc<dyn LockManager>) {
    let Some(ttl) = std::env::var(CONTENDER_TTL_VAR)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return;
    };
    let hold = check_fn("hold", || async {
        say("HOLDING");
        let mut line = String::new();
        tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line))
            .await
            .ok();
        Ok(CheckOutcome::pass("released by the parent"))
    });
    // A fresh folder per contender: a pid is reused, and a folder an earlier run left with it
    // holds that run's journal.
    let dir = std::env::temp_dir().join(format!("rollback-contender-{}", uuid::Uuid::new_v4()));
    let run = Transaction::builder("contender")
        .reason("two processes, one target")
        .journal(dir.join("journal.jsonl"))
        .locks(locks)
        .lease_ttl(Duration::from_secs(ttl))
        .step(Step::new(Arc::new(api()), Selector::Previous).verify(hold))
        .build();
    let line = match run {
        Err(e) => format!("ERROR {e}"),
        Ok(tx) => match tx.run().await {
            Ok(report) => format!("DONE {}", report.outcome),
            Err(e) if e.kind() == ErrorKind::Locked => format!("LOCKED {e}"),
            Err(e) => format!("ERROR {e}"),
        },
    };
    let _ = std::fs::remove_dir_all(&dir);
    say(&line);
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Starts contenders: the test binary again, running the `#[ignore]`d test that calls
/// [`contender`], with the environment it needs to reach the store.
#[derive(Debug, Clone)]
pub struct Contenders {
    test: String,
    env: Vec<(String, String)>,
}

/// A started contender and its output lines.
struct Kid {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Kid {
    /// Its next line of its own (the test harness's skipped).
    fn next(&mut self) -> String {
        self.lines
            .by_ref()
            .map_while(std::result::Result::ok)
            .find(|l| {
                ["HOLDING", "LOCKED", "DONE", "ERROR"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .unwrap_or_else(|| {
                "(no output: the contender died, or no test of this binary has exactly its name)"
                    .into()
            })
    }

    fn release(&mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin);
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Contenders {
    /// Contenders running the test named `test` (exactly, with its module path when the
    /// test binary has modules: `dynamodb_locks::contender_child`) of this test binary.
    pub fn new(test: impl Into<String>) -> Self {
        Contenders {
            test: test.into(),
            env: Vec::new(),
        }
    }

    /// Sets `key=value` in every contender's environment (the store's address).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    #[allow(clippy::expect_used)] // a test harness: no binary, no test
    fn spawn(&self, ttl_s: u64) -> Kid {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args([&self.test, "--exact", "--ignored", "--nocapture", "--quiet"])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(CONTENDER_TTL_VAR, ttl_s.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the test binary starts again as a contender");
        let stdout = child.stdout.take().expect("a piped stdout");
        Kid {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// `rounds` times: two contenders started together; exactly one holds the lease and
    /// the other is refused with [`ErrorKind::Locked`] naming the holder's pid; the holder
    /// finishes and gives the lease back. Panics naming the round otherwise.
    pub async fn assert_exactly_one_proceeds(&self, rounds: usize, locks: &dyn LockManager) {
        for round in 0..rounds {
            let mut kids = [self.spawn(300), self.spawn(300)];
            // Both have tried before either lets go: the holder waits in its check.
            let firsts: Vec<String> = kids.iter_mut().map(Kid::next).collect();
            let holding: Vec<usize> = (0..2).filter(|&i| firsts[i] == "HOLDING").collect();
            assert_eq!(holding.len(), 1, "round {round}: {firsts:?}");
            let (winner, loser) = (holding[0], 1 - holding[0]);
            assert!(
                firsts[loser].starts_with("LOCKED") && firsts[loser].contains("pid"),
                "round {round}: the other is refused naming the holder: {firsts:?}"
            );
            kids[winner].release();
            assert_eq!(kids[winner].next(), "DONE succeeded", "round {round}");
            for kid in &mut kids {
                let status = kid.child.wait();
                assert!(
                    status.as_ref().is_ok_and(|s| s.success()),
                    "round {round}: {status:?}"
                );
            }
            let held = locks.current(&contended_target()).await;
            assert!(
                matches!(held, Ok(None)),
                "round {round}: the lease was given back: {held:?}"
            );
        }
    }

    /// A contender holding the lease (time to live `ttl`, whole seconds) is killed with
    /// SIGKILL; until the lease expires a run is refused, after it a run takes it over with
    /// a greater fencing token and succeeds. The wait for the expiry is the condition under
    /// test. Panics saying what went wrong.
    #[allow(clippy::expect_used, clippy::panic)]
    pub async fn assert_killed_holder_is_taken_over(
        &self,
        ttl: Duration,
        locks: Arc<dyn LockManager>,
    ) {
        let mut kid = self.spawn(ttl.as_secs().max(1));
        assert_eq!(kid.next(), "HOLDING");
        kid.child.kill().expect("SIGKILL");
        kid.child.wait().expect("the killed contender");
        let id = contended_target();
        let dead = locks
            .current(&id)
            .await
            .expect("the store answers")
            .expect("the killed run's lease is still there");

        let t = api();
        let dir = std::env::temp_dir().join(format!("rollback-takeover-{}", uuid::Uuid::new_v4()));
        let run = |name: &str| {
            Transaction::builder(name)
                .reason("after a crash")
                .journal(dir.join(format!("{name}.jsonl")))
                .locks(locks.clone())
                .step(Step::new(Arc::new(t.clone()), Selector::Previous))
                .build()
                .expect("a valid transaction")
        };
        if chrono::Utc::now() < dead.expires_at {
            match run("early").run().await {
                Err(e) if e.kind() == ErrorKind::Locked => {}
                other => panic!("before the TTL the killed run still holds it: {other:?}"),
            }
        }
        let left = (dead.expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(left + Duration::from_millis(100)).await;
        let report = run("late").run().await.expect("the late run");
        assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
        assert_eq!(t.current_id(), "1");
        // The taking run's token was greater: the next is greater still.
        let mine = Holder::current("probe");
        let next = locks
            .acquire(&id, &mine, Duration::from_secs(5))
            .await
            .expect("free again");
        assert!(
            next.token >= dead.token + 2,
            "the fencing token grows: {} then {}",
            dead.token,
            next.token
        );
        locks.release(&next).await.expect("given back");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
