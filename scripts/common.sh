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

# The `rollback` Python package (rollback-py): maturin (pinned in
# rollback-py/requirements-dev.txt, with mypy) builds it in the debug profile into the
# workspace's target/ dir and installs it into .venv (editable: the Python sources and stubs
# are used in place). The build is skipped when none of its inputs changed since the last
# one (the Rust sources and manifests it is built from, Cargo.lock, the toolchain, the
# interpreter) and the installed module still imports. Returns non-zero on failure.
need_rollback_py() {
  need_python
  local req="$ROOT/rollback-py/requirements-dev.txt"
  local stamp="$VENV/.rollback-py-requirements.sha"
  local want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing maturin and mypy into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" || return 1
    echo "$want" > "$stamp"
  fi
  local built="$VENV/.rollback-py-build.sha"
  local inputs
  inputs="$(
    cd "$ROOT" || exit 1
    {
      find rollback-core rollback-aws rollback-k8s rollback-py \
        \( -path '*/src/*' -o -name Cargo.toml -o -name pyproject.toml -o -name build.rs \) \
        -type f ! -path 'rollback-py/python/*' -print0 | sort -z | xargs -0 sha256sum
      sha256sum Cargo.toml Cargo.lock
      rustc -vV
      "$VENV/bin/python" -VV
      echo "${RUSTFLAGS:-}"
    } | sha256sum | cut -d' ' -f1
  )"
  if [ -f "$built" ] && [ "$(cat "$built")" = "$inputs" ] &&
    "$VENV/bin/python" -c "import rollback._rollback" >/dev/null 2>&1; then
    return 0
  fi
  echo "building the rollback Python package (maturin develop, debug) into $VENV" >&2
  rm -f "$built"
  # The module is abi3 (`_rollback.abi3.so`); a version-specific one left by an older build
  # would be imported before it.
  rm -f "$ROOT"/rollback-py/python/rollback/_rollback.cpython-*.so
  (cd "$ROOT/rollback-py" && VIRTUAL_ENV="$VENV" "$VENV/bin/maturin" develop --quiet) || return 1
  "$VENV/bin/python" -c "import rollback._rollback" || return 1
  echo "$inputs" > "$built"
}
