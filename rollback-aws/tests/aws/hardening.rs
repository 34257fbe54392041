#![allow(clippy::unwrap_used)]
//! Issue 10 (hardening), the AWS side, through the real SDK: ARNs that name another
//! account, region, service or resource are refused with nothing sent; RDS names AWS would
//! refuse are refused first; backend errors read as one or two sentences without secrets;
//! someone else's change right after an apply fails the wait at once; a Lambda apply is one
//! call.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rollback_aws::{
    Aws, ConnectionHandover, EcsService, LambdaAlias, PipelineTransition, RdsInstance,
    SecretVersion,
};
use rollback_core::{
    ApplyOutcome, Error, ErrorKind, FileLocks, Progress, Revision, RollbackTarget, Selector, Step,
    Transaction,
};
use rollback_testkit::{count_in, mutations_in, AwsEmulator};
use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012";
const FUNCTION: &str = "orders-api";
const SECRET: &str = "prod/orders/jwt";
const CLUSTER: &str = "prod";
const DB_SECRET: &str = "prod/orders/db";

struct Env {
    emu: AwsEmulator,
    aws: Aws,
    baseline: Value,
    /// The secret's version ids, oldest first (the last one is AWSCURRENT).
    versions: Vec<String>,
    dir: tempfile::TempDir,
}

