//! `rollback`: runbook files (a transaction as YAML) checked with `lint`, reviewed with
//! `plan`, run with `apply`. Thin over the library: the file is loaded by
//! `rollback_core::runbook`, its kinds come from rollback-aws's and rollback-k8s's
//! registries, and the run is the library's transaction.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgAction, Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use rollback_core::runbook::{Runbook, Vars};
use rollback_core::{Error, Event, Outcome, Registry, Report, StepStatus, TransactionBuilder};

mod meta;
mod show;
mod term;
mod watch;

/// Deployment rollbacks as reviewed, verified, compensable transactions.
#[derive(Debug, Parser)]
#[command(name = "rollback", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Settings every command takes, overriding the standard environment.
#[derive(Debug, Args)]
struct Global {
    /// AWS region (else AWS_REGION, the profile's).
    #[arg(long, global = true)]
    region: Option<String>,
    /// AWS profile (else AWS_PROFILE).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// AWS endpoint (else AWS_ENDPOINT_URL): an emulator, a VPC endpoint.
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    /// kubeconfig file (else KUBECONFIG, ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// kubeconfig context for Kubernetes targets and checks that name none (else
    /// ROLLBACK_KUBE_CONTEXT, the kubeconfig's current context).
    #[arg(long, global = true)]
    context: Option<String>,
    /// Namespace for Kubernetes targets and checks that give none, and `history` names
    /// without one (else ROLLBACK_KUBE_NAMESPACE; without either, they must give one).
    #[arg(long, short = 'n', global = true)]
    namespace: Option<String>,
    /// Colour the statuses: on a terminal unless NO_COLOR is set (auto), always, never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = term::Color::Auto)]
    color: term::Color,
    /// Logs on stderr: -v info, -vv debug, -vvv trace (RUST_LOG, when set, is the filter).
    #[arg(long, short = 'v', global = true, action = ArgAction::Count)]
    verbose: u8,
    /// Output: for people, or JSON (one document; `apply` streams events as JSON lines).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Human)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PolicyFormat {
    Iam,
    Rbac,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Human,
    Json,
}

