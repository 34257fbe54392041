#!/usr/bin/env bash
# Every test of the project: installs what it needs (the Rust toolchain's components, the
# project virtualenv with the AWS emulator's packages), then runs the Rust tests of every
# crate (unit, integration, conformance, emulator scenarios, doc tests) with every feature,
# and the emulator's own Python tests.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
need_rust
need_python
status=0
cargo test --workspace --all-features --no-fail-fast || status=$?
echo "== the emulator's Python tests"
PYTHONPATH="$ROOT/rollback-testkit/python" "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  "$ROOT/rollback-testkit/python/tests" || status=$?
exit "$status"
