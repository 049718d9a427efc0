#!/usr/bin/env bash
# The chat page of `lowbit serve` in headless Chromium (Debian's chromium package), driven over
# the DevTools protocol by chat_page_test.mjs. Every wait is bounded. Usage: run_page_test.sh LOWBIT_BIN
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"
shared="${LOWBIT_SHARED:-$here/../../../../shared}"
browser="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$browser" ] || { echo "chromium missing: run scripts/install-deps.sh" >&2; exit 1; }
work="$(mktemp -d)"
source "$here/../serve_harness.sh"
browser_pid=""
trap '{ [ -n "$browser_pid" ] && kill -9 "$browser_pid" 2>/dev/null; } || true; cleanup_server; rm -rf "$work"' EXIT

start_server "$bin" -m "$shared/models/ref-s" --api-key page-key --alias ref-s --threads 2
"$browser" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --disable-extensions \
  --remote-debugging-port=0 --user-data-dir="$work/profile" about:blank > "$work/browser.log" 2>&1 &
browser_pid=$!
disown "$browser_pid"  # killed at exit without a job-control message
debug_port=""
for _ in $(seq 1 300); do  # up to 30 s for Chromium to open its DevTools port
  [ -s "$work/profile/DevToolsActivePort" ] && debug_port="$(head -1 "$work/profile/DevToolsActivePort")" && break
  sleep 0.1
done
[ -n "$debug_port" ] || { cat "$work/browser.log" >&2; echo "chromium did not start" >&2; exit 1; }
timeout 120 node --experimental-websocket --no-warnings "$here/chat_page_test.mjs" "http://127.0.0.1:$port" page-key "$debug_port"
stop_server
echo "chat page in headless Chromium: all checks passed"
