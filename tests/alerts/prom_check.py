#!/usr/bin/env python3
"""Checks against a running Prometheus (for dashboard_live.sh).

  prom_check.py URL names METRICS_URL POOL INSTANCE PENDING
      collectd's /metrics: the tokenmgr families and type labels are
      exactly the documented ones (PENDING: types allowed to be missing)
  prom_check.py URL panels EXPRS_FILE POOL INSTANCE SECONDS PENDING
      every panel expr (from ops_lint.py exprs), variables substituted,
      returns >= 1 series labelled with the pool and instance, polling up
      to SECONDS for the first scrapes
  prom_check.py URL variables POOL INSTANCE
      the dashboard's label_values variables find the pool and instance
  prom_check.py URL rules SECONDS
      every tokenmgr alert rule is loaded and evaluates without error

PENDING is a comma-separated list of "type" labels that the plugin may not
publish yet (empty: none); panels that only show those are reported, not
failed.
"""
import json
import re
import sys
import time
import urllib.parse
import urllib.request

FAMILIES = {
    "collectd_tokenmgr_gauge": {"tokens", "capacity", "refill_rate"},
    "collectd_tokenmgr_bool": {"recharge_mode", "stalled", "redis_up", "escalated"},
    "collectd_tokenmgr_count": {"workers_alive", "inflight"},
    "collectd_tokenmgr_duration_seconds": {"heartbeat_age", "last_sync_age", "worker.*"},
    "collectd_tokenmgr_derive_total": {"recoveries"},
}
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
    seen = {}
    for line in get(metrics_url).splitlines():
        m = re.match(r'^(collectd_tokenmgr_[a-z_]+)\{tokenmgr="([^"]*)",type="([^"]*)",instance="([^"]*)"\} ', line)
        if m and m.group(2) == pool and m.group(4) == instance:
            typ = "worker.*" if m.group(3).startswith("worker.") else m.group(3)
            seen.setdefault(m.group(1), set()).add(typ)
    return seen


def names(base, metrics_url, pool, instance, pending, seconds=20):
    required = {(f, t) for f, ts in FAMILIES.items() for t in ts
                if t not in pending and t.split(".")[0] not in pending}
    deadline = time.time() + seconds
    while True:  # the first reads may come before the pool has state
        seen = published(metrics_url, pool, instance)
        have = {(f, t) for f, ts in seen.items() for t in ts}
        if required <= have or time.time() > deadline:
            break
        time.sleep(0.5)
    for fam, types in FAMILIES.items():
        for t in sorted(types):
            if t in seen.get(fam, set()):
                ok(f'collectd publishes {fam}{{tokenmgr="{pool}",type="{t}",instance="{instance}"}}')
            elif t in pending or t.split(".")[0] in pending:
                note(f"collectd does not publish {fam} type={t} yet (pending)")
            else:
                fail(f"collectd does not publish {fam} type={t}")
    for fam, types in seen.items():
        extra = types - FAMILIES.get(fam, set())
        if extra:
            fail(f"collectd publishes undocumented {fam} types {sorted(extra)}")


def substitute(expr, pool, instance):
    for k, v in (("${pool}", pool), ("$pool", pool), ("${instance}", instance),
                 ("$instance", instance), ("${soft_floor}", "20"), ("$soft_floor", "20")):
        expr = expr.replace(k, v)
    return expr


def pending_only(expr, pending):
    types = set()
    for sel in re.findall(r'type\s*=~?\s*"([^"]*)"', expr):
        for alt in sel.split("|"):
            types.add("worker" if alt.startswith("worker") else alt)
    return types and types <= pending


def panels(base, exprs_file, pool, instance, seconds, pending):
    items = [json.loads(line) for line in open(exprs_file) if line.strip()]
    deadline = time.time() + seconds
    for it in items:
        # Pool and host names need no regex escaping ([A-Za-z0-9_.-]; a "."
        # matching any character is harmless), as Grafana's single values.
        expr = substitute(it["expr"], pool, instance)
        what = f"panel {it['panel']!r} {it['ref']}"
        res, error = [], None
        while True:
            try:
                res = query(base, expr)
            except Exception as e:  # a parse error is final
                error = e
                break
            if res or time.time() > deadline:
                break
            time.sleep(0.5)
        if error is not None:
            fail(f"{what}: {error}")
            continue
        if not res:
            if pending_only(it["expr"], pending):
                note(f"{what}: no series yet (only pending types): {expr}")
            else:
                fail(f"{what}: no series for {expr}")
            continue
        labels_ok = all(r["metric"].get("tokenmgr") == pool and
                        r["metric"].get("instance") == instance for r in res)
        if "label_replace" in expr and not all(r["metric"].get("worker") for r in res):
            labels_ok = False
        if labels_ok:
            ok(f"{what}: {len(res)} series, e.g. {res[0]['metric']} = {res[0]['value'][1]}")
        else:
            fail(f"{what}: unexpected labels {[r['metric'] for r in res]}")


def variables(base, pool, instance):
    for label, want, match in (
        ("instance", instance, 'collectd_tokenmgr_bool{type="redis_up"}'),
        ("tokenmgr", pool, 'collectd_tokenmgr_bool{type="redis_up", instance=~"%s"}' % instance),
    ):
        d = get(f"{base}/api/v1/label/{label}/values", {"match[]": match})
        if want in d.get("data", []):
            ok(f"label_values({match}, {label}) offers {want}")
        else:
            fail(f"label_values({match}, {label}) = {d.get('data')}, no {want}")


def rules(base, seconds):
    deadline = time.time() + seconds
    while True:
        groups = get(base + "/api/v1/rules")["data"]["groups"]
        rs = [r for g in groups for r in g["rules"] if r.get("type") == "alerting"]
        evaluated = rs and all(not r.get("lastEvaluation", "").startswith("0001") for r in rs)
        if evaluated or time.time() > deadline:
            break
        time.sleep(0.5)
    names_ = sorted(r["name"] for r in rs)
    if len(names_) != 7:
        fail(f"Prometheus loaded alerts {names_}")
    for r in rs:
        if r.get("health") == "ok":
            ok(f"Prometheus evaluates {r['name']}: {r['state']}")
        else:
            fail(f"{r['name']}: health {r.get('health')} {r.get('lastError')}")


def main():
    base, what = sys.argv[1].rstrip("/"), sys.argv[2]
    a = sys.argv[3:]
    if what == "names":
        names(base, a[0], a[1], a[2], set(filter(None, a[3].split(","))))
    elif what == "panels":
        panels(base, a[0], a[1], a[2], float(a[3]), set(filter(None, a[4].split(","))))
    elif what == "variables":
        variables(base, a[0], a[1])
    elif what == "rules":
        rules(base, float(a[0]))
    else:
        sys.exit(f"prom_check.py: unknown check {what!r}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
