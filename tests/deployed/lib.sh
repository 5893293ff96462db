# shellcheck shell=bash
# The deployed tests' sandbox (sourced by bash scripts in this folder):
# tokenmgr installed with `cmake --install` at its real paths (/usr, /etc,
# /var...) inside private mount, network and PID namespaces, so that the
# shipped absolute paths and default addresses (Redis 127.0.0.1:6379,
# write_prometheus 127.0.0.1:9103, Prometheus :9090) work unchanged and touch
# nothing of the machine: /etc, /usr, /var and /run are overlays whose
# changes live in the test's folder, the loopback interface is the
# namespace's own, and every process dies with the namespace.
#
#   dp_enter SRC_DIR BUILD_DIR   re-run the calling script inside the
#                                namespaces (skips, 77, when that cannot be
#                                done here), then source tests/alerts/lib.sh
#   dp_install BUILD_DIR         overlays, `cmake --install`, ldconfig, and
#                                the stand-in systemctl in /usr/local/sbin
#   dp_redis_start / dp_redis_stop   Debian's redis-server as its unit runs
#                                it (/etc/redis/redis.conf unchanged)
#   dp_collectd_start LOG        collectd -f -C /etc/collectd/collectd.conf,
#                                until "Initialization complete" in LOG
#   dp_ms                        the time, Unix milliseconds
# Requires root (mounts, namespaces).

DP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dp_redis_pid=

dp_enter() {
    if [ "${TKM_DP_NS:-}" != 1 ]; then
        local why=
        if [ "$(id -u)" != 0 ]; then
            why="needs root (mount, network and PID namespaces)"
        elif ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
            why="needs unshare and ip (util-linux, iproute2)"
        elif [ "${TKM_SANITIZED:-0}" = 1 ]; then
            why="the sanitizer build's plugin cannot load into an uninstrumented collectd"
        elif ! unshare --mount --net --pid --fork --mount-proc true 2>/dev/null; then
            why="unshare --mount --net --pid is not permitted here"
        elif [ ! -f "$2/plugin/tokenmgr.so" ] || [ ! -x "$2/keepa_worker" ]; then
            why="the build has no plugin or example worker"
        fi
        if [ -n "$why" ]; then
            echo "$(basename "$0" .sh): SKIP: $why" >&2
            exit 77
        fi
        TKM_DP_NS=1 exec unshare --mount --net --pid --fork --kill-child --mount-proc \
            --propagation private bash "$0" "$@"
    fi
    # shellcheck source-path=SCRIPTDIR source=../alerts/lib.sh
    source "$DP_DIR/../alerts/lib.sh"
    trap dp_cleanup EXIT
    # A host has an address besides loopback, and glibc's AI_ADDRCONFIG
    # (write_prometheus resolves its Host with it) finds no IPv4 without
    # one: 192.0.2.1 (TEST-NET-1) and 2001:db8::1 (documentation), never
    # routed, on lo.
    if ! ip link set lo up || ! ip addr add 192.0.2.1/32 dev lo; then
        die "no loopback in the network namespace"
    fi
    ip -6 addr add 2001:db8::1/128 dev lo 2>/dev/null || true
}

# Everything in the PID namespace but this shell (its PID 1) is stopped,
# the overlays are let go, then the folder goes (fx_cleanup).
dp_cleanup() {
    local rc=$? m
    set +e
    if [ "$$" = 1 ]; then # never outside the PID namespace
        kill -TERM -1 2>/dev/null
        sleep 0.5
        kill -KILL -1 2>/dev/null
        wait 2>/dev/null
        FX_PIDS=()
        for m in run var usr etc; do umount -l "/$m" 2>/dev/null; done
    fi
    fx_cleanup
    exit "$rc"
}

dp_ms() { date +%s%3N; }

dp_install() { # dp_install BUILD_DIR
    local build=$1 m
    for m in etc usr var run; do
        mkdir -p "$T_DIR/ovl/$m/upper" "$T_DIR/ovl/$m/work"
        mount -t overlay "overlay-$m" \
            -o "lowerdir=/$m,upperdir=$T_DIR/ovl/$m/upper,workdir=$T_DIR/ovl/$m/work" "/$m" ||
            die "cannot overlay /$m"
    done
    cmake --install "$build" >"$T_DIR/install.log" 2>&1 ||
        { cat "$T_DIR/install.log"; die "cmake --install failed"; }
    ldconfig
    install -m 0755 "$DP_DIR/systemctl" /usr/local/sbin/systemctl
    hash -r
    [ "$(command -v systemctl)" = /usr/local/sbin/systemctl ] || die "the stand-in systemctl is not first on the PATH"
    mkdir -p /run/redis /var/log/redis /var/lib/redis /var/log/units
    rm -f /var/lib/redis/dump.rdb /var/log/systemctl-stand-in.log
}

dp_redis_start() { # as /lib/systemd/system/redis-server.service runs it
    fx_bg /var/log/redis/stdout.log redis-server /etc/redis/redis.conf \
        --supervised systemd --daemonize no
    dp_redis_pid=$fx_pid
    fx_wait_for 10 redis-cli -h 127.0.0.1 -p 6379 ping ||
        { tail -n 20 /var/log/redis/redis-server.log >&2; die "redis-server did not start"; }
}

dp_redis_stop() { # systemctl stop redis-server: SHUTDOWN, which saves
    redis-cli -h 127.0.0.1 -p 6379 shutdown >/dev/null 2>&1 || true
    wait "$dp_redis_pid" 2>/dev/null || true
    dp_redis_pid=
}

dp_collectd_start() { # dp_collectd_start LOG
    local log=$1 before
    before=$(grep -c 'Initialization complete' "$log" 2>/dev/null || true)
    fx_bg /var/log/collectd.out "${FX_COLLECTD[@]}" -f -C /etc/collectd/collectd.conf
    fx_wait_for 15 fx_initialized "$log" "${before:-0}" ||
        { cat /var/log/collectd.out "$log" >&2; die "collectd did not start"; }
}
