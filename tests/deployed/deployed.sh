#!/usr/bin/env bash
# tokenmgr as deployed, end to end (issue 15 §6).  `cmake --install` puts
# everything at its real paths inside private namespaces (lib.sh); the
# shipped drop-in, YAML, rules and dashboard are used unchanged but for the
# timings of tests/deployed/timings.yaml (the one list of them).  Then:
# Debian's redis-server (its own /etc/redis/redis.conf: 127.0.0.1:6379, the
# YAML's default), the fake Keepa, three example workers as
# keepa-worker@keepa:{1,2,3} (the shipped unit, run by a stand-in
# systemctl), collectd with the drop-in and the write_prometheus example
# snippet, Prometheus with the shipped example, scrape job and rules.
#
#   1. all workers frozen (SIGSTOP: hung) -> stalled 1 -> the shipped
#      recovery command runs exactly once -> TokenmgrPoolStalled fires ->
#      the restart thaws the workers (the hung ones are killed at the unit's
#      TimeoutStopSec, new ones resume) -> OKAY, the alert resolves;
#   2. Redis stopped for 30 s -> redis_up 0, TokenmgrRedisUnreadable, no
#      recovery -> Redis back, the alert resolves;
#   and over the whole run no other alert fired (no TokenmgrRechargeStuck,
#   no TokenmgrTokensNearZero from the idle full bucket).
# The timeline of every event is printed at the end.
#
# What the test sets that is not a timing, all of it deployment: the
# Keepa key in /etc/tokenmgr/keepa.key (the YAML's key_file) and the API's
# address (the fake's) in /etc/default/keepa-worker, which the unit reads;
# the optional write_prometheus snippet copied, unchanged, into
# /etc/collectd/collectd.conf.d/; the main collectd.conf of a collectd-core
# host (the README's Include line, and a log file the test can read in
# place of syslog); prometheus.yml = the example + the scrape job, the
# rules in /etc/prometheus/.
#
#   deployed.sh SRC_DIR BUILD_DIR      (root; T_KEEP=1 keeps the folder)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
dp_enter "$@"

src=$1 build=$2
here=$DP_DIR
need collectd prometheus redis-server redis-cli python3 curl cmake
units=(keepa-worker@keepa:1 keepa-worker@keepa:2 keepa-worker@keepa:3)
metrics=http://127.0.0.1:9103/metrics # the write_prometheus snippet's address
prom=http://127.0.0.1:9090            # Prometheus' default
timeline=$T_DIR/timeline
test_start=$(dp_ms)
mark() { echo "$(dp_ms) $*" >>"$timeline"; say "$*"; }

# ---- install, timings, deployment ------------------------------------------------
dp_install "$build"
python3 "$here/timings.py" "$here/timings.yaml" apply | sed 's/^/  /' ||
    die "the timings do not apply to the installed files"
period=$(python3 "$here/timings.py" "$here/timings.yaml" get fake_keepa_period_ms)

# The fake Keepa API: 100 tokens a "minute" ($period ms), a bucket of 6000
# (60 x rate), deals enough to keep three workers busy for the whole test.
fx_fake_keepa_start /var/log/fake_keepa.out --rate 100 --period-ms "$period" \
    --balance 6000 --deals 200000 --latency-ms 50-200 || die "the fake Keepa did not start"
umask 077
printf 'deployedtestkey0123456789abcdef\n' >/etc/tokenmgr/keepa.key
printf 'TOKENMGR_KEEPA_BASE_URL=%s\n' "$fx_fake_url" >/etc/default/keepa-worker
umask 022
dp_redis_start

# collectd-core's layout: the main config includes the drop-in folder (the
# README's one line); the write_prometheus example snippet is enabled as is.
cat >/etc/collectd/collectd.conf <<'EOF'
FQDNLookup false
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "/var/log/collectd.log"
  Timestamp true
