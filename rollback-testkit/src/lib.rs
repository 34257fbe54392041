//! # rollback-testkit
//!
//! Two emulators for rollback's tests, examples and benchmarks, one module each:
//!
//! - [`aws`]: [`AwsEmulator`] launches the AWS emulator, a Python process (moto with
//!   schedulers, fault injection and a `/_emulator/` control API; the code is in
//!   `rollback-testkit/python/rollback_emulator`), on a free loopback port, for the real
//!   AWS SDK to talk to. It needs the project virtualenv (`bash scripts/setup-python.sh`).
//!   [`aws_sdk`] gives the SDK configuration for it (`AwsEmulator::sdk_config`,
//!   [`emulator_sdk_config`]) that tests hand to `rollback_aws::Aws::from_sdk_config`.
//! - [`k8s`]: [`K8sSimulator`] serves the Kubernetes REST API (apps/v1 workloads, pods,
//!   watch) with simulated controllers and a `/_sim/` control API, in-process on its own
//!   thread; the `rollback-k8s-sim` binary runs it as a process for Python tests and demos.
//!
//! They share only [`TestkitError`] and the JSON call to a control API. The emulators'
//! main types and helpers are re-exported here (`rollback_testkit::AwsEmulator`,
//! `rollback_testkit::K8sSimulator`), so either path works.
//!
//! `rollback-testkit/README.md` documents both control APIs.

pub mod aws;
pub mod aws_sdk;
pub mod k8s;
pub mod prometheus;

pub use aws::{count_in, gained, injected_in, mutations_in, python, repo_root, AwsEmulator};
pub use aws_sdk::emulator_sdk_config;
pub use k8s::{K8sSimulator, SimConfig};

use serde_json::Value;

/// What can go wrong starting or driving an emulator. Messages say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// The emulator could not be started.
    #[error("the AWS emulator could not start: {0}")]
    Start(String),
    /// A control API call failed.
    #[error("emulator control call {call} failed: {message}")]
    Control {
        /// Method and path.
        call: String,
        /// What went wrong.
        message: String,
    },
}

/// One JSON call to a control API (the emulator's `/_emulator/`, the simulator's `/_sim/`):
/// the answer as JSON (or as a string when it is not JSON), or a [`TestkitError::Control`]
/// naming the call, unless the status is a success (or 503 with `ok_503`).
pub(crate) async fn control_call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
    call: String,
    ok_503: bool,
) -> Result<Value, TestkitError> {
    let failed = |message: String| TestkitError::Control {
        call: call.clone(),
        message,
    };
    let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| failed(e.to_string()))?;
    let mut req = http.request(m, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| failed(e.to_string()))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if status.is_success() || (ok_503 && status.as_u16() == 503) {
        Ok(value)
    } else {
        Err(failed(format!("{status}: {text}")))
    }
}

/// `application/x-www-form-urlencoded` decoding.
pub(crate) fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
