//! Runbook 000's Terraform rollback ("git checkout the last good commit, terraform plan,
//! terraform apply") through a `CommandTarget` driving the recipe
//! `examples/recipes/terraform/rollback-terraform`: revisions are the git commits touching
//! the configuration's directory; the plan is `terraform plan` of the chosen commit; apply
//! is `terraform apply` of it in a temporary worktree; stable is `terraform plan
//! -detailed-exitcode` showing no changes. A check confirms the infrastructure afterwards.
//!
//! Terraform cannot be installed where this runs, so the recipe tests' stand-in
//! `terraform` (`rollback-core/tests/fixtures/command_target/bin`) is put first on `PATH`;
//! it keeps a simulated infrastructure in a file. Against real Terraform, leave `PATH` as
//! it is and point `cwd` at your repository (see `examples/recipes/terraform/README.md`).
//!
//! Run: `cargo run -p rollback-examples --example terraform` (needs git).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_core::command_target::CommandTarget;
use rollback_core::verify::CommandCheck;
use rollback_core::{Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_examples::{expect_outcome, init_logging, journal_path, locks, progress_printer};

fn git(repo: &Path, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=Ann Ops",
            "-c",
            "user.email=ann@example.com",
        ])
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()?;
    let script = root.join("examples/recipes/terraform/rollback-terraform");
    let standins = root.join("rollback-core/tests/fixtures/command_target/bin");
    let tmp = tempfile::tempdir()?;
    let (repo, state) = (tmp.path().join("infra-repo"), tmp.path().join("tf-state"));
    std::fs::create_dir_all(repo.join("infra"))?;
    git(&repo, &["init", "-q"])?;
    for version in ["1.8", "1.9"] {
        std::fs::write(
            repo.join("infra/main.tf"),
            format!("version = \"{version}\"\n"),
        )?;
        git(&repo, &["add", "-A"])?;
        git(
            &repo,
            &["commit", "-q", "-m", &format!("load balancer {version}")],
        )?;
    }
    let applied = tmp.path().join("applied-commit");
    std::fs::write(&applied, git(&repo, &["rev-parse", "HEAD"])? + "\n")?;
    std::fs::write(&state, "1.9\n")?;
    println!("== the load balancer change of 1.9 broke TLS; 1.9 is applied (a stand-in terraform)");

    let s = script.to_string_lossy().into_owned();
    let path = format!(
        "{}:{}",
        standins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let infra = CommandTarget::builder("infra")
        .current([s.as_str(), "current"])
        .history([s.as_str(), "history"])
        .plan([s.as_str(), "plan"])
        .apply([s.as_str(), "apply"])
        .stable([s.as_str(), "stable"])
        .env("PATH", path)
        .env("ROLLBACK_TF_DIR", "infra")
        .env("ROLLBACK_TF_APPLIED", applied.display().to_string())
        .env(
            "TF_STANDIN_LOG",
            tmp.path().join("tf-calls.log").display().to_string(),
        )
        .env("TF_STANDIN_STATE", state.display().to_string())
        .env("TMPDIR", tmp.path().display().to_string())
        .cwd(&repo)
        .timeout(Duration::from_secs(120))
        .build()?;
    println!("1. the commits touching infra/, newest first:");
    for r in infra.history().await? {
        println!("   {} {}", r.id, r.description.unwrap_or_default());
    }
    let check = CommandCheck::new(["grep", "-qx", "1.8", &state.display().to_string()]);
    let tx = Transaction::builder("terraform: back to the last good commit")
        .reason("INC-88: TLS handshake failures since the 1.9 load balancer change")
        .journal(journal_path("terraform"))
        .locks(locks())
        .step(Step::new(Arc::new(infra), Selector::Previous).timeout(Duration::from_secs(300)))
        .verify(check)
        .on_event(progress_printer(Instant::now()))
        .build()?;
    println!(
        "2. the plan (terraform plan of the chosen commit):\n{}",
        tx.dry_run().await?
    );
    let report = tx.run().await?;
    println!("\n{report}");
    expect_outcome(&report, Outcome::Succeeded)?;
    let now = std::fs::read_to_string(&state)?;
    let worktrees = git(&repo, &["worktree", "list"])?.lines().count();
    println!(
        "== the infrastructure runs {} | temporary worktrees left: {}",
        now.trim(),
        worktrees - 1
    );
    if now.trim() != "1.8" || worktrees != 1 {
        return Err("expected 1.8 applied and the temporary worktree removed".into());
    }
    Ok(())
}
