#!/usr/bin/env bash
# Creates the project virtualenv (.venv) and installs what the emulators need, when missing.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_python
