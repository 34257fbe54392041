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

/// Runs `rollback args...` in `dir` with the emulator's environment (and nothing on stdin);
/// journal, leases and the known-good store are under `dir`.
pub fn rollback(emu: Option<&AwsEmulator>, dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rollback"));
    c.args(args)
        .current_dir(dir)
        .env("ROLLBACK_JOURNAL_DIR", dir.join("journal"))
        .env("ROLLBACK_LOCK_DIR", dir.join("locks"))
        .env("ROLLBACK_KNOWN_GOOD_DIR", dir.join("known-good"))
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    if let Some(emu) = emu {
        c.envs(emu.child_env());
    }
    c.output().unwrap()
}

/// Bytes as text, for messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
