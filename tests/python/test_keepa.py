"""tokenmgr.Keepa against the fake Keepa server, paid through the pool."""
from __future__ import annotations

import time

import pytest

import tokenmgr
from tokenmgr import ConfigError, Denied, KeepaAPIError, KeepaError, Keepa, Unavailable

KEY = "SECRETKEY0123456789"
ASINS = ["B000000001", "B000000002", "B000000003"]


@pytest.fixture
def keepa_client(client_factory, fake):
    def make(**kw):
        kw.setdefault("keepa_key", KEY)
        kw.setdefault("keepa_base_url", fake.url)
        kw.setdefault("bucket_refill_period_ms", 500)
        kw.setdefault("keepa_token_sync_min_interval_s", 300)
        return client_factory(**kw)

    return make


def test_request_returns_body_and_token_fields(keepa_client, fake):
    c = keepa_client()
    k = Keepa(c)
    # No pool state yet: the library syncs from /token once, then pays.
    r = k.request("/product", {"domain": 1, "asin": ASINS})
    assert r.http_status == 200 and r.tokens_consumed == 3 and r.attempts == 1
    assert [p["asin"] for p in r.json()["products"]] == ASINS
    assert isinstance(r.body, bytes) and r.body.startswith(b"{")
    st = fake.state(KEY)
    assert r.tokens_left == st["balance"] or st["balance"] > r.tokens_left  # refill may have ticked
    assert st["token_calls"] == 1 and st["requests_429"] == 0
    assert r.refill_rate == 20 and 0 < r.refill_in_ms <= 500 and r.timestamp_ms > 0
    s = c.status()
    assert s["synced"] and s["inflight"] == 0 and s["refill_rate"] == 20
    # /deal: 5 tokens by the estimate table; pairs work as params too.
    r = k.request("deal", [("selection", '{"page":0}')])
    assert r.tokens_consumed == 5 and len(r.json()["deals"]["dr"]) == 150
    assert tokenmgr.estimate_cost("/product", {"asin": ASINS, "offers": 20, "buybox": True}) == 24
    with pytest.raises(tokenmgr.InvalidArgument, match="pass cost="):
        k.request("/mystery")
    assert k.sync(force=True)["throttled"] is False


def test_api_refusal_is_keepa_api_error(keepa_client):
    k = Keepa(keepa_client())
    with pytest.raises(KeepaAPIError) as e:
        k.request("/product", {"asin": "not-an-asin"}, cost=1)
    assert e.value.code_name == "TKM_EAPI" and "400" in str(e.value)
    assert "each asin must match" in str(e.value)


def test_a_429_waits_through_the_pool(keepa_client, fake):
    c = keepa_client()
    k = Keepa(c)
    k.request("/product", {"asin": ASINS[:1]})  # synced
    fake.set(key=KEY, balance=-5)  # the pool does not know: the next call gets 429
    r = k.request("/product", {"asin": ASINS[:1]})
    assert r.http_status == 200 and r.http_429s == 1 and r.attempts == 2
    assert fake.state(KEY)["requests_429"] == 1


def test_tokens_too_far_away_are_denied(keepa_client, fake):
    c = keepa_client(bucket_max_wait_s=1)
    k = Keepa(c)
    fake.set(key=KEY, balance=-500)
    with pytest.raises(Denied) as e:
        k.request("/product", {"asin": ASINS[:1]})
    assert e.value.reason == "wait_too_long" and e.value.retry_after > 1
    assert e.value.code_name == "TKM_EWAIT"
    assert fake.state(KEY)["requests_429"] == 0


def test_sync_from_keepa_is_throttled_across_the_pool(keepa_client, fake):
    a, b = keepa_client(worker_id="a"), keepa_client(worker_id="b")
    r = a.sync_from_keepa()
    assert r["throttled"] is False and r["tokens"] == fake.state(KEY)["balance"]
    r = b.sync_from_keepa()  # another worker, same pool: throttled
    assert r["throttled"] is True and 0 < r["next_allowed_ms"] <= 300000
    assert b.sync_from_keepa(force=True)["throttled"] is False
    assert fake.state(KEY)["token_calls"] == 2


def test_the_key_never_shows(keepa_client, client_factory, redis, monkeypatch):
    dead = client_factory(keepa_key=KEY, keepa_base_url="http://127.0.0.1:1", keepa_max_retries=0,
                          keepa_timeout_ms=500)
    dead.sync(100, 20)
    k = Keepa(dead)
    with pytest.raises(KeepaError) as e:
        k.request("/product", {"asin": ASINS[:1]})
    for text in (str(e.value), repr(e.value), repr(k), repr(dead)):
        assert KEY not in text, text
    assert "attempts" in str(e.value)
    # A key the library refuses: the message names where it came from.
    with pytest.raises(ConfigError) as e:
        Keepa(client_factory(keepa_key="has spaces " + KEY))
    assert KEY not in str(e.value) and "letters and digits" in str(e.value)
    # No key anywhere.
    with pytest.raises(ConfigError, match="no Keepa access key"):
        Keepa(client_factory())
    # From the environment, as the C workers take it.
    monkeypatch.setenv("TOKENMGR_KEEPA_KEY", KEY)
    assert Keepa(client_factory()).base_url == "https://api.keepa.com"
    good = keepa_client()
    r = Keepa(good).request("/product", {"asin": ASINS[:1]})
    assert KEY not in repr(r) and KEY.encode() not in r.body


def test_redis_away_is_unavailable(keepa_client, redis):
    c = keepa_client(redis_timeout_ms=300)
    k = Keepa(c)
    k.request("/product", {"asin": ASINS[:1]})
    redis.kill()
    t0 = time.monotonic()
    with pytest.raises(Unavailable):
        k.request("/product", {"asin": ASINS[:1]})
    assert time.monotonic() - t0 < 5
