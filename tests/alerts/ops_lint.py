#!/usr/bin/env python3
"""Static checks of the operations files that promtool cannot make.

  ops_lint.py SRC_DIR rules     every alert: for, severity, summary,
                                description, runbook_url into
                                alerts/RUNBOOK.md; metric and label names;
                                no threshold copied into an expression
  ops_lint.py SRC_DIR dashboard the Grafana JSON: valid, datasource variable,
                                instance/pool variables, every panel target
                                has an expr using $pool and $instance
  ops_lint.py SRC_DIR dashboard-rules
                                the panels' exprs (variables substituted) as
                                recording rules on stdout, for promtool
  ops_lint.py SRC_DIR exprs     the panels' exprs, one JSON object a line:
                                {"panel", "ref", "expr", "checked"}
  ops_lint.py SRC_DIR rule-exprs
                                the alerts' exprs, one JSON object a line:
                                {"alert", "expr", "selectors"}
  ops_lint.py SRC_DIR links STAGE
                                every link in README.md, alerts/ and conf/
                                resolves to an existing file and anchor:
                                Markdown links in the source tree, file://
                                links in STAGE (a `cmake --install` with
                                DESTDIR=STAGE), bare FILE.md#anchor
                                references beside their file or at the top

Metric names are what the plugin publishes through write_prometheus
(CONTRACT.md, "Metrics"); label names are those of the scrape job in
conf/prometheus/tokenmgr-scrape.yml.  The live tests check both against a
real collectd and Prometheus, and import METRICS from here.
"""
import json
import os
import re
import sys

import yaml

# Family -> the label the scrape job makes of collectd's type_instance
# (None: the family has no type_instance).
METRICS = {
    "collectd_tokenmgr_tokens": None,
    "collectd_tokenmgr_capacity": None,
    "collectd_tokenmgr_refill_rate": None,
    "collectd_tokenmgr_recharge_mode": None,
    "collectd_tokenmgr_heartbeat_age_seconds": None,
    "collectd_tokenmgr_workers_alive": None,
    "collectd_tokenmgr_inflight_calls": None,
    "collectd_tokenmgr_inflight_tokens": None,
    "collectd_tokenmgr_last_sync_age_seconds": None,
    "collectd_tokenmgr_stalled": None,
    "collectd_tokenmgr_shared_cause": None,
    "collectd_tokenmgr_redis_up": None,
    "collectd_tokenmgr_recoveries_total": None,
    "collectd_tokenmgr_escalated": None,
    "collectd_tokenmgr_recovery_paused": None,
    "collectd_tokenmgr_stall_heartbeat_age_seconds": None,
    "collectd_tokenmgr_stall_tokens": None,
    "collectd_tokenmgr_worker_heartbeat_age_seconds": "worker",
    "collectd_tokenmgr_queue_waiters": "class",
    "collectd_tokenmgr_queue_oldest_wait_seconds": "class",
}
LABELS = {"pool", "instance", "job", "worker", "class"}
RENAMED = {"tokenmgr": "pool", "type": "worker or class"}
ALERTS = [
    "TokenmgrPoolStalled",
    "TokenmgrStallHeldBack",
    "TokenmgrWorkerStale",
    "TokenmgrHeartbeatsAbsent",
    "TokenmgrRechargeStuck",
    "TokenmgrTokensNearZero",
    "TokenmgrRedisUnreadable",
    "TokenmgrRecoveryEscalated",
    "TokenmgrRecoveryPaused",
]
SEVERITIES = {"page", "ticket", "info"}
RUNBOOK_URL = "file:///usr/share/doc/tokenmgr/RUNBOOK.md#runbook-"
# Numbers an alert expression may hold: booleans, the 5% of
# TokenmgrTokensNearZero, Keepa's 60 refills an hour (capacity without a
# published one).  Anything else is a threshold copied from the
# configuration: compare against a published metric instead.
LITERALS = {"0", "1", "0.05", "60"}
# Values the dashboard's variables take when its exprs are checked.
SUBSTITUTE = {
    "$pool": ".*",
    "$instance": ".*",
    "$soft_floor": "20",
    "${pool}": ".*",
    "${instance}": ".*",
    "${soft_floor}": "20",
}
SELECTOR = re.compile(r"\b(collectd_[a-z_]+)(\{[^}]*\})?")

