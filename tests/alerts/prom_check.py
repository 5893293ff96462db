#!/usr/bin/env python3
"""Checks against a running collectd and Prometheus (dashboard_live.sh,
tests/deployed/).

  prom_check.py URL names METRICS_URL POOL INSTANCE
      collectd's /metrics: the tokenmgr families are exactly the documented
      ones (ops_lint.METRICS),
      labelled tokenmgr=POOL, instance=INSTANCE, and type= only where a
      worker or a class belongs
  prom_check.py URL relabel POOL SECONDS
      in Prometheus, after the scrape job: every collectd_tokenmgr_ series
      has pool= and none tokenmgr= or type=; worker= and class= where they
      belong, nowhere else
  prom_check.py URL panels EXPRS_FILE POOL INSTANCE SECONDS
      every panel expr (from ops_lint.py exprs), variables substituted,
      returns >= 1 series labelled with the pool and instance, polling up
      to SECONDS for the first scrapes
  prom_check.py URL variables POOL INSTANCE
      the dashboard's label_values variables find the pool and instance
  prom_check.py URL rules RULE_EXPRS_FILE SECONDS [exprs]
      every alert rule is loaded and evaluates without error, and every
      series selector of its expression (from ops_lint.py rule-exprs)
      returns data; with "exprs", the whole expression too
  prom_check.py URL alerts
      one line per alert Prometheus holds: NAME STATE LABELS (for the
      deployed test's timeline)
"""
import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_lint import METRICS  # noqa: E402 (the one list of names)

failures = 0


def ok(msg):
    print("ok   " + msg)


def fail(msg):
    global failures
    failures += 1
    print("FAIL " + msg)


def note(msg):
    print("note " + msg)


def get(url, params=None):
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r) if "/api/" in url else r.read().decode()


def query(base, expr):
    d = get(base + "/api/v1/query", {"query": expr})
    if d.get("status") != "success":
        raise RuntimeError(d.get("error", d))
    return d["data"]["result"]


