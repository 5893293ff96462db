#!/usr/bin/env python3
"""bench_python: acquire+complete pairs per second from Python (the
tokenmgr binding, one thread) beside the C library's own figure.

    tests/bench/bench_python.py [--build DIR] [--seconds S] [--rounds N]
                                [--json FILE]

Each round runs `build/tests/bench_decide --threads 1` (tkm_try_acquire(1)
+ tkm_complete(1) pairs from C against its private redis-server), then the
same pairs from Python: `client.acquire(1, wait=False)` +
`grant.complete(1)` against a private redis-server started with the same
flags (Unix socket, no persistence), with the same pool settings (a pool
that never denies).  The ratio is Python's pairs/s over C's, rounds
alternating so that both see the same machine; the median of the rounds
is the figure.  Target: 0.8 or more with one thread.

Not a test: exit 0 when measured (target met or not), 1 when something
could not run, 2 on a bad command line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))


def c_pairs(build: str, seconds: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [os.path.join(build, "tests", "bench_decide"), "--threads", "1", "--seconds", str(seconds),
             "--json", out.name],
            check=True, stdout=subprocess.DEVNULL,
        )
        return json.load(open(out.name))["rows"][0]


class Redis:
    """redis-server as tests/redis_fixture.c starts it."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="tkm-benchpy-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.proc = subprocess.Popen(
            [os.environ.get("TKM_REDIS_SERVER", "redis-server"), "--port", "0", "--unixsocket", self.sock,
             "--unixsocketperm", "700", "--dir", self.dir, "--save", "", "--appendonly", "no",
             "--logfile", os.path.join(self.dir, "redis.log"), "--daemonize", "no"],
            stdin=subprocess.DEVNULL,
        )
        for _ in range(500):
            if os.path.exists(self.sock):
                return
            time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def py_pairs(tokenmgr, seconds: int) -> dict:
    redis = Redis()
    try:
        # bench_never_deny (tests/bench/bench_util.c), by keyword.
        c = tokenmgr.Client(False, pool="decide", redis="unix://" + redis.sock, worker_id="py0",
                            bucket_capacity=1000000000, bucket_max_deficit=-1000000000,
                            bucket_soft_floor=-1000000000, bucket_lease_ttl_s=86400)
        c.sync(900000000, 0)
        for _ in range(200):  # warm-up: connect, load scripts
            c.acquire(1, wait=False).complete(1)
        trips0 = c.round_trips()
        lat = []
        n = 0
        clock = time.perf_counter_ns
        t0 = clock()
        end = t0 + seconds * 1_000_000_000
        while True:
            s = clock()
            if s >= end:
                break
            c.acquire(1, wait=False).complete(1)
            lat.append(clock() - s)
            n += 1
        t1 = clock()
        trips = c.round_trips() - trips0
        c.close()
    finally:
        redis.close()
    lat.sort()
    return {
        "pairs_per_s": n * 1e9 / (t1 - t0),
        "round_trips_per_pair": trips / n,
        "pair_p50_us": lat[len(lat) // 2] / 1000,
        "pair_p99_us": lat[len(lat) * 99 // 100] / 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description="Python acquire+complete pairs/s beside bench_decide --threads 1")
    ap.add_argument("--build", default=os.path.join(SOURCE, "build"))
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    try:
        args = ap.parse_args()
    except SystemExit as e:
        return 2 if e.code else 0
    os.environ.setdefault("TOKENMGR_LIBRARY", os.path.join(args.build, "libtokenmgr.so.0"))
    sys.path.insert(0, os.path.join(SOURCE, "bindings", "python"))
    try:
        import tokenmgr
    except ImportError as e:
        print("bench_python: %s" % e, file=sys.stderr)
        return 1

    print("bench_python: acquire(1, wait=False)+complete(1) pairs, one thread, %d s each, %d rounds"
          % (args.seconds, args.rounds))
    print("  libtokenmgr %s at %s; Python %s" % (tokenmgr.library_version, tokenmgr.library_path,
                                                 sys.version.split()[0]))
    print("%5s %10s %10s %9s %9s %9s %9s %7s" % ("round", "C pairs/s", "Py pairs/s", "C p50 us", "Py p50",
                                               "Py p99", "Py trips", "ratio"))
    rows = []
    try:
        for r in range(args.rounds):
            c = c_pairs(args.build, args.seconds)
            p = py_pairs(tokenmgr, args.seconds)
            ratio = p["pairs_per_s"] / c["pairs_per_s"]
            rows.append({"c": c, "python": p, "ratio": ratio})
            print("%5d %10.0f %10.0f %9.1f %9.1f %9.1f %9.2f %7.3f" % (
                r + 1, c["pairs_per_s"], p["pairs_per_s"], c["pair_p50_us"], p["pair_p50_us"],
                p["pair_p99_us"], p["round_trips_per_pair"], ratio))
            sys.stdout.flush()
    except (OSError, subprocess.CalledProcessError, RuntimeError, tokenmgr.TokenmgrError) as e:
        print("bench_python: %s" % e, file=sys.stderr)
        return 1
    c_med = statistics.median(x["c"]["pairs_per_s"] for x in rows)
    p_med = statistics.median(x["python"]["pairs_per_s"] for x in rows)
    ratio = statistics.median(x["ratio"] for x in rows)
    print("median: C %.0f pairs/s, Python %.0f pairs/s, ratio %.3f (target >= 0.8: %s)"
          % (c_med, p_med, ratio, "ok" if ratio >= 0.8 else "MISS"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seconds": args.seconds, "rounds": rows, "c_pairs_per_s": c_med,
                       "python_pairs_per_s": p_med, "ratio": ratio, "target": 0.8,
                       "loadavg": open("/proc/loadavg").read().split()[:3]}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
