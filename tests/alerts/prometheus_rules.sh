#!/usr/bin/env bash
# The Prometheus alert rules: promtool check rules, promtool test rules (each
# alert fires, stays silent, resolves), the example configuration with the
# scrape job, and the checks promtool cannot make (for, severity, summary,
# runbook anchors, metric and label names, no copied thresholds:
# tests/alerts/ops_lint.py).
source "$(dirname "$0")/lib.sh"

src=$1
dir=$src/alerts/prometheus
need promtool python3

if promtool check rules "$dir/tokenmgr.rules.yml" >"$T_DIR/check.out" 2>&1; then
    ok "promtool check rules: $(grep -o '[0-9]* rules found' "$T_DIR/check.out")"
else
    cat "$T_DIR/check.out"
    not_ok "promtool check rules"
fi

if (cd "$dir" && promtool test rules tokenmgr.rules.test.yml) >"$T_DIR/test.out" 2>&1; then
    ok "promtool test rules: $(grep -c '^  - name:' "$dir/tokenmgr.rules.test.yml") cases"
else
    cat "$T_DIR/test.out"
    not_ok "promtool test rules"
fi

# The example configuration and the scrape job, concatenated as their
# comments say, with the rules beside them as installed.
cp "$dir/tokenmgr.rules.yml" "$T_DIR/"
cat "$dir/prometheus.example.yml" "$src/conf/prometheus/tokenmgr-scrape.yml" >"$T_DIR/prometheus.yml"
if promtool check config "$T_DIR/prometheus.yml" >"$T_DIR/config.out" 2>&1; then
    ok "promtool check config: prometheus.example.yml + conf/prometheus/tokenmgr-scrape.yml"
else
    cat "$T_DIR/config.out"
    not_ok "promtool check config: prometheus.example.yml + conf/prometheus/tokenmgr-scrape.yml"
fi

if python3 "$(dirname "$0")/ops_lint.py" "$src" rules; then :; else
    not_ok "alert rule conventions"
fi
t_done
