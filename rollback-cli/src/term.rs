//! How the output looks: colour (`--color`, `NO_COLOR`) and logs (`-v`, `RUST_LOG`).

use std::io::IsTerminal;

use clap::ValueEnum;

/// When statuses are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    /// On a terminal, unless `NO_COLOR` is set (to anything but nothing).
    Auto,
    /// Always, even into a pipe or a file, whatever `NO_COLOR` says.
    Always,
    /// Never.
    Never,
}

/// Decides colour for stdout and stderr each (one may be a terminal, the other a pipe),
/// and starts the logs: before anything prints.
pub(crate) fn init(color: Color, verbose: u8) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let on = |terminal: bool| match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => terminal && !no_color,
    };
    console::set_colors_enabled(on(std::io::stdout().is_terminal()));
    let stderr = on(std::io::stderr().is_terminal());
    console::set_colors_enabled_stderr(stderr);
    logs(verbose, stderr);
}

/// The library's logs on stderr: none by default (the progress lines say what happens),
/// `-v` this tool's at info, `-vv` at debug (its dependencies' at info), `-vvv` at trace.
/// `RUST_LOG`, when set, is the filter instead (`RUST_LOG=rollback_k8s=debug`).
fn logs(verbose: u8, ansi: bool) {
    use tracing_subscriber::EnvFilter;
    let by_count = match verbose {
        0 => None,
        1 => Some("warn,rollback=info"),
        2 => Some("info,rollback=debug"),
        _ => Some("debug,rollback=trace"),
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!(
                    "warning: RUST_LOG={v:?} is not a log filter ({e}), so it is ignored; write it as `warn,rollback_k8s=debug`"
                );
                by_count.map(EnvFilter::new)
            }
        },
        _ => by_count.map(EnvFilter::new),
    };
    let Some(filter) = filter else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// A status word or phrase in the colour of how it went, for stdout (`err`: for stderr),
/// as plain text when colour is off there.
pub(crate) fn paint(text: impl std::fmt::Display, tone: Tone, err: bool) -> String {
    let mut s = console::style(text.to_string());
    if err {
        s = s.for_stderr();
    }
    match tone {
        Tone::Good => s.green(),
        Tone::Bad => s.red().bold(),
        Tone::Change => s.yellow(),
        Tone::Quiet => s.dim(),
    }
    .to_string()
}

/// What a status says, as a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Done, passed, nothing to do: green.
    Good,
    /// Failed: bold red.
    Bad,
    /// Changes, or something put back: yellow.
    Change,
    /// Not decided yet, or a detail: dim.
    Quiet,
}

/// The tone of a run's outcome.
pub(crate) fn outcome_tone(o: rollback_core::Outcome) -> Tone {
    use rollback_core::Outcome as O;
    match o {
        O::Succeeded => Tone::Good,
        O::Failed => Tone::Bad,
        O::Compensated | O::Interrupted => Tone::Change,
        O::Planned => Tone::Quiet,
    }
}