/// One emulator with a Lambda alias (versions 1..3, at 3), an ECS service (family `api`,
/// revisions 1..3, at 3), a secret (three versions), a pipeline and a DB instance.
async fn env() -> Env {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    let seeded = emu
        .seed(json!({
            "lambda": [{"function": FUNCTION, "alias": "live",
                        "versions": ["release 1", "release 2", "release 3"], "alias_version": "3"}],
            "ecs": [{"cluster": CLUSTER, "service": "api", "family": "api", "desired_count": 2,
                     "revisions": [{"image": "repo/api:1"}, {"image": "repo/api:2"}, {"image": "repo/api:3"}],
                     "current": 3}],
            "secrets": [{"name": SECRET, "values": ["one-value-1", "two-value-2", "three-value-3"]},
                        {"name": DB_SECRET, "values": ["postgres://app:pw-1234@old.db.internal:5432/orders"]}],
            "codepipeline": [{"name": "Orders", "stages": ["Source", "Deploy"]}],
            "rds": [{"db_instance_id": "orders-db", "engine": "postgres", "class": "db.t3.micro",
                     "port": 5432, "multi_az": false,
                     "snapshots": [{"id": "before-migration", "type": "manual", "created": "2025-12-28T14:30:00Z"}]}]
        }))
        .await
        .unwrap();
    let versions = seeded["secrets"][0]["version_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("{seeded}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let baseline = emu.calls().await.unwrap();
    Env {
        emu,
        aws,
        baseline,
        versions,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    /// Calls of `op` since seeding.
    async fn calls(&self, op: &str) -> u64 {
        count_in(&self.emu.calls().await.unwrap(), op) - count_in(&self.baseline, op)
    }

    /// Mutating calls since seeding.
    async fn mutations(&self) -> u64 {
        mutations_in(&self.emu.calls().await.unwrap()) - mutations_in(&self.baseline)
    }

    fn ecs(&self) -> EcsService {
        EcsService::new(&self.aws, CLUSTER, "api").unwrap()
    }

    fn lambda(&self) -> LambdaAlias {
        LambdaAlias::new(&self.aws, FUNCTION, "live").unwrap()
    }
}

#[track_caller]
fn assert_invalid(err: &Error, target: &str, says: &str) {
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let s = err.to_string();
    assert!(s.contains(target), "{s} does not name {target}");
    assert!(s.contains(says), "{s} does not say {says:?}");
}

#[tokio::test]
async fn ecs_task_definition_arns_must_be_the_services_own() {
    let e = env().await;
    let ecs = e.ecs();
    let own = format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/api:1");
    assert_eq!(
        ecs.resolve(&Selector::exact(&own)).await.unwrap().id,
        "api:1"
    );
    let cases = [
        (
            "arn:aws:ecs:us-east-1:111111111111:task-definition/api:1".to_string(),
            format!("task definition ARN is in account 111111111111 but the service is in {ACCOUNT}; give `family:N`, N, or this account's"),
        ),
        (
            format!("arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/api:1"),
            "region eu-west-1 but the service is in us-east-1".to_string(),
        ),
        (
            format!("arn:aws-cn:ecs:us-east-1:{ACCOUNT}:task-definition/api:1"),
            "partition aws-cn".to_string(),
        ),
        (
            format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}:1"),
            "service \"lambda\"".to_string(),
        ),
        (
            format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/other:1"),
            "family other but the service runs family api".to_string(),
        ),
        (
            format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/{CLUSTER}/api"),
            "\"task-definition/\"".to_string(),
        ),
        ("other:2".to_string(), "family other".to_string()),
        ("arn:aws:ecs".to_string(), "not a valid ARN".to_string()),
    ];
    for (id, says) in &cases {
        let err = ecs.resolve(&Selector::exact(id)).await.unwrap_err();
        assert_invalid(&err, "ecs-service/prod/api", says);
    }
    // A revision made by hand gets the same check in plan.
    let err = ecs.plan(&Revision::new(&cases[0].0)).await.unwrap_err();
    assert_invalid(&err, "ecs-service/prod/api", "account 111111111111");
    // Through a transaction: refused in preflight.
    let err = Transaction::builder("foreign-arn")
        .reason("test: a task definition ARN of another account")
        .journal(e.dir.path().join("foreign.jsonl"))
        .locks(Arc::new(FileLocks::new(e.dir.path().join("locks"))))
        .step(Step::new(
            Arc::new(ecs.clone()) as Arc<dyn RollbackTarget>,
            Selector::exact(&cases[0].0),
        ))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_invalid(&err, "ecs-service/prod/api", "account 111111111111");
    assert_eq!(e.mutations().await, 0, "nothing sent");
    assert_eq!(ecs.current().await.unwrap().id, "api:3");
}

#[tokio::test]
async fn lambda_secret_rds_and_handover_arns_are_checked_too() {
    let e = env().await;
    let t = "lambda-alias/orders-api:live";
    let lambda = e.lambda();
    let own = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}:2");
    assert_eq!(
        lambda.resolve(&Selector::exact(&own)).await.unwrap().id,
        "2"
    );
    for (id, says) in [
        (
            format!("arn:aws:lambda:us-east-1:111111111111:function:{FUNCTION}:2"),
            "account 111111111111 but the function is in 123456789012",
        ),
        (
            format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{FUNCTION}:2"),
            "region eu-west-1",
        ),
        (
            format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:billing-api:2"),
            "version of function billing-api, not of orders-api",
        ),
        (
            format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}:live"),
            "not a published version number",
        ),
        (
            format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}"),
            "without a version",
        ),
        (
            format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/api:2"),
            "service \"ecs\"",
        ),
    ] {
        let err = lambda.resolve(&Selector::exact(&id)).await.unwrap_err();
        assert_invalid(&err, t, says);
    }
    let arn_fn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}");
    assert_eq!(
        LambdaAlias::new(&e.aws, &arn_fn, "live")
            .unwrap()
            .current()
            .await
            .unwrap()
            .id,
        "3"
    );
    let err = LambdaAlias::new(&e.aws, format!("{arn_fn}:live"), "live").unwrap_err();
    assert_invalid(&err, "lambda-alias/", "carries a qualifier");
    let west = format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{FUNCTION}");
    let err = LambdaAlias::new(&e.aws, west, "live").unwrap_err();
    assert_invalid(
        &err,
        "lambda-alias/",
        "region eu-west-1 but the client is configured for us-east-1",
    );

    // Secrets: a version is a version id, never an ARN; the secret's own ARN must be one.
    let secret = SecretVersion::new(&e.aws, SECRET).unwrap();
    let secret_arn = format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{SECRET}-AbCdEf");
    let err = secret
        .resolve(&Selector::exact(&secret_arn))
        .await
        .unwrap_err();
    assert_invalid(&err, "secret-version/prod/orders/jwt", "not a version id");
    let err = SecretVersion::new(&e.aws, &own).unwrap_err();
    assert_invalid(&err, "secret-version/", "service \"lambda\"");
    let err = SecretVersion::new(
        &e.aws,
        format!("arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:x-AbCdEf"),
    )
    .unwrap_err();
    assert_invalid(&err, "secret-version/", "region eu-west-1");

    // RDS: snapshot ARNs of this instance's account and region only.
    let rds = RdsInstance::new(&e.aws, "orders-db").unwrap();
    let snap = |acct: &str, res: &str| format!("arn:aws:rds:us-east-1:{acct}:{res}");
    assert_eq!(
        rds.resolve(&Selector::exact(snap(ACCOUNT, "snapshot:before-migration")))
            .await
            .unwrap()
            .id,
        "before-migration"
    );
    for (id, says) in [
        (
            snap("111111111111", "snapshot:before-migration"),
            "account 111111111111 but the instance is in 123456789012",
        ),
        (
            snap(ACCOUNT, "cluster-snapshot:before-migration"),
            "\"snapshot:\"",
        ),
        (own.clone(), "service \"lambda\""),
    ] {
        let err = rds.resolve(&Selector::exact(&id)).await.unwrap_err();
        assert_invalid(&err, "rds-instance/orders-db", says);
    }
    let foreign = snap("111111111111", "snapshot:before-migration");
    let err = rds.plan(&Revision::new(&foreign)).await.unwrap_err();
    assert_invalid(&err, "rds-instance/orders-db", "account 111111111111");
    // The handover's instance and secret.
    let err = ConnectionHandover::new(&e.aws, SECRET, snap(ACCOUNT, "snapshot:before-migration"))
        .unwrap_err();
    assert_invalid(&err, "connection-handover/", "\"db:\"");
    let err = ConnectionHandover::new(&e.aws, &own, "orders-db-rollback").unwrap_err();
    assert_invalid(&err, "connection-handover/", "service \"lambda\"");
    assert_eq!(e.mutations().await, 0, "nothing sent");
}

