#!/usr/bin/env bash
# alerts/alertmanager/: amtool accepts the configuration and routes each
# alert where its comments say; then a real Alertmanager and a real webhook
# (adnanh's, Debian's "webhook") deliver TokenmgrPoolStalled to a stand-in
# `tokenmgr` that records its argv; the webhook refuses everything else
# (bad token, hostile pool name, resolved, several pools) without running
# anything; the stall inhibits the per-worker alerts.
# shellcheck disable=SC2015 # "A && ok || not_ok": ok and not_ok never fail
source "$(dirname "$0")/lib.sh"

src=$1
dir=$src/alerts/alertmanager
need amtool python3 curl

if amtool check-config "$dir/alertmanager.yml" >"$T_DIR/check.out" 2>&1; then
    ok "amtool check-config alertmanager.yml"
else
    cat "$T_DIR/check.out"
    not_ok "amtool check-config alertmanager.yml"
fi

route() { # route "RECEIVERS" LABEL=VALUE...
    local want=$1 got
    shift
    got=$(amtool config routes test --config.file="$dir/alertmanager.yml" "$@" 2>/dev/null) || true
    [ "$got" = "$want" ] && ok "route $*: $got" || not_ok "route $*: got '$got', want '$want'"
}
route tokenmgr-recover,tokenmgr-ticket alertname=TokenmgrPoolStalled pool=keepa severity=ticket
route tokenmgr-page alertname=TokenmgrRedisUnreadable pool=keepa severity=page
route tokenmgr-page alertname=TokenmgrRecoveryEscalated pool=keepa severity=page
route tokenmgr-ticket alertname=TokenmgrWorkerStale pool=keepa severity=ticket
route tokenmgr-info alertname=TokenmgrTokensNearZero pool=keepa severity=info
route tokenmgr-page alertname=TokenmgrStallHeldBack pool=keepa severity=page
route tokenmgr-ticket alertname=TokenmgrRecoveryPaused pool=keepa severity=ticket

# ---- a real webhook and Alertmanager --------------------------------------------
command -v webhook >/dev/null || { t_done; skip "webhook is not installed (the live part)"; }
command -v prometheus-alertmanager >/dev/null || { t_done; skip "prometheus-alertmanager is not installed (the live part)"; }

