//! `CloudFrontInvalidation` through the real aws-sdk-rust against the emulator (runbook 002
//! "Cache Invalidation"): after a Lambda alias is rolled back, the distribution's cache is
//! invalidated once and waited for until Completed; a resume of a run stopped during the
//! wait does not make a second invalidation; a wrong distribution or bad paths are refused
//! before anything changes; a runbook file names it under `on_success`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rollback_aws::{Aws, CloudFrontInvalidation, LambdaAlias};
use rollback_core::journal::{read_journal, Entry};
use rollback_core::runbook::{Runbook, Vars};
use rollback_core::transaction::{ActionRun, ActionWhen, AfterAction};
use rollback_core::{
    ErrorKind, EventKind, FileLocks, Interrupt, Outcome, ResumeOptions, RollbackTarget, Selector,
    Step, Transaction, TransactionBuilder,
};
use rollback_testkit::{gained, mutations_in, AwsEmulator};
use serde_json::{json, Value};

const FUNCTION: &str = "storefront-web";
const ALIAS: &str = "live";

/// One emulator per test (each `#[tokio::test]` has its own runtime).
struct Env {
    emu: AwsEmulator,
    aws: Aws,
    distribution: String,
    dir: tempfile::TempDir,
}

async fn env(delay_ms: u64) -> Env {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    let seeded = emu
        .seed(json!({
            "lambda": [{"function": FUNCTION, "alias": ALIAS, "versions": ["release 1", "release 2"], "alias_version": "2"}],
            "cloudfront": [{"name": "storefront", "origin": "storefront.example.com"}],
        }))
        .await
        .unwrap();
    let distribution = seeded["cloudfront"][0]["id"].as_str().unwrap().to_string();
    emu.set_cloudfront_delay(Duration::from_millis(delay_ms))
        .await
        .unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    Env {
        emu,
        aws,
        distribution,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    fn alias(&self) -> LambdaAlias {
        LambdaAlias::new(&self.aws, FUNCTION, ALIAS).unwrap()
    }

    fn invalidation(&self) -> CloudFrontInvalidation {
        CloudFrontInvalidation::new(&self.aws, &self.distribution, ["/*", "/index.html"]).unwrap()
    }

    fn tx(&self, name: &str) -> TransactionBuilder {
        Transaction::builder(name)
            .reason("release 2 serves 5xx")
            .journal(self.dir.path().join(format!("{name}.jsonl")))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
            .step(Step::new(Arc::new(self.alias()), Selector::Previous))
    }

    /// The distribution's invalidations, as (id, status).
    async fn invalidations(&self) -> Vec<(String, String)> {
        let client = aws_sdk_cloudfront::Client::new(self.aws.sdk_config().await);
        let list = client
            .list_invalidations()
            .distribution_id(&self.distribution)
            .send()
            .await
            .unwrap();
        list.invalidation_list()
            .unwrap()
            .items()
            .iter()
            .map(|i| (i.id().to_string(), i.status().to_string()))
            .collect()
    }

    async fn calls(&self) -> Value {
        self.emu.calls().await.unwrap()
    }
}

fn op(calls: &std::collections::BTreeMap<String, u64>, name: &str) -> u64 {
    calls.get(name).copied().unwrap_or(0)
}

fn action_records(journal: &Path) -> Vec<String> {
    read_journal(journal)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.entry {
            Entry::ActionIntent { name, when } => Some(format!("intent {when} {name}")),
            Entry::Action { ok, message, .. } => Some(format!("action {ok} {message}")),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn after_the_rollback_the_cache_is_invalidated_once_and_waited_until_completed() {
    let env = env(700).await;
    let before = env.calls().await;
    let report = env
        .tx("invalidate")
        .on_success(Arc::new(env.invalidation()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let g = gained(&before, &env.calls().await);
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(env.alias().current().await.unwrap().id, "1");

    let done = env.invalidations().await;
    assert_eq!(done.len(), 1, "{done:?}");
    let (id, status) = &done[0];
    assert_eq!(status, "Completed");
    let a = &report.on_success[0];
    assert!(a.ok, "{report}");
    assert_eq!(
        a.message,
        format!("invalidation {id} of 2 path(s) Completed")
    );
    // Preflight read the distribution once; one CreateInvalidation; GetInvalidation until
    // Completed: the first look (250 ms in) saw it InProgress, so at least two looks.
    assert_eq!(op(&g, "GetDistribution"), 1, "{g:?}");
    assert_eq!(op(&g, "CreateInvalidation"), 1, "{g:?}");
    let looks = op(&g, "GetInvalidation");
    assert!((2..=8).contains(&looks), "{g:?}");
    assert_eq!(op(&g, "UpdateAlias"), 1, "{g:?}");
    // Journaled: its intent, then its outcome with the invalidation id.
    let name = env.invalidation().name();
    assert_eq!(
        action_records(&env.dir.path().join("invalidate.jsonl")),
        [
            format!("intent on-success {name}"),
            format!("action true invalidation {id} of 2 path(s) Completed"),
        ]
    );
}

#[tokio::test]
async fn the_same_run_sending_it_again_gets_the_same_invalidation() {
    let env = env(0).await;
    let action = env.invalidation();
    let run = ActionRun::new("tx-1", ActionWhen::OnSuccess);
    let first = action.run_in(&run).await.unwrap();
    let again = action.run_in(&run).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(env.invalidations().await.len(), 1);
    // Another run (or other paths) is another invalidation.
    let other = ActionRun::new("tx-2", ActionWhen::OnSuccess);
    let second = action.run_in(&other).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(env.invalidations().await.len(), 2);
    assert_eq!(env.emu.call_count("CreateInvalidation").await.unwrap(), 3);
}

#[tokio::test]
async fn a_resume_of_a_run_stopped_during_the_wait_makes_no_second_invalidation() {
    let env = env(1500).await;
    let interrupt = Interrupt::new();
    let (b, mut events) = env
        .tx("stopped")
        .on_success(Arc::new(env.invalidation()))
        .interrupt(interrupt.clone())
        .events();
    let tx = b.build().unwrap();
    let journal = tx.journal_path().to_path_buf();
    // Stop the run once the invalidation has been asked for (its intent journaled, then
    // CreateInvalidation seen by CloudFront): the action is waiting for it to complete.
    let client = aws_sdk_cloudfront::Client::new(env.aws.sdk_config().await);
    let distribution = env.distribution.clone();
    let asker = tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if e.kind != EventKind::ActionStarted {
                continue;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let listed = client
                    .list_invalidations()
                    .distribution_id(&distribution)
                    .send()
                    .await
                    .unwrap();
                if listed.invalidation_list().unwrap().quantity() == 1 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no invalidation made"
                );
                tokio::task::yield_now().await;
            }
            interrupt.interrupt();
        }
    });
    let report = tx.run().await.unwrap();
    drop(tx);
    asker.await.unwrap();
    assert_eq!(report.outcome, Outcome::Interrupted, "{report}");
    let name = env.invalidation().name();
    assert_eq!(
        action_records(&journal),
        [format!("intent on-success {name}")],
        "its outcome is not journaled"
    );
    assert_eq!(env.emu.call_count("CreateInvalidation").await.unwrap(), 1);
    assert_eq!(env.invalidations().await[0].1, "InProgress");

    let mut registry = rollback_core::Registry::with_builtins();
    rollback_aws::register_with(&mut registry, env.aws.clone());
    // Not given again: the journal describes it, and the registry rebuilds it (what
    // `rollback resume` does).
    let opts = ResumeOptions {
        registry,
        ..Default::default()
    };
    let report = rollback_core::resume_with(&journal, opts).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert!(report.on_success[0].ok, "{report}");
    let done = env.invalidations().await;
    assert_eq!(
        done.len(),
        1,
        "one invalidation, whatever the resume sent: {done:?}"
    );
    assert_eq!(done[0].1, "Completed");
    assert_eq!(
        env.emu.call_count("CreateInvalidation").await.unwrap(),
        2,
        "sent again on resume, with the same CallerReference"
    );
}

#[tokio::test]
async fn a_wrong_distribution_is_refused_in_preflight_with_nothing_changed() {
    let env = env(0).await;
    let before = env.calls().await;
    let missing = CloudFrontInvalidation::new(&env.aws, "E0000000000000", ["/*"]).unwrap();
    for dry_run in [true, false] {
        let tx = env
            .tx(&format!("missing-{dry_run}"))
            .on_success(Arc::new(missing.clone()))
            .build()
            .unwrap();
        let err = if dry_run {
            tx.dry_run().await.unwrap_err()
        } else {
            tx.run().await.unwrap_err()
        };
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("E0000000000000") && text.contains("GetDistribution"),
            "{text}"
        );
    }
    let after = env.calls().await;
    assert_eq!(
        mutations_in(&after),
        mutations_in(&before),
        "nothing changed"
    );
    assert_eq!(op(&gained(&before, &after), "GetDistribution"), 2);
    assert_eq!(env.alias().current().await.unwrap().id, "2");

    // Bad ids and paths are refused before anything is sent.
    let refused = |d: &str, paths: Vec<String>| {
        CloudFrontInvalidation::new(&env.aws, d, paths)
            .unwrap_err()
            .to_string()
    };
    let one = |p: &str| vec![p.to_string()];
    assert!(refused("d111.cloudfront.net", one("/*")).contains("not a distribution id"));
    assert!(refused(&env.distribution, one("index.html")).contains("does not start with /"));
    assert!(refused(&env.distribution, vec![]).contains("no paths"));
    assert!(refused(&env.distribution, one("/a*/b")).contains("only as the last character"));
    let many: Vec<String> = (0..3001).map(|i| format!("/f{i}")).collect();
    assert!(refused(&env.distribution, many).contains("3000"));
    let wild: Vec<String> = (0..16).map(|i| format!("/d{i}/*")).collect();
    assert!(refused(&env.distribution, wild).contains("15"));
    assert_eq!(mutations_in(&env.calls().await), mutations_in(&before));
}

