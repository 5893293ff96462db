#!/usr/bin/env bash
# conf/collectd.conf.d/ against the real collectd 5.12: the drop-in
# tokenmgr.conf and the optional example snippets (examples/*.conf).
#
#   collectd_conf.sh SRC_DIR BUILD_DIR snippets   the drop-in configures
#       tokenmgr and nothing else; collectd -T accepts each snippet and
#       refuses a broken copy; the threshold rules notify as their comments
#       say (fed with PUTVAL through the unixsock snippet; the plugin is
#       loaded, without a pool, for its types)
#   collectd_conf.sh SRC_DIR BUILD_DIR plugin     the drop-in with
#       BUILD_DIR/plugin/tokenmgr.so, and bad input: a misspelled option,
#       an Include of a missing file, a drop-in that disagrees with the
#       YAML, a wrong Redis socket path, both stall limits at once
#
# Site paths (ports, sockets, ConfigFile, RedisURL, the recovery Exec) are
# pointed at a temporary folder and the source tree (fx_dropin,
# fx_snippet); nothing else is changed.  The main collectd.conf around them
# is the tests' template (tests/fixtures/collectd.conf.in).
source "$(dirname "$0")/lib.sh"

src=$1 build=$2 mode=$3
conf=$src/conf/collectd.conf.d/tokenmgr.conf
need collectd
[ -f "$conf" ] || die "missing $conf"
skip_if_sanitized
so=$build/plugin/tokenmgr.so
[ -f "$so" ] || skip "$so is not built"

port=$(fx_free_port)
sock=$T_DIR/collectd.sock
mkdir -p "$T_DIR/conf.d"

run_T() { # run_T MAIN_CONF: collectd -T; its log shown on failure
    : >"$T_DIR/collectd.log"
    if "${FX_COLLECTD[@]}" -T -C "$1" >"$T_DIR/T.out" 2>&1; then
        return 0
    fi
    cat "$T_DIR/T.out" "$T_DIR/collectd.log" >&2
    return 1
}
# count PATTERN FILE: the lines of FILE matching the extended regex
count() { grep -c -E -- "$1" "$2" 2>/dev/null || true; }

