#!/usr/bin/env bash
# The demo behind `./dev.sh demo`: the whole system on one machine, private
# to a temporary folder and loopback.
#
#   demo.sh BUILD_DIR [--duration SECONDS] [--pool-config FILE] [--out DIR]
#
# redis-server on a Unix socket; the fake Keepa server with a 2 s "minute"
# (rate 60, latency 50-300 ms); three example ingestion workers on one pool,
# kept running by a supervisor loop (systemd's Restart= in production);
# collectd with the tokenmgr plugin writing csv, its stall rule armed and the
# recovery configured to restart stuck workers.  A live view refreshes every
# second.  After a settling period one worker is frozen (SIGSTOP), then all
# of them: the stall rule confirms, the recovery runs once, the workers come
# back, the stall clears.  Ends by itself (default 90 s), or on Ctrl-C, and
# removes everything it started; logs, csv metrics and outputs stay in the
# output folder, which it prints.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../fixtures/fixtures.sh
source "$(dirname "${BASH_SOURCE[0]}")/../fixtures/fixtures.sh"
fx_build "${1:?usage: demo.sh BUILD_DIR [--duration S] [--pool-config FILE] [--out DIR]}"
build=$FX_BUILD src=$FX_SRC
shift
duration=90
pool_config=
out=
while [ $# -gt 0 ]; do
    case $1 in
    --duration)
        duration=${2:?--duration needs seconds}
        case $duration in '' | *[!0-9]*) echo "demo: --duration '$duration' is not a whole number of seconds" >&2; exit 64 ;; esac
        [ "$duration" -ge 20 ] && [ "$duration" -le 3600 ] || { echo "demo: --duration must be 20..3600 seconds" >&2; exit 64; }
        shift 2 ;;
    --pool-config)
        pool_config=${2:?--pool-config needs a file}
        [ -r "$pool_config" ] || { echo "demo: --pool-config $pool_config: not readable" >&2; exit 66; }
        shift 2 ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    *) echo "demo: unknown option '$1' (--duration S, --pool-config FILE, --out DIR)" >&2; exit 64 ;;
    esac
done

tm_bin=$build/tokenmgr
for f in "$tm_bin" "$build/keepa_worker" "$build/tests/fake_keepa" "$build/plugin/tokenmgr.so"; do
    [ -e "$f" ] || { echo "demo: $f is missing: build first (./dev.sh build)" >&2; exit 1; }
done

out=${out:-$(mktemp -d "${TMPDIR:-/tmp}/tokenmgr-demo.XXXXXX")}
mkdir -p "$out/workers" "$out/csv"
out=$(cd "$out" && pwd)
# Sockets and pid files: short paths, removed at the end.
run=$(mktemp -d "${TMPDIR:-/tmp}/tkm-demo-run.XXXXXX")
pids=()

