#!/usr/bin/env python3
"""One frame of the demo's live view (80 columns), from the real parts:
tokenmgr status/workers/recovery (the CLI), the fake Keepa server's counters
and collectd's csv output.  No colour unless stdout is a terminal."""
import argparse, glob, json, os, subprocess, sys, urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--tokenmgr", required=True)
ap.add_argument("--config", required=True)
ap.add_argument("--fake", required=True)
ap.add_argument("--csv", required=True)
ap.add_argument("--elapsed", type=float, required=True)
ap.add_argument("--duration", type=float, required=True)
ap.add_argument("--floor", type=int, default=20)
ap.add_argument("--note", default="")
ap.add_argument("--state", help="write the frame's figures here as JSON")
a = ap.parse_args()
tty = sys.stdout.isatty()
B, D, R, G, Y, N = (("\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[33m", "\033[0m")
                    if tty else ("",) * 6)


def cli(*args):
    r = subprocess.run([a.tokenmgr, "--config", a.config, *args, "--json"],
                       capture_output=True, text=True, timeout=5)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout else None


def fake_state():
    try:
        with urllib.request.urlopen(a.fake + "/admin/state", timeout=2) as f:
            return json.load(f)
    except Exception:
        return {}


def csv_last(metric):
    files = sorted(glob.glob(os.path.join(a.csv, "*", "tokenmgr-*", metric + "-*")))
    if not files:
        return None
    with open(files[-1]) as f:
        lines = [l for l in f.read().splitlines() if l and l[0].isdigit()]
    return float(lines[-1].split(",")[1]) if lines else None


st = cli("status") or {}
ws = (cli("workers") or {}).get("workers", [])
fk = fake_state()
stalled = csv_last("stalled")
recov = csv_last("recoveries")
tokens, cap = st.get("tokens"), st.get("capacity") or 1
width = 40
out = []
title = f" tokenmgr demo  pool {st.get('pool', '?')}  t={a.elapsed:4.0f}s of {a.duration:.0f}s "
out.append(B + title.ljust(79, "-") + N)
if tokens is None:
    out.append("balance   (no sync yet)")
else:
    fill = max(0, min(width, round(width * tokens / cap)))
    floor = max(0, min(width - 1, round(width * a.floor / cap)))
    bar = ["#" if i < fill else "." for i in range(width)]
    bar[floor] = "|"
    colour = R if tokens < a.floor else G
    out.append(f"balance   {colour}{''.join(bar)}{N} {tokens:5d} / {cap} "
               f"(floor {a.floor})")
rech = st.get("recharge_mode")
out.append(f"recharge  {Y + 'ON' + N if rech else 'off':<8}   in flight "
           f"{st.get('inflight', 0)} ({st.get('inflight_tokens', 0)} tokens)   "
           f"workers alive {st.get('workers_alive', 0)}/{st.get('workers_total', 0)}")
n429 = fk.get("requests_429", 0)
out.append(f"keepa     served {fk.get('served', 0):5d}   charged "
           f"{fk.get('tokens_charged', 0):6d}   "
           f"429s {(R if n429 else G) + str(n429) + N}   min balance "
           f"{fk.get('min_balance', 0)}")
s_txt = "-" if stalled is None else ((R + "STALLED" + N) if stalled else (G + "no" + N))
out.append(f"collectd  stalled {s_txt:<10}  recoveries "
           f"{'-' if recov is None else int(recov)}   (csv, one read a second)")
out.append(D + f"{'WORKER':<14}{'AGE':>7}  PHASE" + N)
for w in ws[:6]:
    age = w.get("heartbeat_age_s") or 0
    mark = "" if w.get("alive") else (R + "  stale" + N)
    colour = R if age > 3 else ""
    out.append(f"{w['id'][:13]:<14}{colour}{age:6.1f}s{N}  {w.get('phase', '')[:44]}{mark}")
if a.note:
    out.append(B + "> " + a.note[:76] + N)
frame = "\n".join(out)
if tty:
    sys.stdout.write("\033[H\033[J" + frame + "\n")
else:
    sys.stdout.write(frame + "\n\n")
sys.stdout.flush()
if a.state:
    with open(a.state, "w") as f:
        json.dump({"tokens": tokens, "requests_429": n429, "served": fk.get("served", 0),
                   "tokens_charged": fk.get("tokens_charged", 0),
                   "min_balance": fk.get("min_balance"), "stalled": stalled,
                   "recoveries": recov, "workers_alive": st.get("workers_alive")}, f)
