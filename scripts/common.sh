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

# The project virtualenv with the emulator's Python packages (moto, pinned).
VENV="$ROOT/.venv"
export ROLLBACK_PYTHON="$VENV/bin/python"

need_python() {
  local py="${PYTHON:-python3}"
  if ! command -v "$py" >/dev/null 2>&1; then
    echo "error: $py is not installed; install Python 3.9+ and run this again" >&2
    exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo "creating the project virtualenv in $VENV" >&2
    "$py" -m venv "$VENV"
  fi
  local dir="$ROOT/rollback-testkit/python"
  local stamp="$VENV/.requirements.sha"
  local want
  want="$(cat "$dir/requirements.txt" "$dir/requirements-dev.txt" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing the emulator's packages into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r "$dir/requirements.txt" -r "$dir/requirements-dev.txt"
    echo "$want" > "$stamp"
  fi
}
