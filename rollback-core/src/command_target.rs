//! [`CommandTarget`]: a target driven by the user's own commands, for everything the library
//! has no backend for (Terraform, database migrations, a home-grown deploy tool).
//!
//! The user gives a program (and its arguments) for each operation; each speaks the small
//! JSON contract below on stdout. Recipes built on it, with runnable scripts, are in
//! `examples/recipes/` (Terraform: revisions are the git commits touching a directory;
//! Alembic: down-migrations).
//!
//! ```
//! use std::time::Duration;
//! use rollback_core::CommandTarget;
//!
//! # fn demo() -> rollback_core::Result<()> {
//! let infra = CommandTarget::builder("infra-prod")
//!     .current(["rollback-terraform", "current"])
//!     .history(["rollback-terraform", "history"])
//!     .plan(["rollback-terraform", "plan"])
//!     .apply(["rollback-terraform", "apply"])
//!     .stable(["rollback-terraform", "stable"])
//!     .env("ROLLBACK_TF_DIR", "environments/prod")
//!     .timeout(Duration::from_secs(600))
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! In a runbook file (kind `command`, registered by [`Registry::with_builtins`]):
//!
//! ```yaml
//! steps:
//!   - target:
//!       kind: command
//!       name: infra-prod
//!       current: [rollback-terraform, current]
//!       history: [rollback-terraform, history]
//!       plan: [rollback-terraform, plan]          # optional
//!       apply: [rollback-terraform, apply]
//!       stable: [rollback-terraform, stable]      # optional
//!       env: {ROLLBACK_TF_DIR: environments/prod} # optional
//!       secret_env: [TF_TOKEN_app_terraform_io]   # optional: names only, values from the environment
//!       cwd: /srv/infra                           # optional
//!       timeout: 10m                              # optional, per command (default 5m)
//! ```
//!
//! # The contract
//!
//! Every command is run directly (no shell), in `cwd` (this process's directory when not
//! given), with this process's environment plus `env`, `secret_env` and these variables:
//!
//! | variable | set for | value |
//! | --- | --- | --- |
//! | `ROLLBACK_TARGET` | every command | the target's name |
//! | `ROLLBACK_OPERATION` | every command | `current`, `history`, `plan`, `apply` or `stable` |
//! | `ROLLBACK_FROM_ID` | `plan`, `apply` | the id of the revision in use |
//! | `ROLLBACK_TO_ID` | `plan`, `apply`, `stable` | the id of the revision to move to (to be stable at) |
//! | `ROLLBACK_PRECONDITION` | `apply` | what `plan` returned as its `precondition`, if anything |
//!
//! `plan`, `apply` and `stable` also get the same as one JSON object on stdin:
//! `{"target": NAME, "operation": OP, "from": REVISION, "to": REVISION, "precondition": ...}`
//! (`stable`: `{"target", "operation", "revision"}`), which a script is free to ignore.
//!
//! What each prints on stdout (stderr is for people; its last lines are quoted in errors):
//!
//! - **`current`**: the revision in use, as one revision object:
//!   `{"id": "a1b2c3", "description": "...", "created_at": "2024-05-01T12:00:00Z",
//!   "images": [...], "env_keys": [...], "facts": {"by": "..."}, "key": ...}`. Only `id` is
//!   required (a string, or a number); `attributes` is taken as another name for `facts`
//!   (values may be any JSON scalar); keys not listed here are ignored. A bare JSON string
//!   is taken as `{"id": ...}`. A fact under a secret-looking key (see [`is_secret_key`];
//!   `author` is one, it holds `auth`) is shown as [`REDACTED`].
//! - **`history`**: a JSON array of revision objects, **newest first**, including the one in
//!   use (with the same fields as `current` gives it: a revision whose facts differ is not
//!   the same state).
//! - **`plan`** (optional; without it the plan is the difference of the two revision
//!   objects): either a JSON object `{"diff": [{"section": "fact", "key": "...", "from":
//!   "...", "to": "..."}], "precondition": "..."}` (`section`: `image`, `env`, `fact` or
//!   `description`, default `fact`; `precondition` is handed to `apply`), or any text
//!   (`terraform plan` output, say), whose lines are shown in the plan as `plan` lines (the
//!   first 100). Either way it must change nothing.
//! - **`apply`**: moves the target to `ROLLBACK_TO_ID`. Stdout may be empty or
//!   `{"outcome": "applied" | "already_current"}`. Before running it the target reads
//!   `current` again: already at the revision, it is not run ([`ApplyOutcome::AlreadyCurrent`]);
//!   at neither `from` nor `to`, it is not run either ([`Error::Conflict`]: someone else
//!   changed the target since preflight).
//! - **`stable`** (optional): one look at how far the target is on its way to
//!   `ROLLBACK_TO_ID`: `{"state": "stable" | "progressing" | "failed", "message": "..."}`. It
//!   is polled until `stable` (or `failed`, which ends the wait as a failed rollout) within
//!   the step's timeout. Without it, the target is stable once `current` names the revision.
//!
//! Exit status: `0` is success; [`EXIT_RETRYABLE`] (`75`, `EX_TEMPFAIL`) means "failed, but
//! trying again may help" (a lock held, an API throttling): a retryable
//! [`Error::Backend`], which the engine retries and a wait waits through; anything else is a
//! failure ([`Error::Backend`], not retryable). A command still running after `timeout` is
//! killed ([`Error::Timeout`]; programs it started itself are not). Each command runs in a
//! process group of its own, so a Ctrl-C at the terminal stops the run (which lets the
//! apply in flight finish) rather than the command halfway through its work. Output that does not fit the contract is an
//! [`Error::Backend`] quoting it. Every error names the target (`command/NAME`) and the
//! command; what the command printed is quoted only after the values of `secret_env` and
//! anything that looks like a secret (`password=...`, `token: ...`, long tokens) are taken
//! out, and the full details are in the error's `source()`.
//!
//! # Input is checked before anything runs
//!
//! [`CommandTargetBuilder::build`] (and so a runbook file's `build`, offline) refuses a
//! missing name, `current`, `history` or `apply`; an empty argv or program; a NUL byte; an
//! env key the OS cannot hold or that this module sets; a zero timeout; a `cwd` that is
//! not a directory (a relative one is taken from this process's directory and kept
//! absolute, so a resume elsewhere runs in the same place). Preflight (before the first
//! command runs) refuses a `secret_env` name that is not set, and a program that cannot
//! be found: a program with a `/` is taken from `cwd`, others are looked up on `PATH`
//! (`env`'s `PATH` if it sets one).
//!
//! # Secrets
//!
//! Argv and `env` are data: they are in [`RollbackTarget::spec`], so in journals and
//! runbook files. An `env` key that looks secret (see [`is_secret_key`]: `*_TOKEN`,
//! `*PASSWORD*`, `DATABASE_URL`...) is refused: give it with
//! [`secret_env`](CommandTargetBuilder::secret_env) instead. Secret env values are never
//! in the spec (only their names), `Debug`, errors or revisions: they are taken out of
//! everything a command prints before it is used. A target rebuilt from a spec (a runbook
//! file, a resume) takes each `secret_env` value from this process's environment.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::duration::{format_duration, parse_duration};
use crate::error::{Error, Result};
use crate::process::{describe, kill, millis, read_lines, Tail, OUTPUT_GRACE};
use crate::redact::{excerpt, scrub};
use crate::revision::{
    is_secret_key, Change, Diff, DiffBuilder, DiffEntry, DiffSection, Revision, REDACTED,
};
use crate::selector::Selector;
use crate::target::{ApplyOutcome, Registry, RollbackTarget, Stability, TargetId, TargetSpec};

