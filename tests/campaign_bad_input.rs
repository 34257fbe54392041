//! Bad-input campaign: a table of wrong inputs across every target kind (Lambda, ECS,
//! Secrets, RDS, handover, desired count, pipeline transition, Kubernetes workloads and
//! recovery targets), selectors, checks and transaction options, through the real clients
//! against the AWS emulator and the Kubernetes API simulator. Each must be refused with its
//! typed error (`ErrorKind`), a message naming the target, and nothing changed: zero
//! mutating calls at the emulator and zero writes at the simulator, by `dry_run()` and by
//! `run()` alike (or by the constructor, before there is a transaction).
#![allow(clippy::unwrap_used)]

#[path = "campaign/mod.rs"]
mod campaign;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use campaign::Trio;
use k8s_openapi::api::apps::v1 as apps;
use kube::api::{Api, PostParams};
use rollback_aws::{
    Aws, ConnectionHandover, EcsDesiredCount, EcsService, LambdaAlias, PipelineTransition,
    RdsInstance, SecretVersion,
};
use rollback_core::verify::{CommandCheck, HttpCheck};
use rollback_core::{
    Check, ErrorKind, FileLocks, Policy, Result, RollbackTarget, Selector, Step, Transaction,
    TransactionBuilder,
};
use rollback_k8s::{DaemonSet, Deployment, K8s, PodsReady, StatefulSet};
use rollback_testkit::k8s::K8sSimulator;
use rollback_testkit::{mutations_in, AwsEmulator};
use serde_json::json;

const DB: &str = "campaign-db";
const SNAPSHOT: &str = "campaign-db-before";
const CONN: &str = "campaign/db-url";
const PIPELINE: &str = "campaign-pipe";
const NS: &str = "production";

struct Env {
    emu: AwsEmulator,
    sim: K8sSimulator,
    aws: Aws,
    k8s: K8s,
    trio: Trio,
    /// A second trio whose alias the check and option cases use.
    other: Trio,
    dir: tempfile::TempDir,
    n: AtomicUsize,
}

impl Env {
    fn builder(&self, name: &str) -> TransactionBuilder {
        let n = self.n.fetch_add(1, Ordering::SeqCst);
        Transaction::builder(name)
            .reason("bad-input campaign")
            .journal(self.dir.path().join(format!("{n}.jsonl")))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
    }

    fn tx(&self, step: Step) -> Result<Transaction> {
        self.builder("bad input").step(step).build()
    }

    fn one(&self, t: impl RollbackTarget + 'static, selector: Selector) -> Result<Transaction> {
        self.tx(Step::new(Arc::new(t), selector).timeout(Duration::from_secs(30)))
    }

    fn alias(&self, function: &str) -> Result<LambdaAlias> {
        LambdaAlias::new(&self.aws, function, "live")
    }

    fn svc(&self, service: &str) -> Result<EcsService> {
        EcsService::new(&self.aws, campaign::CLUSTER, service)
    }

    /// A step on the second trio's alias (a target that is fine) with `check`, tried once
    /// (so a check wrongly accepted fails in one attempt, not after the default ten).
    fn checked(&self, mut check: Check) -> Result<Transaction> {
        if check.policy == Policy::default() {
            check = check.policy(Policy::once());
        }
        let t = self.alias(&self.other.function)?;
        self.tx(Step::new(Arc::new(t), Selector::Previous).verify(check))
    }

    fn deployment(&self, name: &str) -> Result<Deployment> {
        Deployment::new(&self.k8s, NS, name)
    }
}

type Make = Box<dyn Fn(&Env) -> Result<Transaction>>;

/// One row: what is wrong, the error expected, what the message must name.
struct Case {
    what: &'static str,
    kind: ErrorKind,
    names: String,
    /// A dry run accepts it (a missing reason): only the real run must refuse.
    run_only: bool,
    make: Make,
}

fn case(
    what: &'static str,
    kind: ErrorKind,
    names: impl Into<String>,
    make: impl Fn(&Env) -> Result<Transaction> + 'static,
) -> Case {
    Case {
        what,
        kind,
        names: names.into(),
        run_only: false,
        make: Box::new(make),
    }
}

