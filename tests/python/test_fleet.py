"""A mixed fleet: 4 C keepa_workers and 4 Python workers
(examples/python_worker.py) share one pool against the fake Keepa for about
60 periods of a shortened minute (500 ms), with collectd and the tokenmgr
plugin watching the pool.

Each worker takes one page of deals (150) and fetches their products with
offers, estimated at one offers page (6 tokens) an ASIN and charged 6 or 12:
the pool must learn the error.  Afterwards: no 429 after the first sync,
the fake server's lowest balance within the deficit bound (bucket.max_deficit
less the largest error of one call), every product
exactly once across both languages, and the plugin and the CLI saw the
Python workers exactly as the C ones."""
from __future__ import annotations

import json
import os
import sys
import time

import pytest

import harness

KEY = "FLEETKEY7"
WORKERS_C = 4
WORKERS_PY = 4
PAGES = WORKERS_C + WORKERS_PY
DEALS = 150 * PAGES
PERIOD_MS = 500
RATE = 180  # tokens a period: the fleet's demand (about 10 800) in about 60 periods
MAX_DEFICIT = -180
# The deficit bound, as the policy benchmark states it (tests/bench/README.md:
# "min balance >= -180 - 36"): bucket.max_deficit less the largest error of
# one call, here a product batch estimated at 60 and charged up to 120.  The
# pool values calls in flight at the largest error it has learned (a slowly
# decaying maximum), so a call that exceeds it may take the balance that far
# past max_deficit.
LARGEST_ERROR = 10 * 12 - 10 * 6
BOUND = MAX_DEFICIT - LARGEST_ERROR


def c_worker(cfg: str, d: str, page: int, wid: str):
    os.makedirs(d)
    # keepa_worker pages from its checkpoint's deal_page: one page each.
    with open(os.path.join(d, "checkpoint"), "w") as f:
        f.write("deal_page=%d\nasins_bytes=0\nproduct_index=0\noutput_bytes=0\n" % page)
    return harness.spawn_worker(
        [harness.C_WORKER, "--config", cfg, "--output", os.path.join(d, "out.jsonl"), "--state", d,
         "--batch", "10", "--offers", "20", "--max-pages", str(page + 1), "--worker", wid],
        d + ".log", {"TOKENMGR_KEEPA_KEY": KEY},
    )


def py_worker(cfg: str, d: str, page: int, wid: str):
    return harness.spawn_worker(
        [sys.executable, harness.PY_WORKER, "--config", cfg, "--output", os.path.join(d, "out.jsonl"),
         "--state", d, "--batch", "10", "--offers", "20", "--first-page", str(page),
         "--max-pages", str(page + 1), "--worker", wid],
        d + ".log", {"TOKENMGR_KEEPA_KEY": KEY},
    )


@pytest.mark.skipif(not os.path.exists(harness.COLLECTD), reason="collectd is not installed")
def test_mixed_fleet(tmp_path, redis, capsys):
    fake = harness.FakeKeepa("--rate", str(RATE), "--period-ms", str(PERIOD_MS), "--balance", "100",
                             "--latency-ms", "10-40", "--deals", str(DEALS))
    collectd = None
    procs = {}
    try:
        cfg = harness.write_config(
            str(tmp_path / "fleet.yaml"), redis.url, "fleet", fake.url,
            bucket={"refill_period_ms": PERIOD_MS, "max_deficit": MAX_DEFICIT, "max_wait_s": 30},
            heartbeat={"min_interval_ms": 200, "wait_slice_ms": 250, "stale_after_s": 5},
            keepa={"token_sync_min_interval_s": 0},
        )
        collectd = harness.Collectd(
            '  <Pool "fleet">\n    ConfigFile "%s"\n    WorkerMetrics true\n  </Pool>\n' % cfg, interval=0.5
        )
        os.environ["TOKENMGR_KEEPA_KEY"] = KEY
        try:
            r = harness.cli(cfg, "sync", "--from-keepa", "--force")
        finally:
            del os.environ["TOKENMGR_KEEPA_KEY"]
        assert r.returncode == 0, r.stderr
        fake.reset_counters(KEY)  # 429s and the lowest balance from the first sync on

        t0 = time.monotonic()
        for i in range(PAGES):
            d = str(tmp_path / ("w%d" % i))
            if i < WORKERS_C:
                procs["c-%d" % i] = c_worker(cfg, d, i, "c-%d" % i)
            else:
                procs["py-%d" % i] = py_worker(cfg, d, i, "py-%d" % i)

        # While they run, the CLI lists both languages alike.
        assert harness.wait_until(lambda: harness.cli_json(cfg, "status")["workers_total"] == PAGES, 20)
        seen = harness.cli_json(cfg, "workers")["workers"]
        st = harness.cli_json(cfg, "status")
        assert {w["id"] for w in seen} == set(procs)
        assert all(w["alive"] and w["heartbeat_age_s"] < 5 for w in seen)
        assert set(seen[0]) == {"id", "heartbeat_age_s", "phase", "busy_until_ms", "busy_for_s", "alive"}
        assert st["workers_alive"] == PAGES

        rcs = {wid: p.wait(150) for wid, p in procs.items()}
        elapsed = time.monotonic() - t0
        logs = {i: open(str(tmp_path / ("w%d.log" % i))).read()[-2000:] for i in range(PAGES)}
        assert all(rc == 0 for rc in rcs.values()), (rcs, logs)

        state = fake.state(KEY)
        products = []
        for i in range(PAGES):
            with open(tmp_path / ("w%d" % i) / "out.jsonl") as f:
                products += [json.loads(line)["asin"] for line in f]
        asins = []
        for i in range(PAGES):
            with open(tmp_path / ("w%d" % i) / "asins") as f:
                asins += f.read().split()
        status = harness.cli_json(cfg, "status")

        # collectd: the plugin saw 8 workers alive and one heartbeat-age
        # series per worker, Python and C alike.
        assert harness.wait_until(lambda: max(collectd.values("fleet", "workers_alive") or [0]) == PAGES, 5), (
            collectd.files("fleet", "*"), collectd.values("fleet", "workers_alive"), collectd.log())
        series = collectd.worker_series("fleet")
        figures = (
            "python_fleet: %d C + %d Python workers, %.1f s = %.0f periods of %d ms; "
            "429s after the first sync %d; fake min balance %d (bound %d = bucket.max_deficit %d - %d); "
            "%d calls, %d tokens charged; products %d, distinct %d (of %d deals); "
            "pool estimate_ratio %s; collectd workers_alive max %d, worker series %s"
            % (WORKERS_C, WORKERS_PY, elapsed, elapsed * 1000 / PERIOD_MS, PERIOD_MS,
               state["requests_429"], state["min_balance"], BOUND, MAX_DEFICIT, LARGEST_ERROR, state["served"],
               state["tokens_charged"], len(products), len(set(products)), DEALS,
               status["estimate_ratio"], max(collectd.values("fleet", "workers_alive")), ",".join(series))
        )
        with capsys.disabled():
            print("\n" + figures)

        assert state["requests_429"] == 0, figures
        assert state["min_balance"] >= BOUND, figures
        assert len(products) == DEALS and sorted(products) == sorted(set(asins)) and len(set(asins)) == DEALS
        assert status["inflight"] == 0
        assert sorted(series) == sorted(procs), series
        assert elapsed * 1000 / PERIOD_MS >= 40, figures  # the bucket, not the CPU, set the pace
    finally:
        for p in procs.values():
            harness.stop_process(p, grace=5)
        if collectd is not None:
            collectd.close()
        fake.close()
