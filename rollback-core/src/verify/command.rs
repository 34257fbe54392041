//! [`CommandCheck`]: runs a program (a smoke test script, say) and passes on exit status 0.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::join_all;
use serde::{Deserialize, Serialize, Serializer};
use tokio::io::AsyncRead;
use tokio::process::Command;

use super::redacted::{redacted_placeholders, serialize_redacted};
use super::{CheckOutcome, Verifier, VerifierSpec};
use crate::error::{Error, Result};
use crate::process::{describe, kill, millis, read_lines, Tail, OUTPUT_GRACE};
use crate::revision::{is_secret_key, REDACTED};

/// The target named in errors about a command check.
const TARGET: &str = "command-check";

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Runs a program directly (no shell) and passes when it exits with status 0.
///
/// This is runbook 002's `./infra/scripts/smoke_test.sh --url ...` as a check:
///
/// ```
/// use std::time::Duration;
/// use rollback_core::verify::CommandCheck;
///
/// let smoke = CommandCheck::new(["./infra/scripts/smoke_test.sh", "--url", "https://api"])
///     .env("SMOKE_TOKEN", "s3cr3t")
///     .cwd("/srv/app")
///     .timeout(Duration::from_secs(120));
/// ```
///
/// The evidence names the command, its exit status and duration, and the last few
/// non-empty lines of its output (stdout and stderr together, in order, as with `2>&1`).
///
/// # Secrets
///
/// `argv` is shown in names, evidence and journals: pass secrets through `env`. Env
/// values never appear in [`Verifier::name`] or `Debug`. When the check is serialized
/// (into a journal or a [`VerifierSpec`]), values of secret-looking keys (see
/// [`is_secret_key`]: `*_TOKEN`, `*PASSWORD*`, `DATABASE_URL`...) are written as
/// [`REDACTED`]; other env values are written as they are. A secret under an innocuous
/// name goes in with [`CommandCheck::secret_env`], and a value the program gets some other
/// way (a file, a vault) can be marked with [`CommandCheck::secret`]; both are written as
/// [`REDACTED`] too. A check rebuilt from such data refuses to run
/// ([`Error::InvalidInput`]) until the secret is set again.
///
/// The program's output is evidence, and from there goes into events, the journal and the
/// report; a script may print what it was given (`curl -v`, `set -x`). So every occurrence
/// of a secret-looking env value, a [`secret_env`](CommandCheck::secret_env) value or a
/// [`secret`](CommandCheck::secret) value (of 4 characters or more) is replaced by
/// [`REDACTED`] in the captured output before it becomes evidence.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandCheck {
    /// The program and its arguments; run directly, not through a shell.
    pub argv: Vec<String>,
    /// Extra environment variables for the program (on top of this process's).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "serialize_env"
    )]
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values are secret whatever their names (set with
    /// [`CommandCheck::secret_env`]); always written as [`REDACTED`].
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "serialize_all_redacted"
    )]
    pub secret_env: BTreeMap<String, String>,
    /// Values taken out of the output (set with [`CommandCheck::secret`]); written as
    /// [`REDACTED`], never shown.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_secrets"
    )]
    secrets: Vec<String>,
    /// The working directory; this process's when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// How long the program may run before it is killed and the check fails (60 s by default).
    #[serde(default = "default_timeout", with = "crate::serde_duration")]
    pub timeout: Duration,
}

impl CommandCheck {
    /// A check running `argv` (program first), with no extra env and a 60 s timeout.
    pub fn new(argv: impl IntoIterator<Item = impl Into<String>>) -> Self {
        CommandCheck {
            argv: argv.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            secrets: Vec::new(),
            cwd: None,
            timeout: default_timeout(),
        }
    }