cleanup() {
    set +e
    touch "$run/stop"
    for f in "$run"/*.pid; do
        [ -f "$f" ] || continue
        p=$(cat "$f")
        kill -CONT "$p" 2>/dev/null
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 50); do
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    for f in "$run"/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done
    rm -rf "$run"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted; cleaning up"; exit 130' INT TERM

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
say() { printf '%s== %s%s\n' "$B" "$*" "$N"; }

# ---- redis-server and the fake Keepa ------------------------------------------
fx_redis_start "$run" --logfile "$out/redis.log" ||
    { echo "demo: redis-server did not start (see $out/redis.log)" >&2; exit 1; }
pids+=("$fx_redis_pid")
fx_fake_keepa_start "$out/fake_keepa.out" --rate 60 --period-ms 2000 --balance 300 \
    --latency-ms 50-300 --deals 6000 ||
    { echo "demo: the fake Keepa server did not start" >&2; exit 1; }
pids+=("$fx_fake_pid")
fake=$fx_fake_url
# The access key reaches the workers through the environment, never argv.
export TOKENMGR_KEEPA_KEY=demo0access0key
export TOKENMGR_REDIS_URL="unix://$run/redis.sock"

# ---- the pool's configuration -----------------------------------------------------
age=$(( duration / 12 )); [ $age -lt 4 ] && age=4
if [ -n "$pool_config" ]; then
    # The user's YAML, pointed at this demo's Redis and fake Keepa.
    python3 - "$pool_config" "$out/tokenmgr.yaml" "$TOKENMGR_REDIS_URL" "$fake" <<'PY'
import sys, yaml
src, dst, url, fake = sys.argv[1:]
with open(src) as f:
    doc = yaml.safe_load(f) or {}
doc.setdefault("redis", {})["url"] = url
keepa = doc.setdefault("keepa", {})
keepa["base_url"] = fake
keepa["key_file"] = ""
with open(dst, "w") as f:
    yaml.safe_dump(doc, f, sort_keys=False)
PY
else
    cat >"$out/tokenmgr.yaml" <<YAML
# The demo's pool: Keepa's minute is 2 s here.
pool: demo
redis:
  url: $TOKENMGR_REDIS_URL
bucket:
  refill_period_ms: 2000
  capacity: 300
heartbeat:
  min_interval_ms: 250
  wait_slice_ms: 500
  stale_after_s: $age
keepa:
  base_url: $fake
  key_file: ""
  timeout_ms: 5000
  token_sync_min_interval_s: 10
YAML
fi
export TOKENMGR_CONFIG="$out/tokenmgr.yaml"
"$tm_bin" status >/dev/null 2>"$out/config.err" || { cat "$out/config.err" >&2; exit 78; }
pool=$("$tm_bin" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pool"])')
floor=$(python3 -c 'import sys,yaml; d=yaml.safe_load(open(sys.argv[1])) or {}; print((d.get("bucket") or {}).get("soft_floor", 20))' "$out/tokenmgr.yaml")

# The first sync, from Keepa's free /token: the 429s counted from here on.
"$tm_bin" sync --from-keepa --force >"$out/sync.log"
curl -sf "$fake/admin/reset_counters" >/dev/null

# ---- three workers under a supervisor ---------------------------------------------
supervise() {
    local id=$1
    while [ ! -e "$run/stop" ]; do
        "$build/keepa_worker" --output "$out/workers/$id.jsonl" --state "$out/workers/$id.state" \
            --worker "$id" --batch 5 --offers 20 2>>"$out/workers/$id.log" &
        echo $! >"$run/$id.pid"
        wait $! || true
        [ -e "$run/stop" ] || echo "$(date +%s) supervisor: $id exited; restarting" >>"$out/workers/$id.log"
        sleep 0.3
    done
}
for i in 1 2 3; do
    supervise "demo-$i" &
    pids+=($!)
done

# ---- collectd with the plugin ---------------------------------------------------------
stall_tokens=100
cat >"$out/tokenmgr.conf" <<CONF
<Plugin tokenmgr>
  <Pool "$pool">
    ConfigFile "$out/tokenmgr.yaml"
    RedisURL "$TOKENMGR_REDIS_URL"
    StallTokens $stall_tokens
    StallHeartbeatAge $age
    StallConfirmations 2
    WorkerMetrics true
    <Recovery>
      Exec "$src/tests/demo/restart-demo-workers" "$run" "$out/recovery.log"
      Timeout 10
      Cooldown 600
      MaxActions 3
      Window 3600
      Grace 5
    </Recovery>
  </Pool>
</Plugin>
CONF
# The tests' main collectd.conf (tests/fixtures/collectd.conf.in): csv in
# $out/csv, the log in $out/collectd.log.
fx_collectd_conf "$out/collectd.conf" HOSTNAME=demo BASEDIR="$out" INTERVAL=1 \
    PLUGIN_DIR="$build/plugin" PLUGIN_CONF="$out/tokenmgr.conf"
fx_collectd_start "$out" || { echo "demo: collectd did not start" >&2; exit 1; }
pids+=("$fx_pid")

# ---- the timeline and the live view ---------------------------------------------------
settle=$(( duration / 4 )); [ $settle -lt 8 ] && settle=8
freeze_one=$settle
freeze_all=$(( settle + duration * 15 / 100 )); [ $freeze_all -lt $(( freeze_one + 4 )) ] && freeze_all=$(( freeze_one + 4 ))
note="three workers share the pool's budget; Keepa's minute is 2 s here"
start=$(date +%s.%N)
stage=running
recoveries_seen=0
while :; do
    now=$(date +%s.%N)
    t=$(awk -v a="$start" -v b="$now" 'BEGIN { printf "%d", b - a }')
    [ "$t" -ge "$duration" ] && break
    if [ $stage = running ] && [ "$t" -ge $freeze_one ]; then
        kill -STOP "$(cat "$run/demo-1.pid")"
        note="froze demo-1 (SIGSTOP): it goes stale; the others beat: no stall"
        stage=one_frozen
    elif [ $stage = one_frozen ] && [ "$t" -ge $freeze_all ]; then
        for i in 2 3; do kill -STOP "$(cat "$run/demo-$i.pid")"; done
        note="froze all workers: no heartbeat, tokens pass $stall_tokens: the rule confirms"
        stage=all_frozen
    fi
    if [ -f "$out/recovery.log" ]; then
        n=$(wc -l <"$out/recovery.log")
        if [ "$n" -gt $recoveries_seen ]; then
            recoveries_seen=$n
            note="recovery ran once: $(tail -n 1 "$out/recovery.log" | sed 's/.*killed: *//') killed; restarted"
            stage=recovered
        fi
    fi
    if [ $stage = recovered ] && grep -q "OKAY: no longer stalled" "$out/collectd.log" 2>/dev/null; then
        note="workers beat again; the stall cleared (OKAY); the cooldown holds"
        stage=cleared
    fi
    python3 "$src/tests/demo/view.py" --tokenmgr "$tm_bin" --config "$out/tokenmgr.yaml" \
        --fake "$fake" --csv "$out/csv" --elapsed "$t" --duration "$duration" \
        --floor "$floor" --note "$note" --state "$out/frame.json" || true
    sleep 1
done

# ---- the summary ---------------------------------------------------------------------------
"$tm_bin" recovery log --count 20 >"$out/recovery-audit.txt" 2>&1 || true
fk=$(curl -sf "$fake/admin/state" || echo '{}')
products=$(cat "$out"/workers/*.jsonl 2>/dev/null | wc -l)
recoveries=$( [ -f "$out/recovery.log" ] && wc -l <"$out/recovery.log" || echo 0)
python3 - "$out/summary.json" "$fk" "$products" "$recoveries" <<'PY'
import json, sys
path, fk, products, recoveries = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
summary = {"requests_429": fk.get("requests_429"), "served": fk.get("served"),
           "tokens_charged": fk.get("tokens_charged"), "min_balance": fk.get("min_balance"),
           "token_calls": fk.get("token_calls"), "products": products, "recoveries": recoveries}
with open(path, "w") as f:
    json.dump(summary, f)
PY
echo
say "done in $duration s"
echo "429s from the fake Keepa after the first sync: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_429"])' "$out/summary.json")"
echo "recovery actions: $recoveries   products fetched: $products"
echo "output folder:    $out"
echo "  metrics (csv):  $out/csv/demo/tokenmgr-$pool/"
echo "  collectd log:   $out/collectd.log   (notifications: stalled, action, OKAY)"
echo "  audit trail:    $out/recovery-audit.txt"
echo "  workers:        $out/workers/   fake Keepa: $out/fake_keepa.out   redis: $out/redis.log"
