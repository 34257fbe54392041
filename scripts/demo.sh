#!/usr/bin/env bash
# The main job: an emulated incident rolled back end to end. Installs what it needs (the
# project virtualenv with the AWS emulator), starts the emulated AWS, deploys a bad release
# to a Lambda alias, three ECS services and a secret, and rolls it all back in one verified
# transaction (examples/incident.rs).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
need_rust
need_python
cargo run --quiet -p rollback-examples --example incident
