#!/usr/bin/env python3
"""Static checks of the operations files that promtool cannot make.

  ops_lint.py SRC_DIR rules     every alert: for, severity, summary, runbook;
                                runbook anchors exist in alerts/RUNBOOK.md
  ops_lint.py SRC_DIR dashboard the Grafana JSON: valid, datasource variable,
                                instance/pool variables, every panel target
                                has an expr using $pool and $instance
  ops_lint.py SRC_DIR dashboard-rules
                                the panels' exprs (variables substituted) as
                                recording rules on stdout, for promtool
  ops_lint.py SRC_DIR exprs     the panels' exprs, one JSON object a line:
                                {"panel", "ref", "expr", "checked"}

Metric names and "type" labels are checked against what collectd 5.12's
write_prometheus publishes for the tokenmgr plugin (the live tests check
that list against a real collectd).
"""
import json
import re
import sys

import yaml

FAMILIES = {
    "collectd_tokenmgr_gauge": {"tokens", "capacity", "refill_rate"},
    "collectd_tokenmgr_bool": {"recharge_mode", "stalled", "redis_up", "escalated"},
    "collectd_tokenmgr_count": {"workers_alive", "inflight"},
    "collectd_tokenmgr_duration_seconds": {"heartbeat_age", "last_sync_age"},
    "collectd_tokenmgr_derive_total": {"recoveries"},
}
WORKER_TYPE = r"worker\\..+"  # as written inside a PromQL string literal
ALERTS = [
    "TokenmgrPoolStalled",
    "TokenmgrWorkerStale",
    "TokenmgrHeartbeatsAbsent",
    "TokenmgrRechargeStuck",
    "TokenmgrTokensNearZero",
    "TokenmgrRedisUnreadable",
    "TokenmgrRecoveryEscalated",
]
SEVERITIES = {"page", "ticket", "info"}
# Values the dashboard's variables take when its exprs are checked.
SUBSTITUTE = {
    "$pool": ".*",
    "$instance": ".*",
    "$soft_floor": "20",
    "$stale_after": "900",
    "${pool}": ".*",
    "${instance}": ".*",
    "${soft_floor}": "20",
    "${stale_after}": "900",
}

failures = []
report = sys.stdout  # stderr when stdout carries data


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg, file=report)


def ok(msg):
    if report is sys.stdout:  # data modes report failures only
        print("ok   " + msg)


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def check_metric_names(where, expr):
    names = set(re.findall(r"\b(collectd_[a-z_]+)", expr))
    if not names:
        fail(f"{where}: no collectd_ metric in {expr!r}")
    for name in names:
        if name not in FAMILIES:
            fail(f"{where}: unknown metric family {name}")
    for name, sel in re.findall(r"\b(collectd_[a-z_]+)\{([^}]*)\}", expr):
        for op, value in re.findall(r'\btype\s*(=~|=)\s*"([^"]*)"', sel):
            known = FAMILIES.get(name, set())
            if op == "=" and value not in known:
                fail(f"{where}: {name} has no type={value!r}")
            if op == "=~":
                for alt in value.split("|"):
                    if alt not in known and not (
                        name == "collectd_tokenmgr_duration_seconds"
                        and alt == WORKER_TYPE
                    ):
                        fail(f"{where}: {name} has no type matching {alt!r}")


def rules(src):
    with open(f"{src}/alerts/prometheus/tokenmgr.rules.yml") as f:
        doc = yaml.safe_load(f)
    with open(f"{src}/alerts/RUNBOOK.md") as f:
        anchors = {
            slug(m.group(1))
            for m in re.finditer(r"^#{1,6}\s+(.*)$", f.read(), re.M)
        }
    seen = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert")
            if name is None:
                continue
            seen.append(name)
            where = f"alert {name}"
            if not rule.get("for"):
                fail(f"{where}: no 'for'")
            sev = rule.get("labels", {}).get("severity")
            if sev not in SEVERITIES:
                fail(f"{where}: severity {sev!r} not in {sorted(SEVERITIES)}")
            ann = rule.get("annotations", {})
            if not ann.get("summary"):
                fail(f"{where}: no summary annotation")
            runbook = ann.get("runbook", "")
            want = "README.md#runbook-" + name.lower()
            if runbook != want:
                fail(f"{where}: runbook is {runbook!r}, want {want!r}")
            elif runbook.split("#", 1)[1] not in anchors:
                fail(f"{where}: alerts/RUNBOOK.md has no heading for #{runbook.split('#', 1)[1]}")
            check_metric_names(where, rule["expr"])
    if sorted(seen) != sorted(ALERTS):
        fail(f"alerts are {sorted(seen)}, want {sorted(ALERTS)}")
    if not failures:
        ok(f"{len(seen)} alerts: for, severity, summary, runbook anchors in alerts/RUNBOOK.md, metric names")


