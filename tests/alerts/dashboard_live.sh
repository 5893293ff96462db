#!/usr/bin/env bash
# The dashboard and the alert rules against live data: collectd (the
# drop-in, the write_prometheus and unixsock example snippets) scraped every
# second by a private Prometheus through the shipped scrape job
# (conf/prometheus/tokenmgr-scrape.yml), loading the shipped alert rules.
#
#   dashboard_live.sh SRC_DIR BUILD_DIR plugin   the real tokenmgr plugin
#       reads a private redis-server (Unix socket) whose pool is driven by
#       BUILD_DIR/tokenmgr (sync, acquire, heartbeat; a blocking acquire
#       of class "bulk" waiting in line)
#   dashboard_live.sh SRC_DIR BUILD_DIR putval   every family, the queue's
#       too, written through collectd's unixsock (PUTVAL) as the plugin
#       would dispatch them (the plugin is loaded, without a pool, for its
#       types): the naming chain of every panel; with more pools in the
#       states each alert is about, every rule's whole expression returns
#       data
#
# Then: collectd's /metrics carries exactly the documented families and
# `promtool check metrics` finds no problem with them; in Prometheus the
# scrape job has renamed the labels (pool, worker, class); every dashboard
# panel's expr ($pool, $instance substituted) returns >= 1 series with the
# pool and instance; the dashboard's variables find the pool and host;
# every alert rule loads and evaluates, and each series selector of its
# expression returns data.  T_KEEP=1 keeps the folder (logs) for a look.
source "$(dirname "$0")/lib.sh"

src=$1 build=$2 mode=$3
here=$(cd "$(dirname "$0")" && pwd)
pool=keepa
host=tkm-test
worker=$host:$pool:1

skip_if_sanitized
[ -f "$build/plugin/tokenmgr.so" ] || skip "$build/plugin/tokenmgr.so is not built"
case $mode in
plugin)
    [ -x "$build/tokenmgr" ] || skip "$build/tokenmgr is not built"
    need redis-server
    ;;
putval)
    need collectdctl
    ;;
*) die "mode must be plugin or putval" ;;
esac
need collectd prometheus promtool python3 curl

cport=$(fx_free_port)
pport=$(fx_free_port)
while [ "$pport" = "$cport" ]; do pport=$(fx_free_port); done
sock=$T_DIR/collectd.sock

# ---- collectd: the shipped drop-in and snippets, reading every second -------------
mkdir -p "$T_DIR/conf.d"
fx_snippet "$T_DIR/conf.d/write_prometheus.conf" write_prometheus "$cport" || die "fx_snippet"
fx_snippet "$T_DIR/conf.d/unixsock.conf" unixsock "$sock" || die "fx_snippet"
if [ "$mode" = plugin ]; then
    fx_redis_start "$T_DIR" || die "redis-server did not start"
    redis=$fx_redis_sock
    fx_dropin "$T_DIR/conf.d/tokenmgr.conf" "unix://$redis" || die "fx_dropin"
fi
write_collectd_main "$T_DIR/collectd.conf" 1 "$T_DIR/conf.d/*.conf" \
    HOSTNAME="$host" PLUGIN_DIR="$build/plugin" PLUGIN_INTERVAL=1
fx_collectd_start "$T_DIR" || die "collectd did not start"
metrics=http://127.0.0.1:$cport/metrics
fx_wait_for 15 curl -sf -o /dev/null "$metrics" ||
    { cat "$T_DIR/collectd.out" "$T_DIR/collectd.log" >&2; die "collectd did not serve $metrics"; }

# ---- a pool with some life in it ------------------------------------------------
if [ "$mode" = plugin ]; then
    tkm() { "$build/tokenmgr" --config "$src/conf/tokenmgr.yaml" --pool "$pool" --redis "unix://$redis" "$@"; }
    tkm sync --tokens 250 --rate 20 >/dev/null || die "tokenmgr sync failed"
    tkm acquire 10 >/dev/null || die "tokenmgr acquire failed"
    tkm heartbeat --worker "$worker" --phase "dashboard test" >/dev/null || die "tokenmgr heartbeat failed"
    # A call that cannot be served for minutes (cost beyond the balance and
    # the deficit allowed), waiting in line as class "bulk".
    fx_bg "$T_DIR/waiter.log" "$build/tokenmgr" --config "$src/conf/tokenmgr.yaml" --pool "$pool" \
        --redis "unix://$redis" --set queue.classes=bulk=1 --set queue.class=bulk acquire 600 --wait 3600