/// The runbook file and its variables.
#[derive(Debug, Args)]
struct FileArgs {
    /// The runbook file (YAML or JSON).
    file: PathBuf,
    /// A variable for `${NAME}` in the file (wins over the environment); repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks a runbook file offline (keys, kinds, selectors, checks, variables): nothing is
    /// called. Exit 0 when it is right, 1 with every problem's line and column otherwise.
    Lint {
        #[command(flatten)]
        file: FileArgs,
    },
    /// The dry run: each target's current and chosen revision, the diff and the checks.
    /// Nothing changes. Exit 0: nothing to do; 2: changes planned; 1: an error.
    Plan {
        #[command(flatten)]
        file: FileArgs,
        /// Why (overrides the file's reason).
        #[arg(long)]
        reason: Option<String>,
        /// Also writes the plan as JSON to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Shows the plan, asks for confirmation (or `--yes`), runs it with live progress and
    /// prints the report. Exit 0 when it succeeded (or nothing was to do), 1 otherwise.
    /// FILE may be a plan saved by `plan --out`: it is applied only if every target is still
    /// where the plan found it.
    Apply {
        #[command(flatten)]
        file: FileArgs,
        /// Why (overrides the file's reason; a run needs one, for its audit trail).
        #[arg(long)]
        reason: Option<String>,
        /// Do not ask: for scripts and CI.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// A target's revisions, newest first, with their images, creation time and
    /// description, the one in use marked. NAME as the target's id writes it:
    /// `cluster/service` (ecs-service), `function:alias` (lambda-alias), `namespace/name`
    /// (k8s-deployment...), the secret's name (secret-version); or `key=value,...`.
    History {
        /// The target kind (ecs-service, lambda-alias, k8s-deployment, secret-version...).
        kind: String,
        /// The target's name.
        name: String,
    },
    /// Prints the JSON Schema of runbook files (shipped as rollback-cli/runbook.schema.json,
    /// for editors: `# yaml-language-server: $schema=...`).
    Schema {
        /// JSON (the schema) or Markdown (the runbook-file reference made from it).
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
    },
    /// The least privilege the runbook needs: the AWS IAM policy (each action its targets,
    /// checks, stores and actions call, on the resources it names) and the Kubernetes RBAC
    /// Roles (verbs per resource, by name where RBAC allows), as JSON ready to apply
    /// (`aws iam put-role-policy --policy-document file://...`, `kubectl apply -f`). Offline:
    /// nothing is called. Parts that do not declare their permissions (a command target, a
    /// command check) are named on stderr; `--strict` makes them an error (exit 1).
    Policy {
        #[command(flatten)]
        file: FileArgs,
        /// The AWS account (12 digits) of the resources, else `*` in their ARNs.
        #[arg(long)]
        account: Option<String>,
        /// The region of resources the runbook does not pin to one, else `*`.
        #[arg(long, env = "AWS_REGION")]
        region: Option<String>,
        /// Which document: the IAM policy, the RBAC Roles (a v1 List), or both (one JSON object).
        #[arg(long, value_enum, default_value_t = PolicyFormat::Iam)]
        format: PolicyFormat,
        /// The name of the RBAC Roles.
        #[arg(long, default_value = "rollback")]
        role: String,
        /// Exit 1 when a part of the runbook does not declare its permissions.
        #[arg(long)]
        strict: bool,
    },
    /// Watches the runbook's metrics (its `watch:` section) and runs the runbook when runbook
    /// 004's decision tree says so: at once for "roll back immediately"; for "roll back
    /// within 10 minutes" (the SLO at risk) after that grace, if the decision still says so
    /// then. Never twice in one incident, never within the cooldown, never on missing data
    /// unless the file says `no_data: act`. Every decision goes to the decision log (JSON
    /// lines) with its evidence. Runs until SIGTERM or Ctrl-C (a rollback under way is
    /// finished first), or `--max-decisions`.
    Watch {
        #[command(flatten)]
        file: FileArgs,
        /// Decide and report what would be done; never act.
        #[arg(long)]
        dry_run: bool,
        /// Stop after this many decisions (1: decide once, as from cron).
        #[arg(long, value_name = "N")]
        max_decisions: Option<u64>,
        /// Time between decisions (overrides the file's `interval`).
        #[arg(long, value_name = "DURATION")]
        interval: Option<String>,
        /// The decision log, JSON lines (else the file's `log`, else
        /// .rollback/watch/NAME.jsonl).
        #[arg(long)]
        log: Option<PathBuf>,
        /// Keeps the last decision in this file (JSON, replaced whole), for a supervisor.
        #[arg(long)]
        status_file: Option<PathBuf>,
        /// Serves the last decision as JSON over HTTP on this address (127.0.0.1:9464).
        #[arg(long, value_name = "HOST:PORT")]
        status_addr: Option<String>,
    },
    /// Practises the runbook on its drill environment and measures it: breaks each target
    /// (to the newest revision, or the file's `drill: break_to`), waits for the runbook's
    /// checks to fail (time to detect), runs the rollback (time to recover, against
    /// `recover_within`), and leaves every target where it was found. Refused for a runbook
    /// without `drill: {environment: ...}` or with another environment. Prints the report
    /// (Markdown, or JSON with `-o json`) and adds it to the drill history. Exit 0 when the
    /// drill passed, 1 otherwise.
    Drill {
        #[command(flatten)]
        file: FileArgs,
        /// The drill environment, as the runbook's `drill: environment` names it.
        #[arg(long)]
        environment: String,
        /// Also writes the Markdown report to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The drill history, JSON lines (else the file's `history`, else
        /// .rollback/drills/NAME.jsonl).
        #[arg(long)]
        history: Option<PathBuf>,
    },
    /// Recent transactions in the journal folder, newest first: id, when, name, who, how it
    /// ended, why.
    List {
        #[command(flatten)]
        journals: JournalArgs,
    },
    /// Where a run is, step by step, from its journal: ended, stopped on request, or not
    /// ended (its process died or still runs), with how to go on.
    Status {
        /// A transaction id (or its first characters) or a journal file.
        run: String,
        #[command(flatten)]
        journals: JournalArgs,
    },
    /// The incident report of a finished run, from its journal: what happened, why, who,
    /// the timeline, each target's revisions and diff, the checks and their evidence, the
    /// time to recover, what needs a person, and sections to fill in.
    Report {
        /// A transaction id (or its first characters) or a journal file.
        run: String,
        #[command(flatten)]
        journals: JournalArgs,
        /// Markdown (for the ticket) or JSON.
        #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
        format: ReportFormat,
    },
    /// Finishes a run whose process died or was interrupted, from its journal, without
    /// applying anything twice (a run that ended is shown as it was); or, with
    /// `--put-back`, puts back every target it changed instead.
    Resume {
        /// A transaction id (or its first characters) or a journal file.
        run: String,
        #[command(flatten)]
        journals: JournalArgs,
        /// Put back what the run changed (newest stage first, whatever its failure policy)
        /// instead of finishing it. Refused for a run that ended.
        #[arg(long)]
        put_back: bool,
    },
}

/// Where journals are.
#[derive(Debug, Args)]
struct JournalArgs {
    /// The journal folder (else ROLLBACK_JOURNAL_DIR, else .rollback/journal).
    #[arg(long)]
    journal_dir: Option<PathBuf>,
    /// The team's journal store instead, as a runbook's `journal_store` keeps it:
    /// s3://BUCKET/PREFIX (else ROLLBACK_JOURNAL_STORE). A run read from it is copied
    /// under the journal folder's `store/`.
    #[arg(
        long,
        env = "ROLLBACK_JOURNAL_STORE",
        value_name = "s3://BUCKET/PREFIX"
    )]
    journal_store: Option<String>,
}

