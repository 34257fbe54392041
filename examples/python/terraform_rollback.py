"""Runbook 000's Terraform rollback ("git checkout the last good commit, terraform plan,
terraform apply") as a ``CommandTarget`` driving the recipe ``examples/recipes/terraform``:
revisions are the git commits touching the configuration's directory, the plan shows
``terraform plan`` of the chosen commit, apply is ``terraform apply`` of it in a temporary
worktree, and stable is ``terraform plan -detailed-exitcode`` showing no changes. A check
then confirms the infrastructure; had it failed, the commit before would be applied again.

Terraform cannot be installed on the machines this runs on, so the script puts the
stand-in ``terraform`` of the recipe's tests first on ``PATH`` (it keeps a simulated
infrastructure in a file); with ``--real`` it uses the ``terraform`` on your ``PATH``
against the repository given by ``--repo`` instead.

Run: ``.venv/bin/python examples/python/terraform_rollback.py``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import rollback
from emulators import ROOT, expect, progress

RECIPE = ROOT / "examples" / "recipes" / "terraform" / "rollback-terraform"
STANDINS = ROOT / "rollback-core" / "tests" / "fixtures" / "command_target" / "bin"


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Ann Ops", "-c", "user.email=ann@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def scene(base: Path) -> tuple[Path, dict[str, str]]:
    """A repository whose ``infra/`` went 1.8 -> 1.9 (the bad one), 1.9 applied."""
    repo = base / "infra-repo"
    (repo / "infra").mkdir(parents=True)
    git(repo, "init", "-q")
    for version in ("1.8", "1.9"):
        (repo / "infra" / "main.tf").write_text(f'version = "{version}"\n')
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"load balancer {version}")
    (base / "applied-commit").write_text(git(repo, "rev-parse", "HEAD") + "\n")
    (base / "tf-state").write_text("1.9\n")
    env = {
        "PATH": f"{STANDINS}:{os.environ.get('PATH', '')}",
        "ROLLBACK_TF_DIR": "infra",
        "ROLLBACK_TF_APPLIED": str(base / "applied-commit"),
        "TF_STANDIN_LOG": str(base / "tf-calls.log"),
        "TF_STANDIN_STATE": str(base / "tf-state"),
        "TMPDIR": str(base),
    }
    return repo, env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", action="store_true", help="use the terraform on PATH and --repo")
    parser.add_argument("--repo", help="the git repository of the configuration (with --real)")
    parser.add_argument("--dir", default="infra", help="the configuration's directory in it")
    args = parser.parse_args()
    # Leases and journals of the examples go to the temp dir unless told otherwise.
    os.environ.setdefault("ROLLBACK_LOCK_DIR", str(Path(tempfile.gettempdir()) / "rollback-examples-locks"))
    os.environ.setdefault("ROLLBACK_JOURNAL_DIR", str(Path(tempfile.gettempdir()) / "rollback-examples-journal"))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        if args.real:
            if not args.repo:
                parser.error("--real needs --repo")
            repo, env = Path(args.repo), {"ROLLBACK_TF_DIR": args.dir, "PATH": os.environ.get("PATH", "")}
        else:
            repo, env = scene(base)
            print("== the load balancer change of 1.9 broke TLS; 1.9 is applied (a stand-in terraform)")
        script = str(RECIPE)
        infra = rollback.CommandTarget(
            "infra",
            current=[script, "current"],
            history=[script, "history"],
            plan=[script, "plan"],
            apply=[script, "apply"],
            stable=[script, "stable"],
            env=env,
            cwd=repo,
            timeout=120,
        )
        print("1. the commits touching the configuration, newest first:")
        for r in infra.history():
            print(f"   {r.id} {r.description}")
        tx = rollback.Transaction("terraform: back to the last good commit", reason="INC-88: TLS handshake failures since the 1.9 load balancer change")
        tx.add(infra, rollback.Previous(), timeout=300)
        if not args.real:
            tx.verify(rollback.CommandCheck(["grep", "-qx", "1.8", env["TF_STANDIN_STATE"]]))
        print("2. the plan (terraform plan of the chosen commit):")
        print(tx.run(dry_run=True))
        print("3. the rollback")
        report = tx.run(on_event=progress(time.monotonic()))
        print(f"\n{report}")
        if not args.real:
            state = (base / "tf-state").read_text().strip()
            applies = [line for line in (base / "tf-calls.log").read_text().splitlines() if line.startswith("apply")]
            worktrees = git(repo, "worktree", "list").splitlines()
            print(f"4. the infrastructure runs {state} | terraform apply calls: {len(applies)} | worktrees left: {len(worktrees) - 1}")
            if state != "1.8" or len(applies) != 1 or len(worktrees) != 1:
                print("expected 1.8 applied once, the temporary worktree removed")
                return 1
        return expect(report, "succeeded")


if __name__ == "__main__":
    raise SystemExit(main())
