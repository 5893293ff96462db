#!/usr/bin/env bash
# alerts/recovery/restart-workers with a fake systemctl on PATH that records
# its calls (tests/alerts/fake-bin/): one worker, several, none named, ids
# of other hosts, process ids, a unit that fails to start, one that
# crash-loops, dry runs, and hostile input that must be rejected as data.
# shellcheck disable=SC2015 # "A && ok || not_ok": ok and not_ok never fail
source "$(dirname "$0")/lib.sh"

src=$1
script=$src/alerts/recovery/restart-workers
need python3
[ -x "$script" ] || die "$script is not executable"

H=$(uname -n)
export FAKE_SYSTEMD=$T_DIR/systemd
export RESTART_WORKERS_PROC=$T_DIR/proc
mkdir -p "$FAKE_SYSTEMD" "$RESTART_WORKERS_PROC/4242" "$RESTART_WORKERS_PROC/4343"
printf '0::/system.slice/system-keepa\\x2dworker.slice/keepa-worker@keepa:2.service\n' \
    >"$RESTART_WORKERS_PROC/4242/cgroup"
printf '0::/user.slice/user-1000.slice/session-3.scope\n' >"$RESTART_WORKERS_PROC/4343/cgroup"
PATH=$(cd "$(dirname "$0")/fake-bin" && pwd):$PATH

# reset UNIT...: these units loaded and active, nothing failing, no calls
reset() {
    : >"$FAKE_SYSTEMD/units"
    : >"$FAKE_SYSTEMD/fail"
    : >"$FAKE_SYSTEMD/crash"
    : >"$FAKE_SYSTEMD/calls"
    local u
    for u in "$@"; do echo "$u active" >>"$FAKE_SYSTEMD/units"; done
}
standard() {
    reset keepa-worker@keepa:1.service keepa-worker@keepa:2.service \
        keepa-worker@keepa:3.service keepa-worker@other:1.service \
        keepa-worker@ingest-7.service
}

# run EXPECTED_STATUS NAME [VAR=VALUE...] -- [ARGS...]: the script with
# exactly these TOKENMGR_* variables; output in $T_DIR/out
run() {
    local want=$1 name=$2 rc
    shift 2
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        envs+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    env -u TOKENMGR_POOL -u TOKENMGR_STALE_WORKERS -u TOKENMGR_REASON \
        -u TOKENMGR_ACTION_ID "${envs[@]}" "$script" --settle 0 "$@" \
        >"$T_DIR/out" 2>&1 && rc=0 || rc=$?
    if [ "$rc" -eq "$want" ]; then
        ok "$name: exit $rc"
        return 0
    fi
    not_ok "$name: exit $rc, want $want"
    sed 's/^/    | /' "$T_DIR/out"
    return 1
}
restarted() { # the units restarted, sorted, one line
    { grep '^systemctl restart' "$FAKE_SYSTEMD/calls" || true; } | sed 's/^systemctl restart -- //' |
        tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//'
}
expect_restarted() { # NAME "UNITS" (sorted, space separated; "" = none)
    local got
    got=$(restarted)
    if [ "$got" = "$2" ]; then
        ok "$1: restarted [${2}]"
    else
        not_ok "$1: restarted [$got], want [$2]"
        sed 's/^/    | /' "$T_DIR/out"
    fi
}
says() { # NAME TEXT: the log mentions TEXT
    if grep -qF -- "$2" "$T_DIR/out"; then ok "$1"; else
        not_ok "$1: no '$2' in the log"
        sed 's/^/    | /' "$T_DIR/out"
    fi
}

P=TOKENMGR_POOL=keepa
A=TOKENMGR_ACTION_ID=act-17

# ---- one worker where possible ----------------------------------------------
standard
run 0 "one stale worker" $P $A "TOKENMGR_STALE_WORKERS=$H:keepa:2" "TOKENMGR_REASON=stall: tokens 298, heartbeat 950s" -- --graceful
expect_restarted "one stale worker" "keepa-worker@keepa:2.service"
says "the log names the action and the pool" "[act-17] pool keepa:"
says "the log carries the reason" "reason: stall: tokens 298, heartbeat 950s"
grep -q '^systemctl is-active -- keepa-worker@keepa:2.service$' "$FAKE_SYSTEMD/calls" &&
    ok "one stale worker: waited for is-active" || not_ok "one stale worker: never asked is-active"

