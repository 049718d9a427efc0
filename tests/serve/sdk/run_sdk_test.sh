#!/usr/bin/env bash
# End-to-end test of `lowbit serve` with the official OpenAI Node SDK: starts the server on a free
# port, runs openai_sdk_test.mjs against it, then sends SIGTERM and checks that the server drains
# and exits 0. Every wait is bounded. Usage: run_sdk_test.sh LOWBIT_BIN
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"
shared="${LOWBIT_SHARED:-$here/../../../../shared}"
model="$shared/models/ref-s"
[ -d "$here/node_modules/openai" ] || { echo "openai SDK missing: run scripts/install-deps.sh" >&2; exit 1; }
work="$(mktemp -d)"
source "$here/../serve_harness.sh"
trap 'cleanup_server; rm -rf "$work"' EXIT

prompt="The history of the city"
n=16
expected="$("$bin" generate -m "$model" -p "$prompt" -n "$n" --temp 0 --json --threads 2)"
start_server "$bin" -m "$model" --api-key test-key --alias ref-s --parallel 4 --threads 2
timeout 180 node "$here/openai_sdk_test.mjs" "http://127.0.0.1:$port/v1" test-key \
  "$(printf '%s' "$expected" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); process.stdout.write(JSON.stringify({prompt: process.argv[1], n: Number(process.argv[2]), text: j.text}))' "$prompt" "$n")"
stop_server
echo "serve + OpenAI SDK: all checks passed, clean SIGTERM shutdown"
