//! Commands about the command line itself, made from its clap definition: shell
//! completions and the man page. They need no runtime, no credentials and no file.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};

// The commands beside the ones that work on runbooks and runs. (A plain comment: a doc
// comment here would become the whole command line's `about`.)
#[derive(Debug, Subcommand)]
pub(crate) enum Meta {
    /// Prints the completion script of SHELL, to install once:
    /// `rollback completions bash > ~/.local/share/bash-completion/completions/rollback`,
    /// `rollback completions zsh > ~/.zfunc/_rollback`,
    /// `rollback completions fish > ~/.config/fish/completions/rollback.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the man page (roff): `rollback man > rollback.1`, or with a command,
    /// that command's page (`rollback man apply > rollback-apply.1`).
    Man {
        /// A command, for its own page.
        command: Option<String>,
    },
}

/// The whole command line: the runbook commands and these.
pub(crate) fn command() -> clap::Command {
    Meta::augment_subcommands(super::Cli::command())
}

/// Runs a command of this module, if `matches` name one.
pub(crate) fn run(matches: &clap::ArgMatches) -> Option<ExitCode> {
    let name = matches.subcommand_name()?;
    if !Meta::has_subcommand(name) {
        return None;
    }
    let meta = match Meta::from_arg_matches(matches) {
        Ok(meta) => meta,
        Err(e) => e.exit(),
    };
    let mut out = Vec::new();
    let done = match meta {
        Meta::Completions { shell } => {
            let mut cmd = command();
            let name = cmd.get_name().to_string();
            clap_complete::generate(shell, &mut cmd, name, &mut out);
            Ok(())
        }
        Meta::Man { command: None } => clap_mangen::Man::new(command()).render(&mut out),
        Meta::Man { command: Some(sub) } => {
            // Built, so that the command's page has the global flags and is named
            // rollback-apply(1), as git's and cargo's pages are.
            let mut top = command();
            top.build();
            let Some(page) = top.find_subcommand(&sub).cloned() else {
                let names: Vec<&str> = top.get_subcommands().map(|c| c.get_name()).collect();
                eprintln!(
                    "error: no command {sub:?}; give one of: {}",
                    names.join(", ")
                );
                return Some(ExitCode::FAILURE);
            };
            let source = format!("{} {}", top.get_name(), top.get_version().unwrap_or(""));
            clap_mangen::Man::new(page).source(source).render(&mut out)
        }
    };
    let written = done.and_then(|()| std::io::stdout().lock().write_all(&out));
    match written {
        Ok(()) => Some(ExitCode::SUCCESS),
        // A closed pipe (`| head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Some(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            Some(ExitCode::FAILURE)
        }
    }
}