/// The kind of [`CommandTarget`]s: `"command"`.
pub const KIND: &str = "command";

/// The exit status a command uses for "failed, but trying again may help" (`EX_TEMPFAIL`).
pub const EXIT_RETRYABLE: i32 = 75;

/// How long one command may run unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// At most this much of a command's stdout is read (a history of many revisions fits).
const MAX_STDOUT: u64 = 8 * 1024 * 1024;
/// At most this many lines of a text plan are shown.
const PLAN_LINES: usize = 100;
/// At most this many characters of a command's output are quoted in an error.
const QUOTE_CHARS: usize = 300;
/// The variables this module sets for every command; `env` may not set them.
const RESERVED: [&str; 5] = [
    "ROLLBACK_TARGET",
    "ROLLBACK_OPERATION",
    "ROLLBACK_FROM_ID",
    "ROLLBACK_TO_ID",
    "ROLLBACK_PRECONDITION",
];

/// One of the commands a [`CommandTarget`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Current,
    History,
    Plan,
    Apply,
    Stable,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Current => "current",
            Op::History => "history",
            Op::Plan => "plan",
            Op::Apply => "apply",
            Op::Stable => "stable",
        }
    }

    const ALL: [Op; 5] = [Op::Current, Op::History, Op::Plan, Op::Apply, Op::Stable];
}

/// A target whose operations are the user's own commands, speaking the JSON contract of
/// [this module](self). Built with [`CommandTarget::builder`], or from a runbook file's
/// `{kind: command, ...}` through the [`Registry`].
#[derive(Clone)]
pub struct CommandTarget {
    name: String,
    current: Vec<String>,
    history: Vec<String>,
    plan: Option<Vec<String>>,
    apply: Vec<String>,
    stable: Option<Vec<String>>,
    env: BTreeMap<String, String>,
    secret_env: BTreeMap<String, String>,
    /// `secret_env` names a spec gave that this process's environment does not set: the
    /// target refuses to run any command until they are set.
    missing_secrets: Vec<String>,
    cwd: Option<PathBuf>,
    timeout: Duration,
}

/// Builds a [`CommandTarget`]; [`build`](Self::build) checks every input.
#[derive(Clone, Default)]
pub struct CommandTargetBuilder {
    name: String,
    current: Vec<String>,
    history: Vec<String>,
    plan: Option<Vec<String>>,
    apply: Vec<String>,
    stable: Option<Vec<String>>,
    env: BTreeMap<String, String>,
    secret_env: BTreeMap<String, String>,
    missing_secrets: Vec<String>,
    cwd: Option<PathBuf>,
    timeout: Option<Duration>,
}

fn argv(a: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    a.into_iter().map(Into::into).collect()
}

impl CommandTargetBuilder {
    /// The command printing the revision in use (required).
    pub fn current(mut self, argv_: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.current = argv(argv_);
        self
    }

    /// The command printing every revision, newest first (required).
    pub fn history(mut self, argv_: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.history = argv(argv_);
        self
    }

    /// The command printing what moving to `ROLLBACK_TO_ID` would change (optional).
    pub fn plan(mut self, argv_: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.plan = Some(argv(argv_));
        self
    }

    /// The command moving the target to `ROLLBACK_TO_ID` (required).
    pub fn apply(mut self, argv_: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.apply = argv(argv_);
        self
    }

    /// The command telling how far the target is on its way to `ROLLBACK_TO_ID` (optional;
    /// without it, stable is `current` naming the revision).
    pub fn stable(mut self, argv_: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.stable = Some(argv(argv_));
        self
    }