#[test]
fn restore_names_that_rds_refuses_are_refused_up_front() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Nothing listens here: nothing may be sent.
    let aws = Aws::from_sdk_config(
        &rt.block_on(rollback_testkit::emulator_sdk_config("http://127.0.0.1:9")),
    );
    let rules = "1 to 63 ASCII letters, digits and hyphens, start with a letter";
    let long = "a".repeat(64);
    for (name, says) in [
        ("orders_db_restore", "contains '_'"),
        (long.as_str(), "is 64 characters long"),
        ("1-orders", "does not start with a letter"),
        ("orders-", "ends with a hyphen"),
        ("orders--restore", "two consecutive hyphens"),
        ("orders.restore", "contains '.'"),
    ] {
        let err = RdsInstance::new(&aws, "orders-db")
            .unwrap()
            .restore_as(name)
            .unwrap_err();
        assert_invalid(&err, "rds-instance/orders-db", says);
        assert!(err.to_string().contains(rules), "{err}");
    }
    assert!(RdsInstance::new(&aws, "orders-db")
        .unwrap()
        .restore_as("orders-db-restore-1")
        .is_ok());
    // The default name of a long instance name fits the rules too.
    let name = format!("o{}", "r".repeat(62));
    let t = RdsInstance::new(&aws, &name).unwrap();
    assert!(
        t.restore_identifier().len() <= 63,
        "{}",
        t.restore_identifier()
    );
    assert!(RdsInstance::new(&aws, &name)
        .unwrap()
        .restore_as(t.restore_identifier())
        .is_ok());
}

