#!/usr/bin/env bash
# The main job: an emulated incident rolled back end to end with the `rollback` command.
# Installs what it needs (the project virtualenv with the AWS emulator), starts the
# emulated AWS and the Kubernetes simulator with a bad release on a Lambda alias, three
# ECS services, a secret and a Kubernetes Deployment (examples/incident_env.rs), then
# reviews and runs examples/runbooks/incident.yaml: `rollback plan`, `rollback apply
# --yes`, `rollback report` (the incident report, Markdown, from the journal) and
# `rollback history` of one service to show where it is now.
# The same incident through the library: `cargo run -p rollback-examples --example incident`.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
need_rust
need_python
cargo build --quiet -p rollback-cli -p rollback-examples --example incident_env
bin="$ROOT/target/debug"
work="$(mktemp -d)"
env_file="$work/incident.env"
mkfifo "$work/hold"
# The incident stays up while this script holds the fifo open for writing.
"$bin/examples/incident_env" "$env_file" < "$work/hold" &
server=$!
exec 3> "$work/hold"
cleanup() { exec 3>&-; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 600); do
  [ -f "$env_file" ] && break
  kill -0 "$server" 2>/dev/null || { echo "the incident did not start" >&2; exit 1; }
  sleep 0.1
done
[ -f "$env_file" ] || { echo "the incident did not start within 60 s" >&2; exit 1; }
source "$env_file"
export ROLLBACK_JOURNAL_DIR="$work/journal" ROLLBACK_LOCK_DIR="$work/locks" ROLLBACK_KNOWN_GOOD_DIR="$work/known-good"
runbook=examples/runbooks/incident.yaml
echo
echo "\$ rollback plan $runbook"
status=0
"$bin/rollback" plan "$runbook" || status=$?
[ "$status" -eq 2 ] || { echo "plan: expected exit 2 (changes planned), got $status" >&2; exit 1; }
echo
echo "\$ rollback apply $runbook --yes"
"$bin/rollback" apply "$runbook" --yes
echo
echo "\$ rollback history ecs-service agentauri-production/api-gateway-v2"
"$bin/rollback" history ecs-service agentauri-production/api-gateway-v2
echo
id="$("$bin/rollback" list -o json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')"
echo "\$ rollback report ${id:0:8}"
"$bin/rollback" report "${id:0:8}"
