//! The one HTTP client of the crate's network checks and metric sources, and the one way
//! they describe a transport error.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The shared client, built on first use. Idle connections are not kept: every check
/// dials afresh, as a person running `curl` would, and a client used from several Tokio
/// runtimes never reuses a connection whose runtime has gone.
pub(crate) fn client(target: &str) -> Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<std::result::Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(concat!("rollback-core/", env!("CARGO_PKG_VERSION")))
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| error_chain(&e))
        })
        .as_ref()
        .map_err(|e| {
            Error::backend(
                target,
                format!("could not build the HTTP client: {e}"),
                false,
            )
        })
}

/// An error and its sources, `: `-separated, without repeats.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