else
    # What the plugin dispatches each interval (plugin tokenmgr, instance
    # = the pool), one PUTVAL per value list.
    # Three more pools in states that make every alert expression true:
    # "down" (Redis unreadable), "sick" (stalled, held back, recharge on,
    # tokens near zero, escalated, paused), "stale" (one silent worker
    # among live ones), "empty" (watched, no heartbeat at all).
    put() { # put POOL TYPE[-INSTANCE]=VALUE...
        local p=$1 v
        shift
        for v in "$@"; do
            collectdctl -s "$sock" putval "$host/tokenmgr-$p/${v%%=*}" interval=1 "N:${v#*=}" || return 1
        done
    }
    feed() {
        local n=0
        while :; do
            put "$pool" tokens=$((250 + n % 7)) capacity=1200 refill_rate=20 recharge_mode=1 \
                heartbeat_age=3.5 workers_alive=1 inflight=1:10 last_sync_age=5 stalled=0 \
                shared_cause=0 redis_up=1 recoveries=$((n / 5)) escalated=0 recovery_paused=0 \
                stall_heartbeat_age=900 stall_tokens=1164 "worker_heartbeat_age-$worker=3.5" \
                queue_waiters-bulk=2 queue_oldest_wait-bulk=1.5 || return 1
            put down redis_up=0 stall_heartbeat_age=900 || return 1
            put sick redis_up=1 stalled=1 shared_cause=1 workers_alive=0 tokens=10 capacity=1200 \
                recharge_mode=1 escalated=1 recovery_paused=1 heartbeat_age=2000 || return 1
            put stale redis_up=1 workers_alive=1 heartbeat_age=3 stall_heartbeat_age=900 \
                "worker_heartbeat_age-$host:stale:1=3" "worker_heartbeat_age-$host:stale:2=2000" || return 1
            put empty redis_up=1 || return 1
            n=$((n + 1))
            sleep 1
        done
    }
    fx_wait_for 10 test -S "$sock" || die "no unixsock"
    fx_bg "$T_DIR/feed.log" feed
fi
fx_wait_for 20 sh -c "curl -sf '$metrics' | grep -q '^collectd_tokenmgr_redis_up{tokenmgr=\"$pool\"'" ||
    { cat "$T_DIR/collectd.log" >&2; die "collectd publishes no tokenmgr series"; }

# ---- a private Prometheus: the example, the shipped scrape job and rules ----------
cp "$src/alerts/prometheus/tokenmgr.rules.yml" "$T_DIR/"
{
    printf 'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - tokenmgr.rules.yml\n'
    sed "s|\"127.0.0.1:9103\"|\"127.0.0.1:$cport\"|" "$src/conf/prometheus/tokenmgr-scrape.yml"
} >"$T_DIR/prometheus.yml"
grep -q "127.0.0.1:$cport" "$T_DIR/prometheus.yml" || die "could not point the scrape job at collectd"
fx_bg "$T_DIR/prometheus.log" prometheus --config.file="$T_DIR/prometheus.yml" \
    --storage.tsdb.path="$T_DIR/tsdb" --web.listen-address="127.0.0.1:$pport"
prom=http://127.0.0.1:$pport
fx_wait_for 30 curl -sf -o /dev/null "$prom/-/ready" ||
    { tail -n 20 "$T_DIR/prometheus.log" >&2; die "prometheus did not start"; }

# ---- the checks ------------------------------------------------------------------------
check=(python3 "$here/prom_check.py" "$prom")
"${check[@]}" names "$metrics" "$pool" "$host" || not_ok "collectd's series"
curl -sf "$metrics" >"$T_DIR/metrics.txt" || die "no metrics"
promtool check metrics <"$T_DIR/metrics.txt" >"$T_DIR/lint.out" 2>&1 || true
if grep -q 'collectd_tokenmgr' "$T_DIR/lint.out"; then
    grep 'collectd_tokenmgr' "$T_DIR/lint.out"
    not_ok "promtool check metrics reports problems with tokenmgr's families"
else
    ok "promtool check metrics: no problem with the $(grep -c '^# TYPE collectd_tokenmgr_' "$T_DIR/metrics.txt") tokenmgr families"
fi
"${check[@]}" relabel "$pool" 20 || not_ok "the scrape job's labels"
python3 "$here/ops_lint.py" "$src" exprs >"$T_DIR/exprs.jsonl" || die "could not read the dashboard"
"${check[@]}" panels "$T_DIR/exprs.jsonl" "$pool" "$host" 30 || not_ok "dashboard panels"
"${check[@]}" variables "$pool" "$host" || not_ok "dashboard variables"
python3 "$here/ops_lint.py" "$src" rule-exprs >"$T_DIR/rules.jsonl" || die "could not read the rules"
# Fed, every pool state is there: every rule's whole expression returns data.
"${check[@]}" rules "$T_DIR/rules.jsonl" 20 "$([ "$mode" = putval ] && echo exprs)" ||
    not_ok "alert rules"
t_done