def panels_of(dash):
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []):  # collapsed rows
            yield q


def substitute(expr):
    for k in sorted(SUBSTITUTE, key=len, reverse=True):
        expr = expr.replace(k, SUBSTITUTE[k])
    return expr


def dashboard(src, emit):
    path = f"{src}/alerts/grafana/tokenmgr.json"
    try:
        with open(path) as f:
            dash = json.load(f)
    except ValueError as e:
        fail(f"{path} is not valid JSON: {e}")
        return []
    ok("the dashboard is valid JSON")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    selectors = []  # the variables' series selectors, checked like exprs
    ds = variables.get("DS_PROMETHEUS")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        fail("no datasource variable DS_PROMETHEUS of type prometheus")
    for name, label in (("instance", "instance"), ("pool", "tokenmgr")):
        v = variables.get(name)
        if not v or v.get("type") != "query":
            fail(f"no query variable {name}")
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        mv = re.fullmatch(rf"label_values\((collectd_[a-z_]+(\{{.*\}})?),\s*{label}\)", q or "")
        if not mv:
            fail(f"variable {name}: query {q!r} is not label_values(..., {label})")
        else:
            check_metric_names(f"variable {name}", q)
            selectors.append({"panel": f"variable {name}", "ref": "query",
                              "expr": mv.group(1), "checked": substitute(mv.group(1))})
        if (v.get("datasource") or {}).get("uid") != "${DS_PROMETHEUS}":
            fail(f"variable {name} does not use ${{DS_PROMETHEUS}}")
    out = []
    titles = set()
    for p in panels_of(dash):
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        titles.add(title)
        if (p.get("datasource") or {}).get("uid") != "${DS_PROMETHEUS}":
            fail(f"panel {title!r} does not use ${{DS_PROMETHEUS}}")
        targets = p.get("targets", [])
        if not targets:
            fail(f"panel {title!r} has no targets")
        for t in targets:
            expr = t.get("expr")
            if not expr:
                fail(f"panel {title!r} target {t.get('refId')} has no expr")
                continue
            if (t.get("datasource") or {}).get("uid") != "${DS_PROMETHEUS}":
                fail(f"panel {title!r} target {t.get('refId')} does not use ${{DS_PROMETHEUS}}")
            check_metric_names(f"panel {title!r}", expr)
            for var in ("$pool", "$instance"):
                if "collectd_" in expr and var not in expr and "${" + var[1:] + "}" not in expr:
                    fail(f"panel {title!r} target {t.get('refId')} ignores {var}")
            out.append({"panel": title, "ref": t.get("refId"), "expr": expr,
                        "checked": substitute(expr)})
    if emit == "rules":
        out += selectors
    leftover = [o for o in out if "$" in o["checked"].replace("$1", "")]
    for o in leftover:
        fail(f"panel {o['panel']!r}: unsubstituted variable in {o['checked']!r}")
    if emit == "rules":
        rules_doc = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:panel_{i}", "expr": o["checked"]} for i, o in enumerate(out)]}]}
        yaml.safe_dump(rules_doc, sys.stdout, width=1000)
    elif emit == "exprs":
        for o in out:
            sys.stdout.write(json.dumps(o) + "\n")
    else:
        ok(f"{len(out)} panel targets in {len(titles)} panels use ${{DS_PROMETHEUS}}, $pool and $instance")
    return out


def main():
    src, what = sys.argv[1], sys.argv[2]
    if what == "rules":
        rules(src)
    elif what == "dashboard":
        dashboard(src, None)
    elif what in ("dashboard-rules", "exprs"):
        global report
        report = sys.stderr
        dashboard(src, "rules" if what == "dashboard-rules" else "exprs")
    else:
        sys.exit(f"ops_lint.py: unknown check {what!r}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