/// A one-answer HTTP server: every request gets `status` with `body`. Returns its URL.
fn serve(status: u16, content_type: &str, body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = format!(
        "HTTP/1.1 {status} Whatever\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            read_request(&mut s);
            let _ = s.write_all(answer.as_bytes());
        }
    });
    url
}

/// Reads one request (headers, then `content-length` bytes of body).
fn read_request(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
}

/// The error of `GetAlias` (through `LambdaAlias::current`) against a server answering so.
async fn lambda_error(status: u16, content_type: &str, body: String) -> Error {
    let aws = Aws::from_sdk_config(
        &rollback_testkit::emulator_sdk_config(serve(status, content_type, body)).await,
    );
    LambdaAlias::new(&aws, FUNCTION, "live")
        .unwrap()
        .current()
        .await
        .unwrap_err()
}

#[track_caller]
fn assert_readable(err: &Error, says: &[&str], secret: &str) {
    let s = err.to_string();
    eprintln!("{s}");
    assert!(s.chars().count() <= 400, "{} chars: {s}", s.chars().count());
    for w in says {
        assert!(s.contains(w), "{s} does not say {w:?}");
    }
    for internal in [
        "<html",
        "SdkError",
        "Unhandled",
        "headers",
        "HttpResponse",
        secret,
    ] {
        assert!(!s.contains(internal), "{s} shows {internal:?}");
    }
}