    /// Sets an environment variable for every command. Its value is data (journaled): a
    /// secret goes in with [`secret_env`](Self::secret_env).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.secret_env.remove(&key);
        self.env.insert(key, value.into());
        self
    }

    /// Sets a secret environment variable for every command: only its name is journaled,
    /// and its value is taken out of whatever the commands print. A target rebuilt from its
    /// spec takes the value from this process's environment.
    pub fn secret_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.env.remove(&key);
        self.secret_env.insert(key, value.into());
        self
    }

    /// Sets the directory the commands run in (a relative one is taken from this process's
    /// directory).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets how long one command may run before it is killed ([`DEFAULT_TIMEOUT`] unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The target, once every input is checked (see the [module docs](self)).
    pub fn build(self) -> Result<CommandTarget> {
        let target = TargetId::new(KIND, &self.name).to_string();
        let bad = |message: String| Error::invalid(target.clone(), message);
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return Err(Error::invalid(
                KIND,
                "a command target needs a name (e.g. infra-prod), without control characters",
            ));
        }
        let required = [
            (Op::Current, Some(&self.current)),
            (Op::History, Some(&self.history)),
            (Op::Plan, self.plan.as_ref()),
            (Op::Apply, Some(&self.apply)),
            (Op::Stable, self.stable.as_ref()),
        ];
        for (op, a) in required {
            let Some(a) = a else { continue };
            let op = op.name();
            match a.first() {
                None => {
                    return Err(bad(format!(
                        "the {op} command is missing or empty; give the program and its \
                         arguments, e.g. {op}: [./rollback-terraform, {op}]"
                    )))
                }
                Some(p) if p.trim().is_empty() => {
                    return Err(bad(format!(
                        "the {op} command's program (its first word) is empty; give a program \
                         name or path"
                    )))
                }
                Some(_) => {}
            }
            if a.iter().any(|w| w.contains('\0')) {
                return Err(bad(format!(
                    "an argument of the {op} command holds a NUL byte, which no program can \
                     be given; remove it"
                )));
            }
        }
        for (key, value, how) in self
            .env
            .iter()
            .map(|(k, v)| (k, v, "env"))
            .chain(self.secret_env.iter().map(|(k, v)| (k, v, "secret_env")))
        {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(bad(format!(
                    "{how} key {key:?} cannot be set (empty, or holding '=' or a NUL byte); \
                     use a name such as TF_WORKSPACE"
                )));
            }
            if RESERVED.contains(&key.as_str()) {
                return Err(bad(format!(
                    "{how} sets {key}, which the target sets itself for each command; \
                     remove it"
                )));
            }
            if value.contains('\0') {
                return Err(bad(format!(
                    "the value of {how} {key} holds a NUL byte, which the environment \
                     cannot hold; remove it"
                )));
            }
            if how == "env" && is_secret_key(key) {
                return Err(bad(format!(
                    "env {key} looks secret, and env values are written to journals; give it \
                     under secret_env instead (only its name is kept)"
                )));
            }
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(bad(
                "the timeout is 0, so every command is killed before it can answer; give it \
                 time, e.g. timeout: 5m"
                    .into(),
            ));
        }
        let cwd = match self.cwd {
            None => None,
            Some(dir) => {
                let absolute = if dir.is_absolute() {
                    dir.clone()
                } else {
                    std::env::current_dir()
                        .map_err(|e| {
                            bad(format!(
                                "cwd {} is relative and this process's directory cannot be \
                                 read; give an absolute path",
                                dir.display()
                            ))
                            .with_source(e)
                        })?
                        .join(&dir)
                };
                if !absolute.is_dir() {
                    return Err(bad(format!(
                        "cwd {} is not a directory; give the folder the commands run in",
                        absolute.display()
                    )));
                }
                Some(absolute.canonicalize().unwrap_or(absolute))
            }
        };
        Ok(CommandTarget {
            name: self.name,
            current: self.current,
            history: self.history,
            plan: self.plan,
            apply: self.apply,
            stable: self.stable,
            env: self.env,
            secret_env: self.secret_env,
            missing_secrets: self.missing_secrets,
            cwd,
            timeout,
        })
    }
}

impl fmt::Debug for CommandTargetBuilder {
    /// Env keys only; secret values never.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandTargetBuilder")
            .field("name", &self.name)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field(
                "secret_env_keys",
                &self.secret_env.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A [`CommandTarget`] as data: the parameters of kind `command`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    name: String,
    #[serde(default)]
    current: Vec<String>,
    #[serde(default)]
    history: Vec<String>,
    #[serde(default)]
    plan: Option<Vec<String>>,
    #[serde(default)]
    apply: Vec<String>,
    #[serde(default)]
    stable: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Names only: the values come from this process's environment.
    #[serde(default)]
    secret_env: Vec<String>,
    #[serde(default)]
    cwd: Option<PathBuf>,
    /// `5m`, `30s`, `500ms`, or a number of seconds.
    #[serde(default)]
    timeout: Option<Value>,
}

impl CommandTarget {
    /// A builder for a target named `name` (its id is `command/NAME`).
    pub fn builder(name: impl Into<String>) -> CommandTargetBuilder {
        CommandTargetBuilder {
            name: name.into(),
            ..Default::default()
        }
    }

    /// The target a spec of kind `command` describes, each `secret_env` value taken from
    /// this process's environment (one that is not set there is refused when a command is
    /// about to run, so a runbook file lints without its secrets). Unknown parameters are
    /// refused.
    pub fn from_spec(spec: &TargetSpec) -> Result<CommandTarget> {
        let p: Params = spec.params()?;
        let target = TargetId::new(KIND, &p.name).to_string();
        let mut b = CommandTarget::builder(p.name);
        b.current = p.current;
        b.history = p.history;
        b.plan = p.plan;
        b.apply = p.apply;
        b.stable = p.stable;
        b.env = p.env;
        b.cwd = p.cwd;
        b.timeout = match p.timeout {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                parse_duration(&s)
                    .map_err(|e| Error::invalid(target.clone(), format!("timeout {e}")))?,
            ),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(secs) if secs.is_finite() && secs >= 0.0 => {
                    Some(Duration::from_secs_f64(secs))
                }
                _ => {
                    return Err(Error::invalid(
                        target,
                        format!("timeout {n} is not a number of seconds; write e.g. 5m"),
                    ))
                }
            },
            Some(other) => {
                return Err(Error::invalid(
                    target,
                    format!("timeout {other} is not a duration; write 500ms, 30s, 5m or 1h"),
                ))
            }
        };
        for key in p.secret_env {
            match std::env::var(&key) {
                Ok(value) => b = b.secret_env(key, value),
                // Refused when the target is about to run (a runbook lints without secrets).
                Err(_) => b.missing_secrets.push(key),
            }
        }
        b.build()
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long one command may run.
    pub fn timeout_per_command(&self) -> Duration {
        self.timeout
    }

