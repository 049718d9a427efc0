# Sourced by the end-to-end serve tests: start `lowbit serve` on a free port and stop it with
# SIGTERM, checking that it drains and exits 0. Every wait is bounded.
#   start_server BIN ARGS...   sets $port and $server_pid (server stderr in $work/server.log)
#   stop_server                 SIGTERM, wait up to 30 s, require exit 0 and the shutdown line
# The caller sets $work (a temporary directory) and calls cleanup_server from its EXIT trap.
server_pid=""

start_server() {
  local bin="$1"
  shift
  "$bin" serve --port 0 "$@" 2> "$work/server.log" &
  server_pid=$!
  port=""
  for _ in $(seq 1 600); do  # up to 60 s to load and listen
    port="$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/server.log" | head -1)"
    [ -n "$port" ] && return 0
    kill -0 "$server_pid" 2> /dev/null || { cat "$work/server.log" >&2; echo "server exited early" >&2; return 1; }
    sleep 0.1
  done
  cat "$work/server.log" >&2
  echo "server did not start listening" >&2
  return 1
}

stop_server() {
  local status=0
  kill -TERM "$server_pid"
  for _ in $(seq 1 300); do
    kill -0 "$server_pid" 2> /dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2> /dev/null; then cat "$work/server.log" >&2; echo "server ignored SIGTERM" >&2; return 1; fi
  wait "$server_pid" || status=$?
  server_pid=""
  grep -q "stopped after" "$work/server.log" || { cat "$work/server.log" >&2; echo "no clean shutdown line" >&2; return 1; }
  [ "$status" -eq 0 ] || { cat "$work/server.log" >&2; echo "server exit status $status" >&2; return 1; }
}

cleanup_server() {
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2> /dev/null || true
}
