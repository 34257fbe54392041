//! What running a user's program needs, shared by [`crate::verify::CommandCheck`] and
//! [`crate::command_target::CommandTarget`]: the last lines of its output (scrubbed of
//! secrets as they are read), its exit status in words, and killing it when it overruns.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;

use crate::redact::scrub;

/// How many non-empty output lines a [`Tail`] keeps.
pub(crate) const TAIL_LINES: usize = 3;
/// At most this many characters of output in a [`Tail`]'s rendering.
pub(crate) const TAIL_CHARS: usize = 300;
/// How long output is still read after the program exits (a background child it started
/// may keep the pipes open), and how long a killed program is given to go.
pub(crate) const OUTPUT_GRACE: Duration = Duration::from_millis(250);

/// The last few non-empty output lines, each already scrubbed of the given secrets and
/// cut to [`TAIL_CHARS`].
pub(crate) struct Tail {
    lines: VecDeque<String>,
    secrets: Vec<String>,
}

impl Tail {
    pub(crate) fn new(secrets: &[&str]) -> Self {
        Tail {
            lines: VecDeque::new(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub(crate) fn push(&mut self, line: &str) {
        // Scrubbed whole, before any cut, so no part of a secret is kept.
        let line = scrub(line, &self.secrets);
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines
            .push_back(line.chars().take(TAIL_CHARS).collect());
    }

    /// The lines joined by ` | `, keeping the last [`TAIL_CHARS`] characters.
    pub(crate) fn render(&self) -> Option<String> {
        if self.lines.is_empty() {
            return None;
        }
        let joined = self
            .lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" | ");
        let count = joined.chars().count();
        Some(if count > TAIL_CHARS {
            let kept: String = joined.chars().skip(count - TAIL_CHARS).collect();
            format!("...{kept}")
        } else {
            joined
        })
    }
}

/// Reads `pipe` to its end, line by line (lossy UTF-8), into `tail`.
pub(crate) async fn read_lines(pipe: impl AsyncRead + Unpin, tail: &Mutex<Tail>) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                if let Ok(mut tail) = tail.lock() {
                    tail.push(&line);
                }
            }
        }
    }
}

/// Kills a program that overran its time and reaps it: `killed`, `kill sent` (not gone
/// within [`OUTPUT_GRACE`]) or why it could not be killed.
pub(crate) async fn kill(child: &mut Child) -> String {
    match child.start_kill() {
        Ok(()) => match tokio::time::timeout(OUTPUT_GRACE, child.wait()).await {
            Ok(_) => "killed".to_string(),
            Err(_) => "kill sent".to_string(),
        },
        Err(e) => format!("could not kill it: {e}"),
    }
}

/// `exit 3`, or `killed by signal 9` on Unix.
pub(crate) fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    format!("ended with {status}")
}

/// A duration as whole milliseconds: `250ms`.
pub(crate) fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}
