#!/usr/bin/env bash
# The fleet benchmark (a program that prints figures, not a test): N ECS services and N
# Lambda aliases rolled back to their previous revisions on the emulated AWS, by this
# library, by a hand-written aws-sdk-rust loop and by runbook 001's `aws` CLI script, then
# the scale figures. Arguments go to the benchmark (e.g. `-- --n 50,200`; every option is
# in examples/fleet_bench.rs's doc comment).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
need_rust
need_python
needs_cli=yes
for arg in "$@"; do
  case "$arg" in --skip-cli | --scale) needs_cli=no ;; esac
done
if [ -x "$VENV/bin/aws" ]; then
  export PATH="$VENV/bin:$PATH"
elif [ "$needs_cli" = yes ] && ! command -v aws >/dev/null 2>&1; then
  echo "installing the aws CLI into $VENV for the runbook-way comparison" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check awscli
  export PATH="$VENV/bin:$PATH"
fi
# The dev profile: the work is I/O-bound (the emulator and the waits), and it reuses the
# test build instead of a long release build of the AWS SDK.
cargo run --quiet -p rollback-examples --example fleet_bench -- "$@"
