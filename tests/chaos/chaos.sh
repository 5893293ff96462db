#!/usr/bin/env bash
# shellcheck disable=SC2317  # scenarios are called as sc_$name
# Chaos driver: example workers (build/keepa_worker) against the fake Keepa
# server (build/tests/fake_keepa) and a private redis-server on a Unix
# socket, while things break.  Real processes, bounded: each scenario gives
# up after 80 s.
#
#   chaos.sh BUILD_DIR [SCENARIO...]
#
# Scenarios (default: all but the monitors_* and failover* ones; CTest runs
# `chaos`, `chaos_monitors` and `chaos_failover`):
# redis_restart  Redis is killed (SIGKILL) under three running workers and
#                restarted empty on the same socket; the workers re-sync
#                from /token.
# redis_persist  Redis runs with AOF (appendonly yes, appendfsync always),
#                is killed and restarted from its file: the pool's state
#                (bucket, heartbeats) survives, the workers continue.
# redis_pause    CLIENT PAUSE 2000 WRITE, then DEBUG SLEEP 1.5, both longer
#                than redis.timeout_ms (300): workers fail closed (exit,
#                restarted) or wait, and a paid call is served again within
#                5 s of each.
# sigstop        one of three workers is frozen (SIGSTOP) for 4 s, longer
#                than the lease TTL, then resumed.
# worker_kill    a worker is SIGKILLed mid-run, twice; the supervisor
#                restarts it and it resumes from its checkpoint; its lease
#                ends by expiry.
# fake_faults    the fake server's faults switched on under load, in turn:
#                429s (its balance set to -30), 503s, 502 and 504 HTML
#                pages, slow answers (+800 ms), missing fields, truncated
#                bodies, clock skew (+-1 h); every fault must have fired.
# monitors       two collectd instances (tokenmgr plugin, Interval 1, a
#                <Recovery> whose Exec, tests/chaos/recovery-log, logs one
#                line) watch the pool.  All workers are frozen and Redis
#                sleeps (DEBUG SLEEP 6) meanwhile: no action on missing
#                data.  Redis back, the stall confirms on both: exactly one
#                action.  Once its end is audited, the collectd that acted is
#                restarted mid-incident: no second action.  Workers resume.
# monitors_actor_restart
#                the same, but the acting collectd is restarted at once,
#                before its next read polls the action: the plugin's
#                shutdown must still audit the action's end (it dropped it
#                once).
# failover       Redis with Sentinel (a master, a replica, three
#                redis-sentinel: fixtures/sentinel.sh) under 8 workers and a
#                collectd with the plugin; the master is SIGKILLed mid-run.
#                The sentinels promote the replica; every worker makes a
#                paid call again within the failover time (kill to the
#                first sentinel naming the replica) + 2 s, without a
#                restart; no 429; the plugin published redis_up 0, then 1,
#                and ran no recovery.  The old master, restarted as it was
#                configured (a master), becomes a replica and runs no
#                script.
# failover_pause the same with CLIENT PAUSE 5000 ALL on the master instead
#                of a kill, longer than a failover: the old master wakes a
#                master still, until the sentinels demote it (some 10 s),
#                and runs no script after it wakes.
#
# Workers are supervised as systemd would (Restart=on-failure): a worker
# exiting non-zero (killed, or Redis unreachable for longer than its 60 s
# patience: the client fails closed) is started again and resumes from its
# checkpoint.  Redis outages shorter than that must cost no restart: the
# worker tries again each second (restarts 0 in the Redis scenarios).  redis-cli MONITOR records every command of
# the whole scenario (restarted with Redis).  After each scenario:
#   - balance: the fake server's lowest balance >= max_deficit - 2 x workers
#     x the largest call (the estimates in flight when the state is lost or
#     an answer goes unread, before and after): -60 - 2 x 3 x 10 = -120;
#     across a failover >= max_deficit - workers x the largest call (the
#     failover bound of conf/sentinel/README.md: each worker's call in
#     flight whose grant the replica never received): -60 - 8 x 10 = -140;
#   - no 429 storm: at most one 429 per worker per forced drop of the
#     server's balance, plus one per worker: 3, 6 with fake_faults' drop;
#   - nothing hung: every worker finishes within the bound (80 s), and
#     within redis_pause each worker makes progress again within 5 s of
#     Redis coming back;
#   - leases: once the lease TTL (2 s) has passed after the run and one
#     script has swept, tokenmgr:{chaos}:leases and :lease_expiry are empty
#     (redis-cli HLEN, ZCARD);
#   - every worker's output holds each deal's product exactly once;
#   - recovery: the Exec log has one line per incident (monitors: 1; else
#     0), none while Redis slept; `tokenmgr recovery log` has one entry per
#     decision (repeated skips counted in "repeats"), a reason in each, and
#     for each action taken its end ("finished", same action_id);
#   - key audit: every write in the MONITOR capture (SET, HSET, HDEL, ZADD,
#     ZREM, DEL, XADD, XTRIM, EXPIRE, INCR..., from clients and "[0 lua]")
#     names only tokenmgr:{chaos}:* keys, scripts declare only such keys,
#     no FLUSH*; Redis holds nothing else and the planted other:key is
#     untouched (key_audit.py).
# Exit 0 all invariants held; 1 one broke (said on stderr); 77 a tool is
# missing; 64 an unknown scenario.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../fixtures/fixtures.sh
source "$(dirname "${BASH_SOURCE[0]}")/../fixtures/fixtures.sh"
# shellcheck source-path=SCRIPTDIR source=../fixtures/sentinel.sh
source "$(dirname "${BASH_SOURCE[0]}")/../fixtures/sentinel.sh"
# The build's programs; collectd with the ASan runtime preloaded in a
# sanitizer build.
fx_build "${1:?usage: chaos.sh BUILD_DIR [SCENARIO...]}"
shift
build=$FX_BUILD here=$FX_SRC/tests/chaos scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] ||
    scenarios=(redis_restart redis_persist redis_pause sigstop worker_kill fake_faults)

