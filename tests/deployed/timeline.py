#!/usr/bin/env python3
"""The deployed test's timeline and its checks on what fired.

  timeline.py PROM MARKS START T0 T1 R0 R1 SYSTEMCTL_LOG AUDIT_JSON COLLECTD_LOG

MARKS: "<ms> <what>" lines the test wrote; START the test's start, T0..T1
the stall phase (freeze to resolution), R0..R1 the Redis phase (stop to the
end); SYSTEMCTL_LOG the stand-in's log; AUDIT_JSON `tokenmgr recovery log
--json`; COLLECTD_LOG collectd's log file (the plugin's notifications and
log lines, to the second).  Exact times come from Prometheus' raw samples (write_prometheus
exports collectd's read times; ALERTS at each evaluation), the stand-in's
log and the audit trail; the test's own marks are when it saw each event.

Checks: the only alerts that fired are TokenmgrPoolStalled, once, inside
the stall phase, and TokenmgrRedisUnreadable, once, inside the Redis
phase; the events of the stall phase come in order (stalled, recovery
command, alert firing, thaw, stalled 0, alert resolved); while the bucket
sat idle and full, recharge_mode read 0.
"""
import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "alerts"))
import prom_check  # noqa: E402 (the checks' ok/fail/note lines and count)
from prom_check import fail, note, ok  # noqa: E402


def raw(prom, selector, since_ms, now_ms):
    """{labels-tuple: [(ms, value)]} of the raw samples since since_ms."""
    window = int((now_ms - since_ms) / 1000) + 5
    q = urllib.parse.urlencode({"query": f"{selector}[{window}s]", "time": now_ms / 1000})
    with urllib.request.urlopen(f"{prom}/api/v1/query?{q}", timeout=10) as r:
        d = json.load(r)
    out = {}
    for s in d["data"]["result"]:
        key = tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__"))
        out[key] = [(int(float(t) * 1000), float(v)) for t, v in s["values"]
                    if float(t) * 1000 >= since_ms]
    return out


def transitions(samples):
    """[(ms, value)] where the value changes (the first sample included)."""
    out, last = [], None
    for t, v in samples:
        if v != last:
            out.append((t, v))
            last = v
    return out


def episodes(samples, gap_ms=3000):
    """[(first, last)] runs of consecutive samples (evaluations 1 s apart)."""
    runs = []
    for t, _ in samples:
        if runs and t - runs[-1][1] <= gap_ms:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return [tuple(r) for r in runs]


