#!/usr/bin/env bash
# Chaos driver: example workers (build/keepa_worker) against the fake Keepa
# server (build/tests/fake_keepa) and a private redis-server, while things
# break.  Bounded: each scenario gives up after 80 s.
#
#   chaos.sh BUILD_DIR [SCENARIO...]     scenarios: redis_restart sigstop
#
# redis_restart  Redis is killed (SIGKILL) under three running workers and
#                restarted empty on the same socket; the workers re-sync
#                from /token.
# sigstop        one of three workers is frozen (SIGSTOP) for 4 s, longer
#                than the lease TTL, then resumed.
#
# Workers are supervised as systemd would (Restart=on-failure): a worker
# exiting non-zero (Redis unreachable fails closed) is started again and
# resumes from its checkpoint.  After each scenario:
#   - the fake server's lowest balance >= max_deficit - the largest error of
#     the estimates in flight (3 workers x the largest call, twice: before
#     and after the state is lost);
#   - no 429 storm: at most 3 answers 429 in all;
#   - every worker's output holds each deal's product exactly once;
#   - Redis holds nothing but tokenmgr:{chaos}:* keys, and a foreign key
#     planted there is untouched.
# Exit 0 all invariants held; 1 one broke (said on stderr); 77 a tool is
# missing.
set -euo pipefail

build=$(cd "${1:?usage: chaos.sh BUILD_DIR [SCENARIO...]}" && pwd)
shift
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(redis_restart sigstop)

worker_bin=$build/keepa_worker
fake_bin=$build/tests/fake_keepa
for t in redis-server redis-cli curl "$worker_bin" "$fake_bin"; do
    command -v "$t" >/dev/null || { echo "chaos: $t missing" >&2; exit 77; }
done

WORKERS=3
DEALS=150
BATCH=10           # products a /product call: its cost
MAX_DEFICIT=-60
LARGEST_CALL=$BATCH
FLOOR=$((MAX_DEFICIT - 2 * WORKERS * LARGEST_CALL))

tmp=$(mktemp -d /tmp/tkm-chaos-XXXXXX)
redis_pid= fake_pid=
declare -a wpid wdone
failed=0

fail() { echo "chaos: $scenario: $*" >&2; failed=1; }

