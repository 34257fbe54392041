#!/usr/bin/env bash
# The fleet benchmark (a program that prints figures, not a test): N ECS services and N
# Lambda aliases rolled back to their previous revisions on the emulated AWS, by this
# library and by the runbooks' own `aws` CLI loop. Arguments go to the benchmark
# (e.g. `--n 50 --concurrency 16`; see examples/fleet_bench.rs).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
need_rust
need_python
if ! command -v aws >/dev/null 2>&1; then
  echo "installing the aws CLI into $VENV for the runbook-way comparison" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check awscli
  export PATH="$VENV/bin:$PATH"
fi
# The dev profile: the work is I/O-bound (the emulator and the waits), and it reuses the
# test build instead of a long release build of the AWS SDK.
cargo run --quiet -p rollback-examples --example fleet_bench -- "$@"