if [ "$mode" = snippets ]; then
    need collectdctl
    # ---- the drop-in loads and configures tokenmgr only -------------------
    others=$(grep -E -o '^[[:space:]]*<?(LoadPlugin|Plugin)[[:space:]]+"?[A-Za-z_]+' "$conf" |
        grep -v -E '[[:space:]"]tokenmgr$' || true)
    if [ -z "$others" ]; then
        ok "the drop-in loads and configures the tokenmgr plugin and nothing else"
    else
        not_ok "the drop-in touches other plugins: $(echo "$others" | tr '\n' ' ')"
    fi
    for s in write_prometheus unixsock tokenmgr-thresholds; do
        [ -f "$src/conf/collectd.conf.d/examples/$s.conf" ] || not_ok "no example snippet $s.conf"
    done

    # ---- each snippet alone, without the plugin --------------------------
    for s in write_prometheus unixsock tokenmgr-thresholds; do
        fx_snippet "$T_DIR/conf.d/$s.conf" "$s" \
            "$([ $s = write_prometheus ] && echo "$port" || echo "$sock")" || die "fx_snippet $s"
        write_collectd_main "$T_DIR/one.conf" 10 "$T_DIR/conf.d/$s.conf"
        if run_T "$T_DIR/one.conf"; then
            ok "collectd -T accepts the $s snippet"
        else
            not_ok "collectd -T refused the $s snippet"
        fi
    done
    # The check is not vacuous: collectd -T does refuse a broken threshold.
    sed 's|Hits 10$|Hits 10\n      NoSuchOption 1|' "$T_DIR/conf.d/tokenmgr-thresholds.conf" >"$T_DIR/broken.conf"
    cmp -s "$T_DIR/broken.conf" "$T_DIR/conf.d/tokenmgr-thresholds.conf" && die "could not break the thresholds"
    write_collectd_main "$T_DIR/broken-main.conf" 10 "$T_DIR/broken.conf"
    if run_T "$T_DIR/broken-main.conf" 2>/dev/null; then
        not_ok "collectd -T accepted an unknown threshold option"
    else
        ok "collectd -T refuses an unknown threshold option"
    fi

    # ---- the threshold rules, fed through the unixsock snippet ------------
    # The plugin is loaded without a pool: its types (recharge_mode,
    # redis_up...) are what the rules and PUTVAL name.
    rm -f "$T_DIR/conf.d/write_prometheus.conf"
    write_collectd_main "$T_DIR/collectd.conf" 10 "$T_DIR/conf.d/*.conf" \
        PLUGIN_DIR="$build/plugin"
    fx_collectd_start "$T_DIR" || die "collectd did not start"
    fx_wait_for 10 test -S "$sock" || die "collectd's socket did not appear"
    now=$(date +%s)
    t0=$((now - 10000))

    putval() { # putval TYPE VALUE N-TH: a value N*10 s after t0
        collectdctl -s "$sock" putval "tkm-test/tokenmgr-putval/$1" interval=10 \
            "$((t0 + $3 * 10)):$2"
    }
    notified() { # notified TYPE SEVERITY
        grep -q "severity = $2, host = tkm-test, plugin = tokenmgr, plugin_instance = putval, type = $1," \
            "$T_DIR/collectd.log"
    }
    # reads TYPE VALUE FROM TO: consecutive reads FROM..TO
    reads() {
        local i
        for ((i = $3; i <= $4; i++)); do putval "$1" "$2" "$i"; done
    }
    # expect_after NAME TYPE BAD SEVERITY READS GOOD: no notification
    # after an in-range read (GOOD) and READS-1 consecutive out-of-range
    # ones (so that the first half can fail even when READS is 1), one
    # after READS.
    expect_after() {
        putval "$2" "$6" 0
        reads "$2" "$3" 1 $(($5 - 1))
        sleep 0.3
        if notified "$2" "$4"; then
            not_ok "$1: notified before read $5"
            return
        fi
        reads "$2" "$3" "$5" "$5"
        if fx_wait_for 5 notified "$2" "$4"; then
            ok "$1: $4 at read $5, not before"
        else
            not_ok "$1: no $4 notification at read $5"
        fi
    }
    expect_after "redis_up 0 for 2 min" redis_up 0 FAILURE 12 1
    expect_after "recharge on for 65 min" recharge_mode 1 WARNING 390 0
    expect_after "recovery escalated" escalated 1 FAILURE 1 0
    expect_after "recovery paused for 1 h" recovery_paused 1 WARNING 360 0

    # Back in range: one OKAY.  A stretch shorter than its Hits stays silent.
    reads redis_up 1 400 400
    if fx_wait_for 5 notified redis_up OKAY; then
        ok "redis_up back to 1: OKAY"
    else
        not_ok "redis_up back to 1: no OKAY"
    fi
    reads redis_up 0 401 410
    reads redis_up 1 411 411
    sleep 0.3
    n=$(count 'severity = FAILURE, .*type = redis_up,' "$T_DIR/collectd.log")
    if [ "$n" -eq 1 ]; then
        ok "100 s of redis_up 0 do not notify"
    else
        not_ok "100 s of redis_up 0 notified ($n failures in all)"
    fi
    t_done
    exit 0
fi

[ "$mode" = plugin ] || die "mode must be snippets or plugin"

# ---- the drop-in, alone and with every snippet --------------------------------
fx_dropin "$T_DIR/conf.d/tokenmgr.conf" "unix://$T_DIR/redis.sock" || die "fx_dropin"
write_collectd_main "$T_DIR/main.conf" 10 "$T_DIR/conf.d/tokenmgr.conf" PLUGIN_DIR="$build/plugin"
if run_T "$T_DIR/main.conf"; then
    ok "collectd -T accepts the drop-in with the tokenmgr plugin"
else
    not_ok "collectd -T refused the drop-in with the tokenmgr plugin"
