#!/usr/bin/env bash
# Creates the project virtualenv (.venv) and installs what the emulators need, when missing;
# with --rollback-py also builds the `rollback` Python package into it (maturin develop).
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_python
if [ "${1:-}" = "--rollback-py" ]; then
  need_rust
  need_rollback_py
fi