fn cases(e: &Env) -> Vec<Case> {
    use ErrorKind::{InvalidInput, Journal, NotFound};
    let f = e.trio.function.clone();
    let fa = format!("{f}:live");
    let svc = e.trio.service.clone();
    let fam = e.trio.family.clone();
    let secret = e.trio.secret.clone();
    let sv = e.trio.secret_versions.clone();
    let other = format!("{}:live", e.other.function);
    let long = "a".repeat(64);
    let mut v = vec![
        // -- Lambda alias
        case(
            "lambda: empty function name",
            InvalidInput,
            "lambda-alias",
            |e| e.one(e.alias("")?, Selector::Previous),
        ),
        case(
            "lambda: function name with a space",
            InvalidInput,
            "my fn",
            |e| e.one(e.alias("my fn")?, Selector::Previous),
        ),
        case("lambda: empty alias name", InvalidInput, f.clone(), {
            let f = f.clone();
            move |e| e.one(LambdaAlias::new(&e.aws, &f, "")?, Selector::Previous)
        }),
        case(
            "lambda: no such function",
            NotFound,
            "campaign-no-such-fn",
            |e| e.one(e.alias("campaign-no-such-fn")?, Selector::Previous),
        ),
        case("lambda: no such alias", NotFound, format!("{f}:nope"), {
            let f = f.clone();
            move |e| e.one(LambdaAlias::new(&e.aws, &f, "nope")?, Selector::Previous)
        }),
        case(
            "lambda: Exact version that does not exist",
            NotFound,
            fa.clone(),
            {
                let f = f.clone();
                move |e| e.one(e.alias(&f)?, Selector::exact("99"))
            },
        ),
        case(
            // Refused as input, before any version is looked for: $LATEST is never one.
            "lambda: Exact $LATEST (not a published version)",
            InvalidInput,
            fa.clone(),
            {
                let f = f.clone();
                move |e| e.one(e.alias(&f)?, Selector::exact("$LATEST"))
            },
        ),
        case(
            "lambda: Exact the current version",
            InvalidInput,
            fa.clone(),
            {
                let f = f.clone();
                move |e| e.one(e.alias(&f)?, Selector::exact("3"))
            },
        ),
        case("lambda: StepsBack(0)", InvalidInput, fa.clone(), {
            let f = f.clone();
            move |e| e.one(e.alias(&f)?, Selector::StepsBack(0))
        }),
        case(
            "lambda: StepsBack past the oldest version",
            NotFound,
            fa.clone(),
            {
                let f = f.clone();
                move |e| e.one(e.alias(&f)?, Selector::StepsBack(9))
            },
        ),
        case(
            "lambda: ImageTag no version carries",
            NotFound,
            fa.clone(),
            {
                let f = f.clone();
                move |e| e.one(e.alias(&f)?, Selector::image_tag("no-such-tag"))
            },
        ),
        case(
            "lambda: Exact a version ARN of another account",
            InvalidInput,
            fa.clone(),
            {
                let f = f.clone();
                move |e| {
                    e.one(
                        e.alias(&f)?,
                        Selector::exact(format!(
                            "arn:aws:lambda:us-east-1:111111111111:function:{f}:1"
                        )),
                    )
                }
            },
        ),
        case(
            "lambda: Exact a version ARN of another function",
            InvalidInput,
            fa.clone(),
            {
                let f = f.clone();
                move |e| {
                    e.one(
                        e.alias(&f)?,
                        Selector::exact(
                            "arn:aws:lambda:us-east-1:123456789012:function:someone-else:1",
                        ),
                    )
                }
            },
        ),
        // -- ECS service
        case(
            "ecs: empty service name",
            InvalidInput,
            "ecs-service",
            |e| e.one(e.svc("")?, Selector::Previous),
        ),
        case("ecs: empty cluster name", InvalidInput, "ecs-service", {
            let svc = svc.clone();
            move |e| e.one(EcsService::new(&e.aws, "", &svc)?, Selector::Previous)
        }),
        case("ecs: no such cluster", NotFound, "campaign-no-cluster", {
            let svc = svc.clone();
            move |e| {
                e.one(
                    EcsService::new(&e.aws, "campaign-no-cluster", &svc)?,
                    Selector::Previous,
                )
            }
        }),
        case("ecs: no such service", NotFound, "campaign-no-svc", |e| {
            e.one(e.svc("campaign-no-svc")?, Selector::Previous)
        }),
        case(
            "ecs: Exact revision that does not exist",
            NotFound,
            svc.clone(),
            {
                let (svc, fam) = (svc.clone(), fam.clone());
                move |e| e.one(e.svc(&svc)?, Selector::exact(format!("{fam}:99")))
            },
        ),
        case(
            "ecs: Exact a revision of another family",
            InvalidInput,
            svc.clone(),
            {
                let svc = svc.clone();
                move |e| e.one(e.svc(&svc)?, Selector::exact("someone-elses-family:1"))
            },
        ),
        case(
            "ecs: Exact the current revision",
            InvalidInput,
            svc.clone(),
            {
                let (svc, fam) = (svc.clone(), fam.clone());
                move |e| e.one(e.svc(&svc)?, Selector::exact(format!("{fam}:3")))
            },
        ),
        case("ecs: Exact revision 0", NotFound, svc.clone(), {
            let (svc, fam) = (svc.clone(), fam.clone());
            move |e| e.one(e.svc(&svc)?, Selector::exact(format!("{fam}:0")))
        }),
        case(
            "ecs: Exact a task definition ARN of another account",
            InvalidInput,
            svc.clone(),
            {
                let (svc, fam) = (svc.clone(), fam.clone());
                move |e| {
                    e.one(
                        e.svc(&svc)?,
                        Selector::exact(format!(
                            "arn:aws:ecs:us-east-1:111111111111:task-definition/{fam}:1"
                        )),
                    )
                }
            },
        ),
        case(
            "ecs: Exact a task definition ARN of another region",
            InvalidInput,
            svc.clone(),
            {
                let (svc, fam) = (svc.clone(), fam.clone());
                move |e| {
                    e.one(
                        e.svc(&svc)?,
                        Selector::exact(format!(
                            "arn:aws:ecs:eu-west-1:123456789012:task-definition/{fam}:1"
                        )),
                    )
                }
            },
        ),
        case("ecs: Exact a Lambda ARN", InvalidInput, svc.clone(), {
            let svc = svc.clone();
            move |e| {
                e.one(
                    e.svc(&svc)?,
                    Selector::exact("arn:aws:lambda:us-east-1:123456789012:function:f:1"),
                )
            }
        }),
        case(
            "ecs: ImageTag no revision carries",
            NotFound,
            svc.clone(),
            {
                let svc = svc.clone();
                move |e| e.one(e.svc(&svc)?, Selector::image_tag("no-such-tag"))
            },
        ),
        // -- Secrets Manager
        case("secret: empty name", InvalidInput, "secret-version", |e| {
            e.one(SecretVersion::new(&e.aws, "")?, Selector::Previous)
        }),
        case(
            "secret: no such secret",
            NotFound,
            "campaign/no-such-secret",
            |e| {
                e.one(
                    SecretVersion::new(&e.aws, "campaign/no-such-secret")?,
                    Selector::Previous,
                )
            },
        ),
        case(
            "secret: Exact version id that does not exist",
            NotFound,
            secret.clone(),
            {
                let secret = secret.clone();
                move |e| {
                    e.one(
                        SecretVersion::new(&e.aws, &secret)?,
                        Selector::exact("00000000-0000-0000-0000-000000000000"),
                    )
                }
            },
        ),
        case(
            "secret: Exact the current version",
            InvalidInput,
            secret.clone(),
            {
                let (secret, cur) = (secret.clone(), sv[2].clone());
                move |e| {
                    e.one(
                        SecretVersion::new(&e.aws, &secret)?,
                        Selector::exact(cur.clone()),
                    )
                }
            },
        ),
        case(
            "secret: StepsBack past the oldest version",
            NotFound,
            secret.clone(),
            {
                let secret = secret.clone();
                move |e| e.one(SecretVersion::new(&e.aws, &secret)?, Selector::StepsBack(7))
            },
        ),
        case(
            // A secret of another account is addressed by its ARN (cross-account access), so
            // only the region the clients are configured for is checked.
            "secret: ARN of another region",
            InvalidInput,
            "eu-west-1",
            {
                let secret = secret.clone();
                move |e| {
                    e.one(
                        SecretVersion::new(
                            &e.aws,
                            format!(
                                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:{secret}"
                            ),
                        )?,
                        Selector::Previous,
                    )
                }
            },
        ),
        // -- RDS
        case("rds: empty instance id", InvalidInput, "rds", |e| {
            e.one(RdsInstance::new(&e.aws, "")?, Selector::exact(SNAPSHOT))
        }),
        case("rds: no such instance", NotFound, "campaign-no-db", |e| {
            e.one(
                RdsInstance::new(&e.aws, "campaign-no-db")?,
                Selector::exact(SNAPSHOT),
            )
        }),
        case("rds: no such snapshot", NotFound, DB, |e| {
            e.one(
                RdsInstance::new(&e.aws, DB)?,
                Selector::exact("no-such-snapshot"),
            )
        }),
        case(
            "rds: restore_as with an underscore",
            InvalidInput,
            DB,
            |e| {
                e.one(
                    RdsInstance::new(&e.aws, DB)?.restore_as("bad_name")?,
                    Selector::exact(SNAPSHOT),
                )
            },
        ),
        case(
            "rds: restore_as with two hyphens in a row",
            InvalidInput,
            DB,
            |e| {
                e.one(
                    RdsInstance::new(&e.aws, DB)?.restore_as("bad--name")?,
                    Selector::exact(SNAPSHOT),
                )
            },
        ),
        case(
            "rds: restore_as ending with a hyphen",
            InvalidInput,
            DB,
            |e| {
                e.one(
                    RdsInstance::new(&e.aws, DB)?.restore_as("bad-name-")?,
                    Selector::exact(SNAPSHOT),
                )
            },
        ),
        case(
            "rds: restore_as starting with a digit",
            InvalidInput,
            DB,
            |e| {
                e.one(
                    RdsInstance::new(&e.aws, DB)?.restore_as("1restored")?,
                    Selector::exact(SNAPSHOT),
                )
            },
        ),
        case(
            "rds: restore_as 64 characters",
            InvalidInput,
            DB,
            move |e| {
                e.one(
                    RdsInstance::new(&e.aws, DB)?.restore_as(long.clone())?,
                    Selector::exact(SNAPSHOT),
                )
            },
        ),
        case(
            "rds: restore_as the original instance",
            InvalidInput,
            DB,
            |e| {
                e.one(
                    RdsInstance::new(&e.aws, DB)?.restore_as(DB)?,
                    Selector::exact(SNAPSHOT),
                )
            },
        ),
        case(
            "rds: snapshot ARN of another account",
            InvalidInput,
            DB,
            |e| {
                e.one(
                    RdsInstance::new(&e.aws, DB)?,
                    Selector::exact(format!(
                        "arn:aws:rds:us-east-1:111111111111:snapshot:{SNAPSHOT}"
                    )),
                )
            },
        ),
        // -- connection handover
        case("handover: empty secret", InvalidInput, "handover", |e| {
            e.one(
                ConnectionHandover::new(&e.aws, "", DB)?,
                Selector::exact(format!("handover:{DB}")),
            )
        }),
        case("handover: empty instance", InvalidInput, CONN, |e| {
            e.one(
                ConnectionHandover::new(&e.aws, CONN, "")?,
                Selector::exact("handover:"),
            )
        }),
        case(
            "handover: no such secret",
            NotFound,
            "campaign/no-such-url",
            |e| {
                e.one(
                    ConnectionHandover::new(&e.aws, "campaign/no-such-url", DB)?,
                    Selector::exact(format!("handover:{DB}")),
                )
            },
        ),
        case(
            "handover: Previous (a handover goes to Exact)",
            NotFound,
            CONN,
            |e| {
                e.one(
                    ConnectionHandover::new(&e.aws, CONN, DB)?,
                    Selector::Previous,
                )
            },
        ),
        case(
            "handover: a value that names no host",
            InvalidInput,
            secret.clone(),
            {
                let secret = secret.clone();
                move |e| {
                    e.one(
                        ConnectionHandover::new(&e.aws, &secret, DB)?,
                        Selector::exact(format!("handover:{DB}")),
                    )
                }
            },
        ),
        // -- ECS desired count
        case("desired count: Exact(\"-1\")", NotFound, svc.clone(), {
            let svc = svc.clone();
            move |e| {
                e.one(
                    EcsDesiredCount::new(&e.aws, campaign::CLUSTER, &svc)?,
                    Selector::exact("-1"),
                )
            }
        }),
        case("desired count: Exact(\"many\")", NotFound, svc.clone(), {
            let svc = svc.clone();
            move |e| {
                e.one(
                    EcsDesiredCount::new(&e.aws, campaign::CLUSTER, &svc)?,
                    Selector::exact("many"),
                )
            }
        }),
        case(
            "desired count: Exact the current count",
            InvalidInput,
            svc.clone(),
            {
                let svc = svc.clone();
                move |e| {
                    e.one(
                        EcsDesiredCount::new(&e.aws, campaign::CLUSTER, &svc)?,
                        Selector::exact("1"),
                    )
                }
            },
        ),
        case("desired count: Previous", NotFound, svc.clone(), {
            let svc = svc.clone();
            move |e| {
                e.one(
                    EcsDesiredCount::new(&e.aws, campaign::CLUSTER, &svc)?,
                    Selector::Previous,
                )
            }
        }),
        case(
            "desired count: no such service",
            NotFound,
            "campaign-no-svc",
            |e| {
                e.one(
                    EcsDesiredCount::new(&e.aws, campaign::CLUSTER, "campaign-no-svc")?,
                    Selector::exact("0"),
                )
            },
        ),
        // -- pipeline transition
        case(
            "pipeline: empty pipeline name",
            InvalidInput,
            "Deploy",
            |e| {
                e.one(
                    PipelineTransition::new(&e.aws, "", "Deploy")?,
                    Selector::exact("disabled"),
                )
            },
        ),
        case(
            "pipeline: no such pipeline",
            NotFound,
            "campaign-no-pipe",
            |e| {
                e.one(
                    PipelineTransition::new(&e.aws, "campaign-no-pipe", "Deploy")?,
                    Selector::exact("disabled"),
                )
            },
        ),
        case("pipeline: no such stage", NotFound, "NoSuchStage", |e| {
            e.one(
                PipelineTransition::new(&e.aws, PIPELINE, "NoSuchStage")?,
                Selector::exact("disabled"),
            )
        }),
        case("pipeline: Exact(\"sideways\")", NotFound, PIPELINE, |e| {
            e.one(
                PipelineTransition::new(&e.aws, PIPELINE, "Deploy")?,
                Selector::exact("sideways"),
            )
        }),
        case(
            "pipeline: Exact the current state",
            InvalidInput,
            PIPELINE,
            |e| {
                e.one(
                    PipelineTransition::new(&e.aws, PIPELINE, "Deploy")?,
                    Selector::exact("enabled"),
                )
            },
        ),
        // -- Kubernetes workloads
        case(
            "k8s: upper-case Deployment name",
            InvalidInput,
            "Web",
            |e| e.one(e.deployment("Web")?, Selector::Previous),
        ),
        case(
            "k8s: Deployment name over 253 characters",
            InvalidInput,
            "k8s-deployment",
            |e| e.one(e.deployment(&"w".repeat(254))?, Selector::Previous),
        ),
        case(
            "k8s: empty namespace",
            InvalidInput,
            "k8s-deployment",
            |e| e.one(Deployment::new(&e.k8s, "", "web")?, Selector::Previous),
        ),
        case(
            "k8s: namespace with an underscore",
            InvalidInput,
            "prod_1",
            |e| {
                e.one(
                    Deployment::new(&e.k8s, "prod_1", "web")?,
                    Selector::Previous,
                )
            },
        ),
        case("k8s: no such Deployment", NotFound, "no-such-web", |e| {
            e.one(e.deployment("no-such-web")?, Selector::Previous)
        }),
        case(
            "k8s: Previous with one revision",
            NotFound,
            "production/web",
            |e| e.one(e.deployment("web")?, Selector::Previous),
        ),
        case(
            "k8s: Exact revision that does not exist",
            NotFound,
            "production/web",
            |e| e.one(e.deployment("web")?, Selector::exact("99")),
        ),
        case("k8s: Exact(\"abc\")", InvalidInput, "production/web", |e| {
            e.one(e.deployment("web")?, Selector::exact("abc"))
        }),
        case(
            // Exact names one revision, and revisions count from 1 (Previous is kubectl's
            // --to-revision=0).
            "k8s: Exact(\"0\")",
            InvalidInput,
            "production/web",
            |e| e.one(e.deployment("web")?, Selector::exact("0")),
        ),
        case(
            "k8s: Exact a revision that overflows",
            InvalidInput,
            "production/web",
            |e| {
                e.one(
                    e.deployment("web")?,
                    Selector::exact("99999999999999999999999"),
                )
            },
        ),
        case("k8s: StepsBack(0)", InvalidInput, "production/web", |e| {
            e.one(e.deployment("web")?, Selector::StepsBack(0))
        }),
        // With a single revision kubectl says "no rollout history found" before it looks at
        // paused (checked with kubectl against the simulator); the paused refusal with history
        // is in rollback-k8s/tests/scenarios.rs.
        case(
            "k8s: paused Deployment with a single revision",
            NotFound,
            "production/paused-web",
            |e| e.one(e.deployment("paused-web")?, Selector::Previous),
        ),
        case("k8s: no such StatefulSet", NotFound, "no-such-db", |e| {
            e.one(
                StatefulSet::new(&e.k8s, NS, "no-such-db")?,
                Selector::Previous,
            )
        }),
        case("k8s: no such DaemonSet", NotFound, "no-such-agent", |e| {
            e.one(
                DaemonSet::new(&e.k8s, NS, "no-such-agent")?,
                Selector::Previous,
            )
        }),
        // -- Kubernetes recovery targets
        case(
            "k8s replicas: Exact(\"-1\")",
            InvalidInput,
            "production/web",
            |e| e.one(e.deployment("web")?.replicas(), Selector::exact("-1")),
        ),
        case(
            "k8s replicas: Exact(\"lots\")",
            InvalidInput,
            "production/web",
            |e| e.one(e.deployment("web")?.replicas(), Selector::exact("lots")),
        ),
        case(
            "k8s replicas: Exact beyond i32",
            InvalidInput,
            "production/web",
            |e| {
                e.one(
                    e.deployment("web")?.replicas(),
                    Selector::exact("4294967296"),
                )
            },
        ),
        case("k8s replicas: Previous", NotFound, "production/web", |e| {
            e.one(e.deployment("web")?.replicas(), Selector::Previous)
        }),
        case(
            "k8s replicas: no such Deployment",
            NotFound,
            "no-such-web",
            |e| {
                e.one(
                    e.deployment("no-such-web")?.replicas(),
                    Selector::exact("0"),
                )
            },
        ),
        case(
            "k8s restart: paused Deployment",
            InvalidInput,
            "production/paused-web",
            |e| e.one(e.deployment("paused-web")?.restart(), Selector::Previous),
        ),
        case(
            "k8s restart: no such Deployment",
            NotFound,
            "no-such-web",
            |e| e.one(e.deployment("no-such-web")?.restart(), Selector::Previous),
        ),
        // -- checks
        case(
            "check: HttpCheck JSON pointer without a leading /",
            InvalidInput,
            other.clone(),
            |e| {
                e.checked(Check::new(
                    HttpCheck::new(e.emu.health_url()).json_value("healthy", true),
                ))
            },
        ),
        case(
            "check: HttpCheck URL without a host",
            InvalidInput,
            other.clone(),
            |e| e.checked(Check::new(HttpCheck::new("http:///health"))),
        ),
        case(
            "check: HttpCheck URL that is not http(s)",
            InvalidInput,
            other.clone(),
            |e| e.checked(Check::new(HttpCheck::new("ftp://example.invalid/health"))),
        ),
        case(
            "check: HttpCheck method with a space",
            InvalidInput,
            other.clone(),
            |e| {
                e.checked(Check::new(
                    HttpCheck::new(e.emu.health_url()).method("GE T"),
                ))
            },
        ),
        case(
            "check: HttpCheck status 42",
            InvalidInput,
            other.clone(),
            |e| e.checked(Check::new(HttpCheck::new(e.emu.health_url()).status(42))),
        ),
        case(
            "check: HttpCheck header name with a space",
            InvalidInput,
            other.clone(),
            |e| {
                e.checked(Check::new(
                    HttpCheck::new(e.emu.health_url()).header("X Bad", "1"),
                ))
            },
        ),
        case(
            "check: Policy needing 3 passes in 1 attempt",
            InvalidInput,
            other.clone(),
            |e| {
                e.checked(
                    Check::new(HttpCheck::new(e.emu.health_url()))
                        .policy(Policy::once().consecutive(3)),
                )
            },
        ),
        case(
            "check: CommandCheck with no program",
            InvalidInput,
            other.clone(),
            |e| e.checked(Check::new(CommandCheck::new(Vec::<String>::new()))),
        ),
        case(
            "check: PodsReady with an empty selector",
            InvalidInput,
            "k8s-pods",
            |e| e.checked(Check::new(PodsReady::new(&e.k8s, NS, " ")?)),
        ),
        case(
            "check: PodsReady in a namespace with an underscore",
            InvalidInput,
            "k8s-pods",
            |e| e.checked(Check::new(PodsReady::new(&e.k8s, "prod_1", "app=web")?)),
        ),
        case(
            "check: transaction HttpCheck URL without a host",
            InvalidInput,
            "transaction",
            |e| {
                let t = e.alias(&e.other.function)?;
                e.builder("bad check")
                    .step(Step::new(Arc::new(t), Selector::Previous))
                    .verify(Check::new(HttpCheck::new("http:///health")).policy(Policy::once()))
                    .build()
            },
        ),
        // -- transaction options
        case(
            "transaction: empty name",
            InvalidInput,
            "transaction",
            |e| {
                let t = e.alias(&e.other.function)?;
                e.builder(" ")
                    .step(Step::new(Arc::new(t), Selector::Previous))
                    .build()
            },
        ),
        case("transaction: no steps", InvalidInput, "transaction", |e| {
            e.builder("no steps").build()
        }),
        case(
            "transaction: the same target twice",
            InvalidInput,
            other.clone(),
            |e| {
                let (a, b) = (e.alias(&e.other.function)?, e.alias(&e.other.function)?);
                e.builder("twice")
                    .step(Step::new(Arc::new(a), Selector::Previous))
                    .step(Step::new(Arc::new(b), Selector::StepsBack(2)))
                    .build()
            },
        ),
        case(
            "transaction: concurrency 0",
            InvalidInput,
            "transaction",
            |e| {
                let t = e.alias(&e.other.function)?;
                e.builder("c0")
                    .concurrency(0)
                    .step(Step::new(Arc::new(t), Selector::Previous))
                    .build()
            },
        ),
        case(
            "transaction: lease TTL 0",
            InvalidInput,
            "transaction",
            |e| {
                let t = e.alias(&e.other.function)?;
                e.builder("ttl0")
                    .lease_ttl(Duration::ZERO)
                    .step(Step::new(Arc::new(t), Selector::Previous))
                    .build()
            },
        ),
        case(
            "transaction: step timeout 0",
            InvalidInput,
            other.clone(),
            |e| {
                let t = e.alias(&e.other.function)?;
                e.tx(Step::new(Arc::new(t), Selector::Previous).timeout(Duration::ZERO))
            },
        ),
        case(
            "transaction: journal path that is a directory",
            Journal,
            "journal",
            |e| {
                let t = e.alias(&e.other.function)?;
                e.builder("journal dir")
                    .journal(e.dir.path())
                    .step(Step::new(Arc::new(t), Selector::Previous))
                    .build()
            },
        ),
        case(
            "transaction: journal path /dev/null",
            Journal,
            "/dev/null",
            |e| {
                let t = e.alias(&e.other.function)?;
                e.builder("journal null")
                    .journal(PathBuf::from("/dev/null"))
                    .step(Step::new(Arc::new(t), Selector::Previous))
                    .build()
            },
        ),
    ];
    v.push(Case {
        what: "transaction: no reason",
        kind: InvalidInput,
        names: "transaction".into(),
        run_only: true,
        make: Box::new(|e| {
            let t = e.alias(&e.other.function)?;
            Transaction::builder("no reason")
                .journal(e.dir.path().join("no-reason.jsonl"))
                .locks(Arc::new(FileLocks::new(e.dir.path().join("locks"))))
                .step(Step::new(Arc::new(t), Selector::Previous))
                .build()
        }),
    });
    v.push(case(
        "transaction: journal that already holds a run",
        InvalidInput,
        "transaction",
        |e| {
            let path = e.dir.path().join("used.jsonl");
            std::fs::write(&path, "{\"seq\":1}\n").unwrap();
            let t = e.alias(&e.other.function)?;
            e.builder("used journal")
                .journal(path)
                .step(Step::new(Arc::new(t), Selector::Previous))
                .build()
        },
    ));
    v
}

