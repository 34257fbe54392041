//! `rollback watch` (the runbook's `watch:` section as a long-lived process) and `rollback
//! drill` (its `drill:` section).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rollback_core::metrics::Decision;
use rollback_core::runbook::parse_duration;
use rollback_core::watch::{Responder, WatchRecord};
use rollback_core::{Error, Report};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{event_sink, registry, Failure, FileArgs, Outcome2, Output};

/// The command line's settings over the file's.
pub(crate) struct Options {
    pub dry_run: bool,
    pub max_decisions: Option<u64>,
    pub interval: Option<String>,
    pub log: Option<PathBuf>,
    pub status_file: Option<PathBuf>,
    pub status_addr: Option<String>,
}

/// Runs the runbook's transaction, loaded afresh for each action (so that `previous`
/// means the revision before the one in use then, and the plan is made then).
struct RunRunbook {
    file: FileArgs,
    output: Output,
}

#[async_trait]
impl Responder for RunRunbook {
    async fn respond(&self, decision: &Decision) -> Result<Report, Error> {
        let (_, b) = self.file.load().await.map_err(|f| match f {
            Failure::Error(e) => e,
            Failure::Message(m) => Error::invalid("runbook", m),
        })?;
        let reason = rollback_core::watch::reason_for(decision, b.reason_text());
        let b = b.reason(reason);
        let b = match self.output {
            // The decision record tells the story on stdout; events would interleave.
            Output::Json => b,
            Output::Human => b.on_event(event_sink(Output::Human)),
        };
        b.build()?.run().await
    }
}

/// A name usable as a file name: `frontend-rollout-undo`.
fn file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("watch{s}")
    } else {
        s
    }
}

pub(crate) async fn watch(file: FileArgs, opts: Options, output: Output) -> Outcome2 {
    let runbook = rollback_core::runbook::Runbook::load(&file.file, &file.vars()?)?;
    // The whole file is checked before the first decision: a runbook that cannot run
    // should not wait for an incident to say so.
    runbook.build(&registry()).await?;
    let mut watch = runbook.watch(&registry()).await?.dry_run(opts.dry_run);
    if let Some(i) = &opts.interval {
        let i =
            parse_duration(i).map_err(|e| Failure::Message(format!("--interval {i:?}: {e}")))?;
        watch = watch.interval(i);
    }
    if let Some(n) = opts.max_decisions {
        watch = watch.max_decisions(n);
    }
    let log = match (&opts.log, watch.log_path()) {
        (Some(log), _) => Some(log.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(default_log("watch", runbook.name())?),
    };
    if let Some(log) = log {
        watch = watch.log(log);
    }
    if let Some(s) = &opts.status_file {
        watch = watch.status_file(s);
    }
    watch.validate()?;
    let last: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    if let Some(addr) = &opts.status_addr {
        let bound = serve_status(addr, last.clone()).await?;
        // On stderr whatever the output, so that a supervisor given port 0 learns the port.
        eprintln!("status on http://{bound}/");
    }
    if let (Output::Human, Some(log)) = (output, watch.log_path()) {
        eprintln!(
            "watching {} with {} every {:?}{}; decisions in {}",
            runbook.name(),
            watch.source().name(),
            watch.interval_of(),
            if opts.dry_run {
                " (dry run: nothing is done)"
            } else {
                ""
            },
            log.display()
        );
    }
    let responder = RunRunbook {
        file: FileArgs {
            file: file.file.clone(),
            vars: file.vars.clone(),
        },
        output,
    };
    let summary = watch
        .run(&responder, shutdown()?, |record: &WatchRecord| {
            let json = serde_json::to_string(record).unwrap_or_default();
            // The status is up to date before the record is printed: whoever reads the
            // line may ask for the status at once.
            if let Ok(mut l) = last.lock() {
                *l = Some(json.clone());
            }
            match output {
                Output::Json => println!("{json}"),
                Output::Human => println!("{record}"),
            }
        })
        .await?;
    if output == Output::Human {
        eprintln!(
            "watch ended: {} decision(s), {} action(s)",
            summary.decisions, summary.actions
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Completes at SIGTERM or Ctrl-C (SIGINT), whichever comes first.
fn shutdown() -> Result<impl std::future::Future<Output = ()>, Failure> {
    let mut ctrl_c = crate::CtrlC::new()?;
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::Message(format!("cannot listen for SIGTERM: {e}")))?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            () = ctrl_c.next() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        ctrl_c.next().await;
    })
}

/// Answers every HTTP request on `addr` with the last decision as JSON (503 before the
/// first): enough for a liveness probe or a dashboard.
async fn serve_status(
    addr: &str,
    last: Arc<Mutex<Option<String>>>,
) -> Result<std::net::SocketAddr, Failure> {
    let cannot = |e: std::io::Error| {
        Failure::Message(format!(
            "--status-addr {addr}: cannot listen there ({e}); give a free HOST:PORT"
        ))
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(cannot)?;
    let bound = listener.local_addr().map_err(cannot)?;
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let last = last.clone();
            tokio::spawn(async move {
                // The request is read (up to its headers' end) and not looked at.
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 16 * 1024 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let body = last.lock().ok().and_then(|l| l.clone());
                let (status, body) = match body {
                    Some(b) => ("200 OK", b),
                    None => (
                        "503 Service Unavailable",
                        r#"{"status":"no decision yet"}"#.to_string(),
                    ),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(bound)
}

/// `.rollback/<what>/NAME.jsonl`, its folder made.
fn default_log(what: &str, name: &str) -> Result<PathBuf, Failure> {
    let dir = PathBuf::from(".rollback").join(what);
    std::fs::create_dir_all(&dir).map_err(|e| {
        Failure::Message(format!("cannot create {}: {e}; give --log", dir.display()))
    })?;
    Ok(dir.join(format!("{}.jsonl", file_name(name))))
}

pub(crate) async fn drill(
    file: &FileArgs,
    environment: &str,
    out: Option<PathBuf>,
    history: Option<PathBuf>,
    output: Output,
) -> Outcome2 {
    let runbook = rollback_core::runbook::Runbook::load(&file.file, &file.vars()?)?;
    let drill = runbook.drill(&registry(), environment).await?;
    let history = match (history, drill.history_path()) {
        (Some(h), _) => h,
        (None, Some(h)) => h.to_path_buf(),
        (None, None) => default_log("drills", runbook.name())?,
    };
    let past = rollback_core::drill::DrillReport::history(&history)?;
    if output == Output::Human {
        eprintln!(
            "drill of {} on {}: breaking its targets, then rolling back",
            runbook.name(),
            drill.environment()
        );
    }
    let report = drill.run().await?;
    report.append(&history)?;
    let markdown = report.markdown(&past);
    if let Some(out) = &out {
        std::fs::write(out, &markdown).map_err(|e| {
            Failure::Message(format!("cannot write the report to {}: {e}", out.display()))
        })?;
    }
    match output {
        Output::Json => println!("{}", serde_json::to_string(&report).unwrap_or_default()),
        Output::Human => print!("{markdown}"),
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