worker_bin=$build/keepa_worker
fake_bin=$build/tests/fake_keepa
tm_bin=$build/tokenmgr
plugin_so=$build/plugin/tokenmgr.so
collectd_bin=${FX_COLLECTD[-1]}
for t in redis-server redis-cli curl python3 "$worker_bin" "$fake_bin" "$tm_bin"; do
    command -v "$t" >/dev/null || { echo "chaos: $t missing" >&2; exit 77; }
done
for s in "${scenarios[@]}"; do
    case $s in
    monitors | monitors_actor_restart | failover | failover_pause)
        [ -x "$collectd_bin" ] || { echo "chaos: collectd missing" >&2; exit 77; }
        [ -f "$plugin_so" ] || { echo "chaos: $plugin_so missing" >&2; exit 77; }
        case $s in failover*)
            command -v redis-sentinel >/dev/null ||
                { echo "chaos: redis-sentinel missing" >&2; exit 77; } ;;
        esac
        ;;
    redis_restart | redis_persist | redis_pause | sigstop | worker_kill | fake_faults) ;;
    *) echo "chaos: unknown scenario $s" >&2; exit 64 ;;
    esac
done

POOL=chaos
PREFIX="tokenmgr:{$POOL}:"
FOREIGN=other:key
WORKERS=3
FAILOVER_WORKERS=8
DEALS=150
BATCH=10           # products a /product call: its cost
MAX_DEFICIT=-60
LARGEST_CALL=$BATCH
FLOOR=$((MAX_DEFICIT - 2 * WORKERS * LARGEST_CALL))
LEASE_TTL_S=2
BOUND_S=80
# The fake API's refill: 20 tokens a period, and 40 with Sentinel's 8
# workers.  A failover scenario checks that every worker is paid again
# within the failover + 2 s; on a saturated pool the fair queue pays the
# workers in turn at the refill's pace (8 x 10 tokens at 40 a second would
# be the whole 2 s with no room for the reconnection and the re-grounding
# /token sync), so the refill is doubled: a turn of the line takes 1 s
# (and the deals with it, so that the workers are still busy when the
# checks end: idle with tokens unused would be a stall).
FAKE_RATE=20

tmp=$(mktemp -d /tmp/tkm-chaos-XXXXXX)
# Redis' folder: emptied before each scenario.
sock=$tmp/data/redis.sock
fake_pid='' monitor_pid='' sentinel=0
declare -a node_monitor=()
declare -A collectd_pid=()
declare -a wpid wdone
failed=0
scenario=

fail() { echo "chaos: $scenario: $*" >&2; failed=1; }
die() { echo "chaos: $scenario: $*" >&2; exit 1; }

stop_collectd() {
    fx_stop TERM "${collectd_pid[$1]:-}"
    unset "collectd_pid[$1]"
}