fi
fx_snippet "$T_DIR/conf.d/write_prometheus.conf" write_prometheus "$port"
fx_snippet "$T_DIR/conf.d/unixsock.conf" unixsock "$sock"
fx_snippet "$T_DIR/conf.d/tokenmgr-thresholds.conf" tokenmgr-thresholds
write_collectd_main "$T_DIR/all.conf" 10 "$T_DIR/conf.d/*.conf" PLUGIN_DIR="$build/plugin"
if run_T "$T_DIR/all.conf"; then
    ok "collectd -T accepts the drop-in with every example snippet"
else
    not_ok "collectd -T refused the drop-in with the example snippets"
fi
rm -f "$T_DIR/conf.d/write_prometheus.conf" "$T_DIR/conf.d/unixsock.conf" \
    "$T_DIR/conf.d/tokenmgr-thresholds.conf"

# bad_copy NAME SED: a copy of the test's drop-in edited by SED, and a
# main config around it (bad-NAME.conf); 1 when SED changed nothing.
bad_copy() {
    sed "$2" "$T_DIR/conf.d/tokenmgr.conf" >"$T_DIR/bad-$1.dropin"
    ! cmp -s "$T_DIR/bad-$1.dropin" "$T_DIR/conf.d/tokenmgr.conf" || return 1
    write_collectd_main "$T_DIR/bad-$1.conf" 10 "$T_DIR/bad-$1.dropin" PLUGIN_DIR="$build/plugin"
}

# ---- a misspelled option: refused, one line naming it ---------------------------
bad_copy misspelled 's|#StallConfirmations 2 |StalConfirmations 2 |' || die "could not misspell"
if run_T "$T_DIR/bad-misspelled.conf" 2>/dev/null; then
    not_ok "collectd -T accepted a misspelled option"
else
    n=$(count 'tokenmgr plugin: .*StalConfirmations' "$T_DIR/collectd.log")
    line=$(grep 'tokenmgr plugin: .*StalConfirmations' "$T_DIR/collectd.log" | head -n 1)
    if [ "$n" -eq 1 ] && grep -q "<Pool \"keepa\"> unknown option 'StalConfirmations' (did you mean 'StallConfirmations'?)" <<<"$line"; then
        ok "a misspelled option is refused in one line naming it: ${line#*] }"
    else
        not_ok "a misspelled option: $n lines naming it: $line"
    fi
fi
# An option outside its block is as unknown as a misspelled one.
bad_copy misplaced 's|^\( *\)#StallConfirmations 2 |\1Cooldown 100 |' || die "could not misplace"
if run_T "$T_DIR/bad-misplaced.conf" 2>/dev/null; then
    not_ok "collectd -T accepted Cooldown outside <Recovery>"
else
    if grep -q "<Pool \"keepa\"> unknown option 'Cooldown'" "$T_DIR/collectd.log"; then
        ok "Cooldown outside <Recovery> is refused, naming it"
    else
        not_ok "Cooldown outside <Recovery>: no line naming it"
    fi
fi

# ---- both stall limits at once: the plugin really reads the block ----------------
bad_copy both 's|^\( *\)#StallTokensRatio 0.97 |\1StallTokensRatio 0.97\n\1StallTokens 290 |' ||
    die "could not set both limits"
if run_T "$T_DIR/bad-both.conf" 2>/dev/null; then
    not_ok "collectd -T accepted StallTokens together with StallTokensRatio"
elif grep -q 'tokenmgr plugin: .*StallTokens' "$T_DIR/collectd.log"; then
    ok "collectd -T refuses StallTokens together with StallTokensRatio"
else
    not_ok "collectd -T failed, but not on the tokenmgr block"
fi

