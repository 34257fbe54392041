#!/usr/bin/env bash
# The feature matrix: each crate given here (rollback-core by default) linted with no
# features, with each of its features alone, and with its default features, warnings as
# errors; with no features also its tests, examples and benches (`--all-targets`), which
# gate what needs a feature. `cargo clippy` checks, it does not build or run anything. The
# features are read from the crate's manifest, so a new feature is in the matrix at once.
# Then every workspace crate is checked alone (`cargo check -p <crate> --all-targets`), so
# with only the features it enables itself: the workspace's internal dependencies have
# `default-features = false`, and a whole-workspace build unifies features, so it would not
# see a crate that uses a feature it forgot to enable.
#   bash scripts/features.sh [crate...]
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
need_rust
if [ "$#" -eq 0 ]; then set -- rollback-core; fi

members() {
  cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))'
}

features_of() {
  cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
crate = sys.argv[1]
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == crate:
        print("\n".join(sorted(f for f in p["features"] if f != "default")))
        break
else:
    sys.exit(f"error: no crate {crate} in this workspace")
' "$1"
}

lint() {
  echo "== cargo clippy -p $*"
  cargo clippy --quiet -p "$@" -- -D warnings
}

for crate in "$@"; do
  lint "$crate" --no-default-features --all-targets
  lint "$crate" --no-default-features
  for feature in $(features_of "$crate"); do
    lint "$crate" --no-default-features --features "$feature"
  done
  lint "$crate"
done
for crate in $(members); do
  echo "== cargo check -p $crate --all-targets"
  cargo check --quiet -p "$crate" --all-targets
done
