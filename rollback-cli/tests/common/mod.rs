//! Helpers shared by the tests that run the `rollback` binary (`mod common;`): where the
//! example runbooks are, how the binary is run against the emulator, output as text.
//! Each test file uses some of them.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rollback_testkit::AwsEmulator;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `examples/runbooks/<name>`.
pub fn example(name: &str) -> PathBuf {
    repo().join("examples/runbooks").join(name)
}

/// `rollback args...` to run in `dir` with the emulator's environment (and nothing on
/// stdin), to add to (`.env("NO_COLOR", "1")`) before `.output()`; journal, leases and
/// the known-good store are under `dir`. Whatever of the caller's environment would change
/// the output (colour, logs, Kubernetes defaults) is left out.
pub fn command(emu: Option<&AwsEmulator>, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rollback"));
    c.args(args)
        .current_dir(dir)
        .env("ROLLBACK_JOURNAL_DIR", dir.join("journal"))
        .env("ROLLBACK_LOCK_DIR", dir.join("locks"))
        .env("ROLLBACK_KNOWN_GOOD_DIR", dir.join("known-good"))
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    for var in [
        "NO_COLOR",
        "RUST_LOG",
        "ROLLBACK_KUBE_CONTEXT",
        "ROLLBACK_KUBE_NAMESPACE",
    ] {
        c.env_remove(var);
    }
    if let Some(emu) = emu {
        c.envs(emu.child_env());
    }
    c
}

/// Runs `rollback args...` as [`command`] makes it.
pub fn rollback(emu: Option<&AwsEmulator>, dir: &Path, args: &[&str]) -> Output {
    command(emu, dir, args).output().unwrap()
}

/// Whether `s` has a terminal escape (colour) in it.
pub fn has_escapes(s: &str) -> bool {
    s.contains('\x1b')
}

/// `s` without its colour escapes (`ESC [ ... m`).
pub fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(|c: char| !(c.is_ascii_digit() || c == ';')) {
            Some(j) if after[j..].starts_with('m') => rest = &after[j + 1..],
            _ => {
                out.push('\x1b');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Bytes as text, for messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
