# Sourced by scripts/bench and scripts/ab: start a steprund in the background and wait until it
# listens; stop it again. Sets and clears `daemon_pid`.

# start_steprund BINARY SOCKET LOG ARGS...: runs `BINARY serve --unix-socket SOCKET ARGS...` with
# its output in LOG and returns once SOCKET exists; exits the script if the daemon dies first or
# does not listen within 30 s.
start_steprund() {
    local binary=$1 socket=$2 log=$3
    shift 3
    rm -f "$socket"
    "$binary" serve --unix-socket "$socket" "$@" >"$log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 1 300); do
        [ -S "$socket" ] && return 0
        kill -0 "$daemon_pid" 2>/dev/null || { cat "$log" >&2; echo "steprund exited during start-up" >&2; exit 1; }
        sleep 0.1
    done
    cat "$log" >&2
    echo "steprund did not start listening" >&2
    exit 1
}

# stop_steprund: SIGTERM (a graceful drain), SIGKILL if it is still running 10 s later.
stop_steprund() {
    if [ -n "${daemon_pid:-}" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    daemon_pid=
}
