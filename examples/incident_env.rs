//! The incident of `examples/incident.rs`, set up and left standing for the `rollback`
//! command line: starts the emulated AWS and the Kubernetes simulator, deploys the bad
//! release 1.9.0 everywhere, writes the environment that reaches them (AWS variables,
//! `KUBECONFIG`, `HEALTH_URL`) as `export` lines to the file given, and serves until its
//! stdin closes. `scripts/demo.sh` runs it, then `rollback plan` / `apply` on
//! `examples/runbooks/incident.yaml`.
//!
//! Run: `cargo run -p rollback-examples --example incident_env -- /tmp/incident.env`

use std::io::Read;
use std::path::PathBuf;

use rollback_examples::{start_incident, Incident};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(env_file) = std::env::args().nth(1).map(PathBuf::from) else {
        return Err("give the file to write the environment to".into());
    };
    let Incident { emu, sim, .. } = start_incident().await?;
    let kubeconfig = env_file.with_extension("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    let mut lines: Vec<String> = emu
        .child_env()
        .into_iter()
        .map(|(k, v)| format!("export {k}={v:?}"))
        .collect();
    lines.push(format!(
        "export KUBECONFIG={:?}",
        kubeconfig.display().to_string()
    ));
    lines.push(format!("export HEALTH_URL={:?}", emu.health_url()));
    let tmp = env_file.with_extension("tmp");
    std::fs::write(&tmp, lines.join("\n") + "\n")?;
    std::fs::rename(&tmp, &env_file)?;
    println!(
        "== the incident is live; environment in {}",
        env_file.display()
    );
    // Serve until whoever started this closes our stdin.
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    drop((emu, sim));
    Ok(())
}
