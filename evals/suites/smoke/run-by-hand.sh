#!/usr/bin/env bash
# Runs eval tasks by hand against the scripted model, the way the evals harness does, and
# says for each whether the outcome matches the task's `expected`.
#
# Usage: run-by-hand.sh [--keep] TASK_DIR...
#   e.g. evals/suites/smoke/run-by-hand.sh evals/suites/smoke/*/
#
# For each task folder: copies repo/ into a fresh temp workspace, runs `setup`, serves
# script.json with `evals scripted-server`, runs `agent-rs run` (with the task's limits),
# copies check/ in, runs `check`, and prints one line:
#   TASK  PASS|FAIL  expected pass|fail  ok|MISMATCH  agent exit N  steps used/total  time
# followed by the failed tool calls of the run (refusals a task provokes on purpose show up
# here too). Exits 0 when every outcome matches its `expected`, 1 otherwise.
#
# --keep keeps every temp folder (workspace, agent outputs, check.log, server log); without
# it only those of mismatching tasks are kept. Their path is printed.
#
# Binaries: $AGENT_RS and $EVALS_BIN, by default under ${CARGO_TARGET_DIR:-target}/debug/
# (build them with `cargo build -p agent-rs -p evals`). Needs bash, python3 (3.11+, for
# tomllib) and coreutils `timeout`.
set -euo pipefail

target_dir=${CARGO_TARGET_DIR:-target}
agent_rs=${AGENT_RS:-$target_dir/debug/agent-rs}
evals_bin=${EVALS_BIN:-$target_dir/debug/evals}
keep=false

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

[ $# -gt 0 ] || usage
if [ "$1" = "--keep" ]; then
    keep=true
    shift
fi
[ $# -gt 0 ] || usage
case "$1" in -h | --help) usage ;; esac

for bin in "$agent_rs" "$evals_bin"; do
    if [ ! -x "$bin" ]; then
        echo "error: $bin not found; run 'cargo build -p agent-rs -p evals' or set AGENT_RS / EVALS_BIN" >&2
        exit 2
    fi
done
agent_rs=$(realpath "$agent_rs")
evals_bin=$(realpath "$evals_bin")

server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# Prints the task.toml fields this script needs as shell assignments (values quoted).
read_task() {
    python3 - "$1" <<'PY'
import shlex, sys, tomllib
with open(sys.argv[1], "rb") as f:
    task = tomllib.load(f)
limits = task.get("limits", {})
fields = {
    "task_id": task.get("id", ""),
    "instruction": task["instruction"],
    "setup": task.get("setup", ""),
    "check": task["check"],
    "expected": task.get("expected", "pass"),
    "target_file": task.get("target_file", ""),
    "max_turns": limits.get("max_turns", ""),
    "max_tokens": limits.get("max_tokens", ""),
    "timeout_secs": limits.get("timeout_secs", 300),
    "check_timeout_secs": limits.get("check_timeout_secs", 60),
}
for name, value in fields.items():
    print(f"{name}={shlex.quote(str(value))}")
PY
}

# Prints `consumed/total` from the scripted server's status endpoint.
script_status() {
    python3 - "$1" <<'PY'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/_scripted/status", timeout=5) as response:
        status = json.load(response)
    print(f"{status['consumed']}/{status['total']}")
except OSError:
    print("?/?")
PY
}

# Prints the failed tool calls recorded in a trajectory, one per line.
failed_tools() {
    python3 - "$1" <<'PY'
import json, sys
try:
    lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
except OSError:
    sys.exit(0)
for line in lines:
    event = json.loads(line)
    if event.get("type") == "tool_result" and not event.get("success", True):
        first = event.get("output", "").strip().splitlines()[:1]
        print(f"    tool failed: turn {event.get('turn')} {event.get('name')}: {first[0][:150] if first else ''}")
PY
}

# Runs one task folder; returns 0 when its outcome matches `expected`.
run_task() {
    local task_dir=${1%/} tmp ws out server_url outcome agent_exit steps started elapsed check_exit
    if [ ! -f "$task_dir/task.toml" ]; then
        echo "$task_dir: no task.toml, skipped" >&2
        return 1
    fi
    local task_id instruction setup check expected target_file max_turns max_tokens timeout_secs check_timeout_secs
    eval "$(read_task "$task_dir/task.toml")"
    [ -n "$task_id" ] || task_id=$(basename "$task_dir")

    tmp=$(mktemp -d "${TMPDIR:-/tmp}/smoke-$task_id.XXXXXX")
    ws=$tmp/workspace
    out=$tmp/out
    mkdir -p "$ws"
    cp -a "$task_dir/repo/." "$ws/"
    started=$EPOCHREALTIME

    if [ -n "$setup" ] && ! (cd "$ws" && bash -c "$setup") >"$tmp/setup.log" 2>&1; then
        echo "$task_id  FAIL (setup failed, see $tmp/setup.log)"
        return 1
    fi

    "$evals_bin" scripted-server --script "$task_dir/script.json" --listen 127.0.0.1:0 \
        >"$tmp/server.out" 2>"$tmp/server.log" &
    server_pid=$!
    for _ in $(seq 100); do
        [ -s "$tmp/server.out" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    server_url=$(head -n 1 "$tmp/server.out")
    if [ -z "$server_url" ]; then
        echo "$task_id  FAIL (scripted server did not start, see $tmp/server.log)"
        stop_server
        return 1
    fi

    local args=(run --dir "$ws" --output "$out")
    [ -z "$max_turns" ] || args+=(--max-turns "$max_turns")
    [ -z "$max_tokens" ] || args+=(--max-tokens "$max_tokens")
    [ -z "$target_file" ] || args+=(--target-file "$target_file")
    args+=(--timeout "$timeout_secs" "$instruction")
    agent_exit=0
    env -u OPENAI_API_KEY -u AGENT_CONFIG OPENAI_BASE_URL="$server_url" AGENT_MODEL=scripted \
        timeout --kill-after=5 "$((timeout_secs + 10))" "$agent_rs" "${args[@]}" \
        >"$tmp/agent.stdout" 2>"$tmp/agent.stderr" || agent_exit=$?
    steps=$(script_status "${server_url%/v1}")
    stop_server

    if [ -d "$task_dir/check" ]; then
        cp -a "$task_dir/check/." "$ws/"
    fi
    check_exit=0
    (cd "$ws" && timeout --kill-after=5 "$check_timeout_secs" bash -c "$check") \
        >"$tmp/check.log" 2>&1 || check_exit=$?
    outcome=pass
    [ "$check_exit" -eq 0 ] || outcome=fail
    elapsed=$(awk -v start="$started" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }')

    local verdict=ok status=0
    if [ "$outcome" != "$expected" ]; then
        verdict=MISMATCH
        status=1
    fi
    printf '%-20s %-4s  expected %-4s  %-8s  agent exit %s  steps %s  %ss\n' \
        "$task_id" "${outcome^^}" "$expected" "$verdict" "$agent_exit" "$steps" "$elapsed"
    failed_tools "$out/trajectory.jsonl"
    if [ "$keep" = true ] || [ "$status" -ne 0 ]; then
        echo "    kept: $tmp (workspace/, out/, check.log, agent.stderr, server.log)"
    else
        rm -rf "$tmp"
    fi
    return "$status"
}

mismatches=0
total=0
for task_dir in "$@"; do
    total=$((total + 1))
    run_task "$task_dir" || mismatches=$((mismatches + 1))
done
echo "$((total - mismatches))/$total task(s) as expected"
[ "$mismatches" -eq 0 ]