failures = []
report = sys.stdout  # stderr when stdout carries data


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg, file=report)


def ok(msg):
    if report is sys.stdout:  # data modes report failures only
        print("ok   " + msg)


def selectors(expr):
    """Every metric selector of a PromQL expression, as written."""
    return [m.group(0) for m in SELECTOR.finditer(expr)]


def check_expr(where, expr):
    """Known metric names, and only the scrape job's label names."""
    names = set(re.findall(r"\b(collectd_[a-z_]+)", expr))
    if not names:
        fail(f"{where}: no collectd_ metric in {expr!r}")
    for name in sorted(names):
        if name not in METRICS:
            fail(f"{where}: unknown metric {name}")
    used = set()
    for _, sel in re.findall(r"\b(collectd_[a-z_]+)\{([^}]*)\}", expr):
        used |= set(re.findall(r"([A-Za-z_]+)\s*(?:=~|!~|!=|=)", sel))
    for clause in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        used |= {x.strip() for x in clause.split(",") if x.strip()}
    for label in sorted(used - LABELS):
        hint = f" (the scrape job renames it to {RENAMED[label]})" if label in RENAMED else ""
        fail(f"{where}: label {label!r} is not one of {sorted(LABELS)}{hint}")


def strip_fences(text):
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)


def anchors_of(path):
    """GitHub's anchors for a Markdown file: its headings' slugs (numbered
    when repeated) and explicit <a id/name>."""
    with open(path) as f:
        text = f.read()
    seen, out = {}, set()
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", strip_fences(text), re.M):
        s = m.group(1).strip().lower()
        s = re.sub(r"[^\w\- ]", "", s).replace(" ", "-")
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    out |= set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    return out


def rules(src, emit=None):
    with open(f"{src}/alerts/prometheus/tokenmgr.rules.yml") as f:
        doc = yaml.safe_load(f)
    anchors = anchors_of(f"{src}/alerts/RUNBOOK.md")
    seen = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert")
            if name is None:
                continue
            seen.append(name)
            expr = rule["expr"]
            if emit == "rule-exprs":
                sys.stdout.write(json.dumps({"alert": name, "expr": expr,
                                             "selectors": selectors(expr)}) + "\n")
            where = f"alert {name}"
            if not rule.get("for"):
                fail(f"{where}: no 'for'")
            sev = rule.get("labels", {}).get("severity")
            if sev not in SEVERITIES:
                fail(f"{where}: severity {sev!r} not in {sorted(SEVERITIES)}")
            ann = rule.get("annotations", {})
            for key in ("summary", "description"):
                if not ann.get(key):
                    fail(f"{where}: no {key} annotation")
            url = ann.get("runbook_url", "")
            want = RUNBOOK_URL + name.lower()
            if url != want:
                fail(f"{where}: runbook_url is {url!r}, want {want!r}")
            elif url.split("#", 1)[1] not in anchors:
                fail(f"{where}: alerts/RUNBOOK.md has no heading for #{url.split('#', 1)[1]}")
            check_expr(where, expr)
            bare = re.sub(r"\[[0-9smhdwy]+\]", "", expr)  # range durations
            bare = re.sub(r'"[^"]*"', "", bare)  # strings
            for lit in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])", bare):
                if lit not in LITERALS:
                    fail(f"{where}: the number {lit} in its expression is a copied "
                         "threshold: compare against a published metric")
    if sorted(seen) != sorted(ALERTS):
        fail(f"alerts are {sorted(seen)}, want {sorted(ALERTS)}")
    if not failures:
        ok(f"{len(seen)} alerts: for, severity, summary, description, runbook_url into "
           "alerts/RUNBOOK.md, metric and label names, no copied thresholds")


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
    selectors_ = []  # the variables' series selectors, checked like exprs
    ds = variables.get("DS_PROMETHEUS")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        fail("no datasource variable DS_PROMETHEUS of type prometheus")
    for name, label in (("instance", "instance"), ("pool", "pool")):
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
            check_expr(f"variable {name}", q)
            selectors_.append({"panel": f"variable {name}", "ref": "query",
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
            check_expr(f"panel {title!r}", expr)
            for var in ("$pool", "$instance"):
                if "collectd_" in expr and var not in expr and "${" + var[1:] + "}" not in expr:
                    fail(f"panel {title!r} target {t.get('refId')} ignores {var}")
            for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")):
                if label not in LABELS:
                    fail(f"panel {title!r} target {t.get('refId')}: legend uses {{{{{label}}}}}")
            out.append({"panel": title, "ref": t.get("refId"), "expr": expr,
                        "checked": substitute(expr)})
    if emit == "rules":
        out += selectors_
    leftover = [o for o in out if "$" in o["checked"]]
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
        ok(f"{len(out)} panel targets in {len(titles)} panels use ${{DS_PROMETHEUS}}, "
           "$pool and $instance, and the scrape job's metric and label names")
    return out


# ---- links ------------------------------------------------------------------

LINKED = ("README.md", "alerts", "conf")
MD_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MD_REF = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)
FILE_URL = re.compile(r"file://(/[^\s\"'`)>\]]+)")
BARE_MD = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)*[\w.-]+\.md)#([\w-]+)")