#[tokio::test]
async fn a_runbook_names_the_invalidation_under_on_success() {
    let env = env(0).await;
    // The emulator's settings, as a runbook would name another region or endpoint.
    let aws = serde_json::to_string(env.aws.config()).unwrap();
    let locks = env.dir.path().join("locks").display().to_string();
    let text = format!(
        r#"
name: storefront back
reason: release 2 serves 5xx
journal: runbook.jsonl
locks: {{kind: file, dir: "{locks}"}}
steps:
  - target: {{kind: lambda-alias, function: {FUNCTION}, alias: {ALIAS}, aws: {aws}}}
on_success:
  - cloudfront_invalidation: {{distribution: {}, paths: ["/*"], timeout: 2m, aws: {aws}}}
"#,
        env.distribution
    );
    let mut registry = rollback_core::Registry::with_builtins();
    rollback_aws::register_with(&mut registry, env.aws.clone());
    let runbook = Runbook::parse("rb.yaml", env.dir.path(), &text, &Vars::new()).unwrap();
    let report = runbook
        .build(&registry)
        .await
        .unwrap()
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(report.on_success.len(), 1, "{report}");
    assert!(report.on_success[0].ok, "{report}");
    assert_eq!(env.invalidations().await.len(), 1);

    // A bad path is a lint problem at its line.
    let bad = text.replace(r#"["/*"]"#, r#"["index.html"]"#);
    let err = Runbook::parse("rb.yaml", env.dir.path(), &bad, &Vars::new())
        .unwrap()
        .build(&registry)
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("rb.yaml:9") && shown.contains("does not start with /"),
        "{shown}"
    );
}

#[test]
fn debug_and_name_say_what_it_invalidates() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let aws = rt.block_on(
        rollback_aws::AwsConfig::from_env()
            .region("us-east-1")
            .load(),
    );
    let a = CloudFrontInvalidation::new(&aws, "E2QWRUHAPOMQZL", ["/*"])
        .unwrap()
        .timeout(Duration::from_secs(60));
    assert_eq!(a.name(), "invalidate CloudFront E2QWRUHAPOMQZL /*");
    let shown = format!("{a:?}");
    assert!(
        shown.contains("E2QWRUHAPOMQZL") && shown.contains("60s"),
        "{shown}"
    );
}