# ---- an Include of a missing file --------------------------------------------------
# collectd's own behaviour (liboconfig): one line on stderr naming the
# file, the rest of the configuration is used.
write_collectd_main "$T_DIR/missing.conf" 10 "$T_DIR/conf.d/tokenmgr.conf" PLUGIN_DIR="$build/plugin"
echo "Include \"$T_DIR/no-such-snippet.conf\"" >>"$T_DIR/missing.conf"
: >"$T_DIR/collectd.log"
"${FX_COLLECTD[@]}" -T -C "$T_DIR/missing.conf" >"$T_DIR/T.out" 2>&1
rc=$?
n=$(count "no-such-snippet.conf" "$T_DIR/T.out")
if [ "$n" -eq 1 ] && grep -q "stat ($T_DIR/no-such-snippet.conf) failed: No such file or directory" "$T_DIR/T.out"; then
    ok "an Include of a missing file: one line naming it ($(grep no-such "$T_DIR/T.out")), collectd -T exit $rc"
else
    cat "$T_DIR/T.out" >&2
    not_ok "an Include of a missing file: $n lines naming it"
fi
if grep -q 'tokenmgr plugin: pool "keepa": native layout' "$T_DIR/collectd.log"; then
    ok "the rest of the configuration is used (the pool is configured)"
else
    not_ok "after a missing Include the pool was not configured"
fi

# ---- a live collectd: a drop-in that disagrees with the YAML, a wrong socket -------
# The YAML (conf/tokenmgr.yaml) says stall.heartbeat_age_s 900; the drop-in
# says StallHeartbeatAge 600: the drop-in wins, said once at start with
# both values, and the plugin publishes 600.  Its RedisURL names a socket
# that does not exist: one ERROR naming the option, however many reads.
sed -e 's|^\( *\)#StallHeartbeatAge 900 |\1StallHeartbeatAge 600 |' \
    -e "s|RedisURL \"unix://$T_DIR/redis.sock\"|RedisURL \"unix://$T_DIR/wrong/redis.sock\"|" \
    "$T_DIR/conf.d/tokenmgr.conf" >"$T_DIR/live.dropin"
[ "$(diff "$T_DIR/conf.d/tokenmgr.conf" "$T_DIR/live.dropin" | grep -c '^>')" -eq 2 ] ||
    die "could not edit the live drop-in"
write_collectd_main "$T_DIR/collectd.conf" 1 "$T_DIR/live.dropin" \
    PLUGIN_DIR="$build/plugin" PLUGIN_INTERVAL=1
: >"$T_DIR/collectd.log"
fx_collectd_start "$T_DIR" || die "collectd did not start"
age_csv() { cat "$T_DIR"/csv/tkm-test/tokenmgr-keepa/stall_heartbeat_age-* 2>/dev/null | tail -n 1; }
fx_wait_for 15 sh -c "[ \$(cat '$T_DIR'/csv/tkm-test/tokenmgr-keepa/redis_up-* 2>/dev/null | grep -c ',0') -ge 5 ]" ||
    not_ok "fewer than 5 reads with redis_up 0"
n=$(count 'overrides stall.heartbeat_age_s' "$T_DIR/collectd.log")
line=$(grep 'overrides stall.heartbeat_age_s' "$T_DIR/collectd.log" | head -n 1)
if [ "$n" -eq 1 ] && grep -q "StallHeartbeatAge 600 overrides stall.heartbeat_age_s 900 from the ConfigFile $T_DIR/conf.d/tokenmgr.conf.etc/tokenmgr.yaml" <<<"$line"; then
    ok "the drop-in's value wins over the YAML's, logged once with both: ${line#*] }"
else
    not_ok "drop-in over YAML: $n lines: $line"
fi
case $(age_csv) in
*,600*) ok "the plugin publishes the stall age in force: stall_heartbeat_age $(age_csv | cut -d, -f2)" ;;
*) not_ok "stall_heartbeat_age is '$(age_csv)', not 600" ;;
esac
n=$(count 'Redis unavailable' "$T_DIR/collectd.log")
line=$(grep 'Redis unavailable' "$T_DIR/collectd.log" | head -n 1)
if [ "$n" -eq 1 ] && grep -q 'check RedisURL' <<<"$line" && grep -q "$T_DIR/wrong/redis.sock: No such file or directory" <<<"$line"; then
    ok "a wrong socket path: one line naming the option over 5 reads: ${line#*] }"
else
    not_ok "a wrong socket path: $n lines: $line"
fi
t_done