def main():
    prom, marks, start, t0, t1, r0, r1, stand_in, audit, clog = sys.argv[1:11]
    start, t0, t1, r0, r1 = (int(x) for x in (start, t0, t1, r0, r1))
    now = int(r1) + 1000
    events = []  # (ms, source, what)
    for line in open(marks):
        ms, what = line.rstrip("\n").split(" ", 1)
        events.append((int(ms), "test", what))

    def series(name):
        return raw(prom, f'collectd_tokenmgr_{name}{{pool="keepa"}}', start, now)

    for name in ("stalled", "shared_cause", "redis_up", "recharge_mode", "workers_alive"):
        for key, samples in series(name).items():
            for i, (t, v) in enumerate(transitions(samples)):
                if i:
                    events.append((t, "collectd", f"{name} {v:g}"))
    alerts = raw(prom, "ALERTS", start, now)
    fired = {}
    for key, samples in alerts.items():
        labels = dict(key)
        name, state = labels.pop("alertname"), labels.pop("alertstate")
        labels.pop("severity", None)
        shown = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        for first, last in episodes(samples):
            events.append((first, "prometheus", f"{name}{{{shown}}} {state}"))
            if state == "firing":
                events.append((last + 1000, "prometheus", f"{name}{{{shown}}} resolved"))
                fired.setdefault(name, []).append((first, last, shown))
    for line in open(stand_in):
        ms, what = line.rstrip("\n").split(" ", 1)
        if int(ms) >= t0 and ("restart" in what or "SIGKILL" in what or "started pid" in what
                              or "stopping" in what):
            events.append((int(ms), "systemctl", what[:140]))
    for line in open(clog, errors="replace"):
        m = re.match(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] (.*)$", line.rstrip("\n"))
        if not m or "tokenmgr" not in m.group(2):
            continue
        ms = int(time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) * 1000)
        what = re.sub(r"^Notification: severity = (\w+), .*?message = ", r"notification \1: ", m.group(2))
        if ms >= t0 - 1000 and "native layout" not in what:
            events.append((ms, "collectd-log", what[:150]))
    for e in json.load(open(audit)):
        ms = int(e.get("time_ms") or e.get("time") or 0)
        if ms >= start:
            events.append((ms, "audit", f"recovery decision {e.get('decision')}: {e.get('reason', '')[:60]}"
                           f" -> {e.get('outcome') or '?'} exit {e.get('exit')} in {e.get('duration_ms')} ms"))

    print(f"timeline (seconds from the freeze at +{(t0 - start) / 1000:.1f} s; "
          f"the Redis stop at +{(r0 - start) / 1000:.1f} s):")
    for ms, source, what in sorted(events):
        phase = f"freeze{(ms - t0) / 1000:+8.2f}" if ms < r0 else f"redis {(ms - r0) / 1000:+8.2f}"
        print(f"  {(ms - start) / 1000:8.2f}  {phase}  {source:10s} {what}")

    # ---- what fired -----------------------------------------------------------------
    want = {"TokenmgrPoolStalled": (t0, t1), "TokenmgrRedisUnreadable": (r0, r1)}
    for name, eps in sorted(fired.items()):
        if name not in want:
            fail(f"{name} fired: {eps}")
            continue
        lo, hi = want[name]
        if len(eps) == 1 and lo <= eps[0][0] and eps[0][1] <= hi:
            ok(f"{name}{{{eps[0][2]}}} fired once, inside its phase")
        else:
            fail(f"{name} fired {len(eps)} time(s): {eps}, phase {lo}..{hi}")
    for name in want:
        if name not in fired:
            fail(f"{name} never fired")
    pending_only = sorted({dict(k)["alertname"] for k in alerts} - set(fired))
    if pending_only:
        note(f"pending, never firing: {', '.join(pending_only)}")

    # ---- the stall phase, in order ----------------------------------------------------
    def first(pred, after):
        return min((ms for ms, src, what in events if ms >= after and pred(src, what)), default=None)

    steps = [
        ("stalled 1", lambda s, w: s == "collectd" and w == "stalled 1"),
        ("the recovery command", lambda s, w: s == "systemctl" and "systemctl restart" in w),
        ("TokenmgrPoolStalled firing", lambda s, w: s == "prometheus" and w.startswith("TokenmgrPoolStalled") and w.endswith("firing")),
        ("the thaw (a restarted worker)", lambda s, w: s == "systemctl" and "started pid" in w),
        ("stalled 0", lambda s, w: s == "collectd" and w == "stalled 0"),
        ("TokenmgrPoolStalled resolved", lambda s, w: s == "prometheus" and w.startswith("TokenmgrPoolStalled") and w.endswith("resolved")),
    ]
    at, order = t0, []
    for what, pred in steps:
        ms = first(pred, at)
        if ms is None:
            fail(f"stall phase: no {what} after +{(at - t0) / 1000:.2f} s")
            break
        order.append(f"{what} +{(ms - t0) / 1000:.2f} s")
        at = ms
    else:
        ok("stall phase in order: " + "; ".join(order))

    # ---- the idle, full bucket --------------------------------------------------------------
    thaw = first(steps[3][1], t0) or t1
    rm = [v for s in series("recharge_mode").values() for t, v in s if t0 <= t <= thaw]
    tokens = [v for s in series("tokens").values() for t, v in s if t0 <= t <= thaw]
    cap = [v for s in series("capacity").values() for t, v in s if t0 <= t <= thaw]
    if rm and tokens and cap and max(rm) == 0 and max(tokens) >= 0.97 * max(cap):
        ok(f"the idle bucket refilled to {max(tokens):g}/{max(cap):g} with recharge_mode 0 "
           f"in all {len(rm)} reads")
    else:
        fail(f"idle bucket: recharge_mode {sorted(set(rm))}, tokens up to {max(tokens, default=0):g} "
             f"of {max(cap, default=0):g}")
    sys.exit(1 if prom_check.failures else 0)


if __name__ == "__main__":
    main()