    fn target(&self) -> String {
        self.id().to_string()
    }

    fn argv(&self, op: Op) -> Option<&[String]> {
        match op {
            Op::Current => Some(&self.current),
            Op::History => Some(&self.history),
            Op::Plan => self.plan.as_deref(),
            Op::Apply => Some(&self.apply),
            Op::Stable => self.stable.as_deref(),
        }
    }

    /// The values taken out of everything a command prints.
    fn secrets(&self) -> Vec<&str> {
        self.secret_env.values().map(String::as_str).collect()
    }

    /// `secret`-free text of at most `max` characters.
    fn quote(&self, text: &str, max: usize) -> String {
        quote_scrubbed(&scrub(text, &self.secrets()), max)
    }

    /// The program of `argv[0]`, found as the OS would find it: with a `/`, from `cwd`;
    /// else on `PATH` (`env`'s, if it sets one).
    fn find_program(&self, op: Op, program: &str) -> Result<PathBuf> {
        let not_found = |place: String| {
            Error::invalid(
                self.target(),
                format!(
                    "the {} command's program {program:?} is not found {place}; install it or \
                     fix the path",
                    op.name()
                ),
            )
        };
        if program.contains('/') {
            let path = Path::new(program);
            let path = match (&self.cwd, path.is_relative()) {
                (Some(dir), true) => dir.join(path),
                _ => path.to_path_buf(),
            };
            return if path.is_file() {
                Ok(path)
            } else {
                Err(not_found(format!("(no file {})", path.display())))
            };
        }
        let search: Option<OsString> = self
            .env
            .get("PATH")
            .map(OsString::from)
            .or_else(|| std::env::var_os("PATH"));
        let search = search.unwrap_or_default();
        for dir in std::env::split_paths(&search) {
            let dir = match (&self.cwd, dir.is_relative()) {
                (Some(cwd), true) => cwd.join(dir),
                _ => dir,
            };
            let candidate = dir.join(program);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
        Err(not_found("on PATH".into()))
    }

    /// Refuses to run while a `secret_env` value is missing.
    fn check_secrets(&self) -> Result<()> {
        match self.missing_secrets.first() {
            None => Ok(()),
            Some(key) => Err(Error::invalid(
                self.target(),
                format!(
                    "secret_env {key} is not set in this process's environment; export it \
                     before running (its value is never written down)"
                ),
            )),
        }
    }

    /// Preflight's check that every command can be started; runs nothing.
    fn check_programs(&self) -> Result<()> {
        self.check_secrets()?;
        for op in Op::ALL {
            if let Some(a) = self.argv(op) {
                if let Some(p) = a.first() {
                    self.find_program(op, p)?;
                }
            }
        }
        Ok(())
    }

    /// Runs one command: its stdout on success; a typed error otherwise.
    async fn run(&self, op: Op, vars: &[(&str, String)], stdin: Option<Value>) -> Result<String> {
        self.check_secrets()?;
        let Some(argv) = self.argv(op) else {
            return Err(Error::invalid(
                self.target(),
                format!("no {} command is given", op.name()),
            ));
        };
        let program = argv.first().ok_or_else(|| {
            Error::invalid(self.target(), format!("the {} command is empty", op.name()))
        })?;
        let program = self.find_program(op, program)?;
        let line = argv.join(" ");
        let mut cmd = Command::new(&program);
        cmd.args(&argv[1..])
            .envs(&self.env)
            .envs(&self.secret_env)
            .env("ROLLBACK_TARGET", &self.name)
            .env("ROLLBACK_OPERATION", op.name())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        // A process group of its own: a Ctrl-C at the terminal stops the run (which lets the
        // apply in flight finish), not the user's command in the middle of its work.
        #[cfg(unix)]
        cmd.process_group(0);
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            Error::backend(
                self.target(),
                format!(
                    "the {} command `{line}` could not be started ({e}); check the program and cwd",
                    op.name()
                ),
                false,
            )
            .with_source(e)
        })?;
        drop(cmd);

