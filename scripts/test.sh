#!/usr/bin/env bash
# Every test of the project: installs what it needs, then runs the Rust tests of every
# crate (unit, integration, conformance, doc tests) with every feature.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
need_rust
cargo test --workspace --all-features --no-fail-fast