cleanup() {
    local p n
    set +e
    for p in "${wpid[@]:-}"; do fx_stop KILL "$p"; done
    for n in "${!collectd_pid[@]}"; do stop_collectd "$n"; done
    fx_stop TERM "$fake_pid"
    fx_stop TERM "$monitor_pid"
    fx_redis_stop KILL
    for p in "${node_monitor[@]:-}"; do fx_stop TERM "$p"; done
    fx_sentinels_stop
    wait 2>/dev/null
    if [ "${CHAOS_KEEP:-0}" = 1 ]; then echo "chaos: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rcli() { redis-cli -s "$sock" "$@"; }

# ---- Redis, its MONITOR capture, the fake server -------------------------

# start_redis [aof]: on $sock, empty unless aof finds its file in $tmp/data.
start_redis() {
    local persist=()
    [ "${1:-}" = aof ] && persist=(--appendonly yes --appendfsync always)
    fx_redis_start "$tmp/data" "${persist[@]}" --enable-debug-command local \
        --logfile "$tmp/redis.log" || die "redis-server did not start (see redis.log)"
    # Planted before the capture starts: any later write to it is foreign.
    rcli SET "$FOREIGN" untouched NX >/dev/null
    start_monitor
}

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
lines_above() { [ "$(lines "$1")" -gt "$2" ]; }

start_monitor() {
    local before
    before=$(lines "$tmp/monitor.log")
    redis-cli -s "$sock" MONITOR >>"$tmp/monitor.log" 2>>"$tmp/monitor.err" &
    monitor_pid=$!
    # "OK" once the capture runs
    fx_wait_for 5 lines_above "$tmp/monitor.log" "$before" ||
        die "redis-cli MONITOR did not start"
}

kill_redis() {
    local p
    if [ "$sentinel" = 1 ]; then
        for p in "${node_monitor[@]:-}"; do fx_stop TERM "$p"; done
        node_monitor=()
        fx_sentinels_stop
        sock=$tmp/data/redis.sock
        return
    fi
    fx_redis_stop KILL
    fx_stop TERM "$monitor_pid"
    monitor_pid=
}

# ---- Redis with Sentinel (the failover scenarios) ------------------------

# node_monitor_start N: a MONITOR capture of node N, into the same file.
node_monitor_start() {
    local before
    before=$(lines "$tmp/monitor.log")
    redis-cli -s "${FX_NODE_SOCK[$1]}" MONITOR >>"$tmp/monitor.log" 2>>"$tmp/monitor.err" &
    node_monitor[$1]=$!
    fx_wait_for 5 lines_above "$tmp/monitor.log" "$before" ||
        die "redis-cli MONITOR did not start on node $1"
}

start_sentinel_redis() {
    fx_sentinels_start "$tmp/data" "$POOL" || die "the sentinels did not start"
    sentinel=1
    sock=${FX_NODE_SOCK[0]}
    rcli SET "$FOREIGN" untouched NX >/dev/null
    # Replicated before the replica's capture starts (else the replica's
    # MONITOR shows the planting, from its master link, as a foreign write).
    fx_wait_for 5 sh -c "[ \"\$(redis-cli -s '${FX_NODE_SOCK[1]}' GET '$FOREIGN')\" = untouched ]" ||
        die "the replica did not get $FOREIGN"
    node_monitor_start 0
    node_monitor_start 1
}

# Scripts node N ran since it started (INFO commandstats).
scripts_on() {
    redis-cli -s "${FX_NODE_SOCK[$1]}" INFO commandstats |
        sed -n 's/^cmdstat_eval\(sha\)\{0,1\}\(_ro\)\{0,1\}:calls=\([0-9]*\).*/\3/p' |
        awk '{s+=$1} END {print s+0}'
}

start_fake() {
    fx_fake_keepa_start "$tmp/fake.out" --rate "$FAKE_RATE" --period-ms 500 --balance 60 \
        --latency-ms 10-40 --deals "$DEALS" || die "fake_keepa did not start"
    fake_pid=$fx_fake_pid fake_url=$fx_fake_url
}

fault() { # fault NAME ON [VALUE] [COUNT]
    local q="name=$1&on=$2"
    [ -n "${3:-}" ] && q+="&value=$3"
    [ -n "${4:-}" ] && q+="&count=$4"
    curl -sf "$fake_url/admin/fault?$q" >/dev/null || die "fake_keepa refused fault $q"
}

write_config() {
    local redis="  url: unix://$sock"
    [ "$sentinel" = 1 ] &&
        redis="  sentinels: [${FX_SENTINELS//,/, }]
  master_name: $POOL"
    cat >"$tmp/tokenmgr.yaml" <<YAML
pool: $POOL
redis:
$redis
  timeout_ms: 300
bucket:
  refill_period_ms: 500
  soft_floor: 10
  recharge_target: 40
  low_cost_target: 20
  max_deficit: $MAX_DEFICIT
  lease_ttl_s: $LEASE_TTL_S
  max_wait_s: 30
heartbeat:
  min_interval_ms: 200
  wait_slice_ms: 500
  stale_after_s: 3
keepa:
  base_url: $fake_url
  token_sync_min_interval_s: 0
YAML
}

# ---- workers under a supervisor ------------------------------------------

start_worker() {
    local i=$1
    "$worker_bin" --config "$tmp/tokenmgr.yaml" --output "$tmp/w$i/out.jsonl" \
        --state "$tmp/w$i" --batch "$BATCH" --worker "chaos-w$i" \
        2>>"$tmp/w$i/err.log" &
    wpid[i]=$!
}

# Restart workers that failed (as systemd would); 0 once all are done.
supervise() {
    local i st all=0
    for i in $(seq "$WORKERS"); do
        [ "${wdone[i]}" = 1 ] && continue
        all=1
        kill -0 "${wpid[i]}" 2>/dev/null && continue
        st=0
        { wait "${wpid[i]}"; } 2>/dev/null || st=$?
        if [ "$st" = 0 ]; then
            wdone[i]=1
        else
            echo "$SECONDS worker $i exited $st; restarting" >>"$tmp/supervisor.log"
            start_worker "$i"
        fi
    done
    return $all
}

now_ms() { local t=${EPOCHREALTIME/./}; echo $((10#$t / 1000)); }

# supervise_for MS: keep the workers supervised that long (or until done).
supervise_for() {
    local end=$(($(now_ms) + $1))
    while [ "$(now_ms)" -lt "$end" ]; do
        supervise && return 0
        sleep 0.1
    done
}

# Calls the fake server has answered: the workers' progress.
served() {
    curl -s "$fake_url/admin/state" | grep -o '"served":[0-9]*' | cut -d: -f2 | head -1
}

# ---- collectd with the plugin --------------------------------------------

start_collectd() {
    local n=$1 d=$tmp/collectd-$1
    mkdir -p "$d"
    local url="RedisURL \"unix://$sock\"" stall="StallTokens 100
    StallHeartbeatAge 3
    StallConfirmations 2"
    # With Sentinel the master comes from the ConfigFile's sentinels, and
    # the workers' silence while none answers (2 to 3 s) would be a stall
    # at once but for the monitor's own loss of Redis.
    [ "$sentinel" = 1 ] && url="# the master from the ConfigFile's sentinels" stall="StallTokens 0
    StallHeartbeatAge 2
    StallConfirmations 1"
    cat >"$d/tokenmgr.conf" <<CONF
<Plugin tokenmgr>
  <Pool "$POOL">
    ConfigFile "$tmp/tokenmgr.yaml"
    $url
    Timeout 300
    $stall
    <Recovery>
      Exec "$here/recovery-log" "$tmp/recovery.log"
      Timeout 5
      Cooldown 600
      MaxActions 3
      Window 3600
      Grace 30
    </Recovery>
  </Pool>
</Plugin>
CONF
    fx_collectd_conf "$d/collectd.conf" HOSTNAME="chaos-$n" BASEDIR="$d" \
        INTERVAL=1 PLUGIN_DIR="$build/plugin" PLUGIN_CONF="$d/tokenmgr.conf"
    fx_collectd_start "$d" || die "collectd $n did not start (see $d/collectd.out)"
    collectd_pid[$n]=$fx_pid
}

# ---- checks --------------------------------------------------------------

check_keys() {
    local bad
    bad=$(rcli --scan | grep -v "^tokenmgr:{$POOL}:" | grep -vx "$FOREIGN" || true)
    [ -z "$bad" ] || fail "keys outside $PREFIX*: $bad"
    [ "$(rcli GET "$FOREIGN")" = untouched ] || fail "$FOREIGN was changed"
}

recoveries() { lines "$tmp/recovery.log"; }

# Leases: wait out the TTL, let one script sweep (an acquire released at
# once), then both the hash and the expiry set must be empty.
check_leases() {
    local grant
    sleep $((LEASE_TTL_S + 1))
    grant=$(TOKENMGR_CONFIG=$tmp/tokenmgr.yaml "$tm_bin" acquire 1 2>/dev/null || true)
    [ -n "$grant" ] && TOKENMGR_CONFIG=$tmp/tokenmgr.yaml "$tm_bin" release "$grant" >/dev/null 2>&1
    leases=$(rcli HLEN "${PREFIX}leases")/$(rcli ZCARD "${PREFIX}lease_expiry")
    [ "$leases" = 0/0 ] || fail "leases left after the TTL (hash/expiry): $leases"
}

audit_json() {
    TOKENMGR_CONFIG=$tmp/tokenmgr.yaml "$tm_bin" recovery log --json --count 100
}

# audit_field EXPR: a python expression over the entries e of the trail.
audit_query() {
    audit_json 2>/dev/null | python3 -c '
import json, sys
e = json.loads(sys.stdin.read() or "[]")
print(eval(sys.argv[1]))' "$1"
}

# The audit trail: one entry per decision (a skip repeating the previous one
# is counted in the next entry's "repeats", or in the guard's audit_repeats
# until then), each with a reason; each action taken ("act") has its end
# ("finished", same action_id).
check_audit_trail() {
    local want=$1 log acted unended
    log=$(audit_json 2>&1) || { fail "tokenmgr recovery log failed: $log"; return; }
    printf '%s\n' "$log" >"$tmp/audit.json"
    read -r audit_entries audit_repeats acted audit_noreason unended < <(python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
acts = [x["action_id"] for x in e if x["decision"] == "act"]
ended = {x["action_id"] for x in e if x["decision"] == "finished"}
print(len(e), sum(x.get("repeats", 0) for x in e) + int(sys.argv[2] or 0), len(acts),
      sum(1 for x in e if not x.get("reason") and x["decision"] != "finished"),
      ",".join(a for a in acts if a not in ended) or "-")' \
        "$tmp/audit.json" "$(rcli HGET "${PREFIX}recovery" audit_repeats)") ||
        { fail "tokenmgr recovery log --json is not JSON: $log"; return; }
    [ "$acted" = "$want" ] || fail "audit trail: $acted actions, want $want"
    [ "$audit_noreason" = 0 ] || fail "audit trail: $audit_noreason entries without a reason"
    [ "$unended" = - ] || fail "audit trail: action $unended started, its end never recorded"
}

check_all() {
    local state min n429 lines uniq i audit
    check_keys
    state=$(curl -s "$fake_url/admin/state")
    min=$(grep -o '"min_balance":-\?[0-9]*' <<<"$state" | cut -d: -f2 | sort -n | head -1)
    n429=$(grep -o '"requests_429":[0-9]*' <<<"$state" | cut -d: -f2 | awk '{s+=$1} END {print s+0}')
    if [ -z "$min" ] || [ "$min" -lt "$FLOOR" ]; then
        fail "fake server balance went to $min, below $FLOOR"
    fi
    [ "$n429" -le "$max429" ] || fail "$n429 answers 429 (limit $max429): a storm"
    for i in $(seq "$WORKERS"); do
        lines=$(wc -l <"$tmp/w$i/out.jsonl" 2>/dev/null || echo 0)
        uniq=$(grep -o '"asin":"[^"]*"' "$tmp/w$i/out.jsonl" 2>/dev/null | sort -u | wc -l)
        if [ "$lines" != "$DEALS" ] || [ "$uniq" != "$DEALS" ]; then
            fail "worker $i wrote $lines lines, $uniq distinct products, not $DEALS"
        fi
    done
    check_leases
    if [ -n "$max_restarts" ] && [ "$(lines "$tmp/supervisor.log")" -gt "$max_restarts" ]; then
        fail "$(lines "$tmp/supervisor.log") worker restarts, at most $max_restarts: a blip became a restart storm"
    fi
    [ "$(recoveries)" = "$want_recoveries" ] ||
        fail "$(recoveries) recovery actions, want $want_recoveries"
    check_audit_trail "$want_recoveries"
    fx_stop TERM "$monitor_pid"
    for i in "${node_monitor[@]:-}"; do fx_stop TERM "$i"; done
    monitor_pid=
    audit=$(python3 "$here/key_audit.py" "$tmp/monitor.log" "$PREFIX" "$FOREIGN" 2>"$tmp/audit.err") ||
        fail "key audit: $(head -3 "$tmp/audit.err")"
    echo "chaos: $scenario: min balance $min (floor $FLOOR = $MAX_DEFICIT - $floor_why)," \
        "429s $n429 (limit $max429), restarts $(lines "$tmp/supervisor.log")," \
        "$WORKERS x $DEALS products exactly once, leases $leases after TTL," \
        "recoveries $(recoveries)/$want_recoveries (audit: $audit_entries entries + $audit_repeats repeats), key audit $audit${extra:+, $extra}"
}

# ---- scenarios -------------------------------------------------------------

sc_redis_restart() {
    max_restarts=0
    check_keys
    kill_redis
    sleep 1
    start_redis # empty: no save, no AOF
}

sc_redis_persist() {
    local before after
    max_restarts=0
    before=$(rcli HGET "${PREFIX}bucket" rate)
    kill_redis
    sleep 1
    start_redis aof
    after=$(rcli HGET "${PREFIX}bucket" rate)
    if [ -z "$before" ] || [ "$before" != "$after" ]; then
        fail "the bucket did not survive the restart (rate '$before' then '$after')"
    fi
    [ "$(rcli ZCARD "${PREFIX}heartbeats")" -gt 0 ] ||
        fail "the heartbeats did not survive the restart"
    extra="bucket survived (rate $after)"
}

# expect_progress WHAT: a paid call is served within 5 s (workers supervised).
expect_progress() {
    local len0 end=$((SECONDS + 5))
    len0=$(served)
    while [ "$SECONDS" -lt "$end" ]; do
        supervise && return 0
        [ "$(served)" -gt "$len0" ] && return 0
        sleep 0.1
    done
    fail "no worker made progress within 5 s after $1"
}

sc_redis_pause() {
    local sleeper
    max_restarts=0
    rcli CLIENT PAUSE 2000 WRITE >/dev/null
    supervise_for 2000
    expect_progress "CLIENT PAUSE 2000 WRITE"
    rcli DEBUG SLEEP 1.5 >/dev/null &
    sleeper=$!
    supervise_for 1500
    wait "$sleeper" || true
    expect_progress "DEBUG SLEEP 1.5"
}

sc_sigstop() {
    kill -STOP "${wpid[2]}"
    sleep 4
    kill -CONT "${wpid[2]}"
}

sc_worker_kill() {
    for _ in 1 2; do
        { kill -KILL "${wpid[2]}" && wait "${wpid[2]}"; } 2>/dev/null || true
        supervise_for 1500
    done
}

faults_all_fired() { ! curl -sf "$fake_url/admin/fault" | grep -q '"on":true'; }

sc_fake_faults() {
    local f
    # 429s: the server's balance falls below the workers' estimates, twice
    # (the second time with 503s instead of some 429s): one 429 a worker
    # for each drop at most.
    max429=$((2 * WORKERS))
    curl -sf "$fake_url/admin/set?balance=-30" >/dev/null
    supervise_for 1000
    fault 503 1 "" 3
    curl -sf "$fake_url/admin/set?balance=-30" >/dev/null
    supervise_for 1000
    for f in 502html 504html; do
        fault "$f" 1 "" 3
        supervise_for 1000
    done
    fault slow 1 800 3
    supervise_for 2000
    for f in missing_fields truncated; do
        fault "$f" 1 "" 2
        supervise_for 1000
    done
    fault skew 1 3600000 5
    supervise_for 1000
    fault skew 1 -3600000 5
    supervise_for 1000
    f=0
    while ! faults_all_fired; do
        [ "$f" -lt 50 ] || { fail "faults left unfired: $(curl -s "$fake_url/admin/fault")"; break; }
        supervise && break
        sleep 0.1
        f=$((f + 1))
    done
    extra="every fault fired (the fake counts 503s among its 429s)"
}

# ---- failover -------------------------------------------------------------

# The csv values of the plugin's redis_up (collectd a): "time,value" lines.
redis_up_values() {
    cat "$tmp"/collectd-a/csv/*/tokenmgr-"$POOL"/redis_up-* 2>/dev/null |
        grep -v '^epoch' || true
}

# The first sentinel to name node 1: the promotion is done.
promoted() {
    local i
    for i in 0 1 2; do
        [ "$(fx_sentinel_named "$i")" = "${FX_NODE_PORT[1]}" ] && return 0
    done
    return 1
}

# failover kill|pause: SIGKILL node 0 (then restart it as configured, a
# master), or CLIENT PAUSE it for 5 s; then follow the workers.
failover() {
    local how=$1 t0 t_switch i end cp resumed=() n_resumed=0 slowest=0 took
    local wake_scripts='' bound
    max_restarts=0 max429=0
    FLOOR=$((MAX_DEFICIT - WORKERS * LARGEST_CALL))
    floor_why="$WORKERS x $LARGEST_CALL, the failover bound"
    start_collectd a
    supervise_for 2500
    t0=$(now_ms)
    if [ "$how" = kill ]; then
        fx_node_stop 0 KILL
        fx_stop TERM "${node_monitor[0]}"
    else
        rcli CLIENT PAUSE 5000 ALL >/dev/null
    fi
    # The calls in flight settle (a completion that fails, at most a
    # timeout later, is ignored): any later checkpoint needs a grant from
    # the new master, which cannot exist before down-after-milliseconds.
    supervise_for 700
    declare -a cp0
    for i in $(seq "$WORKERS"); do cp0[i]=$(cat "$tmp/w$i/checkpoint" 2>/dev/null || true); done
    end=$((t0 + 30000))
    until promoted; do
        [ "$(now_ms)" -lt "$end" ] || die "no sentinel promoted the replica within 30 s"
        supervise || true
        sleep 0.05
    done
    t_switch=$(now_ms)
    sock=${FX_NODE_SOCK[1]}
    bound=$((t_switch - t0 + 2000))
    end=$((t_switch + 10000))
    while [ "$n_resumed" -lt "$WORKERS" ] && [ "$(now_ms)" -lt "$end" ]; do
        supervise || true
        for i in $(seq "$WORKERS"); do
            [ -n "${resumed[i]:-}" ] && continue
            cp=$(cat "$tmp/w$i/checkpoint" 2>/dev/null || true)
            if [ "$cp" != "${cp0[i]}" ] || [ "${wdone[i]}" = 1 ]; then
                took=$(($(now_ms) - t0))
                resumed[i]=$took
                n_resumed=$((n_resumed + 1))
                [ "$took" -gt "$slowest" ] && slowest=$took
            fi
        done
        sleep 0.05
    done
    for i in $(seq "$WORKERS"); do
        if [ -z "${resumed[i]:-}" ]; then
            fail "worker $i made no paid call within 10 s of the promotion"
        elif [ "${resumed[i]}" -gt "$bound" ]; then
            fail "worker $i resumed ${resumed[i]} ms after the $how, beyond $bound (failover $((t_switch - t0)) ms + 2 s)"
        fi
    done
    if [ "$how" = kill ]; then
        # The old master comes back as it was configured: a master, with
        # nothing, until the sentinels make it a replica.  Once the
        # failover is over (every sentinel names node 1): back during the
        # failover, Sentinel may abort it and keep the old master, which is
        # Sentinel's business, not this test's.
        end=$(($(now_ms) + 20000))
        until [ "$(fx_sentinels_master)" = 1 ]; do
            [ "$(now_ms)" -lt "$end" ] || die "the sentinels never agreed on node 1"
            supervise || true
            sleep 0.1
        done
        fx_node_start 0 || die "node 0 did not restart"
        node_monitor_start 0
    else
        end=$((t0 + 8000))
        until [ "$(fx_node_role 0)" = master ]; do
            [ "$(now_ms)" -lt "$end" ] || die "node 0 did not wake from its pause"
            sleep 0.05
        done
    fi
    wake_scripts=$(scripts_on 0)
    [ "$(fx_node_role 0)" = master ] ||
        fail "node 0 should be back a master for a while, ROLE says $(fx_node_role 0)"
    end=$(($(now_ms) + 30000))
    until [ "$(fx_node_role 0)" = slave ]; do
        [ "$(now_ms)" -lt "$end" ] || { fail "the old master was never made a replica"; break; }
        supervise || true
        sleep 0.2
    done
    [ "$(scripts_on 0)" = "$wake_scripts" ] ||
        fail "the old master ran $(($(scripts_on 0) - wake_scripts)) scripts after it came back"
    failover_extra="failover $((t_switch - t0)) ms ($how), workers resumed after ${slowest} ms at most (bound $bound)"
    extra="$failover_extra"
}

sc_failover() { failover kill; }
sc_failover_pause() { failover pause; }

# After the run: the plugin saw Redis go (0) and come back (1).
check_redis_up() {
    local values
    values=$(redis_up_values | awk -F, '{printf "%d ", $2 + 0}')
    grep -Eq '(^| )0 (.* )?1 ' <<<"$values" ||
        fail "redis_up never went 0 then 1: $values"
    extra="$failover_extra, redis_up 0 in $(tr ' ' '\n' <<<"$values" | grep -cx 0) reads then 1"
    values=$(cat "$tmp"/collectd-a/csv/*/tokenmgr-"$POOL"/shared_cause-* 2>/dev/null |
        awk -F, 'NR > 1 && $2 + 0 == 1' | wc -l)
    extra+=", stall held back (shared_cause 1) in $values reads"
}

recovery_count_is() { [ "$(recoveries)" = "$1" ]; }

action_ended() { [ "$(audit_query 'sum(x["decision"] == "finished" for x in e)')" = 1 ]; }

# monitors [now]: restart the collectd that acted once its end is audited
# (with "now": at once, while its action may still be unpolled).
sc_monitors() {
    local i actor sleeper
    start_collectd a
    start_collectd b
    sleep 1
    # Every worker frozen, and Redis asleep meanwhile: missing data.
    for i in $(seq "$WORKERS"); do kill -STOP "${wpid[i]}"; done
    rcli DEBUG SLEEP 6 >/dev/null &
    sleeper=$!
    wait "$sleeper" || true
    [ "$(recoveries)" = 0 ] || fail "a recovery ran while Redis slept (missing data)"
    # Redis back: the stall confirms on both; the guard lets one act.
    fx_wait_for 20 recovery_count_is 1 || fail "no recovery action within 20 s of the stall"
    actor=$(audit_query '[x["host"] for x in e if x["decision"] == "act"][0][len("chaos-"):]') ||
        die "no act entry in the audit trail"
    [ "${1:-}" = now ] ||
        fx_wait_for 5 action_ended ||
        fail "the action's end was not audited within 5 s"
    # The actor restarted mid-incident: the guard's state is in Redis.
    stop_collectd "$actor"
    start_collectd "$actor"
    sleep 4
    for i in $(seq "$WORKERS"); do kill -CONT "${wpid[i]}"; done
    extra="collectd $actor (the actor) restarted mid-incident"
}

sc_monitors_actor_restart() { sc_monitors now; }

run() {
    scenario=$1
    local i deadline
    rm -rf "$tmp"/w* "$tmp/supervisor.log" "$tmp/data" "$tmp/monitor.log" \
        "$tmp/recovery.log" "$tmp"/collectd-*
    WORKERS=3 FAKE_RATE=20 DEALS=150 FLOOR=$((MAX_DEFICIT - 2 * WORKERS * LARGEST_CALL))
    floor_why="2 x $WORKERS x $LARGEST_CALL"
    max429=$WORKERS want_recoveries=0 extra='' max_restarts='' sentinel=0
    case $scenario in
    redis_persist) start_redis aof ;;
    failover*)
        WORKERS=$FAILOVER_WORKERS FAKE_RATE=40 DEALS=300
        start_sentinel_redis
        ;;
    *) start_redis ;;
    esac
    start_fake
    write_config
    export TOKENMGR_KEEPA_KEY=chaosKey0123456789
    for i in $(seq "$WORKERS"); do
        mkdir -p "$tmp/w$i"
        wdone[i]=0
        start_worker "$i"
    done
    supervise_for 1000
    case $scenario in monitors*) want_recoveries=1 ;; esac
    "sc_$scenario"
    deadline=$((SECONDS + BOUND_S))
    until supervise; do
        if [ $SECONDS -ge $deadline ]; then
            fail "workers did not finish within $BOUND_S s"
            break
        fi
        check_keys
        sleep 0.2
    done
    # The workers are done: a pool nobody uses is a new incident, not
    # this one's.
    for i in "${!collectd_pid[@]}"; do stop_collectd "$i"; done
    case $scenario in failover*) check_redis_up ;; esac
    check_all
    fx_stop TERM "$fake_pid"
    fake_pid=
    kill_redis
    wpid=()
}

for s in "${scenarios[@]}"; do
    run "$s"
done
exit $failed