    /// Sets an environment variable for the program.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.secret_env.remove(&key);
        self.env.insert(key, value.into());
        self
    }

    /// Sets an environment variable whose value is secret although its name does not look
    /// it (`SMOKE_KEY`, `CREDS`): never journaled, and taken out of the captured output.
    pub fn secret_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.env.remove(&key);
        self.secret_env.insert(key, value.into());
        self
    }

    /// Marks `value` as secret: the program may print it (it read it from a file, say), so
    /// it is taken out of the captured output. Never journaled.
    pub fn secret(mut self, value: impl Into<String>) -> Self {
        self.secrets.push(value.into());
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets how long the program may run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The program, once [`Verifier::validate`] accepted the check.
    fn program(&self) -> Result<&str> {
        Verifier::validate(self)?;
        self.argv
            .first()
            .map(String::as_str)
            .ok_or_else(|| Error::invalid(TARGET, "argv is empty"))
    }

    /// The values taken out of the output: secret-looking env values, `secret_env` values
    /// and values marked with [`CommandCheck::secret`].
    fn secret_values(&self) -> Vec<&str> {
        self.env
            .iter()
            .filter(|(k, _)| is_secret_key(k))
            .map(|(_, v)| v)
            .chain(self.secret_env.values())
            .chain(&self.secrets)
            .map(String::as_str)
            .collect()
    }

    /// Refuses input that cannot run: an empty `argv`, a NUL byte, an env key the OS
    /// cannot hold, a zero timeout, or a secret lost to redaction.
    fn refuse(&self) -> Result<()> {
        let program = self.argv.first().ok_or_else(|| {
            Error::invalid(
                TARGET,
                "argv is empty; give the program to run and its arguments, \
                 e.g. [\"./smoke_test.sh\", \"--url\", \"https://api\"]",
            )
        })?;
        if program.is_empty() {
            return Err(Error::invalid(
                TARGET,
                "the program (argv[0]) is an empty string; give a program name or path",
            ));
        }
        if self.argv.iter().any(|a| a.contains('\0')) {
            return Err(Error::invalid(
                TARGET,
                format!(
                    "`{}`: an argument holds a NUL byte, which no program can be given; \
                     remove it",
                    self.name()
                ),
            ));
        }
        let all_env = self.env.iter().chain(&self.secret_env);
        for (key, value) in all_env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(Error::invalid(
                    TARGET,
                    format!(
                        "`{}`: env key {key:?} cannot be set (empty, or holding '=' or a NUL \
                         byte); use a name such as API_TOKEN",
                        self.name()
                    ),
                ));
            }
            if value.contains('\0') {
                return Err(Error::invalid(
                    TARGET,
                    format!(
                        "`{}`: the value of env {key} holds a NUL byte, which the \
                         environment cannot hold; remove it",
                        self.name()
                    ),
                ));
            }
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid(
                TARGET,
                format!(
                    "`{}`: the timeout is 0, so the program is killed before it can pass; \
                     give it time, e.g. .timeout(Duration::from_secs(60))",
                    self.name()
                ),
            ));
        }
        let lost = redacted_placeholders(&self.env, is_secret_key)
            .map(|k| (k.as_str(), "env"))
            .chain(
                redacted_placeholders(&self.secret_env, |_| true)
                    .map(|k| (k.as_str(), "secret_env")),
            )
            .next();
        if let Some((key, how)) = lost {
            return Err(Error::invalid(
                TARGET,
                format!(
                    "`{}`: env {key} holds {REDACTED:?} because secrets are not journaled; \
                     set it again with .{how}({key:?}, ...) before running the check",
                    self.name()
                ),
            ));
        }
        if self.secrets.iter().any(|v| v == REDACTED) {
            return Err(Error::invalid(
                TARGET,
                format!(
                    "`{}`: a value marked secret holds {REDACTED:?} because secrets are not \
                     journaled; mark it again with .secret(...) before running the check",
                    self.name()
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for CommandCheck {
    /// Shows env keys only: values may be tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandCheck")
            .field("argv", &self.argv)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field(
                "secret_env_keys",
                &self.secret_env.keys().collect::<Vec<_>>(),
            )
            .field("secrets", &self.secrets.len())
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[async_trait]
impl Verifier for CommandCheck {
    /// The command line: `argv` joined by spaces.
    fn name(&self) -> String {
        self.argv.join(" ")
    }

    /// Runs the program once. `Err` only for input that cannot run; a program that is
    /// missing, fails, or overruns its timeout is a failed check with evidence.
    async fn check(&self) -> Result<CheckOutcome> {
        let program = self.program()?;
        let name = self.name();
        let mut cmd = Command::new(program);
        cmd.args(&self.argv[1..])
            .envs(&self.env)
            .envs(&self.secret_env)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let merged = merge_output(&mut cmd);

        let started = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let place = match &self.cwd {
                    Some(dir) => format!(" in {}", dir.display()),
                    None => String::new(),
                };
                return Ok(CheckOutcome::fail(format!(
                    "{name}: could not start {program:?}{place}: {e}"
                )));
            }
        };

        // Our copies of the merged pipe's write end must close, or its reader never ends.
        drop(cmd);
        let pipes: Vec<Pin<Box<dyn AsyncRead + Send>>> = merged
            .into_iter()
            .chain(child.stdout.take().map(|p| Box::pin(p) as _))
            .chain(child.stderr.take().map(|p| Box::pin(p) as _))
            .collect();
        let tail = Mutex::new(Tail::new(&self.secret_values()));
        let run = async {
            let output = async {
                join_all(pipes.into_iter().map(|p| read_lines(p, &tail))).await;
            };
            tokio::pin!(output);
            let mut output_done = false;
            let status = loop {
                tokio::select! {
                    status = child.wait() => break status,
                    () = &mut output, if !output_done => output_done = true,
                }
            };
            if !output_done {
                // Whatever is still held open by a background grandchild is not waited for.
                let _ = tokio::time::timeout(OUTPUT_GRACE, &mut output).await;
            }
            status
        };
        let finished = tokio::time::timeout(self.timeout, run).await;
        let elapsed = started.elapsed();

        let outcome = match finished {
            Ok(Ok(status)) => {
                let evidence = format!("{name}: {} in {}", describe(status), millis(elapsed));
                let evidence = with_output(evidence, &tail);
                if status.success() {
                    CheckOutcome::pass(evidence)
                } else {
                    CheckOutcome::fail(evidence)
                }
            }
            Ok(Err(e)) => CheckOutcome::fail(with_output(
                format!("{name}: could not wait for the program: {e}"),
                &tail,
            )),
            Err(_) => {
                let killed = kill(&mut child).await;
                CheckOutcome::fail(with_output(
                    format!(
                        "{name}: timeout: still running after {} ({killed})",
                        millis(self.timeout)
                    ),
                    &tail,
                ))
            }
        };
        Ok(outcome)
    }

    fn spec(&self) -> VerifierSpec {
        VerifierSpec::Command(self.clone())
    }

    /// What [`CommandCheck::check`] would refuse; starts nothing. Whether the program
    /// exists is not checked here: a missing program is a failed check with evidence, as
    /// a step may be what installs it.
    fn validate(&self) -> Result<()> {
        self.refuse()
    }
}

/// Points the program's stdout and stderr at one pipe, as `2>&1` does, so that their lines
/// keep their order; returns its read end. Where that is not possible, the two are piped
/// separately (and read as they come) and `None` is returned.
fn merge_output(cmd: &mut Command) -> Option<Pin<Box<dyn AsyncRead + Send>>> {
    #[cfg(unix)]
    {
        let merged = (|| -> std::io::Result<_> {
            let (reader, writer) = std::io::pipe()?;
            let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())?;
            cmd.stderr(writer.try_clone()?).stdout(writer);
            Ok(reader)
        })();
        if let Ok(reader) = merged {
            return Some(Box::pin(reader));
        }
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    None
}

fn with_output(evidence: String, tail: &Mutex<Tail>) -> String {
    match tail.lock().ok().and_then(|t| t.render()) {
        Some(output) => format!("{evidence}; output: {output}"),
        None => evidence,
    }
}

fn serialize_all_redacted<S: Serializer>(
    env: &BTreeMap<String, String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    serialize_redacted(env, |_| true, s)
}

fn serialize_secrets<S: Serializer>(
    secrets: &[String],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(secrets.iter().map(|_| REDACTED))
}

fn serialize_env<S: Serializer>(
    env: &BTreeMap<String, String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    serialize_redacted(env, is_secret_key, s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn sh(script: &str) -> CommandCheck {
        CommandCheck::new(["sh", "-c", script])
    }

    #[tokio::test]
    async fn true_passes_with_exit_0_and_duration() {
        let out = CommandCheck::new(["true"]).check().await.unwrap();
        assert!(out.passed, "{out:?}");
        assert!(out.evidence.starts_with("true: exit 0 in "), "{out:?}");
        assert!(out.evidence.ends_with("ms"), "{out:?}");
    }

    #[tokio::test]
    async fn false_fails_with_exit_code() {
        let out = CommandCheck::new(["false"]).check().await.unwrap();
        assert!(!out.passed);
        assert!(out.evidence.contains("exit 1"), "{out:?}");
    }

    #[tokio::test]
    async fn evidence_has_exit_code_and_last_output_lines() {
        let out = sh("echo hello; exit 3").check().await.unwrap();
        assert!(!out.passed);
        assert!(out.evidence.contains("exit 3"), "{out:?}");
        assert!(out.evidence.contains("hello"), "{out:?}");
    }

    #[tokio::test]
    async fn output_keeps_the_last_three_non_empty_lines_of_both_streams_in_order() {
        let out = sh("echo one; echo two; echo; echo three >&2; echo four; echo five >&2")
            .check()
            .await
            .unwrap();
        assert!(out.passed, "{out:?}");
        assert!(
            out.evidence.ends_with("; output: three | four | five"),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn long_output_is_truncated() {
        let out = sh("printf 'x%.0s' $(seq 1 5000); echo; echo end")
            .check()
            .await
            .unwrap();
        assert!(out.passed, "{out:?}");
        assert!(out.evidence.ends_with("end"), "{out:?}");
        assert!(out.evidence.len() < 500, "{}", out.evidence.len());
    }

    #[tokio::test]
    async fn missing_program_fails_with_its_name() {
        let out = CommandCheck::new(["./no-such-smoke-test.sh", "--url", "x"])
            .check()
            .await
            .unwrap();
        assert!(!out.passed);
        assert!(out.evidence.contains("no-such-smoke-test.sh"), "{out:?}");
        assert!(out.evidence.contains("could not start"), "{out:?}");
    }

    #[tokio::test]
    async fn timeout_kills_the_program() {
        let started = Instant::now();
        let out = CommandCheck::new(["sleep", "30"])
            .timeout(Duration::from_millis(200))
            .check()
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(10), "{out:?}");
        assert!(!out.passed);
        assert!(out.evidence.contains("timeout"), "{out:?}");
        assert!(out.evidence.contains("200ms"), "{out:?}");
    }

    #[tokio::test]
    async fn background_child_holding_the_output_does_not_hold_the_check() {
        let started = Instant::now();
        let out = sh("sleep 5 & echo started").check().await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(4), "{out:?}");
        assert!(out.passed, "{out:?}");
        assert!(out.evidence.ends_with("output: started"), "{out:?}");
    }

    #[tokio::test]
    async fn env_and_cwd_reach_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let check = sh(r#"test "$FOO" = bar && test "$(pwd -P)" = "$WANT""#)
            .env("FOO", "bar")
            .env("WANT", dir.path().canonicalize().unwrap().to_string_lossy())
            .cwd(dir.path());
        let out = check.check().await.unwrap();
        assert!(out.passed, "{out:?}");
        let out = sh(r#"test "$FOO" = bar"#)
            .env("FOO", "baz")
            .check()
            .await
            .unwrap();
        assert!(!out.passed, "{out:?}");
    }

    #[tokio::test]
    async fn secret_env_value_is_never_shown_or_serialized() {
        let check = sh(r#"test "${#API_TOKEN}" = 7"#)
            .env("API_TOKEN", "hunter2")
            .env("REGION", "eu-west-1");
        let out = check.check().await.unwrap();
        assert!(out.passed, "{out:?}");
        let debug = format!("{check:?}");
        assert!(debug.contains("API_TOKEN"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("eu-west-1"), "{debug}");
        assert!(!check.name().contains("hunter2"));
        assert!(!out.evidence.contains("hunter2"));

        let json = serde_json::to_string(&check.spec()).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains(r#""API_TOKEN":"<redacted>""#), "{json}");
        assert!(json.contains(r#""REGION":"eu-west-1""#), "{json}");

        // Rebuilt from the journal, it refuses to run with the placeholder.
        let back: VerifierSpec = serde_json::from_str(&json).unwrap();
        let err = back.build().unwrap().check().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("API_TOKEN"), "{err}");
    }

    #[tokio::test]
    async fn printed_secrets_are_scrubbed_from_the_output() {
        // A secret-looking env var, a secret under an innocuous name, and a value the
        // script reads from a file; first a line that is cut, with a secret across the cut.
        let dir = tempfile::tempdir().unwrap();
        let pin = dir.path().join("pin");
        std::fs::write(&pin, "s3cr3t-from-vault").unwrap();
        let check = sh(r#"printf '%0295d' 0; echo "$SMOKE_KEY"; echo "token=$API_TOKEN key=$SMOKE_KEY pin=$(cat "$PIN_FILE")"; exit 1"#)
            .env("API_TOKEN", "tok-1234567")
            .secret_env("SMOKE_KEY", "plain-named-secret")
            .secret("s3cr3t-from-vault")
            .env("PIN_FILE", pin.to_string_lossy());
        let out = check.check().await.unwrap();
        assert!(!out.passed, "{out:?}");
        for secret in ["tok-1234567", "plain-named-secret", "s3cr3t-from-vault"] {
            assert!(!out.evidence.contains(secret), "{secret} in {out:?}");
        }
        assert!(
            out.evidence
                .contains("token=<redacted> key=<redacted> pin=<redacted>"),
            "{out:?}"
        );
        // Cut after scrubbing: no piece of the secret is left at the cut.
        assert!(out.evidence.contains("0000<reda |"), "{out:?}");
        assert!(!out.evidence.contains("plain"), "{out:?}");

        let debug = format!("{check:?}");
        assert!(debug.contains("SMOKE_KEY"), "{debug}");
        for secret in ["tok-1234567", "plain-named-secret", "s3cr3t-from-vault"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[tokio::test]
    async fn marked_secrets_are_never_journaled_and_a_rebuilt_check_asks_for_them() {
        let check = sh("true")
            .secret_env("SMOKE_KEY", "plain-named-secret")
            .secret("s3cr3t-from-vault");
        assert!(check.validate().is_ok());
        assert!(check.check().await.unwrap().passed);
        let json = serde_json::to_string(&check.spec()).unwrap();
        assert!(
            !json.contains("plain-named-secret") && !json.contains("s3cr3t-from-vault"),
            "{json}"
        );
        assert!(json.contains(r#""SMOKE_KEY":"<redacted>""#), "{json}");

        let back: VerifierSpec = serde_json::from_str(&json).unwrap();
        let rebuilt = back.build().unwrap();
        let err = rebuilt.validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains(".secret_env(\"SMOKE_KEY\""),
            "{err}"
        );
        let again = match back {
            VerifierSpec::Command(c) => c.secret_env("SMOKE_KEY", "plain-named-secret"),
            other => panic!("{other:?}"),
        };
        let err = again.validate().unwrap_err();
        assert!(err.to_string().contains(".secret(...)"), "{err}");
    }

    #[test]
    fn validate_refuses_what_cannot_run() {
        let cases = [
            (CommandCheck::new(Vec::<String>::new()), "argv is empty"),
            (CommandCheck::new([""]), "empty string"),
            (CommandCheck::new(["echo", "a\0b"]), "NUL byte"),
            (CommandCheck::new(["true"]).env("", "x"), "env key \"\""),
            (
                CommandCheck::new(["true"]).env("A=B", "x"),
                "env key \"A=B\"",
            ),
            (
                CommandCheck::new(["true"]).secret_env("K", "a\0"),
                "NUL byte",
            ),
            (
                CommandCheck::new(["true"]).timeout(Duration::ZERO),
                "timeout is 0",
            ),
        ];
        for (check, want) in cases {
            let err = check.validate().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{check:?}");
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
        assert!(CommandCheck::new(["./not-installed-yet.sh"])
            .validate()
            .is_ok());
    }

    #[tokio::test]
    async fn empty_argv_is_invalid_input() {
        let err = CommandCheck::new(Vec::<String>::new())
            .check()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("argv is empty"), "{err}");
    }

    #[test]
    fn serde_round_trip_and_defaults() {
        let check = CommandCheck::new(["./infra/scripts/smoke_test.sh", "--url", "https://api"])
            .env("REGION", "eu-west-1")
            .cwd("/srv")
            .timeout(Duration::from_secs(5));
        let spec = check.spec();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["type"], "command");
        assert_eq!(json["timeout"], 5000);
        let back: VerifierSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);

        let minimal: CommandCheck = serde_json::from_str(r#"{"argv":["true"]}"#).unwrap();
        assert_eq!(minimal, CommandCheck::new(["true"]));
        assert_eq!(minimal.timeout, Duration::from_secs(60));
        let json = serde_json::to_string(&minimal).unwrap();
        assert!(!json.contains("env") && !json.contains("cwd"), "{json}");
    }

    #[test]
    fn name_is_the_command_line() {
        let check = CommandCheck::new(["./smoke_test.sh", "--url", "https://api"]);
        assert_eq!(check.name(), "./smoke_test.sh --url https://api");
    }
}
