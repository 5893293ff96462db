#!/usr/bin/env bash
# alerts/grafana/tokenmgr.json: valid JSON, a Prometheus datasource variable
# used by every panel, instance and pool variables, and every panel target's
# expr (variables substituted) parsed by promtool as a recording rule.
source "$(dirname "$0")/lib.sh"

src=$1
lint=$(dirname "$0")/ops_lint.py
need promtool python3

python3 "$lint" "$src" dashboard || not_ok "dashboard conventions"

if python3 "$lint" "$src" dashboard-rules >"$T_DIR/panels.rules.yml"; then
    n=$(grep -c 'record:' "$T_DIR/panels.rules.yml")
    if promtool check rules "$T_DIR/panels.rules.yml" >"$T_DIR/check.out" 2>&1; then
        ok "promtool parses all $n panel exprs and variable selectors"
    else
        cat "$T_DIR/check.out"
        not_ok "promtool check rules on the panel exprs"
    fi
else
    not_ok "could not extract the panel exprs"
fi

# The check is not vacuous: a broken expr is refused.
printf 'groups:\n- name: x\n  rules:\n  - record: x\n    expr: rate(collectd_tokenmgr_tokens{pool="keepa"}\n' >"$T_DIR/bad.yml"
if promtool check rules "$T_DIR/bad.yml" >/dev/null 2>&1; then
    not_ok "promtool accepted a broken expr"
else
    ok "promtool refuses a broken expr"
fi
t_done