cleanup() {
    local p
    for p in "${wpid[@]:-}"; do
        [ -n "$p" ] && kill -CONT "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
    [ -n "$redis_pid" ] && kill -KILL "$redis_pid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

rcli() { redis-cli -s "$tmp/redis.sock" "$@"; }

start_redis() {
    redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 700 \
        --dir "$tmp" --save "" --appendonly no --logfile "$tmp/redis.log" \
        --daemonize no &
    redis_pid=$!
    for _ in $(seq 200); do
        rcli PING >/dev/null 2>&1 && break
        sleep 0.02
    done
    rcli SET other:key untouched >/dev/null
}

start_fake() {
    "$fake_bin" --port 0 --rate 20 --period-ms 500 --balance 60 \
        --latency-ms 10-40 --deals "$DEALS" >"$tmp/fake.out" 2>"$tmp/fake.err" &
    fake_pid=$!
    for _ in $(seq 200); do
        grep -q "listening on" "$tmp/fake.out" 2>/dev/null && break
        sleep 0.02
    done
    fake_url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/fake.out")
    [ -n "$fake_url" ] || { echo "chaos: fake_keepa did not start" >&2; exit 1; }
}

write_config() {
    cat >"$tmp/tokenmgr.yaml" <<YAML
pool: chaos
redis:
  url: unix://$tmp/redis.sock
  timeout_ms: 300
bucket:
  refill_period_ms: 500
  soft_floor: 10
  recharge_target: 40
  low_cost_target: 20
  max_deficit: $MAX_DEFICIT
  lease_ttl_s: 2
  max_wait_s: 30
keepa:
  base_url: $fake_url
  token_sync_min_interval_s: 0
YAML
}

start_worker() {
    local i=$1
    "$worker_bin" --config "$tmp/tokenmgr.yaml" --output "$tmp/w$i/out.jsonl" \
        --state "$tmp/w$i" --batch "$BATCH" --worker "chaos-w$i" \
        2>>"$tmp/w$i/err.log" &
    wpid[$i]=$!
}

# Restart workers that failed (as systemd would); 0 once all are done.
supervise() {
    local i st all=0
    for i in $(seq "$WORKERS"); do
        [ "${wdone[$i]}" = 1 ] && continue
        all=1
        kill -0 "${wpid[$i]}" 2>/dev/null && continue
        st=0
        wait "${wpid[$i]}" || st=$?
        if [ "$st" = 0 ]; then
            wdone[$i]=1
        else
            echo "worker $i exited $st; restarting" >>"$tmp/supervisor.log"
            start_worker "$i"
        fi
    done
    return $all
}

check_keys() {
    local bad
    bad=$(rcli --scan | grep -v '^tokenmgr:{chaos}:' | grep -vx 'other:key' || true)
    [ -z "$bad" ] || fail "keys outside tokenmgr:{chaos}:*: $bad"
    [ "$(rcli GET other:key)" = untouched ] || fail "other:key was changed"
}

run() {
    scenario=$1
    local i deadline state min n429 lines uniq
    rm -rf "$tmp"/w* "$tmp/supervisor.log"
    start_redis
    start_fake
    write_config
    export TOKENMGR_KEEPA_KEY=chaosKey0123456789
    for i in $(seq "$WORKERS"); do
        mkdir -p "$tmp/w$i"
        wdone[$i]=0
        start_worker "$i"
    done
    sleep 1
    case "$scenario" in
    redis_restart)
        check_keys
        kill -KILL "$redis_pid"
        wait "$redis_pid" 2>/dev/null || true
        sleep 1
        start_redis # empty: no save, no AOF
        ;;
    sigstop)
        kill -STOP "${wpid[2]}"
        sleep 4
        kill -CONT "${wpid[2]}"
        ;;
    *) echo "chaos: unknown scenario $scenario" >&2; exit 64 ;;
    esac
    deadline=$((SECONDS + 80))
    while supervise; [ $? -ne 0 ]; do
        if [ $SECONDS -ge $deadline ]; then
            fail "workers did not finish within 80 s"
            break
        fi
        check_keys
        sleep 0.2
    done
    check_keys
    state=$(curl -s "$fake_url/admin/state")
    min=$(grep -o '"min_balance":-\?[0-9]*' <<<"$state" | cut -d: -f2 | sort -n | head -1)
    n429=$(grep -o '"requests_429":[0-9]*' <<<"$state" | cut -d: -f2 | awk "{s+=\$1} END {print s+0}")
    [ -n "$min" ] && [ "$min" -ge "$FLOOR" ] ||
        fail "fake server balance went to $min, below $FLOOR"
    [ "${n429:-0}" -le 3 ] || fail "$n429 answers 429: a storm"
    for i in $(seq "$WORKERS"); do
        lines=$(wc -l <"$tmp/w$i/out.jsonl" 2>/dev/null || echo 0)
        uniq=$(grep -o '"asin":"[^"]*"' "$tmp/w$i/out.jsonl" 2>/dev/null | sort -u | wc -l)
        [ "$lines" = "$DEALS" ] && [ "$uniq" = "$DEALS" ] ||
            fail "worker $i wrote $lines lines, $uniq distinct products, not $DEALS"
    done
    echo "chaos: $scenario: min balance $min (floor $FLOOR), 429s ${n429:-0}," \
        "restarts $(cat "$tmp/supervisor.log" 2>/dev/null | wc -l)," \
        "$WORKERS x $DEALS products exactly once"
    kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null || true; fake_pid=
    kill -KILL "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null || true; redis_pid=
    wpid=()
}

for s in "${scenarios[@]}"; do
    run "$s"
done
exit $failed
