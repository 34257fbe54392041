#!/usr/bin/env bash
# The main job: an emulated incident rolled back end to end (for now on in-memory
# targets: a failing health check, the compensation, then a verified rollback).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
need_rust
cargo run --quiet -p rollback-examples --example incident