</Plugin>
Include "/etc/collectd/collectd.conf.d/*.conf"
EOF
cp /usr/share/doc/tokenmgr/examples/collectd.conf.d/write_prometheus.conf /etc/collectd/collectd.conf.d/ ||
    die "the write_prometheus example snippet is not installed"

# Prometheus: the example (rule_files, alerting) + the scrape job, the rules beside.
scrape=/usr/share/tokenmgr/prometheus/tokenmgr-scrape.yml
[ -f "$scrape" ] || die "$scrape is not installed"
cat /usr/share/tokenmgr/alerts/prometheus/prometheus.example.yml "$scrape" >/etc/prometheus/prometheus.yml
cp /usr/share/tokenmgr/alerts/prometheus/tokenmgr.rules.yml /etc/prometheus/
promtool check config /etc/prometheus/prometheus.yml >"$T_DIR/promtool.out" 2>&1 ||
    { cat "$T_DIR/promtool.out"; die "promtool refuses the deployed prometheus.yml"; }

# ---- start ----------------------------------------------------------------------------
systemctl start "${units[@]}" || die "the workers did not start"
dp_collectd_start /var/log/collectd.log
fx_bg /var/log/prometheus.log prometheus --config.file=/etc/prometheus/prometheus.yml \
    --storage.tsdb.path=/var/lib/prometheus/metrics2/
fx_wait_for 30 curl -sf -o /dev/null "$prom/-/ready" ||
    { tail -n 20 /var/log/prometheus.log >&2; die "prometheus did not start"; }