        let input = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let tail = Mutex::new(Tail::new(&self.secrets()));
        let run = async {
            let feed = async {
                if let (Some(mut pipe), Some(value)) = (input, stdin.as_ref()) {
                    // A command that does not read its stdin closes it: not an error.
                    let _ = pipe.write_all(value.to_string().as_bytes()).await;
                    let _ = pipe.shutdown().await;
                }
            };
            let out = async {
                let mut buf = Vec::new();
                if let Some(pipe) = stdout {
                    let _ = pipe.take(MAX_STDOUT).read_to_end(&mut buf).await;
                }
                buf
            };
            let err = async {
                if let Some(pipe) = stderr {
                    read_lines(pipe, &tail).await;
                }
            };
            let output = async { futures::join!(feed, out, err).1 };
            tokio::pin!(output);
            let mut collected = None;
            let status = loop {
                tokio::select! {
                    status = child.wait() => break status,
                    buf = &mut output, if collected.is_none() => collected = Some(buf),
                }
            };
            if collected.is_none() {
                // Whatever a background grandchild still holds open is not waited for.
                collected = tokio::time::timeout(OUTPUT_GRACE, &mut output).await.ok();
            }
            (status, collected.unwrap_or_default())
        };
        let finished = tokio::time::timeout(self.timeout, run).await;
        let elapsed = started.elapsed();
        let stderr_tail = tail
            .lock()
            .ok()
            .and_then(|t| t.render())
            .map(|t| quote_scrubbed(&t, QUOTE_CHARS));
        let (status, stdout) = match finished {
            Err(_) => {
                let killed = kill(&mut child).await;
                return Err(Error::timeout(
                    self.target(),
                    format!("the {} command `{line}` to finish ({killed})", op.name()),
                    self.timeout,
                    stderr_tail.unwrap_or_else(|| "no output on stderr".into()),
                ));
            }
            Ok((Err(e), _)) => {
                return Err(Error::backend(
                    self.target(),
                    format!(
                        "the {} command `{line}` could not be waited for ({e})",
                        op.name()
                    ),
                    true,
                )
                .with_source(e))
            }
            Ok((Ok(status), stdout)) => (status, String::from_utf8_lossy(&stdout).into_owned()),
        };
        if status.success() {
            return Ok(stdout);
        }
        let retryable = status.code() == Some(EXIT_RETRYABLE);
        let quoted = match &stderr_tail {
            Some(t) => format!(": {t}"),
            None => " (nothing on stderr)".into(),
        };
        let todo = if retryable {
            "it asked to be tried again"
        } else {
            match op {
                Op::Apply => {
                    "check the target's state and fix what the command reports before trying again"
                }
                _ => "fix what the command reports and plan again",
            }
        };
        let failure = CommandFailure {
            operation: op.name(),
            command: line.clone(),
            status: describe(status),
            elapsed,
            stderr: stderr_tail.clone(),
            stdout: Some(self.quote(&stdout, QUOTE_CHARS)).filter(|s| !s.is_empty()),
        };
        Err(Error::backend(
            self.target(),
            format!(
                "the {} command `{line}` failed ({}){quoted}; {todo}",
                op.name(),
                describe(status)
            ),
            retryable,
        )
        .with_source(failure))
    }

    /// An error for stdout that does not fit the contract.
    fn unexpected(
        &self,
        op: Op,
        expected: &str,
        stdout: &str,
        e: Option<serde_json::Error>,
    ) -> Error {
        let printed = self.quote(stdout, QUOTE_CHARS);
        let printed = if printed.is_empty() {
            "nothing".to_string()
        } else {
            printed
        };
        let err = Error::backend(
            self.target(),
            format!(
                "the {} command `{}` printed {printed:?} where {expected} was expected; see the \
                 command target contract (rollback_core::command_target)",
                op.name(),
                self.argv(op).map(|a| a.join(" ")).unwrap_or_default()
            ),
            false,
        );
        match e {
            Some(e) => err.with_source(e),
            None => err,
        }
    }

    fn parse_revision(&self, op: Op, value: Value, stdout: &str) -> Result<Revision> {
        let wire: WireRevision = match value {
            Value::String(id) => WireRevision {
                id: Value::String(id),
                ..Default::default()
            },
            other => serde_json::from_value(other).map_err(|e| {
                self.unexpected(op, "a revision object with an \"id\"", stdout, Some(e))
            })?,
        };
        let secrets = self.secrets();
        let clean = |s: &str| scrub(s, &secrets);
        let id = match &wire.id {
            Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(self.unexpected(
                    op,
                    "a revision with a non-empty \"id\" (a string or a number)",
                    stdout,
                    None,
                ))
            }
        };
        let created_at = match &wire.created_at {
            None => None,
            Some(t) => Some(
                DateTime::parse_from_rfc3339(t)
                    .map_err(|_| {
                        self.unexpected(
                            op,
                            "a \"created_at\" in RFC 3339 (2024-05-01T12:00:00Z)",
                            stdout,
                            None,
                        )
                    })?
                    .with_timezone(&Utc),
            ),
        };
        let mut facts = BTreeMap::new();
        for (k, v) in wire.facts {
            let v = match v {
                Value::Null => continue,
                Value::String(s) => s,
                other => other.to_string(),
            };
            let v = if is_secret_key(&k) {
                REDACTED.to_string()
            } else {
                clean(&v)
            };
            facts.insert(k, v);
        }
        Ok(Revision {
            id: clean(&id),
            created_at,
            images: wire.images.iter().map(|i| clean(i)).collect(),
            env_keys: wire.env_keys,
            description: wire.description.as_deref().map(clean),
            facts,
            key: wire.key.as_deref().map(clean),
        })
    }

    fn json(&self, op: Op, stdout: &str, expected: &str) -> Result<Value> {
        serde_json::from_str(stdout.trim())
            .map_err(|e| self.unexpected(op, expected, stdout, Some(e)))
    }

    async fn read_current(&self) -> Result<Revision> {
        let out = self.run(Op::Current, &[], None).await?;
        let v = self.json(Op::Current, &out, "one revision object")?;
        self.parse_revision(Op::Current, v, &out)
    }

    async fn read_history(&self) -> Result<Vec<Revision>> {
        let out = self.run(Op::History, &[], None).await?;
        match self.json(Op::History, &out, "a JSON array of revisions, newest first")? {
            Value::Array(items) => items
                .into_iter()
                .map(|v| self.parse_revision(Op::History, v, &out))
                .collect(),
            _ => Err(self.unexpected(
                Op::History,
                "a JSON array of revisions, newest first",
                &out,
                None,
            )),
        }
    }

    fn change_vars(change_from: &Revision, to: &Revision) -> Vec<(&'static str, String)> {
        vec![
            ("ROLLBACK_FROM_ID", change_from.id.clone()),
            ("ROLLBACK_TO_ID", to.id.clone()),
        ]
    }

    fn change_input(
        &self,
        op: Op,
        from: &Revision,
        to: &Revision,
        precondition: Option<&str>,
    ) -> Value {
        serde_json::json!({
            "target": self.name,
            "operation": op.name(),
            "from": from,
            "to": to,
            "precondition": precondition,
        })
    }

    /// The change from `from` (just read) to `to`, with the plan command's diff if there is one.
    async fn plan_from(&self, from: Revision, to: &Revision) -> Result<Change> {
        let mut change = Change::new(self.id(), from, to.clone());
        if self.plan.is_none() {
            return Ok(change);
        }
        let input = self.change_input(Op::Plan, &change.from, to, None);
        let out = self
            .run(Op::Plan, &Self::change_vars(&change.from, to), Some(input))
            .await?;
        let trimmed = out.trim();
        if trimmed.is_empty() {
            return Ok(change);
        }
        match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Object(m)) if m.contains_key("diff") || m.contains_key("precondition") => {
                let plan: WirePlan = serde_json::from_str(trimmed).map_err(|e| {
                    self.unexpected(
                        Op::Plan,
                        "{\"diff\": [{\"section\", \"key\", \"from\", \"to\"}], \"precondition\"} or text",
                        &out,
                        Some(e),
                    )
                })?;
                let secrets = self.secrets();
                let clean = |s: Option<Value>| -> Option<String> {
                    match s? {
                        Value::Null => None,
                        Value::String(s) => Some(scrub(&s, &secrets)),
                        other => Some(scrub(&other.to_string(), &secrets)),
                    }
                };
                let mut b = DiffBuilder::default();
                for e in plan.diff {
                    b.entry(
                        e.section.unwrap_or(DiffSection::Fact),
                        &e.key,
                        clean(e.from),
                        clean(e.to),
                    );
                }
                let extra = b.build();
                if !extra.is_empty() {
                    change.diff = extra;
                }
                change.precondition = plan.precondition.map(|p| scrub(&p, &secrets));
            }
            _ => {
                let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
                let mut entries: Vec<DiffEntry> = lines
                    .iter()
                    .take(PLAN_LINES)
                    .map(|l| plan_line(self.quote(l, QUOTE_CHARS)))
                    .collect();
                if lines.len() > PLAN_LINES {
                    entries.push(plan_line(format!(
                        "... {} more lines (run the plan command to see them)",
                        lines.len() - PLAN_LINES
                    )));
                }
                let mut diff: Diff = change.diff.clone();
                diff.entries.extend(entries);
                change.diff = diff;
            }
        }
        Ok(change)
    }
}

