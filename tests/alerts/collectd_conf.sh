#!/usr/bin/env bash
# conf/collectd.conf.d/tokenmgr.conf against the real collectd 5.12.
#
#   collectd_conf.sh SRC_DIR BUILD_DIR stock    the file without the tokenmgr
#       plugin (LoadPlugin + <Plugin tokenmgr> cut out): collectd -T accepts
#       it, rejects a broken copy, and the threshold rules notify as their
#       comments say (fed with PUTVAL through the unixsock plugin)
#   collectd_conf.sh SRC_DIR BUILD_DIR plugin   the whole file, with
#       BUILD_DIR/plugin/tokenmgr.so; skipped (77) until the plugin is built
#
# Paths (socket, port, ConfigFile, RedisURL, recovery Exec) are pointed at a
# temporary folder and the source tree (fx_dropin); nothing else is changed.
# The main collectd.conf around it is the tests' template
# (tests/fixtures/collectd.conf.in).
source "$(dirname "$0")/lib.sh"

src=$1 build=$2 mode=$3
conf=$src/conf/collectd.conf.d/tokenmgr.conf
need collectd
[ -f "$conf" ] || die "missing $conf"

port=$(fx_free_port)
sock=$T_DIR/collectd.sock

run_T() { # run_T MAIN_CONF: collectd -T, its log shown on failure
    : >"$T_DIR/collectd.log"
    if "${FX_COLLECTD[@]}" -T -C "$1" >"$T_DIR/T.out" 2>&1; then
        return 0
    fi
    cat "$T_DIR/T.out" "$T_DIR/collectd.log" >&2
    return 1
}

if [ "$mode" = plugin ]; then
    skip_if_sanitized
    so=$build/plugin/tokenmgr.so
    [ -f "$so" ] || skip "$so is not built (the plugin is merged separately)"
    # The template loads tokenmgr.so from the build folder; the drop-in's
    # own LoadPlugin tokenmgr is then a no-op, its stock plugins load from
    # collectd's folder.
    fx_dropin "$T_DIR/tokenmgr.conf" plugin "$port" "$sock" "unix://$T_DIR/redis.sock"
    grep -q '^<Plugin tokenmgr>' "$T_DIR/tokenmgr.conf" || die "the plugin block is gone"
    write_collectd_main "$T_DIR/main.conf" 10 "$T_DIR/tokenmgr.conf" \
        PLUGIN_DIR="$build/plugin"
    if run_T "$T_DIR/main.conf"; then
        ok "collectd -T accepts the file with the tokenmgr plugin"
    else
        not_ok "collectd -T refused the file with the tokenmgr plugin"
    fi
    # The plugin really reads the block: both stall limits at once is an
    # error the plugin reports (CONTRACT: give one of the two).
    sed -i 's|#StallTokens 290|StallTokens 290|' "$T_DIR/tokenmgr.conf"
    if run_T "$T_DIR/main.conf" 2>/dev/null; then
        not_ok "collectd -T accepted StallTokens together with StallTokensRatio"
    elif grep -q 'tokenmgr plugin: .*StallTokens' "$T_DIR/collectd.log"; then
        ok "collectd -T refuses StallTokens together with StallTokensRatio"
    else
        not_ok "collectd -T failed, but not on the tokenmgr block"
    fi
    t_done
    exit 0
fi

[ "$mode" = stock ] || die "mode must be stock or plugin"
need collectdctl

fx_dropin "$T_DIR/tokenmgr.conf" stock "$port" "$sock" ""
if grep -q -E '^[^#]*(LoadPlugin tokenmgr|<Plugin tokenmgr>|<Pool )' "$T_DIR/tokenmgr.conf"; then
    die "the tokenmgr plugin block was not cut out"
fi
for p in write_prometheus unixsock threshold; do
    grep -q "^LoadPlugin $p\$" "$T_DIR/tokenmgr.conf" || die "LoadPlugin $p is gone"
done
write_collectd_main "$T_DIR/collectd.conf" 10 "$T_DIR/tokenmgr.conf"

if run_T "$T_DIR/collectd.conf"; then
    ok "collectd -T accepts the file (tokenmgr plugin cut out)"
else
    not_ok "collectd -T refused the file (tokenmgr plugin cut out)"
fi

# The check is not vacuous: collectd -T does refuse a broken threshold.
sed 's|WarningMax 600|WarningMax 600\n      NoSuchOption 1|' "$T_DIR/tokenmgr.conf" >"$T_DIR/broken.conf"
write_collectd_main "$T_DIR/broken-main.conf" 10 "$T_DIR/broken.conf"
if run_T "$T_DIR/broken-main.conf" 2>/dev/null; then
    not_ok "collectd -T accepted an unknown threshold option"
else
    ok "collectd -T refuses an unknown threshold option"
fi

# ---- the threshold rules, fed through the unixsock plugin -------------------
fx_collectd_start "$T_DIR" || die "collectd did not start"
fx_wait_for 10 test -S "$sock" || die "collectd's socket did not appear"
now=$(date +%s)
t0=$((now - 10000))

putval() { # putval TYPE-INSTANCE VALUE N-TH: a value N*10 s after t0
    collectdctl -s "$sock" putval "tkm-test/tokenmgr-keepa/$1" interval=10 \
        "$((t0 + $3 * 10)):$2"
}
notified() { # notified TYPE_INSTANCE SEVERITY
    grep -q "severity = $2, host = tkm-test, plugin = tokenmgr, plugin_instance = keepa, type = [a-z]*, type_instance = $1," \
        "$T_DIR/collectd.log"
}
# reads TYPE-INSTANCE VALUE FROM TO: consecutive reads FROM..TO
reads() {
    local i
    for ((i = $3; i <= $4; i++)); do putval "$1" "$2" "$i"; done
}
# expect_after NAME TYPE-INSTANCE BAD SEVERITY READS: no notification after
# READS-1 consecutive out-of-range reads, one after READS.
expect_after() {
    local inst=${2#*-}
    reads "$2" "$3" 1 $(($5 - 1))
    sleep 0.3
    if notified "$inst" "$4"; then
        not_ok "$1: notified before read $5"
        return
    fi
    reads "$2" "$3" "$5" "$5"
    if fx_wait_for 5 notified "$inst" "$4"; then
        ok "$1: $4 at read $5, not before"
    else
        not_ok "$1: no $4 notification at read $5"
    fi
}
expect_after "redis_up 0 for 2 min" bool-redis_up 0 FAILURE 12
expect_after "tokens below the soft floor for 30 min" gauge-tokens 10 WARNING 180
expect_after "recharge on for 65 min" bool-recharge_mode 1 WARNING 390
expect_after "heartbeat age above 900 s" duration-heartbeat_age 950 FAILURE 1
expect_after "recovery escalated" bool-escalated 1 FAILURE 1

# Back in range: one OKAY.  A dip shorter than its Hits stays silent.
reads gauge-tokens 100 400 400
fx_wait_for 5 notified tokens OKAY &&
    ok "tokens back above the floor: OKAY" || not_ok "tokens back above the floor: no OKAY"
reads gauge-tokens 10 401 460
reads gauge-tokens 100 461 461
sleep 0.3
n=$(grep -c 'severity = WARNING, .*type_instance = tokens,' "$T_DIR/collectd.log" || true)
[ "$n" -eq 1 ] && ok "10 minutes below the floor do not notify" ||
    not_ok "10 minutes below the floor notified ($n warnings in all)"

t_done