# The stand-in tokenmgr: one line per call, argv as JSON, and TOKENMGR_CONFIG.
mkdir -p "$T_DIR/bin"
cat >"$T_DIR/bin/tokenmgr" <<EOF
#!/usr/bin/env python3
import json, os, sys
with open("$T_DIR/calls", "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "config": os.environ.get("TOKENMGR_CONFIG")}) + "\n")
EOF
chmod +x "$T_DIR/bin/tokenmgr"
: >"$T_DIR/calls"
calls() { wc -l <"$T_DIR/calls"; }
calls_above() { [ "$(calls)" -gt "$1" ]; }

token=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
printf '%s\n' "$token" >"$T_DIR/webhook.token"
wport=$(fx_free_port)
sed "s|execute-command: /usr/bin/tokenmgr|execute-command: $T_DIR/bin/tokenmgr|" \
    "$dir/webhook-hooks.yaml" >"$T_DIR/hooks.yaml"
grep -q "execute-command: $T_DIR/bin/tokenmgr" "$T_DIR/hooks.yaml" || die "could not point the hook at the stand-in"
TOKENMGR_WEBHOOK_TOKEN=$token fx_bg "$T_DIR/webhook.log" \
    webhook -nopanic -template -verbose -ip 127.0.0.1 -port "$wport" -hooks "$T_DIR/hooks.yaml"
hook=http://127.0.0.1:$wport/hooks/tokenmgr-recover
fx_wait_for 10 curl -s -o /dev/null "http://127.0.0.1:$wport/hooks/none" ||
    { cat "$T_DIR/webhook.log"; die "webhook did not start"; }
grep -q 'loaded: tokenmgr-recover' "$T_DIR/webhook.log" && ok "webhook loads the hooks file" ||
    { cat "$T_DIR/webhook.log"; not_ok "webhook did not load the hook"; }

aport=$(fx_free_port)
sed -e "s|http://127.0.0.1:9000/hooks/tokenmgr-recover|$hook|" \
    -e "s|/etc/prometheus/tokenmgr-webhook.token|$T_DIR/webhook.token|" \
    -e 's|group_wait: 10s|group_wait: 1s|' \
    "$dir/alertmanager.yml" >"$T_DIR/alertmanager.yml"
fx_bg "$T_DIR/alertmanager.log" prometheus-alertmanager \
    --config.file="$T_DIR/alertmanager.yml" --storage.path="$T_DIR/am-data" \
    --web.listen-address="127.0.0.1:$aport" --cluster.listen-address=
am=http://127.0.0.1:$aport
fx_wait_for 20 curl -sf "$am/-/ready" ||
    { cat "$T_DIR/alertmanager.log"; die "alertmanager did not start"; }

post_alerts() { # post_alerts 'ALERTNAME POOL SEVERITY' ...
    python3 - "$@" <<'PY' | curl -sf -X POST -H 'Content-Type: application/json' --data-binary @- "$am/api/v2/alerts" >/dev/null
import datetime, json, sys
now = datetime.datetime.now(datetime.timezone.utc).isoformat()
print(json.dumps([{"labels": {"alertname": a, "pool": p, "severity": s},
                   "annotations": {"summary": "test"}, "startsAt": now}
                  for a, p, s in (x.split() for x in sys.argv[1:])]))
PY
}
post_alerts "TokenmgrPoolStalled keepa ticket"
if fx_wait_for 20 calls_above 0; then
    want='{"argv": ["--pool", "keepa", "recover", "--reason", "alertmanager: TokenmgrPoolStalled"], "config": "/etc/tokenmgr/tokenmgr.yaml"}'
    if [ "$(head -n 1 "$T_DIR/calls")" = "$want" ]; then
        ok "Alertmanager -> webhook runs: tokenmgr --pool keepa recover --reason 'alertmanager: TokenmgrPoolStalled'"
    else
        not_ok "unexpected call: $(head -n 1 "$T_DIR/calls")"
    fi
else
    tail -n 20 "$T_DIR/alertmanager.log" "$T_DIR/webhook.log"
    not_ok "Alertmanager's notification never ran tokenmgr recover"
fi

# The same alert again, and a per-worker alert of the stalled pool.
post_alerts "TokenmgrPoolStalled keepa ticket" "TokenmgrWorkerStale keepa ticket"
sleep 3
[ "$(calls)" -eq 1 ] && ok "a repeated alert within the group interval is not sent again" ||
    not_ok "$(calls) recovery calls for one alert"
inhibited=$(curl -sf "$am/api/v2/alerts?filter=alertname%3D%22TokenmgrWorkerStale%22" |
    python3 -c 'import json,sys; print(",".join(sorted(set(a["status"]["state"] for a in json.load(sys.stdin)))))')
[ "$inhibited" = suppressed ] && ok "TokenmgrPoolStalled inhibits TokenmgrWorkerStale of its pool" ||
    not_ok "TokenmgrWorkerStale is '$inhibited', want suppressed"

# ---- the webhook refuses what is not a stall of one named pool ----------------------
direct() { # direct EXPECTED_HTTP NAME AUTH_HEADER JSON
    local code before
    before=$(calls)
    code=$(curl -s -o "$T_DIR/resp" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        ${3:+-H "$3"} --data-binary "$4" "$hook")
    if [ "$1" = 200 ]; then
        fx_wait_for 10 calls_above "$before" || true
    else
        sleep 0.5
    fi
    local ran=$(($(calls) - before)) want_ran=0
    [ "$1" = 200 ] && want_ran=1
    if [ "$code" = "$1" ] && [ "$ran" -eq "$want_ran" ]; then
        ok "$2: HTTP $code, ran tokenmgr $ran time(s)"
    else
        not_ok "$2: HTTP $code (want $1), ran tokenmgr $ran time(s)"
    fi
}
payload() { # payload STATUS POOL_JSON_OR_NULL [ALERTNAME]
    python3 - "$@" <<'PY'
import json, sys
status, pool = sys.argv[1], json.loads(sys.argv[2])
labels = {"alertname": sys.argv[3] if len(sys.argv) > 3 else "TokenmgrPoolStalled"}
if pool is not None:
    labels["pool"] = pool
print(json.dumps({"version": "4", "status": status, "receiver": "tokenmgr-recover",
                  "groupKey": "x", "commonLabels": labels, "groupLabels": labels,
                  "alerts": [{"status": status, "labels": labels}]}))
PY
}
auth="Authorization: Bearer $token"
direct 200 "a direct, valid request" "$auth" "$(payload firing '"keepa"')"
direct 400 "a wrong token" "Authorization: Bearer ${token}x" "$(payload firing '"keepa"')"
direct 400 "no token" "" "$(payload firing '"keepa"')"
direct 400 "a pool named 'keepa;rm -rf /'" "$auth" "$(payload firing '"keepa;rm -rf /"')"
# shellcheck disable=SC2016 # the $(reboot) is the payload, never run
direct 400 "a pool named '\$(reboot)'" "$auth" "$(payload firing '"$(reboot)"')"
direct 400 "a resolved notification" "$auth" "$(payload resolved '"keepa"')"
direct 400 "a group of several pools (no common pool)" "$auth" "$(payload firing null)"
direct 400 "another alert" "$auth" "$(payload firing '"keepa"' TokenmgrWorkerStale)"
t_done
