//! Shared helpers of the examples: progress lines for events and logging set-up.

use std::time::Instant;

use rollback_core::Event;

/// Logs to stderr at `RUST_LOG` (default `error`: the events already tell the story).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// An event sink printing one progress line per event, with the time since `start`.
pub fn progress_printer(start: Instant) -> impl Fn(&Event) + Send + Sync + 'static {
    move |e: &Event| {
        println!("{:>7.2}s  {e}", start.elapsed().as_secs_f64());
    }
}

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