metric() { # metric NAME: its value for pool keepa on collectd's /metrics
    curl -sf "$metrics" | awk -v n="collectd_tokenmgr_$1" '$1 ~ "^" n "[{]" && $1 ~ /tokenmgr="keepa"/ { print $2; exit }'
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }
alerts() { python3 "$here/../alerts/prom_check.py" "$prom" alerts; }
alert_state() { alerts | awk -v a="$1" '$1 == a { print $2; exit }'; }
alert_is() { [ "$(alert_state "$1")" = "$2" ]; }
no_alerts() { [ -z "$(alerts)" ]; }
alert_gone() { ! alerts | grep -q "^$1 "; }
steady() { metric_is workers_alive 3 && metric_is stalled 0 && no_alerts; }
steady3() { steady && sleep 3 && steady; } # for 3 s in a row
check() { # check WHAT CMD...: ok or not_ok
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
restarts() { grep -c ' systemctl restart ' /var/log/systemctl-stand-in.log || true; }
started() { grep -c ': started pid ' /var/log/systemctl-stand-in.log || true; }
at_least() { [ "$("$1")" -ge "$2" ]; } # at_least COUNTER N, evaluated each poll
okay_logged() { grep -q 'OKAY: no longer stalled' /var/log/collectd.log; }
recovered_logged() { grep -q 'OKAY: workers beat again after the recovery action' /var/log/collectd.log; }
wait_for() { # wait_for SECONDS WHAT CMD...: fx_wait_for, or fail the test
    local s=$1 what=$2
    shift 2
    fx_wait_for "$s" "$@" && return 0
    alerts >&2
    grep -v 'write targets\|Filter subsystem' /var/log/collectd.log | tail -n 15 >&2
    tokenmgr recovery status >&2 || true
    tokenmgr recovery log --count 10 >&2 || true
    die "no $what within ${s}s"
}

wait_for 60 "steady state (3 workers alive, no alert)" steady3
mark "steady: 3 workers beat, tokens $(metric tokens)/$(metric capacity), no alert"

# ---- 1. every worker hangs ---------------------------------------------------------------
t0=$(dp_ms)
for u in "${units[@]}"; do kill -STOP "$(systemctl show -p MainPID --value "$u")"; done
mark "freeze: the 3 workers SIGSTOPped"
wait_for 60 "stalled 1" metric_is stalled 1
mark "collectd: stalled 1"
wait_for 30 "recovery command" at_least restarts 1
mark "the recovery command runs: $(grep ' systemctl restart ' /var/log/systemctl-stand-in.log | head -n 1 | cut -d' ' -f2-)"
wait_for 60 "TokenmgrPoolStalled firing" alert_is TokenmgrPoolStalled firing
check "TokenmgrPoolStalled fired before the restart thawed any worker ($(started) starts so far)" \
    test "$(started)" -eq 3
mark "Prometheus: TokenmgrPoolStalled firing"
wait_for 60 "the restarted workers" at_least started 6
mark "thaw: the hung workers killed at TimeoutStopSec, 3 new ones started"
wait_for 30 "stalled 0" metric_is stalled 0
mark "collectd: stalled 0"
wait_for 30 "OKAY notification" okay_logged
mark "collectd: $(grep -o 'OKAY: no longer stalled.*' /var/log/collectd.log | head -n 1)"
wait_for 30 "TokenmgrPoolStalled resolved" alert_gone TokenmgrPoolStalled
mark "Prometheus: TokenmgrPoolStalled resolved"
t1=$(dp_ms)

check "the recovery command ran exactly once ($(restarts))" test "$(restarts)" -eq 1
# The guard's verdict on its action, once its grace period (45 s) is over.
wait_for 60 "the guard's verdict on the action" recovered_logged
mark "collectd: $(grep -o 'OKAY: workers beat again.*' /var/log/collectd.log | head -n 1)"

# ---- 2. Redis stops for 30 s ---------------------------------------------------------------
wait_for 60 "steady state after the recovery" steady3
mark "steady again"
r0=$(dp_ms)
dp_redis_stop
mark "Redis stopped"
wait_for 20 "redis_up 0" metric_is redis_up 0
mark "collectd: redis_up 0"
wait_for 30 "TokenmgrRedisUnreadable firing" alert_is TokenmgrRedisUnreadable firing
mark "Prometheus: TokenmgrRedisUnreadable firing: $(alerts | grep TokenmgrRedisUnreadable)"
left=$((30000 - ($(dp_ms) - r0)))
[ "$left" -le 0 ] || sleep "$((left / 1000)).$(printf '%03d' $((left % 1000)))"
dp_redis_start
mark "Redis started again (30 s after the stop)"
wait_for 20 "redis_up 1" metric_is redis_up 1
mark "collectd: redis_up 1"
wait_for 30 "TokenmgrRedisUnreadable resolved" alert_gone TokenmgrRedisUnreadable
mark "Prometheus: TokenmgrRedisUnreadable resolved"
wait_for 60 "steady state after Redis" steady3
sleep 6 # longer than every scaled `for:` but the 10 s and above ones
mark "end"
r1=$(dp_ms)

check "no recovery while Redis was down or after ($(($(restarts) - 1)))" test "$(restarts)" -eq 1
tokenmgr recovery log --json --count 100 >"$T_DIR/audit.json" || die "tokenmgr recovery log failed"
audit=$(python3 -c 'import json, sys
print(" ".join(sorted("%s%s" % (e["decision"], "/exit=%s" % e["exit"] if e["exit"] is not None else "")
                      for e in json.load(open(sys.argv[1])))))' "$T_DIR/audit.json")
check "the audit trail: one action, finished with exit 0, recovered ($audit)" \
    test "$audit" = "act finished/exit=0 recovered"
check "collectd_tokenmgr_recoveries_total is 1 ($(metric recoveries_total))" test "$(metric recoveries_total)" = 1

# ---- what fired, when; the idle bucket ------------------------------------------------------
python3 "$here/timeline.py" "$prom" "$timeline" "$test_start" "$t0" "$t1" "$r0" "$r1" \
    /var/log/systemctl-stand-in.log "$T_DIR/audit.json" /var/log/collectd.log ||
    not_ok "the run's alerts and timeline"
say "time budget: $(((r1 - test_start) / 1000)) s of the test's 420"
t_done
