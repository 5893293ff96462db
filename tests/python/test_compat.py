"""tokenmgr.compat.TokenManager running the seed's own call pattern: the
worker does its HTTP itself and tells the manager before and after."""
from __future__ import annotations

import json
import multiprocessing
import os
import time
import urllib.request

import pytest

import harness
import tokenmgr
from tokenmgr.compat import TokenManager, TokenRechargeError

KEY = "SEEDKEY42"


def keepa_get(fake, path: str, **params) -> dict:
    """The seed's fetch functions: GET with the key, the JSON body (a 429
    too: its token fields are what the seed read)."""
    q = "&".join("%s=%s" % kv for kv in dict(key=KEY, **params).items())
    try:
        with urllib.request.urlopen("%s%s?%s" % (fake.url, path, q), timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def seed_config(tmp_path, redis, fake, **bucket) -> str:
    b = {"refill_period_ms": 500}
    b.update(bucket)
    return harness.write_config(
        str(tmp_path / "seed.yaml"), redis.url, "seed", fake.url,
        bucket=b, keepa={"token_sync_min_interval_s": 0},
    )


def ingest(tm: TokenManager, fake, pages: int, batches: int) -> int:
    """SmartIngestor's loop in the seed's words: deal pages, then product
    batches, a heartbeat in each loop.  Returns the products fetched."""
    fetched = 0
    asins = []
    for page in range(pages):
        tm.emit_heartbeat()
        tm.request_permission_for_call(5)
        resp = keepa_get(fake, "/deal", page=page)
        tm.update_after_call(resp["tokensLeft"])
        asins += [d["asin"] for d in resp["deals"]["dr"]]
    for b in range(batches):
        tm.emit_heartbeat()
        chunk = asins[b * 10 : b * 10 + 10]
        tm.request_permission_for_call(12 * len(chunk) / 12)  # the seed passed floats too
        resp = keepa_get(fake, "/product", asin=",".join(chunk))
        if resp.get("tokensLeft") is not None:
            tm.update_after_call(resp["tokensLeft"])
        fetched += len(resp.get("products", []))
    return fetched


def test_the_seeds_call_pattern(tmp_path, redis, monkeypatch):
    fake = harness.FakeKeepa("--rate", "20", "--period-ms", "500", "--balance", "60", "--latency-ms", "5-15")
    try:
        cfg = seed_config(tmp_path, redis, fake)
        monkeypatch.setenv("TOKENMGR_CONFIG", cfg)
        tm = TokenManager(KEY)  # the seed's constructor
        tm.sync_tokens()
        assert tm.tokens == fake.state(KEY)["balance"] == 60
        assert (tm.SOFT_BUFFER_FLOOR, tm.MAX_DEFICIT, tm.MIN_TOKEN_THRESHOLD, tm.BURST_THRESHOLD) == (20, -180, 1, 50)
        assert tm.REFILL_RATE_PER_MINUTE == 20.0 and tm.max_tokens == 1200
        assert ingest(tm, fake, pages=2, batches=10) == 100
        st = fake.state(KEY)
        assert st["requests_429"] == 0 and st["tokens_charged"] == 2 * 5 + 100
        s = tm.client.status()
        assert s["inflight"] == 0
        # The heartbeats were this worker's own.
        (w,) = tm.client.workers()
        assert w["id"] == tm.client.worker_id and w["alive"]
        tm.close()
    finally:
        fake.close()


def _seed_worker(cfg: str, url: str, n: int, q) -> None:
    class F:
        pass

    fake = F()
    fake.url = url
    os.environ["TOKENMGR_CONFIG"] = cfg
    try:
        with TokenManager(KEY) as tm:
            q.put(("ok", _products(tm, fake, n)))
    except BaseException as e:
        q.put(("error", repr(e)))


def _products(tm, fake, n: int) -> int:
    got = 0
    for b in range(12):
        tm.emit_heartbeat()
        tm.request_permission_for_call(10)
        asins = ",".join("B%09d" % (n * 1000 + b * 10 + i) for i in range(10))
        resp = keepa_get(fake, "/product", asin=asins)
        tm.update_after_call(resp["tokensLeft"])
        got += len(resp.get("products", []))
    return got


def test_four_seed_workers_share_one_bucket(tmp_path, redis):
    """SEED failures 1 and 2 (check-then-act reservations; syncs that wiped
    calls in flight) under the seed's own pattern: four processes, a
    bucket far smaller than their demand, no 429, no runaway deficit."""
    fake = harness.FakeKeepa("--rate", "40", "--period-ms", "500", "--balance", "40", "--latency-ms", "20-60")
    try:
        cfg = seed_config(tmp_path, redis, fake, max_deficit=-40, soft_floor=10, recharge_target=30,
                          low_cost_target=10)
        with TokenManager(KEY, config=cfg) as tm:
            tm.sync_tokens(force=True)
        fake.reset_counters(KEY)
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        ps = [ctx.Process(target=_seed_worker, args=(cfg, fake.url, n, q)) for n in range(4)]
        for p in ps:
            p.start()
        results = [q.get(timeout=120) for _ in ps]
        for p in ps:
            p.join(30)
        assert all(r[0] == "ok" for r in results), results
        st = fake.state(KEY)
        assert st["requests_429"] == 0, st
        assert st["min_balance"] >= -40, st
        assert sum(r[1] for r in results) == 4 * 12 * 10
    finally:
        fake.close()


def test_recharge_error_and_reports(tmp_path, redis):
    fake = harness.FakeKeepa("--rate", "5", "--period-ms", "60000", "--balance", "-200")
    try:
        cfg = seed_config(tmp_path, redis, fake, refill_period_ms=60000, max_wait_s=1)
        tm = TokenManager(KEY, config=cfg)
        # No state: it syncs from /token itself, then finds the tokens an
        # hour away and raises the seed's exception (a Denied).
        with pytest.raises(TokenRechargeError) as e:
            tm.request_permission_for_call(5)
        assert isinstance(e.value, tokenmgr.Denied) and e.value.reason == "wait_too_long"
        assert fake.state(KEY)["token_calls"] == 1
        assert tm.should_skip_sync() is False and tm.has_enough_tokens(5) is False
        # A report without a pending call is applied as a sync.
        tm.update_after_call(300.0)
        assert tm.get_tokens_left() == 300 and tm.has_enough_tokens(5)
        # A permission never reported is completed (with its estimate) by
        # the next request: one lease at a time, none left behind.
        tm.request_permission_for_call(7)
        tm.request_permission_for_call(3)
        s = tm.client.status()
        assert (s["inflight"], s["tokens"]) == (1, 290)
        tm.update_after_call(250, tokens_consumed=3, timestamp=int(time.time() * 1000))
        s = tm.client.status()
        assert (s["inflight"], s["tokens"]) == (0, 250)
        tm.emit_heartbeat()
        tm.close()
    finally:
        fake.close()


def test_redis_url_of_the_seed(monkeypatch, redis):
    monkeypatch.setenv("REDIS_URL", redis.url)
    tm = TokenManager()
    assert tm.client.option("redis.url") == redis.url
    tm.client.sync(5, 1)
    tm.close()
    # Redis away: emit_heartbeat never raises (the seed's promise), the
    # rest says Unavailable.
    tm = TokenManager(redis_timeout_ms=200)
    redis.kill()
    tm.emit_heartbeat()
    with pytest.raises(tokenmgr.Unavailable):
        tm.request_permission_for_call(1)
    tm.close()
