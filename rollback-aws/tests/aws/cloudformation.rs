//! `CloudFormationStack` through the real aws-sdk-rust against the emulator (runbook 003
//! step 3): a stack rolled back to the previous version of its template artifact, an update
//! that CloudFormation rolls back (failed with the events, compensated), bad input refused
//! in preflight with nothing changed.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use rollback_aws::{Aws, CloudFormationStack};
use rollback_core::{ErrorKind, FileLocks, Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_testkit::{gained, mutations_in, AwsEmulator};
use serde_json::{json, Value};

const STACK: &str = "apgms-staging";
const BUCKET: &str = "apgms-templates";
const KEY: &str = "staging/template.json";
const LOCATION: &str = "s3://apgms-templates/staging/template.json";

fn template(timeout: u32) -> Value {
    json!({
        "Parameters": {"Stage": {"Type": "String", "Default": "staging"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": timeout}}}
    })
}

struct Env {
    emu: AwsEmulator,
    aws: Aws,
    versions: Vec<String>,
    dir: tempfile::TempDir,
}

async fn env(versioned: bool) -> Env {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    let seeded = emu
        .seed(json!({"cloudformation": [{
            "stack": STACK, "bucket": BUCKET, "key": KEY, "versioned": versioned,
            "templates": [template(30), template(60)], "parameters": {"Stage": "staging"}
        }]}))
        .await
        .unwrap();
    let versions = seeded["cloudformation"][0]["version_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    Env {
        emu,
        aws,
        versions,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    fn stack(&self) -> CloudFormationStack {
        CloudFormationStack::new(&self.aws, STACK, LOCATION).unwrap()
    }

    async fn run(&self, name: &str, selector: Selector) -> rollback_core::Report {
        Transaction::builder(name)
            .reason("the new template broke the queue")
            .journal(self.dir.path().join(format!("{name}.jsonl")))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
            .step(Step::new(Arc::new(self.stack()), selector))
            .build()
            .unwrap()
            .run()
            .await
            .unwrap()
    }

    async fn live_timeout(&self) -> String {
        let client = aws_sdk_cloudformation::Client::new(self.aws.sdk_config().await);
        let out = client
            .get_template()
            .stack_name(STACK)
            .send()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(out.template_body().unwrap()).unwrap();
        v["Resources"]["Queue"]["Properties"]["VisibilityTimeout"].to_string()
    }

    async fn status(&self) -> String {
        let client = aws_sdk_cloudformation::Client::new(self.aws.sdk_config().await);
        let out = client
            .describe_stacks()
            .stack_name(STACK)
            .send()
            .await
            .unwrap();
        out.stacks()[0].stack_status().unwrap().as_str().to_string()
    }
}

#[tokio::test]
async fn rolls_back_to_the_previous_template_version() {
    let env = env(true).await;
    let stack = env.stack();
    let before = env.emu.calls().await.unwrap();
    let change = stack.prepare(&Selector::Previous).await.unwrap();
    let after = env.emu.calls().await.unwrap();
    assert_eq!(change.from.id, env.versions[1]);
    assert_eq!(change.to.id, env.versions[0]);
    let text = change.to_string();
    assert!(
        text.contains("\"VisibilityTimeout\": 60") && text.contains("\"VisibilityTimeout\": 30"),
        "{text}"
    );
    // Preflight: DescribeStacks, GetTemplate, GetBucketVersioning, ListObjectVersions, and
    // GetObject of the newest version (it matches) and of the previous one.
    let g = gained(&before, &after);
    assert_eq!(g.values().sum::<u64>(), 6, "{g:?}");
    assert_eq!(mutations_in(&after), mutations_in(&before));

    let report = env.run("cfn-previous", Selector::Previous).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(env.status().await, "UPDATE_COMPLETE");
    assert_eq!(env.live_timeout().await, "30");
    assert_eq!(stack.current().await.unwrap().id, env.versions[0]);
    assert_eq!(env.emu.call_count("UpdateStack").await.unwrap(), 1);
}

#[tokio::test]
async fn an_update_cloudformation_rolls_back_fails_with_the_events_and_is_compensated() {
    let env = env(true).await;
    env.emu
        .control(
            "POST",
            "cloudformation/fail",
            Some(json!({"stack": STACK, "resource": "Queue", "reason": "VisibilityTimeout is out of range"})),
        )
        .await
        .unwrap();
    let report = env.run("cfn-fails", Selector::Previous).await;
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let error = report.error.as_ref().unwrap().message.clone();
    assert!(error.contains("UPDATE_ROLLBACK_COMPLETE"), "{error}");
    assert!(
        error.contains("Queue (AWS::SQS::Queue) UPDATE_FAILED: VisibilityTimeout is out of range"),
        "{error}"
    );
    assert_eq!(env.live_timeout().await, "60");
    // One update (the one that failed); compensation found the stack back and sent none.
    assert_eq!(env.emu.call_count("UpdateStack").await.unwrap(), 1);
}

#[tokio::test]
async fn bad_input_is_refused_in_preflight_and_nothing_changes() {
    let env = env(true).await;
    let bad_url =
        CloudFormationStack::new(&env.aws, STACK, "https://apgms-templates/t.json").unwrap_err();
    assert_eq!(bad_url.kind(), ErrorKind::InvalidInput);
    assert!(bad_url.to_string().contains("s3://BUCKET/KEY"), "{bad_url}");
    assert!(env.stack().capabilities(["CAPABILITY_EVERYTHING"]).is_err());

    let unknown = CloudFormationStack::new(&env.aws, "no-such-stack", LOCATION).unwrap();
    let e = unknown.prepare(&Selector::Previous).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    let e = env
        .stack()
        .prepare(&Selector::exact("no-such-version"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    env.emu
        .control(
            "POST",
            "cloudformation/status",
            Some(json!({"stack": STACK, "status": "UPDATE_IN_PROGRESS"})),
        )
        .await
        .unwrap();
    let e = env.stack().prepare(&Selector::Previous).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("UPDATE_IN_PROGRESS"), "{e}");
    assert_eq!(mutations_in(&env.emu.calls().await.unwrap()), 0);
}

#[tokio::test]
async fn an_unversioned_bucket_is_refused() {
    let env = env(false).await;
    let e = env.stack().prepare(&Selector::Previous).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("not versioned"), "{e}");
    assert_eq!(mutations_in(&env.emu.calls().await.unwrap()), 0);
}
