# Helpers for the operations tests (sourced by bash scripts in this folder).
#
# Every test works in its own temporary folder, starts only private
# processes (loopback ports picked free, Unix sockets in the folder) and
# stops them on exit.  Exit 77 means "skipped" (CTest SKIP_RETURN_CODE).

set -euo pipefail

T_NAME=$(basename "$0" .sh)
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tkm-$T_NAME.XXXXXX")
T_PIDS=()
T_FAILS=0

t_cleanup() {
    local pid
    for pid in "${T_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${T_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "${T_KEEP:-0}" = 1 ]; then
        echo "$T_NAME: kept $T_DIR" >&2
    else
        rm -rf "$T_DIR"
    fi
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

# With an ASan build (BUILD_DIR, the scripts' second argument, configured
# with TKM_SANITIZE) the instrumented plugin loads into the uninstrumented
# collectd only with the ASan runtime preloaded, as tests/check_plugin.c
# does.  Leaks are check_plugin's business: collectd -T exits without
# freeing its configuration.
if [ -n "${2:-}" ] && grep -qx 'TKM_SANITIZE:BOOL=ON' "$2/CMakeCache.txt" 2>/dev/null; then
    T_ASAN_RUNTIME=$("$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$2/CMakeCache.txt")" \
        -print-file-name=libasan.so)
    collectd() {
        LD_PRELOAD=$T_ASAN_RUNTIME ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 \
            command collectd "$@"
    }
fi

say() { printf '%s: %s\n' "$T_NAME" "$*" >&2; }
skip() { say "SKIP: $*"; exit 77; }
# The sanitizer build's plugin needs the ASan runtime preloaded into
# collectd, which only tests/check_plugin.c does; the normal build runs these.
skip_if_sanitized() {
    [ "${TKM_SANITIZED:-0}" = 1 ] && skip "the sanitizer build's plugin cannot load into an uninstrumented collectd (check_plugin covers it)"
    return 0
}
die() { say "FAIL: $*"; exit 1; }
ok() { printf 'ok   %s\n' "$*"; }
not_ok() { printf 'FAIL %s\n' "$*"; T_FAILS=$((T_FAILS + 1)); }
t_done() {
    [ "$T_FAILS" -eq 0 ] || die "$T_FAILS check(s) failed"
    say "all checks passed"
}

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
    done
}

# A TCP port on 127.0.0.1 that nobody listens on right now.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Start a background process, remember it for the cleanup.
start_bg() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    T_PIDS+=($!)
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# A collectd main configuration around a drop-in: globals in T_DIR.
# write_collectd_main FILE INTERVAL INCLUDE_FILE
write_collectd_main() {
    cat >"$1" <<EOF
Hostname "tkm-test"
FQDNLookup false
BaseDir "$T_DIR"
PIDFile "$T_DIR/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
Interval $2
LoadPlugin logfile
<Plugin logfile>
  File "$T_DIR/collectd.log"
  LogLevel info
  Timestamp true
</Plugin>
Include "$3"
EOF
}