/// A run's journal: a file, or a transaction in the team's store (copied to `local`).
enum Found {
    File(PathBuf),
    Store {
        store: std::sync::Arc<dyn rollback_core::journal::JournalStore>,
        id: String,
        local: PathBuf,
    },
}

impl Found {
    /// The journal file: the store's records copied to the local one first.
    async fn file(&self) -> Result<PathBuf, Failure> {
        match self {
            Found::File(path) => Ok(path.clone()),
            Found::Store { store, id, local } => {
                let bytes = store.read(id).await?;
                if let Some(dir) = local.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Failure::Message(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                std::fs::write(local, bytes).map_err(|e| {
                    Failure::Message(format!("cannot write {}: {e}", local.display()))
                })?;
                Ok(local.clone())
            }
        }
    }
}

impl JournalArgs {
    fn dir(&self) -> PathBuf {
        self.journal_dir
            .clone()
            .unwrap_or_else(rollback_core::journal::default_dir)
    }

    /// The team's journal store, if one is given.
    async fn store(
        &self,
    ) -> Result<Option<std::sync::Arc<dyn rollback_core::journal::JournalStore>>, Failure> {
        let Some(url) = &self.journal_store else {
            return Ok(None);
        };
        let (bucket, prefix) = url
            .strip_prefix("s3://")
            .map(|rest| rest.split_once('/').unwrap_or((rest, "")))
            .filter(|(bucket, _)| !bucket.is_empty())
            .ok_or_else(|| {
                Failure::Message(format!(
                    "journal store {url:?}: write it as s3://BUCKET/PREFIX (the bucket and prefix a runbook's journal_store names)"
                ))
            })?;
        let spec = rollback_core::StoreSpec {
            kind: "s3".into(),
            params: serde_json::json!({"bucket": bucket, "prefix": prefix}),
        };
        Ok(Some(registry().build_journal_store(&spec).await?))
    }

