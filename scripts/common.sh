# Shared by the scripts: checks and installs what the project needs on a fresh machine.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

need_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      echo "error: cargo is not installed; install the Rust toolchain with rustup (https://rustup.rs) and run this again" >&2
      exit 1
    fi
  fi
  for c in rustfmt clippy-driver; do
    if ! command -v "$c" >/dev/null 2>&1 && ! [ -x "$HOME/.cargo/bin/$c" ]; then
      rustup component add rustfmt clippy >/dev/null 2>&1 || true
    fi
  done
}