def published(metrics_url, pool, instance):
    """{family: [labels...]} of the pool's series on collectd's /metrics."""
    seen = {}
    for line in get(metrics_url).splitlines():
        m = re.match(r"^(collectd_tokenmgr_[a-z_]+)\{([^}]*)\} ", line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if labels.get("tokenmgr") == pool and labels.get("instance") == instance:
            seen.setdefault(m.group(1), []).append(labels)
    return seen


def names(base, metrics_url, pool, instance, seconds=20):
    required = set(METRICS)
    deadline = time.time() + seconds
    while True:  # the first reads may come before the pool has state
        seen = published(metrics_url, pool, instance)
        if required <= set(seen) or time.time() > deadline:
            break
        time.sleep(0.5)
    for fam in sorted(METRICS):
        if fam not in seen:
            fail(f"collectd does not publish {fam}")
            continue
        typed = {"type" in lab for lab in seen[fam]}
        if METRICS[fam] and typed == {True}:
            ok(f'collectd publishes {fam}{{tokenmgr="{pool}",type="<{METRICS[fam]}>",instance="{instance}"}}'
               f" ({len(seen[fam])} series)")
        elif not METRICS[fam] and typed == {False} and len(seen[fam]) == 1:
            ok(f'collectd publishes {fam}{{tokenmgr="{pool}",instance="{instance}"}}')
        else:
            fail(f"collectd publishes {fam} with labels {seen[fam]}")
    for fam in sorted(set(seen) - set(METRICS)):
        fail(f"collectd publishes an undocumented family {fam}")


def relabel(base, pool, seconds):
    deadline = time.time() + seconds
    while True:
        res = query(base, '{__name__=~"collectd_tokenmgr_.+"}')
        if res or time.time() > deadline:
            break
        time.sleep(0.5)
    bad = []
    for r in res:
        m = r["metric"]
        name = m["__name__"]
        want = METRICS.get(name)
        problems = []
        if m.get("pool") is None:
            problems.append("no pool")
        for gone in ("tokenmgr", "type"):
            if gone in m:
                problems.append(f"still {gone}={m[gone]!r}")
        for extra in ("worker", "class"):
            if (extra in m) != (want == extra):
                problems.append(f"{extra} {'missing' if want == extra else 'unexpected'}")
        if problems:
            bad.append(f"{name}{m}: {', '.join(problems)}")
    if not res:
        fail("Prometheus holds no collectd_tokenmgr_ series")
    elif bad:
        for b in bad:
            fail(f"relabelled series {b}")
    else:
        pools = sorted({r['metric']['pool'] for r in res})
        ok(f"the scrape job relabels all {len(res)} collectd_tokenmgr_ series: pool={pools}, "
           "worker and class where they belong, no tokenmgr or type left")
        if pool not in pools:
            fail(f"no series of pool {pool}")


def substitute(expr, pool, instance):
    for k, v in (("${pool}", pool), ("$pool", pool), ("${instance}", instance),
                 ("$instance", instance), ("${soft_floor}", "20"), ("$soft_floor", "20")):
        expr = expr.replace(k, v)
    return expr


def poll(base, expr, deadline):
    while True:
        res = query(base, expr)  # a parse error is final
        if res or time.time() > deadline:
            return res
        time.sleep(0.5)


def panels(base, exprs_file, pool, instance, seconds):
    items = [json.loads(line) for line in open(exprs_file) if line.strip()]
    deadline = time.time() + seconds
    for it in items:
        # Pool and host names need no regex escaping ([A-Za-z0-9_.-]; a "."
        # matching any character is harmless), as Grafana's single values.
        expr = substitute(it["expr"], pool, instance)
        what = f"panel {it['panel']!r} {it['ref']}"
        try:
            res = poll(base, expr, deadline)
        except Exception as e:
            fail(f"{what}: {e}")
            continue
        if not res:
            fail(f"{what}: no series for {expr}")
            continue
        labels_ok = all(r["metric"].get("pool") == pool and
                        r["metric"].get("instance") == instance for r in res)
        for fam, label in METRICS.items():
            if label and re.search(rf"\b{fam}\b", expr) and not all(r["metric"].get(label) for r in res):
                labels_ok = False
        if labels_ok:
            ok(f"{what}: {len(res)} series, e.g. {res[0]['metric']} = {res[0]['value'][1]}")
        else:
            fail(f"{what}: unexpected labels {[r['metric'] for r in res]}")


def variables(base, pool, instance):
    for label, want, match in (
        ("instance", instance, "collectd_tokenmgr_redis_up"),
        ("pool", pool, 'collectd_tokenmgr_redis_up{instance=~"%s"}' % instance),
    ):
        d = get(f"{base}/api/v1/label/{label}/values", {"match[]": match})
        if want in d.get("data", []):
            ok(f"label_values({match}, {label}) offers {want}")
        else:
            fail(f"label_values({match}, {label}) = {d.get('data')}, no {want}")


def rules(base, rule_exprs_file, seconds, whole=False):
    items = [json.loads(line) for line in open(rule_exprs_file) if line.strip()]
    deadline = time.time() + seconds
    while True:
        groups = get(base + "/api/v1/rules")["data"]["groups"]
        rs = [r for g in groups for r in g["rules"] if r.get("type") == "alerting"]
        evaluated = rs and all(not r.get("lastEvaluation", "").startswith("0001") for r in rs)
        if evaluated or time.time() > deadline:
            break
        time.sleep(0.5)
    loaded = sorted(r["name"] for r in rs)
    if loaded != sorted(i["alert"] for i in items):
        fail(f"Prometheus loaded alerts {loaded}, the rules file has {sorted(i['alert'] for i in items)}")
    for r in rs:
        if r.get("health") == "ok":
            ok(f"Prometheus evaluates {r['name']}: {r['state']}")
        else:
            fail(f"{r['name']}: health {r.get('health')} {r.get('lastError')}")
    for it in items:
        empty = []
        for sel in sorted(set(it["selectors"])):
            if not poll(base, sel, deadline):
                empty.append(sel)
        if empty:
            fail(f"{it['alert']}: no data for {', '.join(empty)}")
        else:
            ok(f"{it['alert']}: each of its {len(set(it['selectors']))} series selectors returns data")
        if whole:
            res = poll(base, it["expr"], deadline)
            if res:
                ok(f"{it['alert']}: its expression returns {[r['metric'] for r in res]}")
            else:
                fail(f"{it['alert']}: its expression returns nothing")


def alerts(base):
    for a in get(base + "/api/v1/alerts")["data"]["alerts"]:
        labels = {k: v for k, v in a["labels"].items() if k not in ("alertname", "severity")}
        print(a["labels"]["alertname"], a["state"],
              ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-")


def main():
    base, what = sys.argv[1].rstrip("/"), sys.argv[2]
    a = sys.argv[3:]
    if what == "names":
        names(base, a[0], a[1], a[2])
    elif what == "relabel":
        relabel(base, a[0], float(a[1]))
    elif what == "panels":
        panels(base, a[0], a[1], a[2], float(a[3]))
    elif what == "variables":
        variables(base, a[0], a[1])
    elif what == "rules":
        rules(base, a[0], float(a[1]), len(a) > 2 and a[2] == "exprs")
    elif what == "alerts":
        alerts(base)
    else:
        sys.exit(f"prom_check.py: unknown check {what!r}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