/// [`excerpt`] of text already scrubbed of known secrets, keeping its [`REDACTED`] marks
/// (which `excerpt` would otherwise drop as HTML tags).
fn quote_scrubbed(text: &str, max: usize) -> String {
    const MARK: &str = "__ROLLBACK_REDACTED__";
    excerpt(&text.replace(REDACTED, MARK), max).replace(MARK, REDACTED)
}

fn plan_line(text: String) -> DiffEntry {
    DiffEntry {
        section: DiffSection::Fact,
        key: "plan".into(),
        from: None,
        to: Some(text),
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// A revision as a command prints it.
#[derive(Debug, Default, Deserialize)]
struct WireRevision {
    id: Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    env_keys: Vec<String>,
    #[serde(default, alias = "attributes")]
    facts: BTreeMap<String, Value>,
    #[serde(default)]
    key: Option<String>,
}

/// A plan as a command prints it, in JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePlan {
    #[serde(default)]
    diff: Vec<WireDiffEntry>,
    #[serde(default)]
    precondition: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDiffEntry {
    #[serde(default)]
    section: Option<DiffSection>,
    key: String,
    #[serde(default)]
    from: Option<Value>,
    #[serde(default)]
    to: Option<Value>,
}

/// What `apply` may print.
#[derive(Debug, Deserialize)]
struct WireApply {
    outcome: ApplyOutcome,
}

/// What `stable` prints.
#[derive(Debug, Deserialize)]
struct WireStable {
    state: WireState,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireState {
    Stable,
    Progressing,
    Failed,
}

/// The details of a command that failed: the `source()` of its [`Error::Backend`]. All of
/// it already scrubbed of secrets.
#[derive(Debug)]
pub struct CommandFailure {
    /// `current`, `history`, `plan`, `apply` or `stable`.
    pub operation: &'static str,
    /// The command line (argv joined by spaces).
    pub command: String,
    /// `exit 1`, `killed by signal 9`...
    pub status: String,
    /// How long it ran.
    pub elapsed: Duration,
    /// The last lines it printed on stderr, if any.
    pub stderr: Option<String>,
    /// The start of what it printed on stdout, if anything.
    pub stdout: Option<String>,
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} command `{}`: {} after {}",
            self.operation,
            self.command,
            self.status,
            millis(self.elapsed)
        )?;
        if let Some(e) = &self.stderr {
            write!(f, "; stderr: {e}")?;
        }
        if let Some(o) = &self.stdout {
            write!(f, "; stdout: {o}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CommandFailure {}

impl fmt::Debug for CommandTarget {
    /// Argv, env keys (never secret values), cwd and timeout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandTarget")
            .field("name", &self.name)
            .field("current", &self.current)
            .field("history", &self.history)
            .field("plan", &self.plan)
            .field("apply", &self.apply)
            .field("stable", &self.stable)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field(
                "secret_env_keys",
                &self.secret_env.keys().collect::<Vec<_>>(),
            )
            .field("missing_secret_env", &self.missing_secrets)
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[async_trait]
impl RollbackTarget for CommandTarget {
    fn id(&self) -> TargetId {
        TargetId::new(KIND, &self.name)
    }

    /// Every parameter (secret env by name only), `timeout` as text (`5m`).
    fn spec(&self) -> TargetSpec {
        TargetSpec::new(
            KIND,
            Params {
                name: self.name.clone(),
                current: self.current.clone(),
                history: self.history.clone(),
                plan: self.plan.clone(),
                apply: self.apply.clone(),
                stable: self.stable.clone(),
                env: self.env.clone(),
                secret_env: self
                    .secret_env
                    .keys()
                    .chain(&self.missing_secrets)
                    .cloned()
                    .collect(),
                cwd: self.cwd.clone(),
                timeout: Some(Value::String(format_duration(self.timeout))),
            },
        )
    }

    async fn current(&self) -> Result<Revision> {
        self.read_current().await
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        self.read_history().await
    }

    async fn plan(&self, to: &Revision) -> Result<Change> {
        let from = self.read_current().await?;
        self.plan_from(from, to).await
    }

    /// Checks that every program can be found, then runs `current`, `history` and (unless
    /// the target already is there) `plan`, once each.
    async fn prepare(&self, selector: &Selector) -> Result<Change> {
        self.check_programs()?;
        let current = self.read_current().await?;
        let history = self.read_history().await?;
        let to = selector.resolve(&self.id(), &history, &current.id)?;
        if current.same_state_as(&to) {
            return Ok(Change::new(self.id(), current.clone(), current));
        }
        self.plan_from(current, &to).await
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        let now = self.read_current().await?;
        if now.same_state_as(&change.to) {
            return Ok(ApplyOutcome::AlreadyCurrent);
        }
        if !now.same_as(&change.from) {
            return Err(Error::conflict(self.target(), &change.from.id, &now.id));
        }
        let mut vars = Self::change_vars(&change.from, &change.to);
        if let Some(p) = &change.precondition {
            vars.push(("ROLLBACK_PRECONDITION", p.clone()));
        }
        let input = self.change_input(
            Op::Apply,
            &change.from,
            &change.to,
            change.precondition.as_deref(),
        );
        let out = self.run(Op::Apply, &vars, Some(input)).await?;
        let trimmed = out.trim();
        if trimmed.starts_with('{') {
            let said: WireApply = serde_json::from_str(trimmed).map_err(|e| {
                self.unexpected(
                    Op::Apply,
                    "nothing, or {\"outcome\": \"applied\" | \"already_current\"}",
                    &out,
                    Some(e),
                )
            })?;
            return Ok(said.outcome);
        }
        Ok(ApplyOutcome::Applied)
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        if self.stable.is_none() {
            let now = self.read_current().await?;
            return Ok(if now.same_as(revision) {
                Stability::Stable
            } else {
                Stability::Waiting(format!(
                    "current revision is {}, waiting for {}",
                    now.id, revision.id
                ))
            });
        }
        let input = serde_json::json!({
            "target": self.name,
            "operation": Op::Stable.name(),
            "revision": revision,
        });
        let out = self
            .run(
                Op::Stable,
                &[("ROLLBACK_TO_ID", revision.id.clone())],
                Some(input),
            )
            .await?;
        let expected = "{\"state\": \"stable\" | \"progressing\" | \"failed\", \"message\": ...}";
        let said: WireStable = serde_json::from_str(out.trim())
            .map_err(|e| self.unexpected(Op::Stable, expected, &out, Some(e)))?;
        let message = said.message.map(|m| self.quote(&m, QUOTE_CHARS));
        Ok(match said.state {
            WireState::Stable => Stability::Stable,
            WireState::Progressing => Stability::Waiting(
                message.unwrap_or_else(|| format!("{} is progressing", revision.id)),
            ),
            WireState::Failed => {
                Stability::Failed(message.unwrap_or_else(|| {
                    format!("the stable command reported {} failed", revision.id)
                }))
            }
        })
    }
}

/// Registers kind `command` ([`CommandTarget::from_spec`]); [`Registry::with_builtins`]
/// does it already.
pub fn register(r: &mut Registry) {
    r.register(KIND, |spec: TargetSpec| async move {
        Ok(Arc::new(CommandTarget::from_spec(&spec)?) as Arc<dyn RollbackTarget>)
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    fn target(current: &str) -> CommandTargetBuilder {
        CommandTarget::builder("t")
            .current(sh(current))
            .history(sh(r#"echo '[{"id":"2"},{"id":"1"}]'"#))
            .apply(sh("true"))
    }

    #[tokio::test]
    async fn revisions_are_read_with_their_facts_and_secrets_taken_out() {
        let t = target(
            r#"echo '{"id": 7, "description": "deploy tok-secret-1", "created_at": "2024-05-01T12:00:00Z", "images": ["r/app:1"], "attributes": {"owner": "ann", "n": 3, "db_password": "x", "gone": null}, "extra": 1}'"#,
        )
        .secret_env("CREDS", "tok-secret-1")
        .build()
        .unwrap();
        let r = t.current().await.unwrap();
        assert_eq!(r.id, "7");
        assert_eq!(r.description.as_deref(), Some("deploy <redacted>"));
        assert_eq!(r.images, ["r/app:1"]);
        assert_eq!(r.facts["owner"], "ann");
        assert_eq!(r.facts["n"], "3");
        assert_eq!(r.facts["db_password"], REDACTED);
        assert!(!r.facts.contains_key("gone"));
        assert_eq!(
            r.created_at.unwrap().to_rfc3339(),
            "2024-05-01T12:00:00+00:00"
        );
    }

    #[tokio::test]
    async fn output_off_contract_is_a_backend_error_quoting_it() {
        let t = target("echo 'not json'").build().unwrap();
        let e = t.current().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert!(!e.is_retryable());
        let s = e.to_string();
        assert!(s.starts_with("command/t: "), "{s}");
        assert!(s.contains("\"not json\""), "{s}");
        assert!(s.contains("revision object"), "{s}");
        let e = target(r#"echo '{"description": "no id"}'"#)
            .build()
            .unwrap();
        assert_eq!(e.current().await.unwrap_err().kind(), ErrorKind::Backend);
    }

    #[tokio::test]
    async fn exit_75_is_retryable_and_others_are_not() {
        let t = target("echo busy >&2; exit 75").build().unwrap();
        let e = t.current().await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().contains("exit 75"), "{e}");
        assert!(e.to_string().contains(": busy;"), "{e}");
        let t = target("exit 3").build().unwrap();
        let e = t.current().await.unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        assert!(e.to_string().contains("nothing on stderr"), "{e}");
    }

    #[tokio::test]
    async fn text_plans_become_plan_lines_and_json_plans_diff_entries() {
        let t = target(r#"echo '{"id":"2"}'"#)
            .plan(sh(r#"echo "  ~ resource x ($ROLLBACK_FROM_ID -> $ROLLBACK_TO_ID)"; echo; echo "  password=hunter2""#))
            .build()
            .unwrap();
        let c = t.plan(&Revision::new("1")).await.unwrap();
        let text = c.diff.to_string();
        assert!(
            text.contains("+ fact plan: ~ resource x (2 -> 1)"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(c.diff.entries.len(), 2, "{text}");

        let t = target(r#"echo '{"id":"2"}'"#)
            .plan(sh(r#"cat >/dev/null; echo '{"diff": [{"key": "replicas", "from": 2, "to": "3"}, {"section": "env", "key": "API_TOKEN", "from": "a", "to": "b"}], "precondition": "etag-9"}'"#))
            .build()
            .unwrap();
        let c = t.plan(&Revision::new("1")).await.unwrap();
        assert_eq!(c.precondition.as_deref(), Some("etag-9"));
        let text = c.diff.to_string();
        assert!(text.contains("~ fact replicas: 2 -> 3"), "{text}");
        assert!(
            text.contains("API_TOKEN: <redacted> -> <redacted>"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn stable_states_map_to_stability() {
        for (out, want) in [
            (r#"{"state":"stable"}"#, Stability::Stable),
            (
                r#"{"state":"progressing","message":"1 of 2"}"#,
                Stability::Waiting("1 of 2".into()),
            ),
            (
                r#"{"state":"failed","message":"health check red"}"#,
                Stability::Failed("health check red".into()),
            ),
        ] {
            let t = target(r#"echo '{"id":"2"}'"#)
                .stable(sh(&format!(
                    r#"test "$ROLLBACK_TO_ID" = 1 && echo '{out}'"#
                )))
                .build()
                .unwrap();
            assert_eq!(t.check_stable(&Revision::new("1")).await.unwrap(), want);
        }
        // Without a stable command: current naming the revision.
        let t = target(r#"echo '{"id":"2"}'"#).build().unwrap();
        assert_eq!(
            t.check_stable(&Revision::new("2")).await.unwrap(),
            Stability::Stable
        );
        assert!(matches!(
            t.check_stable(&Revision::new("1")).await.unwrap(),
            Stability::Waiting(_)
        ));
    }

    #[tokio::test]
    async fn apply_is_skipped_when_already_there_and_refused_on_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("applied");
        let apply = sh(&format!("touch {}", marker.display()));
        let t = target(r#"echo '{"id":"1"}'"#)
            .apply(apply.clone())
            .build()
            .unwrap();
        let change = Change::new(t.id(), Revision::new("2"), Revision::new("1"));
        assert_eq!(
            t.apply(&change).await.unwrap(),
            ApplyOutcome::AlreadyCurrent
        );
        let t = target(r#"echo '{"id":"3"}'"#).apply(apply).build().unwrap();
        let e = t.apply(&change).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(!marker.exists(), "apply never ran");
    }

    #[test]
    fn build_refuses_what_cannot_run() {
        let cases = [
            (CommandTarget::builder(""), "needs a name"),
            (
                target("true").current(Vec::<String>::new()),
                "current command is missing",
            ),
            (
                CommandTarget::builder("t").current(["a"]).history(["b"]),
                "apply command is missing",
            ),
            (target("true").plan([""]), "plan command's program"),
            (target("true").stable(["x", "a\0b"]), "NUL byte"),
            (target("true").env("A=B", "x"), "env key \"A=B\""),
            (
                target("true").env("ROLLBACK_TO_ID", "x"),
                "sets ROLLBACK_TO_ID",
            ),
            (target("true").env("DB_PASSWORD", "x"), "under secret_env"),
            (target("true").timeout(Duration::ZERO), "timeout is 0"),
            (target("true").cwd("/no/such/dir/here"), "not a directory"),
            (
                target("true").cwd("no-such-relative-dir"),
                "not a directory",
            ),
        ];
        for (b, want) in cases {
            let e = b.build().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{want}");
            assert!(e.to_string().contains(want), "{want}: {e}");
        }
    }

    #[tokio::test]
    async fn spec_round_trips_through_the_registry_with_secret_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(r#"echo '{"id":"1"}'"#)
            .plan(["p"])
            .env("REGION", "eu-west-1")
            .secret_env("PATH_SECRET_FOR_TEST", "tok-1234567")
            .cwd(dir.path())
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        let spec = t.spec();
        let json = serde_json::to_string(&spec).unwrap();
        assert!(!json.contains("tok-1234567"), "{json}");
        assert!(
            json.contains(r#""secret_env":["PATH_SECRET_FOR_TEST"]"#),
            "{json}"
        );
        assert!(json.contains(r#""timeout":"90s""#), "{json}");
        let debug = format!("{t:?}");
        assert!(
            !debug.contains("tok-1234567") && !debug.contains("eu-west-1"),
            "{debug}"
        );

        // Rebuilt: the secret comes from the environment, refused while it is not there.
        let missing = CommandTarget::from_spec(&spec).unwrap();
        assert_eq!(missing.spec(), spec, "the name is kept");
        let e = missing.current().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.to_string()
                .contains("secret_env PATH_SECRET_FOR_TEST is not set"),
            "{e}"
        );
        // Set in the environment (HOME is), the value is passed and taken out of output.
        let mut params = spec.params.clone();
        params["secret_env"] = serde_json::json!(["HOME"]);
        params["current"] = serde_json::json!([
            "sh",
            "-c",
            r#"echo "{\"id\": \"1\", \"description\": \"home is $HOME\"}""#
        ]);
        let home = CommandTarget::from_spec(&TargetSpec {
            kind: KIND.into(),
            params,
        })
        .unwrap();
        let r = home.current().await.unwrap();
        assert_eq!(r.description.as_deref(), Some("home is <redacted>"));
        assert!(!format!("{home:?}{:?}", home.spec()).contains(&std::env::var("HOME").unwrap()));

        let mut params = spec.params.clone();
        params["secret_env"] = serde_json::json!([]);
        let spec = TargetSpec {
            kind: KIND.into(),
            params,
        };
        let rebuilt = Registry::with_builtins()
            .build(&t.id(), &spec)
            .await
            .unwrap();
        assert_eq!(rebuilt.id(), t.id());
        assert_eq!(rebuilt.spec(), spec);
        let mut params = spec.params.clone();
        params["curent"] = serde_json::json!(["x"]);
        let e = CommandTarget::from_spec(&TargetSpec {
            kind: KIND.into(),
            params,
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("unknown field `curent`"), "{e}");
    }

    #[tokio::test]
    async fn a_missing_program_is_refused_in_preflight() {
        let t = target(r#"echo '{"id":"1"}'"#)
            .apply(["./no-such-apply-script"])
            .build()
            .unwrap();
        let e = t.prepare(&Selector::Previous).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("no-such-apply-script"), "{e}");
    }
}
