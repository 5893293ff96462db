#!/usr/bin/env bash
# The demo behind `./dev.sh demo`: a private redis-server on a Unix socket,
# one pool synced to a Keepa-like state (20 tokens a "minute", shortened to
# 2 s), workers' calls crossing the soft floor into recharge mode, the wait
# the bucket asks for, and recharge ending at its target.  Everything lives
# in a temporary folder that is removed at the end (or on Ctrl-C).
set -euo pipefail

build=${1:?usage: demo.sh BUILD_DIR}
tm_bin="$build/tokenmgr"
work=$(mktemp -d "${TMPDIR:-/tmp}/tokenmgr-demo.XXXXXX")
redis_pid=

cleanup() {
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -t 1 ]; then b=$'\033[1m' d=$'\033[2m' n=$'\033[0m'; else b= d= n=; fi
step() { printf '\n%s== %s%s\n' "$b" "$*" "$n"; }
show() { printf '%s$ tokenmgr %s%s\n' "$d" "$*" "$n"; "$tm_bin" "$@"; }
field() { sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p"; }

step "a private redis-server on $work/redis.sock"
redis-server --port 0 --unixsocket "$work/redis.sock" --unixsocketperm 700 \
    --dir "$work" --save "" --appendonly no --logfile "$work/redis.log" &
redis_pid=$!
for _ in $(seq 100); do
    redis-cli -s "$work/redis.sock" ping >/dev/null 2>&1 && break
    sleep 0.05
done
redis-cli -s "$work/redis.sock" ping >/dev/null

cat >"$work/tokenmgr.yaml" <<YAML
pool: keepa-demo
redis:
  url: unix://$work/redis.sock
bucket:
  refill_period_ms: 2000   # one Keepa minute every 2 s, for the demo
YAML
export TOKENMGR_CONFIG="$work/tokenmgr.yaml"
echo "config: refill every 2 s (Keepa: 60 s); floor 20, recharge target 50, max deficit -180"

step "a pool with no state refuses to invent a full bucket"
show status
show acquire 10 --json || echo "(exit $?: denied for now)"

step "sync what Keepa's /token reported: tokensLeft 120, refillRate 20, refillIn 1500"
show sync --tokens 120 --rate 20 --refill-in 1500
show status

step "workers reserve 10-ASIN product batches (estimate 10) and report what Keepa charged"
costs=(9 12 10 14 8 11 10 13 9 12)
i=0
while :; do
    out=$("$tm_bin" acquire 10 --json) || true
    granted=$(field granted <<<"$out")
    tokens=$(field tokens <<<"$out")
    if [ "$granted" != true ]; then
        reason=$(field reason <<<"$out" | tr -d '"')
        retry=$(field retry_after_ms <<<"$out")
        printf 'acquire 10 -> denied (%s), balance %s, retry in %s ms\n' "$reason" "$tokens" "$retry"
        break
    fi
    grant=$(field grant <<<"$out" | tr -d '"')
    consumed=${costs[i % ${#costs[@]}]}
    printf 'acquire 10 -> grant %-18s balance %4s  recharge %s\n' "$grant" "$tokens" \
        "$(field recharge_mode <<<"$out")"
    "$tm_bin" complete "$grant" --consumed "$consumed" |
        sed "s/^/               call cost $consumed: /"
    i=$((i + 1))
done
echo "the grant that crossed the floor (20) went through and switched recharge mode on;"
echo "later calls wait until refill brings the balance back to the target (50; 20 for calls <= 10)."
show status

step "wait exactly what the bucket asked for, then try again"
sleep "$(awk -v ms="$retry" 'BEGIN { printf "%.3f", ms / 1000 + 0.05 }')"
show acquire 25 --json || echo "(exit $?: a 25-token call waits for the full target, 50)"
show acquire 10 --json
echo "a call costing <= 10 may leave recharge at 20: it went through and recharge ended."
show status --json

step "done: the pool's keys are removed with it"
show reset
