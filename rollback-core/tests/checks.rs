//! Checks as input: refused in preflight before any target is read (and the same in a dry
//! run), and a check's output kept free of its secrets on the way to evidence, events, the
//! journal and the report.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use rollback_core::verify::{check_bool, Policy};
use rollback_core::{
    action_fn, Check, ErrorKind, FakeTarget, Revision, RollbackTarget, Selector, Step, Transaction,
    TransactionBuilder,
};
#[cfg(feature = "process")]
use {
    rollback_core::verify::{CommandCheck, VerifierExt},
    rollback_core::{Event, Outcome, StepStatus},
    std::sync::Mutex,
};

fn target(name: &str) -> FakeTarget {
    FakeTarget::builder(name)
        .revision(Revision::new("1").image(format!("registry/{name}:v1")))
        .revision(Revision::new("2").image(format!("registry/{name}:v2")))
        .build()
        .unwrap()
}

fn tx(dir: &tempfile::TempDir, name: &str) -> TransactionBuilder {
    Transaction::builder(name)
        .reason("5xx after deploy")
        .journal(dir.path().join(format!("{name}.jsonl")))
        .locks(Arc::new(rollback_core::FileLocks::new(
            dir.path().join("locks"),
        )))
}

/// Builds and runs `b`, which must get past preflight.
#[cfg(feature = "process")]
async fn run(b: TransactionBuilder) -> rollback_core::Report {
    b.build().unwrap().run().await.unwrap()
}

fn step(t: &FakeTarget) -> Step {
    Step::new(
        Arc::new(t.clone()) as Arc<dyn RollbackTarget>,
        Selector::Previous,
    )
}

/// Where a bad part sits in the transaction.
#[cfg_attr(not(feature = "process"), allow(dead_code))]
enum Place {
    Step(Check),
    Transaction(Check),
    OnFailure(Arc<dyn rollback_core::FailureAction>),
}

/// Bad checks, policies and actions: each `(case, place, what the message must say)`.
fn bad_parts(t: &FakeTarget) -> Vec<(&'static str, Place, &'static str)> {
    let health = || Check::new(t.health_check());
    #[cfg_attr(not(any(feature = "http", feature = "process")), allow(unused_mut))]
    let mut cases = vec![
        (
            "consecutive above attempts",
            Place::Step(health().policy(Policy::default().attempts(2).consecutive(3))),
            "can never pass",
        ),
        (
            "zero attempts",
            Place::Step(health().policy(Policy {
                attempts: 0,
                ..Policy::default()
            })),
            "attempts is 0",
        ),
        (
            "zero consecutive",
            Place::Step(health().policy(Policy {
                consecutive: 0,
                ..Policy::default()
            })),
            "consecutive is 0",
        ),
        (
            "zero deadline",
            Place::Step(health().policy(Policy::default().deadline(Duration::ZERO))),
            "deadline is 0",
        ),
        (
            "deadline shorter than the passes need",
            Place::Step(
                health().policy(
                    Policy::default()
                        .attempts(5)
                        .consecutive(3)
                        .interval(Duration::from_secs(10))
                        .deadline(Duration::from_secs(15)),
                ),
            ),
            "longer than the 15s deadline",
        ),
        (
            "closure check without a name",
            Place::Step(Check::new(check_bool("", || async { true }))),
            "empty name",
        ),
        (
            "on-failure action without a name",
            Place::OnFailure(action_fn("", || async { Ok("done".to_string()) })),
            "on-failure action",
        ),
    ];
    #[cfg(feature = "process")]
    cases.extend([
        (
            "command with empty argv",
            Place::Step(Check::new(CommandCheck::new(Vec::<String>::new()))),
            "argv is empty",
        ),
        (
            "command with zero timeout",
            Place::Step(Check::new(
                CommandCheck::new(["true"]).timeout(Duration::ZERO),
            )),
            "timeout is 0",
        ),
        (
            "bad part of a combined check",
            Place::Step(Check::new(
                t.health_check()
                    .and(CommandCheck::new(["true"]).env("A=B", "x").not()),
            )),
            "env key \"A=B\"",
        ),
        (
            "transaction check",
            Place::Transaction(Check::new(CommandCheck::new([""]))),
            "empty string",
        ),
    ]);
    #[cfg(feature = "http")]
    {
        use rollback_core::verify::HttpCheck;
        let http = |c: HttpCheck| Place::Step(Check::new(c));
        let ok = || HttpCheck::new("http://127.0.0.1:9/health");
        cases.extend([
            (
                "json pointer without /",
                http(ok().json_value("status", "ok")),
                "\"/status\"",
            ),
            (
                "invalid method",
                http(ok().method("GE T")),
                "not an HTTP method",
            ),
            (
                "URL without host",
                http(HttpCheck::new("http://")),
                "not a valid URL",
            ),
            (
                "URL not http",
                http(HttpCheck::new("ftp://files/health")),
                "not supported",
            ),
            (
                "bad header name",
                http(ok().header("X Api Key", "k")),
                "not a valid header name",
            ),
            (
                "bad header value",
                http(ok().header("X-Env", "prod\r\nX-Evil: 1")),
                "cannot hold",
            ),
            (
                "impossible status",
                http(ok().status(1000)),
                "not an HTTP status",
            ),
        ]);
    }
    cases
}

