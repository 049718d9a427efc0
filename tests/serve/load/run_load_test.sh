#!/usr/bin/env bash
# `lowbit serve` under bounded load on loopback (bench/serve_load.mjs as the client), scaled to
# CI: 64 concurrent streams with room for all -> no failures; 32 streams against 2 slots and a
# queue of 2 -> only 503s beside successes; RSS after 3000 more requests within 5% of RSS after a
# 500-request warm-up; then SIGTERM drains and exits 0. Usage: run_load_test.sh LOWBIT_BIN
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"
root="$here/../../.."
shared="${LOWBIT_SHARED:-$root/../shared}"
work="$(mktemp -d)"
source "$here/../serve_harness.sh"
trap 'cleanup_server; rm -rf "$work"' EXIT
load="$root/bench/serve_load.mjs"
field() { node -e 'const j = JSON.parse(process.argv[1]); const v = process.argv[2].split(".").reduce((o, k) => o?.[k], j); process.stdout.write(JSON.stringify(v ?? null))' "$1" "$2"; }

start_server "$bin" -m "$shared/models/ref-s" --parallel 16 --queue 64 --threads 2
r="$(node "$load" --url "http://127.0.0.1:$port" --concurrency 64 --requests 128 --max-tokens 16 --timeout-s 240)"
echo "64 streams: $r"
[ "$(field "$r" ok)" = 128 ] && [ "$(field "$r" failures)" = "{}" ] || { echo "failed requests at 64 streams" >&2; exit 1; }

node "$load" --url "http://127.0.0.1:$port" --concurrency 8 --requests 500 --max-tokens 4 --timeout-s 240 > /dev/null
r="$(node "$load" --url "http://127.0.0.1:$port" --concurrency 8 --requests 3000 --max-tokens 4 --pid "$server_pid" --timeout-s 400)"
echo "3000 requests: $r"
[ "$(field "$r" ok)" = 3000 ] || { echo "failed requests in the RSS run" >&2; exit 1; }
before="$(field "$r" rss_kib_before)"
after="$(field "$r" rss_kib_after)"
[ "$after" -le $(( before + before / 20 )) ] || { echo "RSS grew from $before to $after KiB (> 5%)" >&2; exit 1; }
stop_server

start_server "$bin" -m "$shared/models/ref-s" --parallel 2 --queue 2 --threads 2
r="$(node "$load" --url "http://127.0.0.1:$port" --concurrency 32 --requests 32 --max-tokens 64 --timeout-s 240)"
echo "32 streams, 2 slots + queue 2: $r"
[ "$(field "$r" failures | tr -d '{}"' | sed 's/:[0-9]*//g')" = 503 ] || { echo "overflow answered with something else than 503" >&2; exit 1; }
[ "$(field "$r" ok)" -ge 4 ] || { echo "fewer than 4 requests served under overflow" >&2; exit 1; }
stop_server
echo "serve load: all checks passed"
