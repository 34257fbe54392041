//! `rollback-k8s-sim`: the Kubernetes API simulator as a process, for Python tests and demos.
//!
//! ```text
//! rollback-k8s-sim [--port N] [--kubeconfig PATH] [--exit-on-stdin-eof]
//!                  [--step-ms N] [--deadline-ms N] [--nodes N]
//! ```
//!
//! Prints exactly one line, `listening on http://127.0.0.1:PORT`, once it serves; then
//! serves until killed, or until stdin reaches end of file with `--exit-on-stdin-eof`.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use rollback_testkit::k8s::{K8sSimulator, SimConfig};

const USAGE: &str = "usage: rollback-k8s-sim [--port N] [--kubeconfig PATH] [--exit-on-stdin-eof] [--step-ms N] [--deadline-ms N] [--nodes N]

Serves the Kubernetes REST API (apps/v1 workloads, pods, leases, watch) with simulated controllers
on 127.0.0.1. Prints `listening on http://127.0.0.1:PORT` once ready.

  --port N              port to listen on (0, the default: any free port)
  --kubeconfig PATH     write a kubeconfig whose current context points at the simulator
  --exit-on-stdin-eof   exit when stdin reaches end of file (the parent went away)
  --step-ms N           controller step (default 200)
  --deadline-ms N       rollout progress deadline (default 1000)
  --nodes N             simulated nodes (default 3)";

struct Args {
    port: u16,
    kubeconfig: Option<String>,
    exit_on_eof: bool,
    config: SimConfig,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        kubeconfig: None,
        exit_on_eof: false,
        config: SimConfig::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |name: &str, v: String| -> Result<u64, String> {
            v.parse()
                .map_err(|_| format!("{name} needs a number, not {v:?}"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value("--port")?;
                args.port = u16::try_from(number("--port", v)?)
                    .map_err(|_| "--port must be at most 65535".to_string())?;
            }
            "--kubeconfig" => args.kubeconfig = Some(value("--kubeconfig")?),
            "--exit-on-stdin-eof" => args.exit_on_eof = true,
            "--step-ms" => {
                let v = value("--step-ms")?;
                args.config = args
                    .config
                    .step(Duration::from_millis(number("--step-ms", v)?));
            }
            "--deadline-ms" => {
                let v = value("--deadline-ms")?;
                args.config = args
                    .config
                    .deadline(Duration::from_millis(number("--deadline-ms", v)?));
            }
            "--nodes" => {
                let v = value("--nodes")?;
                let n = number("--nodes", v)?;
                args.config = args
                    .config
                    .nodes(u32::try_from(n).map_err(|_| "--nodes is too large".to_string())?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rollback-k8s-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sim = match K8sSimulator::start_with(args.port, &args.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rollback-k8s-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.kubeconfig {
        if let Err(e) = sim.write_kubeconfig(path) {
            eprintln!("rollback-k8s-sim: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut out = std::io::stdout();
    if writeln!(out, "listening on {}", sim.url())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    if args.exit_on_eof {
        let mut sink = [0u8; 1024];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    } else {
        loop {
            std::thread::park();
        }
    }
    drop(sim);
    ExitCode::SUCCESS
}