async fn k8s_objects(k8s: &K8s) {
    let api: Api<apps::Deployment> = Api::namespaced(k8s.client().clone(), NS);
    for (name, paused) in [("web", false), ("paused-web", true)] {
        let d: apps::Deployment = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"replicas": 1, "paused": paused, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "ghcr.io/example/web:1"}]}}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &d).await.unwrap();
    }
}

async fn env() -> Env {
    let emu = campaign::emulator().await;
    emu.set_rds_delay(Duration::ZERO).await.unwrap();
    let mut trios = [Trio::names("bad"), Trio::names("bad-other")];
    campaign::seed(&emu, &mut trios).await;
    emu.seed(json!({
        "rds": [{"db_instance_id": DB, "engine": "postgres", "class": "db.t3.micro",
                 "subnet_group": "campaign", "security_groups": ["sg-0ca1"], "port": 5432,
                 "snapshots": [{"id": SNAPSHOT, "type": "manual", "created": "2025-12-28T14:30:00Z"}]}],
        "secrets": [{"name": CONN, "values": ["postgres://app:pw@campaign-db.example.invalid:5432/app"]}],
        "codepipeline": [{"name": PIPELINE, "stages": ["Source", "Build", "Deploy"]}]
    }))
    .await
    .unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let sim = K8sSimulator::start()
        .unwrap_or_else(|e| panic!("the Kubernetes API simulator did not start: {e}"));
    let k8s = K8s::from_url(sim.url()).unwrap();
    k8s_objects(&k8s).await;
    let [trio, other] = trios;
    Env {
        emu,
        sim,
        aws,
        k8s,
        trio,
        other,
        dir: tempfile::tempdir().unwrap(),
        n: AtomicUsize::new(0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_typed_named_and_changes_nothing() {
    let e = env().await;
    let table = cases(&e);
    let mut failures = Vec::new();
    let mut refusals = 0;
    let started = std::time::Instant::now();
    for c in &table {
        let t0 = std::time::Instant::now();
        let aws_before = mutations_in(&e.emu.calls().await.unwrap());
        let k8s_before = e.sim.mutations().await.unwrap();
        let mut outcomes: Vec<(&str, Result<rollback_core::Report>)> = Vec::new();
        match (c.make)(&e) {
            Err(err) => outcomes.push(("constructor", Err(err))),
            Ok(tx) => {
                if !c.run_only {
                    outcomes.push(("dry_run", tx.dry_run().await));
                }
                outcomes.push(("run", tx.run().await));
            }
        }
        for (how, outcome) in outcomes {
            match outcome {
                Ok(report) => {
                    failures.push(format!("{}: {how} accepted it: {}", c.what, report.outcome))
                }
                Err(err) => {
                    let msg = err.to_string();
                    if err.kind() != c.kind {
                        failures.push(format!(
                            "{}: {how}: expected {:?}, got {:?}: {msg}",
                            c.what,
                            c.kind,
                            err.kind()
                        ));
                    } else if !msg.contains(&c.names) {
                        failures.push(format!(
                            "{}: {how}: the message does not name {:?}: {msg}",
                            c.what, c.names
                        ));
                    } else {
                        refusals += 1;
                    }
                }
            }
        }
        if t0.elapsed() > Duration::from_secs(2) {
            println!("bad-input campaign: {} took {:.1?}", c.what, t0.elapsed());
        }
        let aws = mutations_in(&e.emu.calls().await.unwrap()) - aws_before;
        let k8s = e.sim.mutations().await.unwrap() - k8s_before;
        if aws + k8s > 0 {
            failures.push(format!(
                "{}: {aws} mutating AWS call(s) and {k8s} Kubernetes write(s)",
                c.what
            ));
        }
    }
    println!(
        "bad-input campaign: {} cases in {:.1?}, {refusals} refusals as expected, {} failure(s)",
        table.len(),
        started.elapsed(),
        failures.len()
    );
    for f in &failures {
        println!("bad-input campaign: FAILED {f}");
    }
    assert!(table.len() >= 50);
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
