#!/usr/bin/env bash
# Every test of the project: installs what it needs (the Rust toolchain's components, the
# project virtualenv with the AWS emulator's packages), then runs the Rust tests of every
# crate (unit, integration, conformance, emulator scenarios, doc tests) with every feature,
# the emulator's own Python tests, and the Python package's tests (rollback-py/tests: its
# API against the AWS emulator and the Kubernetes simulator, the examples in
# examples/python, mypy on the stubs), after building it into .venv.
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
echo "== the Python package's tests (rollback-py)"
if need_rollback_py; then
  # The Kubernetes simulator `cargo test` built above for rollback-testkit's own tests; the
  # fixture builds it with `cargo run` when it is not there.
  sim="$ROOT/target/debug/rollback-k8s-sim"
  if [ -x "$sim" ]; then export ROLLBACK_K8S_SIM="$sim"; fi
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/rollback-py/tests" || status=$?
else
  echo "error: the rollback Python package could not be built, so its tests did not run" >&2
  status=1
fi
exit "$status"