standard
run 0 "several stale workers" $P "TOKENMGR_STALE_WORKERS=$H:keepa:1,$H:keepa:3,$H:keepa:1" --
expect_restarted "several stale workers (one restart each)" "keepa-worker@keepa:1.service keepa-worker@keepa:3.service"

standard
run 0 "a worker id holding a process id" $P "TOKENMGR_STALE_WORKERS=$H:4242" --
expect_restarted "a worker id holding a process id" "keepa-worker@keepa:2.service"

standard
run 0 "an explicit worker id" $P "TOKENMGR_STALE_WORKERS=ingest-7" --
expect_restarted "an explicit worker id" "keepa-worker@ingest-7.service"

# ---- the pool's units ---------------------------------------------------------
standard
run 0 "no stale worker named" $P "TOKENMGR_STALE_WORKERS=" --
expect_restarted "no stale worker named: the pool's units, not other pools'" \
    "keepa-worker@keepa:1.service keepa-worker@keepa:2.service keepa-worker@keepa:3.service"

standard
run 0 "a local worker without a unit" $P "TOKENMGR_STALE_WORKERS=$H:keepa:9" --
expect_restarted "a local worker without a unit: the pool's units" \
    "keepa-worker@keepa:1.service keepa-worker@keepa:2.service keepa-worker@keepa:3.service"

standard
run 0 "a process outside any worker unit" $P "TOKENMGR_STALE_WORKERS=$H:4343" --
expect_restarted "a process outside any worker unit: the pool's units" \
    "keepa-worker@keepa:1.service keepa-worker@keepa:2.service keepa-worker@keepa:3.service"

# ---- other hosts, nothing to do -----------------------------------------------
standard
run 69 "stale workers of another host only" $P "TOKENMGR_STALE_WORKERS=elsewhere.example:keepa:1,elsewhere:99" --
expect_restarted "stale workers of another host only" ""
says "other hosts' workers are named as skipped" "runs on elsewhere.example, not here: skipped"

standard
run 0 "a local and a remote stale worker" $P "TOKENMGR_STALE_WORKERS=elsewhere:keepa:1,$H:keepa:3" --
expect_restarted "a local and a remote stale worker: the local one" "keepa-worker@keepa:3.service"

reset keepa-worker@other:1.service
run 69 "a pool without units on this host" $P --
expect_restarted "a pool without units on this host" ""

# ---- failures -------------------------------------------------------------------
standard
touch "$FAKE_SYSTEMD/down"
run 69 "systemd cannot be asked" $P "TOKENMGR_STALE_WORKERS=$H:keepa:2" --
says "systemd cannot be asked: said so" "systemctl list-units failed: System has not been booted"
expect_restarted "systemd cannot be asked" ""
rm "$FAKE_SYSTEMD/down"

standard
echo keepa-worker@keepa:2.service >"$FAKE_SYSTEMD/fail"
run 1 "a unit that fails to start" $P "TOKENMGR_STALE_WORKERS=$H:keepa:1,$H:keepa:2" --
says "a unit that fails to start is named" "FAILED: keepa-worker@keepa:2.service"

standard
echo keepa-worker@keepa:3.service >"$FAKE_SYSTEMD/crash"
run 1 "a unit that crash-loops" $P "TOKENMGR_STALE_WORKERS=$H:keepa:3" -- --timeout 2
says "a crash-looping unit is named" "keepa-worker@keepa:3.service is not active after 2s"

# ---- dry run ----------------------------------------------------------------------
standard
run 0 "dry run" $P "TOKENMGR_STALE_WORKERS=$H:keepa:2" -- --dry-run
expect_restarted "dry run" ""
says "dry run says what it would do" "dry run: would restart keepa-worker@keepa:2.service"

