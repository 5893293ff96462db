"""examples/python_worker.py against the fake Keepa: the seed's ingestion
loop, stopped and killed mid-run, each product exactly once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import harness

DEALS = 300  # two pages of /deal


@pytest.fixture
def setup(tmp_path, redis):
    fake = harness.FakeKeepa("--rate", "20", "--period-ms", "500", "--balance", "20",
                             "--latency-ms", "5-15", "--deals", str(DEALS))
    cfg = harness.write_config(
        str(tmp_path / "w.yaml"), redis.url, "pyw", fake.url,
        bucket={"refill_period_ms": 500, "soft_floor": 10, "recharge_target": 20, "low_cost_target": 10,
                "max_deficit": -40},
        heartbeat={"min_interval_ms": 200, "wait_slice_ms": 200},
        keepa={"token_sync_min_interval_s": 0},
    )
    yield fake, cfg, tmp_path
    fake.close()


def start(cfg: str, d, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, harness.PY_WORKER, "--config", cfg, "--output", str(d / "out.jsonl"),
         "--state", str(d / "state"), "--worker", "py-test"] + list(extra),
        stdout=subprocess.DEVNULL, stderr=open(d / "err.log", "a"),
        env=dict(os.environ, TOKENMGR_KEEPA_KEY="WORKERKEY1"),
    )


def products(d) -> list:
    with open(d / "out.jsonl") as f:
        return [line for line in f.read().splitlines()]


def test_runs_to_the_end(setup):
    fake, cfg, d = setup
    p = start(cfg, d)
    assert p.wait(60) == 0, (d / "err.log").read_text()
    lines = products(d)
    assert len(lines) == DEALS == len(set(lines))
    st = fake.state("WORKERKEY1")
    # Pages 0 and 1, the empty page 2 (the end), then 30 batches.
    assert st["requests_429"] == 0 and st["served"] == 3 + DEALS // 10
    assert "done: 300 products this run" in (d / "err.log").read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_stopped_then_restarted_exactly_once(setup, sig):
    fake, cfg, d = setup
    p = start(cfg, d)
    # Let it page and start on products, waiting for tokens in between.
    assert harness.wait_until(lambda: os.path.exists(d / "out.jsonl") and len(products(d)) >= 20, 30)
    t0 = time.monotonic()
    p.send_signal(sig)
    rc = p.wait(10)
    if sig == signal.SIGTERM:
        # A wait ends at once, a call in flight completes: a clean exit 0.
        assert rc == 0 and time.monotonic() - t0 < 3
        assert "stopped by a signal; checkpoint saved" in (d / "err.log").read_text()
    assert len(products(d)) < DEALS
    p = start(cfg, d)
    assert p.wait(60) == 0, (d / "err.log").read_text()
    lines = products(d)
    assert len(lines) == DEALS == len(set(lines))
    assert fake.state("WORKERKEY1")["requests_429"] == 0


def test_bad_input(tmp_path):
    r = subprocess.run([sys.executable, harness.PY_WORKER, "--output", "x"], capture_output=True, text=True)
    assert r.returncode == 64
    r = subprocess.run(
        [sys.executable, harness.PY_WORKER, "--output", str(tmp_path / "o"), "--state", str(tmp_path / "s"),
         "--config", str(tmp_path / "missing.yaml")],
        capture_output=True, text=True,
    )
    assert r.returncode == 78 and "missing.yaml: cannot open" in r.stderr