#[tokio::test]
async fn backend_errors_are_one_or_two_sentences_without_secrets() {
    const SECRET_VALUE: &str = "hunter2-s3cret-value";
    let filler = "at com.example.Gateway.handle(Gateway.java:42) ".repeat(40);
    let html = format!(
        "<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1><p>upstream failed</p><pre>{filler}</pre></body></html>"
    );
    let err = lambda_error(500, "text/html", html).await;
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.is_retryable(), "{err}");
    assert_readable(
        &err,
        &["GetAlias", "HTTP 500", "Internal Server Error", "retried"],
        SECRET_VALUE,
    );
    let source = std::error::Error::source(&err).expect("the SDK error is the source");
    assert!(!source.to_string().is_empty());

    // An unknown error code whose message echoes a secret.
    let body = json!({"__type": "WeirdGatewayException",
                      "message": format!("cannot use {{\"password\": \"{SECRET_VALUE}\"}} here")})
    .to_string();
    let err = lambda_error(400, "application/json", body).await;
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(!err.is_retryable(), "{err}");
    assert_readable(
        &err,
        &[
            "GetAlias",
            "HTTP 400",
            "WeirdGatewayException",
            "cannot use",
        ],
        SECRET_VALUE,
    );
    assert!(std::error::Error::source(&err).is_some());

    // A validation error echoing a secret: invalid input, still without the secret.
    let body = json!({"__type": "ValidationException",
                      "message": format!("1 validation error: token={SECRET_VALUE}")})
    .to_string();
    let err = lambda_error(400, "application/json", body).await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_readable(
        &err,
        &["GetAlias", "HTTP 400", "ValidationException"],
        SECRET_VALUE,
    );

    // A 200 the SDK cannot parse.
    let err = lambda_error(
        200,
        "application/json",
        format!("{{{{{{ not json at all token={SECRET_VALUE}"),
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert_readable(
        &err,
        &["GetAlias", "HTTP 200", "check that the endpoint is AWS"],
        SECRET_VALUE,
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn rds_invalid_parameter_value_is_invalid_input() {
    let body = "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>The parameter DBInstanceIdentifier is not a valid identifier.</Message></Error><RequestId>5f1c</RequestId></ErrorResponse>";
    let aws = Aws::from_sdk_config(
        &rollback_testkit::emulator_sdk_config(serve(400, "text/xml", body.to_string())).await,
    );
    let err = RdsInstance::new(&aws, "orders-db")
        .unwrap()
        .current()
        .await
        .unwrap_err();
    assert_readable(
        &err,
        &[
            "DescribeDBInstances",
            "HTTP 400",
            "InvalidParameterValue: The parameter DBInstanceIdentifier is not a valid identifier",
        ],
        "hunter2",
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// Not found, conflict and throttled errors made from an SDK error keep it as their
/// `source()` (the message stays one sentence; AWS's full answer is one step away).
#[tokio::test]
async fn not_found_conflict_and_throttled_keep_the_sdk_error_as_source() {
    let e = env().await;
    // Throttled: the emulator answers GetAlias with its throttling error.
    e.emu.inject("GetAlias", "throttle", 1, 0).await.unwrap();
    let err = e.lambda().current().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
    assert!(std::error::Error::source(&err).is_some(), "{err}");
    // Not found: an alias the emulator does not have.
    let err = LambdaAlias::new(&e.aws, FUNCTION, "no-such-alias")
        .unwrap()
        .current()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(std::error::Error::source(&err).is_some(), "{err}");
    // Conflict: Lambda's 412 for a RevisionId that moved.
    let body = json!({"__type": "PreconditionFailedException",
                      "message": "The Revision Id provided does not match the latest Revision Id."})
    .to_string();
    let err = lambda_error(412, "application/json", body).await;
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let source = std::error::Error::source(&err).expect("the SDK error is the source");
    assert!(!source.to_string().is_empty());
    // And the same for a throttling answer that is not the emulator's.
    let body =
        json!({"__type": "TooManyRequestsException", "message": "Rate exceeded"}).to_string();
    let err = lambda_error(429, "application/json", body).await;
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
    assert!(std::error::Error::source(&err).is_some(), "{err}");
}

/// A wait that sees someone else's change must fail at the first look.
async fn wait_fails_at_once(e: &Env, target: &dyn RollbackTarget, to: &Revision, op: &str) {
    let before = e.calls(op).await;
    let err = target
        .wait_stable(to, Duration::from_secs(600), &Progress::none())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RolloutFailed, "{err}");
    assert!(err.to_string().contains("someone else changed"), "{err}");
    assert_eq!(e.calls(op).await - before, 1, "{op} polls: {err}");
}

#[tokio::test]
async fn lambda_apply_is_one_call_and_a_concurrent_move_fails_the_wait_at_once() {
    let e = env().await;
    let t = e.lambda();
    let to = t.resolve(&Selector::Previous).await.unwrap();
    let change = t.plan(&to).await.unwrap();
    let ops = ["GetAlias", "GetFunctionConfiguration", "UpdateAlias"];
    let mut before = Vec::new();
    for op in ops {
        before.push(e.calls(op).await);
    }
    assert_eq!(t.apply(&change).await.unwrap(), ApplyOutcome::Applied);
    let mut used = Vec::new();
    for (op, b) in ops.iter().zip(&before) {
        used.push(e.calls(op).await - b);
    }
    assert_eq!(used, [0, 0, 1], "calls of {ops:?} per apply");
    // Applying it again (a retry after a lost answer, a resume): the stale RevisionId is
    // refused, one read tells it is already there.
    assert_eq!(
        t.apply(&change).await.unwrap(),
        ApplyOutcome::AlreadyCurrent
    );
    assert_eq!(e.calls("UpdateAlias").await - before[2], 2);
    assert_eq!(e.calls("GetAlias").await - before[0], 1);

    // Someone else moves the alias before our wait.
    let other = aws_sdk_lambda::Client::new(e.aws.sdk_config().await);
    other
        .update_alias()
        .function_name(FUNCTION)
        .name("live")
        .function_version("1")
        .send()
        .await
        .unwrap();
    wait_fails_at_once(&e, &t, &change.to, "GetAlias").await;
}

#[tokio::test]
async fn every_other_target_fails_its_wait_at_once_after_a_concurrent_change() {
    let e = env().await;
    // ECS service (it already did; kept under test).
    let ecs = e.ecs();
    let change = ecs
        .plan(&ecs.resolve(&Selector::Previous).await.unwrap())
        .await
        .unwrap();
    ecs.apply(&change).await.unwrap();
    let other = aws_sdk_ecs::Client::new(e.aws.sdk_config().await);
    other
        .update_service()
        .cluster(CLUSTER)
        .service("api")
        .task_definition("api:1")
        .send()
        .await
        .unwrap();
    wait_fails_at_once(&e, &ecs, &change.to, "DescribeServices").await;

    // ECS desired count.
    let count = ecs.desired_count();
    let change = count
        .plan(&count.resolve(&Selector::exact("1")).await.unwrap())
        .await
        .unwrap();
    count.apply(&change).await.unwrap();
    other
        .update_service()
        .cluster(CLUSTER)
        .service("api")
        .desired_count(3)
        .send()
        .await
        .unwrap();
    wait_fails_at_once(&e, &count, &change.to, "DescribeServices").await;

    // Secret version: AWSCURRENT moved elsewhere.
    let secret = SecretVersion::new(&e.aws, SECRET).unwrap();
    let change = secret
        .plan(&secret.resolve(&Selector::Previous).await.unwrap())
        .await
        .unwrap();
    assert_eq!(change.to.id, e.versions[1]);
    secret.apply(&change).await.unwrap();
    aws_sdk_secretsmanager::Client::new(e.aws.sdk_config().await)
        .update_secret_version_stage()
        .secret_id(SECRET)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&e.versions[0])
        .remove_from_version_id(&e.versions[1])
        .send()
        .await
        .unwrap();
    wait_fails_at_once(&e, &secret, &change.to, "ListSecretVersionIds").await;

    // Pipeline transition: enabled again by someone else.
    let freeze = PipelineTransition::new(&e.aws, "Orders", "Deploy").unwrap();
    let change = freeze
        .plan(&freeze.resolve(&Selector::exact("disabled")).await.unwrap())
        .await
        .unwrap();
    freeze.apply(&change).await.unwrap();
    aws_sdk_codepipeline::Client::new(e.aws.sdk_config().await)
        .enable_stage_transition()
        .pipeline_name("Orders")
        .stage_name("Deploy")
        .transition_type(aws_sdk_codepipeline::types::StageTransitionType::Inbound)
        .send()
        .await
        .unwrap();
    wait_fails_at_once(&e, &freeze, &change.to, "GetPipelineState").await;

    // Connection handover: someone writes another value right after ours.
    let handover = ConnectionHandover::new(&e.aws, DB_SECRET, "orders-db").unwrap();
    let change = handover
        .plan(
            &handover
                .resolve(&Selector::exact(handover.revision_id()))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        handover.apply(&change).await.unwrap(),
        ApplyOutcome::Applied
    );
    aws_sdk_secretsmanager::Client::new(e.aws.sdk_config().await)
        .put_secret_value()
        .secret_id(DB_SECRET)
        .secret_string("postgres://app:pw-1234@elsewhere.internal:5432/orders")
        .send()
        .await
        .unwrap();
    wait_fails_at_once(&e, &handover, &change.to, "ListSecretVersionIds").await;
}

#[tokio::test]
async fn an_unreachable_endpoint_is_one_short_retryable_sentence() {
    // A port nobody listens on: the connection is refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let aws = Aws::from_sdk_config(
        &rollback_testkit::emulator_sdk_config(format!("http://127.0.0.1:{port}")).await,
    );
    let err = LambdaAlias::new(&aws, FUNCTION, "live")
        .unwrap()
        .current()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.is_retryable(), "{err}");
    assert_readable(
        &err,
        &["GetAlias: could not reach AWS", "retried"],
        "hunter2",
    );
    assert!(std::error::Error::source(&err).is_some());
}