# ---- hostile and bad input: rejected, logged, never interpreted -----------------
canary=$T_DIR/canary
touch "$canary"
bad() { # NAME VAR=VALUE... : exit 64 and no systemctl call at all
    local name=$1
    shift
    standard
    run 64 "$name" "$@" -- || return 0
    if [ -s "$FAKE_SYSTEMD/calls" ]; then
        not_ok "$name: systemctl was called"
        cat "$FAKE_SYSTEMD/calls"
    fi
}
bad "a worker id with ';rm -rf /'" $P "TOKENMGR_STALE_WORKERS=$H:1;rm -rf $canary"
says "the rejected id is logged, neutralised" "worker id '$H:1?rm -rf "
bad "a worker id with \$(...)" $P "TOKENMGR_STALE_WORKERS=\$(touch $T_DIR/pwned)"
bad "a worker id with backquotes" $P "TOKENMGR_STALE_WORKERS=\`touch $T_DIR/pwned\`"
bad "a worker id with a newline" $P "TOKENMGR_STALE_WORKERS=$H:1
$H:2"
bad "a worker id with a blank" $P "TOKENMGR_STALE_WORKERS=$H:keepa:1, $H:keepa:2"
bad "a worker id with a glob" $P "TOKENMGR_STALE_WORKERS=$H:*"
bad "an empty id between commas" $P "TOKENMGR_STALE_WORKERS=$H:keepa:1,,$H:keepa:2"
bad "a trailing comma" $P "TOKENMGR_STALE_WORKERS=$H:keepa:1,"
bad "a 129-byte worker id" $P "TOKENMGR_STALE_WORKERS=$(printf 'w%.0s' $(seq 129))"
bad "257 worker ids" $P "TOKENMGR_STALE_WORKERS=$(seq -s, -f "$H:%g" 257)"
bad "a pool with ';reboot'" "TOKENMGR_POOL=keepa;reboot"
bad "a pool with '/'" "TOKENMGR_POOL=../keepa"
bad "no pool" "TOKENMGR_STALE_WORKERS=$H:keepa:1"
bad "an action id with a blank" $P "TOKENMGR_ACTION_ID=a b"
bad "a reason with control characters" $P "TOKENMGR_REASON=$(printf 'stall\033[2J')"
bad "a 513-byte reason" $P "TOKENMGR_REASON=$(printf 'r%.0s' $(seq 513))"
standard
run 64 "an unknown option" $P -- --force
run 64 "a bad --timeout" $P -- --timeout 1e9
[ -e "$canary" ] && [ ! -e "$T_DIR/pwned" ] &&
    ok "no hostile value was ever executed" || not_ok "a hostile value was executed"

# A long reason with non-ASCII text is fine: it is only logged.
standard
run 0 "a UTF-8 reason" $P "TOKENMGR_STALE_WORKERS=$H:keepa:1" "TOKENMGR_REASON=alertmanager: TokenmgrPoolStalled – keepa" --

# ---- never Redis, never kill by name -------------------------------------------------
[ ! -e "$FAKE_SYSTEMD/redis-calls" ] && ok "redis-cli was never called" ||
    not_ok "redis-cli was called: $(cat "$FAKE_SYSTEMD/redis-calls")"
[ ! -e "$FAKE_SYSTEMD/kill-calls" ] && ok "pkill/killall were never called" ||
    not_ok "kill by name: $(cat "$FAKE_SYSTEMD/kill-calls")"
if grep -v '^[[:space:]]*#' "$script" | grep -n -E '\b(eval|redis|FLUSH|kill|pkill|killall|rm)\b'; then
    not_ok "the script's code mentions eval, redis, kill or rm"
else
    ok "the script's code has no eval, redis, kill or rm"
fi

# ---- POSIX sh ---------------------------------------------------------------------------
if command -v dash >/dev/null; then
    dash -n "$script" && ok "dash parses the script" || not_ok "dash cannot parse the script"
fi
run 0 "--help" -- --help
t_done