    /// The journal of `run`: a file, or the one transaction whose id starts with it in the
    /// store (if given) or the folder.
    async fn find(&self, run: &str) -> Result<Found, Failure> {
        let as_path = Path::new(run);
        if as_path.is_file() {
            return Ok(Found::File(as_path.to_path_buf()));
        }
        if let Some(store) = self.store().await? {
            let mut ids: Vec<String> = store
                .transactions()
                .await?
                .into_iter()
                .filter(|id| id.starts_with(run))
                .collect();
            return match ids.len() {
                1 => {
                    let id = ids.remove(0);
                    let local = self.dir().join("store").join(format!("{id}.jsonl"));
                    Ok(Found::Store { store, id, local })
                }
                0 => Err(Failure::Message(format!(
                    "no transaction {run:?} in {}; `rollback list --journal-store ...` shows the ones there",
                    store.describe()
                ))),
                n => Err(Failure::Message(format!(
                    "{n} transactions in {} start with {run:?}; give more of the id",
                    store.describe()
                ))),
            };
        }
        self.find_in_dir(run).map(Found::File)
    }

    /// The journal in the folder of the one transaction whose id starts with `run`.
    fn find_in_dir(&self, run: &str) -> Result<PathBuf, Failure> {
        let dir = self.dir();
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            Failure::Message(format!(
                "{run:?} is not a file, and the journal folder {} cannot be read ({e}); give the journal's path or --journal-dir",
                dir.display()
            ))
        })?;
        let mut found = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "jsonl") {
                continue;
            }
            let Ok(records) = rollback_core::journal::read_journal(&path) else {
                continue;
            };
            if rollback_core::journal::summarize(&records)
                .iter()
                .any(|t| t.id.starts_with(run))
            {
                found.push(path);
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(Failure::Message(format!(
                "no transaction {run:?} in {}; `rollback list` shows the ones there",
                dir.display()
            ))),
            n => Err(Failure::Message(format!(
                "{n} transactions in {} start with {run:?}; give more of the id",
                dir.display()
            ))),
        }
    }
}