#[tokio::test]
async fn bad_checks_policies_and_actions_are_refused_before_any_target_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let probe = target("probe");
    let cases = bad_parts(&probe);
    assert!(cases.len() >= if cfg!(feature = "process") { 11 } else { 7 });
    for (i, (case, place, want)) in cases.into_iter().enumerate() {
        let t = target(&format!("api-{i}"));
        let id = t.id().to_string();
        let mut b = tx(&dir, &format!("case-{i}"));
        let (where_, name) = match place {
            Place::Step(c) => {
                let name = c.verifier.name();
                b = b.step(step(&t).verify(c));
                (id.clone(), name)
            }
            Place::Transaction(c) => {
                let name = c.verifier.name();
                b = b.step(step(&t)).verify(c);
                ("transaction".to_string(), name)
            }
            Place::OnFailure(a) => {
                let name = a.name();
                b = b.step(step(&t)).on_failure(a);
                ("transaction".to_string(), name)
            }
        };
        let tx = b.build().unwrap();

        let real = tx.run().await.unwrap_err();
        assert_eq!(real.kind(), ErrorKind::InvalidInput, "{case}: {real}");
        assert_eq!(real.target(), where_, "{case}: {real}");
        let text = real.to_string();
        assert!(text.contains(want), "{case}: {text}");
        assert!(text.contains(&format!("{name:?}")), "{case}: {text}");
        // Nothing read, nothing changed, nothing written.
        assert!(t.calls().is_empty(), "{case}: {:?}", t.calls());
        assert_eq!(t.apply_count(), 0, "{case}");
        assert_eq!(t.current_id(), "2", "{case}");
        assert!(!tx.journal_path().exists(), "{case}: a journal was written");

        let dry = tx.dry_run().await.unwrap_err();
        assert_eq!(
            (dry.kind(), dry.to_string()),
            (real.kind(), text),
            "{case}: the dry run differs"
        );
        assert!(t.calls().is_empty(), "{case}: {:?}", t.calls());
    }
}

#[cfg(feature = "process")]
#[tokio::test]
async fn a_good_check_still_runs_after_preflight() {
    let dir = tempfile::tempdir().unwrap();
    let t = target("api");
    let check = Check::new(t.health_check().and(CommandCheck::new(["true"])));
    let report = run(tx(&dir, "good").step(step(&t).verify(check.policy(Policy::once())))).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(t.current_id(), "1");
}

#[cfg(feature = "process")]
#[tokio::test]
async fn a_secret_the_smoke_test_prints_appears_nowhere() {
    const TOKEN: &str = "tok-9f2c4e7a1b";
    let dir = tempfile::tempdir().unwrap();
    let t = target("api");
    let events = Arc::new(Mutex::new(Vec::<Event>::new()));
    let seen = events.clone();
    let smoke = CommandCheck::new([
        "sh",
        "-c",
        r#"echo "calling https://api with token $API_TOKEN"; echo "Authorization: Bearer $API_TOKEN" >&2; echo "503 from api"; exit 1"#,
    ])
    .env("API_TOKEN", TOKEN);
    let report = run(tx(&dir, "smoke")
        .step(step(&t).verify(Check::new(smoke).policy(Policy::once())))
        .on_event(move |e| seen.lock().unwrap().push(e.clone())))
    .await;
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(report.steps[0].status, StepStatus::Compensated);

    // The output was captured (so the test can see a leak), with the token taken out.
    let evidence = &report.steps[0].verdicts[0].evidence;
    assert!(evidence.contains("503 from api"), "{evidence}");
    assert!(
        evidence.contains("calling https://api with token <redacted>"),
        "{evidence}"
    );
    let events = format!("{:?}", events.lock().unwrap());
    let journal = std::fs::read_to_string(&report.journal_path).unwrap();
    assert!(journal.contains("503 from api"), "{journal}");
    for (place, text) in [
        ("evidence", evidence.clone()),
        ("events", events),
        ("journal", journal),
        ("report", report.to_string()),
        ("report debug", format!("{report:?}")),
    ] {
        assert!(
            !text.contains(TOKEN),
            "the token leaked into the {place}: {text}"
        );
    }
}