def files_to_check(src):
    for top in LINKED:
        path = os.path.join(src, top)
        if os.path.isfile(path):
            yield path
            continue
        for root, _, names in os.walk(path):
            for n in sorted(names):
                yield os.path.join(root, n)


def check_target(where, path, anchor, stage_note=""):
    if not os.path.exists(path):
        fail(f"{where}: {path}{stage_note} does not exist")
        return False
    if anchor:
        if not path.endswith(".md"):
            fail(f"{where}: #{anchor} in a file that is not Markdown ({path})")
            return False
        if anchor not in anchors_of(path):
            fail(f"{where}: {os.path.basename(path)} has no anchor #{anchor}")
            return False
    return True


def links(src, stage):
    n = 0
    for path in files_to_check(src):
        rel = os.path.relpath(path, src)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        base = os.path.dirname(path)
        if path.endswith(".md"):
            body = strip_fences(text)
            for m in list(MD_LINK.finditer(body)) + list(MD_REF.finditer(body)):
                target = m.group(1)
                if re.match(r"^(https?|mailto):", target):
                    continue
                if target.startswith("file://"):
                    continue  # below, with the other file:// links
                file_part, _, anchor = target.partition("#")
                where = f"{rel}: link {target!r}"
                dest = os.path.normpath(os.path.join(base, file_part)) if file_part else path
                n += 1
                check_target(where, dest, anchor)
        for m in FILE_URL.finditer(text):
            url = m.group(1).rstrip(".,;:")
            file_part, _, anchor = url.partition("#")
            n += 1
            check_target(f"{rel}: link file://{url}", os.path.join(stage, file_part.lstrip("/")),
                         anchor, " (installed)")
        for m in BARE_MD.finditer(text):
            if text[max(0, m.start() - 7):m.start()].endswith("file://") or \
                    text[max(0, m.start() - 1):m.start()] == "/":
                continue
            file_part, anchor = m.group(1), m.group(2)
            start = text.rfind("(", 0, m.start())
            if path.endswith(".md") and start == m.start() - 1:
                continue  # a Markdown link, checked above
            n += 1
            where = f"{rel}: reference {file_part}#{anchor}"
            for cand in (os.path.join(base, file_part), os.path.join(src, file_part)):
                if os.path.exists(cand):
                    check_target(where, cand, anchor)
                    break
            else:
                fail(f"{where}: no {file_part} beside the file or at the top")
    if not failures:
        ok(f"{n} links in README.md, alerts/ and conf/ resolve to existing files and anchors")


def main():
    src, what = sys.argv[1], sys.argv[2]
    global report
    if what == "rules":
        rules(src)
    elif what == "rule-exprs":
        report = sys.stderr
        rules(src, "rule-exprs")
    elif what == "dashboard":
        dashboard(src, None)
    elif what in ("dashboard-rules", "exprs"):
        report = sys.stderr
        dashboard(src, "rules" if what == "dashboard-rules" else "exprs")
    elif what == "links":
        links(src, sys.argv[3])
    else:
        sys.exit(f"ops_lint.py: unknown check {what!r}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