/// An exit code and what to print on the way out.
enum Failure {
    /// A library error: printed with its causes.
    Error(Error),
    /// A message of this command's own.
    Message(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

type Outcome2 = Result<ExitCode, Failure>;

fn main() -> ExitCode {
    let matches = meta::command().get_matches();
    if let Some(code) = meta::run(&matches) {
        return code;
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    term::init(cli.global.color, cli.global.verbose);
    cli.global.apply_to_environment();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(Failure::Error(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(Failure::Message(m)) => {
            eprintln!("error: {m}");
            ExitCode::FAILURE
        }
    }
}

impl Global {
    /// The flags become the standard variables the SDKs read, before anything reads them.
    fn apply_to_environment(&self) {
        let set = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                std::env::set_var(k, v);
            }
        };
        set("AWS_REGION", &self.region);
        set("AWS_PROFILE", &self.profile);
        set("AWS_ENDPOINT_URL", &self.endpoint_url);
        if let Some(k) = &self.kubeconfig {
            std::env::set_var("KUBECONFIG", k);
        }
        // What rollback-k8s's registry fills in for targets and checks that leave it out.
        set(rollback_k8s::client::CONTEXT_VAR, &self.context);
        set(rollback_k8s::client::NAMESPACE_VAR, &self.namespace);
    }
}

/// Every kind the command line knows: rollback-aws's and rollback-k8s's, and the core's
/// `command` (targets driven by the user's own commands).
fn registry() -> Registry {
    let mut r = Registry::new();
    rollback_core::command_target::register(&mut r);
    rollback_aws::register(&mut r);
    rollback_k8s::register(&mut r);
    r
}

impl FileArgs {
    fn vars(&self) -> Result<Vars, Failure> {
        let mut vars = Vars::new();
        for v in &self.vars {
            vars = vars.parse_assignment(v)?;
        }
        Ok(vars)
    }

    /// The runbook, checked against the kinds: its transaction's builder.
    async fn load(&self) -> Result<(Runbook, TransactionBuilder), Failure> {
        self.load_on(&registry()).await
    }

    async fn load_on(&self, registry: &Registry) -> Result<(Runbook, TransactionBuilder), Failure> {
        let runbook = Runbook::load(&self.file, &self.vars()?)?;
        let b = runbook.build(registry).await?;
        Ok((runbook, b))
    }
}

async fn run(cli: Cli) -> Outcome2 {
    let output = cli.global.output;
    match cli.command {
        Command::Lint { file } => lint(&file, output).await,
        Command::Plan { file, reason, out } => plan(&file, reason, out.as_deref(), output).await,
        Command::Apply { file, reason, yes } => apply(&file, reason, yes, output).await,
        Command::History { kind, name } => history(&kind, &name, output).await,
        Command::List { journals } => list(&journals, output).await,
        Command::Drill {
            file,
            environment,
            out,
            history,
        } => watch::drill(&file, &environment, out, history, output).await,
        Command::Watch {
            file,
            dry_run,
            max_decisions,
            interval,
            log,
            status_file,
            status_addr,
        } => {
            let opts = watch::Options {
                dry_run,
                max_decisions,
                interval,
                log,
                status_file,
                status_addr,
            };
            watch::watch(file, opts, output).await
        }
        Command::Policy {
            file,
            account,
            region,
            format,
            role,
            strict,
        } => {
            let scope = (account.as_deref(), region.as_deref());
            policy(&file, scope, format, &role, strict).await
        }
        Command::Schema { format } => {
            let schema = Runbook::schema(&registry());
            match format {
                ReportFormat::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&schema).unwrap_or_default()
                    )
                }
                ReportFormat::Markdown => print!("{}", show::reference(&schema)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { run, journals } => {
            status(&journals.find(&run).await?.file().await?, output)
        }
        Command::Report {
            run,
            journals,
            format,
        } => report(&journals.find(&run).await?.file().await?, format),
        Command::Resume {
            run,
            journals,
            put_back,
        } => resume(journals.find(&run).await?, put_back, output).await,
    }
}

/// The kinds, built without a call: no kubeconfig is read, AWS settings are resolved at
/// a target's first call (which these never make).
fn offline_registry() -> Registry {
    let mut registry = Registry::new();
    rollback_core::command_target::register(&mut registry);
    rollback_aws::register(&mut registry);
    rollback_k8s::register_offline(&mut registry);
    registry
}

async fn lint(file: &FileArgs, output: Output) -> Outcome2 {
    // Offline: the file is checked, not the cluster.
    let (runbook, b) = file.load_on(&offline_registry()).await?;
    let steps: usize = b.stages().map(<[_]>::len).sum();
    let stages = b.stages().count();
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"file": file.file, "ok": true, "name": runbook.name(), "stages": stages, "steps": steps})
        ),
        Output::Human => println!(
            "{}: ok: {:?}, {steps} step(s) in {stages} stage(s)",
            file.file.display(),
            runbook.name()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn policy(
    file: &FileArgs,
    (account, region): (Option<&str>, Option<&str>),
    format: PolicyFormat,
    role: &str,
    strict: bool,
) -> Outcome2 {
    if let Some(a) = account {
        rollback_core::permission::check_account("--account", a)?;
    }
    let (_, b) = file.load_on(&offline_registry()).await?;
    let needs = b.permissions();
    let iam = needs.iam_policy(account, region);
    let rbac =
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": needs.rbac_roles(role)});
    let doc = match format {
        PolicyFormat::Iam => iam,
        PolicyFormat::Rbac => rbac,
        PolicyFormat::Both => {
            serde_json::json!({"iam": iam, "rbac": rbac, "undeclared": needs.undeclared})
        }
    };
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    for part in &needs.undeclared {
        eprintln!(
            "rollback: {part} does not declare its permissions; the policy does not cover it"
        );
    }
    if strict && !needs.undeclared.is_empty() {
        return Err(Failure::Message(format!(
            "{} part(s) of {} do not declare their permissions (named above); give them by hand or drop --strict",
            needs.undeclared.len(),
            file.file.display()
        )));
    }
    Ok(ExitCode::SUCCESS)
}

fn with_reason(b: TransactionBuilder, reason: Option<String>) -> TransactionBuilder {
    match reason {
        Some(r) => b.reason(r),
        None => b,
    }
}

/// Whether a plan changes anything.
fn changes(plan: &Report) -> usize {
    plan.steps
        .iter()
        .filter(|s| s.status == StepStatus::Planned)
        .count()
}

async fn plan(
    file: &FileArgs,
    reason: Option<String>,
    out: Option<&Path>,
    output: Output,
) -> Outcome2 {
    let (_, b) = file.load().await?;
    let b = with_reason(b, reason);
    let checks = show::check_names(&b);
    let plan = b.build()?.dry_run().await?;
    if let Some(out) = out {
        let saved = serde_json::json!({
            "format": "rollback-plan/1",
            "runbook": std::path::absolute(&file.file).unwrap_or_else(|_| file.file.clone()),
            "vars": file.vars,
            "plan": plan,
        });
        let text = serde_json::to_string_pretty(&saved).unwrap_or_default();
        std::fs::write(out, text + "\n").map_err(|e| {
            Failure::Message(format!("cannot write the plan to {}: {e}", out.display()))
        })?;
    }
    match output {
        Output::Json => println!("{}", serde_json::to_string(&plan).unwrap_or_default()),
        Output::Human => {
            print!("{}", show::plan(&plan, &checks));
            if changes(&plan) > 0 {
                println!("Apply it with: rollback apply {}", file.file.display());
            }
        }
    }
    Ok(if changes(&plan) > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// A plan `rollback plan --out` saved: the runbook and variables it was made from, and
/// the plan.
struct SavedPlan {
    file: FileArgs,
    plan: Report,
}

/// `path` as a saved plan, if it is one (a runbook file is not).
fn saved_plan(path: &Path) -> Result<Option<SavedPlan>, Failure> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(None);
    };
    if v.get("format").and_then(|f| f.as_str()) != Some("rollback-plan/1") {
        return Ok(None);
    }
    let bad = |what: &str| {
        Failure::Message(format!(
            "{}: a saved plan without {what}; make it again with `rollback plan FILE --out {}`",
            path.display(),
            path.display()
        ))
    };
    let runbook = v["runbook"].as_str().ok_or_else(|| bad("its runbook"))?;
    let vars = serde_json::from_value(v["vars"].clone()).map_err(|_| bad("its variables"))?;
    let plan = serde_json::from_value(v["plan"].clone()).map_err(|_| bad("a plan"))?;
    Ok(Some(SavedPlan {
        file: FileArgs {
            file: PathBuf::from(runbook),
            vars,
        },
        plan,
    }))
}

/// Where the targets moved since the plan was saved: one line each.
fn stale(saved: &Report, now: &Report) -> Vec<String> {
    let id = |r: &Option<rollback_core::Revision>| r.as_ref().map(|r| r.id.clone());
    let mut out = Vec::new();
    if saved.steps.len() != now.steps.len() {
        out.push(format!(
            "the runbook now has {} step(s), the plan {}",
            now.steps.len(),
            saved.steps.len()
        ));
        return out;
    }
    for (a, b) in saved.steps.iter().zip(&now.steps) {
        if a.target != b.target {
            out.push(format!(
                "step {}: the plan has {}, the runbook now {}",
                a.step, a.target, b.target
            ));
        } else if id(&a.from) != id(&b.from) || id(&a.to) != id(&b.to) {
            out.push(format!(
                "{}: planned {} -> {}, now {} -> {}",
                a.target,
                id(&a.from).unwrap_or_default(),
                id(&a.to).unwrap_or_default(),
                id(&b.from).unwrap_or_default(),
                id(&b.to).unwrap_or_default()
            ));
        }
    }
    out
}

async fn apply(file: &FileArgs, reason: Option<String>, yes: bool, output: Output) -> Outcome2 {
    let saved = saved_plan(&file.file)?;
    let file = saved.as_ref().map_or(file, |s| &s.file);
    let (_, b) = file.load().await?;
    let b = with_reason(b, reason);
    if b.reason_text().is_none_or(|r| r.trim().is_empty()) {
        return Err(Failure::Message(format!(
            "{}: a run needs a reason, for its journal and report: add `reason:` to the file or give --reason \"...\"",
            file.file.display()
        )));
    }
    let interactive = std::io::stdin().is_terminal();
    if !yes && !interactive {
        return Err(Failure::Message(
            "no terminal to confirm on: give --yes to apply without asking (nothing was changed)"
                .into(),
        ));
    }
    let checks = show::check_names(&b);
    let plan = b.clone().build()?.dry_run().await?;
    if let Some(saved) = &saved {
        let conflicts = stale(&saved.plan, &plan);
        if !conflicts.is_empty() {
            return Err(Failure::Message(format!(
                "the saved plan is stale, nothing was changed: the targets are no longer where it found them:\n  {}\nReview a new plan: rollback plan {}",
                conflicts.join("\n  "),
                file.file.display()
            )));
        }
    }
    if output == Output::Human {
        print!("{}", show::plan(&plan, &checks));
    }
    if changes(&plan) == 0 {
        if output == Output::Json {
            println!("{}", serde_json::to_string(&plan).unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !yes && !confirm()? {
        println!("Not applied: nothing was changed.");
        return Ok(ExitCode::FAILURE);
    }
    // On a terminal: spinners and bars; otherwise plain lines (or JSON).
    let live =
        (output == Output::Human && std::io::stderr().is_terminal()).then(|| show::Live::new(&b));
    let b = match &live {
        Some(live) => {
            let live = live.clone();
            b.on_event(move |e: &Event| live.event(e))
        }
        None => b.on_event(event_sink(output)),
    };
    let interrupt = rollback_core::Interrupt::new();
    let tx = b.interrupt(interrupt.clone()).build()?;
    let finish = Unfinished::of(tx.id(), tx.journal_path());
    let report = until_stopped(tx.run(), &interrupt, &finish).await;
    if let Some(live) = &live {
        live.done();
    }
    finish.after(report?, output)
}

/// How to finish a run that stopped, or put back what it changed: the commands printed
/// when it is interrupted.
struct Unfinished {
    /// What `rollback resume` takes: the id when the journal is in the default folder, else
    /// its path.
    run: String,
}

impl Unfinished {
    fn of(id: &str, journal: &Path) -> Unfinished {
        let in_default = journal.parent().is_some_and(|d| {
            std::path::absolute(d).ok()
                == std::path::absolute(rollback_core::journal::default_dir()).ok()
        });
        Unfinished {
            run: if in_default {
                id.chars().take(8).collect()
            } else {
                journal.display().to_string()
            },
        }
    }

    fn print(&self) {
        eprintln!(
            "Finish it with:              rollback resume {0}\nOr put back what it changed: rollback resume {0} --put-back",
            self.run
        );
    }

    /// The report printed, and for a run stopped on request how to go on (exit 130, as
    /// shells report an interrupt).
    fn after(&self, report: Report, output: Output) -> Outcome2 {
        let code = print_report(&report, output);
        if report.outcome == Outcome::Interrupted {
            self.print();
            return Ok(ExitCode::from(130));
        }
        Ok(code)
    }
}

/// Runs `run` to its end; the first Ctrl-C asks it to stop (nothing new starts, calls in
/// flight finish and are journaled, nothing is put back) and it is awaited still; a second
/// exits at once, printing how to finish.
async fn until_stopped(
    run: impl std::future::Future<Output = Result<Report, Error>>,
    interrupt: &rollback_core::Interrupt,
    finish: &Unfinished,
) -> Result<Report, Failure> {
    tokio::pin!(run);
    // One listener for the whole run, made before anything is printed: a second Ctrl-C
    // that comes right after "stopping:" is not lost between two listeners.
    let mut ctrl_c = CtrlC::new()?;
    tokio::select! {
        report = &mut run => return Ok(report?),
        () = ctrl_c.next() => {}
    }
    interrupt.interrupt();
    eprintln!(
        "stopping: no step starts now, the calls in flight finish and are journaled, nothing is put back (Ctrl-C again to exit at once)"
    );
    tokio::select! {
        report = &mut run => Ok(report?),
        () = ctrl_c.next() => {
            eprintln!("stopped at once: the journal says how far the run got; its leases lapse after their time to live.");
            finish.print();
            std::process::exit(130);
        }
    }
}

/// Ctrl-C presses (SIGINT), each seen once, none lost between two waits.
struct CtrlC {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl CtrlC {
    fn new() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| Failure::Message(format!("cannot listen for Ctrl-C: {e}")))?;
            Ok(CtrlC { signal })
        }
        #[cfg(not(unix))]
        Ok(CtrlC {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            self.signal.recv().await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn history(kind: &str, name: &str, output: Output) -> Outcome2 {
    let spec = show::spec_of(kind, name).map_err(Failure::Message)?;
    let id = rollback_core::TargetId::new(kind, name);
    let target = registry().build(&id, &spec).await?;
    let (current, revisions) = tokio::try_join!(target.current(), target.history())?;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"target": target.id(), "current": current.id, "revisions": revisions})
        ),
        Output::Human => print!("{}", show::history(&target.id(), &current, &revisions)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(journals: &JournalArgs, output: Output) -> Outcome2 {
    let (dir, runs) = match journals.store().await? {
        Some(store) => (
            PathBuf::from(store.describe()),
            rollback_core::journal::list_store(store.as_ref()).await?,
        ),
        None => {
            let dir = journals.dir();
            let runs = if dir.exists() {
                rollback_core::journal::list_dir(&dir)?
            } else {
                Vec::new()
            };
            (dir, runs)
        }
    };
    match output {
        Output::Json => println!("{}", serde_json::to_string(&runs).unwrap_or_default()),
        Output::Human => print!("{}", show::runs(&dir, &runs)),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &Report, output: Output) -> ExitCode {
    match output {
        Output::Json => println!("{}", serde_json::to_string(report).unwrap_or_default()),
        Output::Human => println!("{report}"),
    }
    if report.outcome == Outcome::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn status(journal: &Path, output: Output) -> Outcome2 {
    let report = rollback_core::report_so_far(journal)?;
    let code = print_report(&report, output);
    if report.outcome == Outcome::Interrupted && output == Output::Human {
        Unfinished {
            run: journal.display().to_string(),
        }
        .print();
    }
    Ok(code)
}

fn report(journal: &Path, format: ReportFormat) -> Outcome2 {
    let incident = rollback_core::incident::incident_report(journal).map_err(|e| {
        Failure::Message(format!(
            "{e}: finish it with `rollback resume {}` first",
            journal.display()
        ))
    })?;
    match format {
        ReportFormat::Markdown => print!("{}", incident.markdown()),
        ReportFormat::Json => println!("{}", serde_json::to_string(&incident).unwrap_or_default()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn resume(found: Found, put_back: bool, output: Output) -> Outcome2 {
    let interrupt = rollback_core::Interrupt::new();
    let opts = rollback_core::ResumeOptions {
        registry: registry(),
        put_back,
        interrupt: interrupt.clone(),
        ..rollback_core::ResumeOptions::default()
    };
    let opts = opts.on_event(event_sink(output));
    let (finish, report) = match found {
        Found::File(journal) => {
            let finish = Unfinished {
                run: journal.display().to_string(),
            };
            let run = rollback_core::resume_with(&journal, opts);
            let report = until_stopped(run, &interrupt, &finish).await;
            (finish, report)
        }
        // Finished from the store (the run's machine may be gone): every new record is
        // written to the copy and the store.
        Found::Store { store, id, local } => {
            let finish = Unfinished { run: id.clone() };
            let run = rollback_core::resume_from_store(store, &id, &local, opts);
            let report = until_stopped(run, &interrupt, &finish).await;
            (finish, report)
        }
    };
    finish.after(report?, output)
}

/// Where events go: JSON lines on stdout, or a timestamped line each on stderr.
fn event_sink(output: Output) -> impl Fn(&Event) + Send + Sync + 'static {
    move |e: &Event| match output {
        Output::Json => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default());
        }
        Output::Human => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", show::event_line(e));
        }
    }
}

/// Asks on the terminal; only `yes` applies.
fn confirm() -> Result<bool, Failure> {
    print!("Apply this plan? Only 'yes' applies: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::Message(format!("cannot read the answer: {e}")))?;
    Ok(answer.trim() == "yes")
}
